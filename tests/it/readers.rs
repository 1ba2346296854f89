//! Real feed readers read every output without a complaint: Python's
//! feedparser (no bozo flag) and newsboat (no error) for Atom and RSS;
//! feed-rs and the JSON Feed 1.1 rules for JSON Feed.
//! `.ci/run` installs feedparser and newsboat. Without them these tests
//! fail under CI and say they were skipped otherwise.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{Daemon, FixtureServer, TestEnv, get_bytes, have};

/// Starts a daemon on fixture feeds and waits until it has polled them.
async fn daemon() -> (FixtureServer, TestEnv, String, Daemon) {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("wire", &server.url("/f/syndicated.rss")),
            ("jalopnik", &server.url("/f/atom.xml")),
            ("json", &server.url("/f/feed.json")),
            ("latin", &server.url("/f/latin1.xml")),
            ("xss", &server.url("/f/xss.rss")),
        ],
        "",
    );
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(STORIES).await;
    (server, env, daemon.base.clone(), daemon)
}

/// 6 + 3 + 4 + 3 + 2 + 2 stories in the fixtures, one of them shared.
const STORIES: usize = 19;

const OUTPUTS: [&str; 3] = ["feed", "groups/news/feed", "feeds/ttac/feed"];

async fn download(base: &str, path: &str, dir: &Path) -> std::path::PathBuf {
    let body = get_bytes(&format!("{base}{path}")).await;
    let file = dir.join(path.replace('/', "_"));
    std::fs::write(&file, &body).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedparser_reads_atom_and_rss_without_bozo() {
    if !have("python3", &["-c", "import feedparser"]) {
        return;
    }
    let (_server, env, base, daemon) = daemon().await;
    for output in OUTPUTS {
        for ext in ["atom", "rss"] {
            let file = download(&base, &format!("{output}.{ext}?limit=100"), env.dir.path()).await;
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import feedparser,sys\n\
                     d = feedparser.parse(sys.argv[1])\n\
                     print(int(d.bozo), repr(d.get('bozo_exception')), len(d.entries), d.version)\n\
                     for e in d.entries: print('ENTRY', e.get('id'), '|', e.get('title'))",
                    file.to_str().unwrap(),
                ])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let first = stdout.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("0 None"),
                "{output}.{ext}: feedparser says {stdout}"
            );
            let entries = stdout
                .lines()
                .filter(|l| l.starts_with("ENTRY urn:uuid:"))
                .count();
            let expected = match output {
                "feeds/ttac/feed" => 6,
                _ => STORIES,
            };
            assert_eq!(entries, expected, "{output}.{ext}: {stdout}");
            if output == "feed" {
                let infiniti = stdout
                    .lines()
                    .filter(|l| l.contains("| Infiniti Production To Leave Japan"))
                    .count();
                assert_eq!(infiniti, 1, "the shared story once: {stdout}");
                assert!(
                    stdout.contains("| Citroën DS, café racer & Peugeot"),
                    "{stdout}"
                );
            }
        }
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newsboat_reads_atom_and_rss_without_error() {
    if !have("newsboat", &["--version"]) {
        return;
    }
    let (_server, env, base, daemon) = daemon().await;
    let dir = env.dir.path().to_path_buf();
    let urls: String = OUTPUTS
        .iter()
        .flat_map(|o| ["atom", "rss"].map(|ext| format!("{base}{o}.{ext}?limit=100\n")))
        .collect();
    std::fs::write(dir.join("urls"), urls).unwrap();
    let errors = dir.join("errors.log");
    std::fs::write(
        dir.join("newsboat.conf"),
        format!("error-log \"{}\"\n", errors.display()),
    )
    .unwrap();
    let workdir = dir.clone();
    let run = move |action: &str| {
        let out = Command::new("newsboat")
            .current_dir(&workdir)
            .env("HOME", &workdir)
            .args([
                "-u",
                "urls",
                "-c",
                "cache.db",
                "-C",
                "newsboat.conf",
                "-x",
                action,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "newsboat {action}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let reload = tokio::task::spawn_blocking(move || {
        run("reload");
        run("print-unread")
    })
    .await
    .unwrap();
    let log = std::fs::read_to_string(&errors).unwrap_or_default();
    assert!(log.trim().is_empty(), "newsboat logged errors: {log}");
    let unread: usize = reload
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected newsboat output: {reload}"));
    assert!(unread >= STORIES, "newsboat read the stories: {reload}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_feed_follows_version_1_1() {
    let (_server, env, base, daemon) = daemon().await;
    for output in OUTPUTS {
        let file = download(&base, &format!("{output}.json?limit=100"), env.dir.path()).await;
        let bytes = std::fs::read(&file).unwrap();
        // A real parser reads it...
        let parsed = feed_rs::parser::parse(&bytes[..]).expect("feed-rs reads our JSON Feed");
        assert!(!parsed.entries.is_empty());
        // ...and the spec's musts hold.
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["version"], "https://jsonfeed.org/version/1.1");
        assert!(doc["title"].is_string());
        assert!(doc["feed_url"].as_str().unwrap().starts_with(&base));
        for item in doc["items"].as_array().unwrap() {
            assert!(item["id"].is_string(), "{item}");
            assert!(
                item["content_html"].is_string() || item["content_text"].is_string(),
                "an item needs content: {item}"
            );
            for key in ["date_published", "date_modified"] {
                if let Some(d) = item[key].as_str() {
                    chrono::DateTime::parse_from_rfc3339(d)
                        .unwrap_or_else(|e| panic!("{key} {d}: {e}"));
                }
            }
            for key in item.as_object().unwrap().keys() {
                let known = [
                    "id",
                    "url",
                    "external_url",
                    "title",
                    "content_html",
                    "content_text",
                    "summary",
                    "image",
                    "banner_image",
                    "date_published",
                    "date_modified",
                    "authors",
                    "tags",
                    "language",
                    "attachments",
                ];
                assert!(
                    known.contains(&key.as_str()) || key.starts_with('_'),
                    "unknown key {key}"
                );
            }
        }
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_markup_never_reaches_an_output() {
    let (_server, _env, base, daemon) = daemon().await;
    for ext in ["atom", "rss", "json"] {
        let body =
            String::from_utf8(get_bytes(&format!("{base}feeds/xss/feed.{ext}")).await).unwrap();
        // Whatever the escaping, no live script, handler or javascript: URL.
        let decoded = html_escape::decode_html_entities(&body).to_lowercase();
        for bad in [
            "<script",
            "onerror=",
            "onmouseover",
            "javascript:",
            "<iframe",
        ] {
            assert!(!decoded.contains(bad), "feed.{ext} carries {bad}: {body}");
        }
    }
    daemon.stop().await;
}

/// RFC 4287's rules for a feed document, checked on every Atom output.
fn check_atom(xml: &str) -> Vec<String> {
    const ATOM: &str = "http://www.w3.org/2005/Atom";
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let root = doc.root_element();
    let mut errors = Vec::new();
    let mut fail = |m: String| errors.push(m);
    if !(root.has_tag_name((ATOM, "feed"))) {
        fail("the root is not atom:feed".into());
    }
    fn children<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Vec<roxmltree::Node<'a, 'i>> {
        n.children()
            .filter(|c| c.has_tag_name((ATOM, name)))
            .collect()
    }
    let is_date =
        |n: &roxmltree::Node| chrono::DateTime::parse_from_rfc3339(n.text().unwrap_or("")).is_ok();
    for (name, exactly_one) in [("id", true), ("title", true), ("updated", true)] {
        let found = children(root, name);
        if exactly_one && found.len() != 1 {
            fail(format!("feed has {} atom:{name}", found.len()));
        }
    }
    if !children(root, "updated").iter().all(is_date) {
        fail("feed updated is not an RFC 3339 date".into());
    }
    let feed_has_author = !children(root, "author").is_empty();
    if !children(root, "link")
        .iter()
        .any(|l| l.attribute("rel") == Some("self"))
    {
        fail("feed has no rel=self link".into());
    }
    let mut ids = std::collections::HashSet::new();
    for entry in children(root, "entry") {
        for name in ["id", "title", "updated"] {
            if children(entry, name).len() != 1 {
                fail(format!(
                    "entry has {} atom:{name}",
                    children(entry, name).len()
                ));
            }
        }
        for name in ["updated", "published"] {
            if !children(entry, name).iter().all(is_date) {
                fail(format!("entry {name} is not an RFC 3339 date"));
            }
        }
        let id = children(entry, "id")
            .first()
            .and_then(|i| i.text())
            .unwrap_or("")
            .to_string();
        if url::Url::parse(&id).is_err() {
            fail(format!("entry id {id:?} is not an IRI"));
        }
        if !ids.insert(id.clone()) {
            fail(format!("entry id {id} repeats"));
        }
        let source_has_author = children(entry, "source")
            .iter()
            .any(|s| !children(*s, "author").is_empty());
        if children(entry, "author").is_empty() && !feed_has_author && !source_has_author {
            fail(format!("entry {id} has no author"));
        }
        let alternates: Vec<_> = children(entry, "link")
            .into_iter()
            .filter(|l| l.attribute("rel").unwrap_or("alternate") == "alternate")
            .map(|l| {
                (
                    l.attribute("type").unwrap_or(""),
                    l.attribute("hreflang").unwrap_or(""),
                )
            })
            .collect();
        let unique: std::collections::HashSet<_> = alternates.iter().collect();
        if unique.len() != alternates.len() {
            fail(format!("entry {id} repeats an alternate link of one type"));
        }
        if children(entry, "content").is_empty() && alternates.is_empty() {
            fail(format!(
                "entry {id} has neither content nor an alternate link"
            ));
        }
        for source in children(entry, "source") {
            for name in ["id", "title", "updated"] {
                if children(source, name).len() > 1 {
                    fail(format!("source repeats atom:{name}"));
                }
            }
        }
        for text in ["title", "summary", "content"] {
            for t in children(entry, text) {
                let ty = t.attribute("type").unwrap_or("text");
                if !["text", "html", "xhtml"].contains(&ty) && !ty.contains('/') {
                    fail(format!("entry {text} has type {ty:?}"));
                }
            }
        }
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atom_outputs_follow_rfc_4287() {
    let (_server, _env, base, daemon) = daemon().await;
    for output in OUTPUTS {
        let body =
            String::from_utf8(get_bytes(&format!("{base}{output}.atom?limit=100")).await).unwrap();
        let errors = check_atom(&body);
        assert!(
            errors.is_empty(),
            "{output}.atom breaks RFC 4287: {errors:#?}"
        );
    }
    // The checker itself catches a broken document.
    let broken = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><entry><title>e</title></entry></feed>"#;
    assert!(check_atom(broken).len() >= 4, "{:?}", check_atom(broken));
    daemon.stop().await;
}
