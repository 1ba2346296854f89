//! Who is polled when: each feed on its own interval with jitter,
//! exponential backoff after failures, and the global and per-host limits
//! on fetches in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::Timestamp;

/// Backoff never waits longer than this between two attempts, so a feed
/// that failed for a while is never dead for good.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// Each wait is stretched or shrunk by up to this fraction, so feeds
/// configured alike do not all fire in the same second.
pub const JITTER: f64 = 0.1;

/// The bounds a feed's schedule keeps, from `[poll]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Politeness {
    /// No feed is polled more often than this, whatever its interval.
    pub min_interval: Duration,
    /// What a server can ask for (`Retry-After`, `max-age`, `<ttl>`) is
    /// honoured up to this long.
    pub max_interval: Duration,
}

impl Default for Politeness {
    fn default() -> Self {
        Politeness {
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(24 * 3600),
        }
    }
}

impl Politeness {
    /// When to poll next. After a success: one interval, with jitter. After
    /// `failures` failures in a row: the interval doubled per failure,
    /// never more than [`MAX_BACKOFF`] or the interval itself if that is
    /// longer (a failing feed is never polled less often than a healthy
    /// one... nor dropped). Never sooner than `min_interval`; never sooner
    /// than `hint` (what the server asked for), itself capped at
    /// `max_interval`.
    pub fn next_poll(
        &self,
        now: Timestamp,
        interval: Duration,
        failures: u32,
        hint: Option<Duration>,
    ) -> Timestamp {
        let jitter = 1.0 + JITTER * (2.0 * fastrand::f64() - 1.0);
        // In floating point: a `Duration` multiplied past its range would
        // panic, and a long interval doubled sixteen times gets near it.
        let jittered =
            |d: Duration| Duration::try_from_secs_f64(d.as_secs_f64() * jitter).unwrap_or(d);
        let base = if failures == 0 {
            jittered(interval)
        } else {
            let factor = 1u32 << (failures - 1).min(16);
            jittered(interval.saturating_mul(factor)).min(MAX_BACKOFF.max(interval))
        };
        let asked = hint.map_or(Duration::ZERO, |h| h.min(self.max_interval.max(interval)));
        let wait = base.max(self.min_interval).max(asked);
        crate::model::later(now, wait)
    }
}

/// Fetches in flight: at most `global` in all and `per_host` per host.
pub struct Limits {
    global: Arc<Semaphore>,
    global_size: usize,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held while a fetch is in flight.
pub struct Permits {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Limits {
    pub fn new(global: usize, per_host: usize) -> Limits {
        Limits {
            global: Arc::new(Semaphore::new(global)),
            global_size: global,
            per_host,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot for `host`. The host slot is taken first, so a
    /// feed waiting on a busy host does not hold a global slot meanwhile.
    /// `[poll].concurrency`: polls in flight at most.
    pub fn global_size(&self) -> usize {
        self.global_size
    }

    pub async fn acquire(&self, host: &str) -> Permits {
        let host_sem = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let host = host_sem
            .acquire_owned()
            .await
            .expect("semaphores are never closed");
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("semaphores are never closed");
        Permits {
            _host: host,
            _global: global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let now = chrono::Utc::now();
        let interval = Duration::from_secs(600);
        let p = Politeness::default();
        let wait =
            |failures| (p.next_poll(now, interval, failures, None) - now).num_seconds() as f64;
        for _ in 0..100 {
            assert!(wait(30) <= 86400.0, "the cap holds after jitter");
        }
        for (failures, expected) in [
            (0, 600.0),
            (1, 600.0),
            (2, 1200.0),
            (4, 4800.0),
            (10, 86400.0),
            (40, 86400.0),
        ] {
            let w = wait(failures);
            assert!(
                (expected * 0.89..=expected * 1.11).contains(&w),
                "{failures} failures: waited {w}s, expected about {expected}s"
            );
        }
    }

    #[test]
    fn servers_push_the_next_poll_later_within_bounds() {
        let now = chrono::Utc::now();
        let p = Politeness::default();
        let wait = |interval: u64, failures, hint: Option<u64>| {
            (p.next_poll(
                now,
                Duration::from_secs(interval),
                failures,
                hint.map(Duration::from_secs),
            ) - now)
                .num_seconds()
        };
        assert!(
            wait(600, 0, Some(3600)) >= 3600,
            "Retry-After or max-age is a floor"
        );
        assert!(wait(600, 3, Some(3600)) >= 3600);
        assert!(
            wait(600, 0, Some(90)) >= 540,
            "a shorter hint changes nothing"
        );
        assert!(
            wait(600, 0, Some(30 * 86400)) <= 86400,
            "hints are capped at max_interval"
        );
        assert!(wait(10, 0, None) >= 60, "min_interval is a floor");
    }

    #[tokio::test]
    async fn per_host_limit_holds() {
        let limits = Arc::new(Limits::new(10, 2));
        let a = limits.acquire("a:80").await;
        let _b = limits.acquire("a:80").await;
        let other = tokio::time::timeout(Duration::from_millis(50), limits.acquire("b:80")).await;
        assert!(other.is_ok(), "another host is not held up");
        let third = tokio::time::timeout(Duration::from_millis(50), limits.acquire("a:80")).await;
        assert!(third.is_err(), "a third fetch to the same host waits");
        drop(a);
        let third = tokio::time::timeout(Duration::from_millis(500), limits.acquire("a:80")).await;
        assert!(third.is_ok(), "and goes once a slot frees");
    }
}
