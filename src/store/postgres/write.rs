//! A poll's write: one transaction under the write lock, by the same
//! story rules as every backend (`stories`). Stories a write changes are
//! collected in [`Pending`] and written once, at the end, in three
//! statements however many there are.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, StoreError, WRITE_LOCK, body, item_id, nanos};
use crate::model::{
    Comment, CommentBatch, CommentReport, CommentSource, CountSource, IngestReport, Item, ItemId,
    PolledDocument, RecentComment, Target, Timestamp,
};
use crate::store::pending::Pending;
use crate::store::{comment_hash, link_hash};
use crate::stories;

pub(super) const PUT_STATE: &str = "INSERT INTO feed_states (feed, state) VALUES ($1, $2)
     ON CONFLICT (feed) DO UPDATE SET state = EXCLUDED.state";

/// The database's clock, in nanoseconds (PostgreSQL keeps microseconds).
const CLOCK: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT * 1000,
        (SELECT value FROM paddock_meta WHERE key = 'last_stamp'),
        (SELECT value FROM paddock_meta WHERE key = 'floor')";

/// A comment feed's URL as a key: URLs can be longer than a B-tree entry.
pub(super) fn url_key(url: &str) -> [u8; 16] {
    comment_hash("\0url", url)
}

/// A waiting comment's link as a key.
fn link_key(link: &str) -> [u8; 16] {
    comment_hash("\0link", link)
}

/// A write in progress: its transaction, and stamps that grow across
/// every instance (each later than the last stamp handed out and than every
/// digest cursor taken).
pub(super) struct Write<'a> {
    pub store: &'a PgStore,
    pub tx: Transaction<'a>,
    clock: i64,
    last_stamp: i64,
    stamped: bool,
    changed: bool,
    /// When the write lock was taken, for the store's write time.
    locked: std::time::Instant,
    /// Comment records and stream entries this write puts, written in
    /// one statement each at commit; reads look here first.
    records: HashMap<Vec<u8>, Record>,
    stream: HashMap<Vec<u8>, (i64, Option<Vec<u8>>, Vec<u8>)>,
    /// The link keys comments wait for, among the links of the stories
    /// this write brings, read once: most writes find none and skip the
    /// per-story look.
    waiting_for: Option<HashSet<[u8; 16]>>,
    /// Statements whose results nothing in the write reads, sent together
    /// at commit, in order: the connection pipelines them, so the write
    /// waits once for all instead of once for each.
    deferred: Vec<(&'static str, Vec<Param>)>,
}

/// An owned statement parameter, for [`Write::defer`].
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

impl<'a> Write<'a> {
    pub fn begin(store: &'a PgStore, tx: Transaction<'a>) -> Result<Write<'a>, StoreError> {
        store.exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        let row = store.row(&tx, CLOCK, &[])?;
        let read = |i: usize| {
            row.as_ref()
                .and_then(|r| r.try_get::<_, Option<i64>>(i).ok().flatten())
        };
        // The stamps' rows are made with the schema; a database whose rows
        // were removed by hand starts them again from the clock.
        let clock =
            read(0).ok_or_else(|| StoreError::Database("the database gave no clock".into()))?;
        let (last, floor) = (read(1).unwrap_or(0), read(2).unwrap_or(0));
        Ok(Write {
            store,
            tx,
            clock,
            last_stamp: last.max(floor),
            stamped: false,
            changed: false,
            locked: std::time::Instant::now(),
            records: HashMap::new(),
            stream: HashMap::new(),
            waiting_for: None,
            deferred: Vec::new(),
        })
    }

    pub fn stamp(&mut self) -> Timestamp {
        self.last_stamp = self.clock.max(self.last_stamp.saturating_add(1));
        self.stamped = true;
        chrono::DateTime::from_timestamp_nanos(self.last_stamp)
    }

    /// Marks the write as changing what outputs show.
    pub fn changed(&mut self) {
        self.changed = true;
    }

    pub fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        self.store.rows(&self.tx, sql, params)
    }

    pub fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.store.exec(&self.tx, sql, params)
    }

    /// Queues a statement for commit (see `deferred`).
    pub fn defer(&mut self, sql: &'static str, params: Vec<Param>) {
        self.deferred.push((sql, params));
    }

    pub fn commit(mut self) -> Result<(), StoreError> {
        self.flush_comments();
        if self.stamped {
            let stamp = self.last_stamp;
            self.defer(
                "UPDATE paddock_meta SET value = $1 WHERE key = 'last_stamp'",
                vec![Box::new(stamp)],
            );
        }
        let deferred = std::mem::take(&mut self.deferred);
        let changed = self.changed;
        let (store, locked) = (self.store, self.locked);
        let tx = &self.tx;
        let generation = store.block(async {
            // Prepared first (cached after the first write), then sent in
            // order, all before the first answer is awaited.
            let prepared = futures_util::future::try_join_all(
                deferred.iter().map(|(sql, _)| tx.prepare_cached(sql)),
            )
            .await?;
            let runs = prepared.iter().zip(&deferred).map(|(st, (_, params))| {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                async move { tx.execute(st, &refs).await }
            });
            futures_util::future::try_join_all(runs).await?;
            let generation = match changed {
                true => {
                    let row = tx
                        .query_one(
                            "UPDATE paddock_meta SET value = value + 1 WHERE key = 'generation' RETURNING value",
                            &[],
                        )
                        .await?;
                    Some(row.get::<_, i64>(0))
                }
                false => None,
            };
            Ok(generation)
        })?;
        store.block(async { Ok(self.tx.commit().await?) })?;
        let held = locked.elapsed().as_nanos() as u64;
        store
            .busy
            .fetch_add(held, std::sync::atomic::Ordering::Relaxed);
        if let Some(g) = generation {
            store
                .generation
                .fetch_max(g as u64, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(())
    }

    /// Writes the stories a write changed: rows, then their feeds.
    pub fn put_stories(&mut self, stories: Pending, now: Timestamp) -> Result<(), StoreError> {
        let (mut ids, mut seen, mut sort, mut feeds, mut links, mut bodies) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut member_feed, mut member_sort, mut member_id) = (vec![], vec![], vec![]);
        for (item, _) in stories.finish(now) {
            let ms = item.sort_time().timestamp_millis();
            for f in item.feeds() {
                member_feed.push(f.to_string());
                member_sort.push(ms);
                member_id.push(item.id.0.to_vec());
            }
            ids.push(item.id.0.to_vec());
            seen.push(nanos(item.first_seen));
            sort.push(ms);
            feeds.push(item.feed.clone());
            links.push(item.link.clone());
            bodies.push(serde_json::to_vec(&item)?);
        }
        if ids.is_empty() {
            return Ok(());
        }
        self.changed();
        self.defer(
            "INSERT INTO stories (id, seen, sort_ms, feed, link, body)
             SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bytea[])
             ON CONFLICT (id) DO UPDATE SET sort_ms = EXCLUDED.sort_ms, feed = EXCLUDED.feed,
                 link = EXCLUDED.link, body = EXCLUDED.body",
            vec![
                Box::new(ids.clone()),
                Box::new(seen),
                Box::new(sort),
                Box::new(feeds),
                Box::new(links),
                Box::new(bodies),
            ],
        );
        self.defer(
            "DELETE FROM story_feeds WHERE id = ANY($1)",
            vec![Box::new(ids)],
        );
        self.defer(
            "INSERT INTO story_feeds (feed, sort_ms, id)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING",
            vec![
                Box::new(member_feed),
                Box::new(member_sort),
                Box::new(member_id),
            ],
        );
        Ok(())
    }

    /// Tombstones: ids, their links' hashes, when they were removed (ns).
    pub fn put_tombstones(
        &self,
        ids: &[Vec<u8>],
        link_hashes: &[Option<i64>],
        removed: &[i64],
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO tombstones (id, link_hash, removed)
             SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[])
             ON CONFLICT (id) DO UPDATE SET link_hash = EXCLUDED.link_hash, removed = EXCLUDED.removed",
            &[&ids, &link_hashes, &removed],
        )?;
        Ok(())
    }

    /// Joins the comments that waited for `item` (by its link) to it;
    /// whether any did.
    pub fn attach_waiting(
        &mut self,
        item: &mut Item,
        stored: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(link) = item.link.clone() else {
            return Ok(false);
        };
        let key = link_key(&link);
        if self
            .waiting_for
            .as_ref()
            .is_some_and(|keys| !keys.contains(&key))
        {
            return Ok(false);
        }
        let rows = self.rows(
            "DELETE FROM waiting WHERE link_key = $1 RETURNING hash, comment",
            &[&&key[..]],
        )?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut found = Vec::new();
        for row in &rows {
            let hash: Vec<u8> = row.get(0);
            let comment: Comment = serde_json::from_slice(row.get::<_, &[u8]>(1))?;
            let record = self.record(&hash)?;
            let elsewhere = record.as_ref().is_some_and(|r| r.item.is_some());
            found.push((hash, comment, elsewhere, record.map(|r| r.time)));
        }
        let comments: Vec<(Comment, bool)> =
            found.iter().map(|(_, c, e, _)| (c.clone(), *e)).collect();
        let joined = stories::join_waiting(item, &comments, self.store.keep_comments());
        for i in &joined {
            let (hash, comment, _, time) = &found[*i];
            let time = time.unwrap_or_else(|| comment.published.unwrap_or(item.first_seen));
            self.put_record(hash, Some(item.id), time, stored);
            let entry = RecentComment {
                comment: comment.clone(),
                item: Some(item.id),
                stored: Some(stored),
            };
            self.put_stream(hash, time, &entry)?;
        }
        Ok(!joined.is_empty())
    }

    /// A comment waiting for the story with this link.
    pub fn put_waiting(
        &self,
        link: &str,
        hash: &[u8],
        comment: &Comment,
    ) -> Result<(), StoreError> {
        let key = link_key(link);
        self.exec(
            "INSERT INTO waiting (link_key, hash, published, comment) VALUES ($1, $2, $3, $4)
             ON CONFLICT (link_key, hash) DO UPDATE SET published = EXCLUDED.published,
                 comment = EXCLUDED.comment",
            &[
                &&key[..],
                &hash,
                &comment.published.map(nanos),
                &serde_json::to_vec(comment)?,
            ],
        )?;
        Ok(())
    }

    /// Reads which of `links` comments wait for, so that stories with
    /// none skip the look (see `waiting_for`).
    pub fn note_waiting(&mut self, links: &[&str]) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = links.iter().map(|l| link_key(l).to_vec()).collect();
        let rows = self.rows(
            "SELECT DISTINCT link_key FROM waiting WHERE link_key = ANY($1)",
            &[&keys],
        )?;
        let found = rows
            .iter()
            .filter_map(|r| r.get::<_, &[u8]>(0).try_into().ok())
            .collect();
        self.waiting_for = Some(found);
        Ok(())
    }

    /// A comment's record as stored before this write (as on sled, a
    /// write's own records are not read back).
    fn record(&self, hash: &[u8]) -> Result<Option<Record>, StoreError> {
        let rows = self.rows(
            "SELECT item, time_ms, stored FROM comments WHERE hash = $1",
            &[&hash],
        )?;
        rows.first().map(Record::of).transpose()
    }

    /// A comment's record, written at commit.
    pub fn put_record(
        &mut self,
        hash: &[u8],
        item: Option<ItemId>,
        time: Timestamp,
        stored: Timestamp,
    ) {
        let record = Record {
            item,
            time: ms(time.timestamp_millis()),
            stored,
        };
        self.records.insert(hash.to_vec(), record);
    }

    /// A stream entry, written at commit.
    pub fn put_stream(
        &mut self,
        hash: &[u8],
        time: Timestamp,
        entry: &RecentComment,
    ) -> Result<(), StoreError> {
        let item = entry.item.map(|id| id.0.to_vec());
        let value = (time.timestamp_millis(), item, serde_json::to_vec(entry)?);
        self.stream.insert(hash.to_vec(), value);
        self.store
            .streamed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.changed();
        Ok(())
    }

    /// Queues the records and stream entries put so far, one statement each.
    fn flush_comments(&mut self) {
        if !self.records.is_empty() {
            let (mut hashes, mut items, mut times, mut stored) = (vec![], vec![], vec![], vec![]);
            for (hash, r) in self.records.drain() {
                hashes.push(hash);
                items.push(r.item.map(|id| id.0.to_vec()));
                times.push(r.time.timestamp_millis());
                stored.push(nanos(r.stored));
            }
            self.defer(
                "INSERT INTO comments (hash, item, time_ms, stored)
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[])
                 ON CONFLICT (hash) DO UPDATE SET item = EXCLUDED.item, time_ms = EXCLUDED.time_ms,
                     stored = EXCLUDED.stored",
                vec![
                    Box::new(hashes),
                    Box::new(items),
                    Box::new(times),
                    Box::new(stored),
                ],
            );
        }
        if !self.stream.is_empty() {
            let (mut hashes, mut times, mut items, mut entries) = (vec![], vec![], vec![], vec![]);
            for (hash, (time, item, entry)) in self.stream.drain() {
                hashes.push(hash);
                times.push(time);
                items.push(item);
                entries.push(entry);
            }
            self.defer(
                "INSERT INTO stream (hash, time_ms, item, entry)
                 SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[])
                 ON CONFLICT (hash) DO UPDATE SET time_ms = EXCLUDED.time_ms, item = EXCLUDED.item,
                     entry = EXCLUDED.entry",
                vec![
                    Box::new(hashes),
                    Box::new(times),
                    Box::new(items),
                    Box::new(entries),
                ],
            );
        }
    }

    /// Joins one comments document's comments to their stories: those in
    /// `stories` (this write's) or stored.
    fn join_comments(
        &mut self,
        feed: &str,
        batch: CommentBatch,
        stories: &mut Pending,
        now: Timestamp,
        stored: Timestamp,
    ) -> Result<CommentReport, StoreError> {
        let CommentBatch {
            comments: incoming,
            source,
            url,
            validators,
        } = batch;
        if let Some(validators) = &validators {
            let key = url_key(&url);
            self.exec(
                "INSERT INTO comment_validators (url_key, url, value) VALUES ($1, $2, $3)
                 ON CONFLICT (url_key) DO UPDATE SET url = EXCLUDED.url, value = EXCLUDED.value",
                &[&&key[..], &url, &serde_json::to_vec(validators)?],
            )?;
        }
        let keep = self.store.keep_comments();
        let mut report = CommentReport::default();
        let mut joined_here: HashMap<String, ItemId> = HashMap::new();
        // Every record this document names, in one read.
        let hashes: Vec<Vec<u8>> = (incoming.iter())
            .map(|ic| comment_hash(feed, &ic.comment.id).to_vec())
            .collect();
        let mut records = HashMap::new();
        for row in self.rows(
            "SELECT hash, item, time_ms, stored FROM comments WHERE hash = ANY($1)",
            &[&hashes],
        )? {
            let hash: Vec<u8> = row.get(0);
            let record = Record {
                item: row
                    .get::<_, Option<&[u8]>>(1)
                    .and_then(|b| b.try_into().ok())
                    .map(ItemId),
                time: ms(row.get(2)),
                stored: chrono::DateTime::from_timestamp_nanos(row.get(3)),
            };
            records.insert(hash, record);
        }
        // The stored stories the comments name, by id or link, in two reads.
        let (mut named_ids, mut named_links) = (vec![], vec![]);
        for t in incoming.iter().flat_map(|ic| &ic.targets) {
            match t {
                Target::Item(id) => named_ids.push(id.0.to_vec()),
                Target::Link(link) => named_links.push(link.as_str()),
                Target::Comment(_) => {}
            }
        }
        let mut stored_ids = HashSet::new();
        if !named_ids.is_empty() {
            for row in self.rows("SELECT id FROM stories WHERE id = ANY($1)", &[&named_ids])? {
                stored_ids.insert(item_id(&row, 0)?);
            }
        }
        let mut stored_links = HashMap::new();
        if !named_links.is_empty() {
            for row in self.rows(
                "SELECT id, link FROM stories WHERE link = ANY($1)",
                &[&named_links],
            )? {
                stored_links.insert(row.get::<_, String>(1), item_id(&row, 0)?);
            }
        }
        // A link whose story retention removed still names it (as sled's
        // link index does): its comments go with it instead of waiting.
        let mut pruned_links = HashMap::new();
        if !named_links.is_empty() {
            let hashes: Vec<i64> = named_links.iter().map(|l| link_hash(l) as i64).collect();
            for row in self.rows(
                "SELECT id, link_hash FROM tombstones WHERE link_hash = ANY($1)",
                &[&hashes],
            )? {
                pruned_links.insert(row.get::<_, i64>(1) as u64, item_id(&row, 0)?);
            }
        }

        for (ic, hash) in incoming.into_iter().zip(hashes) {
            let known = records.get(&hash);
            let stored_here = known.map_or(stored, |r| r.stored);
            if let Some(item) = known.and_then(|r| r.item) {
                joined_here.insert(ic.comment.id.clone(), item);
                continue;
            }
            if known.is_none() {
                report.new += 1;
            }
            let time = known
                .map(|r| r.time)
                .unwrap_or_else(|| ic.comment.published.map_or(now, |p| p.min(now)));
            let target = stories::find_story(&ic.targets, |t| -> Result<_, StoreError> {
                Ok(match t {
                    Target::Item(id) if stories.contains(id) => Some(*id),
                    Target::Link(link) if stories.linked(link).is_some() => stories.linked(link),
                    Target::Comment(parent) => match joined_here.get(parent) {
                        Some(id) => Some(*id),
                        None => self
                            .record(&comment_hash(feed, parent))?
                            .and_then(|r| r.item),
                    },
                    Target::Item(id) => stored_ids.contains(id).then_some(*id),
                    Target::Link(link) => (stored_links.get(link))
                        .or_else(|| pruned_links.get(&link_hash(link)))
                        .copied(),
                })
            })?;
            match target {
                Some(id) => {
                    let item = match stories.take(&id) {
                        Some(item) => Some(item),
                        None => self.store.item_with(&self.tx, &id)?,
                    };
                    let Some(mut item) = item else {
                        report.dropped += 1;
                        continue;
                    };
                    stories::attach(&mut item, &ic.comment, keep, source);
                    stories.put(item);
                    joined_here.insert(ic.comment.id.clone(), id);
                    report.joined += 1;
                    for t in &ic.targets {
                        if let Target::Link(link) = t {
                            let key = link_key(link);
                            self.exec(
                                "DELETE FROM waiting WHERE link_key = $1 AND hash = $2",
                                &[&&key[..], &hash],
                            )?;
                        }
                    }
                }
                None => match ic.targets.iter().find_map(|t| match t {
                    Target::Link(l) => Some(l),
                    _ => None,
                }) {
                    Some(link) => {
                        self.put_waiting(link, &hash, &ic.comment)?;
                        report.waiting += 1;
                    }
                    None => report.dropped += 1,
                },
            }
            let item = joined_here.get(&ic.comment.id).copied();
            if known.is_some() && item.is_none() {
                continue;
            }
            self.put_record(&hash, item, time, stored_here);
            let entry = RecentComment {
                comment: ic.comment,
                item,
                stored: Some(stored_here),
            };
            self.put_stream(&hash, time, &entry)?;
        }

        if let CommentSource::ItemFeed { item, entries } = source {
            if let Some(story) = stories.get_mut(&item) {
                stories::offer_count(&mut story.comments, CountSource::ItemFeed, entries);
            } else if let Some(mut story) = self.store.item_with(&self.tx, &item)? {
                let before = story.comments.clone();
                stories::offer_count(&mut story.comments, CountSource::ItemFeed, entries);
                if story.comments != before {
                    stories.put(story);
                }
            }
        }
        Ok(report)
    }
}

/// A comment's record: its story once joined, its stream time, and when
/// it was first stored.
struct Record {
    item: Option<ItemId>,
    time: Timestamp,
    stored: Timestamp,
}

impl Record {
    fn of(row: &Row) -> Result<Record, StoreError> {
        let item = match row.get::<_, Option<&[u8]>>(0) {
            Some(bytes) => Some(ItemId(bytes.try_into().map_err(|_| {
                StoreError::Corrupt("a comment record's story id is not 16 bytes".into())
            })?)),
            None => None,
        };
        Ok(Record {
            item,
            time: ms(row.get(1)),
            stored: chrono::DateTime::from_timestamp_nanos(row.get(2)),
        })
    }
}

fn ms(millis: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// Stores what one poll brought in one transaction (see
/// `Storage::record_poll`).
pub(super) fn record_poll(
    store: &PgStore,
    feed: &str,
    poll: PolledDocument,
    now: Timestamp,
) -> Result<IngestReport, StoreError> {
    let PolledDocument {
        candidates,
        comments,
        state,
    } = poll;
    let news = !candidates.is_empty() || !comments.is_empty();
    let before = store.feed_state_with(&store.conn()?, feed)?;
    let renamed = before.title != state.title;
    if !news && !renamed && before.validators == state.validators {
        let client = store.conn()?;
        store.exec(&client, PUT_STATE, &[&feed, &serde_json::to_vec(&state)?])?;
        return Ok(IngestReport::default());
    }
    store
        .write(|w| {
            // Every stored story and tombstone the document names, in two reads.
            let ids: Vec<Vec<u8>> = candidates.iter().map(|c| c.fresh_id.0.to_vec()).collect();
            let links: Vec<&str> = (candidates.iter())
                .filter_map(|c| c.canonical_link.as_deref())
                .collect();
            let mut by_id: HashMap<ItemId, Item> = HashMap::new();
            let mut by_link: HashMap<String, ItemId> = HashMap::new();
            if !candidates.is_empty() {
                for row in w.rows(
                    "SELECT body FROM stories WHERE id = ANY($1) OR link = ANY($2)",
                    &[&ids, &links],
                )? {
                    let item = body(&row, 0)?;
                    if let Some(link) = &item.link {
                        by_link.insert(link.clone(), item.id);
                    }
                    by_id.insert(item.id, item);
                }
            }
            let mut pruned_ids = HashSet::new();
            let mut pruned_links = HashSet::new();
            if !candidates.is_empty() {
                let hashes: Vec<i64> = links.iter().map(|l| link_hash(l) as i64).collect();
                for row in w.rows(
                "SELECT id, link_hash FROM tombstones WHERE id = ANY($1) OR link_hash = ANY($2)",
                &[&ids, &hashes],
            )? {
                pruned_ids.insert(item_id(&row, 0)?);
                if let Some(hash) = row.get::<_, Option<i64>>(1) {
                    pruned_links.insert(hash as u64);
                }
            }
            }

            if !links.is_empty() {
                w.note_waiting(&links)?;
            }
            let mut stories = Pending::default();
            let mut report = IngestReport::default();
            for c in candidates {
                let canonical_link = c.canonical_link.clone();
                let mut fresh = Item::new(feed, c, chrono::DateTime::UNIX_EPOCH, now);
                let existing = match by_id.get(&fresh.id) {
                    Some(item) => Some(item.clone()),
                    None => (canonical_link.as_deref())
                        .and_then(|l| by_link.get(l))
                        .and_then(|id| by_id.get(id))
                        .filter(|i| i.link == canonical_link)
                        .cloned(),
                };
                let pruned = pruned_ids.contains(&fresh.id)
                    || (canonical_link.as_deref())
                        .is_some_and(|l| pruned_links.contains(&link_hash(l)));
                if existing.is_none() && pruned {
                    report.pruned += 1;
                    continue;
                }
                match existing {
                    None => {
                        fresh.first_seen = w.stamp();
                        let stored = fresh.first_seen;
                        w.attach_waiting(&mut fresh, stored)?;
                        report.new.push(fresh.id);
                        stories.put(fresh);
                    }
                    Some(old) => {
                        let owner_site = match old.feed == feed {
                            true => None,
                            false => store.feed_state_with(&w.tx, &old.feed)?.site_link,
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
                            let stored = w.stamp();
                            w.attach_waiting(&mut item, stored)?;
                        }
                        report.updated.push(item.id);
                        stories.put(item);
                    }
                }
            }
            if !comments.is_empty() {
                let stored = w.stamp();
                let mut total = CommentReport::default();
                for c in comments {
                    total += w.join_comments(feed, c, &mut stories, now, stored)?;
                }
                report.comments = Some(total);
            }
            w.put_stories(stories, now)?;
            w.exec(PUT_STATE, &[&feed, &serde_json::to_vec(&state)?])?;
            if renamed {
                w.changed();
            }
            Ok(report)
        })
        .inspect(|_| store.trim_stream())
}

impl PgStore {
    /// Keeps the stream near [`crate::store::STREAM_MAX`] entries: trimmed
    /// once this instance has written `STREAM_SLACK` more.
    fn trim_stream(&self) {
        use std::sync::atomic::Ordering;
        const STREAM_SLACK: usize = 200;
        if self.streamed.load(Ordering::Relaxed) < STREAM_SLACK {
            return;
        }
        self.streamed.store(0, Ordering::Relaxed);
        let trimmed = self.conn().and_then(|client| {
            self.exec(
                &client,
                "DELETE FROM stream WHERE hash IN
                 (SELECT hash FROM stream ORDER BY time_ms DESC, hash DESC OFFSET $1)",
                &[&(crate::store::STREAM_MAX as i64)],
            )
        });
        if let Err(e) = trimmed {
            tracing::warn!(error = %e, "the recent-comments stream could not be trimmed; next write tries again");
        }
    }
}
