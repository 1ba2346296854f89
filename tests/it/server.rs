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

#[tokio::test]
async fn the_river_page_pages_and_protects_itself() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("wire", &server.url("/f/syndicated.rss")),
        ],
        &format!(
            "[[feed]]\nid = \"jalopnik\"\nurl = \"{}\"\ngroups = [\"blogs\"]\n",
            server.url("/f/atom.xml")
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    let app = paddock::server::router(paddock::server::AppState::new(
        pipeline.store.clone(),
        std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(config.clone())),
    ));
    use tower::ServiceExt;
    let fetch = |uri: &str| {
        let app = app.clone();
        let uri = uri.to_string();
        async move {
            let resp = app
                .oneshot(
                    axum::http::Request::get(&uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let headers = resp.headers().clone();
            let status = resp.status().as_u16();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, headers, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, headers, html) = fetch("/").await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(html.contains("rel=\"alternate\" type=\"application/atom+xml\""));
    assert!(!html.contains("<script"));
    // 12 stories in all: one page of 30, no "older" link.
    assert_eq!(html.matches("<article class=\"story\">").count(), 12);
    assert!(!html.contains("Older stories"));
    // The blogs tab: only that group's stories and its own feed links.
    let (_, _, blogs) = fetch("/?group=blogs").await;
    assert_eq!(blogs.matches("<article class=\"story\">").count(), 4);
    assert!(blogs.contains("groups/blogs/feed.atom"));
    assert_eq!(fetch("/?group=nope").await.0, 404);
    assert_eq!(fetch("/?before=zzz").await.0, 400);
    let (status, headers, css) = fetch("/river.css").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains("prefers-color-scheme: dark"));
}

#[tokio::test]
async fn river_pages_never_skip_or_repeat_a_story() {
    let server = FixtureServer::start().await;
    // 75 stories with the same date: the cursor must still be exact.
    let items: String = (0..75)
        .map(|n| format!("<item><title>Story {n}</title><link>https://cars.example/{n}</link><pubDate>Fri, 20 Nov 2026 08:00:00 +0000</pubDate></item>"))
        .collect();
    server.set(
        "many.rss",
        format!("<rss version=\"2.0\"><channel><title>Many</title>{items}</channel></rss>"),
    );
    let env = TestEnv::new();
    let config = env.write_config(&[("many", &server.url("/dyn/many.rss"))], "");
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    let mut seen = Vec::new();
    let mut uri = "/".to_string();
    for _ in 0..5 {
        let (status, html) = get(&pipeline, &config, &uri).await;
        assert_eq!(status, 200);
        for part in html.split("<article class=\"story\">").skip(1) {
            let title = part
                .split("</a></h3>")
                .next()
                .unwrap()
                .rsplit('>')
                .next()
                .unwrap()
                .to_string();
            seen.push(title);
        }
        match html.split("<p class=\"older\"><a href=\"./").nth(1) {
            Some(rest) => {
                uri = format!("/{}", rest.split('"').next().unwrap().replace("&#38;", "&"))
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 75, "{seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 75, "no story twice");
}
