//! The sled backend, the embedded default: the only module that knows
//! sled. One tree, a documented key layout (`keys`), JSON values (stories
//! LZ4-compressed), a schema version checked at open, story indexes in
//! memory (`index`), and one writer at a time so that a poll's lookups and
//! its atomic batch see the same state.

mod codec;
mod comment_records;
mod export;
mod index;
mod keys;
mod migrate;
mod retention;

pub use comment_records::STREAM_MAX;
pub use retention::TOMBSTONE_KEEP;

use super::{DEFAULT_MIN_FREE, Pruned, StoreError, Verified};

use super::pending::Pending;
use codec::{decode_item, encode_item, set_first_seen, story_key};
use comment_records::Named;
use index::{Edits, Head, Index, Position};

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::model::{
    Candidate, CommentReport, FeedState, IngestReport, Item, ItemId, PolledDocument, RecentComment,
    Timestamp, Validators, later,
};
use crate::stories;

/// How long [`SledStore::open`] waits for a store that is locked.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Bumped whenever the key layout or a value's meaning changes.
pub const SCHEMA_VERSION: u32 = 2;

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match &e {
            // ENOSPC, EFBIG (a file size limit), EDQUOT: out of room.
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::StorageFull
                    || io.kind() == std::io::ErrorKind::FileTooLarge
                    || io.kind() == std::io::ErrorKind::QuotaExceeded =>
            {
                StoreError::Full(io.to_string())
            }
            _ => StoreError::Io(e.to_string()),
        }
    }
}

pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    /// sled batches are atomic but lookups before them are not; one writer
    /// at a time keeps "is this story new?" and the write consistent. A std
    /// mutex: it is held only around short synchronous sled calls. It holds
    /// the last `first_seen` handed out (see [`SledStore::cursor`]).
    writer: Mutex<Timestamp>,
    /// Every feed state read or written so far, as in the tree: outputs
    /// read all feeds' states on every request. Filled on a miss with this
    /// lock held across the tree read, and written after the tree under
    /// the writer lock, so it can never keep an older state than the tree.
    /// Kept encoded, as the tree holds them: about 200 bytes a feed where
    /// the decoded form takes about 600, which at a million feeds is 400 MB.
    states: Mutex<HashMap<Box<str>, Box<[u8]>>>,
    /// The story indexes, rebuilt at open and changed only by a writer,
    /// after its batch is written.
    index: RwLock<Index>,
    /// Stamps and digest cursors, without a reader taking `writer`.
    stamps: Stamps,
    /// Nanoseconds spent holding `writer`, for [`SledStore::write_time`].
    busy: AtomicU64,
    /// Bumped on every change that an output could show.
    generation: AtomicU64,
    /// How many recent comments each story keeps (`[output].recent_comments`).
    recent_comments: AtomicUsize,
    /// Free bytes the store's disk must keep: a write of stories or
    /// comments that finds less refuses itself, so sled never meets a
    /// full disk (it cannot even open on one).
    min_free: AtomicU64,
    /// The store's directory, where free space is measured.
    path: std::path::PathBuf,
    /// At least the number of entries in the recent-comments stream, so
    /// that trimming it does not have to count it on every write.
    stream_len: AtomicUsize,
    /// Hashes of the links that comments may be waiting for (`o:` keys):
    /// a new story looks for its waiting comments only when its link is
    /// here. Filled at open and when a comment starts waiting; a link stays
    /// until restart (8 bytes each), so it may hold links with none left.
    orphan_links: Mutex<HashSet<u64>>,
}

impl SledStore {
    /// Opens (or creates) the store at `path`, with sled's page cache capped
    /// at `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        let shown = path.display().to_string();
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500));
        // sled's own threads let go of the store's file lock a moment after
        // it is closed, so a store closed and reopened in one process may
        // find it still locked: wait for it, up to `LOCK_WAIT`.
        let started = Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    if started.elapsed() >= LOCK_WAIT {
                        return Err(StoreError::Locked { path: shown });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(StoreError::Open {
                        path: shown,
                        detail: e.to_string(),
                    });
                }
            }
        };
        let tree = db.open_tree("paddock")?;
        match tree.get(keys::SCHEMA)? {
            None => {
                tree.insert(keys::SCHEMA, SCHEMA_VERSION.to_string().as_bytes())?;
                tree.insert(migrate::CLEAN, b"1".as_slice())?;
            }
            Some(v) if v.as_ref() == SCHEMA_VERSION.to_string().as_bytes() => {}
            Some(v) if v.as_ref() == b"1" => migrate::from_v1(&tree)?,
            Some(v) => {
                return Err(StoreError::Schema {
                    path: shown,
                    found: String::from_utf8_lossy(&v).into_owned(),
                    expected: SCHEMA_VERSION,
                });
            }
        }
        migrate::drop_v1_indexes(&tree)?;
        let cleaned = migrate::clean_stories(&tree)?;
        if cleaned > 0 {
            tracing::info!(
                stories = cleaned,
                "stored stories' HTML sanitized once, as ingest now does"
            );
        }
        let index = Index::load(&tree)?;
        // first_seen stamps only grow, across restarts too.
        let last_stamp = index
            .by_seen
            .last_key_value()
            .map(|(&ns, _)| chrono::DateTime::from_timestamp_nanos(ns))
            .unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let stream_len = tree.scan_prefix(keys::STREAM).keys().count();
        let mut orphan_links = HashSet::new();
        for key in tree.scan_prefix(keys::ORPHAN).keys() {
            if let Some(link) = keys::orphan_link(&key?) {
                orphan_links.insert(index::link_hash(&link));
            }
        }
        Ok(SledStore {
            db,
            tree,
            writer: Mutex::new(last_stamp),
            stamps: Stamps {
                committed: AtomicI64::new(index::nanos(last_stamp)),
                ..Stamps::default()
            },
            index: RwLock::new(index),
            busy: AtomicU64::new(0),
            states: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(1),
            recent_comments: AtomicUsize::new(5),
            min_free: AtomicU64::new(DEFAULT_MIN_FREE),
            path: path.to_path_buf(),
            stream_len: AtomicUsize::new(stream_len),
            orphan_links: Mutex::new(orphan_links),
        })
    }

    /// Sets the free space the store's disk must keep (`[storage].min_free_bytes`).
    pub fn set_min_free(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// Refuses a write when the disk has less free space than the
    /// reserve. Feed states are small and always written, so a poll's
    /// failure can still be recorded.
    fn room(&self) -> Result<(), StoreError> {
        let want = self.min_free.load(Ordering::Relaxed);
        match fs2::available_space(&self.path) {
            Ok(free) if free < want => Err(StoreError::Full(format!(
                "{free} bytes free, less than the {want} bytes [storage].min_free_bytes keeps"
            ))),
            // A disk that cannot say is written to; sled reports if it fails.
            _ => Ok(()),
        }
    }

    /// Sets how many recent comments each story keeps from now on.
    pub fn set_recent_comments(&self, n: usize) {
        self.recent_comments.store(n, Ordering::Relaxed);
    }

    fn keep_comments(&self) -> usize {
        self.recent_comments.load(Ordering::Relaxed)
    }

    /// The validators last received for a comment feed.
    pub fn validators(&self, url: &str) -> Result<Validators, StoreError> {
        Ok(self.get(&keys::validators(url))?.unwrap_or_default())
    }

    /// Changes whenever stored content that the feed outputs show changes
    /// (stories, comments, feed titles); poll bookkeeping leaves it alone.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Time spent writing (holding the writer lock) since the store was
    /// opened. Writes are serialized, so when this grows by nearly a second
    /// per second the store is what limits polling.
    pub fn write_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    fn write_lock(&self) -> Writing<'_> {
        let last_stamp = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.stamps.in_flight.fetch_add(1, Ordering::SeqCst);
        Writing {
            last_stamp,
            stamps: &self.stamps,
            busy: &self.busy,
            since: Instant::now(),
        }
    }

    fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a write's head changes to memory. Called with the writer
    /// lock held, after the write's batch.
    fn apply(&self, edits: Edits) {
        let mut index: RwLockWriteGuard<'_, Index> =
            self.index.write().unwrap_or_else(|p| p.into_inner());
        edits.apply(&mut index);
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Waits until everything written so far is on disk: sled's flush, one
    /// fsync that writers finishing together share. A poll's stories count
    /// as stored only after it. When it fails, `feed`'s state leaves the
    /// memory cache: the validators there may be newer than the disk's,
    /// and a poll must never skip a document the disk does not hold.
    pub fn sync(&self, feed: &str) -> Result<(), StoreError> {
        match self.db.flush() {
            Ok(_) => Ok(()),
            Err(e) => {
                self.forget_state(feed);
                Err(e.into())
            }
        }
    }

    pub fn feed_state(&self, feed: &str) -> Result<FeedState, StoreError> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = states.get(feed) {
            return Ok(serde_json::from_slice(state)?);
        }
        match self.tree.get(keys::state(feed))? {
            Some(bytes) => {
                let state = serde_json::from_slice(&bytes)?;
                states.insert(feed.into(), bytes.as_ref().into());
                Ok(state)
            }
            None => {
                let state = FeedState::default();
                states.insert(feed.into(), serde_json::to_vec(&state)?.into());
                Ok(state)
            }
        }
    }

    /// Records a feed's state as written to the tree. Called with the
    /// writer lock held, after the write.
    fn cache_state(&self, feed: &str, state: &FeedState) {
        let Ok(bytes) = serde_json::to_vec(state) else {
            return self.forget_state(feed);
        };
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.insert(feed.into(), bytes.into());
    }

    fn forget_state(&self, feed: &str) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.remove(feed);
    }

    /// Records a poll that stored nothing (a 304 or a failure). The
    /// generation stays: no output shows a feed's poll times.
    ///
    /// A state that cannot be written (a full disk) is still kept in
    /// memory, so the feed's status shows the failure: these states never
    /// carry validators newer than the stored ones (only a document's
    /// write, with its stories, advances them).
    pub fn put_feed_state(&self, feed: &str, state: &FeedState) -> Result<(), StoreError> {
        let _w = self.write_lock();
        let written = self
            .tree
            .insert(keys::state(feed), serde_json::to_vec(state)?);
        self.cache_state(feed, state);
        written?;
        Ok(())
    }

    pub fn item(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        match self.index().stored.get(id) {
            Some(&seen) => self.story_at(seen),
            None => Ok(None),
        }
    }

    /// The story first seen at `seen` (nanoseconds): its key.
    fn story_at(&self, seen: i64) -> Result<Option<Item>, StoreError> {
        match self.tree.get(keys::item(seen))? {
            Some(bytes) => Ok(Some(decode_item(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Stores what one poll of `feed` brought (its document's stories, the
    /// comments documents read with it, the feed's new state) in one
    /// atomic batch, and returns once it is on disk: a story that arrives
    /// with its comments is written once, with them, and the validators
    /// never stand without the stories they stand for. A write with
    /// stories or comments keeps `[storage].min_free_bytes` free.
    pub fn record_poll(
        &self,
        feed: &str,
        poll: PolledDocument,
        now: Timestamp,
    ) -> Result<IngestReport, StoreError> {
        let PolledDocument {
            candidates,
            comments,
            state,
        } = poll;
        let state = &state;
        let news = !candidates.is_empty() || !comments.is_empty();
        let before = self.feed_state(feed)?;
        let renamed = before.title != state.title;
        if !news && !renamed && before.validators == state.validators {
            // A 304 with nothing new: only the feed's state changes.
            self.put_feed_state(feed, state)?;
            return Ok(IngestReport::default());
        }
        if news {
            self.room()?;
        }
        // Before taking the writer lock, build each candidate as a new
        // story and encode the ones the store does not hold yet: encoding
        // is the largest part of a write, and other writers can go on
        // meanwhile. Under the lock, only `first_seen` is patched in. A
        // story that a comment here names is encoded once, at the end.
        let named = Named::of(comments.iter().flat_map(|c| &c.comments));
        let to_encode: Vec<bool> = {
            let index = self.index();
            candidates
                .iter()
                .map(|c| !index.stored.contains_key(&c.fresh_id) && !named.names(c))
                .collect()
        };
        let prepared = candidates
            .into_iter()
            .zip(to_encode)
            .map(|(c, encode)| prepare(feed, c, encode, now))
            .collect::<Result<Vec<_>, _>>()?;
        let state_value = serde_json::to_vec(state)?;

        let mut last_stamp = self.write_lock();
        let mut batch = sled::Batch::default();
        let mut edits = Edits::default();
        let mut stories = Pending::default();
        let mut report = IngestReport::default();
        for Prepared {
            mut fresh,
            canonical_link,
            encoded,
        } in prepared
        {
            // Only this writer changes the index, so one look serves.
            let (linked, stored, pruned) = {
                let index = self.index();
                let linked = canonical_link.as_deref().and_then(|l| index.linked(l));
                let pruned = index.pruned.contains(&fresh.id)
                    || linked.is_some_and(|id| index.pruned.contains(&id));
                (linked, index.stored.contains_key(&fresh.id), pruned)
            };
            let existing = match stored {
                true => self.item(&fresh.id)?,
                // The same link through another feed: the same story (the
                // links are compared, not only their hashes).
                false => match linked {
                    Some(id) => self.item(&id)?.filter(|i| i.link == canonical_link),
                    None => None,
                },
            };
            // A pruned story that its feed still lists stays pruned.
            if existing.is_none() && pruned {
                report.pruned += 1;
                continue;
            }
            match existing {
                None => {
                    fresh.first_seen = last_stamp.stamp();
                    // Comments that arrived before their story join it now.
                    let stored = fresh.first_seen;
                    let joined = self.attach_orphans(&mut fresh, &mut batch, stored)?;
                    edits.change(&self.tree, None, Some(Head::of(&fresh)))?;
                    report.new.push(fresh.id);
                    match encoded {
                        Some(mut value) if !joined => {
                            set_first_seen(&mut value, fresh.first_seen);
                            stories.put_encoded(fresh, value);
                        }
                        _ => stories.put(fresh),
                    }
                }
                Some(old) => {
                    let owner_site = match old.feed == feed {
                        true => None,
                        false => self.feed_state(&old.feed)?.site_link,
                    };
                    let takes_over = stories::takes_over(
                        &old,
                        feed,
                        state.site_link.as_deref(),
                        owner_site.as_deref(),
                    );
                    let mut item = stories::merge(old.clone(), feed, fresh, takes_over);
                    if item == old {
                        report.unchanged += 1;
                        continue;
                    }
                    if item.link != old.link {
                        let stored = last_stamp.stamp();
                        self.attach_orphans(&mut item, &mut batch, stored)?;
                    }
                    edits.change(&self.tree, Some(Head::of(&old)), Some(Head::of(&item)))?;
                    report.updated.push(item.id);
                    stories.put(item);
                }
            }
        }
        let mut streamed = 0;
        let mut comments_changed = false;
        if !comments.is_empty() {
            let stored = last_stamp.stamp();
            let mut total = CommentReport::default();
            for c in comments {
                let joined = self.join_comments(feed, c, &mut stories, &mut batch, now, stored)?;
                streamed += joined.streamed;
                comments_changed |= joined.changed || joined.report.new > 0;
                total += joined.report;
            }
            report.comments = Some(total);
        }
        for (item, value) in stories.finish(now) {
            let value = match value {
                Some(value) => value,
                None => encode_item(&item)?,
            };
            batch.insert(story_key(&item), value);
        }
        edits.write(&mut batch)?;
        batch.insert(keys::state(feed), state_value);
        let written = self.tree.apply_batch(batch);
        // A state that cannot be written is still shown (see
        // `put_feed_state`); a document's state, whose validators are new,
        // is kept only once written.
        written?;
        self.apply(edits);
        self.cache_state(feed, state);
        // Orphans joined to new stories enter the stream, and so do the
        // comments here.
        self.streamed(streamed)?;
        // Outputs name feeds by their own titles too.
        if renamed || comments_changed || !report.new.is_empty() || !report.updated.is_empty() {
            self.bump();
        }
        drop(last_stamp);
        if news {
            self.sync(feed)?;
        }
        Ok(report)
    }

    /// The stored story `candidate` would update: the same id, or the same
    /// canonical link through another feed. What a poll compares a
    /// document with before it is stored (has a story's count changed?).
    pub fn story_for(&self, candidate: &Candidate) -> Result<Option<Item>, StoreError> {
        if let Some(item) = self.item(&candidate.fresh_id)? {
            return Ok(Some(item));
        }
        let linked = (candidate.canonical_link.as_deref()).and_then(|l| self.index().linked(l));
        match linked {
            Some(id) => Ok(self
                .item(&id)?
                .filter(|i| i.link == candidate.canonical_link)),
            None => Ok(None),
        }
    }

    /// A digest cursor: every story (and comment) stamped before it is
    /// stored and visible, every one stamped later is stamped at or after
    /// it. Never waits for a writer (see [`Stamps`]).
    pub fn cursor(&self) -> Timestamp {
        chrono::DateTime::from_timestamp_nanos(self.stamps.cursor())
    }

    /// Stories first seen in `[since, until)` that `keep` accepts, oldest
    /// first, at most `limit`; and, when more remain, the `first_seen` of
    /// the first one left out (the next window's start).
    pub fn first_seen_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Timestamp>), StoreError> {
        let (since, until) = (index::nanos(since), index::nanos(until));
        let mut out = Vec::new();
        let mut next = None;
        if since >= until {
            return Ok((out, next));
        }
        self.walk(
            |index, after| {
                let from = after.map_or(Bound::Included(since), Bound::Excluded);
                let range = index.by_seen.range((from, Bound::Excluded(until)));
                range.take(WALK_STEP).map(|(&ns, &id)| (ns, id)).collect()
            },
            |_, item| {
                if !keep(&item) {
                    return true;
                }
                if out.len() == limit {
                    next = Some(item.first_seen);
                    return false;
                }
                out.push(item);
                true
            },
        )?;
        Ok((out, next))
    }

    /// Stories newest first, skipping those `keep` rejects, at most `limit`.
    pub fn latest(
        &self,
        limit: usize,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        self.walk(
            |index, after| newest_first(&index.by_time, after),
            |_, item| {
                if keep(&item) {
                    out.push(item);
                }
                out.len() < limit
            },
        )?;
        Ok(out)
    }

    /// A page of stories newest first, starting after `cursor` (from the
    /// previous page); returns the cursor of the next, older page when there
    /// is more. Cursors are exact positions (sort time, then id), so stories
    /// with the same time are never skipped or repeated across pages.
    pub fn page_at(
        &self,
        start: Option<Position>,
        limit: usize,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Position>), StoreError> {
        if limit == 0 {
            return Ok((Vec::new(), None));
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut last = None;
        let mut more = false;
        self.walk(
            |index, after| newest_first(&index.by_time, after.or(start)),
            |at, item| {
                if !keep(&item) {
                    return true;
                }
                // A next page exists only if another story would be on it.
                if out.len() >= limit {
                    more = true;
                    return false;
                }
                out.push(item);
                last = Some(at);
                true
            },
        )?;
        Ok((out, last.filter(|_| more)))
    }

    /// One feed's stories (owned or also carried), newest first, those
    /// `keep` accepts.
    pub fn latest_in_feed(
        &self,
        feed: &str,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        self.walk(
            |index, after| match index.by_feed.get(feed) {
                Some(set) => set.newest_before(after, WALK_STEP),
                None => Vec::new(),
            },
            |_, item| {
                if keep(&item) {
                    out.push(item);
                }
                out.len() < limit
            },
        )?;
        Ok(out)
    }

    /// How many stories a feed carries.
    pub fn count_in_feed(&self, feed: &str) -> usize {
        self.index().by_feed.get(feed).map_or(0, |set| set.len())
    }

    /// Reads stories in an index's order: `next` takes the next few index
    /// entries after a position, under the index's read lock; `visit` gets
    /// each story still stored, with the lock released, until it returns
    /// false or the index runs out.
    fn walk<K: Copy>(
        &self,
        next: impl Fn(&Index, Option<K>) -> Vec<(K, ItemId)>,
        mut visit: impl FnMut(K, Item) -> bool,
    ) -> Result<(), StoreError> {
        let mut after = None;
        loop {
            let step = next(&self.index(), after);
            let Some(&(at, _)) = step.last() else {
                return Ok(());
            };
            after = Some(at);
            for (at, id) in step {
                if let Some(item) = self.item(&id)?
                    && !visit(at, item)
                {
                    return Ok(());
                }
            }
        }
    }

    /// Checks the store's own invariants: every story is keyed by its
    /// `first_seen` and has a matching head, every head points at a story,
    /// the indexes in memory are the ones the heads give, no canonical link
    /// belongs to two stories. For `paddock check --store` and the crash
    /// tests. Holds the writer lock, so no write lands halfway through.
    pub fn verify(&self) -> Result<Verified, StoreError> {
        let _writer = self.write_lock();
        let mut report = Verified::default();
        let mut heads = HashMap::new();
        for entry in self.tree.scan_prefix(keys::HEADS) {
            let (key, value) = entry?;
            for head in index::decode_group(&key, &value)? {
                if head.group_key() != key.as_ref() {
                    report.problems.push(format!(
                        "story {}'s head is in another day's group",
                        head.id
                    ));
                }
                if let Some(other) = heads.insert(head.id, head) {
                    report
                        .problems
                        .push(format!("story {} has two heads", other.id));
                }
            }
        }
        let mut links = HashMap::new();
        for entry in self.tree.scan_prefix(keys::ITEM) {
            let (key, value) = entry?;
            let item = decode_item(&value)?;
            report.items += 1;
            if key.as_ref() != story_key(&item) {
                report
                    .problems
                    .push(format!("story {} is not keyed by its first_seen", item.id));
            }
            if heads.remove(&item.id) != Some(Head::of(&item)) {
                report
                    .problems
                    .push(format!("story {} has no head, or a stale one", item.id));
            }
            if let Some(link) = &item.link
                && let Some(other) = links.insert(link.clone(), item.id)
            {
                report.problems.push(format!(
                    "stories {other} and {} share the link {link}",
                    item.id
                ));
            }
        }
        for id in heads.keys() {
            report
                .problems
                .push(format!("a head points at no story ({id})"));
        }
        for entry in self.tree.scan_prefix(keys::COMMENT) {
            let (_, value) = entry?;
            if self.comment_is_stale(&value, chrono::DateTime::<chrono::Utc>::MIN_UTC) {
                report.orphan_comments += 1;
            }
        }
        if *self.index() != Index::load(&self.tree)? {
            report
                .problems
                .push("the indexes in memory differ from the stored heads".to_string());
        }
        Ok(report)
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree.get(key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// A candidate as the new story it would be, encoded when `encode` (the
/// store did not hold its id when looked up before the writer lock; the
/// writer looks again).
fn prepare(feed: &str, c: Candidate, encode: bool, now: Timestamp) -> Result<Prepared, StoreError> {
    let canonical_link = c.canonical_link.clone();
    let fresh = Item::new(feed, c, chrono::DateTime::UNIX_EPOCH, now);
    let encoded = match encode {
        true => Some(encode_item(&fresh)?),
        false => None,
    };
    Ok(Prepared {
        fresh,
        canonical_link,
        encoded,
    })
}

/// How stamps (`first_seen`, a comment's storage time) and digest cursors
/// agree without a reader ever taking the writer lock. Writers stamp
/// under the lock, later than every stamp before and than `floor`; a
/// reader that wants a cursor first raises `floor` to the clock, so no
/// write that begins afterwards can stamp before it. If no write is in
/// flight, the clock is the cursor; if one is, its stamps may be earlier
/// and not yet visible, so the cursor is the last stamp of the last write
/// that finished (`committed`). Cursors only grow (`issued`). All of it in
/// nanoseconds, sequentially consistent: the reader's raise-then-look and
/// the writer's enter-then-read-floor cannot both miss each other.
#[derive(Default)]
struct Stamps {
    floor: AtomicI64,
    in_flight: AtomicUsize,
    committed: AtomicI64,
    issued: AtomicI64,
}

impl Stamps {
    fn cursor(&self) -> i64 {
        let now = index::nanos(chrono::Utc::now());
        self.floor.fetch_max(now, Ordering::SeqCst);
        let safe = match self.in_flight.load(Ordering::SeqCst) {
            0 => now,
            _ => self.committed.load(Ordering::SeqCst),
        };
        self.issued.fetch_max(safe, Ordering::SeqCst).max(safe)
    }
}

/// How many index entries a reader takes per turn of the read lock.
const WALK_STEP: usize = 64;

/// The next entries of an ordered index, newest first, after `after`.
fn newest_first(set: &BTreeSet<Position>, after: Option<Position>) -> Vec<(Position, ItemId)> {
    let end = after.map_or(Bound::Unbounded, Bound::Excluded);
    let range = set.range((Bound::Unbounded, end)).rev();
    range.take(WALK_STEP).map(|&at| (at, at.1)).collect()
}

/// The writer lock, held: derefs to the last `first_seen` handed out,
/// hands out stamps, and adds the time it was held to the store's write
/// time. While it is held a write is in flight (see [`Stamps`]).
struct Writing<'a> {
    last_stamp: MutexGuard<'a, Timestamp>,
    stamps: &'a Stamps,
    busy: &'a AtomicU64,
    since: Instant,
}

impl Writing<'_> {
    /// A stamp later than every one handed out before and than every
    /// cursor a reader took, so that stories have a strict order and a
    /// digest cursor never splits a write.
    fn stamp(&mut self) -> Timestamp {
        let floor = self.stamps.floor.load(Ordering::SeqCst);
        let next = later(*self.last_stamp, Duration::from_nanos(1))
            .max(chrono::DateTime::from_timestamp_nanos(floor) + chrono::Duration::nanoseconds(1));
        let t = chrono::Utc::now().max(next);
        *self.last_stamp = t;
        t
    }
}

impl std::ops::Deref for Writing<'_> {
    type Target = Timestamp;
    fn deref(&self) -> &Timestamp {
        &self.last_stamp
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Timestamp {
        &mut self.last_stamp
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        // The write is done (its batch applied, the indexes changed):
        // every stamp so far is visible.
        let last = index::nanos(*self.last_stamp);
        self.stamps.committed.fetch_max(last, Ordering::SeqCst);
        self.stamps.in_flight.fetch_sub(1, Ordering::SeqCst);
        let held = self.since.elapsed().as_nanos() as u64;
        self.busy.fetch_add(held, Ordering::Relaxed);
    }
}

impl super::Storage for SledStore {
    fn record_poll(
        &self,
        feed: &str,
        poll: PolledDocument,
        now: Timestamp,
    ) -> Result<IngestReport, StoreError> {
        self.record_poll(feed, poll, now)
    }

    fn put_feed_state(&self, feed: &str, state: &FeedState) -> Result<(), StoreError> {
        self.put_feed_state(feed, state)
    }

    fn feed_state(&self, feed: &str) -> Result<FeedState, StoreError> {
        self.feed_state(feed)
    }

    fn cached_feed_state(&self, feed: &str) -> Option<FeedState> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::from_slice(states.get(feed)?).ok()
    }

    fn validators(&self, url: &str) -> Result<Validators, StoreError> {
        self.validators(url)
    }

    fn item(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        self.item(id)
    }

    fn story_for(&self, candidate: &Candidate) -> Result<Option<Item>, StoreError> {
        self.story_for(candidate)
    }

    fn pruned(&self, candidate: &Candidate) -> bool {
        let index = self.index();
        let linked = (candidate.canonical_link.as_deref()).and_then(|l| index.linked(l));
        index.pruned.contains(&candidate.fresh_id)
            || linked.is_some_and(|id| index.pruned.contains(&id))
    }

    fn latest(&self, limit: usize, keep: &dyn Fn(&Item) -> bool) -> Result<Vec<Item>, StoreError> {
        self.latest(limit, keep)
    }

    fn latest_in_feed(
        &self,
        feed: &str,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Vec<Item>, StoreError> {
        self.latest_in_feed(feed, limit, keep)
    }

    fn count_in_feed(&self, feed: &str) -> usize {
        self.count_in_feed(feed)
    }

    fn page(
        &self,
        cursor: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let start = cursor.map(crate::store::cursor::decode).transpose()?;
        let (items, next) = self.page_at(start, limit, keep)?;
        Ok((items, next.map(crate::store::cursor::encode)))
    }

    fn first_seen_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Timestamp>), StoreError> {
        self.first_seen_between(since, until, limit, keep)
    }

    fn cursor(&self) -> Timestamp {
        self.cursor()
    }

    fn recent_comments(
        &self,
        limit: usize,
        keep: &dyn Fn(&RecentComment) -> bool,
    ) -> Result<Vec<RecentComment>, StoreError> {
        self.recent_comments(limit, keep)
    }

    fn generation(&self) -> u64 {
        self.generation()
    }

    fn write_time(&self) -> Duration {
        self.write_time()
    }

    fn prune(
        &self,
        cutoff: Timestamp,
        max_per_feed: usize,
        feeds: &[&str],
        now: Timestamp,
    ) -> Result<Pruned, StoreError> {
        self.prune(cutoff, max_per_feed, feeds, now)
    }

    fn verify(&self) -> Result<Verified, StoreError> {
        self.verify()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.flush()
    }

    fn set_recent_comments(&self, n: usize) {
        self.set_recent_comments(n)
    }

    fn set_min_free(&self, bytes: u64) {
        self.set_min_free(bytes)
    }

    fn put_record(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(keys::record(kind, key), value)?;
        self.flush()
    }

    fn records(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = keys::record(kind, "");
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let key = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }

    fn delete_record(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.tree.remove(keys::record(kind, key))?;
        self.flush()
    }
}

/// A candidate made ready outside the writer lock.
struct Prepared {
    /// The story as it would be stored if it is new.
    fresh: Item,
    canonical_link: Option<String>,
    /// `fresh` encoded, when its id was not stored when prepared.
    encoded: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests;
