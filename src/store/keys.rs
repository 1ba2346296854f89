//! The key layout, in one place. Everything lives in one sled tree so that
//! one poll's writes (items, indexes, feed state) go in one atomic batch.
//!
//! | prefix | key                                  | value            |
//! |--------|--------------------------------------|------------------|
//! | `m:`   | `m:schema`                           | schema version   |
//! | `i:`   | `i:` id(16)                          | item (JSON)      |
//! | `t:`   | `t:` time(8) id(16)                  | empty: newest-first index |
//! | `f:`   | `f:` feed `\0` time(8) id(16)        | empty: per-feed index |
//! | `l:`   | `l:` canonical link                  | id(16)           |
//! | `s:`   | `s:` feed                            | feed state (JSON)|

use crate::model::{ItemId, Timestamp};

pub const SCHEMA: &[u8] = b"m:schema";
pub const ITEM: &[u8] = b"i:";
pub const TIME: &[u8] = b"t:";
pub const FEED: &[u8] = b"f:";
pub const LINK: &[u8] = b"l:";
pub const STATE: &[u8] = b"s:";

/// Milliseconds since the epoch with the sign bit flipped, big-endian, so
/// byte order is time order, dates before 1970 included.
pub fn time(t: Timestamp) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn item(id: &ItemId) -> Vec<u8> {
    [ITEM, &id.0].concat()
}

pub fn by_time(t: Timestamp, id: &ItemId) -> Vec<u8> {
    [TIME, &time(t), &id.0].concat()
}

pub fn feed_prefix(feed: &str) -> Vec<u8> {
    [FEED, feed.as_bytes(), b"\0"].concat()
}

pub fn by_feed(feed: &str, t: Timestamp, id: &ItemId) -> Vec<u8> {
    [&feed_prefix(feed)[..], &time(t), &id.0].concat()
}

pub fn link(canonical: &str) -> Vec<u8> {
    [LINK, canonical.as_bytes()].concat()
}

pub fn state(feed: &str) -> Vec<u8> {
    [STATE, feed.as_bytes()].concat()
}

/// The id at the end of a `t:` or `f:` index key.
pub fn id_suffix(key: &[u8]) -> Option<ItemId> {
    let tail = key.get(key.len().checked_sub(16)?..)?;
    Some(ItemId(tail.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_keys_sort_in_time_order() {
        let times = [
            chrono::Utc
                .with_ymd_and_hms(1969, 7, 20, 20, 17, 0)
                .unwrap(),
            chrono::Utc.with_ymd_and_hms(2012, 4, 5, 14, 30, 0).unwrap(),
            chrono::Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap(),
        ];
        let keys: Vec<_> = times.iter().map(|t| time(*t)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
