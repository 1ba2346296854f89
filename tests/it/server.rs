//! The HTTP surface: content types, bad parameters, unknown names.

use paddock::app;
use serde_json::Value;

use crate::pipeline::{get, poll};
use crate::support::{FixtureServer, TestEnv};

#[tokio::test]
async fn bad_parameters_and_unknown_names_get_json_errors() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/f/wordpress.rss"))], "");
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;

    for (uri, status, words) in [
        ("/feed.atom?limit=0", 400, "limit"),
        ("/feed.rss?limit=1001", 400, "limit"),
        ("/feed.json?limit=ten", 400, "limit"),
        ("/groups/nope/feed.atom", 404, "group"),
        ("/feeds/nope/feed.rss", 404, "feed"),
        ("/no/such/route", 404, "route"),
    ] {
        let (got, body) = get(&pipeline, &config, uri).await;
        assert_eq!(got.as_u16(), status, "{uri}");
        let err: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{uri}: not JSON: {body}"));
        assert!(
            err["error"].as_str().unwrap().contains(words),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn limits_groups_and_single_feeds_select_stories() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[("ttac", &server.url("/f/wordpress.rss"))],
        &format!(
            "[[feed]]\nid = \"jalopnik\"\nurl = \"{}\"\ngroups = [\"blogs\"]\n",
            server.url("/f/atom.xml")
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;

    let count = |body: &str| -> usize {
        let doc: Value = serde_json::from_str(body).unwrap();
        doc["items"].as_array().unwrap().len()
    };
    let (_, all) = get(&pipeline, &config, "/feed.json?limit=100").await;
    assert_eq!(count(&all), 10);
    let (_, two) = get(&pipeline, &config, "/feed.json?limit=2").await;
    assert_eq!(count(&two), 2);
    let (_, news) = get(&pipeline, &config, "/groups/news/feed.json").await;
    assert_eq!(count(&news), 6);
    let (_, blogs) = get(&pipeline, &config, "/groups/blogs/feed.json").await;
    assert_eq!(count(&blogs), 4);
    let (_, one) = get(&pipeline, &config, "/feeds/jalopnik/feed.json").await;
    assert_eq!(count(&one), 4);

    // Newest first.
    let doc: Value = serde_json::from_str(&all).unwrap();
    let dates: Vec<&str> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["date_published"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted);

    for (uri, ct) in [
        ("/feed.atom", "application/atom+xml"),
        ("/feed.rss", "application/rss+xml"),
        ("/feed.json", "application/feed+json"),
    ] {
        let app = paddock::server::router(paddock::server::AppState::new(
            pipeline.store.clone(),
            std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(config.clone())),
        ));
        use tower::ServiceExt;
        let resp = app
            .oneshot(
                axum::http::Request::get(uri)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let got = resp.headers()["content-type"].to_str().unwrap();
        assert!(got.starts_with(ct), "{uri}: {got}");
    }
}
