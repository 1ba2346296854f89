//! `GET /comments/recent.json`: the newest comments across all feeds.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::model::Timestamp;

/// Comments listed when the request gives no `?limit=`.
pub const DEFAULT_LIMIT: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new().route("/comments/recent.json", get(recent))
}

#[derive(Serialize)]
struct Recent {
    comments: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    author: Option<String>,
    text: String,
    url: Option<String>,
    published: Option<Timestamp>,
    /// The story it belongs to; `null` while its story is not stored.
    item_id: Option<String>,
    item_title: Option<String>,
    item_url: Option<String>,
    feed: Option<String>,
}

async fn recent(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Recent>, ApiError> {
    let limit = crate::query::limit(query.get("limit").map(String::as_str), DEFAULT_LIMIT)?;
    super::blocking(move || recent_now(&state, limit)).await
}

fn recent_now(state: &AppState, limit: usize) -> Result<Json<Recent>, ApiError> {
    let mut comments = Vec::new();
    let config = state.config.load_full();
    let kept = crate::query::comment_kept(state.store.as_ref(), &config, chrono::Utc::now());
    for rc in state.store.recent_comments(limit, &kept)? {
        let item = match rc.item {
            Some(id) => state.store.item(&id)?,
            None => None,
        };
        comments.push(Entry {
            author: rc.comment.author,
            text: rc.comment.text,
            url: rc.comment.url,
            published: rc.comment.published,
            item_id: rc.item.map(|id| id.to_hex()),
            item_title: item.as_ref().map(|i| i.title.clone()),
            item_url: item.as_ref().and_then(|i| i.link.clone()),
            feed: item.map(|i| i.feed),
        });
    }
    Ok(Json(Recent { comments }))
}
