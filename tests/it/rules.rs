//! Keep and block rules on fixture feeds: each kind of rule, every output
//! leaving the same stories out, a reload that adds and removes a rule
//! with no fetch in between, `?limit` filling up past dropped stories, a
//! blocked story reached through two feeds staying one story, and
//! `paddock rules test` listing the drops the outputs make.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::pipeline::{get, json_items, poll};
use crate::support::{Daemon, FixtureServer, TestEnv, client, storage_keys};

struct Story<'a> {
    title: &'a str,
    slug: &'a str,
    category: &'a str,
    author: &'a str,
    text: &'a str,
    days_old: i64,
}

fn rss(site: &str, stories: &[Story]) -> String {
    let now = chrono::Utc::now();
    let items: String = stories
        .iter()
        .map(|s| {
            format!(
                "<item><title>{}</title><link>https://cs.example/{}/</link><guid>https://{site}/{}</guid>\
                 <category>{}</category><dc:creator>{}</dc:creator><description>{}</description>\
                 <pubDate>{}</pubDate></item>",
                s.title,
                s.slug,
                s.slug,
                s.category,
                s.author,
                s.text,
                (now - chrono::Duration::days(s.days_old) - chrono::Duration::minutes(s.slug.len() as i64)).to_rfc2822()
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{site}</title>\
         <link>https://{site}/</link>{items}</channel></rss>"
    )
}

fn comments() -> String {
    let item = |story: &str, n: usize, text: &str| {
        format!(
            "<item><title>Comment on {story}</title><link>https://cs.example/{story}/#comment-{n}</link>\
             <guid isPermaLink=\"false\">https://cs.example/{story}/#comment-{n}</guid>\
             <dc:creator>Reader {n}</dc:creator><description>{text}</description>\
             <pubDate>{}</pubDate></item>",
            chrono::Utc::now().to_rfc2822()
        )
    };
    format!(
        "<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>Comments</title>\
         <link>https://cs.example/</link>{}{}</channel></rss>",
        item("sponsored-tires", 1, "Is this an ad?"),
        item("lightning", 2, "The Lightning is back!")
    )
}

/// Two feeds: `cs` (group `news`, with a comments feed) and `ttac`
/// (group `opinion`), which carries `cs`'s sponsored story too.
async fn fixtures() -> FixtureServer {
    let server = FixtureServer::start().await;
    server.set(
        "cs.rss",
        rss(
            "cs.example",
            &[
                Story {
                    title: "Sponsored: deal of the day on tires",
                    slug: "sponsored-tires",
                    category: "Deals",
                    author: "Staff",
                    text: "Save now.",
                    days_old: 0,
                },
                Story {
                    title: "The F-150 Lightning returns",
                    slug: "lightning",
                    category: "EV",
                    author: "Matt Posky",
                    text: "Ford brings it back.",
                    days_old: 0,
                },
                Story {
                    title: "Buick Envista review",
                    slug: "envista",
                    category: "Reviews",
                    author: "Tim Healey",
                    text: "A small crossover.",
                    days_old: 1,
                },
                Story {
                    title: "Toyota recalls the Tundra",
                    slug: "tundra",
                    category: "Recalls",
                    author: "Staff",
                    text: "A recall of 100,000 trucks.",
                    days_old: 1,
                },
                Story {
                    title: "Weekly podcast",
                    slug: "podcast",
                    category: "Podcast",
                    author: "Staff",
                    text: "Listen.",
                    days_old: 2,
                },
                Story {
                    title: "Old news about the Aztek",
                    slug: "aztek",
                    category: "EV",
                    author: "Staff",
                    text: "Still ugly.",
                    days_old: 40,
                },
            ],
        ),
    );
    server.set(
        "ttac.rss",
        rss(
            "ttac.example",
            &[
                Story {
                    title: "Sponsored: deal of the day on tires",
                    slug: "sponsored-tires",
                    category: "Deals",
                    author: "Staff",
                    text: "Save now.",
                    days_old: 0,
                },
                Story {
                    title: "Rental review: Kia K5",
                    slug: "kia-k5-rental",
                    category: "Reviews",
                    author: "Staff",
                    text: "Fine.",
                    days_old: 0,
                },
            ],
        ),
    );
    server.set("cs-comments.rss", comments());
    server
}

const RULES: &str = "\
[[rule]]
action = \"block\"
title = \"(?i)\\\\bsponsored\\\\b\"

[[rule]]
action = \"keep\"
category = \"^(EV|Recalls|Reviews)$\"
groups = [\"news\"]

[[rule]]
action = \"block\"
author = \"Healey\"

[[rule]]
action = \"block\"
content = \"(?i)recall of\"
feeds = [\"cs\"]

[[rule]]
action = \"block\"
older_than = \"30d\"

[[rule]]
action = \"block\"
any = \"nothing says this\"
";

/// The config: the two feeds, `extra` keys and the rules given.
fn write_config(
    env: &TestEnv,
    server: &FixtureServer,
    server_keys: &str,
    rules: &str,
) -> paddock::config::Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://paddock.test/\"\n{server_keys}\n\
         [storage]\n{}\
         [poll]\ntimeout = \"2s\"\ninterval = \"1h\"\n\
         [[feed]]\nid = \"cs\"\nurl = \"{}\"\ncomments_url = \"{}\"\ngroups = [\"news\"]\n\
         [[feed]]\nid = \"ttac\"\nurl = \"{}\"\ngroups = [\"opinion\"]\n\n{rules}",
        storage_keys(),
        server.url("/dyn/cs.rss"),
        server.url("/dyn/cs-comments.rss"),
        server.url("/dyn/ttac.rss"),
    );
    std::fs::write(env.config_path(), text).unwrap();
    paddock::config::Config::load(&env.config_path()).unwrap()
}

fn titles(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

fn set(titles: &[&str]) -> BTreeSet<String> {
    titles.iter().map(|t| t.to_string()).collect()
}

#[tokio::test]
async fn every_kind_of_rule_leaves_stories_out_of_every_output() {
    let server = fixtures().await;
    let env = TestEnv::new();
    let config = write_config(&env, &server, "", RULES);
    let pipeline = paddock::app::pipeline(&config).unwrap();
    poll(&pipeline, &config).await;

    let kept = set(&["The F-150 Lightning returns", "Rental review: Kia K5"]);
    assert_eq!(
        titles(&json_items(&pipeline, &config, "/feed.json?limit=100").await),
        kept
    );
    assert_eq!(
        titles(&json_items(&pipeline, &config, "/groups/news/feed.json").await),
        set(&["The F-150 Lightning returns"])
    );
    assert_eq!(
        titles(&json_items(&pipeline, &config, "/feeds/ttac/feed.json").await),
        set(&["Rental review: Kia K5"]),
        "the sponsored story ttac carries too is dropped there as well"
    );
    for path in [
        "/feed.atom",
        "/feed.rss",
        "/feeds/cs/feed.atom",
        "/",
        "/?group=news",
    ] {
        let (status, body) = get(&pipeline, &config, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("Lightning"), "{path}");
        for gone in ["Sponsored", "Envista", "Tundra", "podcast", "Aztek"] {
            assert!(!body.contains(gone), "{path} carries {gone}");
        }
    }

    // The digest: items, most_discussed and the comments of dropped stories.
    let (_, digest) = get(&pipeline, &config, "/digest.json?since=7d").await;
    let digest: Value = serde_json::from_str(&digest).unwrap();
    assert_eq!(titles(digest["items"].as_array().unwrap()), kept);
    let comments = digest["recent_comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0]["text"].as_str().unwrap().contains("Lightning"));
    let (_, recent) = get(&pipeline, &config, "/comments/recent.json").await;
    assert!(
        recent.contains("Lightning is back") && !recent.contains("an ad?"),
        "{recent}"
    );

    // Each rule, with what it drops now; the blocked story reached through
    // two feeds is one story (7 stored from 8 entries).
    let (status, body) = get(&pipeline, &config, "/api/rules").await;
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["stories"], 7, "{listed}");
    assert_eq!(listed["dropped"], 5, "{listed}");
    let drops: Vec<u64> = (listed["rules"].as_array().unwrap().iter())
        .map(|r| r["drops"].as_u64().unwrap())
        .collect();
    // sponsored (1 story, in both feeds); the podcast; Healey; the recall; the Aztek; nothing.
    assert_eq!(drops, [1, 1, 1, 1, 1, 0], "{listed}");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("action = "))
        .unwrap();
    assert_eq!(listed["rules"][0]["line"], line, "{listed}");
    assert_eq!(listed["rules"][5]["warning"], "drops no stored story");
    assert!(listed["rules"][0]["warning"].is_null());

    let (_, metrics) = get(&pipeline, &config, "/metrics").await;
    assert!(
        metrics.contains(&format!(
            "paddock_rule_dropped_stories{{rule=\"1\",line=\"{line}\",action=\"block\"}} 1"
        )),
        "{metrics}"
    );

    // `?limit` counts stories the output carries: the two kept ones come
    // back however many dropped stories are newer.
    assert_eq!(
        json_items(&pipeline, &config, "/feed.json?limit=2")
            .await
            .len(),
        2
    );
    assert_eq!(
        json_items(&pipeline, &config, "/feed.json?limit=1")
            .await
            .len(),
        1
    );

    // `paddock rules test` lists the drops the outputs make.
    drop(pipeline);
    let out = tokio::task::spawn_blocking({
        let path = env.config_path();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
                .args(["rules", "test", "--config", path.to_str().unwrap()])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed_drops: BTreeSet<String> = stdout
        .lines()
        .filter(|l| l.contains(".toml:") && (l.contains("  block  ") || l.contains("  keep   ")))
        .map(|l| l.splitn(4, "  ").nth(3).unwrap().trim().to_string())
        .collect();
    assert_eq!(
        listed_drops,
        set(&[
            "Sponsored: deal of the day on tires",
            "Weekly podcast",
            "Buick Envista review",
            "Toyota recalls the Tundra",
            "Old news about the Aztek"
        ]),
        "{stdout}"
    );
    assert!(stdout.contains("5 of 7 stored stories dropped"), "{stdout}");
    assert!(
        stdout.contains("rule 6 (") && stdout.contains("warning: drops no stored story"),
        "{stdout}"
    );
    let one = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args([
            "rules",
            "test",
            "--rule",
            "2",
            "--feed",
            "cs",
            "--config",
            env.config_path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&one.stdout);
    assert!(
        stdout.contains("  keep   cs  Weekly podcast")
            && stdout.contains("1 of 6 stored stories dropped"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_reload_adds_and_removes_a_rule_without_a_fetch() {
    let server = fixtures().await;
    let env = TestEnv::new();
    let var = "PADDOCK_TEST_ADMIN_TOKEN_RULES";
    unsafe { std::env::set_var(var, "rules-token") };
    let server_keys = format!("admin_token_env = \"{var}\"");
    let config = write_config(&env, &server, &server_keys, "");
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(7).await;
    let http = client();
    let atom = || async {
        let body = http
            .get(daemon.url("feed.atom"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.matches("<entry>").count()
    };
    let reload = || async {
        let r = http
            .post(daemon.url("api/reload"))
            .header("Authorization", "Bearer rules-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    assert_eq!(atom().await, 7);
    let fetches = server.total_hits();

    write_config(
        &env,
        &server,
        &server_keys,
        "[[rule]]\naction = \"block\"\ncategory = \"^(Deals|Reviews)$\"\n",
    );
    reload().await;
    assert_eq!(
        atom().await,
        4,
        "the sponsored story and both reviews are gone"
    );
    write_config(&env, &server, &server_keys, "");
    reload().await;
    assert_eq!(atom().await, 7, "and back");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.total_hits(), fetches, "no fetch in between");
    daemon.stop().await;
}
