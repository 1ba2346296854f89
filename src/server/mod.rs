//! HTTP with axum. [`router`] builds the whole app from its state, so tests
//! drive it without a socket. The server only reads the store and renders;
//! it never fetches (a refresh asks the daemon, which polls).

mod api;
mod cache;
mod control;
mod digest;
mod error;
mod feeds;
pub mod listen;
mod recent_comments;
mod river;
mod rules;
mod websub;

pub use control::{Control, Refreshing};
pub use error::ApiError;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use tokio::sync::mpsc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;

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
    /// What the rules drop, as last counted.
    pub tallies: Arc<rules::Tallies>,
    /// The built-in WebSub hub, when `[websub] hub = "builtin"`.
    pub hub: Option<Arc<crate::websub::Hub>>,
    /// Subscriptions to the hubs feeds advertise.
    pub subscriber: Arc<crate::websub::subscriber::Subscriber>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Arc<Store>, config: Arc<ArcSwap<Config>>) -> AppState {
        let metrics: Arc<Metrics> = Arc::default();
        let subscriber = crate::websub::subscriber::Subscriber::new(
            store.clone(),
            config.clone(),
            metrics.clone(),
        );
        AppState(Arc::new(Shared {
            store,
            config,
            cache: Arc::default(),
            metrics,
            control: None,
            status: Arc::default(),
            tallies: Arc::default(),
            hub: None,
            subscriber,
        }))
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> AppState {
        let shared = Arc::make_mut(&mut self.0);
        shared.subscriber = crate::websub::subscriber::Subscriber::new(
            shared.store.clone(),
            shared.config.clone(),
            metrics.clone(),
        );
        shared.metrics = metrics;
        self
    }

    pub fn with_hub(mut self, hub: Arc<crate::websub::Hub>) -> AppState {
        Arc::make_mut(&mut self.0).hub = Some(hub);
        self
    }

    pub fn with_control(mut self, control: mpsc::Sender<Control>) -> AppState {
        Arc::make_mut(&mut self.0).control = Some(control);
        self
    }
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(feeds::router())
        .merge(recent_comments::router())
        .merge(digest::router())
        .merge(api::router())
        .merge(rules::router())
        .merge(websub::router())
        .merge(river::router());
    serve_routes(routes, state)
}

/// The layers every route is served through: a panic in a handler becomes
/// one 500 and a log line naming the route (never a dropped connection),
/// every request is counted, answers are compressed when asked.
fn serve_routes(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .with_state(state)
        .layer(CompressionLayer::new())
}

/// Runs a store read and its rendering on the blocking pool: a request
/// that reads and renders many stories never holds a runtime thread, so
/// `/healthz` and every other connection keep answering meanwhile. A panic
/// in it goes on unwinding here, where the panic layer catches it.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ApiError::Internal(format!("a render was cancelled: {e}"))),
    }
}

/// Marks an answer made from a handler's panic, for [`count_request`] to
/// log with the route.
#[derive(Clone)]
struct Panicked(Arc<String>);

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into());
    let mut response =
        ApiError::Internal("the request failed; the error is in the daemon's log".into())
            .into_response();
    response
        .extensions_mut()
        .insert(Panicked(Arc::new(message)));
    response
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
    if let Some(Panicked(message)) = response.extensions().get::<Panicked>() {
        tracing::error!(route = %route, panic = %message, "a request handler panicked");
    }
    state
        .metrics
        .record_http(route, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use std::time::Duration;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_costs_one_500_not_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&dir.path().join("data"), 1 << 20).unwrap();
        let config = Config::parse("", &dir.path().join("feeds.toml")).unwrap();
        let state = AppState::new(store, Arc::new(ArcSwap::from_pointee(config)));
        let routes = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("a bug in a handler");
                }
                "never"
            }),
        );
        let app = serve_routes(routes, state.clone());
        let request = || Request::get("/boom").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["error"].as_str().unwrap().contains("log"), "{body}");
        // The app still answers, and the 500 was counted.
        assert_eq!(app.oneshot(request()).await.unwrap().status(), 500);
        let metrics = state
            .metrics
            .render(std::iter::empty(), Duration::ZERO, &[]);
        assert!(metrics.contains("/boom"), "{metrics}");
    }
}
