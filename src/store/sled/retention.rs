//! Retention: stories older than `[storage].retention` or beyond
//! `[storage].max_items_per_feed` are removed with their index entries,
//! leaving a small tombstone so a feed that still lists them cannot bring
//! them back.

use std::time::Duration;

use super::index::{Edits, Head, nanos};
use super::{SledStore, keys};
use crate::model::{ItemId, Timestamp, earlier};
use crate::store::{Pruned, StoreError};
use crate::stories::{self, Leaving};

/// How long a tombstone outlives its story. A feed that still lists a
/// story this long after it was pruned would bring it back as new.
pub const TOMBSTONE_KEEP: Duration = Duration::from_secs(365 * 86400);
/// Stories removed per atomic batch, so one pass never builds a huge one.
const BATCH: usize = 500;

impl SledStore {
    /// Removes stories first seen before `cutoff`, and each feed's
    /// stories beyond its newest `max_per_feed` (a story carried by a feed
    /// that does not own it only leaves that feed), then expires old
    /// tombstones and comments that waited too long for their story.
    pub fn prune(
        &self,
        cutoff: Timestamp,
        max_per_feed: usize,
        feeds: &[&str],
        now: Timestamp,
    ) -> Result<Pruned, StoreError> {
        let mut report = Pruned::default();
        let mut changed = false;
        // By age since Paddock first stored them (a feed added today with
        // old stories keeps them for a full retention period). The
        // first-seen index is in time order, so this reads only what goes.
        let old: Vec<ItemId> = (self.index().by_seen)
            .range(..nanos(cutoff))
            .map(|(_, id)| *id)
            .collect();
        for chunk in old.chunks(BATCH) {
            report.old += self.remove(chunk, now)?;
        }
        // By count, feed by feed, newest kept.
        for feed in feeds {
            let extra: Vec<ItemId> = match self.index().by_feed.get(*feed) {
                Some(set) => set.iter().rev().skip(max_per_feed).map(|at| at.1).collect(),
                None => continue,
            };
            for chunk in extra.chunks(BATCH) {
                let (removed, left) = self.leave_feed(feed, chunk, now)?;
                report.over_limit += removed;
                changed |= left > 0;
            }
        }
        report.tombstones_expired = self.expire(
            keys::PRUNED,
            keys::tombstone_time,
            earlier(now, TOMBSTONE_KEEP),
            |edits, key, value| {
                if let Some(id) = keys::id_suffix(key) {
                    edits.expire(id, keys::tombstone_link(value));
                }
            },
        )?;
        report.waiting_comments = self.expire(
            keys::ORPHAN,
            |v| {
                serde_json::from_slice::<serde_json::Value>(v)
                    .ok()
                    .and_then(|w| {
                        w["comment"]["published"]
                            .as_str()
                            .and_then(|p| chrono::DateTime::parse_from_rfc3339(p).ok())
                            .map(|t| t.to_utc())
                    })
            },
            cutoff,
            |_, _, _| {},
        )?;
        report.comments = self.prune_comments(cutoff)?;
        if changed || report.old + report.over_limit + report.comments > 0 {
            self.bump();
        }
        Ok(report)
    }

    /// Comments go with their story: removes the comment records joined
    /// to a story no longer stored, unjoined ones stored before `cutoff`,
    /// and the stream's entries for stories no longer stored. Read without
    /// the writer lock (a story once removed is not stored again while its
    /// tombstone lasts), removed under it in batches.
    fn prune_comments(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        let mut gone = Vec::new();
        for entry in self.tree.scan_prefix(keys::COMMENT) {
            let (key, value) = entry?;
            if self.comment_is_stale(&value, cutoff) {
                gone.push(key);
            }
        }
        for entry in self.tree.scan_prefix(keys::STREAM) {
            let (key, value) = entry?;
            let c: crate::model::RecentComment = serde_json::from_slice(&value)?;
            if c.item
                .is_some_and(|id| !self.index().stored.contains_key(&id))
            {
                gone.push(key);
            }
        }
        let mut removed = 0;
        for chunk in gone.chunks(BATCH) {
            let _writer = self.write_lock();
            let mut batch = sled::Batch::default();
            for key in chunk {
                // A comment record may have been joined since it was read.
                if key.starts_with(keys::COMMENT)
                    && !self
                        .tree
                        .get(key)?
                        .is_some_and(|v| self.comment_is_stale(&v, cutoff))
                {
                    continue;
                }
                batch.remove(key.clone());
                removed += 1;
            }
            self.tree.apply_batch(batch)?;
        }
        Ok(removed)
    }

    /// Whether a `k:` record belongs to no stored story: joined to one
    /// that is gone, or never joined and stored before `cutoff` (by its
    /// stream time, for records written before the storage time was kept).
    pub(super) fn comment_is_stale(&self, value: &[u8], cutoff: Timestamp) -> bool {
        match super::comment_records::decode_record(value) {
            (Some(id), _, _) => !self.index().stored.contains_key(&id),
            (None, time, stored) => stored.or(time).is_some_and(|t| t < cutoff),
        }
    }

    /// Removes stories for good, leaving tombstones. Returns how many.
    fn remove(&self, ids: &[ItemId], now: Timestamp) -> Result<usize, StoreError> {
        let _writer = self.write_lock();
        let mut batch = sled::Batch::default();
        let mut edits = Edits::default();
        let removed = self.remove_into(&mut batch, &mut edits, ids, now)?;
        edits.write(&mut batch)?;
        self.tree.apply_batch(batch)?;
        self.apply(edits);
        Ok(removed)
    }

    /// With the writer lock held.
    fn remove_into(
        &self,
        batch: &mut sled::Batch,
        edits: &mut Edits,
        ids: &[ItemId],
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for id in ids {
            let Some(item) = self.item(id)? else { continue };
            let head = Head::of(&item);
            // The tombstone keeps the link: another feed bringing the same
            // link finds the story pruned, not new.
            let link = head.link;
            edits.change(&self.tree, Some(head), None)?;
            edits.prune(item.id, link);
            batch.remove(super::story_key(&item));
            batch.insert(keys::pruned(id), keys::tombstone(now, link));
            removed += 1;
        }
        Ok(removed)
    }

    /// Takes stories off one feed, in one batch under the writer lock:
    /// removed when the feed owns them, else only that feed leaves their
    /// `also_in`. Returns (removed, left).
    fn leave_feed(
        &self,
        feed: &str,
        ids: &[ItemId],
        now: Timestamp,
    ) -> Result<(usize, usize), StoreError> {
        let _writer = self.write_lock();
        let mut batch = sled::Batch::default();
        let mut edits = Edits::default();
        let mut owned = Vec::new();
        let mut left = 0;
        for id in ids {
            let Some(item) = self.item(id)? else {
                continue;
            };
            let old = Head::of(&item);
            match stories::leave(item, feed) {
                Leaving::Remove(id) => owned.push(id),
                Leaving::Stay(item) => {
                    edits.change(&self.tree, Some(old), Some(Head::of(&item)))?;
                    batch.insert(super::story_key(&item), super::encode_item(&item)?);
                    left += 1;
                }
            }
        }
        let removed = self.remove_into(&mut batch, &mut edits, &owned, now)?;
        edits.write(&mut batch)?;
        self.tree.apply_batch(batch)?;
        self.apply(edits);
        Ok((removed, left))
    }

    /// Removes entries under `prefix` whose time (read by `time_of` from
    /// the value) is before `before`; `note` tells the indexes.
    fn expire(
        &self,
        prefix: &[u8],
        time_of: impl Fn(&[u8]) -> Option<Timestamp>,
        before: Timestamp,
        note: impl Fn(&mut Edits, &[u8], &[u8]),
    ) -> Result<usize, StoreError> {
        let _writer = self.write_lock();
        let mut batch = sled::Batch::default();
        let mut edits = Edits::default();
        let mut n = 0;
        for entry in self.tree.scan_prefix(prefix) {
            let (key, value) = entry?;
            if time_of(&value).is_some_and(|t| t < before) {
                note(&mut edits, &key, &value);
                batch.remove(key);
                n += 1;
            }
        }
        self.tree.apply_batch(batch)?;
        self.apply(edits);
        Ok(n)
    }
}
