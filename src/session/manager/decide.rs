//! The one bridge between the pure session rules and the store's atomic steps: a rule
//! returns the store's decision with a typed outcome, and the caller gets the outcome of
//! the run that committed.

use super::SessionManager;
use crate::session::SessionError;
use crate::store::{Commit, Decision, SessionId, SessionRecord};

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
}
