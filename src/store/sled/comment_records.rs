//! Joining comments to stories, and the site-wide stream of recent
//! comments. Same rules as the rest of the store: one writer, one batch.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::codec::encode;
use super::index::link_hash;
use super::{SledStore, StoreError, keys};
use crate::model::{
    Candidate, Comment, CommentBatch, CommentReport, CommentSource, CountSource, IncomingComment,
    Item, ItemId, RecentComment, Target, Timestamp,
};
use crate::store::pending::Pending;
use crate::stories;

/// The site-wide stream keeps this many newest comments.
pub const STREAM_MAX: usize = 1000;
/// The stream is trimmed back to [`STREAM_MAX`] once it may hold this many
/// more, so that a trim (which walks the stream) happens once per this
/// many new comments rather than on every write. Readers never ask for
/// more than `STREAM_MAX`.
pub const STREAM_SLACK: usize = 200;

/// The stories a batch of comments names, by id or link.
pub(super) struct Named<'a> {
    ids: HashSet<ItemId>,
    links: HashSet<&'a str>,
}

impl<'a> Named<'a> {
    pub fn of(comments: impl IntoIterator<Item = &'a IncomingComment>) -> Named<'a> {
        let mut named = Named {
            ids: HashSet::new(),
            links: HashSet::new(),
        };
        for t in comments.into_iter().flat_map(|c| &c.targets) {
            match t {
                Target::Item(id) => {
                    named.ids.insert(*id);
                }
                Target::Link(link) => {
                    named.links.insert(link);
                }
                Target::Comment(_) => {}
            }
        }
        named
    }

    pub fn names(&self, c: &Candidate) -> bool {
        self.ids.contains(&c.fresh_id)
            || (c.canonical_link.as_deref()).is_some_and(|l| self.links.contains(l))
    }
}

/// What [`SledStore::join_comments`] did, for the rest of its write.
pub(super) struct Joined {
    pub report: CommentReport,
    /// Entries written to the stream.
    pub streamed: usize,
    /// Whether any story changed.
    pub changed: bool,
}

impl SledStore {
    /// Joins a comments document's comments to their stories: those
    /// already in `stories` (this write's) or stored. The comments' keys and
    /// the document's validators go into `batch`, the stories they change
    /// into `stories`. Called with the writer lock held; `stored` is a
    /// stamp taken under it.
    pub(super) fn join_comments(
        &self,
        feed: &str,
        comments: CommentBatch,
        stories: &mut Pending,
        batch: &mut sled::Batch,
        now: Timestamp,
        stored: Timestamp,
    ) -> Result<Joined, StoreError> {
        let CommentBatch {
            comments: incoming,
            source,
            url,
            validators,
        } = comments;
        if let Some(validators) = &validators {
            batch.insert(keys::validators(&url), encode(validators)?);
        }
        let keep = self.keep_comments();
        let mut report = CommentReport::default();
        let mut changed = false;
        let mut joined_here: HashMap<String, ItemId> = HashMap::new();
        let mut streamed = 0;

        for ic in incoming {
            let hash = crate::store::comment_hash(feed, &ic.comment.id);
            let known = self.tree.get(keys::comment(&hash))?;
            let (joined, time, first_stored) = match &known {
                Some(v) => decode_record(v),
                None => (None, None, None),
            };
            // A comment keeps the time it was first stored: digest windows
            // count it once.
            let stored_here = first_stored.unwrap_or(stored);
            if let Some(item) = joined {
                joined_here.insert(ic.comment.id.clone(), item);
                continue;
            }
            if known.is_none() {
                report.new += 1;
            }
            let time = time.unwrap_or_else(|| ic.comment.published.map_or(now, |p| p.min(now)));
            let target = self.resolve(feed, &ic.targets, &joined_here, stories)?;
            match target {
                Some(id) => {
                    let item = match stories.take(&id) {
                        Some(item) => Some(item),
                        None => self.item(&id)?,
                    };
                    let Some(mut item) = item else {
                        // Its story was removed by retention: the comment
                        // goes with it, not into the stream.
                        report.dropped += 1;
                        continue;
                    };
                    stories::attach(&mut item, &ic.comment, keep, source);
                    stories.put(item);
                    changed = true;
                    joined_here.insert(ic.comment.id.clone(), id);
                    report.joined += 1;
                    for t in &ic.targets {
                        if let Target::Link(link) = t {
                            batch.remove(keys::orphan(link, &hash));
                        }
                    }
                }
                None => match ic.targets.iter().find_map(|t| match t {
                    Target::Link(l) => Some(l),
                    _ => None,
                }) {
                    Some(link) => {
                        let waiting = Waiting {
                            comment: ic.comment.clone(),
                            hash,
                        };
                        batch.insert(keys::orphan(link, &hash), encode(&waiting)?);
                        self.orphan_links
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(link_hash(link));
                        report.waiting += 1;
                    }
                    None => report.dropped += 1,
                },
            }
            let item = joined_here.get(&ic.comment.id).copied();
            if known.is_some() && item.is_none() {
                continue; // still without its story: nothing new to write
            }
            batch.insert(keys::comment(&hash), comment_ref(item, time, stored_here));
            let entry = RecentComment {
                comment: ic.comment,
                item,
                stored: Some(stored_here),
            };
            batch.insert(keys::stream(time, &hash), encode(&entry)?);
            streamed += 1;
        }

        // A story's own comment feed states a count by its length; the story
        // changes only if that count is news.
        if let CommentSource::ItemFeed { item, entries } = source {
            if let Some(story) = stories.get_mut(&item) {
                stories::offer_count(&mut story.comments, CountSource::ItemFeed, entries);
            } else if let Some(mut story) = self.item(&item)? {
                let before = story.comments.clone();
                stories::offer_count(&mut story.comments, CountSource::ItemFeed, entries);
                if story.comments != before {
                    stories.put(story);
                    changed = true;
                }
            }
        }
        Ok(Joined {
            report,
            streamed,
            changed,
        })
    }

    /// The newest comments across all feeds, newest first.
    /// The stream newest first, those `keep` accepts, at most `limit`:
    /// read as it is taken, so a reader that stops early decodes only
    /// what it took.
    pub fn recent_comments(
        &self,
        limit: usize,
        keep: &dyn Fn(&RecentComment) -> bool,
    ) -> Result<Vec<RecentComment>, StoreError> {
        let mut out = Vec::new();
        let entries = self.tree.scan_prefix(keys::STREAM).values().rev();
        for value in entries.take(STREAM_MAX) {
            if out.len() >= limit {
                break;
            }
            let c: RecentComment = serde_json::from_slice(&value?)?;
            if keep(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Joins comments that were waiting for `item` (by its link) to it;
    /// whether any did. Called inside a write, with the writer lock held.
    pub(super) fn attach_orphans(
        &self,
        item: &mut Item,
        batch: &mut sled::Batch,
        stored: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(link) = &item.link else {
            return Ok(false);
        };
        let waiting =
            (self.orphan_links.lock()).map_or(true, |links| links.contains(&link_hash(link)));
        if !waiting {
            return Ok(false);
        }
        let mut found = Vec::new();
        for entry in self.tree.scan_prefix(keys::orphan_prefix(link)) {
            let (key, value) = entry?;
            let waiting: Waiting = serde_json::from_slice(&value)?;
            batch.remove(key);
            let (joined, time) = match self.tree.get(keys::comment(&waiting.hash))? {
                Some(v) => decode_comment_ref(&v),
                None => (None, None),
            };
            found.push((waiting, joined.is_some(), time));
        }
        let comments: Vec<(Comment, bool)> = found
            .iter()
            .map(|(w, elsewhere, _)| (w.comment.clone(), *elsewhere))
            .collect();
        let joined = stories::join_waiting(item, &comments, self.keep_comments());
        for i in &joined {
            let (waiting, _, time) = &found[*i];
            let time = time.unwrap_or_else(|| waiting.comment.published.unwrap_or(item.first_seen));
            batch.insert(
                keys::comment(&waiting.hash),
                comment_ref(Some(item.id), time, stored),
            );
            let entry = RecentComment {
                comment: waiting.comment.clone(),
                item: Some(item.id),
                stored: Some(stored),
            };
            batch.insert(keys::stream(time, &waiting.hash), encode(&entry)?);
            self.stream_len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(!joined.is_empty())
    }

    /// The story a comment belongs to, by [`stories::find_story`]: an id
    /// stored or in this write, a story link, or a parent comment joined
    /// earlier in this document or before.
    fn resolve(
        &self,
        feed: &str,
        targets: &[Target],
        joined_here: &HashMap<String, ItemId>,
        pending: &Pending,
    ) -> Result<Option<ItemId>, StoreError> {
        stories::find_story(targets, |t| {
            Ok(match t {
                Target::Item(id) => {
                    (pending.contains(id) || self.index().stored.contains_key(id)).then_some(*id)
                }
                Target::Link(link) => pending.linked(link).or_else(|| self.index().linked(link)),
                Target::Comment(parent) => match joined_here.get(parent) {
                    Some(id) => Some(*id),
                    None => self
                        .tree
                        .get(keys::comment(&crate::store::comment_hash(feed, parent)))?
                        .and_then(|v| decode_comment_ref(&v).0),
                },
            })
        })
    }

    /// Counts `n` entries written to the stream (some may have replaced
    /// entries already there) and trims it when it may have outgrown
    /// [`STREAM_MAX`] by [`STREAM_SLACK`]. Called with the writer lock held.
    pub(super) fn streamed(&self, n: usize) -> Result<(), StoreError> {
        let len = self.stream_len.fetch_add(n, Ordering::Relaxed) + n;
        if len > STREAM_MAX + STREAM_SLACK {
            self.prune_stream()?;
        }
        Ok(())
    }

    /// Keeps the stream at [`STREAM_MAX`] entries, dropping the oldest.
    fn prune_stream(&self) -> Result<(), StoreError> {
        let total = self.tree.scan_prefix(keys::STREAM).keys().count();
        self.stream_len
            .store(total.min(STREAM_MAX), Ordering::Relaxed);
        if total <= STREAM_MAX {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for key in self
            .tree
            .scan_prefix(keys::STREAM)
            .keys()
            .take(total - STREAM_MAX)
        {
            batch.remove(key?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

/// A comment waiting for its story, with its feed-scoped key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Waiting {
    comment: Comment,
    hash: [u8; 16],
}

/// `k:` values: the story's id when joined (16 bytes, else none), then the
/// stream time (8 bytes).
fn comment_ref(item: Option<ItemId>, time: Timestamp, stored: Timestamp) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    if let Some(id) = item {
        v.extend_from_slice(&id.0);
    }
    v.extend_from_slice(&keys::time(time));
    v.extend_from_slice(&keys::time(stored));
    v
}

pub(super) fn decode_comment_ref(v: &[u8]) -> (Option<ItemId>, Option<Timestamp>) {
    let (item, time, _) = decode_record(v);
    (item, time)
}

/// A `k:` value: the story (once joined), the stream time and, since it
/// is kept, when the comment was stored. Older records hold 8 (unjoined)
/// or 24 (joined) bytes, without the storage time.
pub(super) fn decode_record(v: &[u8]) -> (Option<ItemId>, Option<Timestamp>, Option<Timestamp>) {
    let id = |b: &[u8]| b.try_into().ok().map(ItemId);
    let (item, time, stored) = match v.len() {
        8 => (None, v, None),
        16 => (None, &v[..8], Some(&v[8..])),
        24 => (id(&v[..16]), &v[16..], None),
        32 => (id(&v[..16]), &v[16..24], Some(&v[24..])),
        _ => return (None, None, None),
    };
    (
        item,
        keys::decode_time(time),
        stored.and_then(keys::decode_time),
    )
}
