//! The store's own invariants that no HTTP test can see: how stories are
//! encoded on disk and how the comment stream is kept short.

use super::*;
use crate::model::{Candidate, Comment, IncomingComment, ParsedEntry};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), 8 << 20).unwrap();
    (dir, store)
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
    let raw = store
        .tree
        .get(keys::item(&ItemId([1; 16])))
        .unwrap()
        .unwrap();
    let item = store.item(&ItemId([1; 16])).unwrap().unwrap();
    let json = serde_json::to_vec(&item).unwrap();
    assert_eq!(raw[0], LZ4, "tagged as compressed");
    // Stamped under the writer lock after it was encoded: the stamp read
    // back is the one its first-seen index entry holds.
    let seen = store
        .tree
        .scan_prefix(keys::SEEN)
        .keys()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(item.first_seen),
        keys::decode_time_ns(&seen[keys::SEEN.len()..][..8])
    );
    assert!(item.first_seen > now - chrono::Duration::seconds(5));
    assert!(
        raw.len() * 3 < json.len(),
        "{} bytes stored for {} bytes of JSON",
        raw.len(),
        json.len()
    );

    // A store written before compression holds plain JSON.
    store
        .tree
        .insert(keys::item(&ItemId([2; 16])), json)
        .unwrap();
    let old = store.item(&ItemId([2; 16])).unwrap().unwrap();
    assert_eq!(old, item);

    // A damaged value is an error, not a panic.
    let mut damaged = vec![LZ4];
    damaged.extend_from_slice(&keys::time_ns(now));
    damaged.extend_from_slice(&[200, 0, 0, 0, 0xf0, 7]);
    store
        .tree
        .insert(keys::item(&ItemId([3; 16])), damaged)
        .unwrap();
    assert!(matches!(
        store.item(&ItemId([3; 16])),
        Err(StoreError::Compression(_))
    ));
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
            .add_comments(
                "feed",
                incoming,
                CommentSource::Site,
                None,
                chrono::Utc::now(),
            )
            .unwrap();
    }
    let stored = store.tree.scan_prefix(keys::STREAM).keys().count();
    assert!(
        (STREAM_MAX..=STREAM_MAX + STREAM_SLACK).contains(&stored),
        "{stored} entries"
    );
    let recent = store.recent_comments(STREAM_MAX).unwrap();
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
    let store = Store::open(&dir.path().join("store"), 8 << 20).unwrap();
    assert_eq!(store.stream_len.load(Ordering::Relaxed), stored);
}
