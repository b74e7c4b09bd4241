//! Byte layouts of every key the sled backend writes. Numbers are big-endian so that
//! byte order is numeric order (and UUID v7 ids sort by creation time).
//!
//! ```text
//! sessionid_session   [session_id: 16]                          -> SessionRecord
//! seq_eventpage       [seq of its first event: u64 BE]          -> EventPage
//! meta                "events_pruned_through"                   -> seq: u64 BE
//! extuserid_userid    [external_user_id]                        -> user_id
//! ```
//! The indexes by user, expiry and grace window are kept in memory (`sled::index`).

use uuid::Uuid;

use crate::store::{SessionId, StoreError};

const ID_LEN: usize = 16;

/// Key of a session record.
pub fn session_key(id: SessionId) -> [u8; ID_LEN] {
    *id.as_bytes()
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

/// Reads a session id from a record key or a record's id field.
pub fn id_from(bytes: &[u8], what: &'static str) -> Result<SessionId, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::MalformedKey(what))
}
