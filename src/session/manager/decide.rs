//! The one bridge between the pure session rules and the store's atomic steps: a rule
//! returns the store's decision with a typed outcome, and the caller gets the outcome of
//! the run that committed.

use super::SessionManager;
use crate::session::SessionError;
use crate::store::{Commit, Decision, Event, SessionId, SessionRecord, StoreError};

/// What a rule over all of one user's records decides: the records to put, each with the
/// event it logs.
pub(super) type UserPuts = Vec<(SessionRecord, Event)>;

impl SessionManager {
    /// Applies `rule` to session `id` in one atomic store step. Returns the record as
    /// stored afterwards with the outcome of the rule's last run, or None when the session
    /// does not exist.
    ///
    /// The store re-runs the rule when a concurrent change wins, and only the last run's
    /// decision is stored, so only the last run's outcome is kept. This is the one place
    /// an outcome leaves a store closure through a captured variable.
    pub(super) async fn decide<T: Send>(
        &self,
        id: SessionId,
        commit: Commit,
        mut rule: impl FnMut(&SessionRecord) -> (Decision, T) + Send,
    ) -> Result<Option<(SessionRecord, T)>, SessionError> {
        let mut last = None;
        let stored = self
            .store
            .update(id, commit, &mut |record| {
                let (decision, outcome) = rule(record);
                last = Some(outcome);
                decision
            })
            .await?;
        // The store runs the rule whenever it returns a record, so `zip` drops nothing.
        Ok(stored.zip(last))
    }

    /// Applies `rule` to all sessions of `user_id` in one atomic store step; returns the
    /// outcome of the rule's last run (re-runs as for [`SessionManager::decide`]).
    pub(super) async fn decide_user<T: Send>(
        &self,
        user_id: &str,
        mut rule: impl FnMut(&[SessionRecord]) -> (UserPuts, T) + Send,
    ) -> Result<T, SessionError> {
        let mut last = None;
        self.store
            .update_user(user_id, &mut |records| {
                let (puts, outcome) = rule(records);
                last = Some(outcome);
                puts
            })
            .await?;
        // The store runs the rule on every call (over no records for a user without
        // sessions); a step that returned without running it has lost its outcome.
        last.ok_or(SessionError::Store(StoreError::BatchLost))
    }
}
