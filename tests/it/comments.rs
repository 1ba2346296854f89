//! Comment counts and recent comments from every source a site offers.

use serde_json::Value;

use paddock::app;

use crate::pipeline::{get, json_items, poll};
use crate::support::{FixtureServer, TestEnv, fixture};

const INFINITI: &str = "https://www.thetruthaboutcars.com/2012/04/infiniti-production-to-leave-japan-north-america-china-possible-new-sites/";
const INFINITI_COMMENTS: &str =
    "/2012/04/infiniti-production-to-leave-japan-north-america-china-possible-new-sites/feed/";

/// The fixtures date from 2012: widen the window for story comment feeds.
const OLD_STORIES: &str = "item_comments_max_age = \"10000d\"\n";

fn story<'a>(items: &'a [Value], url: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["url"] == url)
        .unwrap_or_else(|| panic!("no story {url}"))
}

fn authors(comments: &Value) -> Vec<String> {
    comments
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["author"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The seed page as feeds: the story states 4 comments, its own comment
/// feed has the 4, and the site feed has the "Recent Comments" column.
#[tokio::test]
async fn the_seed_story_carries_its_count_and_recent_comments_everywhere() {
    let server = FixtureServer::start().await;
    server.alias(INFINITI_COMMENTS, "post-comments.rss");
    let env = TestEnv::new();
    // The fixtures are from 2012: widen the age window for story feeds.
    let config = env.write_config_poll(
        &[],
        OLD_STORIES,
        &format!(
            "[[feed]]\nid = \"ttac\"\nurl = \"{}\"\ncomments_url = \"{}\"\nitem_comments = true\n",
            server.url("/f/wordpress.rss"),
            server.url("/f/site-comments.rss"),
        ),
    );
    assert_eq!(config.poll.item_comments_max_age.as_secs(), 10000 * 86400);

    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    assert_eq!(
        server.hits(INFINITI_COMMENTS),
        1,
        "the story's own comment feed was read"
    );

    let items = json_items(&pipeline, &config, "/feed.json").await;
    let infiniti = story(&items, INFINITI);
    assert_eq!(infiniti["_paddock"]["comment_count"], 4);
    let recent = &infiniti["_paddock"]["recent_comments"];
    assert_eq!(
        authors(recent),
        ["Lou_BC", "G35 Owner", "Smyrna Tech", "ExPatBrit", "mkirk"],
        "deduped across both feeds, newest first"
    );
    let lou = &recent[0];
    assert!(
        lou["text"]
            .as_str()
            .unwrap()
            .starts_with("I’ve never used the jack that comes with a vehicle."),
        "{lou}"
    );
    assert!(lou["url"].as_str().unwrap().ends_with("#comment-1966120"));
    for c in recent.as_array().unwrap() {
        let t = c["text"].as_str().unwrap();
        assert!(
            !t.contains('<') && !t.contains("&#"),
            "plain text only: {t}"
        );
        assert!(
            t.chars().count() <= 200,
            "cut to [output].excerpt_chars: {t}"
        );
    }

    let (_, atom) = get(&pipeline, &config, "/feed.atom").await;
    let entry = atom
        .split("<entry>")
        .find(|e| e.contains(INFINITI))
        .unwrap();
    assert!(entry.contains("<thr:total>4</thr:total>"), "{entry}");
    assert!(entry.contains("rel=\"replies\""), "{entry}");
    let (_, rss) = get(&pipeline, &config, "/feed.rss").await;
    let item = rss.split("<item>").find(|e| e.contains(INFINITI)).unwrap();
    assert!(
        item.contains("<slash:comments>4</slash:comments>"),
        "{item}"
    );
    assert!(item.contains("<wfw:commentRss>"), "{item}");
    assert!(item.contains("<comments>"), "{item}");

    let (status, body) = get(&pipeline, &config, "/comments/recent.json?limit=5").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    let stream = &doc["comments"];
    assert_eq!(
        authors(stream),
        [
            "Lou_BC",
            "sirwired",
            "Gardiner Westbound",
            "JimZ",
            "Cactuar"
        ],
        "the seed's column, newest first"
    );
    assert_eq!(stream[0]["item_id"], infiniti["id"]);
    assert_eq!(stream[0]["item_url"], INFINITI);
    assert!(
        stream
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["item_id"].is_string()),
        "all joined: {stream}"
    );
    let (status, _) = get(&pipeline, &config, "/comments/recent.json?limit=0").await;
    assert_eq!(status, 400);

    // A second poll changes nothing: comments are deduped by id.
    poll(&pipeline, &config).await;
    let again = json_items(&pipeline, &config, "/feed.json").await;
    assert_eq!(story(&again, INFINITI)["_paddock"], infiniti["_paddock"]);
}

#[tokio::test]
async fn atom_threading_joins_replies_and_replies_to_replies() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(
        &[],
        &format!(
            "[[feed]]\nid = \"jalopnik\"\nurl = \"{}\"\ncomments_url = \"{}\"\n",
            server.url("/f/atom.xml"),
            server.url("/f/atom-thread.xml"),
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    let items = json_items(&pipeline, &config, "/feed.json").await;
    let a = story(
        &items,
        "https://jalopnik.example/2012/04/nissan-says-infiniti-will-start-building-cars-outside-japan",
    );
    let b = story(
        &items,
        "https://jalopnik.example/2012/04/the-2013-nissan-pathfinder-concept-is-a-minivan-in-hiking-boots",
    );
    assert_eq!(
        a["_paddock"]["comment_count"], 7,
        "thr:total wins over comments seen"
    );
    assert_eq!(b["_paddock"]["comment_count"], 2);
    assert_eq!(
        a["_paddock"]["recent_comments"].as_array().unwrap().len(),
        3,
        "{a}"
    );
    assert_eq!(
        b["_paddock"]["recent_comments"].as_array().unwrap().len(),
        1,
        "{b}"
    );
    let other = story(
        &items,
        "https://jalopnik.example/2012/04/ohio-trooper-clocks-minivan-at-118-mph",
    );
    assert!(
        other["_paddock"]["comment_count"].is_null(),
        "no source, no count: {other}"
    );
}

/// A reply that names only its parent comment, by id, finds the story
/// through a parent stored by an earlier poll.
#[tokio::test]
async fn a_reply_finds_its_story_through_a_parent_stored_earlier() {
    let server = FixtureServer::start().await;
    let base = server.base();
    let thread = |entries: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
<title>Comments</title><id>tag:jalopnik.example,2012:comments</id><updated>2012-04-06T10:00:00Z</updated>{entries}</feed>"#
        )
    };
    let parent = r#"<entry><id>tag:jalopnik.example,2012:comment-1</id><title>c1</title><author><name>Alice</name></author>
<updated>2012-04-06T09:00:00Z</updated><content>First!</content>
<thr:in-reply-to ref="tag:jalopnik.example,2012:post-5899377"/></entry>"#;
    let reply = r#"<entry><id>tag:jalopnik.example,2012:comment-2</id><title>c2</title><author><name>Bob</name></author>
<updated>2012-04-06T10:00:00Z</updated><content>Second.</content>
<thr:in-reply-to ref="tag:jalopnik.example,2012:comment-1"/></entry>"#;
    server.set("thread.xml", thread(parent));
    let env = TestEnv::new();
    let config = env.write_config(
        &[],
        &format!(
            "[[feed]]\nid = \"jalopnik\"\nurl = \"{base}/f/atom.xml\"\ncomments_url = \"{base}/dyn/thread.xml\"\n"
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    server.set("thread.xml", thread(reply));
    poll(&pipeline, &config).await;
    let items = json_items(&pipeline, &config, "/feed.json").await;
    let b = story(
        &items,
        "https://jalopnik.example/2012/04/the-2013-nissan-pathfinder-concept-is-a-minivan-in-hiking-boots",
    );
    assert_eq!(
        authors(&b["_paddock"]["recent_comments"]),
        ["Bob", "Alice"],
        "{b}"
    );
}

#[tokio::test]
async fn comments_that_arrive_before_their_story_join_it_later() {
    let server = FixtureServer::start().await;
    let base = server.base();
    server.set("feed.rss", fixture("empty.rss", &base));
    let env = TestEnv::new();
    let config = env.write_config(
        &[],
        &format!(
            "[[feed]]\nid = \"ttac\"\nurl = \"{base}/dyn/feed.rss\"\ncomments_url = \"{base}/f/site-comments.rss\"\n"
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    let (_, body) = get(&pipeline, &config, "/comments/recent.json").await;
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["comments"].as_array().unwrap().len(),
        7,
        "kept while waiting"
    );
    assert!(doc["comments"][0]["item_id"].is_null());

    server.set("feed.rss", fixture("wordpress.rss", &base));
    poll(&pipeline, &config).await;
    let items = json_items(&pipeline, &config, "/feed.json").await;
    let infiniti = story(&items, INFINITI);
    assert_eq!(
        authors(&infiniti["_paddock"]["recent_comments"]),
        ["Lou_BC", "G35 Owner", "Smyrna Tech"]
    );
    let (_, body) = get(&pipeline, &config, "/comments/recent.json").await;
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["comments"][0]["item_id"], infiniti["id"],
        "the stream learns the story too"
    );
}

#[tokio::test]
async fn a_comment_feed_on_another_host_is_never_requested() {
    let server = FixtureServer::start().await;
    let elsewhere = FixtureServer::start().await;
    // The feed's comment links point at another host:port.
    server.set("feed.rss", fixture("wordpress.rss", &elsewhere.base()));
    let env = TestEnv::new();
    let config = env.write_config_poll(
        &[],
        OLD_STORIES,
        &format!(
            "[[feed]]\nid = \"ttac\"\nurl = \"{}\"\nitem_comments = true\n",
            server.url("/dyn/feed.rss")
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;
    assert_eq!(
        elsewhere.total_hits(),
        0,
        "no request reached the other host"
    );
    let state = pipeline.store.feed_state("ttac").unwrap();
    // Six stories link a comment feed; the one stating 0 comments is not
    // a candidate, the other five are skipped and counted.
    assert_eq!(
        state.skipped_comment_feeds, 5,
        "each skipped link is counted"
    );
    assert_eq!(json_items(&pipeline, &config, "/feed.json").await.len(), 6);
}

#[tokio::test]
async fn a_failing_comments_feed_holds_back_no_story_and_catches_up_later() {
    let server = FixtureServer::start().await;
    let base = server.base();
    server.set("comments.rss", fixture("site-comments.rss", &base));
    server.set_status("comments.rss", 500);
    let env = TestEnv::new();
    let config = env.write_config(
        &[],
        &format!(
            "[[feed]]\nid = \"ttac\"\nurl = \"{base}/f/wordpress.rss\"\ncomments_url = \"{base}/dyn/comments.rss\"\n"
        ),
    );
    let pipeline = app::pipeline(&config).unwrap();
    let feed_status = |body: String| -> Value {
        let doc: Value = serde_json::from_str(&body).unwrap();
        doc["feeds"][0].clone()
    };

    // The feed's new document and the failing comments feed: the stories
    // are stored, the failure is the comments' alone.
    poll(&pipeline, &config).await;
    let items = json_items(&pipeline, &config, "/feed.json").await;
    assert!(
        story(&items, INFINITI)["_paddock"]["recent_comments"]
            .as_array()
            .is_none_or(|c| c.is_empty())
    );
    let status = feed_status(get(&pipeline, &config, "/api/feeds").await.1);
    assert!(status["last_error"].is_null(), "{status}");
    let error = status["comments_error"]["message"].as_str().unwrap();
    assert!(error.contains("/dyn/comments.rss"), "{error}");

    // Next poll: the feed has not changed (304), the comments feed answers,
    // and its comments join the stories stored before.
    server.set_status("comments.rss", 0);
    poll(&pipeline, &config).await;
    assert_eq!(server.conditional_hits("/f/wordpress.rss"), 1);
    let items = json_items(&pipeline, &config, "/feed.json").await;
    assert_eq!(
        authors(&story(&items, INFINITI)["_paddock"]["recent_comments"]),
        ["Lou_BC", "G35 Owner", "Smyrna Tech"]
    );
    let status = feed_status(get(&pipeline, &config, "/api/feeds").await.1);
    assert!(status["comments_error"].is_null(), "{status}");
}
