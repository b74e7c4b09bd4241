//! UpdateAttributes: changes a session's attributes and token-scoped attributes within
//! the size limits.

use super::*;

impl SessionManager {
    /// Changes a session's attributes and token attributes; `fits` checks the result
    /// against the size limits.
    pub async fn update_attributes(
        &self,
        access: Acting<'_>,
        session_id: SessionId,
        changes: AttributeChanges,
        fits: &(dyn Fn(&SessionRecord) -> Result<(), SessionError> + Sync),
    ) -> Result<Snapshot, SessionError> {
        let now = self.clock.now_ms();
        let mut refusal = None;
        let stored = self
            .store
            .update(session_id, Commit::Durable, &mut |record| {
                refusal = access.check(&record.group).err().or_else(|| {
                    (self.state_of(record, now) != SessionState::Active).then(|| {
                        SessionError::FailedPrecondition(
                            "only an active session's attributes can change".into(),
                        )
                    })
                });
                if refusal.is_some() {
                    return Decision::Keep;
                }
                let mut next = record.clone();
                for key in &changes.remove {
                    next.attributes.remove(key);
                }
                next.attributes.extend(changes.set.clone());
                for key in &changes.token_remove {
                    next.token_attributes.remove(key);
                }
                next.token_attributes.extend(changes.token_set.clone());
                refusal = fits(&next).err();
                match refusal {
                    Some(_) => Decision::Keep,
                    None => Decision::Put(Box::new(next), None),
                }
            })
            .await?
            .ok_or_else(|| SessionError::NotFound(format!("no session with id {session_id}")))?;
        match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(self.snapshot(stored, now)),
        }
    }
}
