//! Session records as the store tests write them directly (no server): one of a user
//! expiring at a given time, and a record's id.

use sessiond::store::{SessionId, SessionRecord, StoredState};

/// The time the records are made at.
pub const NOW_MS: u64 = 1_767_225_600_000;

/// An active session of `user` that expires at `expires_at_ms`.
pub fn record(user: &str, expires_at_ms: u64) -> SessionRecord {
    SessionRecord {
        session_id: SessionId::now_v7().as_bytes().to_vec(),
        user_id: user.to_owned(),
        group: "default".to_owned(),
        state: StoredState::Active as i32,
        created_at_ms: NOW_MS,
        expires_at_ms,
        max_expires_at_ms: expires_at_ms,
        started_by: "test".to_owned(),
        ..Default::default()
    }
}

pub fn id_of(record: &SessionRecord) -> SessionId {
    SessionId::from_slice(&record.session_id).expect("16-byte id")
}
