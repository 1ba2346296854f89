//! The PostgreSQL backend, for operators who outgrow one machine: any
//! number of Paddock instances on one database, each serving everything.
//! The only module that knows PostgreSQL. Tables are in `schema`; a poll's
//! write is one transaction (`write`); retention and the self-check are in
//! `retention`; feed and host leases, which let instances share the
//! polling, in `lease`.
//!
//! The store's interface blocks (callers run it on the blocking pool), the
//! driver (tokio-postgres, pooled by deadpool-postgres) is async: the
//! store keeps a one-thread runtime of its own that drives the database
//! connections, and each call waits for its future on the caller's
//! thread, so the store works from any thread, inside a runtime or not.
//!
//! Writers serialize on one advisory lock, as sled's writers do on a
//! mutex: "is this story new?" and the write see the same state across
//! instances, and `first_seen` stamps, taken from the database's clock
//! under the lock, grow in commit order (see [`PgStore::cursor`]).

mod import;
mod lease;
mod retention;
mod schema;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::cursor::Position;
use super::{Pruned, StoreError, Verified};
use crate::model::{
    Candidate, FeedState, IngestReport, Item, ItemId, PolledDocument, RecentComment, Timestamp,
    Validators,
};

pub use lease::Claim;

/// The longest one database call may take before it fails the operation
/// (a poll's write, a page's read): a database that stops answering is an
/// error, not a hang.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest connecting to the database may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an instance reads the store's generation, so that a change
/// another instance wrote reaches this one's cached outputs.
pub const GENERATION_EVERY: Duration = Duration::from_millis(250);
/// Rows read per round trip when walking stories in order.
const WALK_STEP: i64 = 64;
/// The advisory lock every write holds until it commits.
const WRITE_LOCK: i64 = 0x7061_6464_6f63_6b02;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        StoreError::Database(describe(&e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        use deadpool_postgres::PoolError;
        StoreError::Database(match e {
            PoolError::Backend(e) => describe(&e),
            PoolError::Timeout(_) => format!(
                "no connection to the database within {} s (all [storage].pool_size in use, or the server does not answer)",
                CALL_TIMEOUT.as_secs()
            ),
            other => describe(&other),
        })
    }
}

/// An error with its causes, which the driver keeps apart ("error
/// connecting to server: Connection refused (os error 111)").
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

pub struct PgStore {
    /// Drives the connections; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// This instance's name in leases: host, process and a random part.
    holder: String,
    /// The database's generation as last read or written here.
    generation: Arc<AtomicU64>,
    /// Nanoseconds spent holding the write lock, by this instance.
    busy: AtomicU64,
    recent_comments: AtomicUsize,
    /// Stream entries written since the stream was last trimmed.
    streamed: AtomicUsize,
}

impl PgStore {
    /// Connects to the database at `url` with at most `pool_size`
    /// connections, and creates or checks its schema.
    pub fn open(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        let shown = redact(url);
        let open_error = |detail: String| StoreError::Open {
            path: shown.clone(),
            detail,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| open_error(e.to_string()))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        // A call the store gives up on must not run on in the server
        // (holding locks, or the connection it goes back to the pool on).
        let limits = format!(
            "-c statement_timeout={0} -c lock_timeout={0} -c idle_in_transaction_session_timeout={0}",
            CALL_TIMEOUT.as_millis()
        );
        let options = match config.get_options() {
            Some(given) => format!("{given} {limits}"),
            None => limits,
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("paddock");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("paddock-db")
            .enable_all()
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let store = PgStore {
            runtime: Some(runtime),
            pool,
            holder: holder_name(),
            generation: Arc::new(AtomicU64::new(0)),
            busy: AtomicU64::new(0),
            recent_comments: AtomicUsize::new(5),
            streamed: AtomicUsize::new(0),
        };
        store
            .block(async {
                let mut client = store.pool.get().await?;
                schema::migrate(&mut client, &shown).await
            })
            .map_err(|e| match e {
                StoreError::Schema { .. } => e,
                other => open_error(other.to_string()),
            })?;
        store.refresh_generation()?;
        store.watch_generation();
        Ok(store)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    /// Runs `f` to completion on this thread, with the store's runtime
    /// driving the connections, and fails it after [`CALL_TIMEOUT`].
    fn block<T>(&self, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let _entered = self.runtime().enter();
        futures_executor::block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, f).await {
                Ok(done) => done,
                Err(_) => Err(StoreError::Database(format!(
                    "the database did not answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ))),
            }
        })
    }

    fn conn(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.block(async { Ok(self.pool.get().await?) })
    }

    /// One statement's rows (the statement is prepared once per connection).
    fn rows(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.block(async {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        })
    }

    fn row(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(client, sql, params)?.into_iter().next())
    }

    fn exec(
        &self,
        client: &impl GenericClient,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.block(async {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        })
    }

    /// Reads the generation another instance may have moved.
    fn refresh_generation(&self) -> Result<(), StoreError> {
        let client = self.conn()?;
        let row = self.row(&client, GENERATION, &[])?;
        let value = row.map_or(0, |r| r.get::<_, i64>(0));
        self.generation.fetch_max(value as u64, Ordering::AcqRel);
        Ok(())
    }

    /// Reads the generation every [`GENERATION_EVERY`], in the background,
    /// for as long as the store is open. A failed read is tried again
    /// next time: outputs are then at most that much staler.
    fn watch_generation(&self) {
        let (pool, generation) = (self.pool.clone(), self.generation.clone());
        self.runtime().spawn(async move {
            loop {
                tokio::time::sleep(GENERATION_EVERY).await;
                let read = async {
                    let client = pool.get().await.ok()?;
                    let row = client.query_opt(GENERATION, &[]).await.ok()??;
                    Some(row.get::<_, i64>(0))
                };
                if let Ok(Some(value)) = tokio::time::timeout(CALL_TIMEOUT, read).await {
                    generation.fetch_max(value as u64, Ordering::AcqRel);
                }
            }
        });
    }

    fn keep_comments(&self) -> usize {
        self.recent_comments.load(Ordering::Relaxed)
    }

    fn feed_state_with(
        &self,
        client: &impl GenericClient,
        feed: &str,
    ) -> Result<FeedState, StoreError> {
        let row = self.row(
            client,
            "SELECT state FROM feed_states WHERE feed = $1",
            &[&feed],
        )?;
        match row {
            Some(row) => Ok(serde_json::from_slice(row.get::<_, &[u8]>(0))?),
            None => Ok(FeedState::default()),
        }
    }

    fn item_with(
        &self,
        client: &impl GenericClient,
        id: &ItemId,
    ) -> Result<Option<Item>, StoreError> {
        let row = self.row(
            client,
            "SELECT body FROM stories WHERE id = $1",
            &[&&id.0[..]],
        )?;
        row.map(|r| body(&r, 0)).transpose()
    }

    /// The story with this canonical link.
    fn linked_with(
        &self,
        client: &impl GenericClient,
        link: &str,
    ) -> Result<Option<Item>, StoreError> {
        let rows = self.rows(client, "SELECT body FROM stories WHERE link = $1", &[&link])?;
        let found = rows.iter().map(|r| body(r, 0)).next().transpose()?;
        Ok(found.filter(|i| i.link.as_deref() == Some(link)))
    }

    /// Reads stories newest first (all, or one feed's), after `start`,
    /// until `visit` returns false or they run out.
    fn walk_newest(
        &self,
        feed: Option<&str>,
        start: Option<Position>,
        mut visit: impl FnMut(Position, Item) -> bool,
    ) -> Result<(), StoreError> {
        let mut after = start;
        loop {
            // A connection per step, let go of before `visit` (which may
            // read the store itself).
            let client = self.conn()?;
            let rows = match (feed, after) {
                (None, None) => self.rows(
                    &client,
                    "SELECT sort_ms, id, body FROM stories ORDER BY sort_ms DESC, id DESC LIMIT $1",
                    &[&WALK_STEP],
                )?,
                (None, Some((ms, id))) => self.rows(
                    &client,
                    "SELECT sort_ms, id, body FROM stories WHERE (sort_ms, id) < ($1, $2)
                     ORDER BY sort_ms DESC, id DESC LIMIT $3",
                    &[&ms, &&id.0[..], &WALK_STEP],
                )?,
                (Some(feed), None) => self.rows(
                    &client,
                    "SELECT f.sort_ms, f.id, s.body FROM story_feeds f JOIN stories s ON s.id = f.id
                     WHERE f.feed = $1 ORDER BY f.sort_ms DESC, f.id DESC LIMIT $2",
                    &[&feed, &WALK_STEP],
                )?,
                (Some(feed), Some((ms, id))) => self.rows(
                    &client,
                    "SELECT f.sort_ms, f.id, s.body FROM story_feeds f JOIN stories s ON s.id = f.id
                     WHERE f.feed = $1 AND (f.sort_ms, f.id) < ($2, $3)
                     ORDER BY f.sort_ms DESC, f.id DESC LIMIT $4",
                    &[&feed, &ms, &&id.0[..], &WALK_STEP],
                )?,
            };
            drop(client);
            let full = rows.len() as i64 == WALK_STEP;
            for row in &rows {
                let at = (row.get::<_, i64>(0), item_id(row, 1)?);
                after = Some(at);
                if !visit(at, body(row, 2)?) {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Every statement of a write, in one transaction under [`WRITE_LOCK`],
    /// with a stamp source; commits when `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut write::Write<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.conn()?;
        let tx = self.block(async { Ok(client.transaction().await?) })?;
        let mut w = write::Write::begin(self, tx)?;
        let out = f(&mut w)?;
        w.commit()?;
        Ok(out)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which a runtime's own
        // thread may not do: let them go in the background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

const GENERATION: &str = "SELECT value FROM paddock_meta WHERE key = 'generation'";

fn body(row: &Row, column: usize) -> Result<Item, StoreError> {
    Ok(serde_json::from_slice(row.get::<_, &[u8]>(column))?)
}

fn item_id(row: &Row, column: usize) -> Result<ItemId, StoreError> {
    let bytes: &[u8] = row.get(column);
    let id = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("a story id of {} bytes", bytes.len())))?;
    Ok(ItemId(id))
}

fn nanos(t: Timestamp) -> i64 {
    crate::model::nanos(t)
}

/// The URL without its password, for every message that names it.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the configured [storage].url".to_string(),
    }
}

fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".to_string());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

impl super::Storage for PgStore {
    fn record_poll(
        &self,
        feed: &str,
        poll: PolledDocument,
        now: Timestamp,
    ) -> Result<IngestReport, StoreError> {
        write::record_poll(self, feed, poll, now)
    }

    fn put_feed_state(&self, feed: &str, state: &FeedState) -> Result<(), StoreError> {
        let client = self.conn()?;
        let value = serde_json::to_vec(state)?;
        self.exec(&client, write::PUT_STATE, &[&feed, &value])?;
        Ok(())
    }

    fn feed_state(&self, feed: &str) -> Result<FeedState, StoreError> {
        self.feed_state_with(&self.conn()?, feed)
    }

    /// One query for all of them.
    fn feed_states(&self, feeds: &[&str]) -> Result<Vec<FeedState>, StoreError> {
        let client = self.conn()?;
        let rows = self.rows(
            &client,
            "SELECT feed, state FROM feed_states WHERE feed = ANY($1)",
            &[&feeds],
        )?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let state: FeedState = serde_json::from_slice(row.get::<_, &[u8]>(1))?;
            found.insert(row.get::<_, String>(0), state);
        }
        Ok(feeds
            .iter()
            .map(|f| found.remove(*f).unwrap_or_default())
            .collect())
    }

    fn cached_feed_state(&self, _feed: &str) -> Option<FeedState> {
        // Another instance may have polled it: always ask the database.
        None
    }

    fn validators(&self, url: &str) -> Result<Validators, StoreError> {
        let client = self.conn()?;
        let key = write::url_key(url);
        let row = self.row(
            &client,
            "SELECT value FROM comment_validators WHERE url_key = $1",
            &[&&key[..]],
        )?;
        match row {
            Some(row) => Ok(serde_json::from_slice(row.get::<_, &[u8]>(0))?),
            None => Ok(Validators::default()),
        }
    }

    fn item(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        self.item_with(&self.conn()?, id)
    }

    fn story_for(&self, candidate: &Candidate) -> Result<Option<Item>, StoreError> {
        let client = self.conn()?;
        if let Some(item) = self.item_with(&client, &candidate.fresh_id)? {
            return Ok(Some(item));
        }
        match candidate.canonical_link.as_deref() {
            Some(link) => self.linked_with(&client, link),
            None => Ok(None),
        }
    }

    fn pruned(&self, candidate: &Candidate) -> bool {
        let asked = self.conn().and_then(|client| {
            self.row(
                &client,
                "SELECT 1 FROM tombstones WHERE id = $1 OR link_hash = $2 LIMIT 1",
                &[
                    &&candidate.fresh_id.0[..],
                    &(candidate.canonical_link.as_deref()).map(|l| super::link_hash(l) as i64),
                ],
            )
        });
        match asked {
            Ok(row) => row.is_some(),
            // The write looks again, under its lock.
            Err(_) => false,
        }
    }

    fn latest(&self, limit: usize, keep: &dyn Fn(&Item) -> bool) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        self.walk_newest(None, None, |_, item| {
            if keep(&item) {
                out.push(item);
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    fn latest_in_feed(
        &self,
        feed: &str,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        self.walk_newest(Some(feed), None, |_, item| {
            if keep(&item) {
                out.push(item);
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    fn count_in_feed(&self, feed: &str) -> usize {
        let counted = self.conn().and_then(|client| {
            self.row(
                &client,
                "SELECT count(*) FROM story_feeds WHERE feed = $1",
                &[&feed],
            )
        });
        match counted {
            Ok(Some(row)) => row.get::<_, i64>(0) as usize,
            _ => 0,
        }
    }

    fn page(
        &self,
        cursor: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let start = cursor.map(super::cursor::decode).transpose()?;
        if limit == 0 {
            return Ok((Vec::new(), None));
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        let (mut last, mut more) = (None, false);
        self.walk_newest(None, start, |at, item| {
            if !keep(&item) {
                return true;
            }
            if out.len() >= limit {
                more = true;
                return false;
            }
            out.push(item);
            last = Some(at);
            true
        })?;
        Ok((out, last.filter(|_| more).map(super::cursor::encode)))
    }

    fn first_seen_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Timestamp>), StoreError> {
        let (mut from, until) = (nanos(since), nanos(until));
        let mut out = Vec::new();
        if from >= until {
            return Ok((out, None));
        }
        let mut first = true;
        loop {
            let rows = self.rows(
                &self.conn()?,
                match first {
                    true => "SELECT seen, body FROM stories WHERE seen >= $1 AND seen < $2 ORDER BY seen LIMIT $3",
                    false => "SELECT seen, body FROM stories WHERE seen > $1 AND seen < $2 ORDER BY seen LIMIT $3",
                },
                &[&from, &until, &WALK_STEP],
            )?;
            first = false;
            for row in &rows {
                from = row.get(0);
                let item = body(row, 1)?;
                if !keep(&item) {
                    continue;
                }
                if out.len() == limit {
                    return Ok((out, Some(item.first_seen)));
                }
                out.push(item);
            }
            if (rows.len() as i64) < WALK_STEP {
                return Ok((out, None));
            }
        }
    }

    /// Waits for the write in flight, if any (writers hold [`WRITE_LOCK`]
    /// until they commit, a cursor takes it shared), then raises the
    /// floor every later stamp must pass to the database's clock: every
    /// story stamped before the cursor is committed, every later one is
    /// stamped after it, whichever instance writes it. A cursor that cannot
    /// be taken (the database is away) is the start of time: the window
    /// is then empty and its `next_since` repeats the request's `since`.
    fn cursor(&self) -> Timestamp {
        let taken = self.block(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&WRITE_LOCK])
                .await?;
            let row = tx
                .query_one(
                    "UPDATE paddock_meta SET value = GREATEST(value, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT * 1000)
                     WHERE key = 'floor' RETURNING value",
                    &[],
                )
                .await?;
            tx.commit().await?;
            Ok(row.get::<_, i64>(0))
        });
        match taken {
            Ok(ns) => chrono::DateTime::from_timestamp_nanos(ns),
            Err(e) => {
                tracing::warn!(error = %e, "no digest cursor from the database");
                chrono::DateTime::UNIX_EPOCH
            }
        }
    }

    fn recent_comments(
        &self,
        limit: usize,
        keep: &dyn Fn(&RecentComment) -> bool,
    ) -> Result<Vec<RecentComment>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<(i64, Vec<u8>)> = None;
        let mut read = 0;
        while out.len() < limit && read < super::STREAM_MAX {
            // A connection per step: `keep` may read the store itself.
            let client = self.conn()?;
            let rows = match &after {
                None => self.rows(
                    &client,
                    "SELECT time_ms, hash, entry FROM stream ORDER BY time_ms DESC, hash DESC LIMIT $1",
                    &[&WALK_STEP],
                )?,
                Some((ms, hash)) => self.rows(
                    &client,
                    "SELECT time_ms, hash, entry FROM stream WHERE (time_ms, hash) < ($1, $2)
                     ORDER BY time_ms DESC, hash DESC LIMIT $3",
                    &[ms, hash, &WALK_STEP],
                )?,
            };
            drop(client);
            for row in &rows {
                read += 1;
                after = Some((row.get(0), row.get::<_, Vec<u8>>(1)));
                let c: RecentComment = serde_json::from_slice(row.get::<_, &[u8]>(2))?;
                if out.len() < limit && read <= super::STREAM_MAX && keep(&c) {
                    out.push(c);
                }
            }
            if (rows.len() as i64) < WALK_STEP {
                break;
            }
        }
        Ok(out)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn write_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    fn prune(
        &self,
        cutoff: Timestamp,
        max_per_feed: usize,
        feeds: &[&str],
        now: Timestamp,
    ) -> Result<Pruned, StoreError> {
        retention::prune(self, cutoff, max_per_feed, feeds, now)
    }

    fn verify(&self) -> Result<Verified, StoreError> {
        retention::verify(self)
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write is committed before it returns.
        Ok(())
    }

    fn set_recent_comments(&self, n: usize) {
        self.recent_comments.store(n, Ordering::Relaxed);
    }

    fn set_min_free(&self, _bytes: u64) {
        // The database server keeps its own disk.
    }

    fn put_record(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let client = self.conn()?;
        self.exec(
            &client,
            "INSERT INTO side_records (kind, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
            &[&kind, &key, &value],
        )?;
        Ok(())
    }

    fn records(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let client = self.conn()?;
        let rows = self.rows(
            &client,
            "SELECT key, value FROM side_records WHERE kind = $1",
            &[&kind],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn delete_record(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        let client = self.conn()?;
        self.exec(
            &client,
            "DELETE FROM side_records WHERE kind = $1 AND key = $2",
            &[&kind, &key],
        )?;
        Ok(())
    }

    fn claim_feed(&self, feed: &str, lease: Duration) -> Result<Claim, StoreError> {
        lease::claim_feed(self, feed, lease)
    }

    fn renew_feed(&self, feed: &str, lease: Duration) -> Result<bool, StoreError> {
        lease::renew_feed(self, feed, lease)
    }

    fn release_feed(&self, feed: &str) {
        lease::release_feed(self, feed)
    }

    fn claim_host(
        &self,
        host: &str,
        slots: usize,
        lease: Duration,
    ) -> Result<Option<u32>, StoreError> {
        lease::claim_host(self, host, slots, lease)
    }

    fn release_host(&self, host: &str, slot: u32) {
        lease::release_host(self, host, slot)
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn shared(&self) -> bool {
        true
    }
}

/// Creates an empty database named at random on the server at `admin`,
/// and returns its URL (see `store::scratch_database`).
pub fn create_scratch(admin: &str) -> Result<String, String> {
    let name = format!("paddock_test_{:016x}", fastrand::u64(..));
    let admin = admin.to_string();
    let create = format!("CREATE DATABASE {name}");
    // A thread of its own: the caller may be inside a runtime.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin, NoTls)
                .await
                .map_err(|e| format!("{}: {e}", redact(&admin)))?;
            tokio::spawn(connection);
            client
                .batch_execute(&create)
                .await
                .map_err(|e| e.to_string())?;
            let mut url = url::Url::parse(&admin).map_err(|e| e.to_string())?;
            url.set_path(&name);
            Ok(url.to_string())
        })
    })
    .join()
    .map_err(|_| "the scratch database's thread panicked".to_string())?
}
