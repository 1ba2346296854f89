//! HTTP with axum. [`router`] builds the whole app from its state, so tests
//! drive it without a socket. The server only reads the store and renders;
//! it never fetches (a refresh asks the daemon, which polls).

mod api;
mod cache;
mod comments;
mod digest;
mod error;
mod feeds;
mod river;

pub use error::ApiError;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::mpsc;
use tower_http::compression::CompressionLayer;

use crate::app::Control;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler reads: one shared value, so handing it to a
/// request is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Clone)]
pub struct Shared {
    pub store: Arc<Store>,
    /// Swapped whole on reload; handlers take one snapshot per request.
    pub config: Arc<ArcSwap<Config>>,
    pub cache: Arc<cache::RenderCache>,
    pub metrics: Arc<Metrics>,
    /// The running daemon, for the admin routes; `None` in tests that
    /// only read.
    pub control: Option<mpsc::Sender<Control>>,
    /// The last reload's error, until a good config arrives.
    pub status: Arc<ArcSwapOption<String>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Arc<Store>, config: Arc<ArcSwap<Config>>) -> AppState {
        AppState(Arc::new(Shared {
            store,
            config,
            cache: Arc::default(),
            metrics: Arc::default(),
            control: None,
            status: Arc::default(),
        }))
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> AppState {
        Arc::make_mut(&mut self.0).metrics = metrics;
        self
    }

    pub fn with_control(mut self, control: mpsc::Sender<Control>) -> AppState {
        Arc::make_mut(&mut self.0).control = Some(control);
        self
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(feeds::router())
        .merge(comments::router())
        .merge(digest::router())
        .merge(api::router())
        .merge(river::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .with_state(state)
        .layer(CompressionLayer::new())
}

/// Counts every request by its route pattern and status.
async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .record_http(route, response.status().as_u16(), started.elapsed());
    response
}
