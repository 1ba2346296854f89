//! The merged outputs: all feeds, one group, one feed; Atom, RSS, JSON Feed.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AppState, error::ApiError};
use crate::config::{Config, MAX_LIMIT, Source};
use crate::model::Item;
use crate::render::{self, Channel, Directory, FeedInfo};

#[derive(Debug, Clone, Copy)]
enum Format {
    Atom,
    Rss,
    Json,
}

impl Format {
    const ALL: [Format; 3] = [Format::Atom, Format::Rss, Format::Json];

    fn file(self) -> &'static str {
        match self {
            Format::Atom => "feed.atom",
            Format::Rss => "feed.rss",
            Format::Json => "feed.json",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// Which stories an output shows.
enum Scope {
    All,
    Group(String),
    Feed(String),
}

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for format in Format::ALL {
        let file = format.file();
        r = r
            .route(
                &format!("/{file}"),
                get(
                    move |s: State<AppState>, q: Query<HashMap<String, String>>| {
                        merged(s, q, Scope::All, format)
                    },
                ),
            )
            .route(
                &format!("/groups/{{group}}/{file}"),
                get(
                    move |s: State<AppState>,
                          Path(g): Path<String>,
                          q: Query<HashMap<String, String>>| {
                        merged(s, q, Scope::Group(g), format)
                    },
                ),
            )
            .route(
                &format!("/feeds/{{id}}/{file}"),
                get(
                    move |s: State<AppState>,
                          Path(id): Path<String>,
                          q: Query<HashMap<String, String>>| {
                        merged(s, q, Scope::Feed(id), format)
                    },
                ),
            );
    }
    r
}

/// `?limit=N`: 1 to [`MAX_LIMIT`], default `[output].items`.
pub fn limit(query: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"
            ))),
        },
    }
}

async fn merged(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    scope: Scope,
    format: Format,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let limit = limit(&query, config.output.items)?;
    let (items, title, path) = match &scope {
        Scope::All => (
            state.store.latest(limit, |_| true)?,
            config.server.title.clone(),
            format.file().to_string(),
        ),
        Scope::Group(g) => {
            let members: Vec<&str> = config
                .feeds
                .iter()
                .filter(|f| f.groups.contains(g))
                .map(|f| f.id.as_str())
                .collect();
            if members.is_empty() {
                return Err(ApiError::NotFound(format!("no group named {g:?}")));
            }
            let items = state
                .store
                .latest(limit, |i: &Item| i.feeds().any(|f| members.contains(&f)))?;
            (
                items,
                format!("{}: {g}", config.server.title),
                format!("groups/{g}/{}", format.file()),
            )
        }
        Scope::Feed(id) => {
            let Some(feed) = config.feed(id) else {
                return Err(ApiError::NotFound(format!("no feed with id {id:?}")));
            };
            let title = state
                .store
                .feed_state(id)?
                .title
                .filter(|_| feed.title.is_none())
                .unwrap_or_else(|| feed.display_title().to_string());
            (
                state.store.latest_in_feed(id, limit)?,
                title,
                format!("feeds/{id}/{}", format.file()),
            )
        }
    };
    let channel = Channel {
        title,
        self_url: url(&config, &path),
        home_url: url(&config, ""),
        updated: chrono::Utc::now(),
    };
    let feeds = directory(&state, &config);
    let body = match format {
        Format::Atom => render::atom(&channel, &items, &feeds),
        Format::Rss => render::rss(&channel, &items, &feeds),
        Format::Json => render::json_feed(&channel, &items, &feeds),
    };
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

fn url(config: &Config, path: &str) -> String {
    config
        .server
        .base_url
        .join(path)
        .map(String::from)
        .unwrap_or_else(|_| format!("{}{path}", config.server.base_url))
}

/// How outputs name each configured feed.
fn directory(state: &AppState, config: &Config) -> Directory {
    config
        .feeds
        .iter()
        .map(|f| {
            let stored = state.store.feed_state(&f.id).unwrap_or_default();
            let info = FeedInfo {
                id: f.id.clone(),
                title: f
                    .title
                    .clone()
                    .or(stored.title)
                    .unwrap_or_else(|| f.id.clone()),
                url: match &f.source {
                    Source::Http(u) => u.to_string(),
                    Source::File(_) => url(config, &format!("feeds/{}/feed.rss", f.id)),
                },
                site: stored.site_link,
            };
            (f.id.clone(), info)
        })
        .collect()
}
