//! Opening a schema 1 store. Schema 1 keyed stories by id and kept four
//! index keys per story (`t:`, `f:`, `n:`, `l:`); schema 2 keys stories by
//! `first_seen`, keeps head groups (`h:`) and builds the indexes in memory.
//! Every step can run again, so a crash part-way through only means it
//! runs again at the next open.

use std::collections::{HashMap, HashSet};

use super::codec::{decode_item, encode_item, story_key};
use super::index::{Head, encode_group, link_hash};
use super::{SCHEMA_VERSION, StoreError, keys};
use crate::model::ItemId;

/// Set once every stored story's HTML has been sanitized and bounded as
/// ingest now does it (`normalize::tidy_stored`). A store written before
/// that is cleaned at its first open, once; a new store is born clean.
pub(super) const CLEAN: &[u8] = b"m:clean";

/// Cleans every stored story unless the store is marked clean, then marks
/// it. Heads do not change (links and dates are left alone), and a crash
/// part-way through only means the pass runs again.
pub(super) fn clean_stories(tree: &sled::Tree) -> Result<usize, StoreError> {
    if tree.get(CLEAN)?.is_some() {
        return Ok(0);
    }
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for entry in tree.scan_prefix(keys::ITEM) {
        let (key, value) = entry?;
        let mut item = decode_item(&value)?;
        crate::normalize::tidy_stored(&mut item);
        batch.insert(key, encode_item(&item)?);
        n += 1;
        if n % BATCH == 0 {
            tree.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    batch.insert(CLEAN, b"1".as_slice());
    tree.apply_batch(batch)?;
    Ok(n)
}

/// Values written or keys removed per atomic batch.
const BATCH: usize = 1000;
/// A schema 1 story key: `i:` and a 16-byte id (schema 2's hold 8 bytes).
const V1_ITEM_KEY: usize = 2 + 16;

/// Moves every story to its schema 2 key and writes its head, gives
/// tombstones their link hash, then sets the schema to 2 (the last write,
/// in the last batch).
pub(super) fn from_v1(tree: &sled::Tree) -> Result<(), StoreError> {
    let mut old = Vec::new();
    // Stories an interrupted migration already moved keep their keys.
    let mut taken = HashSet::new();
    for key in tree.scan_prefix(keys::ITEM).keys() {
        let key = key?;
        match key.len() {
            V1_ITEM_KEY => old.push(key),
            _ => {
                taken.insert(key.to_vec());
            }
        }
    }
    let mut batch = sled::Batch::default();
    for (n, key) in old.into_iter().enumerate() {
        let Some(value) = tree.get(&key)? else {
            continue;
        };
        let mut item = decode_item(&value)?;
        // Schema 1 did not make first_seen unique everywhere: a story that
        // shares one moves a nanosecond later.
        let mut moved = false;
        while taken.contains(&story_key(&item)) {
            item.first_seen += chrono::Duration::nanoseconds(1);
            moved = true;
        }
        let value = match moved {
            true => encode_item(&item)?,
            false => value.to_vec(),
        };
        taken.insert(story_key(&item));
        batch.insert(story_key(&item), value);
        batch.remove(key);
        if (n + 1) % BATCH == 0 {
            tree.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    tree.apply_batch(std::mem::take(&mut batch))?;

    let mut groups: HashMap<Vec<u8>, Vec<Head>> = HashMap::new();
    for value in tree.scan_prefix(keys::ITEM).values() {
        let head = Head::of(&decode_item(&value?)?);
        groups.entry(head.group_key()).or_default().push(head);
    }
    for (n, (key, heads)) in groups.iter().enumerate() {
        batch.insert(key.as_slice(), encode_group(heads)?);
        if (n + 1) % BATCH == 0 {
            tree.apply_batch(std::mem::take(&mut batch))?;
        }
    }
    // A pruned story's link was the `l:` key that still pointed at it.
    for entry in tree.scan_prefix(keys::V1_LINK) {
        let (key, id) = entry?;
        let Ok(id) = <[u8; 16]>::try_from(id.as_ref()) else {
            continue;
        };
        let pruned = keys::pruned(&ItemId(id));
        if let Some(value) = tree.get(&pruned)?
            && value.len() == 8
        {
            let link = String::from_utf8_lossy(&key[keys::V1_LINK.len()..]);
            let hash = link_hash(&link).to_be_bytes();
            batch.insert(pruned, [&value[..], &hash[..]].concat());
        }
    }
    batch.insert(keys::SCHEMA, SCHEMA_VERSION.to_string().as_bytes());
    tree.apply_batch(batch)?;
    Ok(())
}

/// Removes what is left of schema 1's index keys. Cheap when there are
/// none, so it runs at every open and finishes an interrupted migration.
pub(super) fn drop_v1_indexes(tree: &sled::Tree) -> Result<(), StoreError> {
    for prefix in keys::V1_INDEXES {
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for key in tree.scan_prefix(prefix).keys().take(BATCH) {
                batch.remove(key?);
                n += 1;
            }
            if n == 0 {
                break;
            }
            tree.apply_batch(batch)?;
        }
    }
    Ok(())
}
