//! The binary, as an operator runs it.

use std::process::Command;

use crate::support::{FixtureServer, TestEnv, fixtures_dir};

fn paddock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .env_remove("PADDOCK_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

#[test]
fn check_reports_file_line_and_column() {
    let env = TestEnv::new();
    let path = env.config_path();
    std::fs::write(&path, "[poll]\ninterval = \"15m\"\n\n[[feed]]\nid = \"ttac\"\nurl = \"a.rss\"\ninterval = \"soon\"\n").unwrap();
    let out = paddock(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:7:12: ", path.display());
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("not a duration"), "{stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one sentence, no backtrace: {stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn check_accepts_the_shipped_configs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["config/demo.toml", "feeds.example.toml"] {
        let out = paddock(&["check", "--config", root.join(file).to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    }
}

#[test]
fn a_missing_config_is_one_clear_sentence() {
    let out = paddock(&["check", "--config", "/nonexistent/paddock.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the config file"), "{stderr}");
}

#[tokio::test]
async fn poll_summarises_each_feed_and_exits_zero_when_some_fail() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    std::fs::copy(
        fixtures_dir().join("rdf.xml"),
        env.dir.path().join("local.rdf"),
    )
    .unwrap();
    env.write_config(
        &[
            ("ttac", &server.url("/f/wordpress.rss")),
            ("local", "local.rdf"),
            ("down", &server.url("/status/500")),
        ],
        "",
    );
    let config = env.config_path();
    let config = config.to_str().unwrap().to_string();
    // The binary blocks; run it off the runtime that serves the fixtures.
    let run = move |args: Vec<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["poll".to_string(), "--config".into(), config];
            all.extend(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            paddock(&refs)
        })
    };
    let out = run(vec![]).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ttac") && l.contains("6 new")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("local") && l.contains("3 new")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("down") && l.contains("FAILED http_status")),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 feeds polled: 9 new stories, 1 failed"),
        "{stdout}"
    );

    let out = run(vec!["--feed".into(), "ttac".into()]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ttac") && stdout.contains("not modified"),
        "{stdout}"
    );
    assert!(stdout.contains("1 feeds polled"), "{stdout}");

    let out = run(vec!["--feed".into(), "nope".into()]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no feed with id \"nope\""));
}

#[test]
fn a_store_held_by_another_process_is_one_sentence() {
    let env = TestEnv::new();
    std::fs::copy(
        fixtures_dir().join("rdf.xml"),
        env.dir.path().join("local.rdf"),
    )
    .unwrap();
    let config = env.write_config(&[("local", "local.rdf")], "");
    let holder = paddock::app::pipeline(&config).unwrap();
    let out = paddock(&["poll", "--config", env.config_path().to_str().unwrap()]);
    if crate::support::on_postgres() {
        // A database is shared: another process polls beside the holder.
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another Paddock process"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    drop(holder);
    let out = paddock(&["poll", "--config", env.config_path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn digest_reads_the_store_or_asks_the_daemon() {
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let config = env.write_config(&[("ttac", &server.url("/f/wordpress.rss"))], "");
    let path = env.config_path().to_str().unwrap().to_string();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            paddock(&refs)
        })
    };
    let out = run(vec!["poll".into(), "--config".into(), path.clone()])
        .await
        .unwrap();
    assert!(out.status.success());
    let out = run(vec![
        "digest".into(),
        "--config".into(),
        path.clone(),
        "--since".into(),
        "1h".into(),
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["items"].as_array().unwrap().len(), 6);
    let out = run(vec![
        "digest".into(),
        "--config".into(),
        path.clone(),
        "--since".into(),
        "later".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("since must be"));

    // While the daemon holds the store, digest says so, and --server works.
    let daemon = crate::support::Daemon::start(config).await;
    daemon.wait_for_stories(6).await;
    let out = run(vec!["digest".into(), "--config".into(), path.clone()])
        .await
        .unwrap();
    if crate::support::on_postgres() {
        // A database is shared: digest reads it beside the daemon.
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["items"].as_array().unwrap().len(), 6);
        daemon.stop().await;
        return;
    }
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another Paddock process") && stderr.contains("--server"),
        "{stderr}"
    );
    let out = run(vec![
        "digest".into(),
        "--server".into(),
        daemon.base.clone(),
        "--since".into(),
        "1h".into(),
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["items"].as_array().unwrap().len(), 6);
    let out = run(vec![
        "digest".into(),
        "--server".into(),
        daemon.base.clone(),
        "--group".into(),
        "nope".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no group named"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.stop().await;
}
