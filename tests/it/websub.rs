//! The built-in WebSub hub, with a subscriber written here on 127.0.0.1:
//! subscribe to `/feed.atom`, intent verified by a challenge, a new story
//! polled in pushed within a second or two and signed, a lease that ends
//! stops the pushes, and a callback to 127.0.0.1 refused when private
//! callbacks are not allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::Value;

use crate::support::{Daemon, FixtureServer, TestEnv, client, get_bytes, storage_keys};

#[derive(Default)]
struct Seen {
    /// Verification requests: (path, mode, topic).
    verifications: Vec<(String, String, String)>,
    /// Pushes: (path, signature, content type, body).
    pushes: Vec<(String, Option<String>, String, String)>,
}

type Shared = Arc<Mutex<Seen>>;

/// A subscriber: echoes every challenge, takes every push.
async fn subscriber() -> (String, Shared) {
    let seen: Shared = Arc::default();
    async fn verify(
        State(seen): State<Shared>,
        uri: axum::http::Uri,
        Query(q): Query<HashMap<String, String>>,
    ) -> String {
        let field = |k: &str| q.get(k).cloned().unwrap_or_default();
        (seen.lock().unwrap().verifications).push((
            uri.path().to_string(),
            field("hub.mode"),
            field("hub.topic"),
        ));
        field("hub.challenge")
    }
    async fn push(
        State(seen): State<Shared>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        (seen.lock().unwrap().pushes).push((
            uri.path().to_string(),
            h("x-hub-signature"),
            h("content-type").unwrap_or_default(),
            body,
        ));
        StatusCode::OK
    }
    let app = axum::Router::new()
        .route("/{path}", get(verify).post(push))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn rss(titles: &[&str]) -> String {
    let items: String = titles
        .iter()
        .map(|t| {
            format!(
                "<item><title>{t}</title><link>https://h.example/{}/</link></item>",
                t.replace(' ', "-")
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>H</title><link>https://h.example/</link>{items}</channel></rss>"
    )
}

async fn daemon(server: &FixtureServer, env: &TestEnv, allow_private: bool) -> Daemon {
    std::fs::write(
        env.config_path(),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\n{}\
             [poll]\ninterval = \"1s\"\nmin_interval = \"1s\"\ntimeout = \"2s\"\n\
             [websub]\nhub = \"builtin\"\nallow_private_callbacks = {allow_private}\n\
             [[feed]]\nid = \"h\"\nurl = \"{}\"\n",
            storage_keys(),
            server.url("/dyn/h.rss")
        ),
    )
    .unwrap();
    Daemon::start(paddock::config::Config::load(&env.config_path()).unwrap()).await
}

async fn ask(daemon: &Daemon, fields: &[(&str, &str)]) -> reqwest::StatusCode {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    client()
        .post(daemon.url("websub"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_hub_verifies_pushes_signed_and_stops_at_lease_end() {
    let server = FixtureServer::start().await;
    server.set("h.rss", rss(&["First story"]));
    let env = TestEnv::new();
    let daemon = daemon(&server, &env, true).await;
    daemon.wait_for_stories(1).await;
    let (sub, seen) = subscriber().await;
    let topic = daemon.url("feed.atom");

    // The outputs advertise the hub.
    let resp = client().get(&topic).send().await.unwrap();
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(
        link,
        format!(
            "<{}>; rel=\"hub\", <{topic}>; rel=\"self\"",
            daemon.url("websub")
        )
    );
    let atom = resp.text().await.unwrap();
    assert!(
        atom.contains(&format!("href=\"{}\" rel=\"hub\"", daemon.url("websub")))
            || atom.contains(&format!("rel=\"hub\" href=\"{}\"", daemon.url("websub"))),
        "{atom}"
    );
    let json: Value = serde_json::from_slice(&get_bytes(&daemon.url("feed.json")).await).unwrap();
    assert_eq!(json["hubs"][0]["url"], daemon.url("websub"));

    // Refused at once: a topic that is not an output, no callback.
    let other = format!("{sub}/nope");
    assert_eq!(
        ask(
            &daemon,
            &[
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://elsewhere.example/feed"),
                ("hub.callback", &other)
            ]
        )
        .await,
        400
    );
    assert_eq!(
        ask(&daemon, &[("hub.mode", "subscribe"), ("hub.topic", &topic)]).await,
        400
    );

    // Subscribe two callbacks: one signed with a long lease, one for a second.
    let (long, short) = (format!("{sub}/long"), format!("{sub}/short"));
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", topic.as_str()),
        ("hub.callback", long.as_str()),
        ("hub.secret", "s3cret"),
        ("hub.lease_seconds", "3600"),
    ];
    assert_eq!(ask(&daemon, &fields).await, 202);
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", topic.as_str()),
        ("hub.callback", short.as_str()),
        ("hub.lease_seconds", "1"),
    ];
    assert_eq!(ask(&daemon, &fields).await, 202);
    until("both verifications", || {
        seen.lock().unwrap().verifications.len() == 2
    })
    .await;
    assert!(
        seen.lock()
            .unwrap()
            .verifications
            .iter()
            .all(|(_, mode, t)| mode == "subscribe" && t == &topic)
    );
    let listed: Value =
        serde_json::from_slice(&get_bytes(&daemon.url("api/websub")).await).unwrap();
    assert_eq!(
        listed["subscriptions"].as_array().unwrap().len(),
        2,
        "{listed}"
    );

    // The short lease ends; then a new story is pushed to the long one only.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.set("h.rss", rss(&["First story", "Second story"]));
    let started = std::time::Instant::now();
    until("a push", || !seen.lock().unwrap().pushes.is_empty()).await;
    let pushed_within = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushes = seen.lock().unwrap().pushes.clone();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let (path, signature, content_type, body) = &pushes[0];
    assert_eq!(path, "/long");
    assert!(body.contains("Second story"), "{body}");
    assert!(
        content_type.starts_with("application/atom+xml"),
        "{content_type}"
    );
    assert_eq!(
        signature.as_deref(),
        Some(
            format!(
                "sha256={}",
                paddock::websub::hub::sign(b"s3cret", body.as_bytes())
            )
            .as_str()
        )
    );
    // The poll interval is 1 s; the push follows the stored change at once.
    assert!(pushed_within < Duration::from_secs(4), "{pushed_within:?}");
    let listed: Value =
        serde_json::from_slice(&get_bytes(&daemon.url("api/websub")).await).unwrap();
    assert_eq!(
        listed["subscriptions"].as_array().unwrap().len(),
        1,
        "the ended lease is gone: {listed}"
    );

    // Unsubscribe: verified, then nothing more is pushed.
    let fields = [
        ("hub.mode", "unsubscribe"),
        ("hub.topic", topic.as_str()),
        ("hub.callback", long.as_str()),
    ];
    assert_eq!(ask(&daemon, &fields).await, 202);
    until("the unsubscribe verification", || {
        seen.lock().unwrap().verifications.len() == 3
    })
    .await;
    let mut left = usize::MAX;
    for _ in 0..100 {
        let listed: Value =
            serde_json::from_slice(&get_bytes(&daemon.url("api/websub")).await).unwrap();
        left = listed["subscriptions"].as_array().unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the unsubscribed callback is gone");
    server.set(
        "h.rss",
        rss(&["First story", "Second story", "Third story"]),
    );
    daemon.wait_for_stories(3).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        seen.lock().unwrap().pushes.len(),
        1,
        "nothing pushed after unsubscribing"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_to_loopback_is_refused_unless_private_callbacks_are_allowed() {
    let server = FixtureServer::start().await;
    server.set("h.rss", rss(&["First story"]));
    let env = TestEnv::new();
    let daemon = daemon(&server, &env, false).await;
    daemon.wait_for_stories(1).await;
    let (sub, seen) = subscriber().await;
    let topic = daemon.url("feed.atom");
    let callback = format!("{sub}/cb");
    let fields = [
        ("hub.mode", "subscribe"),
        ("hub.topic", topic.as_str()),
        ("hub.callback", callback.as_str()),
    ];
    assert_eq!(
        ask(&daemon, &fields).await,
        202,
        "verified later, as the spec has it"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        seen.lock().unwrap().verifications.is_empty(),
        "127.0.0.1 was never called"
    );
    let listed: Value =
        serde_json::from_slice(&get_bytes(&daemon.url("api/websub")).await).unwrap();
    assert!(
        listed["subscriptions"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    let metrics = String::from_utf8(get_bytes(&daemon.url("metrics")).await).unwrap();
    assert!(
        metrics.contains(
            "paddock_websub_hub_events_total{event=\"verification\",result=\"failed\"} 1"
        ),
        "{metrics}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hub_is_pinged_when_the_outputs_change() {
    let pings: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hub",
            axum::routing::post(
                |State(p): State<Arc<Mutex<Vec<HashMap<String, String>>>>>,
                 axum::Form(f): axum::Form<HashMap<String, String>>| async move {
                    p.lock().unwrap().push(f);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(pings.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub = format!("http://{}/hub", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = FixtureServer::start().await;
    server.set("h.rss", rss(&["First story"]));
    let env = TestEnv::new();
    std::fs::write(
        env.config_path(),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\n{}[poll]\ntimeout = \"2s\"\n\
             [websub]\nhub = \"{hub}\"\n[[feed]]\nid = \"h\"\nurl = \"{}\"\ngroups = [\"news\"]\n",
            storage_keys(),
            server.url("/dyn/h.rss")
        ),
    )
    .unwrap();
    let daemon = Daemon::start(paddock::config::Config::load(&env.config_path()).unwrap()).await;
    daemon.wait_for_stories(1).await;
    until("the pings", || pings.lock().unwrap().len() >= 6).await;
    let pinged: Vec<String> = pings
        .lock()
        .unwrap()
        .iter()
        .map(|f| f["hub.url"].clone())
        .collect();
    assert!(
        pings
            .lock()
            .unwrap()
            .iter()
            .all(|f| f["hub.mode"] == "publish")
    );
    for path in [
        "feed.atom",
        "feed.rss",
        "feed.json",
        "groups/news/feed.atom",
    ] {
        assert!(
            pinged.contains(&daemon.url(path)),
            "{path} not in {pinged:?}"
        );
    }
    let json: Value = serde_json::from_slice(&get_bytes(&daemon.url("feed.json")).await).unwrap();
    assert_eq!(json["hubs"][0]["url"], hub, "the outputs name that hub");
    let (status, _) = (ask(&daemon, &[("hub.mode", "subscribe")]).await, ());
    assert_eq!(status, 404, "and are not a hub themselves");
    daemon.stop().await;
}

/// What the hub written here was asked: (mode, topic, callback, secret).
type Asked = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A hub that records subscribe and unsubscribe requests; the test plays
/// its other part (verifying, pushing) itself.
async fn test_hub() -> (String, Asked) {
    let asked: Asked = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let link = format!("<{base}/hub>; rel=\"hub\", <https://k.example/feed>; rel=\"self\"");
    let app = axum::Router::new()
        .route(
            "/hub",
            axum::routing::post(|State(a): State<Asked>, axum::Form(f): axum::Form<HashMap<String, String>>| async move {
                a.lock().unwrap().push(f);
                StatusCode::ACCEPTED
            }),
        )
        // A feed that names its hub in a `Link` header only.
        .route(
            "/k.rss",
            get(move || async move { ([("link", link)], rss(&["K story"])) }),
        )
        .with_state(asked.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_that_name_a_hub_are_subscribed_and_pushed() {
    let (hub_base, asked) = test_hub().await;
    let hub = format!("{hub_base}/hub");
    let server = FixtureServer::start().await;
    server.set(
        "h.rss",
        format!(
            "<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel><title>H</title>\
             <link>https://h.example/</link><atom:link rel=\"hub\" href=\"{hub}\"/>\
             <atom:link rel=\"self\" href=\"https://h.example/feed\"/>\
             <item><title>First story</title><link>https://h.example/first/</link></item></channel></rss>"
        ),
    );
    let var = "PADDOCK_TEST_ADMIN_TOKEN_WEBSUB";
    unsafe { std::env::set_var(var, "websub-token") };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let env = TestEnv::new();
    let text = |with_h: bool| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"{base}\"\nadmin_token_env = \"{var}\"\n\
             [storage]\n{}[poll]\ntimeout = \"2s\"\ninterval = \"1h\"\nmax_body_bytes = 65536\n\
             [websub]\ncallback_base = \"{base}\"\nallow_private_callbacks = true\n\
             {}[[feed]]\nid = \"k\"\nurl = \"{hub_base}/k.rss\"\n",
            storage_keys(),
            match with_h {
                true => format!(
                    "[[feed]]\nid = \"h\"\nurl = \"{}\"\n",
                    server.url("/dyn/h.rss")
                ),
                false => String::new(),
            }
        )
    };
    std::fs::write(env.config_path(), text(true)).unwrap();
    let config = paddock::config::Config::load(&env.config_path()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(paddock::app::run(config, listener, shutdown.clone()));

    // Both feeds are discovered, from the document and from the header.
    until("two subscribe requests", || {
        asked.lock().unwrap().len() >= 2
    })
    .await;
    let requests = asked.lock().unwrap().clone();
    let by_topic = |t: &str| requests.iter().find(|r| r["hub.topic"] == t).cloned();
    let h = by_topic("https://h.example/feed").expect("h is subscribed");
    assert!(
        by_topic("https://k.example/feed").is_some(),
        "k is subscribed from its Link header: {requests:?}"
    );
    assert_eq!(h["hub.mode"], "subscribe");
    let callback = h["hub.callback"].clone();
    assert!(
        callback.starts_with(&format!("{base}websub/callback/")),
        "{callback}"
    );
    let secret = h["hub.secret"].clone();
    assert!(secret.len() >= 32);

    // Verification: a wrong topic is 404; the right one is echoed.
    let verify = |topic: &str, lease: &str| {
        let url = format!(
            "{callback}?hub.mode=subscribe&hub.topic={}&hub.challenge=c-123&hub.lease_seconds={lease}",
            urlencode(topic)
        );
        async move { client().get(url).send().await.unwrap() }
    };
    assert_eq!(
        verify("https://elsewhere.example/", "3").await.status(),
        404
    );
    let ok = verify("https://h.example/feed", "3").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "c-123");
    let hits = server.hits("/dyn/h.rss");

    // A signed push is stored and served at once, with no poll.
    let push = |body: String, signature: Option<String>| {
        let mut r = client()
            .post(&callback)
            .header("content-type", "application/rss+xml")
            .body(body);
        if let Some(s) = signature {
            r = r.header("X-Hub-Signature", s);
        }
        async move { r.send().await.unwrap().status() }
    };
    let pushed = rss(&["First story", "Pushed story"]);
    let sig = format!(
        "sha256={}",
        paddock::websub::hub::sign(secret.as_bytes(), pushed.as_bytes())
    );
    assert_eq!(push(pushed, Some(sig)).await, 202);
    let atom = client()
        .get(format!("{base}feed.atom"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(atom.contains("Pushed story"), "{atom}");
    // Unsigned, or signed with another secret: answered 2xx, not stored.
    assert_eq!(push(rss(&["Unsigned story"]), None).await, 202);
    let forged = rss(&["Forged story"]);
    let bad = format!(
        "sha256={}",
        paddock::websub::hub::sign(b"not the secret", forged.as_bytes())
    );
    assert_eq!(push(forged, Some(bad)).await, 202);
    let atom = client()
        .get(format!("{base}feed.atom"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!atom.contains("Unsigned story") && !atom.contains("Forged story"));
    assert_eq!(server.hits("/dyn/h.rss"), hits, "no poll in between");
    // A body over [poll].max_body_bytes is refused; a callback this server
    // never handed out is gone, its body unread.
    let huge = rss(&["x".repeat(70_000).as_str()]);
    let sig = format!(
        "sha256={}",
        paddock::websub::hub::sign(secret.as_bytes(), huge.as_bytes())
    );
    assert_eq!(push(huge, Some(sig)).await, 413);
    let stranger = client()
        .post(format!("{base}websub/callback/0123456789abcdef"))
        .body("<rss/>")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(stranger, 410);
    let listed: Value =
        serde_json::from_slice(&get_bytes(&format!("{base}api/websub")).await).unwrap();
    let h_state = (listed["subscribed"].as_array().unwrap().iter())
        .find(|s| s["feed"] == "h")
        .cloned()
        .unwrap();
    assert_eq!(h_state["state"], "active", "{listed}");

    // Renewal before the 3-second lease ends: a new callback.
    until("a renewal", || {
        asked
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["hub.topic"] == "https://h.example/feed")
            .count()
            >= 2
    })
    .await;
    let renewed = (asked.lock().unwrap().iter())
        .rfind(|r| r["hub.topic"] == "https://h.example/feed")
        .cloned()
        .unwrap();
    assert_ne!(
        renewed["hub.callback"], callback,
        "a new callback at each renewal"
    );

    // The feed leaves the config: it is unsubscribed.
    std::fs::write(env.config_path(), text(false)).unwrap();
    let reload = client()
        .post(format!("{base}api/reload"))
        .header("Authorization", "Bearer websub-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);
    until("an unsubscribe", || {
        asked
            .lock()
            .unwrap()
            .iter()
            .any(|r| r["hub.mode"] == "unsubscribe" && r["hub.topic"] == "https://h.example/feed")
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
