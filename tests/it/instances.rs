//! Several `paddock serve` processes on one PostgreSQL database: they
//! share the polling (each feed fetched once per due time, whoever
//! fetches it), all serve the same stories, and when one is killed the
//! others go on polling its feeds within the lease time.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{FixtureServer, TestEnv, client};

const FEEDS: usize = 300;
const INTERVAL: Duration = Duration::from_secs(4);
const LEASE: Duration = Duration::from_secs(3);

fn rss(feed: usize) -> String {
    let items: String = (0..2)
        .map(|i| {
            format!(
                "<item><title>Feed {feed} story {i}</title><link>https://f{feed}.example/{i}</link>\
                 <guid>https://f{feed}.example/{i}</guid></item>"
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>Feed {feed}</title>{items}</channel></rss>")
}

struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &TestEnv, n: usize, feeds: &str, database: &str) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\
         [storage]\npath = \"data{n}\"\nurl = \"{database}\"\npool_size = 8\n\
         [poll]\ninterval = \"{}s\"\nmin_interval = \"1s\"\ntimeout = \"2s\"\nlease = \"{}s\"\nper_host = 4\n{feeds}",
        INTERVAL.as_secs(),
        LEASE.as_secs()
    );
    let path = env.dir.path().join(format!("instance{n}.toml"));
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Instance {
        child,
        base: format!("http://127.0.0.1:{port}/"),
    }
}

/// The ids `/feed.json?limit=1000` lists, or none while it does not answer.
async fn story_ids(base: &str) -> Vec<String> {
    let Ok(resp) = client()
        .get(format!("{base}feed.json?limit=1000"))
        .send()
        .await
    else {
        return Vec::new();
    };
    let Ok(body) = resp.bytes().await else {
        return Vec::new();
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Vec::new();
    };
    let items = doc["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_polling_and_survive_a_kill() {
    let Some(database) = paddock::store::scratch_database("instances") else {
        return;
    };
    let server = FixtureServer::start().await;
    let mut feeds = String::new();
    for f in 0..FEEDS {
        server.set(&format!("f{f}.rss"), rss(f));
        feeds.push_str(&format!(
            "[[feed]]\nid = \"f{f}\"\nurl = \"{}\"\n",
            server.url(&format!("/dyn/f{f}.rss"))
        ));
    }
    let env = TestEnv::new();
    let mut instances: Vec<Instance> = (0..3).map(|n| start(&env, n, &feeds, &database)).collect();

    // Every instance serves every story, whichever instance stored it.
    let started = Instant::now();
    loop {
        let mut counts = Vec::new();
        for i in &instances {
            counts.push(story_ids(&i.base).await.len());
        }
        if counts.iter().all(|&c| c == FEEDS * 2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "instances show {counts:?} stories, not {}",
            FEEDS * 2
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = story_ids(&instances[0].base).await;
    for i in &instances[1..] {
        assert_eq!(
            story_ids(&i.base).await,
            first,
            "every instance serves the same feed"
        );
    }

    // A few rounds of polling.
    tokio::time::sleep(INTERVAL * 2).await;
    let killed_at = Instant::now();
    let mut dead = instances.remove(0);
    dead.child.kill().unwrap(); // SIGKILL: no goodbye, its leases stay
    dead.child.wait().unwrap();
    tokio::time::sleep(LEASE + INTERVAL * 2).await;

    let mut polls = 0;
    for f in 0..FEEDS {
        let times = server.hit_times(&format!("/dyn/f{f}.rss"));
        polls += times.len();
        // Once per due time: never two fetches of a feed closer than most
        // of an interval (the schedule's jitter is 10%).
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= INTERVAL.mul_f64(0.7),
                "feed f{f} fetched twice {gap:?} apart: {times:?}"
            );
        }
        // The survivors go on polling every feed, the dead one's included,
        // within the lease and an interval.
        let after_kill = times.iter().filter(|&&t| t > killed_at + LEASE).count();
        assert!(
            after_kill >= 1,
            "feed f{f} was not polled after the kill: {times:?}"
        );
    }
    assert!(polls >= FEEDS * 3, "{polls} fetches of {FEEDS} feeds");
    for i in &instances {
        assert_eq!(story_ids(&i.base).await, first);
    }
}
