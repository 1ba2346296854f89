//! Running for months: config edits, failing servers, signals, kill -9.

use std::time::{Duration, Instant};

use serde_json::Value;

use paddock::app;
use paddock::poller::Outcome;

use crate::support::{Daemon, FixtureServer, TestEnv, fixture, get_bytes, storage_keys};

async fn status(daemon: &Daemon) -> Value {
    serde_json::from_slice(&get_bytes(&daemon.url("api/feeds")).await).unwrap()
}

/// Waits until `check` holds for `/api/feeds`, up to 10 s.
async fn until(daemon: &Daemon, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(daemon).await;
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes the config as editors do: a new file renamed over the old one.
fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_config_of_a_running_daemon() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/f/wordpress.rss"))], "");
    let original = std::fs::read_to_string(env.config_path()).unwrap();
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(6).await;

    // A new feed appears without a restart.
    let added = format!(
        "{original}[[feed]]\nid = \"jalopnik\"\nurl = \"{}\"\ngroups = [\"blogs\"]\n",
        server.url("/f/atom.xml")
    );
    save(&env.config_path(), &added);
    daemon.wait_for_stories(10).await;
    let (status_code, _) = (reqwest_status(&daemon, "groups/blogs/feed.atom").await, ());
    assert_eq!(status_code, 200, "the new group is served");

    // A broken edit: the daemon keeps serving and says where the mistake is.
    let broken = added.replace(
        "groups = [\"blogs\"]",
        "groups = [\"blogs\"\nenabled = maybe",
    );
    save(&env.config_path(), &broken);
    let s = until(&daemon, "the mistake is reported", |s| {
        s["config_error"].is_string()
    })
    .await;
    let error = s["config_error"].as_str().unwrap();
    let expected = format!("{}:", env.config_path().display());
    assert!(error.starts_with(&expected), "{error}");
    assert!(
        error.split(':').nth(1).unwrap().parse::<u32>().is_ok(),
        "a line number: {error}"
    );
    assert_eq!(
        s["feeds"].as_array().unwrap().len(),
        2,
        "still the old config"
    );
    daemon.wait_for_stories(10).await;

    // Fixing it recovers; removing a feed stops it (its stories stay).
    save(&env.config_path(), &original);
    let s = until(&daemon, "the fix is taken", |s| {
        s["config_error"].is_null() && s["feeds"].as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(s["feeds"][0]["id"], "ttac");
    assert_eq!(reqwest_status(&daemon, "groups/blogs/feed.atom").await, 404);
    daemon.wait_for_stories(10).await;
    daemon.stop().await;
}

async fn reqwest_status(daemon: &Daemon, path: &str) -> u16 {
    crate::support::client()
        .get(daemon.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn retry_after_is_honoured_and_backoff_never_gives_up() {
    let server = FixtureServer::start().await;
    let base = server.base();
    server.set("flaky.rss", fixture("wordpress.rss", &base));
    server.set_status("flaky.rss", 500);
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("busy", &server.url("/busy")),
            ("flaky", &server.url("/dyn/flaky.rss")),
        ],
        "",
    );
    let pipeline = app::pipeline(&config).unwrap();
    let busy = pipeline.poll(&config.feeds[0]).await;
    let wait = (busy.next_poll - chrono::Utc::now()).num_seconds();
    assert!(
        wait >= 3590,
        "Retry-After: 3600 keeps the feed away for an hour, not {wait}s"
    );
    let state = pipeline.store.feed_state("busy").unwrap();
    assert!(state.last_error.unwrap().message.contains("3600"));

    // Ten failures in a row: always a next poll, later and later.
    let mut waits = Vec::new();
    for _ in 0..10 {
        let r = pipeline.poll(&config.feeds[1]).await;
        assert!(matches!(r.outcome, Outcome::Failed(_)));
        waits.push((r.next_poll - chrono::Utc::now()).num_seconds());
    }
    assert_eq!(
        pipeline
            .store
            .feed_state("flaky")
            .unwrap()
            .consecutive_failures,
        10
    );
    for pair in waits.windows(2) {
        // Jitter is ±10%, doubling is ×2: each wait is longer, or capped.
        assert!(pair[1] > pair[0] || pair[1] >= 86400 * 9 / 10, "{waits:?}");
    }
    assert!(
        *waits.last().unwrap() <= 86400,
        "capped at a day: {waits:?}"
    );
    // The server recovers, and so does the feed.
    server.set_status("flaky.rss", 0);
    let r = pipeline.poll(&config.feeds[1]).await;
    assert!(
        matches!(r.outcome, Outcome::Stored { new: 6, .. }),
        "{:?}",
        r.outcome
    );
    let state = pipeline.store.feed_state("flaky").unwrap();
    assert_eq!(state.consecutive_failures, 0);
    assert!(state.last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_does_not_ask_again_before_retry_after_or_after_410() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config_poll(
        &[
            ("busy", &server.url("/busy")),
            ("gone", &server.url("/gone")),
            ("moved", &server.url("/moved-twice")),
            ("perm", &server.url("/moved")),
        ],
        "min_interval = \"1s\"\n",
        "",
    );
    let mut config = config;
    for f in &mut config.feeds {
        f.interval = Duration::from_secs(1);
    }
    let daemon = Daemon::start(config).await;
    let s = until(&daemon, "all polled", |s| {
        s["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["last_attempt"].is_null())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.hits("/busy"), 1, "not asked again within the hour");
    assert_eq!(server.hits("/gone"), 1, "a gone feed rests");
    assert!(
        server.hits("/f/wordpress.rss") >= 2,
        "a healthy feed on a 1 s interval is polled again"
    );
    let feed = |id: &str| {
        s["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(feed("gone")["gone"], true);
    assert_eq!(feed("gone")["last_error"]["kind"], "gone");
    assert_eq!(
        feed("perm")["moved_to"],
        server.url("/f/wordpress.rss"),
        "a 301 is reported with the new URL"
    );
    assert!(
        feed("moved")["moved_to"].is_null(),
        "a chain with a temporary hop is not a move"
    );
    daemon.stop().await;
}

#[test]
fn sigterm_during_a_poll_exits_zero_within_ten_seconds() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(FixtureServer::start());
    let env = TestEnv::new();
    env.write_config(
        &[
            ("slow", &server.url("/slow")),
            ("ttac", &server.url("/f/wordpress.rss")),
        ],
        "",
    );
    let text = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("timeout = \"2s\"", "timeout = \"60s\"");
    std::fs::write(env.config_path(), text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "--config", env.config_path().to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log_reader = crate::support::drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.hits("/slow") == 0 {
        assert!(Instant::now() < deadline, "the slow poll never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let log = log_reader.join().unwrap();
    assert!(log.contains("stopped cleanly"), "{log}");
    drop(rt);
}

/// Many local feeds, a `paddock poll` killed with SIGKILL at random
/// moments, again and again: the store always opens, its indexes agree,
/// no story is stored twice, and what a finished poll stored is still there.
#[test]
fn kill_9_at_random_moments_loses_nothing_flushed() {
    // Every fifth story of feeds 2k and 2k+1 is the same story.
    fn link(n: usize, i: usize) -> String {
        if i % 5 == 0 {
            format!("https://shared.example/{}/{i}", n / 2)
        } else {
            format!("https://site{n}.example/{i}")
        }
    }
    let env = TestEnv::new();
    let feeds_dir = env.dir.path().join("feeds");
    std::fs::create_dir(&feeds_dir).unwrap();
    const FEEDS: usize = 120;
    let write_feed = |n: usize, items: usize| {
        let body: String = (0..items)
            .map(|i| {
                let link = link(n, i);
                format!("<item><title>Feed {n} story {i}</title><link>{link}</link><guid>f{n}-{i}</guid><description>Words {i}</description></item>")
            })
            .collect();
        std::fs::write(
            feeds_dir.join(format!("f{n}.rss")),
            format!("<rss version=\"2.0\"><channel><title>Feed {n}</title>{body}</channel></rss>"),
        )
        .unwrap();
    };
    // A killed poll holds its leases on PostgreSQL until they run out.
    let mut toml = format!(
        "[storage]\n{}[poll]\nconcurrency = 8\nlease = \"2s\"\n",
        storage_keys()
    );
    for n in 0..FEEDS {
        write_feed(n, 20);
        toml.push_str(&format!(
            "[[feed]]\nid = \"f{n}\"\nurl = \"feeds/f{n}.rss\"\n"
        ));
    }
    std::fs::write(env.config_path(), &toml).unwrap();
    let config = paddock::config::Config::load(&env.config_path()).unwrap();
    let poll = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["poll", "--config", env.config_path().to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let verify = |round: usize| -> usize {
        let store = paddock::store::open_configured(&config.storage)
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let v = store.verify().unwrap();
        assert!(v.problems.is_empty(), "round {round}: {:?}", v.problems);
        v.items
    };

    // One finished poll: everything it stored is flushed.
    assert!(poll().wait().unwrap().success());
    let mut flushed = verify(0);
    assert!(flushed > 0);
    for round in 1..=8 {
        // New stories in a third of the feeds, then a poll killed mid-way.
        for n in (round % 3..FEEDS).step_by(3) {
            write_feed(n, 20 + round * 2);
        }
        let mut child = poll();
        std::thread::sleep(Duration::from_millis(fastrand::u64(20..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let now = verify(round);
        assert!(
            now >= flushed,
            "round {round}: {now} stories, {flushed} were flushed before"
        );
        flushed = now;
    }
    // A last poll that finishes stores everything, each story once.
    assert!(poll().wait().unwrap().success());
    let total = verify(99);
    // Each feed ends with 20 stories plus 2 per round that grew it; a story
    // shared by two feeds (same link) is one story.
    let items = |n: usize| 20 + 2 * (1..=8).filter(|r| r % 3 == n % 3).max().unwrap_or(0);
    let links: std::collections::HashSet<String> = (0..FEEDS)
        .flat_map(|n| (0..items(n)).map(move |i| link(n, i)))
        .collect();
    assert_eq!(total, links.len(), "every story once");
}

#[tokio::test]
async fn retention_prunes_and_pruned_stories_never_come_back() {
    let server = FixtureServer::start().await;
    server.no_validators("/f/wordpress.rss");
    server.no_validators("/f/syndicated.rss");
    let env = TestEnv::new();
    let config = env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("wire", &server.url("/f/syndicated.rss")),
        ],
        "",
    );
    let pipeline = app::pipeline(&config).unwrap();
    let store = pipeline.store.clone();
    pipeline.poll(&config.feeds[0]).await;
    pipeline.poll(&config.feeds[1]).await;
    let titles = |items: Vec<Value>| {
        items
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before =
        titles(crate::pipeline::json_items(&pipeline, &config, "/feeds/ttac/feed.json").await);
    assert_eq!(before.len(), 6);

    // Over the per-feed limit: the oldest go, the newest four stay.
    let now = chrono::Utc::now();
    let long_ago = now - chrono::Duration::days(3650);
    let pruned = store.prune(long_ago, 4, &["ttac", "wire"], now).unwrap();
    assert_eq!(pruned.over_limit, 2);
    let after =
        titles(crate::pipeline::json_items(&pipeline, &config, "/feeds/ttac/feed.json").await);
    assert_eq!(after, before[..4]);
    assert!(store.verify().unwrap().problems.is_empty());

    // The feed still lists them: they stay pruned.
    let again = pipeline.poll(&config.feeds[0]).await;
    assert!(
        matches!(again.outcome, Outcome::Stored { new: 0, .. }),
        "{:?}",
        again.outcome
    );
    assert_eq!(
        titles(crate::pipeline::json_items(&pipeline, &config, "/feeds/ttac/feed.json").await),
        after
    );

    // By age: everything first seen before the cutoff goes, the shared
    // story too, and another feed carrying its link cannot revive it.
    let pruned = store
        .prune(
            chrono::Utc::now() + chrono::Duration::seconds(1),
            1000,
            &["ttac", "wire"],
            now,
        )
        .unwrap();
    assert_eq!(pruned.old, 4 + 2);
    assert!(
        crate::pipeline::json_items(&pipeline, &config, "/feed.json")
            .await
            .is_empty()
    );
    pipeline.poll(&config.feeds[1]).await;
    pipeline.poll(&config.feeds[0]).await;
    assert!(
        crate::pipeline::json_items(&pipeline, &config, "/feed.json")
            .await
            .is_empty()
    );
    let v = store.verify().unwrap();
    assert!(v.problems.is_empty() && v.items == 0, "{v:?}");
    // Tombstones expire after TOMBSTONE_KEEP.
    let later = chrono::Utc::now()
        + chrono::Duration::from_std(paddock::store::TOMBSTONE_KEEP).unwrap()
        + chrono::Duration::days(1);
    assert_eq!(
        store
            .prune(long_ago, 1000, &[], later)
            .unwrap()
            .tombstones_expired,
        8
    );
}
