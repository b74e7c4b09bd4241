//! Records, callers and clock values for the rules' table tests: one session as Start
//! leaves it, at a fixed moment, so each case states only what it changes.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::clock::millis;
use crate::session::access::{Acting, GroupAccess};
use crate::session::policy::GroupPolicy;
use crate::store::{Decision, Event, EventKind, SessionId, SessionRecord, StoredState};

/// When the session of [`session`] started.
pub const STARTED_MS: u64 = 1_700_000_000_000;
/// Its lifespan (TTL).
pub const LIFESPAN: Duration = Duration::from_secs(3600);
/// Its absolute cap, counted from the start.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The group of [`session`].
pub const GROUP: &str = "default";

/// Every group, as caller "tester".
pub const ANYONE: Acting<'static> = Acting {
    access: &GroupAccess::All,
    actor: "tester",
};

/// The policy of [`session`]: the defaults, with [`LIFESPAN`] and [`MAX_LIFETIME`].
pub fn policy() -> GroupPolicy {
    GroupPolicy {
        lifespan: LIFESPAN,
        max_lifetime: MAX_LIFETIME,
        ..GroupPolicy::default()
    }
}

/// Groups other than [`GROUP`] only.
pub fn elsewhere() -> GroupAccess {
    GroupAccess::Only(BTreeSet::from(["elsewhere".to_owned()]))
}

/// A caller that reaches `access` only.
pub fn acting(access: &GroupAccess) -> Acting<'_> {
    Acting {
        access,
        actor: "tester",
    }
}

/// The id of [`session`].
pub fn session_id() -> SessionId {
    SessionId::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
}

/// An active session of user "alice" in [`GROUP`], started at [`STARTED_MS`].
pub fn session() -> SessionRecord {
    SessionRecord {
        session_id: session_id().as_bytes().to_vec(),
        user_id: "alice".into(),
        group: GROUP.into(),
        state: StoredState::Active as i32,
        created_at_ms: STARTED_MS,
        authenticated_at_ms: STARTED_MS,
        last_access_at_ms: STARTED_MS,
        expires_at_ms: STARTED_MS + millis(LIFESPAN),
        max_expires_at_ms: STARTED_MS + millis(MAX_LIFETIME),
        ttl_ms: millis(LIFESPAN),
        ..SessionRecord::default()
    }
}

/// [`session`] of another user and with another id (`n` tells them apart).
pub fn other_session(user_id: &str, n: u128) -> SessionRecord {
    SessionRecord {
        session_id: SessionId::from_u128(n).as_bytes().to_vec(),
        user_id: user_id.into(),
        ..session()
    }
}

/// `record` revoked (for any reason).
pub fn revoked(record: SessionRecord) -> SessionRecord {
    let mut record = record;
    record.set_state(StoredState::Revoked);
    record
}

/// The record and event kind a decision puts, or None for Keep.
pub fn put(decision: Decision) -> Option<(SessionRecord, Option<EventKind>)> {
    match decision {
        Decision::Keep => None,
        Decision::Put(record, event) => Some((*record, event.map(|event: Event| event.kind))),
    }
}

/// `minutes` after [`STARTED_MS`].
pub fn at_minute(minutes: u64) -> u64 {
    STARTED_MS + minutes * 60_000
}
