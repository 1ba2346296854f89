//! The digest: windows chained by `next_since`, the schema, parameters.

use std::process::Command;

use serde_json::Value;

use paddock::app;
use paddock::query::{DigestQuery, digest_json};

use crate::pipeline::get;
use crate::support::{FixtureServer, TestEnv, fixture, have};

/// An RSS document with stories `from..=to`.
fn rss(from: usize, to: usize) -> String {
    let items: String = (from..=to)
        .map(|n| {
            format!(
                "<item><title>Story {n}</title><link>https://cars.example/{n}</link><guid>s{n}</guid>\
                 <pubDate>Fri, 20 Nov 2026 {:02}:00:00 +0000</pubDate><description>Text {n}</description></item>",
                n % 24
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>Cars</title><link>https://cars.example/</link>{items}</channel></rss>"
    )
}

fn titles(doc: &Value) -> Vec<String> {
    let mut t: Vec<String> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

fn digest(
    store: &paddock::store::Store,
    config: &paddock::config::Config,
    since: &str,
    limit: Option<&str>,
) -> Value {
    let query = DigestQuery {
        since: Some(since.to_string()),
        group: None,
        limit: limit.map(str::to_string),
    };
    serde_json::from_str(&digest_json(store, config, &query).unwrap()).unwrap()
}

#[tokio::test]
async fn windows_chained_by_next_since_neither_overlap_nor_leave_gaps() {
    let server = FixtureServer::start().await;
    server.set("cars.rss", rss(1, 3));
    let env = TestEnv::new();
    let config = env.write_config(&[("cars", &server.url("/dyn/cars.rss"))], "");
    let pipeline = app::pipeline(&config).unwrap();
    let store = pipeline.store.as_ref();
    pipeline.poll(&config.feeds[0]).await;

    let first = digest(store, &config, "2000-01-01T00:00:00Z", None);
    assert_eq!(titles(&first), ["Story 1", "Story 2", "Story 3"]);
    assert_eq!(first["empty"], false);
    let cursor = first["next_since"].as_str().unwrap().to_string();
    assert_eq!(first["next_since"], first["until"]);

    // Stories 4 and 5 arrive; 1 to 3 are seen again (and one is edited).
    server.set("cars.rss", rss(1, 5).replace("Text 2", "Text 2, edited"));
    pipeline.poll(&config.feeds[0]).await;
    let second = digest(store, &config, &cursor, None);
    assert_eq!(
        titles(&second),
        ["Story 4", "Story 5"],
        "exactly the stories first seen in between"
    );
    let cursor = second["next_since"].as_str().unwrap().to_string();

    let third = digest(store, &config, &cursor, None);
    assert_eq!(third["empty"], true);
    assert!(third["items"].as_array().unwrap().is_empty());

    // A limit cuts the window without losing anything: the cursor stops at
    // the first story left out.
    let mut seen = Vec::new();
    let mut since = "2000-01-01T00:00:00Z".to_string();
    for _ in 0..5 {
        let page = digest(store, &config, &since, Some("2"));
        seen.extend(titles(&page));
        since = page["next_since"].as_str().unwrap().to_string();
        if page["empty"] == true {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        5,
        "every story exactly once across pages: {seen:?}"
    );
}

#[tokio::test]
async fn the_digest_matches_its_json_schema() {
    if !have("python3", &["-c", "import jsonschema"]) {
        return;
    }
    let server = FixtureServer::start().await;
    server.alias(
        "/2012/04/infiniti-production-to-leave-japan-north-america-china-possible-new-sites/feed/",
        "post-comments.rss",
    );
    let env = TestEnv::new();
    let config = env.write_config_poll(
        &[("wire", &server.url("/f/syndicated.rss")), ("down", &server.url("/status/500"))],
        "item_comments_max_age = \"10000d\"\n",
        &format!(
            "[[feed]]\nid = \"ttac\"\nurl = \"{}\"\ncomments_url = \"{}\"\nitem_comments = true\ngroups = [\"news\", \"opinion\"]\n",
            server.url("/f/wordpress.rss"),
            server.url("/f/site-comments.rss")
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    crate::pipeline::poll(&pipeline, &config).await;
    let (status, body) = get(&pipeline, &config, "/digest.json?since=7d").await;
    // The fixtures are from 2012 but were first seen now: the window is by
    // first_seen.
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["items"].as_array().unwrap().len(), 8);
    assert_eq!(
        doc["most_discussed"][0],
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["comment_count"] == 41)
            .unwrap()["id"]
    );
    assert!(
        doc["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "down" && f["ok"] == false)
    );
    let file = env.dir.path().join("digest.json");
    std::fs::write(&file, &body).unwrap();
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/digest.schema.json");
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema\n\
             schema=json.load(open(sys.argv[1])); doc=json.load(open(sys.argv[2]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             v=jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())\n\
             errs=list(v.iter_errors(doc))\n\
             [print(list(e.absolute_path), e.message) for e in errs]\n\
             sys.exit(1 if errs else 0)",
            schema.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "schema errors: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The group filter and the schema's negative: a broken digest fails it.
    let (_, opinion) = get(&pipeline, &config, "/digest.json?since=7d&group=opinion").await;
    let opinion: Value = serde_json::from_str(&opinion).unwrap();
    assert_eq!(opinion["items"].as_array().unwrap().len(), 6);
    assert_eq!(opinion["group"], "opinion");
    assert_eq!(opinion["feeds"].as_array().unwrap().len(), 1);
    let mut broken = doc.clone();
    broken["items"][0]["comment_count"] = Value::String("four".into());
    std::fs::write(&file, broken.to_string()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema\njsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))",
            schema.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the schema rejects a wrong type");
}

#[tokio::test]
async fn bad_digest_parameters_get_400_and_unknown_groups_404() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/f/wordpress.rss"))], "");
    let pipeline = app::pipeline(&config).unwrap();
    for (uri, status, words) in [
        ("/digest.json?since=yesterday", 400, "since"),
        ("/digest.json?limit=0", 400, "limit"),
        ("/digest.json?limit=5000", 400, "limit"),
        ("/digest.json?group=nope", 404, "group"),
    ] {
        let (got, body) = get(&pipeline, &config, uri).await;
        assert_eq!(got.as_u16(), status, "{uri}: {body}");
        let err: Value = serde_json::from_str(&body).unwrap();
        assert!(
            err["error"].as_str().unwrap().contains(words),
            "{uri}: {body}"
        );
    }
    let (got, body) = get(&pipeline, &config, "/digest.json").await;
    assert_eq!(got, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["empty"], true, "nothing polled yet");
    let _ = fixture;
}
