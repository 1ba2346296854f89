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
//! | normalize | [`normalize`] | canonical links, stable ids, dedupe, bounds |
//! | comments | [`comment_feed`] | a comments feed -> comments and their stories |
//! | rules | [`stories`] | ownership, `also_in`, counts, comment joins |
//! | store | [`store`] | the `Storage` boundary; sled behind it |
//! | query | [`query`] | output parameters and the digest, over the store |
//! | render | [`render`] | Atom, RSS, JSON Feed, digest, river |
//! | serve | [`server`] | axum routes over the store and render |
//!
//! [`model`] is the plain data they hand each other, [`text`] the shared
//! HTML and text helpers, [`poller`] runs the pipeline per feed
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
pub mod rules;
pub mod server;
pub mod store;
pub mod stories;
pub mod text;
pub mod websub;
