//! Leases, so that instances share the polling: a feed is polled by the
//! one instance that holds its lease, and `[poll].per_host` counts fetches
//! of every instance (each fetch holds one of the host's slots). A lease
//! ends when its holder lets go, or at its expiry when the holder died:
//! times are the database's clock, so instances' clocks need not agree.

use std::time::Duration;

use super::{PgStore, StoreError};

/// What claiming a feed found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This instance holds the feed's lease now.
    Won,
    /// Another instance does, for at most this long.
    Held(Duration),
}

const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

pub(super) fn claim_feed(
    store: &PgStore,
    feed: &str,
    lease: Duration,
) -> Result<Claim, StoreError> {
    let client = store.conn()?;
    let ms = lease.as_millis() as i64;
    let won = store.row(
        &client,
        &format!(
            "INSERT INTO feed_leases (feed, holder, until_ms) VALUES ($1, $2, {NOW_MS} + $3)
             ON CONFLICT (feed) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms
             WHERE feed_leases.until_ms < {NOW_MS} OR feed_leases.holder = EXCLUDED.holder
             RETURNING 1"
        ),
        &[&feed, &store.holder, &ms],
    )?;
    if won.is_some() {
        return Ok(Claim::Won);
    }
    let left = store.row(
        &client,
        &format!("SELECT GREATEST(until_ms - {NOW_MS}, 0) FROM feed_leases WHERE feed = $1"),
        &[&feed],
    )?;
    let left = left.map_or(0, |r| r.get::<_, i64>(0)) as u64;
    Ok(Claim::Held(Duration::from_millis(left)))
}

pub(super) fn renew_feed(store: &PgStore, feed: &str, lease: Duration) -> Result<bool, StoreError> {
    let client = store.conn()?;
    let ms = lease.as_millis() as i64;
    let renewed = store.exec(
        &client,
        &format!("UPDATE feed_leases SET until_ms = {NOW_MS} + $3 WHERE feed = $1 AND holder = $2"),
        &[&feed, &store.holder, &ms],
    )?;
    Ok(renewed > 0)
}

pub(super) fn release_feed(store: &PgStore, feed: &str) {
    let released = store.conn().and_then(|client| {
        store.exec(
            &client,
            "DELETE FROM feed_leases WHERE feed = $1 AND holder = $2",
            &[&feed, &store.holder],
        )
    });
    if let Err(e) = released {
        tracing::warn!(feed, error = %e, "a feed's lease could not be released; it ends at its expiry");
    }
}

pub(super) fn claim_host(
    store: &PgStore,
    host: &str,
    slots: usize,
    lease: Duration,
) -> Result<Option<u32>, StoreError> {
    let client = store.conn()?;
    let ms = lease.as_millis() as i64;
    for slot in 0..slots.min(i32::MAX as usize) as i32 {
        let won = store.row(
            &client,
            &format!(
                "INSERT INTO host_slots (host, slot, holder, until_ms) VALUES ($1, $2, $3, {NOW_MS} + $4)
                 ON CONFLICT (host, slot) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms
                 WHERE host_slots.until_ms < {NOW_MS}
                 RETURNING 1"
            ),
            &[&host, &slot, &store.holder, &ms],
        )?;
        if won.is_some() {
            return Ok(Some(slot as u32));
        }
    }
    Ok(None)
}

pub(super) fn release_host(store: &PgStore, host: &str, slot: u32) {
    let released = store.conn().and_then(|client| {
        store.exec(
            &client,
            "DELETE FROM host_slots WHERE host = $1 AND slot = $2 AND holder = $3",
            &[&host, &(slot as i32), &store.holder],
        )
    });
    if let Err(e) = released {
        tracing::warn!(host, error = %e, "a host slot could not be released; it ends at its expiry");
    }
}
