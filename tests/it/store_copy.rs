//! Moving in: `paddock store copy --to postgres://...` copies a sled store
//! into an empty database, ids, `first_seen`, comments and feed states
//! kept, and PostgreSQL then serves what sled served.

use std::process::Command;

use crate::support::{FixtureServer, TestEnv};

fn paddock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .env_remove("PADDOCK_CONFIG")
        .output()
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_moves_into_postgresql_whole() {
    let Some(database) = paddock::store::scratch_database("store_copy") else {
        return;
    };
    let server = FixtureServer::start().await;
    let env = TestEnv::new();
    let feeds = format!(
        "[[feed]]\nid = \"ttac\"\nurl = \"{}\"\ncomments_url = \"{}\"\n\
         [[feed]]\nid = \"jalopnik\"\nurl = \"{}\"\n",
        server.url("/f/wordpress.rss"),
        server.url("/f/site-comments.rss"),
        server.url("/f/atom.xml"),
    );
    let sled_config = env.dir.path().join("sled.toml");
    std::fs::write(&sled_config, format!("[storage]\npath = \"data\"\n{feeds}")).unwrap();
    let config = paddock::config::Config::load(&sled_config).unwrap();
    {
        let pipeline = paddock::app::pipeline(&config).unwrap();
        pipeline.poll_all(&config.feeds, |_| {}).await;
        // One story removed by retention: its tombstone must move too.
        let store = pipeline.store.clone();
        tokio::task::spawn_blocking(move || {
            store.prune(
                chrono::DateTime::UNIX_EPOCH,
                5,
                &["ttac"],
                chrono::Utc::now(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    }
    let sled = paddock::store::open(&config.storage.path, 1 << 20).unwrap();
    let before = sled.latest(1000, &|_| true).unwrap();
    let comments_before = sled.recent_comments(100, &|_| true).unwrap();
    assert!(before.len() > 5 && !comments_before.is_empty());
    drop(sled);

    let (path, to) = (sled_config.to_str().unwrap().to_string(), database.clone());
    let out = tokio::task::spawn_blocking(move || {
        paddock(&["store", "copy", "--config", &path, "--to", &to])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("copied {} stories, 1 tombstones", before.len())),
        "{stdout}"
    );

    let pg_config = env.dir.path().join("pg.toml");
    std::fs::write(
        &pg_config,
        format!("[storage]\nurl = \"{database}\"\n{feeds}"),
    )
    .unwrap();
    let pg_cfg = paddock::config::Config::load(&pg_config).unwrap();
    let pg = tokio::task::spawn_blocking(move || {
        let pg = paddock::store::open_configured(&pg_cfg.storage).unwrap();
        let after = pg.latest(1000, &|_| true).unwrap();
        let comments = pg.recent_comments(100, &|_| true).unwrap();
        let verified = pg.verify().unwrap();
        (pg, after, comments, verified)
    })
    .await
    .unwrap();
    let (pg, after, comments_after, verified) = pg;
    assert_eq!(after, before, "every story, ids and first_seen kept");
    assert_eq!(comments_after, comments_before);
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);

    // The tombstone holds: the pruned story, polled again, stays pruned.
    let pipeline =
        paddock::app::pipeline(&paddock::config::Config::load(&pg_config).unwrap()).unwrap();
    let reports = pipeline.poll_all(&config.feeds, |_| {}).await;
    let count = tokio::task::spawn_blocking(move || pg.latest(1000, &|_| true).unwrap().len())
        .await
        .unwrap();
    assert_eq!(count, before.len(), "nothing came back: {reports:?}");

    // A second copy into a database with stories is refused.
    let path = sled_config.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        paddock(&["store", "copy", "--config", &path, "--to", &database])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds stories"), "{stderr}");
}
