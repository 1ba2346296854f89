//! PostgreSQL going away under a running pipeline, through a TCP proxy
//! the test can cut: polls fail with kind `store` and nothing panics,
//! cached outputs are still served and uncached reads answer 503, and
//! everything works again, by itself, once the database is back. The
//! database URL's password never shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use paddock::model::ErrorKind;
use paddock::poller::Outcome;
use paddock::server::{AppState, router};

use crate::pipeline::poll;
use crate::support::{FixtureServer, TestEnv};

/// Forwards connections to `target` while up; when cut, drops every
/// connection it carries and every new one.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let token = cut2.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    fn go_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    fn come_back(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn rss(n: usize) -> String {
    let items: String = (1..=n)
        .map(|i| format!("<item><title>Story {i}</title><link>https://h.example/{i}</link></item>"))
        .collect();
    format!("<rss version=\"2.0\"><channel><title>H</title>{items}</channel></rss>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_fails_polls_not_the_daemon_and_it_recovers() {
    let Some(database) = paddock::store::scratch_database("database_faults") else {
        return;
    };
    let mut url = url::Url::parse(&database).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let proxy = Proxy::start(target).await;
    url.set_port(Some(proxy.port)).unwrap();
    // Trust authentication ignores it; it must never show.
    url.set_password(Some("hunter2-secret")).unwrap();

    let server = FixtureServer::start().await;
    server.set("h.rss", rss(3));
    let env = TestEnv::new();
    std::fs::write(
        env.config_path(),
        format!(
            "[storage]\nurl = \"{url}\"\n[poll]\ntimeout = \"2s\"\n[[feed]]\nid = \"h\"\nurl = \"{}\"\n",
            server.url("/dyn/h.rss")
        ),
    )
    .unwrap();
    let config = paddock::config::Config::load(&env.config_path()).unwrap();
    let pipeline = paddock::app::pipeline(&config).unwrap();
    let app = router(AppState::new(
        pipeline.store.clone(),
        Arc::new(ArcSwap::from_pointee(config.clone())),
    ));
    poll(&pipeline, &config).await;
    let (status, cached) = get(&app, "/feed.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(cached.contains("Story 3"));
    let (_, feeds) = get(&app, "/api/feeds").await;
    assert!(!feeds.contains("hunter2"), "{feeds}");

    // The database goes away.
    proxy.go_down();
    server.set("h.rss", rss(4));
    match &poll(&pipeline, &config).await["h"].outcome {
        Outcome::Failed(f) => {
            assert_eq!(f.kind, ErrorKind::Store, "{f:?}");
            assert!(f.message.contains("database"), "{}", f.message);
            assert!(!f.message.contains("hunter2"), "{}", f.message);
        }
        other => panic!("{other:?}"),
    }
    let (status, body) = get(&app, "/feed.json").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, cached.as_str()),
        "served from cache"
    );
    let (status, body) = get(&app, "/feed.rss").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(!body.contains("hunter2"));
    let (status, _) = get(&app, "/api/feeds").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // It comes back: the next poll stores the new story, outputs show it.
    proxy.come_back();
    let mut outcome = None;
    for _ in 0..20 {
        let report = poll(&pipeline, &config).await.remove("h").unwrap();
        if matches!(report.outcome, Outcome::Stored { .. }) {
            outcome = Some(report.outcome);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        outcome.is_some(),
        "no poll succeeded once the database was back"
    );
    let (status, body) = get(&app, "/feed.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Story 4"), "{body}");
    let (status, feeds) = get(&app, "/api/feeds").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!feeds.contains("hunter2"), "{feeds}");
}
