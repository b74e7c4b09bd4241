//! Whoami: validates a session token, and touches `last_access_at` (and the last-seen
//! client) at most once per touch interval, or at once when the ip or user agent
//! changed (closing a grace window once the successor is used).

use super::*;

impl SessionManager {
    /// Validates a session token; touches `last_access_at` at most once per interval.
    pub async fn whoami(
        &self,
        access: Acting<'_>,
        token: Token,
        client: Option<&ClientContext>,
    ) -> Result<Snapshot, SessionError> {
        let presented = token.secret.hash();
        let now = self.clock.now_ms();
        let record = self
            .store
            .get(token.session_id)
            .await?
            .filter(|record| self.authentic(record, &presented, now))
            .ok_or(SessionError::Unauthenticated)?;
        access.check(&record.group)?;
        let touch_after = millis(self.touch_interval_for(self.policies.for_record(&record)));
        let stale =
            |record: &SessionRecord| now.saturating_sub(record.last_access_at_ms) >= touch_after;
        // Using the successor closes the grace window of the token it replaced; a new
        // ip or user agent is recorded at once, a known one with the next touch.
        let needs_write = |record: &SessionRecord| {
            stale(record) || !record.sealed_successor.is_empty() || sighting::moved(record, client)
        };
        if !needs_write(&record) {
            return Ok(self.snapshot(record, now));
        }
        // Closing a grace window must survive a crash (else the old refresh token could
        // replay again); a plain touch need not.
        let commit = if record.sealed_successor.is_empty() {
            Commit::Lazy
        } else {
            Commit::Durable
        };
        let touched = self
            .store
            .update(token.session_id, commit, &mut |record| {
                if !self.authentic(record, &presented, now) || !needs_write(record) {
                    return Decision::Keep;
                }
                let mut next = record.clone();
                if stale(record) {
                    next.last_access_at_ms = now;
                }
                if stale(record) || sighting::moved(record, client) {
                    sighting::record_sighting(&mut next, client, now);
                }
                close_grace(&mut next);
                Decision::Put(Box::new(next), None)
            })
            .await?
            .filter(|record| self.authentic(record, &presented, now))
            .ok_or(SessionError::Unauthenticated)?;
        Ok(self.snapshot(touched, now))
    }

    /// Whether `presented` is the session token of this record and the session is valid.
    pub(super) fn authentic(
        &self,
        record: &SessionRecord,
        presented: &SecretHash,
        now_ms: u64,
    ) -> bool {
        presented.matches(&record.session_token_hash)
            && self.state_of(record, now_ms) == SessionState::Active
    }

    pub(super) fn touch_interval_for(&self, policy: &GroupPolicy) -> Duration {
        match policy.idle_timeout {
            Some(idle) => self.settings.touch_interval.min(idle / 2),
            None => self.settings.touch_interval,
        }
    }
}
