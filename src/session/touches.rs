//! Whoami's `last_access_at` touches, held in memory and stored a moment later in the
//! background, so that validating a session stays a read: a touch written on the call
//! path cost a store transaction per Whoami once sessions outnumber calls per touch
//! interval (1,000,000 sessions validated at random: 0.29× health instead of 0.92×).
//!
//! Until a touch is stored, this process reads it over the stored record (`SessionManager::seen`), so
//! its callers see no difference; a crash loses at most one storing period of touches,
//! as an unflushed lazy write could before.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{SessionId, SessionRecord};

/// Touches held at most; past that, Whoami stores its touch itself.
const MAX_PENDING: usize = 200_000;

/// Touches not yet stored: session → the newest last-access time (ms).
#[derive(Default)]
pub(super) struct PendingTouches {
    pending: Mutex<HashMap<SessionId, u64>>,
}

impl PendingTouches {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, u64>> {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Holds a touch of `id` at `at_ms`; false when too many wait already.
    pub(super) fn hold(&self, id: SessionId, at_ms: u64) -> bool {
        let mut pending = self.pending();
        if pending.len() >= MAX_PENDING && !pending.contains_key(&id) {
            return false;
        }
        let at = pending.entry(id).or_insert(at_ms);
        *at = (*at).max(at_ms);
        true
    }

    /// The held last-access time of `record`'s session, if newer than the stored one.
    pub(super) fn newer_access(&self, record: &SessionRecord) -> Option<u64> {
        let id = SessionId::from_slice(&record.session_id).ok()?;
        let held = *self.pending().get(&id)?;
        (held > record.last_access_at_ms).then_some(held)
    }

    /// The touches held now, to store.
    pub(super) fn to_store(&self) -> Vec<(SessionId, u64)> {
        self.pending()
            .iter()
            .map(|(id, at_ms)| (*id, *at_ms))
            .collect()
    }

    /// Lets go of touches that are stored (or whose session is gone), unless a newer
    /// touch of the same session came in meanwhile.
    pub(super) fn release(&self, stored: &[(SessionId, u64)]) {
        let mut pending = self.pending();
        for (id, at_ms) in stored {
            if pending.get(id) == Some(at_ms) {
                pending.remove(id);
            }
        }
    }
}
