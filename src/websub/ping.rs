//! `[websub] hub = "https://hub.example/"`: another hub pushes Paddock's
//! outputs; Paddock tells it when they change (`hub.mode=publish`,
//! `hub.url=` each changed output, the convention hubs such as
//! Superfeedr and websub.rocks accept). The hub is the operator's own
//! choice, so it is called as configured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Hub};
use crate::metrics::Metrics;
use crate::store::Store;

/// The shortest time between two rounds of pings: changes in between are
/// told in one round.
pub const PING_EVERY: Duration = Duration::from_secs(10);
/// Time for one ping.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// The outputs a ping names: the merged documents and each group's, in
/// every format.
pub fn topics(config: &Config) -> Vec<String> {
    let mut paths: Vec<String> = ["feed.atom", "feed.rss", "feed.json"]
        .map(String::from)
        .to_vec();
    for g in config.groups() {
        for f in ["feed.atom", "feed.rss", "feed.json"] {
            paths.push(format!("groups/{g}/{f}"));
        }
    }
    (paths.iter())
        .filter_map(|p| config.server.base_url.join(p).ok().map(String::from))
        .collect()
}

/// Pings the configured hub after the store changes, at most once per
/// [`PING_EVERY`], until `stop`.
pub async fn run(
    store: Arc<Store>,
    config: Arc<ArcSwap<Config>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PING_TIMEOUT)
        .user_agent(concat!(
            "paddock/",
            env!("CARGO_PKG_VERSION"),
            " (WebSub publisher)"
        ))
        .build()
    else {
        return;
    };
    // The first round goes out at start: the outputs may have changed
    // while Paddock was down, or in its first polls.
    let mut told = None;
    let mut last = Instant::now() - PING_EVERY;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let generation = store.generation();
        if told == Some(generation) || last.elapsed() < PING_EVERY {
            continue;
        }
        let config = config.load_full();
        let Some(Hub::External(hub)) = &config.websub.hub else {
            continue;
        };
        told = Some(generation);
        last = Instant::now();
        for topic in topics(&config) {
            let form = [("hub.mode", "publish"), ("hub.url", topic.as_str())];
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let sent = client
                .post(hub.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await;
            let result = match sent {
                Ok(r) if r.status().is_success() => "ok",
                Ok(r) => {
                    tracing::warn!(hub = %hub, status = %r.status(), "websub: the hub refused a ping");
                    "failed"
                }
                Err(e) => {
                    tracing::warn!(hub = %hub, error = %e, "websub: the hub could not be pinged");
                    "failed"
                }
            };
            metrics.record_websub("ping", result);
        }
    }
}
