//! HTTP with axum. [`router`] builds the whole app from its state, so tests
//! drive it without a socket. The server only reads the store and renders;
//! it never fetches.

mod cache;
mod comments;
mod digest;
mod error;
mod feeds;

pub use error::ApiError;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::get;
use tower_http::compression::CompressionLayer;

use crate::config::Config;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    /// Swapped whole on reload; handlers take one snapshot per request.
    pub config: Arc<ArcSwap<Config>>,
    pub cache: Arc<cache::RenderCache>,
}

impl AppState {
    pub fn new(store: Arc<Store>, config: Arc<ArcSwap<Config>>) -> AppState {
        AppState {
            store,
            config,
            cache: Arc::default(),
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(feeds::router())
        .merge(comments::router())
        .merge(digest::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(state)
        .layer(CompressionLayer::new())
}
