//! Paddock polls car-news feeds, dedupes and stores their stories with
//! their comment counts, and republishes them merged over HTTP.
//!
//! A poll is a pipeline, one module per stage:
//!
//! | stage | module | knows |
//! |---|---|---|
//! | config | [`config`] | raw TOML -> validated [`config::Config`] |
//! | schedule | [`poller::schedule`] | when each feed is due; fetch limits |
//! | fetch | [`fetch`] | reqwest: conditional GET, caps, error kinds |
//! | parse | [`parse`] | feed-rs and quick-xml: bytes -> [`model::ParsedFeed`] |
//! | normalize | [`normalize`] | canonical links, stable ids, dedupe keys |
//! | store | [`store`] | sled: items, indexes, feed state |
//! | render | [`render`] | Atom, RSS, JSON Feed from stored items |
//! | serve | [`server`] | axum routes over the store and render |
//!
//! [`model`] is the plain data they hand each other, [`text`] the shared
//! HTML-to-text helpers, [`poller`] runs the pipeline per feed
//! ([`poller::refresh_feed`]), and [`app`] wires it all together.

pub mod app;
pub mod cli;
pub mod comment_feed;
pub mod config;
pub mod fetch;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod opml;
pub mod parse;
pub mod poller;
pub mod query;
pub mod render;
pub mod server;
pub mod store;
pub mod stories;
pub mod text;
