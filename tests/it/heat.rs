//! Discussion heat: a fixture feed polled several times while its
//! `slash:comments` counts and its site-wide comments feed grow (the
//! fixture server serves a new version per poll). The history keeps each
//! change, the rising outputs order stories by recent gain, a story first
//! seen with many comments is not rising, and the digest, the river and
//! the history route say the same.

use serde_json::Value;

use crate::pipeline::{get, poll};
use crate::support::{FixtureServer, TestEnv, storage_keys};

/// The feed with each story's stated count (`None`: the feed states none).
fn feed(counts: [(&str, Option<u32>); 4]) -> String {
    let items: String = counts
        .iter()
        .enumerate()
        .map(|(n, (slug, count))| {
            let count = count
                .map(|c| format!("<slash:comments>{c}</slash:comments>"))
                .unwrap_or_default();
            format!(
                "<item><title>Story {slug}</title><link>https://h.example/{slug}/</link>\
                 <guid>https://h.example/{slug}/</guid><description>About {slug}.</description>\
                 <pubDate>{}</pubDate>{count}</item>",
                (chrono::Utc::now() - chrono::Duration::hours(n as i64 + 1)).to_rfc2822()
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\" xmlns:slash=\"http://purl.org/rss/1.0/modules/slash/\"><channel>\
         <title>H</title><link>https://h.example/</link>{items}</channel></rss>"
    )
}

/// The site-wide comments feed: `n` comments on story `quiet`, which
/// states no count of its own (so its count is the site feed's lower bound).
fn comments(n: usize) -> String {
    let items: String = (1..=n)
        .map(|i| {
            format!(
                "<item><title>Comment {i}</title><link>https://h.example/quiet/#comment-{i}</link>\
                 <guid isPermaLink=\"false\">https://h.example/quiet/#comment-{i}</guid>\
                 <description>Comment number {i}.</description><pubDate>{}</pubDate></item>",
                chrono::Utc::now().to_rfc2822()
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>Comments</title><link>https://h.example/</link>{items}</channel></rss>"
    )
}

#[tokio::test]
async fn stories_gaining_comments_rise_and_the_outputs_say_by_how_much() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    std::fs::write(
        env.config_path(),
        format!(
            "[server]\nbase_url = \"http://paddock.test/\"\n[storage]\n{}[poll]\ntimeout = \"2s\"\n\
             [[feed]]\nid = \"h\"\nurl = \"{}\"\ncomments_url = \"{}\"\ngroups = [\"news\"]\n",
            storage_keys(),
            server.url("/dyn/h.rss"),
            server.url("/dyn/comments.rss")
        ),
    )
    .unwrap();
    let config = paddock::config::Config::load(&env.config_path()).unwrap();
    let pipeline = paddock::app::pipeline(&config).unwrap();
    let rounds = [
        (
            [
                ("old", Some(300)),
                ("hot", Some(5)),
                ("warm", Some(2)),
                ("quiet", None),
            ],
            1,
        ),
        (
            [
                ("old", Some(300)),
                ("hot", Some(10)),
                ("warm", Some(4)),
                ("quiet", None),
            ],
            2,
        ),
        (
            [
                ("old", Some(300)),
                ("hot", Some(25)),
                ("warm", Some(6)),
                ("quiet", None),
            ],
            4,
        ),
    ];
    for (counts, site) in rounds {
        server.set("h.rss", feed(counts));
        server.set("comments.rss", comments(site));
        poll(&pipeline, &config).await;
    }

    // The rising feed: most heat first; the story first seen with 300 is
    // not there.
    let (status, body) = get(&pipeline, &config, "/rising.json").await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    let items = doc["items"].as_array().unwrap();
    let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Story hot", "Story warm", "Story quiet"], "{body}");
    let gained: Vec<u64> = items
        .iter()
        .map(|i| i["_paddock"]["comments_gained"].as_u64().unwrap())
        .collect();
    assert_eq!(gained, [20, 4, 3]);
    assert!(items[0]["_paddock"]["heat"].as_f64().unwrap() > 19.0);
    assert_eq!(
        items[2]["_paddock"]["comments_lower_bound"], true,
        "site-feed counts are a lower bound"
    );
    assert_eq!(items[0]["_paddock"]["comments_lower_bound"], false);

    for path in ["/rising.atom", "/rising.rss", "/groups/news/rising.atom"] {
        let (status, body) = get(&pipeline, &config, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("+20 comments in the last"), "{path}: {body}");
        assert!(
            body.contains("+at least 3 comments in the last"),
            "{path}: {body}"
        );
        assert!(!body.contains("Story old"), "{path}");
    }
    let (status, _) = get(&pipeline, &config, "/groups/nope/rising.json").await;
    assert_eq!(status, 404);

    // The history: a point per change.
    let hot = items[0]["id"].as_str().unwrap();
    let (status, body) = get(
        &pipeline,
        &config,
        &format!("/api/stories/{hot}/comments/history"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let history: Value = serde_json::from_str(&body).unwrap();
    let points: Vec<u64> = (history["points"].as_array().unwrap().iter())
        .map(|p| p["count"].as_u64().unwrap())
        .collect();
    assert_eq!(points, [5, 10, 25]);
    assert_eq!(history["comments_gained"], 20);
    assert_eq!(history["heat_window"], "1day");
    let (status, _) = get(
        &pipeline,
        &config,
        "/api/stories/00000000000000000000000000000000/comments/history",
    )
    .await;
    assert_eq!(status, 404);

    // The digest names the rising stories and each item's gain.
    let (_, body) = get(&pipeline, &config, "/digest.json?since=1d").await;
    let digest: Value = serde_json::from_str(&body).unwrap();
    let rising: Vec<&str> = digest["rising"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(rising, ids);
    for item in digest["items"].as_array().unwrap() {
        let expected = match item["title"].as_str().unwrap() {
            "Story hot" => 20,
            "Story warm" => 4,
            "Story quiet" => 3,
            _ => 0,
        };
        assert_eq!(item["comments_gained"], expected, "{item}");
    }

    // The river's Rising view: the gain next to the count, a sparkline.
    let (status, page) = get(&pipeline, &config, "/?view=rising").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("25 comments</a><span class=\"gain\">, +20 today</span>")
            || page.contains("25 comments<span class=\"gain\">, +20 today</span>"),
        "{page}"
    );
    assert!(page.contains("<svg class=\"spark\""), "{page}");
    assert!(!page.contains("Story old"));
    let (_, newest) = get(&pipeline, &config, "/").await;
    assert!(newest.contains("Story old") && newest.contains("+20 today"));
}
