//! The story indexes: newest first, per feed, by first sight, by link, and
//! the pruned ids. They live in memory and are rebuilt at open from the
//! stories' heads: a head is what the indexes need to know of a story, and
//! heads are stored grouped by owner feed and day first seen (`h:` keys).
//! A poll's new stories all land in one group, so it writes one value for
//! them instead of four index keys per story; sled's cost is per key.
//!
//! Every write that changes heads collects its changes in [`Edits`]: the
//! touched groups go into the write's atomic batch, and the same changes
//! are applied to memory after the batch, under the writer lock. After a
//! crash the indexes are rebuilt from what the batches left, so they can
//! never disagree with the stories.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{StoreError, keys};
use crate::model::{Item, ItemId};

/// A story as the indexes see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Head {
    #[serde(rename = "i")]
    pub id: ItemId,
    /// The owner feed: the group's key says it, the value does not.
    #[serde(skip)]
    pub owner: String,
    /// Sort time, milliseconds since the epoch.
    #[serde(rename = "t")]
    pub time: i64,
    /// `first_seen`, nanoseconds since the epoch (unique per story).
    #[serde(rename = "s")]
    pub seen: i64,
    /// [`link_hash`] of the canonical link.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub link: Option<u64>,
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    pub also_in: Vec<String>,
}

impl Head {
    pub fn of(item: &Item) -> Head {
        Head {
            id: item.id,
            owner: item.feed.clone(),
            time: item.sort_time().timestamp_millis(),
            seen: nanos(item.first_seen),
            link: item.link.as_deref().map(link_hash),
            also_in: item.also_in.clone(),
        }
    }

    fn feeds(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.owner.as_str()).chain(self.also_in.iter().map(String::as_str))
    }

    pub fn group_key(&self) -> Vec<u8> {
        keys::heads(self.seen, &self.owner)
    }
}

pub(super) use super::keys::nanos;

pub(super) use crate::store::link_hash;

/// A sort key in an ordered index: time, then id for a strict order.
pub(super) type Position = (i64, ItemId);

/// One feed's stories by sort time, oldest first: a sorted vector of just
/// its length. A feed holds few stories (`max_items_per_feed` at most) and
/// gains them a poll at a time, and a B-tree's smallest node has room for
/// eleven: at a million feeds of five stories, that was 250 MB more.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct FeedStories(Vec<Position>);

impl FeedStories {
    fn insert(&mut self, at: Position) {
        if let Err(i) = self.0.binary_search(&at) {
            self.0.reserve_exact(1);
            self.0.insert(i, at);
        }
    }

    fn remove(&mut self, at: &Position) {
        if let Ok(i) = self.0.binary_search(at) {
            self.0.remove(i);
            if self.0.capacity() > 2 * self.0.len() + 4 {
                self.0.shrink_to_fit();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Position> {
        self.0.iter()
    }

    /// Up to `n` stories before `after` (all when `None`), newest first.
    pub fn newest_before(&self, after: Option<Position>, n: usize) -> Vec<(Position, ItemId)> {
        let end = after.map_or(self.0.len(), |a| self.0.partition_point(|p| *p < a));
        self.0[..end]
            .iter()
            .rev()
            .take(n)
            .map(|&at| (at, at.1))
            .collect()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Index {
    /// Every stored story's `first_seen` (nanoseconds), which is its key.
    pub stored: HashMap<ItemId, i64>,
    /// Every story by sort time (milliseconds).
    pub by_time: BTreeSet<Position>,
    /// Each feed's stories, owned or also carried, by sort time.
    pub by_feed: HashMap<Box<str>, FeedStories>,
    /// Every story by `first_seen` (nanoseconds, unique).
    pub by_seen: BTreeMap<i64, ItemId>,
    /// Canonical link hash to story, pruned stories included: a feed that
    /// brings a pruned story's link finds it pruned, not new.
    pub links: HashMap<u64, ItemId>,
    /// Stories removed by retention whose tombstones have not expired.
    pub pruned: HashSet<ItemId>,
}

impl Index {
    /// Reads every head group and tombstone.
    pub fn load(tree: &sled::Tree) -> Result<Index, StoreError> {
        let mut index = Index::default();
        for entry in tree.scan_prefix(keys::HEADS) {
            let (key, value) = entry?;
            for head in decode_group(&key, &value)? {
                index.add(&head);
            }
        }
        for entry in tree.scan_prefix(keys::PRUNED) {
            let (key, value) = entry?;
            if let Some(id) = keys::id_suffix(&key) {
                index.prune(id, keys::tombstone_link(&value));
            }
        }
        Ok(index)
    }

    fn add(&mut self, head: &Head) {
        let at = (head.time, head.id);
        self.stored.insert(head.id, head.seen);
        self.by_time.insert(at);
        for feed in head.feeds() {
            match self.by_feed.get_mut(feed) {
                Some(set) => set.insert(at),
                None => {
                    let mut set = FeedStories::default();
                    set.insert(at);
                    self.by_feed.insert(feed.into(), set);
                }
            }
        }
        self.by_seen.insert(head.seen, head.id);
        if let Some(link) = head.link {
            self.links.insert(link, head.id);
        }
    }

    fn remove(&mut self, head: &Head) {
        let at = (head.time, head.id);
        self.stored.remove(&head.id);
        self.by_time.remove(&at);
        for feed in head.feeds() {
            if let Some(set) = self.by_feed.get_mut(feed) {
                set.remove(&at);
                if set.is_empty() {
                    self.by_feed.remove(feed);
                }
            }
        }
        self.by_seen.remove(&head.seen);
        if let Some(link) = head.link {
            self.forget_link(link, head.id);
        }
    }

    fn prune(&mut self, id: ItemId, link: Option<u64>) {
        self.pruned.insert(id);
        if let Some(link) = link {
            self.links.insert(link, id);
        }
    }

    fn forget_link(&mut self, link: u64, id: ItemId) {
        if self.links.get(&link) == Some(&id) {
            self.links.remove(&link);
        }
    }

    /// The story holding this canonical link, stored or pruned.
    pub fn linked(&self, link: &str) -> Option<ItemId> {
        self.links.get(&link_hash(link)).copied()
    }
}

/// One change to the indexes, in the order a write made it.
enum Op {
    Add(Head),
    Remove(Head),
    Prune(ItemId, Option<u64>),
    Expire(ItemId, Option<u64>),
}

/// The head changes of one write, with the groups they touched.
#[derive(Default)]
pub(super) struct Edits {
    groups: HashMap<Vec<u8>, Vec<Head>>,
    ops: Vec<Op>,
}

impl Edits {
    /// A story's head goes from `old` to `new` (either may be missing).
    pub fn change(
        &mut self,
        tree: &sled::Tree,
        old: Option<Head>,
        new: Option<Head>,
    ) -> Result<(), StoreError> {
        if old == new {
            return Ok(());
        }
        if let Some(old) = old {
            self.group(tree, &old)?.retain(|h| h.id != old.id);
            self.ops.push(Op::Remove(old));
        }
        if let Some(new) = new {
            let group = self.group(tree, &new)?;
            group.retain(|h| h.id != new.id);
            group.push(new.clone());
            self.ops.push(Op::Add(new));
        }
        Ok(())
    }

    /// A story was removed and left a tombstone.
    pub fn prune(&mut self, id: ItemId, link: Option<u64>) {
        self.ops.push(Op::Prune(id, link));
    }

    /// A tombstone expired.
    pub fn expire(&mut self, id: ItemId, link: Option<u64>) {
        self.ops.push(Op::Expire(id, link));
    }

    fn group(&mut self, tree: &sled::Tree, head: &Head) -> Result<&mut Vec<Head>, StoreError> {
        Ok(match self.groups.entry(head.group_key()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let heads = match tree.get(e.key())? {
                    Some(value) => decode_group(e.key(), &value)?,
                    None => Vec::new(),
                };
                e.insert(heads)
            }
        })
    }

    /// Puts the touched groups into the write's batch.
    pub fn write(&self, batch: &mut sled::Batch) -> Result<(), StoreError> {
        for (key, heads) in &self.groups {
            if heads.is_empty() {
                batch.remove(key.as_slice());
            } else {
                batch.insert(key.as_slice(), encode_group(heads)?);
            }
        }
        Ok(())
    }

    /// Applies the changes to memory, once the batch is written.
    pub fn apply(self, index: &mut Index) {
        for op in self.ops {
            match op {
                Op::Add(head) => index.add(&head),
                Op::Remove(head) => index.remove(&head),
                Op::Prune(id, link) => index.prune(id, link),
                Op::Expire(id, link) => {
                    index.pruned.remove(&id);
                    if let Some(link) = link {
                        index.forget_link(link, id);
                    }
                }
            }
        }
    }
}

pub(super) fn encode_group(heads: &[Head]) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(heads)?)
}

pub(super) fn decode_group(key: &[u8], value: &[u8]) -> Result<Vec<Head>, StoreError> {
    let owner = keys::heads_owner(key);
    let mut heads: Vec<Head> = serde_json::from_slice(value)?;
    for head in &mut heads {
        head.owner = owner.clone();
    }
    Ok(heads)
}

#[cfg(test)]
mod feed_stories_tests {
    use super::*;

    #[test]
    fn a_feeds_stories_stay_sorted_and_page_newest_first() {
        let id = |n: u8| ItemId([n; 16]);
        let mut set = FeedStories::default();
        for (t, n) in [(30, 3), (10, 1), (20, 2), (20, 2), (40, 4), (20, 5)] {
            set.insert((t, id(n)));
        }
        assert_eq!(set.len(), 5, "a story is held once");
        fn page(set: &FeedStories, after: Option<Position>, n: usize) -> Vec<u8> {
            set.newest_before(after, n)
                .iter()
                .map(|(_, i)| i.0[0])
                .collect()
        }
        assert_eq!(page(&set, None, 10), [4, 3, 5, 2, 1]);
        assert_eq!(page(&set, None, 2), [4, 3]);
        assert_eq!(page(&set, Some((30, id(3))), 10), [5, 2, 1]);
        assert_eq!(page(&set, Some((20, id(5))), 1), [2]);
        set.remove(&(20, id(2)));
        set.remove(&(99, id(9)));
        assert_eq!(page(&set, None, 10), [4, 3, 5, 1]);
        for at in [(10, id(1)), (20, id(5)), (30, id(3)), (40, id(4))] {
            set.remove(&at);
        }
        assert!(set.is_empty());
    }
}
