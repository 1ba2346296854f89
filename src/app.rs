//! The composition root: opens the store, builds the client, starts the
//! poller and the HTTP server, and shuts them down in order.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fetch::Fetcher;
use crate::poller::comments::CommentOptions;
use crate::poller::schedule::Limits;
use crate::poller::{Pipeline, Poller};
use crate::server::{self, AppState};
use crate::store::Store;

/// How long shutdown waits for polls in flight before leaving them.
pub const POLL_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for open HTTP connections to finish.
pub const HTTP_GRACE: Duration = Duration::from_secs(5);

/// Opens the store and builds what a poll needs.
pub fn pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    if let Some(parent) = config.storage.path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let store = Store::open(&config.storage.path, config.storage.cache_bytes)?;
    store.set_recent_comments(config.output.recent_comments);
    Ok(Pipeline {
        store: Arc::new(store),
        fetcher: Fetcher::new(&config.poll)?,
        limits: Arc::new(Limits::new(config.poll.concurrency, config.poll.per_host)),
        comments: CommentOptions::from(config),
    })
}

/// Runs the daemon on `listener` until `shutdown` is cancelled: polls on
/// schedule and serves HTTP; then stops polling, drains connections and
/// flushes the store.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pipeline = pipeline(&config)?;
    let store = pipeline.store.clone();
    let config = Arc::new(ArcSwap::from_pointee(config));

    let mut poller = Poller::new(pipeline, shutdown.child_token());
    poller.apply(&config.load().feeds);

    let app = server::router(AppState::new(store.clone(), config.clone()));
    tracing::info!(
        address = %listener.local_addr()?,
        feeds = config.load().feeds.len(),
        "serving"
    );
    let stop = shutdown.clone();
    let server =
        axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
    let server = tokio::spawn(async move { server.await });

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    if !poller.stop(POLL_GRACE).await {
        tracing::warn!(
            "polls still in flight after {POLL_GRACE:?} were left; their writes are atomic"
        );
    }
    match tokio::time::timeout(HTTP_GRACE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("HTTP connections still open after {HTTP_GRACE:?} were closed"),
    }
    store.flush()?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        token.cancel();
    });
}
