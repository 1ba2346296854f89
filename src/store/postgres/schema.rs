//! The PostgreSQL schema, versioned and created at open inside one
//! transaction under an advisory lock, so instances starting together
//! neither race nor see half a schema.
//!
//! Times are integers: `seen` (a story's `first_seen`) in nanoseconds,
//! since stamps are unique to the nanosecond and a store copied from sled
//! keeps them; sort and stream times in milliseconds, as the sled keys
//! hold them. Stories, feed states, validators and comments are the same
//! JSON as on sled. Long text (links, URLs) is never in a B-tree: links
//! have hash indexes, URLs are keyed by a hash, and tombstones keep the
//! link hash sled keeps (`store::link_hash`), so a copied store keeps them.

use tokio_postgres::GenericClient;

use crate::store::StoreError;

/// Bumped whenever a table or a value's meaning changes.
pub const VERSION: i64 = 2;

/// The advisory lock that serializes schema changes.
const MIGRATION_LOCK: i64 = 0x7061_6464_6f63_6b01;

const V1: &str = "
CREATE TABLE stories (
    id BYTEA PRIMARY KEY,
    seen BIGINT NOT NULL UNIQUE,
    sort_ms BIGINT NOT NULL,
    feed TEXT NOT NULL,
    link TEXT,
    body BYTEA NOT NULL
);
CREATE INDEX stories_newest ON stories (sort_ms DESC, id DESC);
CREATE INDEX stories_link ON stories USING hash (link);
CREATE TABLE story_feeds (
    feed TEXT NOT NULL,
    sort_ms BIGINT NOT NULL,
    id BYTEA NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    PRIMARY KEY (feed, sort_ms, id)
);
CREATE INDEX story_feeds_id ON story_feeds (id);
CREATE TABLE tombstones (
    id BYTEA PRIMARY KEY,
    link_hash BIGINT,
    removed BIGINT NOT NULL
);
CREATE INDEX tombstones_link ON tombstones (link_hash);
CREATE TABLE feed_states (
    feed TEXT PRIMARY KEY,
    state BYTEA NOT NULL
);
CREATE TABLE comment_validators (
    url_key BYTEA PRIMARY KEY,
    url TEXT NOT NULL,
    value BYTEA NOT NULL
);
CREATE TABLE comments (
    hash BYTEA PRIMARY KEY,
    item BYTEA,
    time_ms BIGINT NOT NULL,
    stored BIGINT NOT NULL
);
CREATE INDEX comments_item ON comments (item);
CREATE TABLE stream (
    hash BYTEA PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    item BYTEA,
    entry BYTEA NOT NULL
);
CREATE INDEX stream_newest ON stream (time_ms DESC, hash DESC);
CREATE TABLE waiting (
    link_key BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    published BIGINT,
    comment BYTEA NOT NULL,
    PRIMARY KEY (link_key, hash)
);
CREATE TABLE feed_leases (
    feed TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE TABLE host_slots (
    host TEXT NOT NULL,
    slot INT NOT NULL,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (host, slot)
);
INSERT INTO paddock_meta (key, value)
    VALUES ('generation', 1), ('last_stamp', 0), ('floor', 0);
";

/// Version 2: side records (WebSub subscriptions).
const V2: &str = "
CREATE TABLE side_records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (kind, key)
);
";

/// Creates the schema in an empty database, or checks the version of the
/// one there. `shown` names the database in errors (no password).
pub async fn migrate(
    client: &mut deadpool_postgres::Client,
    shown: &str,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS paddock_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    )
    .await?;
    let found = tx
        .query_opt("SELECT value FROM paddock_meta WHERE key = 'schema'", &[])
        .await?
        .map(|row| row.get::<_, i64>(0));
    match found {
        None => {
            tx.batch_execute(V1).await?;
            tx.batch_execute(V2).await?;
            tx.execute(
                "INSERT INTO paddock_meta (key, value) VALUES ('schema', $1)",
                &[&VERSION],
            )
            .await?;
        }
        Some(1) => {
            tx.batch_execute(V2).await?;
            tx.execute(
                "UPDATE paddock_meta SET value = $1 WHERE key = 'schema'",
                &[&VERSION],
            )
            .await?;
        }
        Some(VERSION) => {}
        Some(other) => {
            return Err(StoreError::Schema {
                path: shown.to_string(),
                found: other.to_string(),
                expected: VERSION as u32,
            });
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the database holds no stories yet (for `store copy`).
pub async fn is_empty(client: &impl GenericClient) -> Result<bool, StoreError> {
    let row = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM stories)", &[])
        .await?;
    Ok(row.get(0))
}
