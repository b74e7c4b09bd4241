//! Ending sessions: Logout of one session, of every session of its user (but one), or
//! of every session of a named user. `logout_decision` and `revocation_decision` are the
//! rules.

use super::decide::UserPuts;
use super::{count_revoked, ended, LogoutTarget, SessionManager, UserRef};
use crate::session::access::Acting;
use crate::session::policy::{GroupPolicy, Policies, SessionState};
use crate::session::SessionError;
use crate::store::{Commit, Decision, EndReason, SessionId, SessionRecord};

/// The Logout rule for one session (of group `policy`) at `now_ms`: an active session
/// ends for `reason`, by `actor`; an ended one stays as it is. The outcome is how many
/// sessions it ended.
pub(super) fn logout_decision(
    record: &SessionRecord,
    policy: &GroupPolicy,
    reason: EndReason,
    actor: &str,
    now_ms: u64,
) -> (Decision, u32) {
    if policy.state_at(record, now_ms) != SessionState::Active {
        return (Decision::Keep, 0);
    }
    let (next, event) = ended(record, reason, now_ms, actor);
    (Decision::Put(Box::new(next), Some(event)), 1)
}

/// The revocation rule over all of a user's `records` at `now_ms`: every active session
/// within reach that `selected` picks ends for `reason`, with `note` in its event. The
/// outcome is how many it ended.
pub(super) fn revocation_decision(
    records: &[SessionRecord],
    policies: &Policies,
    access: Acting<'_>,
    (reason, note): (EndReason, &str),
    selected: &(dyn Fn(&SessionRecord) -> bool + Sync),
    now_ms: u64,
) -> (UserPuts, u32) {
    let puts: UserPuts = records
        .iter()
        .filter(|record| {
            policies.for_record(record).state_at(record, now_ms) == SessionState::Active
        })
        .filter(|record| selected(record))
        .filter(|record| access.allows(&record.group))
        .map(|record| {
            let (next, mut event) = ended(record, reason, now_ms, access.actor);
            event.note = note.into();
            (next, event)
        })
        .collect();
    let count = u32::try_from(puts.len()).unwrap_or(u32::MAX);
    (puts, count)
}

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
                let proves = |record: &SessionRecord| presented.matches(&record.session_token_hash);
                let record = self
                    .read_checked(token.session_id, proves)
                    .await?
                    .filter(proves)
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
        let count = self
            .decide(session_id, Commit::Durable, |record| {
                let policy = self.policies.for_record(record);
                logout_decision(record, policy, reason, access.actor, now)
            })
            .await?
            .map_or(0, |(_, count)| count);
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
        let count = self
            .decide_user(user_id, |records| {
                revocation_decision(
                    records,
                    &self.policies,
                    access,
                    (reason, note),
                    selected,
                    now_ms,
                )
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::fixtures::{
        acting, at_minute, other_session, policy, put, revoked, session, session_id, ANYONE, GROUP,
    };
    use super::*;
    use crate::session::access::GroupAccess;
    use crate::store::{EventKind, StoredState};

    #[test]
    fn logout_outcomes() {
        // (case, record, reason, now, sessions ended)
        #[rustfmt::skip]
        let cases = [
            ("an active session ends", session(), EndReason::Logout, at_minute(1), 1),
            ("by an admin", session(), EndReason::AdminRevoke, at_minute(1), 1),
            ("a revoked session stays as it is", revoked(session()), EndReason::Logout, at_minute(1), 0),
            ("an expired session stays as it is", session(), EndReason::Logout, at_minute(60), 0),
        ];
        for (case, record, reason, now, count) in cases {
            let (decision, got) = logout_decision(&record, &policy(), reason, "tester", now);
            assert_eq!(got, count, "{case}");
            match put(decision) {
                None => assert_eq!(count, 0, "{case}"),
                Some((next, event)) => {
                    assert_eq!(event, Some(EventKind::Revoked), "{case}");
                    assert_eq!(
                        (next.state(), next.end_reason()),
                        (StoredState::Revoked, reason),
                        "{case}"
                    );
                }
            }
        }
    }

    #[test]
    fn revocation_outcomes() {
        let first = session();
        let second = other_session("alice", 2);
        let reauthenticated = SessionRecord {
            authenticated_at_ms: at_minute(30),
            ..other_session("alice", 3)
        };
        let admins = SessionRecord {
            group: "admins".into(),
            ..other_session("alice", 4)
        };
        let expired = SessionRecord {
            expires_at_ms: at_minute(5),
            ..other_session("alice", 5)
        };
        let records = vec![
            first,
            second,
            reauthenticated,
            admins,
            revoked(other_session("alice", 6)),
            expired,
        ];
        let only_default = GroupAccess::Only(BTreeSet::from([GROUP.to_owned()]));
        let first_id = session_id().as_bytes().to_vec();
        let all = |_: &SessionRecord| true;
        let others = |record: &SessionRecord| record.session_id != first_id;
        let before_minute_10 = |record: &SessionRecord| record.authenticated_at_ms < at_minute(10);
        let policies = Policies::default();
        /// (case, access, selection, now, which of `records` end)
        type Case<'a> = (
            &'a str,
            &'a GroupAccess,
            &'a (dyn Fn(&SessionRecord) -> bool + Sync),
            u64,
            Vec<usize>,
        );
        #[rustfmt::skip]
        let cases: [Case; 5] = [
            ("every active session", &GroupAccess::All, &all, at_minute(10), vec![0, 1, 2, 3]),
            ("within reach only", &only_default, &all, at_minute(10), vec![0, 1, 2]),
            ("all but one", &GroupAccess::All, &others, at_minute(10), vec![1, 2, 3]),
            ("authenticated before not_before", &GroupAccess::All, &before_minute_10, at_minute(40), vec![0, 1, 3]),
            ("none active", &GroupAccess::All, &all, at_minute(60), vec![]),
        ];
        for (case, access, selected, now, ended) in cases {
            let (puts, count) = revocation_decision(
                &records,
                &policies,
                acting(access),
                (EndReason::BulkRevoke, "cleanup"),
                selected,
                now,
            );
            assert_eq!(count as usize, ended.len(), "{case}");
            let ids: Vec<&[u8]> = puts
                .iter()
                .map(|(record, _)| &record.session_id[..])
                .collect();
            let expected: Vec<&[u8]> = ended.iter().map(|&i| &records[i].session_id[..]).collect();
            assert_eq!(ids, expected, "{case}");
            for (record, event) in &puts {
                assert_eq!(
                    (record.state(), record.end_reason()),
                    (StoredState::Revoked, EndReason::BulkRevoke),
                    "{case}"
                );
                assert_eq!(
                    (event.kind, event.reason, &*event.note, &*event.actor),
                    (
                        EventKind::Revoked,
                        EndReason::BulkRevoke,
                        "cleanup",
                        ANYONE.actor
                    ),
                    "{case}"
                );
            }
        }
    }
}
