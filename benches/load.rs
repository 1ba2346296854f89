//! The load benchmark: `cargo bench --bench load` (not part of the tests).
//! Serves a synthetic corpus on loopback and measures, in one run, cold
//! ingest next to the download+parse floor, a warm re-poll of 304s,
//! serving from cache next to the same bytes served statically, and the
//! store size and daemon memory at about 100k stories.
//!
//! With `PADDOCK_TEST_POSTGRES` set (a PostgreSQL server's URL, as for the
//! tests), the ingest, re-poll and serving run on PostgreSQL too, and 1, 2
//! and 3 `paddock serve` share the corpus's first round on one database.
//!
//! The sled phases run with `--rules N` keep/block rules (default 20).
//!
//! Options: `--feeds N` (default 1000), `--big N` (feeds for the 100k
//! phase, default 3000), `--seconds S` (each serving run, default 5),
//! `--ingest-only` (stop after the re-poll, e.g. under a profiler).

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/proc.rs"]
mod proc;

use proc::{du, status_kb};

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use paddock::config::Config;
use paddock::poller::Outcome;
use tokio::sync::Semaphore;

const CONCURRENCY: usize = 16;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Docs = Arc<HashMap<String, (Bytes, String)>>;

static SERVED: std::sync::LazyLock<Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::LazyLock::new(|| Arc::new(std::sync::atomic::AtomicUsize::new(0)));

async fn serve_doc(State(docs): State<Docs>, req: Request) -> Response {
    SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some((body, etag)) = docs.get(req.uri().path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::ETAG, etag.clone()),
            (header::CONTENT_TYPE, "application/xml".into()),
        ],
        body.clone(),
    )
        .into_response()
}

async fn listen(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Serves a corpus; returns its base URL and the raw bytes served.
async fn corpus_server(sites: usize, per_site: usize) -> (String, Vec<corpus::Site>, u64) {
    // The base must be known before generating (comment links carry it),
    // so bind first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sites_v = corpus::generate(sites, per_site, &base);
    let mut docs = HashMap::new();
    let mut bytes = 0u64;
    for s in &sites_v {
        bytes += s.feed.len() as u64;
        docs.insert(
            format!("/feeds/{}.xml", s.id),
            (Bytes::from(s.feed.clone()), format!("\"f{}\"", s.id)),
        );
        if let Some(c) = &s.comments {
            bytes += c.len() as u64;
            docs.insert(
                format!("/comments/{}.xml", s.id),
                (Bytes::from(c.clone()), format!("\"c{}\"", s.id)),
            );
        }
    }
    let app = axum::Router::new()
        .fallback(serve_doc)
        .with_state(Arc::new(docs));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, sites_v, bytes)
}

fn config_for(dir: &Path, base: &str, sites: &[corpus::Site]) -> Config {
    let config = config_with(
        dir,
        base,
        sites,
        "feeds.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"data\"\n",
    );
    // Keep/block rules (`--rules N`, 20 by default), asked of every story
    // an output renders.
    let mut text = std::fs::read_to_string(&config.file).unwrap();
    text.push_str(&rules(arg("--rules", 20) as usize, sites));
    std::fs::write(&config.file, text).unwrap();
    Config::load(&config.file).unwrap()
}

/// `n` rules of every kind that drop few or no corpus stories: block
/// rules on each field, keep rules scoped to a few feeds, `older_than`.
fn rules(n: usize, sites: &[corpus::Site]) -> String {
    let fields = ["title", "content", "author", "category", "url", "any"];
    (0..n)
        .map(|i| match i % 4 {
            0 | 1 => format!(
                "[[rule]]\naction = \"block\"\n{} = \"(?i)\\\\b(sponsored|deal of the day|giveaway {i})\\\\b\"\n",
                fields[i % fields.len()]
            ),
            2 => format!(
                "[[rule]]\naction = \"keep\"\nany = \".\"\nfeeds = [\"{}\"]\n",
                sites[i % sites.len()].id
            ),
            _ => "[[rule]]\naction = \"block\"\nolder_than = \"3650d\"\n".to_string(),
        })
        .collect()
}

/// A config of the corpus's feeds after `head` (the `[server]` and
/// `[storage]` sections), written to `name` in `dir`.
fn config_with(dir: &Path, base: &str, sites: &[corpus::Site], name: &str, head: &str) -> Config {
    let mut toml = format!(
        "{head}[poll]\nconcurrency = {CONCURRENCY}\nper_host = {CONCURRENCY}\ntimeout = \"60s\"\nlease = \"120s\"\n"
    );
    for s in sites {
        toml.push_str(&format!(
            "[[feed]]\nid = \"{}\"\nurl = \"{base}/feeds/{}.xml\"\n",
            s.id, s.id
        ));
        if s.comments.is_some() {
            toml.push_str(&format!(
                "comments_url = \"{base}/comments/{}.xml\"\n",
                s.id
            ));
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap();
    Config::load(&path).unwrap()
}

/// Stories in a PostgreSQL store, read straight from its table.
async fn stories_in(url: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query_one("SELECT count(*) FROM stories", &[])
        .await
        .unwrap()
        .get(0)
}

/// `n` `paddock serve` processes on one fresh database share the corpus's
/// first round: the wall time until every story is stored, the fetches
/// the corpus server saw, and the instances' CPU.
async fn instances(
    n: usize,
    base: &str,
    sites: &[corpus::Site],
    expect: i64,
    served: &Arc<std::sync::atomic::AtomicUsize>,
) {
    let database = paddock::store::scratch_database("bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = served.load(std::sync::atomic::Ordering::Relaxed);
    let t0 = Instant::now();
    let mut children = Vec::new();
    for i in 0..n {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let head =
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\nurl = \"{database}\"\n");
        let config = config_with(dir.path(), base, sites, &format!("i{i}.toml"), &head);
        children.push(
            Command::new(env!("CARGO_BIN_EXE_paddock"))
                .args(["serve", "--config", config.file.to_str().unwrap()])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let mut stored = 0;
    while t0.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stored = stories_in(&database).await;
        if stored >= expect {
            break;
        }
    }
    let wall = t0.elapsed();
    // Let the last writes of the round land before counting fetches.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetches = served.load(std::sync::atomic::Ordering::Relaxed) - before;
    let cpu: Duration = children
        .iter()
        .map(|c| proc::cpu(&c.id().to_string()))
        .sum();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!(
        "| {n} | {:.2} s | {:.2} s | {stored} | {fetches} |",
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
}

/// The floor: every document fetched with the same concurrency and parsed
/// with feed-rs, nothing stored.
async fn floor(base: &str, sites: &[corpus::Site]) -> (Duration, Duration, usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut urls: Vec<String> = sites
        .iter()
        .map(|s| format!("{base}/feeds/{}.xml", s.id))
        .collect();
    urls.extend(
        sites
            .iter()
            .filter(|s| s.comments.is_some())
            .map(|s| format!("{base}/comments/{}.xml", s.id)),
    );
    let (t0, c0) = (Instant::now(), proc::cpu("self"));
    let mut set = tokio::task::JoinSet::new();
    for url in urls {
        let (client, limit) = (client.clone(), limit.clone());
        set.spawn(async move {
            let _p = limit.acquire_owned().await.unwrap();
            let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
            tokio::task::spawn_blocking(move || {
                feed_rs::parser::parse(&body[..])
                    .map(|f| f.entries.len())
                    .unwrap_or(0)
            })
            .await
            .unwrap()
        });
    }
    let mut items = 0;
    while let Some(n) = set.join_next().await {
        items += n.unwrap();
    }
    (t0.elapsed(), proc::cpu("self") - c0, items)
}

struct Wrk {
    rps: f64,
    p99_ms: f64,
}

/// `wrk` for `seconds` on `url`, sending `Accept-Encoding: gzip` when `gzip`.
fn wrk(url: &str, seconds: u64, gzip: bool) -> Option<Wrk> {
    let mut args = vec![
        "-t2".to_string(),
        "-c32".into(),
        format!("-d{seconds}s"),
        "--latency".into(),
    ];
    if gzip {
        args.extend(["-H".into(), "Accept-Encoding: gzip".into()]);
    }
    args.push(url.into());
    let out = Command::new("wrk").args(&args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))?
        .split_whitespace()
        .nth(1)?;
    let p99_ms = if let Some(us) = p99.strip_suffix("us") {
        us.parse::<f64>().ok()? / 1000.0
    } else if let Some(ms) = p99.strip_suffix("ms") {
        ms.parse().ok()?
    } else {
        p99.strip_suffix('s')?.parse::<f64>().ok()? * 1000.0
    };
    Some(Wrk { rps, p99_ms })
}

fn main() {
    let feeds = arg("--feeds", 1000) as usize;
    let big = arg("--big", 3000) as usize;
    let seconds = arg("--seconds", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("# Paddock load benchmark\n");
        println!("machine: {} cores; {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().lines().find(|l| l.starts_with("model name")).unwrap_or("").trim());
        let (base, sites, bytes) = corpus_server(feeds, 35).await;
        let stories: usize = sites.iter().map(|s| s.items).sum();
        println!("corpus: {feeds} feeds, {} comment feeds, {stories} entries, {:.1} MB\n", sites.iter().filter(|s| s.comments.is_some()).count(), bytes as f64 / 1e6);

        // Warm the loopback path and the allocator once, unmeasured.
        let _ = floor(&base, &sites[..feeds.min(50)]).await;
        let (f_wall, f_cpu, f_items) = floor(&base, &sites).await;
        println!("| phase | wall | CPU | items | items/s | ratio to floor |\n|---|---|---|---|---|---|");
        println!("| floor: fetch + feed-rs parse | {:.2} s | {:.2} s | {f_items} | {:.0} | 1.00 |", f_wall.as_secs_f64(), f_cpu.as_secs_f64(), f_items as f64 / f_wall.as_secs_f64());

        let dir = tempfile::tempdir().unwrap();
        let config = config_for(dir.path(), &base, &sites);
        let pipeline = paddock::app::pipeline(&config).unwrap();
        let (t0, c0) = (Instant::now(), proc::cpu("self"));
        let reports = pipeline.poll_all(&config.feeds, |_| {}).await;
        let (i_wall, i_cpu) = (t0.elapsed(), proc::cpu("self") - c0);
        // Before `verify`, which holds the writer lock too.
        let writing = pipeline.store.write_time();
        let failed = reports.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count();
        let stored = pipeline.store.verify().unwrap().items;
        println!("| cold ingest (stored {stored} stories, {failed} failed) | {:.2} s | {:.2} s | {f_items} | {:.0} | {:.2} |", i_wall.as_secs_f64(), i_cpu.as_secs_f64(), f_items as f64 / i_wall.as_secs_f64(), i_wall.as_secs_f64() / f_wall.as_secs_f64());
        println!("| of which inside the store writer (serialized) | {:.2} s | | | | {:.0}% of the ingest |", writing.as_secs_f64(), 100.0 * writing.as_secs_f64() / i_wall.as_secs_f64());

        // Warm re-poll: every feed due now, every answer a 304.
        let (t0, c0) = (Instant::now(), proc::cpu("self"));
        let reports = pipeline.poll_all(&config.feeds, |_| {}).await;
        let (w_wall, w_cpu) = (t0.elapsed(), proc::cpu("self") - c0);
        let not_modified = reports.iter().filter(|r| r.outcome == Outcome::NotModified).count();
        println!("| warm re-poll ({not_modified} of {} answered 304) | {:.3} s | {:.2} s | | | |\n", reports.len(), w_wall.as_secs_f64(), w_cpu.as_secs_f64());
        println!("peak RSS of the bench process so far (corpus and server included): {} MB\n", status_kb("self", "VmHWM:") / 1024);

        if std::env::args().any(|a| a == "--ingest-only") {
            return;
        }
        // Serving, next to the same bytes served statically by axum.
        let state = paddock::server::AppState::new(pipeline.store.clone(), Arc::new(ArcSwap::from_pointee(config.clone())));
        let paddock_base = listen(paddock::server::router(state)).await;
        let atom = reqwest::get(format!("{paddock_base}/feed.atom")).await.unwrap().bytes().await.unwrap();
        let raw = reqwest::Client::builder().no_gzip().build().unwrap();
        let atom_gz = raw.get(format!("{paddock_base}/feed.atom")).header(header::ACCEPT_ENCODING, "gzip").send().await.unwrap().bytes().await.unwrap();
        let (static_atom, static_gz) = (atom.clone(), atom_gz.clone());
        let static_base = listen(
            axum::Router::new()
                .route(
                    "/feed.atom",
                    axum::routing::get(move || {
                        let b = static_atom.clone();
                        async move { ([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], b) }
                    }),
                )
                .route(
                    "/feed.atom.gz",
                    axum::routing::get(move || {
                        let b = static_gz.clone();
                        async move { ([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"), (header::CONTENT_ENCODING, "gzip")], b) }
                    }),
                ),
        )
        .await;
        println!("| serving ({seconds} s, 32 connections, wrk) | req/s | p99 | ratio to static |\n|---|---|---|---|");
        let mean = |runs: &[&Wrk]| Wrk {
            rps: runs.iter().map(|w| w.rps).sum::<f64>() / runs.len() as f64,
            p99_ms: runs.iter().map(|w| w.p99_ms).sum::<f64>() / runs.len() as f64,
        };
        let mut identity_static = None;
        // As sent, then gzip-compressed (what feed readers ask for). Static
        // and cached in turn, twice, so that a slow spell of this shared
        // machine falls on both: the figures are the means.
        for (gzip, static_path, bytes, label) in [(false, "feed.atom", &atom, "same bytes, static"), (true, "feed.atom.gz", &atom_gz, "same gzip bytes, static")] {
            let mut pairs = Vec::new();
            for _ in 0..2 {
                let static_run = wrk(&format!("{static_base}/{static_path}"), seconds, gzip);
                let cached = wrk(&format!("{paddock_base}/feed.atom"), seconds, gzip);
                pairs.push(static_run.zip(cached));
            }
            let Some(pairs) = pairs.into_iter().collect::<Option<Vec<_>>>() else {
                println!("(wrk is not installed: serving not measured)\n");
                break;
            };
            let s = mean(&pairs.iter().map(|(s, _)| s).collect::<Vec<_>>());
            let c = mean(&pairs.iter().map(|(_, c)| c).collect::<Vec<_>>());
            let rounds: Vec<String> = pairs.iter().map(|(s, c)| format!("{:.2}", c.rps / s.rps)).collect();
            let coding = if gzip { ", Accept-Encoding: gzip" } else { "" };
            println!("| {label} ({} KB) | {:.0} | {:.2} ms | 1.00 |", bytes.len() / 1024, s.rps, s.p99_ms);
            println!("| /feed.atom from cache{coding} (rounds: {}) | {:.0} | {:.2} ms | {:.2} |", rounds.join(", "), c.rps, c.p99_ms, c.rps / s.rps);
            identity_static.get_or_insert(s.rps);
        }
        if let (Some(d), Some(s)) = (wrk(&format!("{paddock_base}/digest.json?since=7d&limit=50"), seconds, false), identity_static) {
            println!("| /digest.json?since=7d&limit=50 | {:.0} | {:.2} ms | {:.2} |\n", d.rps, d.p99_ms, d.rps / s);
        }
        drop(pipeline);

        // The same phases on PostgreSQL, when a server is named: cold
        // ingest, re-poll and serving next to sled's above, then 1, 2 and 3
        // instances sharing the first round.
        if std::env::var("PADDOCK_TEST_POSTGRES").is_ok() {
            let database = paddock::store::scratch_database("bench").unwrap();
            let pg_dir = tempfile::tempdir().unwrap();
            let pg_config = config_with(pg_dir.path(), &base, &sites, "feeds.toml", &format!("[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"{database}\"\n"));
            let pipeline = paddock::app::pipeline(&pg_config).unwrap();
            let (t0, c0) = (Instant::now(), proc::cpu("self"));
            let reports = pipeline.poll_all(&pg_config.feeds, |_| {}).await;
            let (p_wall, p_cpu) = (t0.elapsed(), proc::cpu("self") - c0);
            let writing = pipeline.store.write_time();
            let failed = reports.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count();
            let pg_stored = stories_in(&database).await;
            println!("PostgreSQL (the same corpus, the same run; CPU is the bench process's, the server's is not counted):\n");
            println!("| phase | wall | CPU | ratio to floor |\n|---|---|---|---|");
            println!("| cold ingest on PostgreSQL (stored {pg_stored} stories, {failed} failed) | {:.2} s | {:.2} s | {:.2} |", p_wall.as_secs_f64(), p_cpu.as_secs_f64(), p_wall.as_secs_f64() / f_wall.as_secs_f64());
            println!("| of which in write transactions | {:.2} s | | |", writing.as_secs_f64());
            let (t0, c0) = (Instant::now(), proc::cpu("self"));
            let reports = pipeline.poll_all(&pg_config.feeds, |_| {}).await;
            let not_modified = reports.iter().filter(|r| r.outcome == Outcome::NotModified).count();
            println!("| warm re-poll on PostgreSQL ({not_modified} of {} answered 304) | {:.3} s | {:.2} s | |\n", reports.len(), t0.elapsed().as_secs_f64(), (proc::cpu("self") - c0).as_secs_f64());
            let state = paddock::server::AppState::new(pipeline.store.clone(), Arc::new(ArcSwap::from_pointee(pg_config.clone())));
            let pg_base = listen(paddock::server::router(state)).await;
            let _ = reqwest::get(format!("{pg_base}/feed.atom")).await;
            println!("| serving ({seconds} s, 32 connections, wrk) | sled req/s | PostgreSQL req/s | sled p99 | PostgreSQL p99 |\n|---|---|---|---|---|");
            for path in ["feed.atom", "digest.json?since=7d&limit=50", "?group="] {
                let (s, p) = (wrk(&format!("{paddock_base}/{path}"), seconds, false), wrk(&format!("{pg_base}/{path}"), seconds, false));
                if let (Some(s), Some(p)) = (s, p) {
                    println!("| /{path} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |", s.rps, p.rps, s.p99_ms, p.p99_ms);
                }
            }
            drop(pipeline);
            println!("\nInstances sharing the first round of the corpus on one database (`paddock serve` processes):\n");
            println!("| instances | wall until every story is stored | instances' CPU | stories | documents fetched |\n|---|---|---|---|---|");
            for n in 1..=3 {
                instances(n, &base, &sites, pg_stored, &SERVED).await;
            }
            println!();
        }

        // About 100k stories: store size, and the daemon's memory serving them.
        let (big_base, big_sites, big_bytes) = corpus_server(big, 35).await;
        let big_dir = tempfile::tempdir().unwrap();
        let mut big_config = config_for(big_dir.path(), &big_base, &big_sites);
        let pipeline = paddock::app::pipeline(&big_config).unwrap();
        let t0 = Instant::now();
        pipeline.poll_all(&big_config.feeds, |_| {}).await;
        let b_wall = t0.elapsed();
        let stored = pipeline.store.verify().unwrap().items;
        pipeline.store.flush().unwrap();
        drop(pipeline);
        let size = du(&big_dir.path().join("data"));
        println!("100k phase: {stored} stories stored from {:.1} MB of feeds in {:.1} s; store on disk {:.1} MB ({:.2}x the feed bytes)", big_bytes as f64 / 1e6, b_wall.as_secs_f64(), size as f64 / 1e6, size as f64 / big_bytes as f64);
        // Opening builds the story indexes from the head groups.
        let t0 = Instant::now();
        let reopened = paddock::store::open(&big_config.storage.path, big_config.storage.cache_bytes).unwrap();
        println!("store open at {stored} stories (indexes built in memory): {:.2} s", t0.elapsed().as_secs_f64());
        drop(reopened);

        // The real daemon on that store: polls are not due (the ingest set
        // next polls 15 min out), so this measures a serving daemon.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let text = std::fs::read_to_string(&big_config.file).unwrap().replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
        std::fs::write(&big_config.file, text).unwrap();
        big_config = Config::load(&big_config.file).unwrap();
        let mut daemon = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["serve", "--config", big_config.file.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(format!("{url}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for path in ["/feed.atom", "/feed.rss", "/feed.json", "/digest.json?since=7d", "/", "/api/feeds", "/comments/recent.json"] {
            for _ in 0..5 {
                let _ = http.get(format!("{url}{path}")).send().await.unwrap().bytes().await;
            }
        }
        if let Some(w) = wrk(&format!("{url}/feed.atom"), 2, false) {
            println!("daemon at 100k: /feed.atom {:.0} req/s", w.rps);
        }
        let pid = daemon.id().to_string();
        println!("daemon at 100k stories: RSS {} MB now, {} MB peak", status_kb(&pid, "VmRSS:") / 1024, status_kb(&pid, "VmHWM:") / 1024);
        let _ = daemon.kill();
        let _ = daemon.wait();
    });
}
