//! Everything the store holds, record by record, for `paddock store copy`.

use super::codec::decode_item;
use super::comment_records::decode_record;
use super::{SledStore, keys};
use crate::model::{Comment, RecentComment};
use crate::store::{Exported, StoreError};

/// A waiting comment as stored under `o:`.
#[derive(serde::Deserialize)]
struct Waiting {
    comment: Comment,
    hash: [u8; 16],
}

impl SledStore {
    /// Hands every record to `each`: stories, tombstones, feed states,
    /// comment feeds' validators, comment records, the recent-comments
    /// stream and comments waiting for their story. Holds the writer lock
    /// throughout, so the copy is of one moment.
    pub fn export(
        &self,
        each: &mut dyn FnMut(Exported) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let _writer = self.write_lock();
        for entry in self.tree.scan_prefix(keys::ITEM) {
            each(Exported::Story(Box::new(decode_item(&entry?.1)?)))?;
        }
        for entry in self.tree.scan_prefix(keys::PRUNED) {
            let (key, value) = entry?;
            let (Some(id), Some(removed)) = (keys::id_suffix(&key), keys::tombstone_time(&value))
            else {
                continue;
            };
            let link_hash = keys::tombstone_link(&value);
            each(Exported::Tombstone {
                id,
                link_hash,
                removed,
            })?;
        }
        for entry in self.tree.scan_prefix(keys::STATE) {
            let (key, value) = entry?;
            let feed = String::from_utf8_lossy(&key[keys::STATE.len()..]).into_owned();
            each(Exported::State(feed, serde_json::from_slice(&value)?))?;
        }
        for entry in self.tree.scan_prefix(keys::VALIDATORS) {
            let (key, value) = entry?;
            let url = String::from_utf8_lossy(&key[keys::VALIDATORS.len()..]).into_owned();
            each(Exported::Validators(url, serde_json::from_slice(&value)?))?;
        }
        for entry in self.tree.scan_prefix(keys::COMMENT) {
            let (key, value) = entry?;
            let Some(hash) = hash_suffix(&key) else {
                continue;
            };
            let (item, time, stored) = decode_record(&value);
            let Some(time) = time else { continue };
            let stored = stored.unwrap_or(time);
            each(Exported::Comment {
                hash,
                item,
                time,
                stored,
            })?;
        }
        for entry in self.tree.scan_prefix(keys::STREAM) {
            let (key, value) = entry?;
            let Some(hash) = hash_suffix(&key) else {
                continue;
            };
            let Some(time) = key
                .get(keys::STREAM.len()..keys::STREAM.len() + 8)
                .and_then(keys::decode_time)
            else {
                continue;
            };
            let entry: RecentComment = serde_json::from_slice(&value)?;
            each(Exported::Stream { hash, time, entry })?;
        }
        for entry in self.tree.scan_prefix(keys::ORPHAN) {
            let (key, value) = entry?;
            let Some(link) = keys::orphan_link(&key) else {
                continue;
            };
            let waiting: Waiting = serde_json::from_slice(&value)?;
            each(Exported::Waiting {
                link,
                hash: waiting.hash,
                comment: waiting.comment,
            })?;
        }
        Ok(())
    }
}

/// The 16-byte comment hash that ends a `k:` or `c:` key.
fn hash_suffix(key: &[u8]) -> Option<[u8; 16]> {
    key.get(key.len().checked_sub(16)?..)?.try_into().ok()
}
