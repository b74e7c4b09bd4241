//! Byte layouts of every key the sled backend writes. Numbers are big-endian so that
//! byte order is numeric order (and UUID v7 ids sort by creation time).
//!
//! ```text
//! sessionid_session   [session_id: 16]                                   -> SessionRecord
//! userid_sessionids   [len(user_id): u16 BE][user_id][session_id: 16]    -> expires_at_ms: u64 BE
//! expiresat_sessionid [expires_at_ms: u64 BE][session_id: 16]            -> (empty)
//! graceuntil_sessionid [grace_until_ms: u64 BE][session_id: 16]          -> (empty)
//! seq_event           [seq: u64 BE]                                      -> StoredEvent
//! meta                "events_pruned_through"                            -> seq: u64 BE
//! extuserid_userid    [external_user_id]                                 -> user_id
//! ```
//! The grace index has the expiry index's layout, so both use `expiry_key`.

use uuid::Uuid;

use super::{SessionId, StoreError};

const ID_LEN: usize = 16;

/// Key of a session record.
pub fn session_key(id: SessionId) -> [u8; ID_LEN] {
    *id.as_bytes()
}

/// The prefix under which all of one user's index entries sit.
pub fn user_prefix(user_id: &str) -> Result<Vec<u8>, StoreError> {
    let len =
        u16::try_from(user_id.len()).map_err(|_| StoreError::KeyTooLong { len: user_id.len() })?;
    let mut key = Vec::with_capacity(2 + user_id.len() + ID_LEN);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(user_id.as_bytes());
    Ok(key)
}

/// Key of one entry of the per-user index.
pub fn user_key(user_id: &str, id: SessionId) -> Result<Vec<u8>, StoreError> {
    let mut key = user_prefix(user_id)?;
    key.extend_from_slice(id.as_bytes());
    Ok(key)
}

/// The session id at the end of a per-user index key.
pub fn session_id_of_user_key(key: &[u8]) -> Result<SessionId, StoreError> {
    let start = key
        .len()
        .checked_sub(ID_LEN)
        .ok_or(StoreError::MalformedKey("user index"))?;
    id_from(&key[start..], "user index")
}

/// Key of one entry of the expiry (TTL) index.
pub fn expiry_key(expires_at_ms: u64, id: SessionId) -> [u8; 8 + ID_LEN] {
    let mut key = [0u8; 8 + ID_LEN];
    key[..8].copy_from_slice(&expires_at_ms.to_be_bytes());
    key[8..].copy_from_slice(id.as_bytes());
    key
}

/// The greatest expiry key at or before `at_ms`: the end of a sweep's range.
pub fn expiry_upper_bound(at_ms: u64) -> [u8; 8 + ID_LEN] {
    let mut key = [0xffu8; 8 + ID_LEN];
    key[..8].copy_from_slice(&at_ms.to_be_bytes());
    key
}

/// Splits an expiry index key into its expiry and session id.
pub fn parse_expiry_key(key: &[u8]) -> Result<(u64, SessionId), StoreError> {
    let (at, id) = key
        .split_first_chunk::<8>()
        .ok_or(StoreError::MalformedKey("expiry index"))?;
    Ok((u64::from_be_bytes(*at), id_from(id, "expiry index")?))
}

/// Key of an event: its sequence number.
pub fn event_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Key in `meta` of the last event sequence number pruned by retention.
pub const EVENTS_PRUNED_THROUGH: &[u8] = b"events_pruned_through";

/// Reads a big-endian u64 (an event key, a `meta` value).
pub fn decode_u64(bytes: &[u8], what: &'static str) -> Result<u64, StoreError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::MalformedKey(what))
}

/// Encodes the value of a per-user index entry.
pub fn encode_ms(ms: u64) -> [u8; 8] {
    ms.to_be_bytes()
}

/// Reads a session id from a record key or the tail of an index key.
pub fn id_from(bytes: &[u8], what: &'static str) -> Result<SessionId, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::MalformedKey(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_key_round_trips_and_sorts_under_its_prefix() {
        let id = Uuid::now_v7();
        let key = user_key("alice", id).expect("short user id");
        assert!(key.starts_with(&user_prefix("alice").expect("prefix")));
        assert_eq!(session_id_of_user_key(&key).expect("parse"), id);
        // "alice" must not match the prefix of "alice2": the length comes first.
        assert!(!user_key("alice2", id)
            .expect("key")
            .starts_with(&user_prefix("alice").expect("prefix")));
    }

    #[test]
    fn expiry_key_round_trips_and_orders_by_time() {
        let id = Uuid::now_v7();
        let key = expiry_key(42, id);
        assert_eq!(parse_expiry_key(&key).expect("parse"), (42, id));
        assert!(expiry_key(41, Uuid::max()) < expiry_key(42, Uuid::nil()));
        assert!(key <= expiry_upper_bound(42));
        assert!(expiry_key(43, Uuid::nil()) > expiry_upper_bound(42));
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        assert!(parse_expiry_key(&[1, 2, 3]).is_err());
        assert!(session_id_of_user_key(&[0; 5]).is_err());
    }
}
