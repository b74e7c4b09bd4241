//! Keeping sessions alive: Extend and RefreshAllForUser (Extend's rules for every active
//! session of a user). `extend_decision` and `extend_all_decision` are the rules: the
//! group's extension window and absolute cap.

use std::time::Duration;

use super::decide::UserPuts;
use super::{event, Extension, SessionManager, Snapshot};
use crate::metrics;
use crate::session::access::Acting;
use crate::session::policy::{GroupPolicy, Policies, SessionState};
use crate::session::SessionError;
use crate::store::{Commit, Decision, EventKind, SessionId, SessionRecord};

/// The Extend rule over `record` (of group `policy`) at `now_ms`: the outcome is whether
/// it was extended, or why Extend may not touch it.
pub(super) fn extend_decision(
    record: &SessionRecord,
    policy: &GroupPolicy,
    access: Acting<'_>,
    keep_alive: Option<Duration>,
    now_ms: u64,
) -> (Decision, Result<bool, SessionError>) {
    if let Some(refusal) = access
        .check(&record.group)
        .err()
        .or_else(|| extension_refusal(record, policy, keep_alive, now_ms))
    {
        return (Decision::Keep, Err(refusal));
    }
    match policy.extended_expiry(record, now_ms, keep_alive) {
        Some(expires_at_ms) => {
            let mut next = record.clone();
            next.expires_at_ms = expires_at_ms;
            let extended = event(EventKind::Extended, now_ms, access.actor);
            (Decision::Put(Box::new(next), Some(extended)), Ok(true))
        }
        None => (Decision::Keep, Ok(false)),
    }
}

/// What RefreshAllForUser decided.
#[derive(Debug)]
pub(super) enum ExtendAll {
    /// The user has no active session within reach.
    NoneActive,
    /// The sessions extended (those outside their window stay as they are).
    Extended(Vec<SessionRecord>),
    /// An active session may not be extended this way: nothing changes.
    Refused(SessionError),
}

/// The RefreshAllForUser rule: Extend's rules for every active session within reach in
/// `records`, all or none.
pub(super) fn extend_all_decision(
    records: &[SessionRecord],
    policies: &Policies,
    access: Acting<'_>,
    keep_alive: Option<Duration>,
    now_ms: u64,
) -> (UserPuts, ExtendAll) {
    let mut active = 0;
    let mut puts = Vec::new();
    for record in records {
        let policy = policies.for_record(record);
        if policy.state_at(record, now_ms) != SessionState::Active || !access.allows(&record.group)
        {
            continue;
        }
        active += 1;
        if let Some(refusal) = extension_refusal(record, policy, keep_alive, now_ms) {
            return (Vec::new(), ExtendAll::Refused(refusal));
        }
        if let Some(expires_at_ms) = policy.extended_expiry(record, now_ms, keep_alive) {
            let mut next = record.clone();
            next.expires_at_ms = expires_at_ms;
            puts.push((next, event(EventKind::Extended, now_ms, access.actor)));
        }
    }
    if active == 0 {
        return (puts, ExtendAll::NoneActive);
    }
    let extended = puts.iter().map(|(record, _)| record.clone()).collect();
    (puts, ExtendAll::Extended(extended))
}

/// Why Extend may not touch this session, if it may not.
fn extension_refusal(
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

impl SessionManager {
    /// Pushes one session's expiry out, within its group's window and cap.
    pub async fn extend(
        &self,
        access: Acting<'_>,
        session_id: SessionId,
        keep_alive: Option<Duration>,
    ) -> Result<Extension, SessionError> {
        let now = self.clock.now_ms();
        let (stored, extended) = self
            .decide(session_id, Commit::Durable, |record| {
                let policy = self.policies.for_record(record);
                extend_decision(record, policy, access, keep_alive, now)
            })
            .await?
            .ok_or_else(|| SessionError::NotFound(format!("no session with id {session_id}")))?;
        let extended = extended?;
        if extended {
            ::metrics::counter!(metrics::SESSIONS_EXTENDED).increment(1);
        }
        Ok(Extension {
            session: self.snapshot(stored, now),
            extended,
        })
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
        let outcome = self
            .decide_user(user_id, |records| {
                extend_all_decision(records, &self.policies, access, keep_alive, now)
            })
            .await?;
        let extended = match outcome {
            ExtendAll::Refused(refusal) => return Err(refusal),
            ExtendAll::NoneActive => {
                return Err(SessionError::NotFound(format!(
                    "user {user_id:?} has no active session"
                )))
            }
            ExtendAll::Extended(extended) => extended,
        };
        ::metrics::counter!(metrics::SESSIONS_EXTENDED).increment(extended.len() as u64);
        Ok(extended
            .into_iter()
            .map(|record| self.snapshot(record, now))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::fixtures::{
        acting, at_minute, elsewhere, other_session, policy, put, revoked, session, ANYONE, GROUP,
        MAX_LIFETIME,
    };
    use super::*;
    use crate::session::access::GroupAccess;

    const MINUTE: Duration = Duration::from_secs(60);

    fn said(outcome: &Result<bool, SessionError>) -> &'static str {
        match outcome {
            Ok(true) => "extended",
            Ok(false) => "unchanged",
            Err(SessionError::PermissionDenied(_)) => "permission denied",
            Err(SessionError::InvalidArgument { .. }) => "invalid argument",
            Err(SessionError::FailedPrecondition(_)) => "failed precondition",
            Err(_) => "other error",
        }
    }

    /// [`policy`] whose Extend window opens `minutes` before expiry.
    fn window(minutes: u32) -> GroupPolicy {
        GroupPolicy {
            earliest_possible_extend: Some(MINUTE * minutes),
            ..policy()
        }
    }

    fn capped_at(minute: u64) -> SessionRecord {
        SessionRecord {
            max_expires_at_ms: at_minute(minute),
            ..session()
        }
    }

    #[test]
    fn extend_outcomes() {
        let always = policy();
        let ten_minutes = window(10);
        /// (case, record, policy, access, keep-alive, now, outcome, expiry afterwards)
        type Case<'a> = (
            &'a str,
            SessionRecord,
            &'a GroupPolicy,
            GroupAccess,
            Option<Duration>,
            u64,
            &'a str,
            u64,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("renews by the lifespan", session(), &always, GroupAccess::All, None, at_minute(30), "extended", at_minute(90)),
            ("renews by the keep-alive", session(), &always, GroupAccess::All, Some(MINUTE * 45), at_minute(30), "extended", at_minute(75)),
            ("never shortens", session(), &always, GroupAccess::All, Some(MINUTE * 10), at_minute(30), "unchanged", at_minute(60)),
            ("outside the window: unchanged", session(), &ten_minutes, GroupAccess::All, None, at_minute(30), "unchanged", at_minute(60)),
            ("inside the window", session(), &ten_minutes, GroupAccess::All, None, at_minute(55), "extended", at_minute(115)),
            ("at the window's edge", session(), &ten_minutes, GroupAccess::All, None, at_minute(50), "extended", at_minute(110)),
            ("capped by the absolute cap", capped_at(70), &always, GroupAccess::All, None, at_minute(30), "extended", at_minute(70)),
            ("at the cap: unchanged", capped_at(60), &always, GroupAccess::All, None, at_minute(30), "unchanged", at_minute(60)),
            ("keep-alive past max_lifetime", session(), &always, GroupAccess::All, Some(MAX_LIFETIME + MINUTE), at_minute(30), "invalid argument", at_minute(60)),
            ("revoked", revoked(session()), &always, GroupAccess::All, None, at_minute(30), "failed precondition", at_minute(60)),
            ("expired", session(), &always, GroupAccess::All, None, at_minute(60), "failed precondition", at_minute(60)),
            ("group out of reach", session(), &always, elsewhere(), None, at_minute(30), "permission denied", at_minute(60)),
        ];
        for (case, record, policy, access, keep_alive, now, outcome, expiry) in cases {
            let (decision, got) =
                extend_decision(&record, policy, acting(&access), keep_alive, now);
            assert_eq!(said(&got), outcome, "{case}");
            let (stored, logged) = put(decision).unwrap_or((record, None));
            assert_eq!(stored.expires_at_ms, expiry, "{case}");
            let extended = outcome == "extended";
            assert_eq!(logged, extended.then_some(EventKind::Extended), "{case}");
        }
    }

    fn said_all(outcome: &ExtendAll) -> String {
        match outcome {
            ExtendAll::NoneActive => "none active".into(),
            ExtendAll::Refused(_) => "refused".into(),
            ExtendAll::Extended(records) => format!("{} extended", records.len()),
        }
    }

    #[test]
    fn extend_all_outcomes() {
        let first = session();
        let second = other_session("alice", 2);
        let capped = SessionRecord {
            max_expires_at_ms: at_minute(70),
            ..other_session("alice", 3)
        };
        let admins = SessionRecord {
            group: "admins".into(),
            ..other_session("alice", 4)
        };
        let only_default = GroupAccess::Only(BTreeSet::from([GROUP.to_owned()]));
        let windowed = Policies::new(BTreeMap::from([(GROUP.to_owned(), window(10))]));
        let plain = Policies::new(BTreeMap::from([(GROUP.to_owned(), policy())]));
        /// (case, records, policies, access, keep-alive, now, outcome, expiries put)
        type Case<'a> = (
            &'a str,
            Vec<SessionRecord>,
            &'a Policies,
            GroupAccess,
            Option<Duration>,
            u64,
            &'a str,
            Vec<u64>,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("every active session", vec![first.clone(), second.clone()], &plain, GroupAccess::All, None, at_minute(30), "2 extended", vec![at_minute(90), at_minute(90)]),
            ("each within its cap", vec![first.clone(), capped.clone()], &plain, GroupAccess::All, None, at_minute(30), "2 extended", vec![at_minute(90), at_minute(70)]),
            ("outside the window: none, and no error", vec![first.clone()], &windowed, GroupAccess::All, None, at_minute(30), "0 extended", vec![]),
            ("inside the window", vec![first.clone()], &windowed, GroupAccess::All, None, at_minute(55), "1 extended", vec![at_minute(115)]),
            ("ended sessions are skipped", vec![revoked(first.clone()), second.clone()], &plain, GroupAccess::All, None, at_minute(30), "1 extended", vec![at_minute(90)]),
            ("groups out of reach are skipped", vec![first.clone(), admins.clone()], &plain, only_default.clone(), None, at_minute(30), "1 extended", vec![at_minute(90)]),
            ("only ended sessions", vec![revoked(first.clone())], &plain, GroupAccess::All, None, at_minute(30), "none active", vec![]),
            ("only sessions out of reach", vec![admins.clone()], &plain, only_default, None, at_minute(30), "none active", vec![]),
            ("no sessions", vec![], &plain, GroupAccess::All, None, at_minute(30), "none active", vec![]),
            ("keep-alive past max_lifetime: all or none", vec![first.clone(), second.clone()], &plain, GroupAccess::All, Some(MAX_LIFETIME + MINUTE), at_minute(30), "refused", vec![]),
        ];
        for (case, records, policies, access, keep_alive, now, outcome, expiries) in cases {
            let (puts, got) =
                extend_all_decision(&records, policies, acting(&access), keep_alive, now);
            assert_eq!(said_all(&got), outcome, "{case}");
            let put: Vec<u64> = puts
                .iter()
                .map(|(record, _)| record.expires_at_ms)
                .collect();
            assert_eq!(put, expiries, "{case}");
            assert!(
                puts.iter()
                    .all(|(_, event)| event.kind == EventKind::Extended
                        && &*event.actor == ANYONE.actor),
                "{case}"
            );
        }
    }
}
