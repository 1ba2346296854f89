//! Operators' routes: feed status, OPML, metrics, and the admin routes
//! (reload, refresh) behind a bearer token. (`/api/rules` is in `rules`.)

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::{ApiError, AppState, Control};
use crate::config::Source;
use crate::model::{PollFailure, Timestamp};
use crate::poller::Outcome;
use crate::query::{directory, url};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/feeds", get(feeds))
        .route("/api/reload", post(reload))
        .route("/api/feeds/{id}/refresh", post(refresh))
        .route("/opml", get(opml))
        .route("/metrics", get(metrics))
}

#[derive(Serialize)]
struct Status {
    /// The last reload's mistake (`FILE:LINE:COL: message`) while the daemon
    /// runs on the config before it; `null` when the file on disk is in use.
    config_error: Option<String>,
    feeds: Vec<FeedStatus>,
}

#[derive(Serialize)]
struct FeedStatus {
    id: String,
    title: String,
    url: String,
    comments_url: Option<String>,
    groups: Vec<String>,
    enabled: bool,
    last_attempt: Option<Timestamp>,
    last_success: Option<Timestamp>,
    last_error: Option<PollFailure>,
    consecutive_failures: u32,
    next_poll: Option<Timestamp>,
    item_count: usize,
    comments_error: Option<PollFailure>,
    skipped_comment_feeds: u64,
    /// The feed moved for good (301/308): put this URL in the config.
    moved_to: Option<String>,
    /// The URL answered 410 Gone; the feed rests until its url changes.
    gone: bool,
}

/// Local files are shown by file name: the server's paths are nobody's
/// business.
fn shown(source: &Source) -> String {
    match source {
        Source::Http(u) => u.to_string(),
        Source::File(p) => format!(
            "file:{}",
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
    }
}

async fn feeds(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    super::blocking(move || feeds_now(&state)).await
}

fn feeds_now(state: &AppState) -> Result<Json<Status>, ApiError> {
    let config = state.config.load_full();
    let mut feeds = Vec::with_capacity(config.feeds.len());
    let ids: Vec<&str> = config.feeds.iter().map(|f| f.id.as_str()).collect();
    let states = state.store.feed_states(&ids)?;
    for (f, s) in config.feeds.iter().zip(states) {
        feeds.push(FeedStatus {
            id: f.id.clone(),
            title: f.title.clone().or(s.title).unwrap_or_else(|| f.id.clone()),
            url: shown(&f.source),
            comments_url: f.comments_url.as_deref().map(shown),
            groups: f.groups.clone(),
            enabled: f.enabled,
            last_attempt: s.last_attempt,
            last_success: s.last_success,
            last_error: s.last_error,
            consecutive_failures: s.consecutive_failures,
            next_poll: s.next_poll,
            item_count: state.store.count_in_feed(&f.id),
            comments_error: s.comments_error,
            skipped_comment_feeds: s.skipped_comment_feeds,
            moved_to: s.moved_to,
            gone: s.gone.as_deref() == Some(f.source.to_string().as_str()),
        });
    }
    Ok(Json(Status {
        config_error: state.status.load_full().map(|e| e.to_string()),
        feeds,
    }))
}

async fn opml(State(state): State<AppState>) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let store = state.store.clone();
    let dir = {
        let config = config.clone();
        super::blocking(move || Ok(directory(store.as_ref(), &config))).await?
    };
    let listed = crate::opml::listed(
        &config,
        |id| {
            dir.get(id)
                .map(|f| f.title.clone())
                .unwrap_or_else(|| id.to_string())
        },
        |id| dir.get(id).map(|f| f.url.clone()).unwrap_or_default(),
        |id| dir.get(id).and_then(|f| f.site.clone()),
    );
    let body = crate::opml::export(&config.server.title, &listed);
    Ok(([(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")], body).into_response())
}

/// Feed states a scrape of `/metrics` holds at once.
const STATES_AT_ONCE: usize = 1024;

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = super::blocking(move || {
        let config = state.config.load_full();
        let ids: Vec<&str> = config.feeds.iter().map(|f| f.id.as_str()).collect();
        // The failing feeds, read a slice of states at a time: a million
        // states at once would be half a gigabyte for a moment.
        let mut failing = Vec::new();
        for ids in ids.chunks(STATES_AT_ONCE) {
            let states = state.store.feed_states(ids)?;
            let failed =
                (ids.iter().zip(states)).filter_map(|(id, s)| Some((*id, s.last_error?.kind)));
            failing.extend(failed);
        }
        let rules = match config.rules.is_empty() {
            true => Vec::new(),
            false => {
                let tally = super::rules::tally(&state, &config)?;
                (config.rules.0.iter().enumerate())
                    .map(|(i, r)| crate::metrics::RuleCount {
                        rule: i + 1,
                        line: r.line,
                        action: match r.action {
                            crate::rules::Action::Block => "block",
                            crate::rules::Action::Keep => "keep",
                        },
                        dropped: tally.dropped[i],
                    })
                    .collect()
            }
        };
        Ok(state
            .metrics
            .render(failing.into_iter(), state.store.write_time(), &rules))
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Admin routes exist only while the token's environment variable is set;
/// the token is compared in constant time.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let config = state.config.load_full();
    let var = &config.server.admin_token_env;
    let Some(token) = std::env::var(var).ok().filter(|t| !t.is_empty()) else {
        return Err(ApiError::NotFound(format!(
            "admin routes are off; set ${var} to turn them on"
        ))
        .into_response());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return Ok(());
    }
    let body = Json(
        serde_json::json!({ "error": "a valid `Authorization: Bearer <token>` header is required" }),
    );
    Err((
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        body,
    )
        .into_response())
}

async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<T, ApiError> {
    let Some(control) = &state.control else {
        return Err(ApiError::Internal("no daemon to ask".into()));
    };
    let (tx, rx) = oneshot::channel();
    control
        .send(make(tx))
        .await
        .map_err(|_| ApiError::Internal("the daemon is shutting down".into()))?;
    rx.await
        .map_err(|_| ApiError::Internal("the daemon is shutting down".into()))
}

async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Response> {
    authorize(&state, &headers)?;
    match ask(&state, Control::Reload)
        .await
        .map_err(IntoResponse::into_response)?
    {
        Ok(()) => Ok(Json(serde_json::json!({ "reloaded": true })).into_response()),
        Err(e) => Err(ApiError::BadRequest(e).into_response()),
    }
}

/// `?wait=true` holds the answer until the poll is done.
#[derive(serde::Deserialize)]
struct RefreshQuery {
    #[serde(default)]
    wait: Option<String>,
}

/// Starts a poll of the feed (or joins the one in flight) and answers 202
/// at once; with `?wait=true`, answers 200 with the poll's outcome.
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RefreshQuery>,
) -> Result<Response, Response> {
    authorize(&state, &headers)?;
    if state.config.load().feed(&id).is_none() {
        return Err(ApiError::NotFound(format!("no feed with id {id:?}")).into_response());
    }
    let wait = match query.wait.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(
                ApiError::BadRequest(format!("wait must be true or false, not {other:?}"))
                    .into_response(),
            );
        }
    };
    let refreshing = ask(&state, |tx| Control::Refresh(id.clone(), tx))
        .await
        .map_err(IntoResponse::into_response)?
        .map_err(|e| ApiError::NotFound(e).into_response())?;
    let config = state.config.load_full();
    let feed_url = url(&config, &format!("feeds/{id}/feed.atom"));
    if !wait {
        let body = serde_json::json!({
            "feed": id,
            "outcome": "polling",
            "joined": refreshing.joined,
            "feed_url": feed_url,
        });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let mut rx = refreshing.report;
    let report = match rx.wait_for(Option::is_some).await {
        Ok(r) => r.clone(),
        Err(_) => None,
    }
    .ok_or_else(|| ApiError::Internal("the poll ended without a report".into()).into_response())?;
    let (outcome, error) = match &report.outcome {
        Outcome::Stored { .. } => ("stored", None),
        Outcome::NotModified => ("not_modified", None),
        Outcome::Elsewhere => ("elsewhere", None),
        Outcome::Failed(f) => ("failed", Some(f.clone())),
    };
    let (new, updated) = match report.outcome {
        Outcome::Stored { new, updated, .. } => (new, updated),
        _ => (0, 0),
    };
    Ok(Json(serde_json::json!({
        "feed": report.feed,
        "outcome": outcome,
        "joined": refreshing.joined,
        "new": new,
        "updated": updated,
        "error": error,
        "next_poll": report.next_poll,
        "feed_url": feed_url,
    }))
    .into_response())
}
