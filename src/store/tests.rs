//! The store's contract, one body per test run against every backend:
//! sled in a temp dir, and PostgreSQL in a database of its own (see
//! [`super::scratch_database`]).

use std::sync::Arc;
use std::time::Duration;

use super::{Claim, Store, StoreError};
use crate::model::{
    Candidate, Comment, CommentBatch, CommentReport, CommentSource, FeedState, IncomingComment,
    IngestReport, ItemId, ParsedEntry, PolledDocument, Target, Timestamp, Validators,
};

/// A store to test, and how to open it again as a restart (or another
/// instance) would.
struct Backend {
    name: &'static str,
    open: Box<dyn Fn() -> Arc<Store>>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn sled() -> Option<Backend> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        Some(Backend {
            name: "sled",
            open: Box::new(move || super::open(&path, 8 << 20).unwrap()),
            _dir: Some(dir),
        })
    }

    fn postgres(test: &str) -> Option<Backend> {
        let url = super::scratch_database(test)?;
        Some(Backend {
            name: "postgres",
            open: Box::new(move || super::open_postgres(&url, 4).unwrap()),
            _dir: None,
        })
    }

    fn open(&self) -> Arc<Store> {
        (self.open)()
    }

    /// `store` closed and opened again.
    fn reopen(&self, store: Arc<Store>) -> Arc<Store> {
        drop(store);
        self.open()
    }

    /// `n` handles on one store, as `n` instances would hold it: one
    /// shared handle where only one process may open the store.
    fn instances(&self, n: usize) -> Vec<Arc<Store>> {
        match self.name {
            "sled" => vec![self.open(); n],
            _ => (0..n).map(|_| self.open()).collect(),
        }
    }
}

/// Each test body, as one test per backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sled() {
                if let Some(b) = super::Backend::sled() {
                    super::$name(b);
                }
            }
            #[test]
            fn postgres() {
                if let Some(b) = super::Backend::postgres(concat!("store::", stringify!($name))) {
                    super::$name(b);
                }
            }
        }
    )*};
}

on_every_backend!(
    a_comment_waiting_for_its_story_joins_it_after_a_restart,
    stories_and_their_comments_from_one_poll_are_one_write,
    digest_windows_hold_every_story_once_with_several_writers,
    shared_links_retention_and_tombstones_hold_across_a_restart,
    pages_walk_every_story_once,
    feed_states_validators_and_leases,
    side_records_outlive_a_restart,
);

fn side_records_outlive_a_restart(b: Backend) {
    let store = b.open();
    store.put_record("websub", "a", b"{\"n\":1}").unwrap();
    store.put_record("websub", "b", b"2").unwrap();
    store.put_record("websub", "a", b"3").unwrap();
    store.put_record("other", "a", b"4").unwrap();
    let store = b.reopen(store);
    let mut found = store.records("websub").unwrap();
    found.sort();
    assert_eq!(
        found,
        [
            ("a".to_string(), b"3".to_vec()),
            ("b".to_string(), b"2".to_vec())
        ]
    );
    store.delete_record("websub", "a").unwrap();
    assert_eq!(store.records("websub").unwrap().len(), 1);
    assert_eq!(store.records("other").unwrap().len(), 1);
}

fn ingest(store: &Store, feed: &str, candidates: Vec<Candidate>, now: Timestamp) -> IngestReport {
    let poll = PolledDocument {
        candidates,
        comments: Vec::new(),
        state: FeedState::default(),
    };
    store.record_poll(feed, poll, now).unwrap()
}

fn add_comments(
    store: &Store,
    feed: &str,
    comments: CommentBatch,
    now: Timestamp,
) -> CommentReport {
    let poll = PolledDocument {
        candidates: Vec::new(),
        comments: vec![comments],
        state: store.feed_state(feed).unwrap(),
    };
    let report = store.record_poll(feed, poll, now).unwrap();
    report.comments.unwrap_or_default()
}

fn candidate(n: u8) -> Candidate {
    Candidate {
        fresh_id: ItemId([n; 16]),
        canonical_link: Some(format!("https://example.com/{n}")),
        entry: ParsedEntry {
            title: format!("Story {n}"),
            link: Some(format!("https://example.com/{n}")),
            content: Some("<p>The Infiniti QX80 returns.</p>".into()),
            ..Default::default()
        },
    }
}

/// A story with its own id and a link another feed may share, published
/// `days` ago.
fn story(n: u8, link: u8, days: i64) -> Candidate {
    let mut c = candidate(link);
    c.fresh_id = ItemId([n; 16]);
    c.entry.published = Some(chrono::Utc::now() - chrono::Duration::days(days));
    c
}

/// A site-wide comments document's comments, as fetched with an ETag.
pub(super) fn site_batch(comments: Vec<IncomingComment>) -> CommentBatch {
    CommentBatch {
        comments,
        source: CommentSource::Site,
        url: "https://example.com/comments/feed/".into(),
        validators: Some(Validators {
            etag: Some("\"v1\"".into()),
            ..Default::default()
        }),
    }
}

fn comment(id: &str, targets: Vec<Target>) -> IncomingComment {
    IncomingComment {
        comment: Comment {
            id: id.into(),
            author: Some("Ronnie".into()),
            text: format!("Comment {id}."),
            url: None,
            published: Some(chrono::Utc::now()),
        },
        targets,
    }
}

fn newest(store: &Store) -> Vec<ItemId> {
    let items = store.latest(100, &|_| true).unwrap();
    items.iter().map(|i| i.id).collect()
}

fn a_comment_waiting_for_its_story_joins_it_after_a_restart(b: Backend) {
    let store = b.open();
    let now = chrono::Utc::now();
    let waiting = comment("c1", vec![Target::Link("https://example.com/7".into())]);
    let report = add_comments(&*store, "feed", site_batch(vec![waiting]), now);
    assert_eq!(report.waiting, 1);
    let store = b.reopen(store);

    ingest(&*store, "feed", vec![candidate(7)], now);
    let story = store.item(&ItemId([7; 16])).unwrap().unwrap();
    let ids: Vec<_> = story
        .recent_comments
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(ids, ["c1"]);
    // A story whose link no comment waits for is stored as it came.
    ingest(&*store, "feed", vec![candidate(8)], now);
    let other = store.item(&ItemId([8; 16])).unwrap().unwrap();
    assert!(other.recent_comments.is_empty());
}

fn stories_and_their_comments_from_one_poll_are_one_write(b: Backend) {
    let store = b.open();
    let now = chrono::Utc::now();
    let state = FeedState::default();
    ingest(&*store, "feed", vec![candidate(1)], now);
    let generation = store.generation();

    let batch = site_batch(vec![
        // A new story here, by its link; then a reply through it.
        comment("a", vec![Target::Link("https://example.com/2".into())]),
        comment("b", vec![Target::Comment("a".into())]),
        // A new story here, by its id.
        comment("c", vec![Target::Item(ItemId([3; 16]))]),
        // A story stored by an earlier poll.
        comment("d", vec![Target::Link("https://example.com/1".into())]),
        // A story not stored yet: it waits.
        comment("e", vec![Target::Link("https://example.com/9".into())]),
    ]);
    let poll = PolledDocument {
        candidates: vec![candidate(2), candidate(3)],
        comments: vec![batch],
        state: state.clone(),
    };
    let report = store.record_poll("feed", poll, now).unwrap();
    assert_eq!(report.new.len(), 2);
    let comments = report.comments.unwrap();
    assert_eq!((comments.new, comments.joined, comments.waiting), (5, 4, 1));
    assert_eq!(store.generation(), generation + 1, "one write, one change");

    let ids = |n: u8| -> Vec<String> {
        let story = store.item(&ItemId([n; 16])).unwrap().unwrap();
        assert_eq!(story.comments_seen as usize, story.recent_comments.len());
        story.recent_comments.iter().map(|c| c.id.clone()).collect()
    };
    let mut two = ids(2);
    two.sort();
    assert_eq!(two, ["a", "b"]);
    assert_eq!(ids(3), ["c"]);
    assert_eq!(ids(1), ["d"]);
    let story = store.item(&ItemId([2; 16])).unwrap().unwrap();
    assert_eq!(story.comments.count, Some(2), "counted from the site feed");
    assert_eq!(story.last_changed, now);
    let stream = store.recent_comments(10, &|_| true).unwrap();
    assert_eq!(stream.len(), 5);
    assert_eq!(stream.iter().filter(|c| c.item.is_some()).count(), 4);
    let kept = store
        .validators("https://example.com/comments/feed/")
        .unwrap();
    assert_eq!(kept.etag.as_deref(), Some("\"v1\""));
    assert!(store.verify().unwrap().problems.is_empty());

    // The same document again changes nothing and repeats nothing.
    let again = add_comments(&*store, "feed", site_batch(vec![comment("d", vec![])]), now);
    assert_eq!(again.new, 0);
    assert_eq!(store.recent_comments(10, &|_| true).unwrap().len(), 5);

    // The waiting comment joins its story when it comes, as before.
    ingest(&*store, "feed", vec![candidate(9)], now);
    assert_eq!(ids(9), ["e"]);
}

/// Several instances write stories at once while a reader chains digest
/// windows by their cursors: every story lands in exactly one window, and
/// a window holds a story only once it is visible. On PostgreSQL the
/// writers are separate connections pools, as separate instances are.
fn digest_windows_hold_every_story_once_with_several_writers(b: Backend) {
    let handles = b.instances(4);
    let reader = handles[0].clone();
    let writers: Vec<_> = (handles[1..].iter().cloned().enumerate())
        .map(|(w, store)| {
            std::thread::spawn(move || {
                for batch in 0..20u8 {
                    let candidates = (0..4).map(|i| {
                        let mut c = candidate(i);
                        c.fresh_id =
                            ItemId([w as u8, batch, i, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
                        c.canonical_link = None;
                        c.entry.link = None;
                        c
                    });
                    let feed = format!("feed{w}");
                    ingest(&*store, &feed, candidates.collect(), chrono::Utc::now());
                }
            })
        })
        .collect();
    let mut last = chrono::DateTime::UNIX_EPOCH;
    let mut seen = std::collections::HashSet::new();
    let mut windows = 0;
    let take = |since, until| -> Vec<ItemId> {
        let (window, more) = reader
            .first_seen_between(since, until, 10_000, &|_| true)
            .unwrap();
        assert!(more.is_none());
        window.iter().map(|i| i.id).collect()
    };
    while writers.iter().any(|w| !w.is_finished()) || windows < 3 {
        let c = reader.cursor();
        assert!(c >= last, "cursors only grow");
        for id in take(last, c) {
            assert!(seen.insert(id), "{id} in two windows");
        }
        last = c;
        windows += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    let c = reader.cursor();
    for id in take(last, c) {
        assert!(seen.insert(id), "{id} in two windows");
    }
    assert_eq!(seen.len(), 3 * 20 * 4, "every story in exactly one window");
}

fn shared_links_retention_and_tombstones_hold_across_a_restart(b: Backend) {
    let store = b.open();
    let now = chrono::Utc::now();
    let a = vec![
        story(1, 1, 1),
        story(2, 2, 2),
        story(3, 3, 3),
        story(4, 4, 4),
    ];
    ingest(&*store, "a", a, now);
    // Feed b carries story 1 under another id (same link) and one of its own.
    let report = ingest(&*store, "b", vec![story(11, 1, 1), story(12, 12, 5)], now);
    assert_eq!((report.new.len(), report.updated.len()), (1, 1));
    // Story 2's date moves.
    ingest(&*store, "a", vec![story(2, 2, 6)], now);
    // Feed a keeps its three newest: story 2 (now the oldest) goes.
    let pruned = store.prune(now - chrono::Duration::days(90), 3, &["a", "b"], now);
    assert_eq!(pruned.unwrap().over_limit, 1);

    let check = |store: &Store| {
        assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
        assert_eq!(
            newest(store),
            [1, 3, 4, 12].map(|n| ItemId([n; 16])),
            "newest first, story 2 gone, story 11 merged into 1"
        );
        let one = store.item(&ItemId([1; 16])).unwrap().unwrap();
        assert_eq!(one.also_in, ["b"]);
        assert_eq!(store.count_in_feed("a"), 3);
        assert_eq!(store.count_in_feed("b"), 2, "story 1 is also in b");
        let b_ids: Vec<_> = (store.latest_in_feed("b", 10, &|_| true).unwrap().iter())
            .map(|i| i.id)
            .collect();
        assert_eq!(b_ids, [ItemId([1; 16]), ItemId([12; 16])]);
    };
    check(&*store);
    let store = b.reopen(store);
    check(&*store);
    // The tombstone keeps the link: another feed bringing it finds it pruned.
    assert!(store.pruned(&story(20, 2, 6)));
    let again = ingest(&*store, "c", vec![story(20, 2, 6)], chrono::Utc::now());
    assert_eq!((again.new.len(), again.pruned), (0, 1));

    // Age: everything first seen before the cutoff goes, and so does a
    // comment joined to it.
    add_comments(
        &*store,
        "a",
        site_batch(vec![comment("x", vec![Target::Item(ItemId([3; 16]))])]),
        now,
    );
    assert_eq!(store.recent_comments(10, &|_| true).unwrap().len(), 1);
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let gone = store.prune(later, 1000, &["a", "b"], later).unwrap();
    assert_eq!(gone.old, 4);
    assert!(gone.comments >= 1, "{gone:?}");
    assert!(newest(&*store).is_empty());
    assert!(store.recent_comments(10, &|_| true).unwrap().is_empty());
    assert_eq!(store.verify().unwrap().problems, Vec::<String>::new());
}

fn pages_walk_every_story_once(b: Backend) {
    let store = b.open();
    let now = chrono::Utc::now();
    // 30 stories, ten of them at the same time: pages must split ties.
    let candidates = (1..=30u8)
        .map(|n| {
            let mut c = story(n, n, 1 + (n as i64 % 20));
            if n <= 10 {
                c.entry.published = Some(now - chrono::Duration::hours(5));
            }
            c
        })
        .collect();
    ingest(&*store, "a", candidates, now);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = store.page(cursor.as_deref(), 7, &|_| true).unwrap();
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|i| i.id));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        newest(&*store).into_iter().take(30).collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), 30);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "no story twice");
    assert!(matches!(
        store.page(Some("nope"), 7, &|_| true),
        Err(StoreError::Cursor)
    ));
    // A filter skips stories without shortening the page.
    let (odd, _) = store.page(None, 5, &|i| i.id.0[0] % 2 == 1).unwrap();
    assert_eq!(odd.len(), 5);
}

fn feed_states_validators_and_leases(b: Backend) {
    let instances = b.instances(2);
    let (one, two) = (&instances[0], &instances[1]);
    let state = FeedState {
        title: Some("Carscoops".into()),
        validators: Validators {
            etag: Some("\"abc\"".into()),
            last_modified: None,
        },
        consecutive_failures: 2,
        ..Default::default()
    };
    one.put_feed_state("cs", &state).unwrap();
    assert_eq!(two.feed_state("cs").unwrap(), state);
    assert_eq!(two.feed_state("unknown").unwrap(), FeedState::default());

    // A 304 that brings nothing new still records the feed's state.
    let polled = FeedState {
        consecutive_failures: 0,
        ..state.clone()
    };
    let poll = PolledDocument {
        candidates: Vec::new(),
        comments: Vec::new(),
        state: polled.clone(),
    };
    let report = one.record_poll("cs", poll, chrono::Utc::now()).unwrap();
    assert!(report.new.is_empty());
    assert_eq!(two.feed_state("cs").unwrap(), polled);

    // Leases: one instance at a time per feed; sled, which one process
    // holds, always grants them.
    let lease = Duration::from_secs(30);
    assert_eq!(one.claim_feed("cs", lease).unwrap(), Claim::Won);
    let host_one = one.claim_host("example.com", 1, lease).unwrap();
    assert_eq!(host_one, Some(0));
    match b.name {
        "sled" => {
            assert_eq!(two.claim_feed("cs", lease).unwrap(), Claim::Won);
        }
        _ => {
            match two.claim_feed("cs", lease).unwrap() {
                Claim::Held(left) => {
                    assert!(left <= lease && left > Duration::from_secs(20), "{left:?}")
                }
                Claim::Won => panic!("two instances hold one feed"),
            }
            assert_eq!(two.claim_host("example.com", 1, lease).unwrap(), None);
            assert_eq!(two.claim_host("example.com", 2, lease).unwrap(), Some(1));
            one.release_host("example.com", 0);
            assert_eq!(two.claim_host("example.com", 1, lease).unwrap(), Some(0));
            one.release_feed("cs");
            assert_eq!(two.claim_feed("cs", lease).unwrap(), Claim::Won);
            // An expired lease is anyone's.
            assert_eq!(
                two.claim_feed("short", Duration::from_millis(1)).unwrap(),
                Claim::Won
            );
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(one.claim_feed("short", lease).unwrap(), Claim::Won);
        }
    }
}
