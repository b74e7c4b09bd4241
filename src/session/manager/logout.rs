//! Ending sessions: Logout of one session, of every session of its user (but one), or
//! of every session of a named user.

use super::*;

impl SessionManager {
    /// Ends one session, or every active session of its user; returns how many it ended.
    /// With `all_for_user`, the session `except` (if any) stays active.
    pub async fn logout(
        &self,
        access: Acting<'_>,
        target: LogoutTarget,
        all_for_user: bool,
        except: Option<SessionId>,
    ) -> Result<u32, SessionError> {
        let now = self.clock.now_ms();
        let is_token = matches!(target, LogoutTarget::Token(_));
        let (session_id, record) = match target {
            LogoutTarget::Token(token) => {
                let presented = token.secret.hash();
                let record = self
                    .store
                    .get(token.session_id)
                    .await?
                    .filter(|record| presented.matches(&record.session_token_hash))
                    .ok_or(SessionError::Unauthenticated)?;
                (token.session_id, record)
            }
            LogoutTarget::Id(id) => {
                let record =
                    self.store.get(id).await?.ok_or_else(|| {
                        SessionError::NotFound(format!("no session with id {id}"))
                    })?;
                (id, record)
            }
        };
        access.check(&record.group)?;
        if all_for_user {
            // An ended session's token still proves nothing about the user now.
            if is_token && self.state_of(&record, now) != SessionState::Active {
                return Err(SessionError::Unauthenticated);
            }
            let reason = match except {
                Some(_) => EndReason::LogoutOthers,
                None => EndReason::LogoutAll,
            };
            let except = except.map(|id| id.as_bytes().to_vec());
            let others = |record: &SessionRecord| except.as_ref() != Some(&record.session_id);
            return self
                .revoke_where(access, &record.user_id, (reason, ""), &others, now)
                .await;
        }
        let reason = if is_token {
            EndReason::Logout
        } else {
            EndReason::AdminRevoke
        };
        let mut count = 0;
        self.store
            .update(session_id, Commit::Durable, &mut |record| {
                if self.state_of(record, now) == SessionState::Active {
                    count = 1;
                    let (next, event) = ended(record, reason, now, access.actor);
                    Decision::Put(Box::new(next), Some(event))
                } else {
                    count = 0;
                    Decision::Keep
                }
            })
            .await?;
        count_revoked("logout", count as usize);
        Ok(count)
    }

    /// Ends, in one atomic step, every active session of `user_id` within reach that
    /// `selected` picks, with `note` in each event; returns how many it ended.
    pub(super) async fn revoke_where(
        &self,
        access: Acting<'_>,
        user_id: &str,
        (reason, note): (EndReason, &str),
        selected: &(dyn Fn(&SessionRecord) -> bool + Sync),
        now_ms: u64,
    ) -> Result<u32, SessionError> {
        let mut count = 0;
        self.store
            .update_user(user_id, &mut |records| {
                let ended: Vec<(SessionRecord, Event)> = records
                    .iter()
                    .filter(|record| self.state_of(record, now_ms) == SessionState::Active)
                    .filter(|record| selected(record))
                    .filter(|record| access.allows(&record.group))
                    .map(|record| {
                        let (next, mut event) = ended(record, reason, now_ms, access.actor);
                        event.note = note.into();
                        (next, event)
                    })
                    .collect();
                count = u32::try_from(ended.len()).unwrap_or(u32::MAX);
                ended
            })
            .await?;
        count_revoked("logout", count as usize);
        Ok(count)
    }

    /// Our user id of `user`; NOT_FOUND for an external id no session was started with.
    pub async fn resolve_user(&self, user: UserRef) -> Result<String, SessionError> {
        match user {
            UserRef::Id(user_id) => Ok(user_id),
            UserRef::External(external) => self
                .store
                .user_of_external(&external)
                .await?
                .ok_or_else(|| {
                    SessionError::NotFound(format!(
                        "no session was started for external user {external:?}"
                    ))
                }),
        }
    }

    /// Ends every active session of a user (admin form of Logout with all_for_user).
    pub async fn logout_user(
        &self,
        access: Acting<'_>,
        user: UserRef,
    ) -> Result<u32, SessionError> {
        let user_id = self.resolve_user(user).await?;
        self.revoke_where(
            access,
            &user_id,
            (EndReason::AdminRevoke, ""),
            &|_| true,
            self.clock.now_ms(),
        )
        .await
    }

    /// Ends every active session of a user authenticated before `not_before_ms` (the
    /// user's credentials changed); returns how many it ended.
    pub async fn revoke_user_before(
        &self,
        access: Acting<'_>,
        user: UserRef,
        not_before_ms: u64,
    ) -> Result<u32, SessionError> {
        let user_id = self.resolve_user(user).await?;
        let before = |record: &SessionRecord| record.authenticated_at_ms < not_before_ms;
        let count = self
            .revoke_where(
                access,
                &user_id,
                (EndReason::UserNotBefore, ""),
                &before,
                self.clock.now_ms(),
            )
            .await?;
        tracing::info!(%user_id, not_before_ms, count, actor = access.actor, "user sessions revoked by not_before");
        Ok(count)
    }
}
