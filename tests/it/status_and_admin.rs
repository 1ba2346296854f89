//! What operators and caches see: ETag and 304, compression, feed status,
//! metrics, OPML, and the admin routes.

use std::io::Read;
use std::process::Command;

use serde_json::Value;

const TOKEN: &str = "a-test-token";

use crate::support::{Daemon, FixtureServer, TestEnv, client, fixture, fixtures_dir, get_bytes};

#[tokio::test]
async fn outputs_answer_304_until_something_new_is_stored() {
    let server = FixtureServer::start().await;
    let base = server.base();
    server.set("feed.rss", fixture("syndicated.rss", &base));
    let env = TestEnv::new();
    let var = "PADDOCK_TEST_ADMIN_TOKEN_304";
    unsafe { std::env::set_var(var, TOKEN) };
    let mut config = env.write_config(&[("wire", &server.url("/dyn/feed.rss"))], "");
    config.server.admin_token_env = var.to_string();
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(3).await;
    let http = client();
    for path in [
        "feed.atom",
        "feed.rss",
        "feed.json",
        "groups/news/feed.atom",
        "feeds/wire/feed.json",
    ] {
        let first = http.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        assert!(first.headers().contains_key("last-modified"), "{path}");
        let again = http
            .get(daemon.url(path))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty(), "a 304 has no body");
    }
    let first = http.get(daemon.url("feed.atom")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    let by_date = http
        .get(daemon.url("feed.atom"))
        .header("If-Modified-Since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), 304);

    // The daemon polls and stores something new: a new ETag, a 200.
    server.set("feed.rss", fixture("wordpress.rss", &base));
    let refreshed = crate::pipeline::refresh_via_admin(&daemon, "wire", TOKEN).await;
    assert_eq!(refreshed["outcome"], "stored", "{refreshed}");
    assert_eq!(refreshed["new"], 5, "{refreshed}");
    let after = http
        .get(daemon.url("feed.atom"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_ne!(after.headers()["etag"].to_str().unwrap(), etag);
    assert!(after.text().await.unwrap().contains("Infiniti"));
    daemon.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/f/wordpress.rss"))], "");
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(6).await;
    // A client that does not decompress, so the headers stay as sent.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap();
    for encoding in ["gzip", "br"] {
        let r = raw
            .get(daemon.url("feed.atom"))
            .header("Accept-Encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], encoding);
        assert!(
            r.headers()["vary"]
                .to_str()
                .unwrap()
                .to_lowercase()
                .contains("accept-encoding")
        );
        let etag = r.headers()["etag"].clone();
        let compressed = r.bytes().await.unwrap();
        let plain = raw.get(daemon.url("feed.atom")).send().await.unwrap();
        assert_eq!(plain.headers()["etag"], etag, "one entity, two codings");
        let plain = plain.bytes().await.unwrap();
        assert!(
            compressed.len() < plain.len() / 2,
            "{encoding}: {} bytes of {}",
            compressed.len(),
            plain.len()
        );
        let mut unpacked = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut unpacked),
            _ => brotli::Decompressor::new(&compressed[..], 4096).read_to_end(&mut unpacked),
        }
        .unwrap();
        assert_eq!(unpacked, plain, "{encoding}");
    }
    // Weights count: brotli refused, gzip it is; and the digest too.
    for path in ["feed.atom", "digest.json"] {
        let r = raw
            .get(daemon.url(path))
            .header("Accept-Encoding", "br;q=0, gzip;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn a_failing_feed_shows_in_status_and_metrics() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("down", &server.url("/status/503")),
            ("html", &server.url("/html")),
        ],
        "",
    );
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(6).await;
    let mut status: Value = Value::Null;
    for _ in 0..100 {
        status = serde_json::from_slice(&get_bytes(&daemon.url("api/feeds")).await).unwrap();
        if status["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["last_attempt"].is_null())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let feed = |id: &str| {
        status["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()
            .clone()
    };
    let down = feed("down");
    assert_eq!(down["last_error"]["kind"], "http_status", "{down}");
    assert!(
        down["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert_eq!(down["consecutive_failures"], 1);
    assert!(down["next_poll"].is_string());
    assert_eq!(feed("html")["last_error"]["kind"], "not_a_feed");
    let ttac = feed("ttac");
    assert!(ttac["last_error"].is_null() && ttac["last_success"].is_string());
    assert_eq!(ttac["item_count"], 6);
    assert_eq!(ttac["groups"][0], "news");
    assert!(status["config_error"].is_null());

    let metrics = String::from_utf8(get_bytes(&daemon.url("metrics")).await).unwrap();
    for needle in [
        "paddock_feed_failing{feed=\"down\",kind=\"http_status\"} 1",
        "paddock_feed_failing{feed=\"html\",kind=\"not_a_feed\"} 1",
        "paddock_failing_feeds 2",
        "paddock_polls_total{outcome=\"failed\",kind=\"http_status\"} 1",
        "paddock_polls_total{outcome=\"stored\",kind=\"\"} 1",
        "paddock_items_stored_total{change=\"new\"} 6",
        "paddock_fetch_duration_seconds_count 3",
        "paddock_http_requests_total{route=\"/api/feeds\",status=\"200\"}",
        "paddock_http_requests_total{route=\"/feed.json\",status=\"200\"}",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // Storing six stories took the store some time, and it says how long.
    let write_seconds: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("paddock_store_write_seconds_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no store write time in\n{metrics}"));
    assert!(
        write_seconds > 0.0 && write_seconds < 60.0,
        "{write_seconds}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn opml_out_and_in() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("wire", &server.url("/f/syndicated.rss")),
        ],
        "",
    );
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(8).await;
    let opml = String::from_utf8(get_bytes(&daemon.url("opml")).await).unwrap();
    assert!(
        opml.contains(&format!("xmlUrl=\"{}\"", server.url("/f/wordpress.rss"))),
        "{opml}"
    );
    assert!(
        opml.contains("The Truth About Cars"),
        "the feed's own title: {opml}"
    );
    daemon.stop().await;

    // Import it back with the binary: a valid config with the same feeds.
    let file = env.dir.path().join("subs.opml");
    std::fs::write(&file, &opml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["opml", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = String::from_utf8(out.stdout).unwrap();
    let config =
        paddock::config::Config::parse(&imported, &env.dir.path().join("imported.toml")).unwrap();
    assert_eq!(config.feeds.len(), 2);
    assert!(config.feeds.iter().all(|f| f.groups == ["news"]));
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args([
            "opml",
            "import",
            fixtures_dir().join("page.html").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[tokio::test]
async fn admin_routes_need_the_token_and_are_off_without_one() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    // A variable name of this test's own: tests share the environment.
    let var = "PADDOCK_TEST_ADMIN_TOKEN_OPS";
    unsafe { std::env::set_var(var, "s3cret-token") };
    let config = env.write_config(&[("ttac", &server.url("/f/wordpress.rss"))], "");
    let text = std::fs::read_to_string(env.config_path()).unwrap().replace(
        "title = \"Test news\"\n",
        &format!("title = \"Test news\"\nadmin_token_env = \"{var}\"\n"),
    );
    std::fs::write(env.config_path(), &text).unwrap();
    let config = paddock::config::Config::load(&env.config_path()).unwrap_or(config);
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(6).await;
    let http = client();
    let post = |path: &str, token: Option<&str>| {
        let mut r = http.post(daemon.url(path));
        if let Some(t) = token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        r.send()
    };
    assert_eq!(post("api/reload", None).await.unwrap().status(), 401);
    assert_eq!(
        post("api/reload", Some("s3cret-tokeX"))
            .await
            .unwrap()
            .status(),
        401
    );
    let ok = post("api/reload", Some("s3cret-token")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let refreshed: Value = post("api/feeds/ttac/refresh?wait=true", Some("s3cret-token"))
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(refreshed["outcome"], "not_modified", "{refreshed}");
    assert_eq!(
        post("api/feeds/nope/refresh", Some("s3cret-token"))
            .await
            .unwrap()
            .status(),
        404
    );

    // A broken config: the reload is refused with FILE:LINE:COL and the
    // daemon keeps serving on the old one.
    std::fs::write(
        env.config_path(),
        text.replace("interval = \"1h\"", "interval = \"soon\""),
    )
    .unwrap();
    let refused = post("api/reload", Some("s3cret-token")).await.unwrap();
    assert_eq!(refused.status(), 400);
    let err: Value = refused.json_value().await;
    assert!(
        err["error"].as_str().unwrap().contains("feeds.toml:"),
        "{err}"
    );
    let status: Value = serde_json::from_slice(&get_bytes(&daemon.url("api/feeds")).await).unwrap();
    assert!(
        status["config_error"]
            .as_str()
            .unwrap()
            .contains("not a duration"),
        "{status}"
    );
    assert_eq!(serde_json::from_slice::<Value>(&get_bytes(&daemon.url("feed.json")).await).unwrap()["items"].as_array().unwrap().len(), 6);

    // Without the variable, the routes are not there at all.
    unsafe { std::env::remove_var(var) };
    assert_eq!(
        post("api/reload", Some("s3cret-token"))
            .await
            .unwrap()
            .status(),
        404
    );
    daemon.stop().await;
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}
