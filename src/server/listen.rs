//! The HTTP listener. axum's `serve` keeps a connection as long as its
//! client likes; this one sheds slow clients: a client must send each
//! request's headers within `[server].header_timeout` of connecting or of
//! its previous response (an idle keep-alive connection is closed then
//! too), a response the client stops reading is dropped once no byte of
//! it has gone out for as long, and at most `[server].max_connections`
//! connections are open at once. More wait in the kernel's listen backlog
//! until one closes, so the daemon never runs out of file descriptors for
//! its store and its fetches.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
        let stream = WriteDeadline::new(stream, limits.header_timeout);
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

/// A connection whose writes fail once they have made no progress for
/// `limit`: a client that asks for a large feed and never reads it would
/// otherwise hold its connection slot for ever.
struct WriteDeadline<T> {
    io: T,
    limit: Duration,
    /// Armed when a write could not go on; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, limit: Duration) -> WriteDeadline<T> {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    /// What a write that could not go on answers: wait, or give up once it
    /// has waited `limit`.
    fn waiting<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<R>(
        &mut self,
        done: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match done {
            Poll::Pending => self.waiting(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let done = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(done, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let done = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(done, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let done = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(done, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_reader_that_stops_reading_is_dropped_one_that_reads_is_not() {
        let limit = Duration::from_millis(200);
        // A pipe that holds 64 bytes: writes stall once the reader stops.
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut conn = WriteDeadline::new(ours, limit);
        let body = vec![b'x'; 4096];
        let started = std::time::Instant::now();
        let err = conn.write_all(&body).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit);

        // A slow reader that keeps reading is never cut off, however long
        // the whole write takes.
        let (ours, mut theirs2) = tokio::io::duplex(64);
        let mut conn = WriteDeadline::new(ours, limit);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match theirs2.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got.len()
        });
        conn.write_all(&body[..1024]).await.unwrap();
        conn.shutdown().await.unwrap();
        drop(conn);
        assert_eq!(reader.await.unwrap(), 1024);
    }
}
