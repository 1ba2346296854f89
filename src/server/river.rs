//! `GET /`: the river page, and its stylesheet. No JavaScript, nothing
//! from another origin, and a Content-Security-Policy that says so.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};
use crate::model::Item;
use crate::query::{directory_of, feed_states, group_members, url};
use crate::render::html::{CSS, FeedLine, RiverInput, river};
use crate::store::StoreError;

/// Stories per page of the river.
pub const PAGE: usize = 30;
/// Comments in the "Recent Comments" column.
pub const RECENT: usize = 10;

/// Scripts, frames, plugins, forms and other origins are all refused; the
/// page needs only its own stylesheet. Images from feeds are not shown.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(page)).route(
        "/river.css",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                CSS,
            )
        }),
    )
}

async fn page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    super::blocking(move || page_now(&state, &query)).await
}

fn page_now(state: &AppState, query: &HashMap<String, String>) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let group = query.get("group").filter(|g| !g.is_empty()).cloned();
    let members = match &group {
        Some(g) => Some(group_members(&config, g)?),
        None => None,
    };
    let cursor = query.get("before").map(String::as_str);
    let now = chrono::Utc::now();
    let in_scope = |item: &Item| {
        members
            .as_ref()
            .is_none_or(|m| item.feeds().any(|f| m.contains(&f)))
            && config.rules.keeps(item, now)
    };
    let rising = query.get("view").is_some_and(|v| v == "rising");
    let (items, next) = match rising {
        true => {
            let hot =
                crate::query::rising(state.store.as_ref(), &config, members.as_deref(), PAGE, now)?;
            (hot.into_iter().map(|(item, _)| item).collect(), None)
        }
        false => match state.store.page(cursor, PAGE, &in_scope) {
            Err(StoreError::Cursor) => {
                return Err(ApiError::BadRequest(format!(
                    "before must be a cursor from an \"older\" link, not {:?}",
                    cursor.unwrap_or_default()
                )));
            }
            page => page?,
        },
    };
    let mut recent = Vec::new();
    let kept = crate::query::comment_kept(state.store.as_ref(), &config, now);
    for rc in state.store.recent_comments(RECENT, &kept)? {
        let title = match rc.item {
            Some(id) => state.store.item(&id)?.map(|i| i.title),
            None => None,
        };
        recent.push((rc, title));
    }
    let states = feed_states(state.store.as_ref(), &config);
    let dir = directory_of(&config, &states);
    let feeds = config
        .feeds
        .iter()
        .filter(|f| members.as_ref().is_none_or(|m| m.contains(&f.id.as_str())))
        .map(|f| {
            let s = states.get(&f.id).cloned().unwrap_or_default();
            let title = dir
                .get(&f.id)
                .map(|d| d.title.clone())
                .unwrap_or_else(|| f.id.clone());
            let status = match (&s.last_error, s.last_success) {
                _ if !f.enabled => "disabled".to_string(),
                (Some(e), _) => format!(
                    "failing since {} ({})",
                    e.at.format("%-d %b %H:%M"),
                    e.kind.as_str()
                ),
                (None, Some(t)) => format!("ok, polled {}", t.format("%-d %b %H:%M")),
                (None, None) => "not polled yet".to_string(),
            };
            FeedLine {
                title,
                ok: s.last_error.is_none(),
                status,
            }
        })
        .collect();
    let prefix = match &group {
        Some(g) => format!("groups/{g}/"),
        None => String::new(),
    };
    let groups = config.groups();
    let digest = match &group {
        Some(g) => format!("digest.json?group={g}"),
        None => "digest.json".into(),
    };
    let html = river(&RiverInput {
        title: &config.server.title,
        group: group.as_deref(),
        rising,
        heat_window: config.output.heat_window,
        now,
        groups: &groups,
        items: &items,
        recent: &recent,
        feeds,
        directory: &dir,
        before: query.get("before").cloned(),
        older: next,
        atom_href: url(&config, &format!("{prefix}feed.atom")),
        rss_href: url(&config, &format!("{prefix}feed.rss")),
        json_href: url(&config, &format!("{prefix}feed.json")),
        digest_href: url(&config, &digest),
        opml_href: url(&config, "opml"),
        css_href: url(&config, "river.css"),
    });
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
