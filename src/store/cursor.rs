//! River page cursors, the same on every backend: a story's place in the
//! newest-first order (sort time in milliseconds, then id), as the hex of
//! 24 bytes. The sort time is written as an ordered key (as schema 1's
//! `t:` keys held it), so cursors handed out before still work.

use super::StoreError;
use crate::model::ItemId;

/// A place in the newest-first order: sort time (ms), then id.
pub type Position = (i64, ItemId);

pub fn encode((millis, id): Position) -> String {
    let bytes = [&ordered(millis)[..], &id.0].concat();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cursor from [`encode`]; anything else is [`StoreError::Cursor`].
pub fn decode(hex: &str) -> Result<Position, StoreError> {
    let bytes = from_hex(hex).ok_or(StoreError::Cursor)?;
    if bytes.len() != 24 {
        return Err(StoreError::Cursor);
    }
    let millis = unordered(&bytes[..8]).ok_or(StoreError::Cursor)?;
    let id = bytes[8..].try_into().map_err(|_| StoreError::Cursor)?;
    Ok((millis, ItemId(id)))
}

/// A signed number as bytes whose order is its order.
pub fn ordered(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn unordered(bytes: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64)
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        for at in [
            (0, ItemId([7; 16])),
            (-5, ItemId([0; 16])),
            (i64::MAX, ItemId([255; 16])),
        ] {
            assert_eq!(decode(&encode(at)).unwrap(), at);
        }
        for bad in ["", "zz", "00", &"0".repeat(47), &"é".repeat(24)] {
            assert!(matches!(decode(bad), Err(StoreError::Cursor)), "{bad:?}");
        }
    }
}
