//! Test support: a fixture feed server on 127.0.0.1:0 and configs that
//! point at it, with real sled stores in temp dirs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use paddock::config::Config;

/// An HTTP client for talking to servers under test. Paddock builds
/// reqwest with rustls and no bundled crypto provider; install ring first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn get_bytes(url: &str) -> Vec<u8> {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture file with `{{BASE}}` replaced by `base`.
pub fn fixture(name: &str, base: &str) -> Vec<u8> {
    let raw =
        std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    replace(&raw, b"{{BASE}}", base.as_bytes())
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[derive(Default)]
struct Shared {
    hits: HashMap<String, usize>,
    /// When each path was asked for, in order.
    hit_times: HashMap<String, Vec<std::time::Instant>>,
    conditional_hits: HashMap<String, usize>,
    /// Documents served under `/dyn/NAME`; tests change them between polls.
    dynamic: HashMap<String, Vec<u8>>,
    /// Paths that answer 304 to any conditional request, whatever the
    /// document now is: proves that a 304 means no parsing.
    always_304: Vec<String>,
    /// Paths that send no validators, so every poll parses.
    no_validators: Vec<String>,
    /// Other paths that serve a fixture file.
    aliases: HashMap<String, String>,
    /// `/dyn/NAME` answers this status instead of its document.
    statuses: HashMap<String, u16>,
}

/// Serves fixture feeds and misbehaving endpoints:
/// - `/f/NAME`: `tests/fixtures/NAME`, with an ETag; 304 when it matches
/// - `/dyn/NAME`: a document set by the test, with an ETag
/// - `/slow`: answers after 30 s
/// - `/status/N`: answers status N
/// - `/endless`: a body that never ends
/// - `/bomb`: a small gzip body that inflates to 20 MB
/// - `/loop`: redirects to itself
/// - `/busy`: 429 with `Retry-After: 3600`; `/gone`: 410
/// - `/moved`: 301 to `/f/wordpress.rss`; `/moved-twice`: 308 then 302 to it
/// - `/html`: an HTML page served as text/html
pub struct FixtureServer {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl FixtureServer {
    pub async fn start() -> FixtureServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((shared.clone(), format!("http://{addr}")));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FixtureServer { addr, shared }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self, path: &str) -> usize {
        *self.shared.lock().unwrap().hits.get(path).unwrap_or(&0)
    }

    /// When `path` was asked for, oldest first.
    pub fn hit_times(&self, path: &str) -> Vec<std::time::Instant> {
        let s = self.shared.lock().unwrap();
        s.hit_times.get(path).cloned().unwrap_or_default()
    }

    pub fn conditional_hits(&self, path: &str) -> usize {
        *self
            .shared
            .lock()
            .unwrap()
            .conditional_hits
            .get(path)
            .unwrap_or(&0)
    }

    pub fn set(&self, name: &str, body: impl Into<Vec<u8>>) {
        self.shared
            .lock()
            .unwrap()
            .dynamic
            .insert(name.to_string(), body.into());
    }

    pub fn always_304(&self, path: &str) {
        self.shared
            .lock()
            .unwrap()
            .always_304
            .push(path.to_string());
    }

    /// `/dyn/NAME` answers `status` (with no body) until cleared with 0.
    pub fn set_status(&self, name: &str, status: u16) {
        let mut s = self.shared.lock().unwrap();
        if status == 0 {
            s.statuses.remove(name);
        } else {
            s.statuses.insert(name.to_string(), status);
        }
    }

    /// Serves fixture `name` at `path` too.
    pub fn alias(&self, path: &str, name: &str) {
        self.shared
            .lock()
            .unwrap()
            .aliases
            .insert(path.to_string(), name.to_string());
    }

    /// Every request this server has answered.
    pub fn total_hits(&self) -> usize {
        self.shared.lock().unwrap().hits.values().sum()
    }

    pub fn no_validators(&self, path: &str) {
        self.shared
            .lock()
            .unwrap()
            .no_validators
            .push(path.to_string());
    }
}

type ServerState = (Arc<Mutex<Shared>>, String);

async fn handle(State((shared, base)): State<ServerState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (always_304, no_validators, dynamic, alias) = {
        let mut s = shared.lock().unwrap();
        *s.hits.entry(path.clone()).or_default() += 1;
        (s.hit_times.entry(path.clone()).or_default()).push(std::time::Instant::now());
        if if_none_match.is_some() {
            *s.conditional_hits.entry(path.clone()).or_default() += 1;
        }
        if let Some(code) = path
            .strip_prefix("/dyn/")
            .and_then(|name| s.statuses.get(name))
        {
            return StatusCode::from_u16(*code).unwrap().into_response();
        }
        let dynamic = path
            .strip_prefix("/dyn/")
            .and_then(|name| s.dynamic.get(name).cloned());
        (
            s.always_304.contains(&path),
            s.no_validators.contains(&path),
            dynamic,
            s.aliases.get(&path).cloned(),
        )
    };
    if always_304 && if_none_match.is_some() {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let body = if let Some(name) = alias.as_deref().or(path.strip_prefix("/f/")) {
        if name.contains("..") {
            return StatusCode::BAD_REQUEST.into_response();
        }
        match std::fs::read(fixtures_dir().join(name)) {
            Ok(raw) => replace(&raw, b"{{BASE}}", base.as_bytes()),
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        }
    } else if path.starts_with("/dyn/") {
        match dynamic {
            Some(d) => d,
            None => return StatusCode::NOT_FOUND.into_response(),
        }
    } else {
        return special(&path).await;
    };
    let etag = format!("\"{:x}-{}\"", fnv(&body), body.len());
    if !no_validators && if_none_match.as_deref() == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "application/xml".parse().unwrap());
    if !no_validators {
        headers.insert(header::ETAG, etag.parse().unwrap());
    }
    (headers, body).into_response()
}

async fn special(path: &str) -> Response {
    match path {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late".into_response()
        }
        "/endless" => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let stream =
                futures_util::stream::repeat_with(move || Ok::<_, Infallible>(chunk.clone()));
            (
                [(header::CONTENT_TYPE, "application/rss+xml")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        "/bomb" => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(b"<rss version=\"2.0\"><channel><title>bomb</title>")
                .unwrap();
            gz.write_all(&vec![b' '; 20 * 1024 * 1024]).unwrap();
            let body = gz.finish().unwrap();
            (
                [
                    (header::CONTENT_TYPE, "application/rss+xml"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                body,
            )
                .into_response()
        }
        "/loop" => (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response(),
        "/busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "3600")],
            "slow down",
        )
            .into_response(),
        "/gone" => (StatusCode::GONE, "this feed is no more").into_response(),
        "/moved" => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, "/f/wordpress.rss")],
        )
            .into_response(),
        "/moved-twice" => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, "/temp")],
        )
            .into_response(),
        "/temp" => (StatusCode::FOUND, [(header::LOCATION, "/f/wordpress.rss")]).into_response(),
        "/html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            std::fs::read(fixtures_dir().join("page.html")).unwrap(),
        )
            .into_response(),
        p => match p
            .strip_prefix("/status/")
            .and_then(|c| c.parse::<u16>().ok())
        {
            Some(code) => (StatusCode::from_u16(code).unwrap(), "no feed here").into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The `[storage]` keys of every test config: sled in the test's dir; in
/// the suite's PostgreSQL pass (`PADDOCK_TEST_BACKEND=postgres`, see
/// `postgres_pass.rs`), a database of the test's own as well.
pub fn storage_keys() -> String {
    match on_postgres() {
        true => format!(
            "path = \"data\"\nurl = \"{}\"\n",
            paddock::store::scratch_database("suite").expect("the PostgreSQL pass has a server")
        ),
        false => "path = \"data\"\n".to_string(),
    }
}

/// Whether this run is the suite's PostgreSQL pass.
pub fn on_postgres() -> bool {
    std::env::var("PADDOCK_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A temp dir holding a config file and its store.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("feeds.toml")
    }

    /// Writes a config with short timeouts and a 1 MiB body cap; `feeds`
    /// is `(id, url)` pairs; `extra` is appended verbatim.
    pub fn write_config(&self, feeds: &[(&str, &str)], extra: &str) -> Config {
        self.write_config_poll(feeds, "", extra)
    }

    /// As `write_config`, with more `[poll]` keys.
    pub fn write_config_poll(&self, feeds: &[(&str, &str)], poll: &str, extra: &str) -> Config {
        let mut toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://paddock.test/\"\ntitle = \"Test news\"\n\
             [storage]\n{}\
             [poll]\ntimeout = \"2s\"\nconnect_timeout = \"1s\"\nmax_body_bytes = 1048576\ninterval = \"1h\"\n",
            storage_keys()
        );
        toml.push_str(poll);
        for (id, url) in feeds {
            toml.push_str(&format!(
                "[[feed]]\nid = \"{id}\"\nurl = \"{url}\"\ngroups = [\"news\"]\n"
            ));
        }
        toml.push_str(extra);
        std::fs::write(self.config_path(), toml).unwrap();
        Config::load(&self.config_path()).expect("test config is valid")
    }
}

/// A running daemon (`app::run`) on 127.0.0.1:0.
pub struct Daemon {
    pub base: String,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    pub async fn start(mut config: Config) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        config.server.base_url = base.parse().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(paddock::app::run(config, listener, shutdown.clone()));
        Daemon {
            base,
            shutdown,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Waits until `/feed.json?limit=1000` lists `n` stories.
    pub async fn wait_for_stories(&self, n: usize) {
        let mut seen = 0;
        for _ in 0..200 {
            let body = get_bytes(&self.url("feed.json?limit=1000")).await;
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            seen = doc["items"].as_array().map_or(0, |a| a.len());
            if seen == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the daemon shows {seen} stories, not {n}");
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the daemon stops within its grace periods")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Whether an external tool is here. Under CI it must be: its absence
/// fails the test; elsewhere the test says it is skipped.
pub fn have(program: &str, probe: &[&str]) -> bool {
    let found = std::process::Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{program} {probe:?} is required under CI (see .ci/run) but failed");
        }
        eprintln!("SKIPPED: {program} {probe:?} failed; install it to run this check");
    }
    found
}

/// Reads a child's stderr to the end on a thread of its own, so a daemon
/// that logs a lot never blocks on a full pipe; join for the text.
pub fn drain(mut stderr: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut log = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        log
    })
}
