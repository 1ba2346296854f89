//! The key layout, in one place. Everything lives in one sled tree so that
//! one poll's writes (items, indexes, feed state) go in one atomic batch.
//!
//! | prefix | key                                  | value            |
//! |--------|--------------------------------------|------------------|
//! | `m:`   | `m:schema`                           | schema version   |
//! | `i:`   | `i:` id(16)                          | item: `1`, first_seen(8, ns), LZ4(JSON); or plain JSON |
//! | `t:`   | `t:` time(8) id(16)                  | empty: newest-first index |
//! | `f:`   | `f:` feed `\0` time(8) id(16)        | empty: per-feed index |
//! | `l:`   | `l:` canonical link                  | id(16)           |
//! | `n:`   | `n:` first_seen(8, ns) id(16)        | empty: the digest's window index |
//! | `s:`   | `s:` feed                            | feed state (JSON)|
//! | `x:`   | `x:` id(16)                          | when retention removed the story (8) |
//! | `v:`   | `v:` comment feed URL                | validators (JSON)|
//! | `k:`   | `k:` comment(16)                     | item id(16) or nothing, then time(8) |
//! | `c:`   | `c:` time(8) comment(16)             | recent-comments stream entry (JSON) |
//! | `o:`   | `o:` story link `\0` comment(16)     | a comment waiting for its story (JSON) |
//!
//! `comment(16)` is a hash of the feed and comment ids (see `comment_hash`).

use crate::model::{ItemId, Timestamp};

pub const SCHEMA: &[u8] = b"m:schema";
pub const ITEM: &[u8] = b"i:";
pub const TIME: &[u8] = b"t:";
pub const FEED: &[u8] = b"f:";
pub const LINK: &[u8] = b"l:";
pub const STATE: &[u8] = b"s:";
pub const SEEN: &[u8] = b"n:";
pub const PRUNED: &[u8] = b"x:";
pub const VALIDATORS: &[u8] = b"v:";
pub const COMMENT: &[u8] = b"k:";
pub const STREAM: &[u8] = b"c:";
pub const ORPHAN: &[u8] = b"o:";

/// Milliseconds since the epoch with the sign bit flipped, big-endian, so
/// byte order is time order, dates before 1970 included.
pub fn time(t: Timestamp) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn decode_time(bytes: &[u8]) -> Option<Timestamp> {
    let millis = (u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64;
    chrono::DateTime::from_timestamp_millis(millis)
}

/// Nanoseconds (first_seen is unique per story, to the nanosecond), sign
/// bit flipped, big-endian.
pub fn time_ns(t: Timestamp) -> [u8; 8] {
    let nanos = t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    ((nanos as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn decode_time_ns(bytes: &[u8]) -> Option<Timestamp> {
    let nanos = (u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64;
    Some(chrono::DateTime::from_timestamp_nanos(nanos))
}

pub fn by_first_seen(t: Timestamp, id: &ItemId) -> Vec<u8> {
    [SEEN, &time_ns(t), &id.0].concat()
}

pub fn first_seen_from(t: Timestamp) -> Vec<u8> {
    [SEEN, &time_ns(t)].concat()
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

pub fn pruned(id: &ItemId) -> Vec<u8> {
    [PRUNED, &id.0].concat()
}

pub fn state(feed: &str) -> Vec<u8> {
    [STATE, feed.as_bytes()].concat()
}

pub fn validators(url: &str) -> Vec<u8> {
    [VALIDATORS, url.as_bytes()].concat()
}

/// Comment ids are URLs or guids of any length, unique only within a site:
/// keys hold a fixed-size hash of the feed id and the comment id.
pub fn comment_hash(feed: &str, id: &str) -> [u8; 16] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(feed.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    h.finalize()[..16].try_into().expect("16 bytes")
}

pub fn comment(hash: &[u8; 16]) -> Vec<u8> {
    [COMMENT, hash].concat()
}

pub fn stream(t: Timestamp, hash: &[u8; 16]) -> Vec<u8> {
    [STREAM, &time(t), hash].concat()
}

pub fn orphan_prefix(link: &str) -> Vec<u8> {
    [ORPHAN, link.as_bytes(), b"\0"].concat()
}

pub fn orphan(link: &str, hash: &[u8; 16]) -> Vec<u8> {
    [&orphan_prefix(link)[..], hash].concat()
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
