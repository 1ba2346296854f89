//! Poll → parse → store → render, end to end.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use paddock::app;
use paddock::config::Config;
use paddock::model::ErrorKind;
use paddock::poller::{Outcome, Pipeline, PollReport};
use paddock::server::{AppState, router};
use serde_json::Value;
use tower::ServiceExt;

use crate::support::{FixtureServer, TestEnv, fixture};

const INFINITI: &str = "https://www.thetruthaboutcars.com/2012/04/infiniti-production-to-leave-japan-north-america-china-possible-new-sites/";

pub async fn poll(pipeline: &Pipeline, config: &Config) -> HashMap<String, PollReport> {
    pipeline
        .poll_all(&config.feeds, |_| {})
        .await
        .into_iter()
        .map(|r| (r.feed.clone(), r))
        .collect()
}

pub async fn get(pipeline: &Pipeline, config: &Config, uri: &str) -> (StatusCode, String) {
    let app = router(AppState::new(
        pipeline.store.clone(),
        Arc::new(ArcSwap::from_pointee(config.clone())),
    ));
    let resp = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

pub async fn json_items(pipeline: &Pipeline, config: &Config, uri: &str) -> Vec<Value> {
    let (status, body) = get(pipeline, config, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["items"].as_array().unwrap().clone()
}

fn stored(r: &PollReport) -> (usize, usize, usize) {
    match &r.outcome {
        Outcome::Stored {
            new,
            updated,
            unchanged,
        } => (*new, *updated, *unchanged),
        other => panic!("{} was not stored: {other:?}", r.feed),
    }
}

#[tokio::test]
async fn a_story_reached_through_two_feeds_appears_once_everywhere() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("wire", &server.url("/f/syndicated.rss")),
        ],
        "",
    );
    let pipeline = app::pipeline(&config).unwrap();
    // One after the other, so ownership is deterministic.
    let first = pipeline.poll(&config.feeds[0]).await;
    assert_eq!(stored(&first), (6, 0, 0));
    let second = pipeline.poll(&config.feeds[1]).await;
    assert_eq!(
        stored(&second),
        (2, 1, 0),
        "the shared story is an update, not a new one"
    );

    let items = json_items(&pipeline, &config, "/feed.json").await;
    assert_eq!(items.len(), 8, "6 + 3 stories, one shared");
    let infiniti: Vec<_> = items.iter().filter(|i| i["url"] == INFINITI).collect();
    assert_eq!(infiniti.len(), 1, "one entry for the shared story");
    assert_eq!(infiniti[0]["_paddock"]["feed"], "ttac");
    assert_eq!(
        infiniti[0]["_paddock"]["also_in"],
        serde_json::json!(["wire"])
    );

    for (uri, needle) in [
        (
            "/feed.atom",
            "infiniti-production-to-leave-japan-north-america-china-possible-new-sites/\"",
        ),
        (
            "/feed.rss",
            "infiniti-production-to-leave-japan-north-america-china-possible-new-sites/</link>",
        ),
    ] {
        let (status, body) = get(&pipeline, &config, uri).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body.matches(needle).count(),
            1,
            "{uri} shows the story once"
        );
        assert!(
            !body.contains("utm_source"),
            "{uri} carries canonical links"
        );
    }
    // The other feed's own output carries the story too, with the same id.
    let wire = json_items(&pipeline, &config, "/feeds/wire/feed.json").await;
    let in_wire: Vec<_> = wire.iter().filter(|i| i["url"] == INFINITI).collect();
    assert_eq!(in_wire.len(), 1);
    assert_eq!(in_wire[0]["id"], infiniti[0]["id"]);
}

#[tokio::test]
async fn ids_survive_polls_and_restarts() {
    let server = FixtureServer::start().await;
    // Without validators every poll downloads and parses again.
    for path in ["/f/wordpress.rss", "/f/noguid.rss", "/f/atom.xml"] {
        server.no_validators(path);
    }
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("dealer", &server.url("/f/noguid.rss")),
            ("jalopnik", &server.url("/f/atom.xml")),
        ],
        "",
    );
    let ids = |items: Vec<Value>| -> Vec<(String, String)> {
        let mut v: Vec<_> = items
            .iter()
            .map(|i| {
                (
                    i["title"].as_str().unwrap().to_string(),
                    i["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let first = {
        let pipeline = app::pipeline(&config).unwrap();
        poll(&pipeline, &config).await;
        let again = poll(&pipeline, &config).await;
        for r in again.values() {
            let (new, _, unchanged) = stored(r);
            assert_eq!(new, 0, "{}: nothing is new the second time", r.feed);
            assert!(unchanged > 0);
        }
        ids(json_items(&pipeline, &config, "/feed.json?limit=100").await)
    }; // store closed here
    assert_eq!(first.len(), 14);
    let pipeline = app::pipeline(&config).unwrap();
    let after_restart = poll(&pipeline, &config).await;
    assert!(after_restart.values().all(|r| stored(r).0 == 0));
    assert_eq!(
        ids(json_items(&pipeline, &config, "/feed.json?limit=100").await),
        first
    );
}

#[tokio::test]
async fn a_304_skips_parsing_and_storing() {
    let server = FixtureServer::start().await;
    let base = server.base();
    server.set("feed.rss", fixture("wordpress.rss", &base));
    server.always_304("/dyn/feed.rss");
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/dyn/feed.rss"))], "");
    let pipeline = app::pipeline(&config).unwrap();
    assert_eq!(stored(&pipeline.poll(&config.feeds[0]).await).0, 6);
    let state = pipeline.store.feed_state("ttac").unwrap();
    assert!(
        state.validators.etag.is_some(),
        "the ETag is stored as received"
    );

    // The origin now has a different document but answers 304: had Paddock
    // parsed anything, the new story would appear.
    server.set("feed.rss", fixture("syndicated.rss", &base));
    let generation = pipeline.store.generation();
    let second = pipeline.poll(&config.feeds[0]).await;
    assert_eq!(second.outcome, Outcome::NotModified);
    assert_eq!(server.conditional_hits("/dyn/feed.rss"), 1);
    let items = json_items(&pipeline, &config, "/feed.json?limit=100").await;
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i["_paddock"]["feed"] == "ttac"));
    assert_eq!(
        pipeline.store.generation(),
        generation,
        "no output changed, so cached outputs stay valid"
    );
    assert!(
        pipeline
            .store
            .feed_state("ttac")
            .unwrap()
            .last_success
            .is_some()
    );
}

#[tokio::test]
async fn a_changed_story_is_updated_in_place_and_keeps_first_seen() {
    let server = FixtureServer::start().await;
    let base = server.base();
    let original = String::from_utf8(fixture("wordpress.rss", &base)).unwrap();
    server.set("feed.rss", original.clone());
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/dyn/feed.rss"))], "");
    let pipeline = app::pipeline(&config).unwrap();
    pipeline.poll(&config.feeds[0]).await;
    let before = json_items(&pipeline, &config, "/feed.json").await;
    let story = |items: &[Value]| {
        items
            .iter()
            .find(|i| i["url"] == INFINITI)
            .cloned()
            .unwrap()
    };

    let edited = original
        .replacen(
            "<slash:comments>4</slash:comments>",
            "<slash:comments>5</slash:comments>",
            1,
        )
        .replacen(
            "Infiniti Production To Leave Japan; North America, China Possible New Sites</title>",
            "Infiniti Production To Leave Japan (Updated)</title>",
            1,
        );
    assert_ne!(edited, original, "the fixture has what we edit");
    server.set("feed.rss", edited);
    let report = pipeline.poll(&config.feeds[0]).await;
    assert_eq!(stored(&report), (0, 1, 5));
    let after = json_items(&pipeline, &config, "/feed.json").await;
    assert_eq!(after.len(), before.len());
    let (old, new) = (story(&before), story(&after));
    assert_eq!(new["id"], old["id"]);
    assert_eq!(new["title"], "Infiniti Production To Leave Japan (Updated)");
    assert_eq!(new["_paddock"]["comment_count"], 5);
    assert_eq!(new["_paddock"]["first_seen"], old["_paddock"]["first_seen"]);
}

#[tokio::test]
async fn failing_feeds_are_recorded_and_the_rest_still_served() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("good", &server.url("/f/wordpress.rss")),
            ("slow", &server.url("/slow")),
            ("html", &server.url("/html")),
            ("down", &server.url("/status/500")),
            ("endless", &server.url("/endless")),
            ("bomb", &server.url("/bomb")),
            ("loop", &server.url("/loop")),
            ("broken", &server.url("/f/broken.xml")),
            ("refused", "http://127.0.0.1:9/feed"),
            ("missing", "no-such-file.rss"),
        ],
        "",
    );
    let pipeline = app::pipeline(&config).unwrap();
    let reports = poll(&pipeline, &config).await;
    assert_eq!(stored(&reports["good"]).0, 6);
    let expect = [
        ("slow", ErrorKind::Timeout),
        ("html", ErrorKind::NotAFeed),
        ("down", ErrorKind::HttpStatus),
        ("endless", ErrorKind::TooLarge),
        ("bomb", ErrorKind::TooLarge),
        ("loop", ErrorKind::Redirects),
        ("broken", ErrorKind::Parse),
        ("refused", ErrorKind::Connect),
        ("missing", ErrorKind::File),
    ];
    for (feed, kind) in expect {
        let state = pipeline.store.feed_state(feed).unwrap();
        let err = state
            .last_error
            .unwrap_or_else(|| panic!("{feed} has no error recorded"));
        assert_eq!(err.kind, kind, "{feed}: {}", err.message);
        assert!(!err.message.is_empty());
        assert_eq!(state.consecutive_failures, 1);
        assert!(state.next_poll.is_some(), "{feed} is still scheduled");
        assert!(matches!(reports[feed].outcome, Outcome::Failed(_)));
    }
    assert!(
        pipeline
            .store
            .feed_state("down")
            .unwrap()
            .last_error
            .unwrap()
            .message
            .contains("500"),
        "the status is in the sentence"
    );
    let items = json_items(&pipeline, &config, "/feed.json?limit=100").await;
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i["_paddock"]["feed"] == "good"));
}

#[tokio::test]
async fn every_format_parses_into_stories() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("rdf", &server.url("/f/rdf.xml")),
            ("netscape", &server.url("/f/rss091.xml")),
            ("jalopnik", &server.url("/f/atom.xml")),
            ("json", &server.url("/f/feed.json")),
            ("latin", &server.url("/f/latin1.xml")),
            ("burner", &server.url("/f/feedburner.rss")),
            ("dealer", &server.url("/f/noguid.rss")),
            ("empty", &server.url("/f/empty.rss")),
        ],
        "",
    );
    let pipeline = app::pipeline(&config).unwrap();
    let reports = poll(&pipeline, &config).await;
    let counts: HashMap<&str, usize> = reports
        .iter()
        .map(|(k, r)| (k.as_str(), stored(r).0))
        .collect();
    assert_eq!(
        counts,
        HashMap::from([
            ("rdf", 3),
            ("netscape", 3),
            ("jalopnik", 4),
            ("json", 3),
            ("latin", 2),
            ("burner", 2),
            ("dealer", 4),
            ("empty", 0)
        ])
    );
    let items = json_items(&pipeline, &config, "/feed.json?limit=100").await;
    let by_title = |t: &str| {
        items
            .iter()
            .find(|i| i["title"] == t)
            .unwrap_or_else(|| panic!("no story titled {t:?}"))
            .clone()
    };
    // The XML prolog decides the encoding.
    by_title("Citroën DS, café racer & Peugeot");
    by_title("Renault Mégane R.S. am Nürburgring: ½ Sekunde schneller");
    // Markup in an html title becomes text; relative links resolve.
    let fr_s = by_title("Driven: The 2013 Scion FR-S Is Exactly What We Asked For");
    assert_eq!(
        fr_s["url"],
        "https://jalopnik.example/2012/04/driven-the-2013-scion-fr-s-is-exactly-what-we-asked-for"
    );
    // feedburner:origLink wins over the proxy link.
    assert!(items.iter().any(|i| i["url"]
        == "https://greencardispatch.example/2012/04/05/chevrolet-volt-production-resumes/"));
    assert!(
        !items
            .iter()
            .any(|i| i["url"].as_str().unwrap_or("").contains("feedproxy"))
    );
    // A story with neither guid nor link is kept, by title and date.
    by_title("Closed Good Friday");
}

#[tokio::test]
async fn a_running_daemon_polls_and_serves_then_stops_cleanly() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("wire", &server.url("/f/syndicated.rss")),
            ("down", &server.url("/status/503")),
        ],
        "",
    );
    let daemon = crate::support::Daemon::start(config).await;
    // Both feeds are polled on start; the shared story shows once.
    daemon.wait_for_stories(8).await;
    let health = crate::support::get_bytes(&daemon.url("healthz")).await;
    assert_eq!(health, b"ok\n");
    daemon.stop().await;
}

/// Asks a daemon to poll a feed now, through the admin route.
pub async fn refresh_via_admin(daemon: &crate::support::Daemon, feed: &str, token: &str) -> Value {
    let r = crate::support::client()
        .post(daemon.url(&format!("api/feeds/{feed}/refresh?wait=true")))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_story_s_own_site_takes_it_over_from_an_aggregator() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("wire", &server.url("/f/syndicated.rss")),
            ("ttac", &server.url("/f/wordpress.rss")),
        ],
        "",
    );
    let pipeline = app::pipeline(&config).unwrap();
    // The aggregator stores the story first...
    pipeline.poll(&config.feeds[0]).await;
    let items = json_items(&pipeline, &config, "/feed.json").await;
    let first = items.iter().find(|i| i["url"] == INFINITI).unwrap().clone();
    assert_eq!(first["_paddock"]["feed"], "wire");
    assert!(first["_paddock"]["comment_count"].is_null());
    // ...then the site it links to carries it: the site owns it from now on,
    // with its text and its comment count; the id stays.
    pipeline.poll(&config.feeds[1]).await;
    let items = json_items(&pipeline, &config, "/feed.json").await;
    let now = items.iter().find(|i| i["url"] == INFINITI).unwrap();
    assert_eq!(now["id"], first["id"]);
    assert_eq!(now["_paddock"]["feed"], "ttac");
    assert_eq!(now["_paddock"]["also_in"], serde_json::json!(["wire"]));
    assert_eq!(now["_paddock"]["comment_count"], 4);
    assert_eq!(
        now["_paddock"]["first_seen"],
        first["_paddock"]["first_seen"]
    );
    // The aggregator polling again changes nothing.
    server.no_validators("/f/syndicated.rss");
    let again = pipeline.poll(&config.feeds[0]).await;
    assert!(
        matches!(
            again.outcome,
            Outcome::Stored {
                new: 0,
                updated: 0,
                ..
            }
        ),
        "{:?}",
        again.outcome
    );
}
