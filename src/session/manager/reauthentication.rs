//! Reauthenticate: the user proved themselves again. `reauthentication_decision` is the
//! rule: a fresh `authenticated_at`, the absolute cap restarted from it, the expiry renewed
//! by the group lifespan, and the new `aal` recorded.

use super::binding::bind_to;
use super::{event, LogoutTarget, SessionManager, Snapshot};
use crate::clock::millis;
use crate::session::access::{Acting, GroupAccess};
use crate::session::binding::{DeviceBinding, DeviceKey};
use crate::session::policy::{GroupPolicy, SessionState};
use crate::session::token::SecretHash;
use crate::session::SessionError;
use crate::store::{Commit, Decision, EventKind, SessionRecord};

/// What a Reauthenticate records.
#[derive(Clone, Debug, Default)]
pub struct Reauthentication {
    /// The authenticator assurance level reached (empty: none said).
    pub aal: String,
    /// A new device key to bind the session to; None: the binding stays.
    pub device_key: Option<DeviceKey>,
}

/// The Reauthenticate rule over `record` (of group `policy`) at `now_ms`, named by its
/// session token (`by_token`) or by id: the outcome is why it may not, if it may not.
pub(super) fn reauthentication_decision(
    record: &SessionRecord,
    policy: &GroupPolicy,
    access: Acting<'_>,
    by_token: Option<&SecretHash>,
    change: &Reauthentication,
    now_ms: u64,
) -> (Decision, Result<(), SessionError>) {
    if let Some(refusal) = reauthentication_refusal(record, policy, access, by_token, now_ms) {
        return (Decision::Keep, Err(refusal));
    }
    if change.device_key.is_some() && policy.binding.device_binding == DeviceBinding::Off {
        let refusal = SessionError::invalid(
            "device_key",
            format!(
                "must be empty: group {:?} binds no session to a device (device_binding = \"off\")",
                record.group
            ),
        );
        return (Decision::Keep, Err(refusal));
    }
    let mut next = record.clone();
    next.authenticated_at_ms = now_ms;
    next.last_access_at_ms = now_ms;
    next.max_expires_at_ms = now_ms.saturating_add(millis(policy.max_lifetime));
    next.expires_at_ms = now_ms
        .saturating_add(millis(policy.lifespan))
        .max(record.expires_at_ms)
        .min(next.max_expires_at_ms);
    next.aal = change.aal.clone();
    if let Some(key) = &change.device_key {
        bind_to(&mut next, key);
    }
    let extended = event(EventKind::Extended, now_ms, access.actor);
    (Decision::Put(Box::new(next), Some(extended)), Ok(()))
}

/// Why the session may not be re-authenticated: a token that is not its session token
/// or of an ended session proves nothing; by id, the group must be within reach and the
/// session active.
fn reauthentication_refusal(
    record: &SessionRecord,
    policy: &GroupPolicy,
    access: Acting<'_>,
    by_token: Option<&SecretHash>,
    now_ms: u64,
) -> Option<SessionError> {
    let active = policy.state_at(record, now_ms) == SessionState::Active;
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

impl SessionManager {
    /// The user proved themselves again: `authenticated_at` is now, the absolute cap
    /// restarts from it, the expiry is renewed by the group lifespan, `aal` recorded.
    pub async fn reauthenticate(
        &self,
        access: Acting<'_>,
        target: LogoutTarget,
        change: Reauthentication,
    ) -> Result<Snapshot, SessionError> {
        let now = self.clock.now_ms();
        let (session_id, by_token) = match &target {
            LogoutTarget::Token(token) => (token.session_id, Some(token.secret.hash())),
            LogoutTarget::Id(id) => (*id, None),
        };
        let decided = self
            .decide(session_id, Commit::Durable, |record| {
                let policy = self.policies.for_record(record);
                reauthentication_decision(record, policy, access, by_token.as_ref(), &change, now)
            })
            .await?;
        let Some((record, outcome)) = decided else {
            return Err(match by_token {
                Some(_) => SessionError::Unauthenticated,
                None => SessionError::NotFound(format!("no session with id {session_id}")),
            });
        };
        outcome.map(|()| self.snapshot(record, now))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{
        acting, at_minute, elsewhere, policy, put, revoked, session, LIFESPAN, MAX_LIFETIME,
        STARTED_MS,
    };
    use super::*;
    use crate::session::token::Secret;

    fn aal2() -> Reauthentication {
        Reauthentication {
            aal: "aal2".into(),
            device_key: None,
        }
    }

    fn said(outcome: &Result<(), SessionError>) -> &'static str {
        match outcome {
            Ok(()) => "reauthenticated",
            Err(SessionError::Unauthenticated) => "unauthenticated",
            Err(SessionError::PermissionDenied(_)) => "permission denied",
            Err(SessionError::FailedPrecondition(_)) => "failed precondition",
            Err(_) => "other error",
        }
    }

    #[test]
    fn reauthentication_outcomes() {
        let secret = Secret::generate().expect("the OS random generator works in tests");
        let wrong = Secret::generate().expect("the OS random generator works in tests");
        let with_token = SessionRecord {
            session_token_hash: secret.hash().to_vec(),
            ..session()
        };
        let expired_at = at_minute(60);
        let everyone = GroupAccess::All;
        let (good, bad) = (Some(secret.hash()), Some(wrong.hash()));
        // (case, record, access, presented session token, now, outcome)
        #[rustfmt::skip]
        let cases = [
            ("by token", with_token.clone(), everyone.clone(), &good, at_minute(30), "reauthenticated"),
            ("by id", with_token.clone(), everyone.clone(), &None, at_minute(30), "reauthenticated"),
            ("wrong token", with_token.clone(), everyone.clone(), &bad, at_minute(30), "unauthenticated"),
            ("token of a revoked session", revoked(with_token.clone()), everyone.clone(), &good, at_minute(30), "unauthenticated"),
            ("token of an expired session", with_token.clone(), everyone.clone(), &good, expired_at, "unauthenticated"),
            ("wrong token, group out of reach: no oracle", with_token.clone(), elsewhere(), &bad, at_minute(30), "unauthenticated"),
            ("token, group out of reach", with_token.clone(), elsewhere(), &good, at_minute(30), "permission denied"),
            ("id, group out of reach", with_token.clone(), elsewhere(), &None, at_minute(30), "permission denied"),
            ("id of a revoked session", revoked(with_token.clone()), everyone.clone(), &None, at_minute(30), "failed precondition"),
            ("id of an expired session", with_token.clone(), everyone.clone(), &None, expired_at, "failed precondition"),
        ];
        for (case, record, access, presented, now, outcome) in cases {
            let (decision, got) = reauthentication_decision(
                &record,
                &policy(),
                acting(&access),
                presented.as_ref(),
                &aal2(),
                now,
            );
            assert_eq!(said(&got), outcome, "{case}");
            assert_eq!(put(decision).is_some(), got.is_ok(), "{case}");
        }
    }

    #[test]
    fn the_cap_restarts_from_now() {
        let now = at_minute(30);
        let (decision, _) = reauthentication_decision(
            &session(),
            &policy(),
            acting(&GroupAccess::All),
            None,
            &aal2(),
            now,
        );
        let (next, logged) = put(decision).expect("an active session is re-authenticated");
        assert_eq!(logged, Some(EventKind::Extended));
        assert_eq!(
            (
                next.authenticated_at_ms,
                next.last_access_at_ms,
                next.aal.as_str()
            ),
            (now, now, "aal2")
        );
        assert_eq!(next.max_expires_at_ms, now + millis(MAX_LIFETIME));
        assert_eq!(next.expires_at_ms, now + millis(LIFESPAN));
        assert_eq!(next.created_at_ms, STARTED_MS);
    }

    #[test]
    fn the_expiry_never_shortens_and_stays_under_the_cap() {
        let long_lived = SessionRecord {
            expires_at_ms: at_minute(600),
            ..session()
        };
        let two_hours = GroupPolicy {
            max_lifetime: LIFESPAN * 2,
            ..policy()
        };
        let everyone = GroupAccess::All;
        for (case, record, policy, expiry) in [
            (
                "a later expiry stays",
                long_lived.clone(),
                policy(),
                at_minute(600),
            ),
            (
                "capped by max_lifetime",
                long_lived,
                two_hours,
                at_minute(150),
            ),
        ] {
            let (decision, _) = reauthentication_decision(
                &record,
                &policy,
                acting(&everyone),
                None,
                &Reauthentication::default(),
                at_minute(30),
            );
            let (next, _) = put(decision).expect("an active session is re-authenticated");
            assert_eq!(next.expires_at_ms, expiry, "{case}");
        }
    }
}
