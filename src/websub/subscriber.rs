//! Paddock as a WebSub subscriber (`[websub] callback_base`): a feed whose
//! document or response names a hub is subscribed to there, its hub's
//! verification of intent is answered, content the hub pushes is checked
//! against the subscription's secret and stored like a poll's, the
//! subscription is renewed before its lease ends and dropped when the feed
//! leaves the config. While a subscription holds, the feed is polled only
//! at `[poll].max_interval`, as a safety net.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::safety;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::{PolledDocument, Timestamp, later};
use crate::store::Store;

/// The store's record kind for this server's own subscriptions, by feed.
pub const KIND: &str = "websub-in";
/// The lease asked of hubs.
pub const LEASE_ASKED: Duration = Duration::from_secs(10 * 86400);
/// A subscription is renewed once less than this share of its lease is
/// left (or less than a minute).
pub const RENEW_AT: f64 = 0.1;
/// A subscription still waiting for its hub's verification is asked for
/// again after this long; a denied one after [`DENIED_RETRY`].
pub const PENDING_RETRY: Duration = Duration::from_secs(300);
pub const DENIED_RETRY: Duration = Duration::from_secs(86400);
/// How often subscriptions are looked over (renewals, retries, feeds that
/// left the config).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Every feed's state is read for new hubs when the store changed, at most
/// this often, and at least every [`SCAN_AT_LEAST`]: at a million feeds a
/// full read each second would be the subscriber's whole cost.
pub const SCAN_AT_MOST: Duration = Duration::from_secs(2);
pub const SCAN_AT_LEAST: Duration = Duration::from_secs(60);
/// Deliveries taken per subscription per minute; more are dropped.
pub const DELIVERIES_PER_MINUTE: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Asked; the hub has not verified it yet.
    Pending,
    Active,
    /// The hub said no.
    Denied,
}

/// One feed's subscription at its hub, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subscribed {
    pub feed: String,
    pub hub: String,
    pub topic: String,
    /// The callback's last path segment: unguessable, new at each renewal.
    pub token: String,
    /// The token the hub knew before a renewal, still taken until the
    /// renewal is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_token: Option<String>,
    pub secret: String,
    pub state: State,
    pub asked: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
}

/// What a delivery's check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Signed right: stored like a poll's document.
    Taken,
    /// No signature or a wrong one: dropped (and counted).
    BadSignature,
    /// Over [`DELIVERIES_PER_MINUTE`]: dropped.
    TooMany,
    /// No subscription has that callback: the hub should stop (410).
    Unknown,
}

pub struct Subscriber {
    store: Arc<Store>,
    config: Arc<ArcSwap<Config>>,
    metrics: Arc<Metrics>,
    /// Recent deliveries per token, for the rate cap.
    recent: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Subscriber {
    pub fn new(
        store: Arc<Store>,
        config: Arc<ArcSwap<Config>>,
        metrics: Arc<Metrics>,
    ) -> Arc<Subscriber> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(Subscriber {
            store,
            config,
            metrics,
            recent: Mutex::new(HashMap::new()),
        })
    }

    fn all(&self) -> Vec<Subscribed> {
        let records = self.store.records(KIND).unwrap_or_default();
        (records.iter())
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect()
    }

    fn put(&self, s: &Subscribed) {
        if let Ok(value) = serde_json::to_vec(s) {
            let _ = self.store.put_record(KIND, &s.feed, &value);
        }
    }

    /// Whether a callback's token belongs to a subscription kept now.
    pub fn knows(&self, token: &str) -> bool {
        self.by_token(token).is_some()
    }

    fn by_token(&self, token: &str) -> Option<Subscribed> {
        (self.all().into_iter()).find(|s| s.token == token || s.old_token.as_deref() == Some(token))
    }

    /// The subscriptions kept now.
    pub fn subscriptions(&self) -> Vec<Subscribed> {
        self.all()
    }

    /// A hub's verification of intent (`GET` to a callback): the challenge
    /// to echo, or `None` (404) when this server did not ask for that.
    pub fn verify(&self, token: &str, mode: &str, topic: &str, lease: Option<u64>) -> Option<()> {
        let answer = self.answer(token, mode, topic, lease);
        let result = if answer.is_some() { "ok" } else { "refused" };
        self.metrics.record_websub("callback_verification", result);
        answer
    }

    fn answer(&self, token: &str, mode: &str, topic: &str, lease: Option<u64>) -> Option<()> {
        let now = chrono::Utc::now();
        match mode {
            "subscribe" => {
                let mut s = self
                    .by_token(token)
                    .filter(|s| s.token == token && s.topic == topic)?;
                if s.state == State::Active && s.old_token.is_none() {
                    return Some(()); // a hub verifying again
                }
                let lease = Duration::from_secs(lease.unwrap_or(LEASE_ASKED.as_secs()));
                s.state = State::Active;
                s.old_token = None;
                s.lease_until = Some(later(now, lease));
                self.put(&s);
                self.mark_pushed(&s.feed, s.lease_until);
                Some(())
            }
            // Paddock unsubscribes only from subscriptions it has removed.
            "unsubscribe" => self.by_token(token).is_none().then_some(()),
            "denied" => {
                let mut s = self.by_token(token)?;
                s.state = State::Denied;
                self.put(&s);
                self.mark_pushed(&s.feed, None);
                Some(())
            }
            _ => None,
        }
    }

    /// Records in the feed's state until when a hub pushes it (its polls
    /// then come at `[poll].max_interval`).
    fn mark_pushed(&self, feed: &str, until: Option<Timestamp>) {
        if let Ok(mut state) = self.store.feed_state(feed) {
            state.pushed_until = until;
            let _ = self.store.put_feed_state(feed, &state);
        }
    }

    /// Content a hub pushed to a callback: checked against the
    /// subscription's secret (`X-Hub-Signature`: sha1, sha256, sha384 or
    /// sha512 HMAC of the body, compared in constant time), then parsed,
    /// normalized and stored as a poll's document would be.
    pub fn deliver(
        &self,
        token: &str,
        signature: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Delivery {
        let Some(s) = self.by_token(token) else {
            return Delivery::Unknown;
        };
        if !signed(s.secret.as_bytes(), signature, body) {
            self.metrics.record_websub("delivery", "bad_signature");
            return Delivery::BadSignature;
        }
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            // Tokens change at each renewal: only the last minute's stay.
            recent.retain(|_, times| {
                times.retain(|t| t.elapsed() < Duration::from_secs(60));
                !times.is_empty()
            });
            let times = recent.entry(s.token.clone()).or_default();
            if times.len() >= DELIVERIES_PER_MINUTE {
                self.metrics.record_websub("delivery", "too_many");
                return Delivery::TooMany;
            }
            times.push(Instant::now());
        }
        match self.ingest(&s, content_type, body) {
            Ok(()) => self.metrics.record_websub("delivery", "ok"),
            Err(e) => {
                tracing::warn!(feed = %s.feed, error = %e, "websub: a pushed document could not be stored");
                self.metrics.record_websub("delivery", "failed");
            }
        }
        Delivery::Taken
    }

    fn ingest(
        &self,
        s: &Subscribed,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let config = self.config.load_full();
        let Some(feed) = config.feed(&s.feed) else {
            return Err("the feed is no longer configured".into());
        };
        let base = Url::parse(&s.topic).map_err(|e| e.to_string())?;
        let parsed =
            crate::parse::parse_feed(body, &base, content_type).map_err(|e| e.to_string())?;
        let now = chrono::Utc::now();
        let max = config.storage.max_items_per_feed;
        let candidates = crate::normalize::candidates(&feed.id, parsed.entries, max, now);
        let state = self.store.feed_state(&feed.id).map_err(|e| e.to_string())?;
        let poll = PolledDocument {
            candidates,
            comments: Vec::new(),
            state,
        };
        self.store
            .record_poll(&feed.id, poll, now)
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Looks over the subscriptions every [`CHECK_EVERY`] until `stop`:
    /// subscribes feeds that advertise a hub, renews leases running out,
    /// asks again for ones left unverified, and unsubscribes feeds that
    /// left the config.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut scanned: Option<(Instant, u64)> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let generation = self.store.generation();
            let scan = match scanned {
                None => true,
                Some((at, g)) => {
                    at.elapsed() >= SCAN_AT_LEAST
                        || (g != generation && at.elapsed() >= SCAN_AT_MOST)
                }
            };
            if scan {
                scanned = Some((Instant::now(), generation));
            }
            let me = self.clone();
            let Ok(work) = tokio::task::spawn_blocking(move || me.due(scan)).await else {
                continue;
            };
            for (action, s) in work {
                self.call(action, s).await;
            }
        }
    }

    /// What to ask of hubs now: renewals, retries and unsubscribes from
    /// the subscriptions kept; with `scan`, also feeds whose state names a
    /// hub they are not subscribed to there.
    fn due(&self, scan: bool) -> Vec<(&'static str, Subscribed)> {
        let config = self.config.load_full();
        if config.websub.callback_base.is_none() {
            return Vec::new();
        }
        let now = chrono::Utc::now();
        let held: HashMap<String, Subscribed> = (self.all().into_iter())
            .map(|s| (s.feed.clone(), s))
            .collect();
        let fresh = |feed: &str, hub: &str, topic: &str| Subscribed {
            feed: feed.to_string(),
            hub: hub.to_string(),
            topic: topic.to_string(),
            token: token(),
            old_token: None,
            secret: token(),
            state: State::Pending,
            asked: now,
            lease_until: None,
        };
        let since = |t: Timestamp| (now - t).to_std().unwrap_or_default();
        let mut work = Vec::new();
        for (feed, s) in &held {
            if config.feed(feed).is_none_or(|f| !f.enabled) {
                work.push(("unsubscribe", s.clone()));
                continue;
            }
            let again = match s.state {
                State::Pending => since(s.asked) > PENDING_RETRY,
                State::Denied => since(s.asked) > DENIED_RETRY,
                State::Active => false,
            };
            if again {
                work.push(("subscribe", fresh(feed, &s.hub, &s.topic)));
            } else if s.state == State::Active && renew_due(s, now) {
                let mut renewed = s.clone();
                renewed.old_token = Some(s.token.clone());
                renewed.token = token();
                renewed.asked = now;
                work.push(("subscribe", renewed));
            }
        }
        if !scan {
            return work;
        }
        let ids: Vec<&str> = (config.feeds.iter())
            .filter(|f| f.enabled)
            .map(|f| f.id.as_str())
            .collect();
        let states = self.store.feed_states(&ids).unwrap_or_default();
        for (id, state) in ids.iter().zip(states) {
            let Some(link) = state.hub else { continue };
            match held.get(*id) {
                None => work.push(("subscribe", fresh(id, &link.hub, &link.topic))),
                Some(s) if s.hub != link.hub || s.topic != link.topic => {
                    work.push(("unsubscribe", s.clone()));
                    work.push(("subscribe", fresh(id, &link.hub, &link.topic)));
                }
                _ => {}
            }
        }
        work
    }

    /// Sends one subscribe or unsubscribe request to a hub (a stranger's
    /// URL: vetted like a callback).
    async fn call(&self, action: &'static str, mut s: Subscribed) {
        let config = self.config.load_full();
        let Some(base) = &config.websub.callback_base else {
            return;
        };
        let Ok(callback) = base.join(&format!("websub/callback/{}", s.token)) else {
            return;
        };
        if action == "subscribe" {
            // Kept before asking: the hub may verify before it answers.
            if s.state != State::Active {
                s.state = State::Pending;
            }
            let me_store = self.store.clone();
            let value = serde_json::to_vec(&s).unwrap_or_default();
            let feed = s.feed.clone();
            let _ =
                tokio::task::spawn_blocking(move || me_store.put_record(KIND, &feed, &value)).await;
        } else {
            let store = self.store.clone();
            let feed = s.feed.clone();
            let _ = tokio::task::spawn_blocking(move || store.delete_record(KIND, &feed)).await;
        }
        let sent = async {
            let hub = Url::parse(&s.hub).map_err(|e| e.to_string())?;
            let addrs = safety::vet(&hub, config.websub.allow_private_callbacks).await?;
            let client = super::hub::client_for(&hub, &addrs)?;
            let lease = LEASE_ASKED.as_secs().to_string();
            let mut form = vec![
                ("hub.mode", action),
                ("hub.topic", s.topic.as_str()),
                ("hub.callback", callback.as_str()),
            ];
            if action == "subscribe" {
                form.push(("hub.secret", s.secret.as_str()));
                form.push(("hub.lease_seconds", lease.as_str()));
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let resp = client
                .post(hub)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            match resp.status().is_success() {
                true => Ok(()),
                false => Err(format!("the hub answered {}", resp.status())),
            }
        }
        .await;
        let result = match &sent {
            Ok(()) => "ok",
            Err(e) => {
                tracing::info!(feed = %s.feed, hub = %s.hub, error = %e, action, "websub: a hub refused");
                "failed"
            }
        };
        self.metrics.record_websub(action, result);
    }
}

fn renew_due(s: &Subscribed, now: Timestamp) -> bool {
    let (Some(until), Some(lease)) = (s.lease_until, s.lease_until.map(|u| u - s.asked)) else {
        return false;
    };
    let left = until - now;
    let margin =
        chrono::Duration::milliseconds((lease.num_milliseconds() as f64 * RENEW_AT) as i64)
            .max(chrono::Duration::seconds(1))
            .min(chrono::Duration::seconds(60).max(lease / 2));
    left <= margin
}

fn token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// Whether `signature` (`method=hex`) is the HMAC of `body` under `secret`
/// with a method the spec names, compared in constant time.
pub fn signed(secret: &[u8], signature: Option<&str>, body: &[u8]) -> bool {
    let Some((method, given)) = signature.and_then(|s| s.trim().split_once('=')) else {
        return false;
    };
    let Some(expected) = mac(&method.to_ascii_lowercase(), secret, body) else {
        return false;
    };
    let given = given.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The HMAC of `body` under `secret` in hex, by WebSub's method name.
fn mac(method: &str, secret: &[u8], body: &[u8]) -> Option<String> {
    macro_rules! with {
        ($digest:ty) => {{
            let mut m =
                Hmac::<$digest>::new_from_slice(secret).expect("HMAC takes a key of any length");
            m.update(body);
            Some(super::hub::hex(&m.finalize().into_bytes()))
        }};
    }
    match method {
        "sha1" => with!(sha1::Sha1),
        "sha256" => with!(sha2::Sha256),
        "sha384" => with!(sha2::Sha384),
        "sha512" => with!(sha2::Sha512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_method_verifies_and_nothing_else_does() {
        let body = b"<feed/>";
        for method in ["sha1", "sha256", "sha384", "sha512"] {
            let hex = mac(method, b"k", body).unwrap();
            assert!(
                signed(b"k", Some(&format!("{method}={hex}")), body),
                "{method}"
            );
            assert!(
                !signed(b"other", Some(&format!("{method}={hex}")), body),
                "{method}"
            );
            assert!(
                !signed(b"k", Some(&format!("{method}={hex}")), b"<feed>x</feed>"),
                "{method}"
            );
        }
        assert!(!signed(b"k", None, body));
        assert!(!signed(b"k", Some("md5=00"), body));
        assert!(!signed(b"k", Some("garbage"), body));
    }
}
