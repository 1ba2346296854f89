//! `GET /digest.json`: the same document as `paddock digest`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use super::cache::{Rendered, etag_of, respond};
use super::{ApiError, AppState};
use crate::query::{DigestQuery, digest_json};

pub fn router() -> Router<AppState> {
    Router::new().route("/digest.json", get(digest))
}

async fn digest(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let query = DigestQuery {
        since: query.get("since").cloned(),
        group: query.get("group").cloned(),
        limit: query.get("limit").cloned(),
    };
    // Cached per query and store generation, like the feeds: while the
    // store is unchanged no story or comment has been stamped since the
    // cached window's end, so it chains as a fresh one would. A window
    // that starts a duration back from now moves with the clock: it is
    // cached for the second it was asked in.
    let absolute = (query.since.as_deref())
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).is_ok());
    let mut key = format!(
        "{}/digest.json?since={}&group={}&limit={}",
        config.version,
        query.since.as_deref().unwrap_or(""),
        query.group.as_deref().unwrap_or(""),
        query.limit.as_deref().unwrap_or("")
    );
    if !absolute {
        key.push_str(&format!("@{}", chrono::Utc::now().timestamp()));
    }
    let generation = state.store.generation();
    if let Some(hit) = state.cache.peek(&key, generation) {
        return Ok(respond(&headers, &hit));
    }
    let rendered = super::blocking(move || {
        state
            .cache
            .get_or_render(&key, generation, || render(&state, &config, &query))
    })
    .await?;
    Ok(respond(&headers, &rendered))
}

fn render(
    state: &AppState,
    config: &crate::config::Config,
    query: &DigestQuery,
) -> Result<Rendered, ApiError> {
    let body = digest_json(state.store.as_ref(), config, query)?;
    // The window's edges move with the clock; the ETag covers the content,
    // so a client asking again with nothing new gets a 304.
    let mut doc: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let newest = doc["items"][0]["first_seen"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc());
    if let Some(obj) = doc.as_object_mut() {
        for volatile in ["generated_at", "until", "next_since", "since"] {
            obj.remove(volatile);
        }
    }
    // A poll that changed nothing moves last_success; that alone is no news.
    for feed in doc["feeds"].as_array_mut().into_iter().flatten() {
        if let Some(f) = feed.as_object_mut() {
            f.remove("last_success");
        }
    }
    let etag = etag_of(doc.to_string().as_bytes());
    Ok(Rendered::with_etag(body, "application/json", newest, etag))
}
