//! The HTTP listener. axum's `serve` keeps a connection as long as its
//! client likes; this one sheds slow clients: a client must send each
//! request's headers within `[server].header_timeout` of connecting or of
//! its previous response (an idle keep-alive connection is closed then
//! too), and at most `[server].max_connections` connections are open at
//! once. More wait in the kernel's listen backlog until one closes, so
//! the daemon never runs out of file descriptors for its store and its
//! fetches.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

/// How long the accept loop rests after an accept error (out of file
/// descriptors, most likely) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the listener holds every connection to.
#[derive(Debug, Clone, Copy)]
pub struct Shedding {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

impl From<&ServerConfig> for Shedding {
    fn from(c: &ServerConfig) -> Shedding {
        Shedding {
            header_timeout: c.header_timeout,
            max_connections: c.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets
/// open connections finish their requests for up to `grace`. Returns
/// whether they all did.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Shedding,
    shutdown: CancellationToken,
    grace: Duration,
) -> bool {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; trying again shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out ends its connection;
            // that is its business, not an error of ours.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok()
}
