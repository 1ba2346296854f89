//! How values are written: stories as a tag, their `first_seen`, then
//! LZ4-compressed JSON; everything else as JSON.

use serde::Serialize;

use super::{index, keys};
use crate::model::{Item, Timestamp};
use crate::store::StoreError;

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

/// Marks an `i:` value as `first_seen` then LZ4-compressed JSON. Plain
/// JSON (which starts with `{`) is still read, so stores written before
/// compression open as they are.
pub(super) const LZ4: u8 = 1;
/// Tag (1), `first_seen` (8, ns), then the LZ4 block.
const ITEM_HEADER: usize = 9;

/// A story as stored: the tag, its `first_seen` (kept outside the
/// compressed part so a story encoded before it was stamped can be stamped
/// without encoding it again), then its JSON, LZ4-compressed. Story HTML
/// compresses to about a third, and sled copies every value it holds
/// several times over (node rewrites, log segments), so fewer bytes is
/// less work and less disk.
pub(super) fn encode_item(item: &Item) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(item)?;
    let mut out = Vec::with_capacity(ITEM_HEADER + 4 + json.len() / 2);
    out.push(LZ4);
    out.extend_from_slice(&keys::time_ns(item.first_seen));
    out.extend_from_slice(&lz4_flex::block::compress_prepend_size(&json));
    Ok(out)
}

/// Where a story is stored.
pub(super) fn story_key(item: &Item) -> Vec<u8> {
    keys::item(index::nanos(item.first_seen))
}

pub(super) fn set_first_seen(value: &mut [u8], first_seen: Timestamp) {
    value[1..ITEM_HEADER].copy_from_slice(&keys::time_ns(first_seen));
}

pub(super) fn decode_item(bytes: &[u8]) -> Result<Item, StoreError> {
    if bytes.first() != Some(&LZ4) {
        return Ok(serde_json::from_slice(bytes)?);
    }
    let (first_seen, packed) = match bytes.get(1..ITEM_HEADER) {
        Some(stamp) => (keys::decode_time_ns(stamp), &bytes[ITEM_HEADER..]),
        None => (None, &[][..]),
    };
    let json = lz4_flex::block::decompress_size_prepended(packed)?;
    let mut item: Item = serde_json::from_slice(&json)?;
    item.first_seen = first_seen.unwrap_or(item.first_seen);
    Ok(item)
}

impl From<lz4_flex::block::DecompressError> for StoreError {
    fn from(e: lz4_flex::block::DecompressError) -> StoreError {
        StoreError::Corrupt(format!("a stored story could not be decompressed: {e}"))
    }
}
