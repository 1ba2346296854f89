//! The store's own invariants that no HTTP test can see: how stories are
//! encoded on disk and how the comment stream is kept short.

use super::codec::LZ4;
use super::comment_records::STREAM_SLACK;
use super::*;
use crate::model::{
    Candidate, Comment, CommentBatch, IncomingComment, ParsedEntry, PolledDocument,
};
use crate::store::tests::site_batch;

fn open() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
    (dir, store)
}

impl SledStore {
    /// One document's stories and the feed's state, as a poll writes them.
    fn ingest(
        &self,
        feed: &str,
        candidates: Vec<Candidate>,
        state: &FeedState,
        now: Timestamp,
    ) -> Result<IngestReport, StoreError> {
        let state = state.clone();
        let poll = PolledDocument {
            candidates,
            comments: Vec::new(),
            state,
        };
        self.record_poll(feed, poll, now)
    }

    /// One comments document, as a poll whose feed did not change writes it.
    fn add_comments(
        &self,
        feed: &str,
        comments: CommentBatch,
        now: Timestamp,
    ) -> Result<CommentReport, StoreError> {
        let state = self.feed_state(feed)?;
        let poll = PolledDocument {
            candidates: Vec::new(),
            comments: vec![comments],
            state,
        };
        Ok(self
            .record_poll(feed, poll, now)?
            .comments
            .unwrap_or_default())
    }
}

fn candidate(n: u8) -> Candidate {
    Candidate {
        fresh_id: ItemId([n; 16]),
        canonical_link: Some(format!("https://example.com/{n}")),
        entry: ParsedEntry {
            title: format!("Story {n}"),
            link: Some(format!("https://example.com/{n}")),
            content: Some("<p>The Infiniti QX80 returns.</p>".repeat(40)),
            ..Default::default()
        },
    }
}

#[test]
fn stories_are_stored_compressed_and_plain_json_still_reads() {
    let (_dir, store) = open();
    let now = chrono::Utc::now();
    store
        .ingest("feed", vec![candidate(1)], &FeedState::default(), now)
        .unwrap();
    let item = store.item(&ItemId([1; 16])).unwrap().unwrap();
    let raw = store.tree.get(story_key(&item)).unwrap().unwrap();
    let json = serde_json::to_vec(&item).unwrap();
    assert_eq!(raw[0], LZ4, "tagged as compressed");
    // Stamped under the writer lock after it was encoded: the stamp read
    // back is the one its first-seen index entry holds.
    let seen = *store.index().by_seen.keys().next().unwrap();
    assert_eq!(index::nanos(item.first_seen), seen);
    assert!(item.first_seen > now - chrono::Duration::seconds(5));
    assert!(
        raw.len() * 3 < json.len(),
        "{} bytes stored for {} bytes of JSON",
        raw.len(),
        json.len()
    );

    // A store written before compression holds plain JSON.
    store.tree.insert(keys::item(2), json).unwrap();
    let old = store.story_at(2).unwrap().unwrap();
    assert_eq!(old, item);

    // A damaged value is an error, not a panic.
    let mut damaged = vec![LZ4];
    damaged.extend_from_slice(&keys::time_ns(now));
    damaged.extend_from_slice(&[200, 0, 0, 0, 0xf0, 7]);
    store.tree.insert(keys::item(3), damaged).unwrap();
    assert!(matches!(store.story_at(3), Err(StoreError::Corrupt(_))));
}

#[test]
fn the_comment_stream_is_trimmed_to_its_newest_entries() {
    let (_dir, store) = open();
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let total = STREAM_MAX + STREAM_SLACK + 1;
    // In several writes, as polls would make them.
    for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
        let incoming = chunk
            .iter()
            .map(|&i| IncomingComment {
                comment: Comment {
                    id: format!("c{i}"),
                    author: None,
                    text: format!("comment {i}"),
                    url: None,
                    published: Some(start + chrono::Duration::seconds(i as i64)),
                },
                targets: Vec::new(),
            })
            .collect();
        store
            .add_comments("feed", site_batch(incoming), chrono::Utc::now())
            .unwrap();
    }
    let stored = store.tree.scan_prefix(keys::STREAM).keys().count();
    assert!(
        (STREAM_MAX..=STREAM_MAX + STREAM_SLACK).contains(&stored),
        "{stored} entries"
    );
    let recent = store.recent_comments(STREAM_MAX, &|_| true).unwrap();
    assert_eq!(recent.len(), STREAM_MAX);
    assert_eq!(
        recent[0].comment.id,
        format!("c{}", total - 1),
        "newest first"
    );
    assert_eq!(
        recent[STREAM_MAX - 1].comment.id,
        format!("c{}", total - STREAM_MAX),
        "the oldest kept is the 1000th newest"
    );

    // The count survives a restart: reopening does not let the stream grow
    // past its bound.
    let dir = _dir;
    drop(store);
    let store = SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
    assert_eq!(store.stream_len.load(Ordering::Relaxed), stored);
}

/// A story in `feed` with its own id and a link that another feed may
/// share, published `days` ago.
fn story(n: u8, link: u8, days: i64) -> Candidate {
    let mut c = candidate(link);
    c.fresh_id = ItemId([n; 16]);
    c.entry.published = Some(chrono::Utc::now() - chrono::Duration::days(days));
    c
}

/// Two feeds sharing a story, a story whose date moved, and one removed by
/// retention: every kind of head change.
fn fill(store: &SledStore) {
    let now = chrono::Utc::now();
    let state = FeedState::default();
    let a = vec![
        story(1, 1, 1),
        story(2, 2, 2),
        story(3, 3, 3),
        story(4, 4, 4),
    ];
    store.ingest("a", a, &state, now).unwrap();
    // Feed b carries story 1 under another id (same link) and one of its own.
    let b = vec![story(11, 1, 1), story(12, 12, 5)];
    store.ingest("b", b, &state, now).unwrap();
    // Story 2's date moves.
    store
        .ingest("a", vec![story(2, 2, 6)], &state, now)
        .unwrap();
    // Feed a keeps its three newest: story 2 (now the oldest) is removed.
    let pruned = store.prune(now - chrono::Duration::days(90), 3, &["a", "b"], now);
    assert_eq!(pruned.unwrap().over_limit, 1);
}

/// Another feed brings the link of story 2, which `fill` removed.
fn bring_back_removed_link(store: &SledStore) -> IngestReport {
    let state = FeedState::default();
    store
        .ingest("c", vec![story(20, 2, 6)], &state, chrono::Utc::now())
        .unwrap()
}

fn newest(store: &SledStore) -> Vec<ItemId> {
    let items = store.latest(100, |_| true).unwrap();
    items.iter().map(|i| i.id).collect()
}

#[test]
fn the_indexes_in_memory_match_the_heads_on_disk_across_a_reopen() {
    let (dir, store) = open();
    fill(&store);
    let report = store.verify().unwrap();
    assert_eq!(report.problems, Vec::<String>::new());
    let ids = newest(&store);
    assert_eq!(
        ids,
        [1, 3, 4, 12].map(|n| ItemId([n; 16])),
        "newest first, story 2 gone, story 11 merged into 1"
    );
    assert_eq!(store.count_in_feed("b"), 2, "story 1 is also in b");
    drop(store);

    let store = SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
    assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
    assert_eq!(newest(&store), ids);
    assert_eq!(store.count_in_feed("a"), 3);
    assert_eq!(store.count_in_feed("b"), 2);
    // The tombstone keeps the link: another feed bringing it finds it pruned.
    let again = bring_back_removed_link(&store);
    assert_eq!((again.new.len(), again.pruned), (0, 1));
}

#[test]
fn a_schema_1_store_is_migrated_at_open() {
    let (dir, store) = open();
    fill(&store);
    let ids = newest(&store);
    // Rewrite the store as schema 1 kept it: stories keyed by id, an index
    // key per story and index, tombstones holding only their time, the
    // pruned story's link an `l:` key.
    let tree = &store.tree;
    for key in tree.scan_prefix(keys::HEADS).keys() {
        tree.remove(key.unwrap()).unwrap();
    }
    let mut twin = store.item(&ItemId([1; 16])).unwrap().unwrap();
    let stories: Vec<_> = tree.scan_prefix(keys::ITEM).map(Result::unwrap).collect();
    for (key, value) in stories {
        let item = decode_item(&value).unwrap();
        let (t, id) = (keys::time(item.sort_time()), item.id.0);
        tree.remove(key).unwrap();
        tree.insert([keys::ITEM, &id].concat(), value).unwrap();
        tree.insert([b"t:", &t[..], &id].concat(), &[][..]).unwrap();
        for feed in item.feeds() {
            let key = [b"f:", feed.as_bytes(), b"\0", &t, &id].concat();
            tree.insert(key, &[][..]).unwrap();
        }
        let seen = keys::time_ns(item.first_seen);
        tree.insert([b"n:", &seen[..], &id].concat(), &[][..])
            .unwrap();
        let link = item.link.unwrap();
        tree.insert([b"l:", link.as_bytes()].concat(), &id[..])
            .unwrap();
    }
    // Schema 1 could hold two stories first seen in the same nanosecond.
    twin.id = ItemId([30; 16]);
    twin.link = Some("https://example.com/30".into());
    let twin_key = [keys::ITEM, &twin.id.0].concat();
    tree.insert(twin_key, encode_item(&twin).unwrap()).unwrap();
    let gone = ItemId([2; 16]);
    let tombstone = tree.get(keys::pruned(&gone)).unwrap().unwrap();
    tree.insert(keys::pruned(&gone), &tombstone[..8]).unwrap();
    tree.insert(b"l:https://example.com/2", &gone.0[..])
        .unwrap();
    tree.insert(keys::SCHEMA, b"1").unwrap();
    drop(store);

    let store = SledStore::open(&dir.path().join("store"), 8 << 20).unwrap();
    assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
    assert_eq!(
        store.tree.get(keys::SCHEMA).unwrap().as_deref(),
        Some(&b"2"[..])
    );
    for prefix in keys::V1_INDEXES {
        assert_eq!(store.tree.scan_prefix(prefix).count(), 0, "{prefix:?} left");
    }
    let twin = store.item(&ItemId([30; 16])).unwrap().unwrap();
    let one = store.item(&ItemId([1; 16])).unwrap().unwrap();
    let apart = (twin.first_seen - one.first_seen).abs();
    assert_eq!(apart, chrono::Duration::nanoseconds(1), "one moved aside");
    // Same sort time as story 1: the larger id first.
    let mut with_twin = ids.clone();
    with_twin.insert(0, twin.id);
    assert_eq!(newest(&store), with_twin);
    assert_eq!(store.count_in_feed("b"), 3, "stories 12, 1 and its twin");
    let again = bring_back_removed_link(&store);
    assert_eq!(again.pruned, 1, "the tombstone learned its link");
}
