//! `GET /api/rules`: each rule with how many stored stories it drops now,
//! and a warning for a rule that drops nothing or everything. The count
//! walks every stored story, so it is kept until the store or the config
//! changes (and `/metrics` reads the same count).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::config::Config;
use crate::rules::{Action, Field, Tally};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/rules", get(rules))
}

/// The last count, with the config version and store generation it was
/// made at.
#[derive(Default)]
pub struct Tallies(Mutex<Option<(u64, u64, Arc<Tally>)>>);

/// What the rules drop now, counted again only when the store or the
/// config changed since the last count.
pub fn tally(state: &AppState, config: &Config) -> Result<Arc<Tally>, ApiError> {
    let generation = state.store.generation();
    let mut last = state.tallies.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((version, g, tally)) = last.as_ref()
        && *version == config.version
        && *g == generation
    {
        return Ok(tally.clone());
    }
    let now = chrono::Utc::now();
    let counted =
        crate::query::rule_tally(state.store.as_ref(), config, None, now, &mut |_, _| {})?;
    let counted = Arc::new(counted);
    *last = Some((config.version, generation, counted.clone()));
    Ok(counted)
}

#[derive(Serialize)]
struct Listed {
    /// Stored stories, and how many the rules drop.
    stories: usize,
    dropped: usize,
    rules: Vec<RuleStatus>,
}

#[derive(Serialize)]
struct RuleStatus {
    /// 1-based, in the order written.
    rule: usize,
    /// The line of the config file its `action` key is on.
    line: usize,
    action: Action,
    patterns: Vec<Pattern>,
    feeds: Vec<String>,
    groups: Vec<String>,
    older_than: Option<String>,
    /// Stored stories this rule drops (as the first rule that drops them).
    drops: usize,
    in_scope: usize,
    warning: Option<&'static str>,
}

#[derive(Serialize)]
struct Pattern {
    field: Field,
    pattern: String,
}

async fn rules(State(state): State<AppState>) -> Result<Json<Listed>, ApiError> {
    super::blocking(move || {
        let config = state.config.load_full();
        let tally = tally(&state, &config)?;
        let rules = (config.rules.0.iter().enumerate())
            .map(|(i, r)| RuleStatus {
                rule: i + 1,
                line: r.line,
                action: r.action,
                patterns: (r.patterns.iter())
                    .map(|(field, re)| Pattern {
                        field: *field,
                        pattern: re.as_str().to_string(),
                    })
                    .collect(),
                feeds: r.feeds.clone(),
                groups: r.groups.clone(),
                older_than: r
                    .older_than
                    .map(|d| humantime::format_duration(d).to_string()),
                drops: tally.dropped[i],
                in_scope: tally.in_scope[i],
                warning: tally.warning(i),
            })
            .collect();
        Ok(Json(Listed {
            stories: tally.stories,
            dropped: tally.dropped.iter().sum(),
            rules,
        }))
    })
    .await
}
