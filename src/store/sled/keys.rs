//! The key layout, in one place. Everything lives in one sled tree so that
//! one poll's writes (stories, heads, feed state) go in one atomic batch.
//!
//! | prefix | key                                  | value            |
//! |--------|--------------------------------------|------------------|
//! | `m:`   | `m:schema`                           | schema version   |
//! | `i:`   | `i:` first_seen(8, ns)               | story: `1`, first_seen(8, ns), LZ4(JSON); or plain JSON |
//! | `h:`   | `h:` day(8) owner feed               | heads of the stories the feed owns, first seen that day (JSON) |
//! | `s:`   | `s:` feed                            | feed state (JSON)|
//! | `x:`   | `x:` id(16)                          | tombstone: when retention removed the story (8), its link hash (8) |
//! | `v:`   | `v:` comment feed URL                | validators (JSON)|
//! | `k:`   | `k:` comment(16)                     | story id(16) or nothing, stream time(8), stored(8) |
//! | `c:`   | `c:` time(8) comment(16)             | recent-comments stream entry (JSON) |
//! | `o:`   | `o:` story link `\0` comment(16)     | a comment waiting for its story (JSON) |
//! | `r:`   | `r:` kind `\0` key                   | a side record, such as a WebSub subscription (JSON) |
//!
//! Stories are keyed by when they were first seen (unique to the
//! nanosecond), so new stories append at the end of the tree. The story
//! indexes (by id, by time, by feed, by first sight, by link) are kept in
//! memory, rebuilt from `h:` and `x:` at open (see `index`).
//! `comment(16)` is a hash of the feed and comment ids (see `store::comment_hash`).
//! Schema 1 keyed stories by id and stored the indexes as keys of their
//! own (`t:`, `f:`, `n:`, `l:`); opening such a store migrates it (see
//! `migrate`).

use crate::model::{ItemId, Timestamp};

pub const SCHEMA: &[u8] = b"m:schema";
pub const ITEM: &[u8] = b"i:";
pub const HEADS: &[u8] = b"h:";
pub const STATE: &[u8] = b"s:";
pub const PRUNED: &[u8] = b"x:";
pub const VALIDATORS: &[u8] = b"v:";
pub const COMMENT: &[u8] = b"k:";
pub const STREAM: &[u8] = b"c:";
pub const ORPHAN: &[u8] = b"o:";
/// Schema 1's index keys, removed by the migration to schema 2.
pub const V1_INDEXES: [&[u8]; 4] = [b"t:", b"f:", b"n:", b"l:"];
/// Schema 1's `l:` keys: canonical link to story id.
pub const V1_LINK: &[u8] = b"l:";

/// Milliseconds since the epoch with the sign bit flipped, big-endian, so
/// byte order is time order, dates before 1970 included.
pub fn time(t: Timestamp) -> [u8; 8] {
    ordered(t.timestamp_millis())
}

pub fn decode_time(bytes: &[u8]) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp_millis(unordered(bytes)?)
}

pub use crate::store::cursor::{ordered, unordered};

/// Nanoseconds (first_seen is unique per story, to the nanosecond), sign
/// bit flipped, big-endian.
pub fn time_ns(t: Timestamp) -> [u8; 8] {
    ordered(nanos(t))
}

pub use crate::model::nanos;

pub fn decode_time_ns(bytes: &[u8]) -> Option<Timestamp> {
    Some(chrono::DateTime::from_timestamp_nanos(unordered(bytes)?))
}

/// A story's key, from its `first_seen` in nanoseconds.
pub fn item(seen: i64) -> Vec<u8> {
    [ITEM, &ordered(seen)].concat()
}

/// The group of heads for stories `owner` owns and first saw on the day
/// of `seen` (nanoseconds).
pub fn heads(seen: i64, owner: &str) -> Vec<u8> {
    let day = seen.div_euclid(86_400 * 1_000_000_000);
    [HEADS, &ordered(day), owner.as_bytes()].concat()
}

pub fn heads_owner(key: &[u8]) -> String {
    String::from_utf8_lossy(key.get(HEADS.len() + 8..).unwrap_or_default()).into_owned()
}

/// A tombstone: when the story was removed, then its link hash if it had
/// a link. Schema 1 tombstones hold only the time.
pub fn tombstone(removed: Timestamp, link: Option<u64>) -> Vec<u8> {
    let mut v = time(removed).to_vec();
    if let Some(link) = link {
        v.extend_from_slice(&link.to_be_bytes());
    }
    v
}

pub fn tombstone_time(value: &[u8]) -> Option<Timestamp> {
    decode_time(value.get(..8)?)
}

pub fn tombstone_link(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(8..16)?.try_into().ok()?))
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

pub fn comment(hash: &[u8; 16]) -> Vec<u8> {
    [COMMENT, hash].concat()
}

pub fn stream(t: Timestamp, hash: &[u8; 16]) -> Vec<u8> {
    [STREAM, &time(t), hash].concat()
}

pub fn orphan_prefix(link: &str) -> Vec<u8> {
    [ORPHAN, link.as_bytes(), b"\0"].concat()
}

/// The story link in an `o:` key.
pub fn orphan_link(key: &[u8]) -> Option<String> {
    let link = key.get(ORPHAN.len()..key.len().checked_sub(17)?)?;
    Some(String::from_utf8_lossy(link).into_owned())
}

pub const RECORD: &[u8] = b"r:";

/// A side record's key: its kind, then its own key.
pub fn record(kind: &str, key: &str) -> Vec<u8> {
    [RECORD, kind.as_bytes(), b"\0", key.as_bytes()].concat()
}

pub fn orphan(link: &str, hash: &[u8; 16]) -> Vec<u8> {
    [&orphan_prefix(link)[..], hash].concat()
}

/// The id at the end of an `x:` key (or a schema 1 index key).
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

    #[test]
    fn nanosecond_keys_saturate_on_their_own_side() {
        let old = chrono::Utc.with_ymd_and_hms(1600, 1, 1, 0, 0, 0).unwrap();
        let far = chrono::Utc.with_ymd_and_hms(3000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(nanos(old), i64::MIN);
        assert_eq!(nanos(far), i64::MAX);
        assert!(time_ns(old) < time_ns(chrono::DateTime::UNIX_EPOCH));
        assert!(time_ns(far) > time_ns(chrono::Utc::now()));
    }
}
