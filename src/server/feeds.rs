//! The merged outputs: all feeds, one group, one feed; Atom, RSS, JSON Feed.
//! Rendered once per store generation and served from memory.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use super::cache::{Rendered, respond};
use super::{ApiError, AppState};
use crate::config::Config;
use crate::model::Item;
use crate::query::{directory_for, group_members, url};
use crate::render::{self, Channel};

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

    fn rising_file(self) -> &'static str {
        match self {
            Format::Atom => "rising.atom",
            Format::Rss => "rising.rss",
            Format::Json => "rising.json",
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
    /// The stories gaining comments, hottest first: all, or one group's.
    Rising(Option<String>),
}

impl Scope {
    /// The output's path, as written into its cache key and its self link.
    fn path(&self, format: Format) -> Cow<'static, str> {
        let file = format.file();
        match self {
            Scope::All => Cow::Borrowed(file),
            Scope::Group(g) => Cow::Owned(format!("groups/{g}/{file}")),
            Scope::Feed(id) => Cow::Owned(format!("feeds/{id}/{file}")),
            Scope::Rising(None) => Cow::Borrowed(format.rising_file()),
            Scope::Rising(Some(g)) => Cow::Owned(format!("groups/{g}/{}", format.rising_file())),
        }
    }
}

type Params = Query<HashMap<String, String>>;

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for format in Format::ALL {
        let file = format.file();
        r = r
            .route(
                &format!("/{file}"),
                get(move |s: State<AppState>, h: HeaderMap, q: Params| {
                    merged(s, h, q, Scope::All, format)
                }),
            )
            .route(
                &format!("/groups/{{group}}/{file}"),
                get(
                    move |s: State<AppState>, h: HeaderMap, Path(g): Path<String>, q: Params| {
                        merged(s, h, q, Scope::Group(g), format)
                    },
                ),
            )
            .route(
                &format!("/{}", format.rising_file()),
                get(move |s: State<AppState>, h: HeaderMap, q: Params| {
                    merged(s, h, q, Scope::Rising(None), format)
                }),
            )
            .route(
                &format!("/groups/{{group}}/{}", format.rising_file()),
                get(
                    move |s: State<AppState>, h: HeaderMap, Path(g): Path<String>, q: Params| {
                        merged(s, h, q, Scope::Rising(Some(g)), format)
                    },
                ),
            )
            .route(
                &format!("/feeds/{{id}}/{file}"),
                get(
                    move |s: State<AppState>, h: HeaderMap, Path(id): Path<String>, q: Params| {
                        merged(s, h, q, Scope::Feed(id), format)
                    },
                ),
            );
    }
    r
}

async fn merged(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    scope: Scope,
    format: Format,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let limit = crate::query::limit(query.get("limit").map(String::as_str), config.output.items)?;
    // A reload counts the config's version up, so it keys new entries. A
    // rising feed's heat cools as time passes: it is rendered again each
    // minute even when no story changed.
    let mut key = format!("{}/{}?{limit}", config.version, scope.path(format));
    if let Scope::Rising(_) = scope {
        key.push_str(&format!("@{}", chrono::Utc::now().timestamp() / 60));
    }
    let generation = state.store.generation();
    if let Some(hit) = state.cache.peek(&key, generation) {
        return Ok(respond(&headers, &hit));
    }
    let rendered = super::blocking(move || {
        state.cache.get_or_render(&key, generation, || {
            render(&state, &config, &scope, format, limit)
        })
    })
    .await?;
    Ok(respond(&headers, &rendered))
}

fn render(
    state: &AppState,
    config: &Config,
    scope: &Scope,
    format: Format,
    limit: usize,
) -> Result<Rendered, ApiError> {
    // The rules leave stories out as they are read, so `limit` still
    // counts stories the output carries.
    let now = chrono::Utc::now();
    let kept = |i: &Item| config.rules.keeps(i, now);
    let (items, title) = match scope {
        Scope::Rising(group) => {
            return render_rising(state, config, group.as_deref(), scope, format, limit, now);
        }
        Scope::All => (
            state.store.latest(limit, &kept)?,
            config.server.title.clone(),
        ),
        Scope::Group(g) => {
            let members = group_members(config, g)?;
            let in_group = |i: &Item| i.feeds().any(|f| members.contains(&f)) && kept(i);
            let items = state.store.latest(limit, &in_group)?;
            (items, format!("{}: {g}", config.server.title))
        }
        Scope::Feed(id) => {
            let Some(feed) = config.feed(id) else {
                return Err(ApiError::NotFound(format!("no feed with id {id:?}")));
            };
            let title = match &feed.title {
                Some(t) => t.clone(),
                None => state
                    .store
                    .feed_state(id)?
                    .title
                    .unwrap_or_else(|| id.clone()),
            };
            (state.store.latest_in_feed(id, limit, &kept)?, title)
        }
    };
    let channel = Channel {
        title,
        self_url: url(config, &scope.path(format)),
        home_url: url(config, ""),
        updated: chrono::Utc::now(),
        hub: config.hub_url(),
    };
    let feeds = directory_for(state.store.as_ref(), config, &items);
    let body = match format {
        Format::Atom => render::atom(&channel, &items, &feeds),
        Format::Rss => render::rss(&channel, &items, &feeds),
        Format::Json => render::json_feed(&channel, &items, &feeds),
    };
    let last_modified = items.iter().map(|i| i.last_changed).max();
    Ok(advertised(
        Rendered::new(body, format.content_type(), last_modified),
        config,
        &channel,
    ))
}

/// The output with its hub in a `Link` header, when it has one.
fn advertised(rendered: Rendered, config: &Config, channel: &Channel) -> Rendered {
    match config.hub_url() {
        Some(hub) => rendered.with_hub(&hub, &channel.self_url),
        None => rendered,
    }
}

/// A rising feed: the stories gaining comments, hottest first, each with
/// its gain (a first line of the summary in Atom and RSS, `_paddock`
/// fields in JSON Feed).
fn render_rising(
    state: &AppState,
    config: &Config,
    group: Option<&str>,
    scope: &Scope,
    format: Format,
    limit: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Rendered, ApiError> {
    let members = match group {
        Some(g) => Some(group_members(config, g)?),
        None => None,
    };
    let hot = crate::query::rising(state.store.as_ref(), config, members.as_deref(), limit, now)?;
    let title = match group {
        Some(g) => format!("{}: {g}, rising", config.server.title),
        None => format!("{}: rising", config.server.title),
    };
    let channel = Channel {
        title,
        self_url: url(config, &scope.path(format)),
        home_url: url(config, ""),
        updated: now,
        hub: config.hub_url(),
    };
    let feeds = directory_for(state.store.as_ref(), config, hot.iter().map(|(i, _)| i));
    let body = match format {
        Format::Json => {
            let (items, heats): (Vec<Item>, Vec<_>) = hot.iter().cloned().unzip();
            render::json_feed_rising(&channel, &items, &heats, &feeds)
        }
        Format::Atom | Format::Rss => {
            let shown: Vec<Item> = (hot.iter())
                .map(|(i, h)| render::with_gain_line(i, h, now))
                .collect();
            match format {
                Format::Atom => render::atom(&channel, &shown, &feeds),
                _ => render::rss(&channel, &shown, &feeds),
            }
        }
    };
    let last_modified = hot.iter().map(|(i, _)| i.last_changed).max();
    Ok(advertised(
        Rendered::new(body, format.content_type(), last_modified),
        config,
        &channel,
    ))
}
