//! The steady-state benchmark: `cargo bench --bench steady` (not part of
//! the tests). An origin on loopback makes each feed's document from its
//! number (nothing on disk), with an ETag and five stories; 90% of feeds
//! never change (a re-poll is a 304), 10% carry one new story each
//! interval. A real
//! `paddock serve` polls N feeds (default 1,000,000) every interval
//! (default 900 s: the production rate is N / interval fetches/s). The
//! bench times start-to-serving and the first round (every feed fetched
//! once) and reads the memory after it; then it stops the daemon, spreads
//! every feed's next poll evenly over one interval (as after a long run),
//! restarts it on the full store and watches it for a fixed time at the
//! production rate. It reports, in the same run: Paddock's share of the
//! two cores, its memory, fetches/s against the target, p99 lateness of a
//! poll against its due time (from `/metrics`), store growth per hour, a
//! one-feed reload; then the same origin polled at the same rate by a
//! plain reqwest loop, as the floor.
//!
//! Options: `--feeds N`, `--interval S`, `--seconds S` (the watch;
//! default a fifth of the interval), `--concurrency N` (`[poll].concurrency`, default 256). With
//! `PADDOCK_TEST_POSTGRES` set and `--postgres`, the store is a fresh
//! PostgreSQL database; `--cache-bytes N` sets sled's page cache.
//! `STEADY_WRAP` names a program to run the daemon under (a profiler);
//! `STEADY_LOG=FILE` keeps the daemon's warnings.

#[path = "support/proc.rs"]
mod proc;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Origin {
    start: Instant,
    interval: u64,
    served: AtomicU64,
    not_modified: AtomicU64,
}

impl Origin {
    /// Feed `n`'s version now: every tenth feed gets a new story each
    /// interval (at its own offset), the others never change.
    fn version(&self, n: u64) -> u64 {
        if n % 10 != 0 {
            return 0;
        }
        let offset = (n.wrapping_mul(2_654_435_761)) % (self.interval * 1000);
        (self.start.elapsed().as_millis() as u64 + offset) / (self.interval * 1000)
    }
}

async fn feed(State(o): State<Arc<Origin>>, Path(n): Path<u64>, headers: HeaderMap) -> Response {
    o.served.fetch_add(1, Ordering::Relaxed);
    let v = o.version(n);
    let etag = format!("\"{n}-{v}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        == Some(etag.as_str())
    {
        o.not_modified.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    // Five stories a document: a million feeds store five million.
    let items: String = (v..v + 5)
        .map(|i| {
            format!(
                "<item><title>Feed {n} story {i}</title><link>https://s{n}.example/{i}/</link>\
                 <guid>https://s{n}.example/{i}/</guid><description>Story {i} of feed {n}, about a car.</description>\
                 <slash:comments>{i}</slash:comments></item>"
            )
        })
        .collect();
    let body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:slash=\"http://purl.org/rss/1.0/modules/slash/\">\
         <channel><title>Feed {n}</title><link>https://s{n}.example/</link>{items}</channel></rss>"
    );
    (
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, "application/rss+xml".to_string()),
        ],
        body,
    )
        .into_response()
}

/// p99 of a Prometheus histogram in OpenMetrics text: the upper bound of
/// the first bucket holding 99% of the observations.
/// The sum of every series of counter `name`.
fn total(metrics: &str, name: &str) -> f64 {
    (metrics.lines())
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn p99(metrics: &str, name: &str) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
    {
        let le = line.split("le=\"").nth(1)?.split('"').next()?;
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        buckets.push((le, count));
    }
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, c)| *c >= total * 0.99)
        .map(|(le, _)| *le)
}

fn main() {
    let n = arg("--feeds", 1_000_000);
    let interval = arg("--interval", 900);
    // The second round comes due from 90% to 110% of an interval after
    // the first (the schedule's jitter): the watch covers that.
    let seconds = arg("--seconds", (interval / 5).max(1));
    let concurrency = arg("--concurrency", 256);
    let postgres = std::env::args().any(|a| a == "--postgres");
    let cache_bytes = arg("--cache-bytes", 64 << 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let origin = Arc::new(Origin {
            start: Instant::now(),
            interval,
            served: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
        });
        let app = axum::Router::new().route("/f/{n}", axum::routing::get(feed)).with_state(origin.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let storage = match postgres {
            true => format!("url = \"{}\"\n", paddock::store::scratch_database("steady").expect("--postgres needs PADDOCK_TEST_POSTGRES")),
            false => format!("path = \"data\"\ncache_bytes = {cache_bytes}\n"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let write_config = |changed: Option<u64>| {
            let mut toml = format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_token_env = \"STEADY_TOKEN\"\n[storage]\n{storage}\
                 [poll]\ninterval = \"{interval}s\"\nmin_interval = \"1s\"\nconcurrency = {concurrency}\nper_host = {concurrency}\ntimeout = \"10s\"\n"
            );
            toml.reserve(n as usize * 48);
            for i in 0..n {
                let extra = if changed == Some(i) { "?moved=1" } else { "" };
                toml.push_str(&format!("[[feed]]\nid = \"f{i}\"\nurl = \"{base}/f/{i}{extra}\"\n"));
            }
            std::fs::write(dir.path().join("feeds.toml"), toml).unwrap();
        };
        write_config(None);
        // The config alone, in this process: read whole, then read again
        // after a one-feed edit (what a reload does before the poller
        // reconciles).
        let config_path = dir.path().join("feeds.toml");
        let t = Instant::now();
        let loaded = paddock::config::Config::load(&config_path).unwrap();
        let config_read = t.elapsed();
        write_config(Some(n / 3));
        let t = Instant::now();
        let reloaded = paddock::config::Config::reload(&loaded).unwrap();
        let config_reread = t.elapsed();
        assert_ne!(reloaded.feeds[(n / 3) as usize], loaded.feeds[(n / 3) as usize]);
        drop((loaded, reloaded));
        write_config(None);
        let http = reqwest::Client::new();
        let url = |p: &str| format!("http://127.0.0.1:{port}/{p}");

        println!("# Paddock steady-state benchmark\n");
        println!(
            "{n} feeds every {interval} s (target {:.0} fetches/s), {} store, [poll].concurrency = {concurrency}; a {seconds} s watch after the first round; 2 cores\n",
            n as f64 / interval as f64,
            if postgres { "PostgreSQL" } else { "sled" }
        );
        // `STEADY_WRAP="heaptrack -o /tmp/steady"` runs the daemon under a
        // profiler (its figures then include the profiler's).
        let wrap: Vec<String> = std::env::var("STEADY_WRAP").unwrap_or_default().split_whitespace().map(String::from).collect();
        let spawn = || {
            let (program, wrapped) = match wrap.split_first() {
                Some((first, rest)) => (first.clone(), [rest, &[env!("CARGO_BIN_EXE_paddock").to_string()]].concat()),
                None => (env!("CARGO_BIN_EXE_paddock").to_string(), vec![]),
            };
            Command::new(program)
                .args(wrapped)
                .args(["serve", "--config", config_path.to_str().unwrap()])
                .env("STEADY_TOKEN", "steady")
                // As `config/paddock.service` runs it: glibc's malloc arenas
                // capped (unless the caller's environment says otherwise).
                .env("MALLOC_ARENA_MAX", std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "2".into()))
                .env("RUST_LOG", "warn,paddock::poller::scheduler=info")
                // `STEADY_LOG=FILE` keeps the daemon's warnings.
                .stderr(match std::env::var_os("STEADY_LOG") {
                    Some(f) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(f).unwrap()),
                    None => Stdio::null(),
                })
                .spawn()
                .unwrap()
        };
        // The wrapper waits for the daemon: stop that gracefully, so a
        // profiler sees it end.
        let stop = |child: &mut std::process::Child| {
            match wrap.is_empty() {
                true => {
                    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                }
                // With `STEADY_WRAP_KILL` set, the daemon is killed instead:
                // what a heap profiler then reports as leaked is what the
                // daemon held at that moment.
                false => {
                    let signal = match std::env::var_os("STEADY_WRAP_KILL") {
                        Some(_) => "-KILL",
                        None => "-TERM",
                    };
                    let _ = Command::new("pkill").args([signal, "-f", config_path.to_str().unwrap()]).status();
                }
            }
            let _ = child.wait();
        };
        let spawned = Instant::now();
        let mut child = spawn();
        let pid = child.id();
        while http.get(url("healthz")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let serving = spawned.elapsed();
        while origin.served.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let first_round = spawned.elapsed();
        let rss_after_first = proc::status_kb(&pid.to_string(), "VmRSS:");
        let threads = proc::status_kb(&pid.to_string(), "Threads:");
        let first_peak = proc::status_kb(&pid.to_string(), "VmHWM:");
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let anon = (smaps.lines().find(|l| l.starts_with("Anonymous:")))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
        // The steady state: stop the daemon, spread every feed's next poll
        // evenly over one interval from a little after now (as after a
        // long run: the first round's burst gone), and start it again on
        // its full store. The watch then sees the production rate.
        stop(&mut child);
        let config = paddock::config::Config::load(&dir.path().join("feeds.toml")).unwrap();
        let seeded = Instant::now();
        // Time to seed and restart before the first feed falls due: a
        // million feeds take about a minute.
        let settle = Duration::from_secs((n / 10_000).max(15));
        // The spread and the watch start at the same moment (opening the
        // store first takes seconds at a million feeds).
        let store = paddock::store::open_configured(&config.storage).unwrap();
        let (start, spread_at) = (chrono::Utc::now() + chrono::Duration::from_std(settle).unwrap(), Instant::now() + settle);
        {
            for (i, feed) in config.feeds.iter().enumerate() {
                let mut state = store.feed_state(&feed.id).unwrap();
                let offset = interval as f64 * 1000.0 * (i as u64).wrapping_mul(2_654_435_761).rem_euclid(n) as f64 / n as f64;
                state.next_poll = Some(start + chrono::Duration::milliseconds(offset as i64));
                store.put_feed_state(&feed.id, &state).unwrap();
            }
            store.flush().unwrap();
        }
        drop(store);
        let seeding = seeded.elapsed();
        drop(config);
        let restarted = Instant::now();
        let mut child = spawn();
        let pid = child.id();
        while http.get(url("healthz")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let restart = restarted.elapsed();
        if let Some(wait) = spread_at.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }

        // The watch: the production rate, for `seconds`.
        let (served0, cpu0, store0, t0) = (origin.served.load(Ordering::Relaxed), proc::cpu(&pid.to_string()), proc::du(dir.path()), Instant::now());
        let nm0 = origin.not_modified.load(Ordering::Relaxed);
        let before = http.get(url("metrics")).send().await.unwrap().text().await.unwrap();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let watched = t0.elapsed().as_secs_f64();
        let fetched = origin.served.load(Ordering::Relaxed) - served0;
        let not_modified = origin.not_modified.load(Ordering::Relaxed) - nm0;
        let cpu = (proc::cpu(&pid.to_string()) - cpu0).as_secs_f64();
        let growth = proc::du(dir.path()).saturating_sub(store0) as f64 / watched * 3600.0;
        let metrics = http.get(url("metrics")).send().await.unwrap().text().await.unwrap();
        let late = p99(&metrics, "paddock_poll_lateness_seconds");
        let polls = total(&metrics, "paddock_polls_total") - total(&before, "paddock_polls_total");
        let (rss, peak) = (proc::status_kb(&pid.to_string(), "VmRSS:"), proc::status_kb(&pid.to_string(), "VmHWM:"));

        // A reload that changes one feed, timed alone: the file watcher
        // reloads the edit first, then `POST /api/reload` reads it again.
        write_config(Some(n / 2));
        // The file watcher reloads the edit first: let it finish.
        tokio::time::sleep(Duration::from_secs(3).max(config_reread * 4)).await;
        let t = Instant::now();
        let reload = http.post(url("api/reload")).bearer_auth("steady").send().await.unwrap();
        let reload_time = t.elapsed();
        assert!(reload.status().is_success(), "reload: {}", reload.status());
        stop(&mut child);

        // The floor: the same origin, the same rate, a plain reqwest loop
        // with the same validators; the bench process's CPU then (origin
        // included) next to its CPU while Paddock polled (origin alone).
        let rate = n as f64 / interval as f64;
        let self_cpu = || proc::cpu("self");
        let (c0, f0, t1) = (self_cpu(), origin.served.load(Ordering::Relaxed), Instant::now());
        let client = reqwest::Client::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
        let mut i = 0u64;
        let etags: Arc<std::sync::Mutex<HashMap<u64, String>>> = Arc::default();
        while t1.elapsed().as_secs() < seconds.min(30) {
            let due = Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_sub(t1.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            let (client, limit, etags, feed) = (client.clone(), limit.clone(), etags.clone(), i % n);
            let target = format!("{base}/f/{feed}");
            tokio::spawn(async move {
                let _p = limit.acquire_owned().await.unwrap();
                let known = etags.lock().unwrap().get(&feed).cloned();
                let mut req = client.get(target);
                if let Some(e) = known {
                    req = req.header(header::IF_NONE_MATCH, e);
                }
                if let Ok(resp) = req.send().await {
                    if let Some(e) = resp.headers().get(header::ETAG).and_then(|v| v.to_str().ok()) {
                        etags.lock().unwrap().insert(feed, e.to_string());
                    }
                    let _ = resp.bytes().await;
                }
            });
            i += 1;
        }
        let floor_secs = t1.elapsed().as_secs_f64();
        let floor_fetched = origin.served.load(Ordering::Relaxed) - f0;
        let floor_cpu = (self_cpu() - c0).as_secs_f64();

        println!("| measure | figure |\n|---|---|");
        println!("| start to serving (`/healthz` answers) | {:.2} s |", serving.as_secs_f64());
        println!("| seeding every feed's next poll over one interval (daemon stopped) | {:.1} s |", seeding.as_secs_f64());
        println!("| restart on the full store to serving | {:.2} s |", restart.as_secs_f64());
        println!("| first round (every feed fetched once) | {:.1} s ({:.0} fetches/s) |", first_round.as_secs_f64(), n as f64 / first_round.as_secs_f64());
        println!("| RSS after the first round (peak) | {} MB ({:.0} bytes per feed; {} MB anonymous; {threads} threads) ({} MB) |", rss_after_first / 1024, rss_after_first as f64 * 1024.0 / n as f64, anon / 1024, first_peak / 1024);
        println!("| fetches/s in the watch, against the target | {:.0} of {:.0} ({:.0}% answered 304) |", fetched as f64 / watched, rate, 100.0 * not_modified as f64 / fetched.max(1) as f64);
        println!("| polls the daemon counted in the watch | {:.0} a second |", polls / watched);
        println!("| Paddock's CPU in the watch | {:.1}% of the two cores |", 100.0 * cpu / watched / 2.0);
        println!("| RSS at the end of the watch (peak) | {} MB ({} MB) |", rss / 1024, peak / 1024);
        println!("| p99 lateness of a scheduled poll | {} |", late.map_or("no scheduled poll in the watch".to_string(), |s| format!("at most {s:.3} s")));
        println!("| store growth | {:.1} MB per hour |", growth / 1e6);
        println!("| reload that changes one feed (`POST /api/reload`) | {:.2} s |", reload_time.as_secs_f64());
        println!("| the config alone: read whole; read again after a one-feed edit | {:.2} s; {:.2} s |", config_read.as_secs_f64(), config_reread.as_secs_f64());
        println!(
            "| floor: a reqwest loop at the same rate, bench process CPU (origin included) | {:.0} fetches/s, {:.1}% of the two cores |",
            floor_fetched as f64 / floor_secs,
            100.0 * floor_cpu / floor_secs / 2.0
        );
    });
}
