//! The built-in hub (`[websub] hub = "builtin"`): readers subscribe to
//! Paddock's own outputs at `POST {base_url}websub` (W3C WebSub), the hub
//! verifies their intent with a challenge, keeps their subscriptions in
//! the store, and when an output's content changes it pushes the new
//! document to each subscriber, signed with the subscriber's secret.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use url::Url;

use super::safety;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::{Timestamp, later};
use crate::store::Store;

/// The store's record kind for the hub's subscriptions.
pub const KIND: &str = "websub";
/// The lease a subscriber gets when it asks for none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10 * 86400);
/// The shortest and longest lease granted.
pub const LEASES: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30 * 86400));
/// Verifications of intent in flight at once; more are refused (429).
pub const MAX_PENDING: usize = 64;
/// Subscriptions kept at most; more are refused.
pub const MAX_SUBSCRIPTIONS: usize = 10_000;
/// Longest callback URL and secret, in bytes (the spec caps secrets at 200).
pub const MAX_CALLBACK: usize = 2048;
pub const MAX_SECRET: usize = 200;
/// Time for one call to a callback (verification or push).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A callback's answer read at most (a challenge is short).
pub const MAX_ANSWER: usize = 4096;
/// Attempts to push one change to one subscriber, and the wait before
/// the second (doubling after).
pub const PUSH_ATTEMPTS: u32 = 3;
pub const PUSH_BACKOFF: Duration = Duration::from_secs(2);
/// How often the hub looks for changed outputs.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A subscriber's subscription, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subscription {
    pub topic: String,
    pub callback: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub lease_until: Timestamp,
    pub since: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Subscribe,
    Unsubscribe,
}

/// A `POST /websub` request, as given.
#[derive(Debug, Clone)]
pub struct Asked {
    pub mode: Mode,
    pub topic: String,
    pub callback: String,
    pub lease_seconds: Option<u64>,
    pub secret: Option<String>,
}

/// Why a request is refused at once (a `4xx` with this sentence).
#[derive(Debug, PartialEq)]
pub enum Refused {
    Bad(String),
    Busy,
}

pub struct Hub {
    store: Arc<Store>,
    config: Arc<ArcSwap<Config>>,
    metrics: Arc<Metrics>,
    pending: AtomicUsize,
    /// The app's routes, to render an output as a reader would get it.
    router: OnceLock<Router>,
    /// The ETag last pushed (or seen, at start) per topic.
    pushed: Mutex<HashMap<String, String>>,
}

impl Hub {
    pub fn new(store: Arc<Store>, config: Arc<ArcSwap<Config>>, metrics: Arc<Metrics>) -> Arc<Hub> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(Hub {
            store,
            config,
            metrics,
            pending: AtomicUsize::new(0),
            router: OnceLock::new(),
            pushed: Mutex::new(HashMap::new()),
        })
    }

    /// Gives the hub the app's routes, once they are built.
    pub fn serve_from(&self, router: Router) {
        let _ = self.router.set(router);
    }

    /// Takes a subscribe or unsubscribe request: checks it now, and
    /// verifies the subscriber's intent in the background (WebSub 5.3).
    pub fn ask(self: &Arc<Self>, asked: Asked) -> Result<(), Refused> {
        let config = self.config.load_full();
        let bad = |m: &str| Err(Refused::Bad(m.to_string()));
        if path_of(&config, &asked.topic).is_none() {
            return bad("hub.topic must be one of this server's outputs, such as its feed.atom");
        }
        if asked.callback.len() > MAX_CALLBACK {
            return bad("hub.callback is too long");
        }
        let Ok(callback) = Url::parse(&asked.callback) else {
            return bad("hub.callback must be an absolute http or https URL");
        };
        if !matches!(callback.scheme(), "http" | "https") {
            return bad("hub.callback must be an absolute http or https URL");
        }
        if asked.secret.as_ref().is_some_and(|s| s.len() > MAX_SECRET) {
            return bad("hub.secret must be shorter than 200 bytes");
        }
        if self.pending.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(Refused::Busy);
        }
        let hub = self.clone();
        tokio::spawn(async move {
            let verified = hub.verify(&asked, &callback).await;
            hub.pending.fetch_sub(1, Ordering::SeqCst);
            let result = match &verified {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::info!(callback = %shown(&callback), error = %e, "websub: intent not verified");
                    "failed"
                }
            };
            hub.metrics.record_websub("verification", result);
        });
        Ok(())
    }

    /// Verification of intent: a `GET` to the callback with a challenge,
    /// which it must echo with a 2xx; then the subscription is stored (or
    /// removed).
    async fn verify(&self, asked: &Asked, callback: &Url) -> Result<(), String> {
        let allow_private = self.config.load().websub.allow_private_callbacks;
        let addrs = safety::vet(callback, allow_private).await?;
        let lease = asked
            .lease_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LEASE)
            .clamp(LEASES.0, LEASES.1);
        let challenge = format!("{:032x}", fastrand::u128(..));
        let mut url = callback.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair(
                "hub.mode",
                match asked.mode {
                    Mode::Subscribe => "subscribe",
                    Mode::Unsubscribe => "unsubscribe",
                },
            );
            q.append_pair("hub.topic", &asked.topic);
            q.append_pair("hub.challenge", &challenge);
            if asked.mode == Mode::Subscribe {
                q.append_pair("hub.lease_seconds", &lease.as_secs().to_string());
            }
        }
        let resp = client_for(callback, &addrs)?
            .get(url)
            .send()
            .await
            .map_err(|e| format!("the callback did not answer: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("the callback answered {}", resp.status()));
        }
        let body = read_capped(resp, MAX_ANSWER).await?;
        if body.trim_ascii() != challenge.as_bytes() {
            return Err("the callback did not echo the challenge".into());
        }
        let key = key_of(&asked.topic, &asked.callback);
        let store = self.store.clone();
        match asked.mode {
            Mode::Subscribe => {
                let now = chrono::Utc::now();
                let sub = Subscription {
                    topic: asked.topic.clone(),
                    callback: asked.callback.clone(),
                    secret: asked.secret.clone().filter(|s| !s.is_empty()),
                    lease_until: later(now, lease),
                    since: now,
                };
                let value = serde_json::to_vec(&sub).map_err(|e| e.to_string())?;
                tokio::task::spawn_blocking(move || {
                    if store.records(KIND)?.len() >= MAX_SUBSCRIPTIONS {
                        return Ok(Err(
                            "the hub holds as many subscriptions as it keeps".to_string()
                        ));
                    }
                    store.put_record(KIND, &key, &value).map(Ok)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())??;
                // What the subscriber could read now is the base a change
                // is pushed against.
                if let Some((_, _, etag)) = self.render(&asked.topic).await {
                    let mut pushed = self.pushed.lock().unwrap_or_else(|p| p.into_inner());
                    pushed.entry(asked.topic.clone()).or_insert(etag);
                }
            }
            Mode::Unsubscribe => {
                tokio::task::spawn_blocking(move || store.delete_record(KIND, &key))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The subscriptions kept now.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let records = self.store.records(KIND).unwrap_or_default();
        records
            .iter()
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect()
    }

    /// Pushes changed outputs to their subscribers until `stop`: every
    /// [`CHECK_EVERY`], when the store has changed, each subscribed output
    /// is rendered as a reader gets it, and one whose ETag moved is sent to
    /// each of its subscribers. Outputs as they are at start are not sent.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut seen = None;
        let mut first = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let generation = self.store.generation();
            let version = self.config.load().version;
            if seen == Some((generation, version)) {
                continue;
            }
            seen = Some((generation, version));
            let store = self.store.clone();
            let Ok(subs) = tokio::task::spawn_blocking(move || load(&*store)).await else {
                continue;
            };
            let mut by_topic: HashMap<String, Vec<Subscription>> = HashMap::new();
            for sub in subs {
                by_topic.entry(sub.topic.clone()).or_default().push(sub);
            }
            for (topic, subs) in by_topic {
                let Some((body, content_type, etag)) = self.render(&topic).await else {
                    continue;
                };
                let moved = {
                    let mut pushed = self.pushed.lock().unwrap_or_else(|p| p.into_inner());
                    pushed
                        .insert(topic.clone(), etag.clone())
                        .is_some_and(|old| old != etag)
                };
                if first || !moved {
                    continue;
                }
                for sub in subs {
                    let hub = self.clone();
                    let (body, content_type) = (body.clone(), content_type.clone());
                    tokio::spawn(async move { hub.push(sub, body, content_type).await });
                }
            }
            first = false;
        }
    }

    /// An output as a reader gets it: body, content type, ETag.
    async fn render(&self, topic: &str) -> Option<(bytes::Bytes, String, String)> {
        let config = self.config.load_full();
        let path = path_of(&config, topic)?;
        let router = self.router.get()?.clone();
        let req = Request::get(format!("/{path}")).body(Body::empty()).ok()?;
        let resp = router.oneshot(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let (parts, body) = resp.into_parts();
        let get = |h| {
            (parts.headers.get(h))
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let (content_type, etag) = (get(header::CONTENT_TYPE)?, get(header::ETAG)?);
        drop(parts);
        let body = body.collect().await.ok()?.to_bytes();
        Some((body, content_type, etag))
    }

    /// Sends one changed output to one subscriber: signed when it gave a
    /// secret, retried with backoff; a subscriber that answers 410 Gone, or
    /// whose lease ended, is dropped.
    async fn push(&self, sub: Subscription, body: bytes::Bytes, content_type: String) {
        let key = key_of(&sub.topic, &sub.callback);
        if sub.lease_until < chrono::Utc::now() {
            self.drop_subscription(key).await;
            return;
        }
        let hub_url = self.config.load().hub_url().unwrap_or_default();
        let link = format!("<{hub_url}>; rel=\"hub\", <{}>; rel=\"self\"", sub.topic);
        let signature = sub
            .secret
            .as_deref()
            .map(|s| format!("sha256={}", sign(s.as_bytes(), &body)));
        let Ok(callback) = Url::parse(&sub.callback) else {
            return;
        };
        let allow_private = self.config.load().websub.allow_private_callbacks;
        let mut wait = PUSH_BACKOFF;
        for attempt in 1..=PUSH_ATTEMPTS {
            let sent = async {
                let addrs = safety::vet(&callback, allow_private).await?;
                let mut req = client_for(&callback, &addrs)?
                    .post(callback.clone())
                    .header(header::CONTENT_TYPE, &content_type)
                    .header(header::LINK, &link)
                    .body(body.clone());
                if let Some(sig) = &signature {
                    req = req.header("X-Hub-Signature", sig);
                }
                req.send().await.map_err(|e| e.to_string())
            }
            .await;
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    self.metrics.record_websub("push", "ok");
                    return;
                }
                Ok(resp) if resp.status() == reqwest::StatusCode::GONE => {
                    self.metrics.record_websub("push", "gone");
                    self.drop_subscription(key).await;
                    return;
                }
                Ok(resp) => {
                    tracing::info!(callback = %shown(&callback), status = %resp.status(), attempt, "websub: push refused")
                }
                Err(e) => {
                    tracing::info!(callback = %shown(&callback), error = %e, attempt, "websub: push failed")
                }
            }
            if attempt < PUSH_ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        self.metrics.record_websub("push", "failed");
    }

    async fn drop_subscription(&self, key: String) {
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.delete_record(KIND, &key)).await;
    }
}

/// Every stored subscription; those whose lease ended are removed.
fn load(store: &Store) -> Vec<Subscription> {
    let now = chrono::Utc::now();
    let mut live = Vec::new();
    for (key, value) in store.records(KIND).unwrap_or_default() {
        match serde_json::from_slice::<Subscription>(&value) {
            Ok(sub) if sub.lease_until > now => live.push(sub),
            _ => {
                let _ = store.delete_record(KIND, &key);
            }
        }
    }
    live
}

/// The path of one of this server's outputs, from its URL: the merged,
/// group and feed documents and the rising feeds, in any format.
pub fn path_of(config: &Config, topic: &str) -> Option<String> {
    let base = config.server.base_url.as_str();
    let path = topic.strip_prefix(base)?;
    let file_ok = |f: &str, rising: bool| {
        let stem = f.rsplit_once('.').map(|(s, e)| (s, e));
        matches!(stem, Some((s, "atom" | "rss" | "json")) if s == "feed" || (rising && s == "rising"))
    };
    let parts: Vec<&str> = path.split('/').collect();
    let ok = match parts.as_slice() {
        [file] => file_ok(file, true),
        ["groups", g, file] => config.groups().iter().any(|x| x == g) && file_ok(file, true),
        ["feeds", id, file] => config.feed(id).is_some() && file_ok(file, false),
        _ => false,
    };
    ok.then(|| path.to_string())
}

/// A subscription's key: a hash of its topic and callback.
fn key_of(topic: &str, callback: &str) -> String {
    let digest = Sha256::digest(format!("{topic}\n{callback}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `HMAC-SHA256(secret, body)` in hex, as `X-Hub-Signature` carries it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A client that reaches `url`'s host only at the vetted addresses and
/// follows no redirect.
pub(super) fn client_for(url: &Url, addrs: &[SocketAddr]) -> Result<reqwest::Client, String> {
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT)
        .resolve_to_addrs(host, addrs)
        .user_agent(concat!(
            "paddock/",
            env!("CARGO_PKG_VERSION"),
            " (WebSub hub)"
        ))
        .build()
        .map_err(|e| e.to_string())
}

async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        out.extend_from_slice(&chunk);
        if out.len() > cap {
            return Err("the callback's answer is too long".into());
        }
    }
    Ok(out)
}

/// A callback for logs: scheme, host and path, no query (it may hold a
/// token).
pub fn shown(url: &Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
