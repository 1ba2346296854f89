//! Polling: `refresh` runs the pipeline for one feed, `schedule` decides
//! when and how many at once, [`Poller`] schedules every feed for the
//! daemon, and [`Pipeline::poll_all`] polls a set of feeds once for
//! `paddock poll`.

pub mod comment_feeds;
mod refresh;
pub mod schedule;
mod scheduler;

pub use crate::model::{Outcome, PollReport};
pub use refresh::{PollError, refresh_feed};
pub use scheduler::Poller;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::config::FeedConfig;
use crate::fetch::Fetcher;
use crate::model::Timestamp;
use crate::model::{ErrorKind, PollFailure};
use crate::store::{Claim, Store, StoreError};

/// How often a poll waiting for a lease or a host slot another instance
/// holds asks again (up to twice that, at random, so waiters spread out).
const LEASE_RETRY: Duration = Duration::from_millis(50);
/// How soon a feed whose lease could not be asked for (the database is
/// away) is tried again.
const STORE_RETRY: Duration = Duration::from_secs(10);

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
use schedule::Limits;

/// Everything one poll needs; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Arc<Store>,
    pub fetcher: Fetcher,
    pub limits: Arc<Limits>,
    pub options: PollOptions,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The polls in flight, by feed id: one per feed at a time, which
    /// every other caller joins (see [`Pipeline::start`]). Shared by every
    /// pipeline built on the same store, so a reload cannot start a
    /// second poll beside one the old settings began.
    pub in_flight: InFlight,
}

/// Polls in flight, each with its feed's config and the channel its
/// report arrives on, and the tasks that run them (so shutdown waits for
/// a poll a refresh started as for a scheduled one).
#[derive(Clone, Default)]
pub struct InFlight {
    polls: Arc<std::sync::Mutex<HashMap<String, Running>>>,
    tasks: TaskTracker,
}

/// A poll in flight: the config it polls with, and where its report comes.
type Running = (FeedConfig, watch::Receiver<Option<PollReport>>);

/// How a caller came to a poll.
#[derive(Debug, PartialEq, Eq)]
enum Joined {
    Started,
    SameConfig,
    OtherConfig,
}

/// Takes a feed's poll out of the in-flight map when dropped.
struct Leave<'a>(&'a InFlight, &'a str);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0
            .polls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.1);
    }
}

/// The settings a poll follows, from `[poll]` and `[output]`.
#[derive(Debug, Clone, Copy)]
pub struct PollOptions {
    pub comments: comment_feeds::CommentOptions,
    pub politeness: schedule::Politeness,
    /// Stories taken from one document, the newest first: a feed keeps no
    /// more than `[storage].max_items_per_feed`, so taking more is waste.
    pub max_items_per_document: usize,
    /// `[poll].lease` and `[poll].per_host`, for instances sharing a store.
    pub lease: Duration,
    pub per_host: usize,
}

impl From<&crate::config::Config> for PollOptions {
    fn from(c: &crate::config::Config) -> Self {
        PollOptions {
            comments: comment_feeds::CommentOptions::from(c),
            politeness: schedule::Politeness {
                min_interval: c.poll.min_interval,
                max_interval: c.poll.max_interval,
            },
            max_items_per_document: c.storage.max_items_per_feed,
            lease: c.poll.lease,
            per_host: c.poll.per_host,
        }
    }
}

impl Pipeline {
    /// Polls one feed, or joins its poll in flight, and returns the
    /// report. A poll in flight with another config of the feed (before a
    /// reload) is waited for, then this one runs.
    pub async fn poll(&self, feed: &FeedConfig) -> PollReport {
        self.poll_with(feed, false).await
    }

    /// A scheduled poll: as [`Pipeline::poll`], but on a store other
    /// instances share, only if the feed is still due once this instance
    /// holds it; else the report is [`Outcome::Elsewhere`] with the next
    /// poll the store holds.
    pub async fn poll_due(&self, feed: &FeedConfig) -> PollReport {
        self.poll_with(feed, true).await
    }

    async fn poll_with(&self, feed: &FeedConfig, due_only: bool) -> PollReport {
        loop {
            let (mut report, joined) = self.join_or_start(feed, due_only);
            let report = match report.wait_for(Option::is_some).await {
                Ok(r) => r.clone(),
                Err(_) => None,
            };
            if joined != Joined::OtherConfig {
                return match report {
                    Some(report) => report,
                    None => {
                        let why = "the poll task ended without a report".to_string();
                        self.record_crash(feed, why).await
                    }
                };
            }
        }
    }

    /// Starts a poll of `feed` unless one is in flight, and returns the
    /// channel its report arrives on and whether this call started it.
    /// Two polls of one feed never overlap: each would fetch, and each
    /// would write back the feed state it read before the other's write.
    pub fn start(&self, feed: &FeedConfig) -> (watch::Receiver<Option<PollReport>>, bool) {
        let (report, joined) = self.join_or_start(feed, false);
        (report, joined == Joined::Started)
    }

    fn join_or_start(
        &self,
        feed: &FeedConfig,
        due_only: bool,
    ) -> (watch::Receiver<Option<PollReport>>, Joined) {
        let mut in_flight = (self.in_flight.polls.lock()).unwrap_or_else(|p| p.into_inner());
        if let Some((config, report)) = in_flight.get(&feed.id) {
            let joined = match config == feed {
                true => Joined::SameConfig,
                false => Joined::OtherConfig,
            };
            return (report.clone(), joined);
        }
        let (tx, rx) = watch::channel(None);
        in_flight.insert(feed.id.clone(), (feed.clone(), rx.clone()));
        let (me, feed) = (self.clone(), feed.clone());
        self.in_flight.tasks.spawn(async move {
            // The entry goes however the poll ends (a panic included), so
            // a later poll of the feed never waits on a dead one.
            let leaving = Leave(&me.in_flight, &feed.id);
            let report = me.poll_once(&feed, due_only).await;
            drop(leaving);
            let _ = tx.send(Some(report));
        });
        (rx, Joined::Started)
    }

    /// One poll inside the fetch limits. The poll runs as its own task, so
    /// a panic in it becomes a recorded failure of that feed only.
    ///
    /// When other instances share the store, the poll then holds the
    /// feed's lease (renewed while it runs, so a long poll keeps it and a
    /// dead instance's runs out) and one of its host's `per_host` slots,
    /// counted across every instance, and lets go of both once written.
    /// With `due_only` (a scheduled poll), a feed another instance holds
    /// or has polled since it was due is left to it.
    async fn poll_once(&self, feed: &FeedConfig, due_only: bool) -> PollReport {
        let started = std::time::Instant::now();
        let host = feed.source.host_key();
        let _permits = self.limits.acquire(&host).await;
        let shared = self.store.shared();
        let mut renewal = None;
        let mut slot = None;
        if shared {
            if let Err(next) = self.hold_feed(&feed.id, due_only).await {
                return PollReport {
                    feed: feed.id.clone(),
                    outcome: Outcome::Elsewhere,
                    elapsed: started.elapsed(),
                    fetch_elapsed: None,
                    next_poll: next,
                    gone: false,
                };
            }
            renewal = Some(self.renew(&feed.id));
            slot = self.hold_host(&host).await;
        }
        let (store, fetcher, cfg) = (self.store.clone(), self.fetcher.clone(), feed.clone());
        let options = self.options;
        let task =
            tokio::spawn(async move { refresh_feed(&store, &fetcher, &cfg, &options).await });
        let report = match task.await {
            Ok(report) => report,
            Err(e) => self.record_crash(feed, e.to_string()).await,
        };
        if shared {
            drop(renewal);
            let id = feed.id.clone();
            let _ = on_store(&self.store, move |s| {
                if let Some(slot) = slot {
                    s.release_host(&host, slot);
                }
                s.release_feed(&id);
                Ok(())
            })
            .await;
        }
        self.metrics.record_poll(&report);
        report
    }

    /// Takes `feed`'s lease for this instance. A lease another instance
    /// holds is waited for, or with `due_only` left to it: `Err` then
    /// carries when the feed is next due. With `due_only`, a feed polled
    /// since it was due is let go of (`Err` with its next poll). A store
    /// that cannot be asked is not waited for: the poll then fails on its
    /// write.
    async fn hold_feed(&self, feed: &str, due_only: bool) -> Result<(), Timestamp> {
        loop {
            let (id, lease) = (feed.to_string(), self.options.lease);
            let claimed = on_store(&self.store, move |s| match s.claim_feed(&id, lease)? {
                Claim::Won if due_only => {
                    let next = s.feed_state(&id)?.next_poll;
                    match next.filter(|&n| n > chrono::Utc::now()) {
                        Some(n) => {
                            s.release_feed(&id);
                            Ok(Err(n))
                        }
                        None => Ok(Ok(())),
                    }
                }
                Claim::Won => Ok(Ok(())),
                Claim::Held(left) => Ok(Err(crate::model::later(chrono::Utc::now(), left))),
            })
            .await;
            match claimed {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(next)) if due_only => return Err(next),
                Ok(Err(_)) => {}
                Err(e) if due_only => {
                    tracing::warn!(feed, error = %e, "cannot claim the feed; trying again shortly");
                    return Err(crate::model::later(chrono::Utc::now(), STORE_RETRY));
                }
                Err(_) => return Ok(()),
            }
            tokio::time::sleep(LEASE_RETRY.mul_f64(1.0 + fastrand::f64())).await;
        }
    }

    /// Keeps `feed`'s lease from running out while this instance polls it:
    /// renewed every third of `[poll].lease` until the guard is dropped. A
    /// renewal never takes back a lease once it was let go of.
    fn renew(&self, feed: &str) -> AbortOnDrop {
        let (store, id, lease) = (self.store.clone(), feed.to_string(), self.options.lease);
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let id = id.clone();
                let _ = on_store(&store, move |s| s.renew_feed(&id, lease)).await;
            }
        }))
    }

    /// Waits for one of `host`'s fetch slots across instances; its number.
    async fn hold_host(&self, host: &str) -> Option<u32> {
        loop {
            let (h, slots, lease) = (host.to_string(), self.options.per_host, self.options.lease);
            match on_store(&self.store, move |s| s.claim_host(&h, slots, lease)).await {
                Ok(Some(slot)) => return Some(slot),
                Ok(None) => tokio::time::sleep(LEASE_RETRY.mul_f64(1.0 + fastrand::f64())).await,
                Err(_) => return None,
            }
        }
    }

    /// Polls every feed given once, all at the same time within the limits;
    /// `done` sees each report as it arrives. Reports come back in the
    /// order of `feeds`.
    pub async fn poll_all(
        &self,
        feeds: &[FeedConfig],
        done: impl Fn(&PollReport),
    ) -> Vec<PollReport> {
        let mut set = tokio::task::JoinSet::new();
        for (i, feed) in feeds.iter().cloned().enumerate() {
            let me = self.clone();
            set.spawn(async move { (i, me.poll(&feed).await) });
        }
        let mut reports: Vec<Option<PollReport>> = vec![None; feeds.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, report)) = joined {
                done(&report);
                reports[i] = Some(report);
            }
        }
        reports.into_iter().flatten().collect()
    }

    /// Records a poll that ended in a panic as a failure of its feed, on
    /// the blocking pool like every store call.
    async fn record_crash(&self, feed: &FeedConfig, why: String) -> PollReport {
        let now = chrono::Utc::now();
        let failure = PollFailure {
            kind: ErrorKind::Internal,
            message: format!("the poll stopped unexpectedly: {why}"),
            at: now,
        };
        let (id, interval, politeness) = (feed.id.clone(), feed.interval, self.options.politeness);
        let recorded = failure.clone();
        let next = on_store(&self.store, move |s| {
            let mut state = s.feed_state(&id).unwrap_or_default();
            state.consecutive_failures += 1;
            state.last_error = Some(recorded);
            let next = politeness.next_poll(now, interval, state.consecutive_failures, None);
            state.next_poll = Some(next);
            let _ = s.put_feed_state(&id, &state);
            Ok(next)
        })
        .await
        .unwrap_or_else(|_| politeness.next_poll(now, interval, 1, None));
        tracing::error!(feed = %feed.id, %why, "poll crashed");
        PollReport {
            feed: feed.id.clone(),
            outcome: Outcome::Failed(failure),
            elapsed: Duration::ZERO,
            fetch_elapsed: None,
            next_poll: next,
            gone: false,
        }
    }
}

/// Runs a store read or write on the runtime's blocking threads. A write
/// waits for the store's writer lock (and its flush), and a runtime thread
/// waiting there could neither fetch nor parse meanwhile: with two cores,
/// that halved the ingest's overlap of parsing and storing.
pub(crate) async fn on_store<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PollError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(result) => Ok(result?),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(PollError::Internal(format!(
            "a store write was cancelled: {e}"
        ))),
    }
}
