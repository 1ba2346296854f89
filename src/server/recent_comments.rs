//! `GET /comments/recent.json`: the newest comments across all feeds; and
//! `GET /api/stories/{id}/comments/history`: one story's comment count over
//! time.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::model::{CountSource, ItemId, Timestamp};

/// Comments listed when the request gives no `?limit=`.
pub const DEFAULT_LIMIT: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/comments/recent.json", get(recent))
        .route("/api/stories/{id}/comments/history", get(history))
}

#[derive(Serialize)]
struct History {
    id: String,
    title: String,
    comment_count: Option<u32>,
    /// The count comes from the site-wide comments feed alone: a lower
    /// bound, and so is the gain.
    lower_bound: bool,
    /// `[output].heat_window`, and what the story gained in it.
    heat_window: String,
    comments_gained: u32,
    heat: f64,
    points: Vec<Point>,
}

#[derive(Serialize)]
struct Point {
    at: Timestamp,
    count: u32,
    source: CountSource,
}

async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<History>, ApiError> {
    let Some(id) = ItemId::from_hex(&id) else {
        return Err(ApiError::NotFound(format!("no story with id {id:?}")));
    };
    super::blocking(move || {
        let config = state.config.load_full();
        let Some(item) = state.store.item(&id)? else {
            return Err(ApiError::NotFound(format!(
                "no story with id {}",
                id.to_hex()
            )));
        };
        let window = config.output.heat_window;
        let heat = crate::stories::heat(&item.comment_history, window, chrono::Utc::now());
        Ok(Json(History {
            id: item.id.to_hex(),
            title: item.title,
            comment_count: item.comments.count,
            lower_bound: heat.lower_bound,
            heat_window: humantime::format_duration(window).to_string(),
            comments_gained: heat.gained,
            heat: (heat.heat * 100.0).round() / 100.0,
            points: (item.comment_history.iter())
                .map(|p| Point {
                    at: p.at,
                    count: p.count,
                    source: p.source,
                })
                .collect(),
        }))
    })
    .await
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
