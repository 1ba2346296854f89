//! Retention and the self-check on PostgreSQL: the same rules as on sled
//! (see the README's Retention), each batch one transaction under the
//! write lock.

use std::collections::HashMap;

use super::write::Write;
use super::{PgStore, StoreError, body, item_id, nanos};
use crate::model::{ItemId, Timestamp, earlier};
use crate::store::{Pruned, TOMBSTONE_KEEP, Verified, link_hash};
use crate::stories::{self, Leaving};

/// Stories removed per transaction, so one pass never holds the write
/// lock for long.
const BATCH: usize = 500;

pub(super) fn prune(
    store: &PgStore,
    cutoff: Timestamp,
    max_per_feed: usize,
    feeds: &[&str],
    now: Timestamp,
) -> Result<Pruned, StoreError> {
    let mut report = Pruned::default();
    // Ids are read on a connection let go of before each write.
    let old: Vec<ItemId> = (store.rows(
        &store.conn()?,
        "SELECT id FROM stories WHERE seen < $1 ORDER BY seen",
        &[&nanos(cutoff)],
    )?)
    .iter()
    .map(|r| item_id(r, 0))
    .collect::<Result<_, _>>()?;
    for chunk in old.chunks(BATCH) {
        report.old += store.write(|w| remove(w, chunk, now))?;
    }
    for feed in feeds {
        let extra: Vec<ItemId> = (store.rows(
            &store.conn()?,
            "SELECT id FROM story_feeds WHERE feed = $1 ORDER BY sort_ms DESC, id DESC OFFSET $2",
            &[feed, &(max_per_feed.min(i64::MAX as usize) as i64)],
        )?)
        .iter()
        .map(|r| item_id(r, 0))
        .collect::<Result<_, _>>()?;
        for chunk in extra.chunks(BATCH) {
            report.over_limit += store.write(|w| leave_feed(w, feed, chunk, now))?;
        }
    }
    let keep_until = nanos(earlier(now, TOMBSTONE_KEEP));
    let gone_before = nanos(cutoff);
    store.write(|w| {
        report.tombstones_expired =
            w.exec("DELETE FROM tombstones WHERE removed < $1", &[&keep_until])? as usize;
        report.waiting_comments =
            w.exec("DELETE FROM waiting WHERE published < $1", &[&gone_before])? as usize;
        // Comments go with their story, and unjoined ones stored before
        // the cutoff go.
        let records = w.exec(
            "DELETE FROM comments c WHERE (c.item IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = c.item))
                 OR (c.item IS NULL AND c.stored < $1)",
            &[&gone_before],
        )?;
        let entries = w.exec(
            "DELETE FROM stream c WHERE c.item IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = c.item)",
            &[],
        )?;
        report.comments = (records + entries) as usize;
        if report.comments > 0 {
            w.changed();
        }
        Ok(())
    })?;
    Ok(report)
}

/// Removes stories for good, leaving tombstones that keep their links.
fn remove(w: &mut Write<'_>, ids: &[ItemId], now: Timestamp) -> Result<usize, StoreError> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
    let gone = w.rows(
        "DELETE FROM stories WHERE id = ANY($1) RETURNING id, link",
        &[&ids],
    )?;
    if gone.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Vec<u8>> = gone.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect();
    let hashes: Vec<Option<i64>> = (gone.iter())
        .map(|r| r.get::<_, Option<&str>>(1).map(|l| link_hash(l) as i64))
        .collect();
    w.put_tombstones(&ids, &hashes, &vec![nanos(now); ids.len()])?;
    w.changed();
    Ok(gone.len())
}

/// Takes stories off one feed: removed when the feed owns them, else the
/// feed only leaves their `also_in`.
fn leave_feed(
    w: &mut Write<'_>,
    feed: &str,
    ids: &[ItemId],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
    let mut owned = Vec::new();
    let mut stay = crate::store::pending::Pending::default();
    for row in w.rows("SELECT body FROM stories WHERE id = ANY($1)", &[&raw])? {
        match stories::leave(body(&row, 0)?, feed) {
            Leaving::Remove(id) => owned.push(id),
            Leaving::Stay(item) => stay.put_unchanged(*item),
        }
    }
    w.put_stories(stay, now)?;
    remove(w, &owned, now)
}

/// The store's invariants: every story's row agrees with its JSON, its
/// feeds are the ones it lists, no canonical link belongs to two stories.
pub(super) fn verify(store: &PgStore) -> Result<Verified, StoreError> {
    let mut conn = store.conn()?;
    // One snapshot, whatever other instances write meanwhile.
    let client = store.block(async {
        Ok(conn
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?)
    })?;
    let mut report = Verified::default();
    let mut links: HashMap<String, ItemId> = HashMap::new();
    let mut memberships: HashMap<ItemId, Vec<String>> = HashMap::new();
    for row in store.rows(
        &client,
        "SELECT id, feed FROM story_feeds ORDER BY feed",
        &[],
    )? {
        memberships
            .entry(item_id(&row, 0)?)
            .or_default()
            .push(row.get(1));
    }
    let mut after = -1_i64 << 63;
    loop {
        let rows = store.rows(
            &client,
            "SELECT id, seen, sort_ms, feed, link, body FROM stories WHERE seen > $1 ORDER BY seen LIMIT 500",
            &[&after],
        )?;
        for row in &rows {
            after = row.get(1);
            let id = item_id(row, 0)?;
            report.items += 1;
            let item = match body(row, 5) {
                Ok(item) => item,
                Err(e) => {
                    report
                        .problems
                        .push(format!("story {id} does not decode: {e}"));
                    continue;
                }
            };
            let link: Option<String> = row.get(4);
            if item.id != id
                || nanos(item.first_seen) != row.get::<_, i64>(1)
                || item.sort_time().timestamp_millis() != row.get::<_, i64>(2)
                || item.feed != row.get::<_, String>(3)
                || item.link != link
            {
                report
                    .problems
                    .push(format!("story {id}'s row differs from its stored story"));
            }
            let mut listed: Vec<String> = item.feeds().map(String::from).collect();
            listed.sort();
            let mut found = memberships.remove(&id).unwrap_or_default();
            found.sort();
            if listed != found {
                report.problems.push(format!(
                    "story {id}'s feeds differ from the feeds that list it"
                ));
            }
            if let Some(link) = item.link
                && let Some(other) = links.insert(link.clone(), id)
            {
                report
                    .problems
                    .push(format!("stories {other} and {id} share the link {link}"));
            }
        }
        if rows.len() < 500 {
            break;
        }
    }
    for id in memberships.keys() {
        report
            .problems
            .push(format!("a feed lists a story that is not stored ({id})"));
    }
    let orphans = store.row(
        &client,
        "SELECT count(*) FROM comments c WHERE c.item IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = c.item)",
        &[],
    )?;
    report.orphan_comments = orphans.map_or(0, |r| r.get::<_, i64>(0) as usize);
    Ok(report)
}
