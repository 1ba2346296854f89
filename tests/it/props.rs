//! Property tests over every input boundary: feed bytes, config text, the
//! routes' query parameters, OPML, comment texts, and stored stories into
//! every renderer. The property is always the same: no panic; a value or a
//! clear error; and outputs that XML and JSON parsers accept. Case counts
//! are bounded so the whole module runs in well under two minutes; cases
//! proptest finds are kept in `proptest-regressions/` and run first.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use tower::ServiceExt;
use url::Url;

use paddock::config::Config;
use paddock::model::{Comment, CommentInfo, CountSource, Item, ItemId, RecentComment, Timestamp};
use paddock::render::{self, Channel, Directory, FeedInfo};

use crate::support::fixtures_dir;

/// Pieces that break naive XML, HTML, JSON, date and URL handling, mixed
/// with arbitrary text.
fn nasty() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("]]>".to_string()),
        Just("<![CDATA[".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{b}\u{1b}".to_string()),
        Just("\u{FFFE}\u{FFFF}".to_string()),
        Just("&".to_string()),
        Just("&#0;".to_string()),
        Just("&nbsp;&eacute;".to_string()),
        Just("<div>".repeat(300)),
        Just("<script>alert(1)</script>".to_string()),
        Just("javascript:alert(1)".to_string()),
        Just("https://user:pw@h.example/a#comment-1".to_string()),
        Just("\u{202e}\u{200b}".to_string()),
        Just("\"'><".to_string()),
        any::<String>(),
    ];
    prop::collection::vec(pieces, 0..6).prop_map(|v| v.concat())
}

/// Any time chrono can hold, a few hundred thousand years either way.
fn any_time() -> impl Strategy<Value = Timestamp> {
    (-8_000_000_000_000i64..8_000_000_000_000i64)
        .prop_map(|s| chrono::DateTime::from_timestamp(s, 0).unwrap_or_default())
}

fn any_comment() -> impl Strategy<Value = Comment> {
    (
        nasty(),
        proptest::option::of(nasty()),
        nasty(),
        proptest::option::of(any_time()),
    )
        .prop_map(|(id, author, text, published)| Comment {
            id,
            author,
            text,
            url: None,
            published,
        })
}

fn any_item() -> impl Strategy<Value = Item> {
    (
        (
            any::<[u8; 16]>(),
            nasty(),
            nasty(),
            proptest::option::of(nasty()),
        ),
        (proptest::option::of(nasty()), proptest::option::of(nasty())),
        (
            proptest::option::of(any_time()),
            proptest::option::of(any_time()),
            any_time(),
        ),
        (
            prop::collection::vec(nasty(), 0..3),
            proptest::option::of(any::<u32>()),
        ),
        prop::collection::vec(any_comment(), 0..3),
    )
        .prop_map(
            |(
                (id, title, author, link),
                (summary, content),
                (published, updated, seen),
                (cats, count),
                comments,
            )| Item {
                id: ItemId(id),
                feed: "h".into(),
                also_in: vec!["other".into()],
                guid: None,
                title,
                link,
                authors: vec![author],
                summary,
                content,
                published,
                updated,
                first_seen: seen,
                last_changed: seen,
                categories: cats,
                image: None,
                comments: CommentInfo {
                    count,
                    source: count.map(|_| CountSource::Feed),
                    page_url: None,
                    feed_url: None,
                },
                recent_comments: comments,
                comments_seen: 0,
                comment_history: Vec::new(),
            },
        )
}

fn channel() -> Channel {
    Channel {
        title: "Props".into(),
        self_url: "http://paddock.test/feed.atom".into(),
        home_url: "http://paddock.test/".into(),
        updated: chrono::Utc::now(),
        hub: None,
    }
}

fn directory() -> Directory {
    let mut d = Directory::new();
    d.insert(
        "h".into(),
        FeedInfo {
            id: "h".into(),
            title: "H & <h>".into(),
            url: "https://h.example/feed".into(),
            site: None,
        },
    );
    d
}

/// Every fixture feed, read once.
static FIXTURES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e != "md") {
            out.push(std::fs::read(path).unwrap());
        }
    }
    out.sort();
    out
});

/// A fixture, maybe re-encoded as UTF-16 (with or without a BOM), with a
/// few bytes replaced, inserted or removed.
fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8);
    (any::<prop::sample::Index>(), 0u8..5, edits).prop_map(|(which, encoding, edits)| {
        let doc = &FIXTURES[which.index(FIXTURES.len())];
        let text = String::from_utf8_lossy(doc);
        let utf16 = |be: bool| -> Vec<u8> {
            text.encode_utf16()
                .flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect()
        };
        let mut doc = match encoding {
            0 => [&[0xfe, 0xff][..], &utf16(true)].concat(),
            1 => [&[0xff, 0xfe][..], &utf16(false)].concat(),
            2 => utf16(true),
            3 => utf16(false),
            _ => doc.clone(),
        };
        for (at, byte, op) in edits {
            if doc.is_empty() {
                break;
            }
            let i = at.index(doc.len());
            match op {
                0 => doc[i] = byte,
                1 => doc.insert(i, byte),
                _ => {
                    doc.remove(i);
                }
            }
        }
        doc
    })
}

fn parse_and_normalize(bytes: &[u8]) {
    let base = Url::parse("https://h.example/feed").unwrap();
    if let Ok(feed) = paddock::parse::parse_feed(bytes, &base, None) {
        let now = chrono::Utc::now();
        for c in paddock::normalize::candidates("h", feed.entries, 1000, now) {
            let text = c.entry.title.as_str();
            assert!(text.chars().count() <= paddock::normalize::MAX_TITLE_CHARS);
            for html in [&c.entry.summary, &c.entry.content].into_iter().flatten() {
                assert!(html.len() <= paddock::text::MAX_HTML_BYTES * 2);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_fail_cleanly(
        bom in prop::sample::select(vec![
            &b""[..], b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff",
            b"\xff\xfe\x00\x00", b"<?xml version=\"1.0\" encoding=\"utf-16\"?>",
            b"<?xml version=\"1.0\" encoding=\"big5\"?><rss version=\"2.0\">",
        ]),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        parse_and_normalize(&[bom, &bytes].concat());
    }

    #[test]
    fn mutated_fixtures_parse_or_fail_cleanly(bytes in mutated_fixture()) {
        parse_and_normalize(&bytes);
    }

    #[test]
    fn feeds_with_nasty_text_parse_or_fail_cleanly(title in nasty(), body in nasty(), date in nasty()) {
        let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
        let doc = format!(
            "<rss version=\"2.0\"><channel><title>{}</title><item><title>{}</title>\
             <description>{}</description><pubDate>{}</pubDate><link>{}</link></item></channel></rss>",
            escape(&title), escape(&title), escape(&body), escape(&date), escape(&title)
        );
        parse_and_normalize(doc.as_bytes());
    }

    #[test]
    fn config_text_validates_or_names_its_mistake(text in nasty()) {
        match Config::parse(&text, Path::new("feeds.toml")) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.to_string().starts_with("feeds.toml:"), "{e}"),
        }
    }

    #[test]
    fn config_values_validate_or_name_their_mistake(
        key in prop::sample::select(vec![
            "[storage]\nretention", "[storage]\ncache_bytes", "[storage]\nmax_items_per_feed",
            "[poll]\ninterval", "[poll]\nmin_interval", "[poll]\nmax_interval", "[poll]\ntimeout",
            "[poll]\nconcurrency", "[poll]\nmax_body_bytes", "[server]\nheader_timeout",
            "[server]\nmax_connections", "[output]\nitems",
        ]),
        value in prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (any::<u32>(), prop::sample::select(vec!["s", "m", "h", "d", "y", "ms", "ns"]))
                .prop_map(|(n, u)| format!("\"{n}{u}\"")),
            nasty().prop_map(|s| format!("{s:?}")),
        ],
    ) {
        let text = format!("{key} = {value}\n");
        if let Err(e) = Config::parse(&text, Path::new("feeds.toml")) {
            prop_assert!(e.to_string().starts_with("feeds.toml:"), "{e}");
        }
    }

    #[test]
    fn opml_imports_or_says_why_not(body in nasty(), url in nasty()) {
        let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
        let doc = format!(
            "<?xml version=\"1.0\"?><opml version=\"2.0\"><head><title>t</title></head><body>\
             <outline text=\"{}\" xmlUrl=\"{}\"/><outline text=\"x\">{}</outline></body></opml>",
            escape(&body), escape(&url), escape(&body)
        );
        if let Ok(toml) = paddock::opml::import(&doc) {
            // What import prints is a config the daemon reads.
            let config = Config::parse(&toml, Path::new("feeds.toml"));
            prop_assert!(config.is_ok(), "{toml}\n{config:?}");
        }
        let _ = paddock::opml::import(&body);
    }

    #[test]
    fn excerpts_are_bounded_whatever_the_text(text in nasty(), max in 1usize..500) {
        let e = paddock::text::html_excerpt(&text, max);
        prop_assert!(e.chars().count() <= max, "{e:?}");
        let _ = paddock::text::html_to_text(&text);
        let clean = paddock::text::clean_html(&text);
        prop_assert!(!clean.contains("<script"), "{clean}");
    }

    #[test]
    fn every_renderer_accepts_any_stored_story(items in prop::collection::vec(any_item(), 0..4)) {
        let (channel, directory) = (channel(), directory());
        for xml in [render::atom(&channel, &items, &directory), render::rss(&channel, &items, &directory)] {
            if let Err(e) = roxmltree::Document::parse(&xml) {
                prop_assert!(false, "{e}\n{xml}");
            }
        }
        let json = render::json_feed(&channel, &items, &directory);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        let comments: Vec<RecentComment> = items
            .iter()
            .flat_map(|i| i.recent_comments.iter().map(|c| RecentComment {
                comment: c.clone(),
                item: Some(i.id),
                stored: Some(i.first_seen),
            }))
            .collect();
        let groups = |_: &str| vec!["news".to_string()];
        let input = render::digest::DigestInput {
            title: "Props",
            generated_at: chrono::Utc::now(),
            since: chrono::DateTime::UNIX_EPOCH,
            until: chrono::Utc::now(),
            next_since: chrono::Utc::now(),
            group: None,
            items: &items,
            comments: &comments,
            feeds: Vec::new(),
            directory: &directory,
            groups: &groups,
            heat_window: std::time::Duration::from_secs(86400),
        };
        let digest = serde_json::to_string(&render::digest::digest(&input)).unwrap();
        let digest: serde_json::Value = serde_json::from_str(&digest).unwrap();
        for item in digest["items"].as_array().unwrap() {
            let first_seen = item["first_seen"].as_str().unwrap();
            prop_assert!(chrono::DateTime::parse_from_rfc3339(first_seen).is_ok(), "{first_seen}");
        }
    }
}

/// One store and router for the query-parameter properties, with stories.
static APP: LazyLock<(tokio::runtime::Runtime, axum::Router, tempfile::TempDir)> =
    LazyLock::new(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds.toml");
        let feed = fixtures_dir().join("wordpress.rss");
        std::fs::write(
            &path,
            format!(
                "[[feed]]\nid = \"h\"\nurl = \"{}\"\ngroups = [\"news\"]\n",
                feed.display()
            ),
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        let app = rt.block_on(async {
            let pipeline = paddock::app::pipeline(&config).unwrap();
            pipeline.poll_all(&config.feeds, |_| {}).await;
            paddock::server::router(paddock::server::AppState::new(
                pipeline.store.clone(),
                Arc::new(ArcSwap::from_pointee(config)),
            ))
        });
        (rt, app, dir)
    });

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn query_parameters_get_an_answer_never_a_crash(
        route in prop::sample::select(vec![
            "/digest.json", "/feed.atom", "/feed.rss", "/feed.json", "/", "/comments/recent.json",
            "/groups/news/feed.atom", "/feeds/h/feed.json",
        ]),
        key in prop::sample::select(vec!["since", "limit", "group", "before", "x"]),
        value in prop_oneof![
            nasty(),
            any::<i64>().prop_map(|n| n.to_string()),
            (any::<u32>(), prop::sample::select(vec!["s", "h", "d", "y"])).prop_map(|(n, u)| format!("{n}{u}")),
            (-300_000i64..300_000).prop_map(|y| format!("{y:04}-01-01T00:00:00Z")),
        ],
    ) {
        let (rt, app, _) = &*APP;
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(key, &value)
            .finish();
        let uri = format!("{route}?{query}");
        let response = rt.block_on(async {
            app.clone()
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap()
        });
        let status = response.status().as_u16();
        prop_assert!(matches!(status, 200 | 400 | 404), "{uri}: {status}");
        let body = rt.block_on(axum::body::to_bytes(response.into_body(), 1 << 24)).unwrap();
        if status != 200 || route.ends_with(".json") {
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok(), "{uri}");
        } else if route != "/" {
            let text = String::from_utf8(body.to_vec()).unwrap();
            prop_assert!(roxmltree::Document::parse(&text).is_ok(), "{uri}");
        }
    }
}
