//! The store: everything Paddock keeps, behind one narrow interface,
//! [`Storage`]. The rest of Paddock holds an `Arc<Store>` (a
//! `dyn Storage`) and sees no keys, trees, encodings or cursor layouts.
//! What a story becomes is decided above it (`stories`); a backend only
//! persists what was decided, atomically.
//!
//! `sled/` is the embedded backend, the default. The interface is the one
//! a SQL database implements as it is: one atomic write per poll, reads by
//! id, by time, by `first_seen` window and by page, the recent comments,
//! retention and a self-check. Its methods block; callers run them on the
//! runtime's blocking threads.

pub mod cursor;
pub(crate) mod pending;
mod postgres;
mod sled;

pub use self::postgres::{CALL_TIMEOUT, Claim, redact};
pub use self::sled::{STREAM_MAX, TOMBSTONE_KEEP};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{
    Candidate, FeedState, IngestReport, Item, ItemId, PolledDocument, RecentComment, Timestamp,
    Validators,
};

/// The store as the rest of Paddock holds it.
pub type Store = dyn Storage;

/// The default of `[storage].min_free_bytes`: 64 MiB.
pub const DEFAULT_MIN_FREE: u64 = 64 << 20;

/// Opens (or creates) the store at `path`, with `cache_bytes` of page
/// cache.
pub fn open(path: &Path, cache_bytes: u64) -> Result<Arc<Store>, StoreError> {
    Ok(Arc::new(self::sled::SledStore::open(path, cache_bytes)?))
}

/// Connects to the PostgreSQL database at `url` (a `postgres://` URL)
/// with at most `pool_size` connections, creating or checking its schema.
pub fn open_postgres(url: &str, pool_size: usize) -> Result<Arc<Store>, StoreError> {
    Ok(Arc::new(self::postgres::PgStore::open(url, pool_size)?))
}

/// Where the store `[storage]` names is, for messages: the database's URL
/// without its password, or sled's directory.
pub fn location(storage: &crate::config::StorageConfig) -> String {
    match &storage.url {
        Some(url) => redact(url),
        None => storage.path.display().to_string(),
    }
}

/// The store `[storage]` names: PostgreSQL when `url` is set, else sled
/// at `path`.
pub fn open_configured(storage: &crate::config::StorageConfig) -> Result<Arc<Store>, StoreError> {
    match &storage.url {
        Some(url) => open_postgres(url, storage.pool_size),
        None => open(&storage.path, storage.cache_bytes),
    }
}

/// Comment ids are URLs or guids of any length, unique only within a
/// site: stores key comments by a fixed-size hash of the feed id and the
/// comment id.
pub(crate) fn comment_hash(feed: &str, id: &str) -> [u8; 16] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(feed.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    h.finalize()[..16].try_into().expect("16 bytes")
}

/// The cross-feed dedupe key of a canonical link, which tombstones keep:
/// 8 bytes of its SHA-256, stable across builds and backends. Where a
/// collision would merge two stories, callers compare the links themselves.
pub(crate) fn link_hash(link: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(link.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// One record of a store, as `paddock store copy` moves it.
pub(crate) enum Exported {
    Story(Box<Item>),
    Tombstone {
        id: ItemId,
        link_hash: Option<u64>,
        removed: Timestamp,
    },
    State(String, FeedState),
    Validators(String, Validators),
    Comment {
        hash: [u8; 16],
        item: Option<ItemId>,
        time: Timestamp,
        stored: Timestamp,
    },
    Stream {
        hash: [u8; 16],
        time: Timestamp,
        entry: RecentComment,
    },
    Waiting {
        link: String,
        hash: [u8; 16],
        comment: crate::model::Comment,
    },
}

/// What [`copy_to_postgres`] copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub stories: usize,
    pub tombstones: usize,
    pub feed_states: usize,
    pub comments: usize,
    pub waiting: usize,
}

/// Records written per transaction by a copy.
const COPY_BATCH: usize = 1000;

/// Copies the sled store at `from` into the empty PostgreSQL database at
/// `to`: every story with its id and `first_seen`, tombstones, feed
/// states and validators, comments, the recent-comments stream and
/// comments waiting for their story. A database that already holds
/// stories is refused. `progress` sees the running count of stories.
pub fn copy_to_postgres(
    from: &Path,
    cache_bytes: u64,
    to: &str,
    pool_size: usize,
    progress: &dyn Fn(&Copied),
) -> Result<Copied, StoreError> {
    let source = self::sled::SledStore::open(from, cache_bytes)?;
    let target = self::postgres::PgStore::open(to, pool_size)?;
    if !target.is_empty()? {
        return Err(StoreError::Corrupt(format!(
            "the database at {} already holds stories: copy into an empty database",
            redact(to)
        )));
    }
    let mut copied = Copied::default();
    let mut batch = Vec::with_capacity(COPY_BATCH);
    source.export(&mut |record| {
        batch.push(record);
        if batch.len() == COPY_BATCH {
            target.import(std::mem::take(&mut batch), &mut copied)?;
            progress(&copied);
        }
        Ok(())
    })?;
    target.import(batch, &mut copied)?;
    progress(&copied);
    Ok(copied)
}

/// Everything Paddock needs from storage.
pub trait Storage: Send + Sync {
    /// Stores what one poll of `feed` brought (its document's stories, the
    /// comments documents read with it, the feed's new state) in one
    /// atomic write, and returns once it is durable. A story already
    /// stored (same id, or same canonical link through another feed) is
    /// updated as `stories::merge` says and keeps its id and `first_seen`;
    /// a pruned one stays pruned.
    fn record_poll(
        &self,
        feed: &str,
        poll: PolledDocument,
        now: Timestamp,
    ) -> Result<IngestReport, StoreError>;

    /// Records a feed's state alone (a failed poll). A state that cannot
    /// be written is still returned by [`Storage::feed_state`] until
    /// restart, so the failure shows; it never carries newer validators.
    fn put_feed_state(&self, feed: &str, state: &FeedState) -> Result<(), StoreError>;

    fn feed_state(&self, feed: &str) -> Result<FeedState, StoreError>;

    /// Several feeds' states at once (outputs name every feed), in the
    /// order asked; a feed never polled has the default state.
    fn feed_states(&self, feeds: &[&str]) -> Result<Vec<FeedState>, StoreError> {
        feeds.iter().map(|f| self.feed_state(f)).collect()
    }

    /// The feed's state when the backend holds it in memory: never
    /// blocks, so a poll that finds it skips a trip to the blocking pool.
    fn cached_feed_state(&self, feed: &str) -> Option<FeedState>;

    /// The validators last stored for a comment feed's URL.
    fn validators(&self, url: &str) -> Result<Validators, StoreError>;

    fn item(&self, id: &ItemId) -> Result<Option<Item>, StoreError>;

    /// The stored story `candidate` would update: the same id, or the same
    /// canonical link through another feed.
    fn story_for(&self, candidate: &Candidate) -> Result<Option<Item>, StoreError>;

    /// Whether retention removed the story `candidate` would be (by id or
    /// canonical link) and its tombstone still stands.
    fn pruned(&self, candidate: &Candidate) -> bool;

    /// Stories newest first (by sort time), skipping those `keep` rejects,
    /// at most `limit`.
    fn latest(&self, limit: usize, keep: &dyn Fn(&Item) -> bool) -> Result<Vec<Item>, StoreError>;

    /// One feed's stories (owned or also carried), newest first, skipping
    /// those `keep` rejects, at most `limit`.
    fn latest_in_feed(
        &self,
        feed: &str,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Vec<Item>, StoreError>;

    /// How many stories a feed carries.
    fn count_in_feed(&self, feed: &str) -> usize;

    /// A page of stories newest first, after `cursor` (an opaque string
    /// from the previous page; a bad one is [`StoreError::Cursor`]), and
    /// the cursor of the next, older page when there is one. Cursors are
    /// exact positions: stories with the same time are never skipped or
    /// repeated across pages.
    fn page(
        &self,
        cursor: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<String>), StoreError>;

    /// Stories first seen in `[since, until)` that `keep` accepts, oldest
    /// first, at most `limit`; and, when more remain, the `first_seen` of
    /// the first one left out.
    fn first_seen_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Timestamp>), StoreError>;

    /// A digest cursor: every story and comment stamped before it is
    /// stored and visible, every later one is stamped at or after it.
    /// On sled it never waits for a writer; on PostgreSQL it waits for the
    /// write in flight, if any.
    fn cursor(&self) -> Timestamp;

    /// The newest comments across all feeds that `keep` accepts, newest
    /// first, at most `limit`, from the newest [`STREAM_MAX`].
    fn recent_comments(
        &self,
        limit: usize,
        keep: &dyn Fn(&RecentComment) -> bool,
    ) -> Result<Vec<RecentComment>, StoreError>;

    /// Changes whenever stored content that an output shows changes.
    fn generation(&self) -> u64;

    /// Time spent writing since the store was opened.
    fn write_time(&self) -> Duration;

    /// One retention pass (see the README's Retention).
    fn prune(
        &self,
        cutoff: Timestamp,
        max_per_feed: usize,
        feeds: &[&str],
        now: Timestamp,
    ) -> Result<Pruned, StoreError>;

    /// Checks the store's own invariants, for `check --store`.
    fn verify(&self) -> Result<Verified, StoreError>;

    fn flush(&self) -> Result<(), StoreError>;

    /// How many recent comments each story keeps from now on.
    fn set_recent_comments(&self, n: usize);

    /// The free space the store's disk must keep (`[storage].min_free_bytes`).
    fn set_min_free(&self, bytes: u64);

    /// Puts a small record of `kind` (such as a WebSub subscription) under
    /// `key`, replacing the one there; kept across restarts, written at
    /// once.
    fn put_record(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Every record of `kind`, by key.
    fn records(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    fn delete_record(&self, kind: &str, key: &str) -> Result<(), StoreError>;

    /// Claims `feed` for this process for `lease`, unless another
    /// process's lease on it still runs: instances sharing a store poll
    /// each feed one at a time. A store only one process can open (sled)
    /// always answers [`Claim::Won`].
    fn claim_feed(&self, _feed: &str, _lease: Duration) -> Result<Claim, StoreError> {
        Ok(Claim::Won)
    }

    /// Extends this process's lease on `feed` to `lease` from now, if it
    /// still holds it; never takes it back once let go of.
    fn renew_feed(&self, _feed: &str, _lease: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Lets go of a feed's lease early (the poll is written).
    fn release_feed(&self, _feed: &str) {}

    /// Claims one of `slots` fetch slots of `host` for `lease`, counted
    /// across every process sharing the store; `None` when all are held.
    fn claim_host(
        &self,
        _host: &str,
        _slots: usize,
        _lease: Duration,
    ) -> Result<Option<u32>, StoreError> {
        Ok(Some(0))
    }

    fn release_host(&self, _host: &str, _slot: u32) {}

    /// The backend's name, for logs and status.
    fn backend(&self) -> &'static str {
        "sled"
    }

    /// Whether other processes may use the store at the same time (and
    /// so leases matter).
    fn shared(&self) -> bool {
        false
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another Paddock process (a running `paddock serve`?); stop it or point --config at another store"
    )]
    Locked { path: String },
    #[error("cannot open the store at {path}: {detail}")]
    Open { path: String, detail: String },
    #[error(
        "the store at {path} has schema version {found}, this Paddock reads version {expected}; use a matching Paddock or a fresh [storage].path"
    )]
    Schema {
        path: String,
        found: String,
        expected: u32,
    },
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error(
        "the disk holding the store is out of room ({0}); free space on it: stories stored before are kept and served, new ones are fetched again once there is room"
    )]
    Full(String),
    #[error("a stored record could not be decoded: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("{0}")]
    Corrupt(String),
    #[error("the database failed: {0}")]
    Database(String),
    #[error("not a page cursor: use the cursor of an \"older\" link as it is")]
    Cursor,
}

/// What [`Storage::verify`] found.
#[derive(Debug, Default)]
pub struct Verified {
    pub items: usize,
    pub problems: Vec<String>,
    /// Comment records joined to a story no longer stored: retention
    /// removes them on its next pass.
    pub orphan_comments: usize,
}

/// What a retention pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub old: usize,
    pub over_limit: usize,
    pub tombstones_expired: usize,
    pub waiting_comments: usize,
    /// Comment records (and stream entries) whose story is gone, and
    /// unjoined ones older than the cutoff.
    pub comments: usize,
}

/// For tests: a fresh, empty database on the PostgreSQL server that the
/// `PADDOCK_TEST_POSTGRES` environment variable names (a URL of a role
/// that may create databases), so that every test has its own. `None`,
/// with a `SKIPPED:` line naming `test`, when it is unset; under `CI=true`
/// its absence is a failure instead.
#[doc(hidden)]
pub fn scratch_database(test: &str) -> Option<String> {
    let Ok(admin) = std::env::var("PADDOCK_TEST_POSTGRES") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI=true but PADDOCK_TEST_POSTGRES is unset; .ci/run starts a PostgreSQL server for these tests"
        );
        eprintln!(
            "SKIPPED: {test}: no PostgreSQL (set PADDOCK_TEST_POSTGRES to a server's URL, see scripts/throwaway-postgres.sh)"
        );
        return None;
    };
    Some(postgres::create_scratch(&admin).expect("a scratch database on PADDOCK_TEST_POSTGRES"))
}

#[cfg(test)]
mod tests;
