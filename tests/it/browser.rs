//! The river page in a real browser: headless Chromium driven over
//! WebDriver by chromedriver. `.ci/run` installs Debian's `chromium` and
//! `chromium-driver`; without them this test fails under CI and says it
//! was skipped otherwise.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::support::{Daemon, FixtureServer, TestEnv, client, have};

const INFINITI_COMMENTS: &str =
    "/2012/04/infiniti-production-to-leave-japan-north-america-china-possible-new-sites/feed/";

struct Driver {
    child: Child,
    base: String,
    session: String,
}

impl Driver {
    async fn start(profile: &std::path::Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,1600", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut driver = Driver {
            child,
            base,
            session: String::new(),
        };
        let created = driver.call("POST", "/session", Some(caps)).await;
        driver.session = created["value"]["sessionId"]
            .as_str()
            .expect("a session")
            .to_string();
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let http = client();
        let req = match method {
            "POST" => http.post(url).json_body(body.unwrap_or(json!({}))),
            "DELETE" => http.delete(url),
            _ => http.get(url),
        };
        let resp = req.send().await.unwrap();
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
    }

    async fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn script(&self, script: &str) -> Value {
        let r = self
            .session(
                "POST",
                "/execute/sync",
                Some(json!({"script": script, "args": []})),
            )
            .await;
        assert!(
            r["value"].get("error").is_none(),
            "script failed (an alert open?): {r}"
        );
        r["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait JsonBody {
    fn json_body(self, v: Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(v.to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_river_in_a_real_browser() {
    if !have("chromedriver", &["--version"]) || !have("chromium", &["--version"]) {
        return;
    }
    let server = FixtureServer::start().await;
    server.alias(INFINITI_COMMENTS, "post-comments.rss");
    let env = TestEnv::new();
    let config = env.write_config_poll(
        &[("xss", &server.url("/f/xss.rss")), ("wire", &server.url("/f/syndicated.rss"))],
        "item_comments_max_age = \"10000d\"\n",
        &format!(
            "[[feed]]\nid = \"ttac\"\nurl = \"{}\"\ntitle = \"The Truth About Cars\"\ncomments_url = \"{}\"\nitem_comments = true\ngroups = [\"news\", \"opinion\"]\n",
            server.url("/f/wordpress.rss"),
            server.url("/f/site-comments.rss")
        ),
    );
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(10).await;
    // Comments land just after their feed's stories.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let profile = env.dir.path().join("chromium-profile");
    let driver = Driver::start(&profile).await;
    let nav = driver
        .session("POST", "/url", Some(json!({"url": daemon.base})))
        .await;
    assert!(nav["value"].is_null(), "navigation failed: {nav}");

    let text = driver.script("return document.body.innerText").await;
    let text = text.as_str().unwrap();
    for seen in [
        "Infiniti Production To Leave Japan; North America, China Possible New Sites",
        "4 comments",
        "RECENT COMMENTS",
        "Lou_BC: I’ve never used the jack that comes with a vehicle.",
        "sirwired:",
        "The Truth About Cars",
        "Recall Roundup",
    ] {
        assert!(
            text.contains(seen),
            "the page does not show {seen:?}:\n{text}"
        );
    }
    // The Infiniti story shows its own recent comments under it.
    let story = driver
        .script("return [...document.querySelectorAll('article.story')].find(a => a.innerText.includes('Infiniti Production')).innerText")
        .await;
    assert!(story.as_str().unwrap().contains("Lou_BC"), "{story}");

    // Hostile markup from the XSS fixture is inert: nothing ran, nothing
    // that could run is on the page.
    let counts = driver
        .script(
            "return {scripts: document.scripts.length, \
             handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length, \
             js_links: document.querySelectorAll('a[href^=\"javascript:\" i]').length, \
             frames: document.querySelectorAll('iframe, object, embed').length, \
             images: document.images.length}",
        )
        .await;
    assert_eq!(
        counts,
        json!({"scripts": 0, "handlers": 0, "js_links": 0, "frames": 0, "images": 0})
    );
    let alert = driver.session("GET", "/alert/text", None).await;
    assert_eq!(
        alert["value"]["error"], "no such alert",
        "an alert fired: {alert}"
    );
    // Markup in titles is removed before storing: what is left is text.
    assert!(text.contains("Recall Roundup: Airbags & Brakes"), "{text}");
    assert!(text.contains("Review: The Sedan Is Bold"), "{text}");

    // At desktop width, and (below) as narrow as a phone: no horizontal scroll.
    let width = driver
        .script("return [document.documentElement.scrollWidth, window.innerWidth]")
        .await;
    assert!(
        width[0].as_i64() <= width[1].as_i64(),
        "no horizontal scroll: {width}"
    );

    let shot = driver.session("GET", "/screenshot", None).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["value"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("river.png"), &png).unwrap();
    eprintln!("screenshot: target/screenshots/river.png");

    driver
        .session(
            "POST",
            "/window/rect",
            Some(json!({"width": 390, "height": 844})),
        )
        .await;
    let narrow = driver
        .script("return [document.documentElement.scrollWidth, window.innerWidth, getComputedStyle(document.querySelector('.layout')).gridTemplateColumns.split(' ').length]")
        .await;
    assert!(
        narrow[0].as_i64() <= narrow[1].as_i64(),
        "no horizontal scroll on a phone: {narrow}"
    );
    assert_eq!(narrow[2], 1, "one column on a phone: {narrow}");

    // A group tab.
    driver
        .session(
            "POST",
            "/url",
            Some(json!({"url": format!("{}?group=opinion", daemon.base)})),
        )
        .await;
    let text = driver.script("return document.body.innerText").await;
    assert!(
        text.as_str().unwrap().contains("Infiniti Production")
            && !text.as_str().unwrap().contains("Recall Roundup")
    );
    driver.session("DELETE", "", None).await;
    daemon.stop().await;
}

/// A story whose count grows while the daemon polls every second.
fn growing(count: u32) -> String {
    format!(
        "<rss version=\"2.0\" xmlns:slash=\"http://purl.org/rss/1.0/modules/slash/\"><channel><title>Heat</title>\
         <link>https://heat.example/</link>\
         <item><title>The Lightning debate</title><link>https://heat.example/lightning/</link>\
         <guid>https://heat.example/lightning/</guid><slash:comments>{count}</slash:comments></item>\
         <item><title>A quiet story</title><link>https://heat.example/quiet/</link>\
         <guid>https://heat.example/quiet/</guid><slash:comments>3</slash:comments></item>\
         </channel></rss>"
    )
}

#[tokio::test]
async fn the_rising_view_in_a_real_browser() {
    if !have("chromedriver", &["--version"]) || !have("chromium", &["--version"]) {
        return;
    }
    let server = FixtureServer::start().await;
    server.set("heat.rss", growing(5));
    let env = TestEnv::new();
    std::fs::write(
        env.config_path(),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\n{}[poll]\ninterval = \"1s\"\nmin_interval = \"1s\"\ntimeout = \"2s\"\n\
             [[feed]]\nid = \"heat\"\nurl = \"{}\"\n",
            crate::support::storage_keys(),
            server.url("/dyn/heat.rss")
        ),
    )
    .unwrap();
    let config = paddock::config::Config::load(&env.config_path()).unwrap();
    let daemon = Daemon::start(config).await;
    daemon.wait_for_stories(2).await;
    server.set("heat.rss", growing(17));
    let mut rising = Value::Null;
    for _ in 0..100 {
        let body = crate::support::get_bytes(&daemon.url("rising.json")).await;
        rising = serde_json::from_slice(&body).unwrap();
        if rising["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rising["items"][0]["_paddock"]["comments_gained"], 12,
        "{rising}"
    );

    let profile = env.dir.path().join("chromium-profile");
    let driver = Driver::start(&profile).await;
    let nav = driver
        .session(
            "POST",
            "/url",
            Some(json!({"url": format!("{}?view=rising", daemon.base)})),
        )
        .await;
    assert!(nav["value"].is_null(), "navigation failed: {nav}");
    let text = driver.script("return document.body.innerText").await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("The Lightning debate") && text.contains("17 comments, +12 today"),
        "{text}"
    );
    assert!(!text.contains("A quiet story"), "{text}");
    let seen = driver
        .script("return [document.querySelectorAll('svg.spark polyline').length, document.querySelector('nav.tabs a[aria-current=page]').innerText, document.querySelectorAll('script').length]")
        .await;
    assert_eq!(seen, json!([1, "Rising", 0]), "{seen}");
    let alert = driver.session("GET", "/alert/text", None).await;
    assert!(alert["value"]["error"] == "no such alert", "{alert}");
    driver.session("DELETE", "", None).await;
    daemon.stop().await;
}
