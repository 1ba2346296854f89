//! The composition root: opens the store, builds the client, starts the
//! poller and the HTTP server, and shuts them down in order.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::fetch::Fetcher;
use crate::metrics::Metrics;
use crate::poller::schedule::Limits;
use crate::poller::{InFlight, Pipeline, PollOptions, Poller};
use crate::server::{self, AppState, Control, Refreshing};
use crate::store::Store;

/// Threads for store calls and renders (the runtime's blocking pool).
pub const BLOCKING_THREADS: usize = 64;

/// How long shutdown waits for polls in flight before leaving them.
pub const POLL_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for open HTTP connections to finish.
pub const HTTP_GRACE: Duration = Duration::from_secs(5);

/// Opens the store and builds what a poll needs.
pub fn pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    if let Some(parent) = config.storage.path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let store = crate::store::open_configured(&config.storage)?;
    rebuild(config, store, Arc::default(), InFlight::default())
}

/// A pipeline on an open store, with settings from `config`.
fn rebuild(
    config: &Config,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    in_flight: InFlight,
) -> anyhow::Result<Pipeline> {
    store.set_recent_comments(config.output.recent_comments);
    store.set_min_free(config.storage.min_free_bytes);
    Ok(Pipeline {
        store,
        fetcher: Fetcher::new(&config.poll)?,
        limits: Arc::new(Limits::new(config.poll.concurrency, config.poll.per_host)),
        options: PollOptions::from(config),
        metrics,
        in_flight,
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
    let metrics = pipeline.metrics.clone();
    let config = Arc::new(ArcSwap::from_pointee(config));

    let mut poller = Poller::new(pipeline, shutdown.child_token());
    poller.apply(config.load_full());

    let (control, mut requests) = mpsc::channel(16);
    // Edits of the config file, and SIGHUP, reload it like POST /api/reload.
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let _watcher = watch(&config.load().file, changed.clone());
    let mut hangups = hangups();
    let mut state = AppState::new(store.clone(), config.clone())
        .with_metrics(metrics.clone())
        .with_control(control);
    let hub = match config.load().websub.hub {
        Some(crate::config::Hub::Builtin) => {
            let hub = crate::websub::Hub::new(store.clone(), config.clone(), metrics.clone());
            state = state.with_hub(hub.clone());
            Some(hub)
        }
        _ => None,
    };
    let status = state.status.clone();
    tokio::spawn(state.subscriber.clone().run(shutdown.child_token()));
    let app = server::router(state);
    if let Some(hub) = hub {
        hub.serve_from(app.clone());
        tokio::spawn(hub.run(shutdown.child_token()));
    }
    if let Some(crate::config::Hub::External(_)) = config.load().websub.hub {
        let (s, c, m) = (store.clone(), config.clone(), metrics.clone());
        tokio::spawn(crate::websub::ping::run(s, c, m, shutdown.child_token()));
    }
    tracing::info!(
        address = %listener.local_addr()?,
        feeds = config.load().feeds.len(),
        "serving"
    );
    let retention = tokio::spawn(retain(
        store.clone(),
        config.clone(),
        shutdown.child_token(),
    ));
    let server = tokio::spawn(server::listen::serve(
        listener,
        app,
        server::listen::Shedding::from(&config.load().server),
        shutdown.clone(),
        HTTP_GRACE,
    ));

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = changes.recv() => {
                // Editors write a file in several steps: let them finish.
                tokio::time::sleep(RELOAD_SETTLE).await;
                while changes.try_recv().is_ok() {}
                let result = reload(&config, &mut poller).map_err(|e| e.to_string());
                status.store(result.err().map(Arc::new));
            }
            Some(()) = hangups.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                let result = reload(&config, &mut poller).map_err(|e| e.to_string());
                status.store(result.err().map(Arc::new));
            }
            Some(request) = requests.recv() => match request {
                Control::Reload(reply) => {
                    let result = reload(&config, &mut poller).map_err(|e| e.to_string());
                    status.store(result.as_ref().err().map(|e| Arc::new(e.clone())));
                    let _ = reply.send(result);
                }
                Control::Refresh(id, reply) => {
                    let result = match config.load().feed(&id) {
                        Some(feed) => {
                            let (report, started) = poller.pipeline().start(feed);
                            Ok(Refreshing { report, joined: !started })
                        }
                        None => Err(format!("no feed with id {id:?}")),
                    };
                    let _ = reply.send(result);
                }
            },
        }
    }

    tracing::info!("shutting down");
    if !poller.stop(POLL_GRACE).await {
        tracing::warn!(
            "polls still in flight after {POLL_GRACE:?} were left; their writes are atomic"
        );
    }
    match server.await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("HTTP connections still open after {HTTP_GRACE:?} were closed"),
        Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
    }
    retention.abort();
    // A store that cannot flush (a full disk) keeps what it had flushed:
    // every write is one atomic batch. Say so, and stop as asked.
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "the store's last writes could not be flushed; what was flushed before is kept");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Re-reads the config file and, when it is valid, swaps it in whole: feed
/// tasks are started, stopped or restarted to match. A bad file changes
/// nothing; its `FILE:LINE:COL: message` is returned.
pub fn reload(config: &ArcSwap<Config>, poller: &mut Poller) -> Result<(), ConfigError> {
    let old = config.load_full();
    let mut new = match Config::reload(&old) {
        Ok(new) => new,
        Err(e) => {
            tracing::error!("{e}");
            return Err(e);
        }
    };
    if new.server.listen != old.server.listen || new.storage.path != old.storage.path {
        tracing::warn!("[server].listen and [storage].path take effect only after a restart");
    }
    poller
        .pipeline()
        .store
        .set_min_free(new.storage.min_free_bytes);
    new.version = old.version + 1;
    let new = Arc::new(new);
    if new.poll != old.poll || new.output != old.output {
        let current = poller.pipeline();
        let (store, metrics) = (current.store.clone(), current.metrics.clone());
        match rebuild(&new, store, metrics, current.in_flight.clone()) {
            Ok(pipeline) => poller.reconfigure(pipeline, new.clone()),
            Err(e) => {
                tracing::error!(error = %e, "cannot apply the new [poll] settings; keeping the old ones");
                poller.apply(new.clone());
            }
        }
    } else {
        poller.apply(new.clone());
    }
    tracing::info!(feeds = new.feeds.len(), "config reloaded");
    config.store(new);
    Ok(())
}

/// How often retention runs (and once at start).
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Prunes the store on a timer, in the background, with the config of the
/// moment. A pass is a series of atomic batches, so stopping mid-way is safe.
async fn retain(store: Arc<Store>, config: Arc<ArcSwap<Config>>, stop: CancellationToken) {
    loop {
        let c = config.load_full();
        let cutoff = crate::model::earlier(chrono::Utc::now(), c.storage.retention);
        let feeds: Vec<String> = c.feeds.iter().map(|f| f.id.clone()).collect();
        let max = c.storage.max_items_per_feed;
        let s = store.clone();
        let pass = tokio::task::spawn_blocking(move || {
            let ids: Vec<&str> = feeds.iter().map(String::as_str).collect();
            s.prune(cutoff, max, &ids, chrono::Utc::now())
        })
        .await;
        match pass {
            Ok(Ok(p))
                if p.old
                    + p.over_limit
                    + p.tombstones_expired
                    + p.waiting_comments
                    + p.comments
                    > 0 =>
            {
                tracing::info!(
                    old = p.old,
                    over_limit = p.over_limit,
                    tombstones = p.tombstones_expired,
                    waiting_comments = p.waiting_comments,
                    comments = p.comments,
                    "retention pruned"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed; it runs again later"),
            Err(e) => {
                tracing::error!(error = %e, "retention stopped unexpectedly; it runs again later")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}

/// After the first file event, how long to wait for the rest of an
/// editor's save before reloading once.
pub const RELOAD_SETTLE: Duration = Duration::from_millis(300);

/// Watches the config file's directory (editors save by writing a new file
/// and renaming it over the old one, which a watch on the file itself
/// would lose) and signals `changed` when the file is touched. `None`, with
/// a warning, when the platform cannot watch: SIGHUP and the admin route
/// still reload.
fn watch(file: &std::path::Path, changed: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let name = file.file_name()?.to_os_string();
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()));
        if relevant {
            // A full channel already holds a pending reload.
            let _ = changed.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP or POST /api/reload");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the config directory; reload with SIGHUP or POST /api/reload");
        return None;
    }
    Some(watcher)
}

/// A message per SIGHUP (none where there are no signals).
fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = tx.try_send(());
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
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
