//! Keeping sessions alive: Extend, RefreshAllForUser (Extend's rules for every active
//! session of a user) and Reauthenticate (a fresh `authenticated_at` and absolute cap).

use super::*;

impl SessionManager {
    /// Pushes one session's expiry out, within its group's window and cap.
    pub async fn extend(
        &self,
        access: Acting<'_>,
        session_id: SessionId,
        keep_alive: Option<Duration>,
    ) -> Result<Extension, SessionError> {
        let now = self.clock.now_ms();
        let mut refusal = None;
        let mut extended = false;
        let stored = self
            .store
            .update(session_id, Commit::Durable, &mut |record| {
                let policy = self.policies.for_record(record);
                refusal = access
                    .check(&record.group)
                    .err()
                    .or_else(|| self.extension_refusal(record, policy, keep_alive, now));
                let expiry = match refusal {
                    None => policy.extended_expiry(record, now, keep_alive),
                    Some(_) => None,
                };
                extended = expiry.is_some();
                match expiry {
                    Some(expires_at_ms) => {
                        let mut next = record.clone();
                        next.expires_at_ms = expires_at_ms;
                        Decision::Put(
                            Box::new(next),
                            Some(event(EventKind::Extended, now, access.actor)),
                        )
                    }
                    None => Decision::Keep,
                }
            })
            .await?
            .ok_or_else(|| SessionError::NotFound(format!("no session with id {session_id}")))?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        if extended {
            ::metrics::counter!(metrics::SESSIONS_EXTENDED).increment(1);
        }
        Ok(Extension {
            session: self.snapshot(stored, now),
            extended,
        })
    }

    /// Why Extend may not touch this session, if it may not.
    pub(super) fn extension_refusal(
        &self,
        record: &SessionRecord,
        policy: &GroupPolicy,
        keep_alive: Option<Duration>,
        now_ms: u64,
    ) -> Option<SessionError> {
        let state = policy.state_at(record, now_ms);
        if state != SessionState::Active {
            let state = if state == SessionState::Revoked {
                "revoked"
            } else {
                "expired"
            };
            return Some(SessionError::FailedPrecondition(format!(
                "session is {state}; only an active session can be extended"
            )));
        }
        match keep_alive {
            Some(keep_alive) if keep_alive > policy.max_lifetime => Some(SessionError::invalid(
                "keep_alive_seconds",
                format!(
                    "must be at most {} (the max_lifetime of group {:?})",
                    policy.max_lifetime.as_secs(),
                    record.group
                ),
            )),
            _ => None,
        }
    }

    /// Extends every active session of a user by the rules of Extend; returns the
    /// sessions it extended.
    pub async fn refresh_all_for_user(
        &self,
        access: Acting<'_>,
        user_id: &str,
        keep_alive: Option<Duration>,
    ) -> Result<Vec<Snapshot>, SessionError> {
        let now = self.clock.now_ms();
        let mut active = 0;
        let mut refusal = None;
        let mut extended = Vec::new();
        self.store
            .update_user(user_id, &mut |records| {
                active = 0;
                refusal = None;
                let mut puts = Vec::new();
                for record in records {
                    let policy = self.policies.for_record(record);
                    if policy.state_at(record, now) != SessionState::Active
                        || !access.allows(&record.group)
                    {
                        continue;
                    }
                    active += 1;
                    if let Some(problem) = self.extension_refusal(record, policy, keep_alive, now) {
                        refusal = Some(problem);
                        return Vec::new();
                    }
                    if let Some(expires_at_ms) = policy.extended_expiry(record, now, keep_alive) {
                        let mut next = record.clone();
                        next.expires_at_ms = expires_at_ms;
                        puts.push((next, event(EventKind::Extended, now, access.actor)));
                    }
                }
                extended = puts.iter().map(|(record, _)| record.clone()).collect();
                puts
            })
            .await?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        if active == 0 {
            return Err(SessionError::NotFound(format!(
                "user {user_id:?} has no active session"
            )));
        }
        ::metrics::counter!(metrics::SESSIONS_EXTENDED).increment(extended.len() as u64);
        Ok(extended
            .into_iter()
            .map(|record| self.snapshot(record, now))
            .collect())
    }

    /// The user proved themselves again: `authenticated_at` is now, the absolute cap
    /// restarts from it, the expiry is renewed by the group lifespan, `aal` recorded.
    pub async fn reauthenticate(
        &self,
        access: Acting<'_>,
        target: LogoutTarget,
        aal: String,
    ) -> Result<Snapshot, SessionError> {
        let now = self.clock.now_ms();
        let (session_id, by_token) = match &target {
            LogoutTarget::Token(token) => (token.session_id, Some(token.secret.hash())),
            LogoutTarget::Id(id) => (*id, None),
        };
        let mut refusal = None;
        let stored = self
            .store
            .update(session_id, Commit::Durable, &mut |record| {
                refusal = self.reauthentication_refusal(access, record, by_token.as_ref(), now);
                if refusal.is_some() {
                    return Decision::Keep;
                }
                let policy = self.policies.for_record(record);
                let mut next = record.clone();
                next.authenticated_at_ms = now;
                next.last_access_at_ms = now;
                next.max_expires_at_ms = now.saturating_add(millis(policy.max_lifetime));
                next.expires_at_ms = now
                    .saturating_add(millis(policy.lifespan))
                    .max(record.expires_at_ms)
                    .min(next.max_expires_at_ms);
                next.aal = aal.clone();
                Decision::Put(
                    Box::new(next),
                    Some(event(EventKind::Extended, now, access.actor)),
                )
            })
            .await?;
        let Some(record) = stored else {
            return Err(match by_token {
                Some(_) => SessionError::Unauthenticated,
                None => SessionError::NotFound(format!("no session with id {session_id}")),
            });
        };
        match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(self.snapshot(record, now)),
        }
    }

    pub(super) fn reauthentication_refusal(
        &self,
        access: Acting<'_>,
        record: &SessionRecord,
        by_token: Option<&SecretHash>,
        now_ms: u64,
    ) -> Option<SessionError> {
        let active = self.state_of(record, now_ms) == SessionState::Active;
        match by_token {
            Some(presented) if !presented.matches(&record.session_token_hash) || !active => {
                Some(SessionError::Unauthenticated)
            }
            _ if !access.allows(&record.group) => Some(GroupAccess::denied(&record.group)),
            None if !active => Some(SessionError::FailedPrecondition(
                "only an active session can be re-authenticated".into(),
            )),
            _ => None,
        }
    }
}
