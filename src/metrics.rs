//! Prometheus metrics, one registry per daemon (not a global), so tests
//! and two daemons in one process never mix their counts.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::ErrorKind;
use crate::model::{Outcome, PollReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    /// `stored`, `not_modified` or `failed`.
    pub outcome: &'static str,
    /// The error kind for failures, else empty.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoredLabels {
    /// `new` or `updated`.
    pub change: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route's pattern, e.g. `/feeds/{id}/feed.atom`; `unmatched`.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    pub feed: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// 1-based, in the order written.
    pub rule: String,
    /// The line of the config file its `action` key is on.
    pub line: String,
    pub action: &'static str,
}

/// What one rule drops now, for [`Metrics::render`].
pub struct RuleCount {
    pub rule: usize,
    pub line: usize,
    pub action: &'static str,
    pub dropped: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebSubLabels {
    /// The built-in hub: `verification` (of a subscriber's intent),
    /// `push` (a delivery), `ping` (telling another hub of a change). The
    /// subscriber: `subscribe`, `unsubscribe` (asked of a feed's hub),
    /// `callback_verification` (a hub's check of intent), `delivery` (a
    /// push received).
    pub event: &'static str,
    /// `ok`, `failed`, `refused`; `gone` (a push answered 410);
    /// `bad_signature`, `too_many` (deliveries dropped).
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    lateness: Histogram,
    websub: Family<WebSubLabels, Counter>,
    rule_dropped: Family<RuleLabels, Gauge>,
    polls: Family<PollLabels, Counter>,
    fetch_seconds: Histogram,
    stored: Family<StoredLabels, Counter>,
    http: Family<HttpLabels, Counter>,
    failing: Family<FeedLabels, Gauge>,
    failing_total: Gauge,
    store_write: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Encoding reads the failing-feed gauges, which a scrape rewrites.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("paddock");
        let polls = Family::<PollLabels, Counter>::default();
        registry.register(
            "polls",
            "Feed polls by outcome and error kind",
            polls.clone(),
        );
        let fetch_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "fetch_duration_seconds",
            "Time to fetch one feed document",
            fetch_seconds.clone(),
        );
        let stored = Family::<StoredLabels, Counter>::default();
        registry.register(
            "items_stored",
            "Stories stored, new or updated",
            stored.clone(),
        );
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http.clone(),
        );
        let failing = Family::<FeedLabels, Gauge>::default();
        registry.register(
            "feed_failing",
            "1 for each feed whose last poll failed, by error kind",
            failing.clone(),
        );
        let failing_total = Gauge::default();
        registry.register(
            "failing_feeds",
            "Feeds whose last poll failed",
            failing_total.clone(),
        );
        let store_write = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "store_write_seconds",
            "Time spent writing to the store; writes are serialized, so a rate near 1 means the store limits polling",
            store_write.clone(),
        );
        let rule_dropped = Family::<RuleLabels, Gauge>::default();
        registry.register(
            "rule_dropped_stories",
            "Stored stories each keep/block rule leaves out of the outputs now",
            rule_dropped.clone(),
        );
        let websub = Family::<WebSubLabels, Counter>::default();
        registry.register(
            "websub_hub_events",
            "The built-in WebSub hub's verifications of intent and pushes, by result",
            websub.clone(),
        );
        let lateness = Histogram::new(exponential_buckets(0.001, 2.0, 18));
        registry.register(
            "poll_lateness_seconds",
            "How late scheduled polls began against their due time",
            lateness.clone(),
        );
        Metrics {
            registry,
            lateness,
            websub,
            rule_dropped,
            store_write,
            polls,
            fetch_seconds,
            stored,
            http,
            failing,
            failing_total,
            scrape: Mutex::new(()),
        }
    }
}

impl Metrics {
    pub fn record_poll(&self, report: &PollReport) {
        let (outcome, kind) = match &report.outcome {
            Outcome::Stored { new, updated, .. } => {
                self.stored
                    .get_or_create(&StoredLabels { change: "new" })
                    .inc_by(*new as u64);
                self.stored
                    .get_or_create(&StoredLabels { change: "updated" })
                    .inc_by(*updated as u64);
                ("stored", "")
            }
            Outcome::NotModified => ("not_modified", ""),
            Outcome::Elsewhere => ("elsewhere", ""),
            Outcome::Failed(f) => ("failed", f.kind.as_str()),
        };
        self.polls
            .get_or_create(&PollLabels { outcome, kind })
            .inc();
        if let Some(d) = report.fetch_elapsed {
            self.fetch_seconds.observe(d.as_secs_f64());
        }
    }

    pub fn record_lateness(&self, late: Duration) {
        self.lateness.observe(late.as_secs_f64());
    }

    pub fn record_websub(&self, event: &'static str, result: &'static str) {
        self.websub
            .get_or_create(&WebSubLabels { event, result })
            .inc();
    }

    pub fn record_http(&self, route: String, status: u16, _elapsed: Duration) {
        self.http.get_or_create(&HttpLabels { route, status }).inc();
    }

    /// The exposition text (OpenMetrics, which Prometheus scrapes), with
    /// the failing-feed gauges set from the feeds failing now and the
    /// store's write time brought up to `store_write`.
    pub fn render<'a>(
        &self,
        failing: impl Iterator<Item = (&'a str, ErrorKind)>,
        store_write: Duration,
        rules: &[RuleCount],
    ) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.rule_dropped.clear();
        for r in rules {
            let labels = RuleLabels {
                rule: r.rule.to_string(),
                line: r.line.to_string(),
                action: r.action,
            };
            self.rule_dropped
                .get_or_create(&labels)
                .set(r.dropped as i64);
        }
        let behind = store_write.as_secs_f64() - self.store_write.get();
        if behind > 0.0 {
            self.store_write.inc_by(behind);
        }
        self.failing.clear();
        let mut total = 0;
        for (id, kind) in failing {
            total += 1;
            self.failing
                .get_or_create(&FeedLabels {
                    feed: id.to_string(),
                    kind: kind.as_str(),
                })
                .set(1);
        }
        self.failing_total.set(total);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}
