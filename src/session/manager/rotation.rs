//! Refresh: rotates both tokens. `refresh_decision` is the rule: the refresh grace rule
//! (a just-rotated refresh token presented again within `refresh_grace` gets the same
//! sealed successor pair) and reuse detection (any other rotated-away token revokes the
//! session).

use super::binding::{
    binding_check, binding_refused, ended_by_binding, BoundUse, PresentedProof, ProofFinding,
};
use super::sighting::record_sighting;
use super::{
    count_revoked, ended, event, Issued, SessionManager, TokenPair, RETIRED_REFRESH_SECRETS,
};
use crate::clock::millis;
use crate::metrics;
use crate::session::access::{Acting, GroupAccess};
use crate::session::binding::BindingFailure;
use crate::session::policy::{GroupPolicy, SessionState};
use crate::session::token::{new_nonce, SecretHash, Token, TokenKind, RETIRED_DIGEST_LEN};
use crate::session::SessionError;
use crate::store::{
    ClientContext, Commit, Decision, EndReason, EventKind, SessionRecord, StoredState,
};

/// A Refresh call as the rule sees it: the token presented and the pair a rotation issues
/// (made before the store step, which may re-run).
pub(super) struct RefreshCall<'a> {
    pub token: &'a Token,
    /// Hash of the presented token's secret.
    pub presented: &'a SecretHash,
    /// With a scope, a session of another scope refuses the token like a bad one.
    pub expected_scope: Option<&'a str>,
    pub access: Acting<'a>,
    /// The pair a rotation issues.
    pub successor: &'a TokenPair,
    /// `successor` sealed under the presented secret, kept through the grace window.
    pub sealed_successor: &'a [u8],
    pub client: Option<&'a ClientContext>,
    /// What the checks that need no session found in the call's device proof.
    pub proof: &'a ProofFinding,
}

/// What the refresh rule decided.
pub(super) enum RefreshOutcome {
    /// The token was proved, but its group is out of the caller's reach.
    Forbidden,
    /// Unknown, wrong, of another scope or of an ended session: nothing changes.
    Refused,
    /// A rotated-away token outside its grace: the session is revoked.
    Reused,
    /// The current token: both tokens rotate to the successor.
    Rotated,
    /// The just-rotated token again, inside its grace window: the same successor.
    Replayed(TokenPair),
    /// The token was proved, but the session's binding check failed (and, where the
    /// group says, the session was revoked for it).
    BindingRefused(BindingFailure),
    /// The current token of a session a binding violation ended.
    EndedByBinding,
}

/// The refresh rule over the session `record` (of group `policy`) at `now_ms`.
pub(super) fn refresh_decision(
    record: &SessionRecord,
    call: &RefreshCall<'_>,
    now_ms: u64,
    policy: &GroupPolicy,
) -> (Decision, RefreshOutcome) {
    if call
        .expected_scope
        .is_some_and(|scope| scope != record.scope)
    {
        return (Decision::Keep, RefreshOutcome::Refused);
    }
    let current = call.presented.matches(&record.refresh_token_hash);
    let replayed = (!current)
        .then(|| grace_replay(record, call.token, call.presented, now_ms, policy))
        .flatten();
    let reused = !current
        && replayed.is_none()
        && record.state() == StoredState::Active
        && call.presented.among(&record.retired_refresh_digests);
    // Only a caller that proved the token learns the group is out of reach: a wrong
    // secret answers like an unknown session, whatever its group.
    if (current || replayed.is_some() || reused) && !call.access.allows(&record.group) {
        (Decision::Keep, RefreshOutcome::Forbidden)
    } else if current {
        if ended_by_binding(record) {
            return (Decision::Keep, RefreshOutcome::EndedByBinding);
        }
        if policy.state_at(record, now_ms) != SessionState::Active {
            return (Decision::Keep, RefreshOutcome::Refused);
        }
        if let Some(refused) = binding_refusal(record, call, policy, now_ms) {
            return refused;
        }
        let mut next = rotated(record, call.successor, now_ms);
        record_sighting(&mut next, call.client, now_ms);
        let grace = millis(policy.refresh_grace);
        if grace > 0 {
            next.grace_until_ms = now_ms.saturating_add(grace);
            next.sealed_successor = call.sealed_successor.to_vec();
        }
        let refreshed = event(EventKind::Refreshed, now_ms, call.access.actor);
        (
            Decision::Put(Box::new(next), Some(refreshed)),
            RefreshOutcome::Rotated,
        )
    } else if let Some(successor) = replayed {
        binding_refusal(record, call, policy, now_ms)
            .unwrap_or((Decision::Keep, RefreshOutcome::Replayed(successor)))
    } else if reused {
        let (next, event) = ended(record, EndReason::RefreshReuse, now_ms, call.access.actor);
        (
            Decision::Put(Box::new(next), Some(event)),
            RefreshOutcome::Reused,
        )
    } else {
        (Decision::Keep, RefreshOutcome::Refused)
    }
}

/// What a Refresh `call` of `record` decides when its binding check fails, if it fails.
fn binding_refusal(
    record: &SessionRecord,
    call: &RefreshCall<'_>,
    policy: &GroupPolicy,
    now_ms: u64,
) -> Option<(Decision, RefreshOutcome)> {
    let proof = call.proof;
    let failure = binding_check(
        record,
        &policy.binding,
        proof,
        call.client,
        BoundUse::Refresh,
    )
    .err()?;
    let actor = call.access.actor;
    let outcome = RefreshOutcome::BindingRefused;
    Some(binding_refused(
        record, failure, policy, now_ms, actor, outcome,
    ))
}

/// The successor pair of the refresh token rotated away last, if `token` is that token,
/// its grace window is open, the successor was not used yet and the session is active.
fn grace_replay(
    record: &SessionRecord,
    token: &Token,
    presented: &SecretHash,
    now_ms: u64,
    policy: &GroupPolicy,
) -> Option<TokenPair> {
    let last_retired = record
        .retired_refresh_digests
        .rchunks_exact(RETIRED_DIGEST_LEN)
        .next()?;
    if now_ms >= record.grace_until_ms
        || record.sealed_successor.is_empty()
        || !presented.among(last_retired)
        || policy.state_at(record, now_ms) != SessionState::Active
    {
        return None;
    }
    let (session, refresh) = token
        .secret
        .unseal_pair(token.session_id, &record.sealed_successor)?;
    Some(TokenPair { session, refresh })
}

/// `record` with `tokens` as its pair: the old refresh secret retired (the oldest
/// forgotten past `RETIRED_REFRESH_SECRETS`), token attributes dropped, touched and
/// its expiry renewed.
fn rotated(record: &SessionRecord, tokens: &TokenPair, now_ms: u64) -> SessionRecord {
    let mut next = record.clone();
    let retiring = std::mem::take(&mut next.refresh_token_hash);
    let retired = &mut next.retired_refresh_digests;
    retired.extend(retiring.iter().take(RETIRED_DIGEST_LEN));
    let overflow = retired
        .len()
        .saturating_sub(RETIRED_REFRESH_SECRETS * RETIRED_DIGEST_LEN);
    retired.drain(..overflow);
    next.session_token_hash = tokens.session.hash().to_vec();
    next.refresh_token_hash = tokens.refresh.hash().to_vec();
    next.token_attributes.clear();
    next.last_access_at_ms = now_ms;
    next.expires_at_ms = record
        .expires_at_ms
        .max(GroupPolicy::refreshed_expiry(record, now_ms));
    next
}

impl SessionManager {
    /// Rotates both tokens. A refresh token that was already rotated away is theft:
    /// the session is revoked.
    /// With `expected_scope`, a session of another scope refuses the token like a bad
    /// one, and the token stays usable.
    pub async fn refresh(
        &self,
        access: Acting<'_>,
        token: Token,
        expected_scope: Option<&str>,
        issue_id_token: bool,
        client: Option<&ClientContext>,
        proof: Option<&PresentedProof>,
    ) -> Result<Issued, SessionError> {
        let now = self.clock.now_ms();
        let presented_text = token.encode(TokenKind::Refresh);
        let proof = self
            .examine_proof(proof, &presented_text, Some(token.session_id), now)
            .await?;
        let successor = TokenPair::generate()?;
        let sealed_successor = token.secret.seal_pair(
            token.session_id,
            (&successor.session, &successor.refresh),
            new_nonce()?,
        );
        let presented = token.secret.hash();
        let call = RefreshCall {
            token: &token,
            presented: &presented,
            expected_scope,
            access,
            successor: &successor,
            sealed_successor: &sealed_successor,
            client,
            proof: &proof,
        };
        let decided = self
            .decide(token.session_id, Commit::Durable, |record| {
                refresh_decision(record, &call, now, self.policies.for_record(record))
            })
            .await?;
        match decided {
            Some((record, RefreshOutcome::Rotated)) => {
                ::metrics::counter!(metrics::SESSIONS_REFRESHED).increment(1);
                let issued = successor.issue(self.snapshot(record, now))?;
                self.with_jwts(issued, issue_id_token, now)
            }
            Some((record, RefreshOutcome::Replayed(successor))) => {
                tracing::debug!(
                    decision = "grace_replay",
                    "just-rotated refresh token inside its grace window: the same pair"
                );
                // The rotation that made this pair may still be on its way to disk.
                self.store.sync().await?;
                let issued = successor.issue(self.snapshot(record, now))?;
                self.with_jwts(issued, issue_id_token, now)
            }
            Some((record, RefreshOutcome::Reused)) => {
                ::metrics::counter!(metrics::REFRESH_REUSE).increment(1);
                count_revoked("reuse", 1);
                tracing::warn!(
                    session_id = %token.session_id,
                    user_id = %record.user_id,
                    "refresh token reuse detected: session revoked"
                );
                Err(SessionError::Unauthenticated)
            }
            Some((record, RefreshOutcome::Forbidden)) => Err(GroupAccess::denied(&record.group)),
            Some((record, RefreshOutcome::BindingRefused(failure))) => {
                if record.end_reason() == EndReason::BindingViolation {
                    count_revoked("binding", 1);
                }
                let policy = &self.policies.for_record(&record).binding;
                Err(self.binding_refusal(failure, policy).await?)
            }
            Some((_, RefreshOutcome::EndedByBinding)) => Err(SessionError::BindingViolated),
            Some((_, RefreshOutcome::Refused)) | None => Err(SessionError::Unauthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::close_grace;
    use super::super::fixtures::{
        acting, at_minute, elsewhere, policy, put, revoked, session, session_id,
    };
    use super::*;
    use crate::session::access::GroupAccess;
    use crate::session::token::Secret;

    /// A session's token history: the refresh secrets it was given, oldest first, and
    /// the record after the last rotation (at `at_minute(n)` for the n-th).
    struct History {
        refresh_secrets: Vec<Secret>,
        pairs: Vec<TokenPair>,
        record: SessionRecord,
    }

    fn token(secret: &Secret) -> Token {
        Token {
            session_id: session_id(),
            secret: secret.clone(),
        }
    }

    fn pair() -> TokenPair {
        TokenPair::generate().expect("the OS random generator works in tests")
    }

    /// Runs the rule as `refresh` does, with `scope` expected and `access` acting.
    fn refresh_at(
        record: &SessionRecord,
        presented: &Secret,
        scope: Option<&str>,
        access: &GroupAccess,
        now_ms: u64,
        successor: &TokenPair,
    ) -> (Decision, RefreshOutcome) {
        let token = token(presented);
        let hash = presented.hash();
        let sealed = presented.seal_pair(
            token.session_id,
            (&successor.session, &successor.refresh),
            new_nonce().expect("the OS random generator works in tests"),
        );
        let call = RefreshCall {
            token: &token,
            presented: &hash,
            expected_scope: scope,
            access: acting(access),
            successor,
            sealed_successor: &sealed,
            client: None,
            proof: &ProofFinding::Absent,
        };
        refresh_decision(record, &call, now_ms, &policy())
    }

    /// A session started at minute 0 and refreshed at minutes 1..=rotations.
    fn history(rotations: u64) -> History {
        let first = Secret::generate().expect("the OS random generator works in tests");
        let mut record = session();
        record.refresh_token_hash = first.hash().to_vec();
        record.scope = "app".into();
        let mut history = History {
            refresh_secrets: vec![first],
            pairs: Vec::new(),
            record,
        };
        for minute in 1..=rotations {
            let successor = pair();
            let current = history.refresh_secrets.last().expect("one secret at least");
            let (decision, _) = refresh_at(
                &history.record,
                current,
                None,
                &GroupAccess::All,
                at_minute(minute),
                &successor,
            );
            history.record = put(decision).expect("the current token rotates").0;
            history.refresh_secrets.push(successor.refresh.clone());
            history.pairs.push(successor);
        }
        history
    }

    fn name(outcome: &RefreshOutcome) -> &'static str {
        match outcome {
            RefreshOutcome::Forbidden => "forbidden",
            RefreshOutcome::Refused => "refused",
            RefreshOutcome::Reused => "reused",
            RefreshOutcome::Rotated => "rotated",
            RefreshOutcome::Replayed(_) => "replayed",
            RefreshOutcome::BindingRefused(failure) => failure.reason(),
            RefreshOutcome::EndedByBinding => "ended by binding",
        }
    }

    #[test]
    fn refresh_outcomes() {
        let unknown = Secret::generate().expect("the OS random generator works in tests");
        let once = history(1);
        let twice = history(2);
        let mut successor_used = history(1);
        close_grace(&mut successor_used.record);
        let fresh = history(0);
        let grace_ends = at_minute(1) + millis(policy().refresh_grace);
        /// (case, history, the secret presented, expected scope, access, now, outcome,
        /// event logged)
        type Case<'a> = (
            &'a str,
            &'a History,
            &'a Secret,
            Option<&'a str>,
            GroupAccess,
            u64,
            &'a str,
            Option<EventKind>,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("current token rotates", &once, &once.refresh_secrets[1], None, GroupAccess::All, at_minute(2), "rotated", Some(EventKind::Refreshed)),
            ("current token in its scope rotates", &once, &once.refresh_secrets[1], Some("app"), GroupAccess::All, at_minute(2), "rotated", Some(EventKind::Refreshed)),
            ("other scope is refused, nothing changes", &once, &once.refresh_secrets[1], Some("admin"), GroupAccess::All, at_minute(2), "refused", None),
            ("replay inside the window gets the same pair", &once, &once.refresh_secrets[0], None, GroupAccess::All, grace_ends - 1, "replayed", None),
            ("replay when the window closes is reuse", &once, &once.refresh_secrets[0], None, GroupAccess::All, grace_ends, "reused", Some(EventKind::ReuseDetected)),
            ("replay after the successor was used is reuse", &successor_used, &successor_used.refresh_secrets[0], None, GroupAccess::All, at_minute(1), "reused", Some(EventKind::ReuseDetected)),
            ("an older retired token is reuse, even in a window", &twice, &twice.refresh_secrets[0], None, GroupAccess::All, at_minute(2), "reused", Some(EventKind::ReuseDetected)),
            ("replay of another scope is refused", &once, &once.refresh_secrets[0], Some("admin"), GroupAccess::All, at_minute(1), "refused", None),
            ("unknown token is refused", &once, &unknown, None, GroupAccess::All, at_minute(2), "refused", None),
            ("current token of an expired session is refused", &fresh, &fresh.refresh_secrets[0], None, GroupAccess::All, at_minute(60), "refused", None),
            ("current token, group out of reach", &once, &once.refresh_secrets[1], None, elsewhere(), at_minute(2), "forbidden", None),
            ("replay, group out of reach", &once, &once.refresh_secrets[0], None, elsewhere(), at_minute(1), "forbidden", None),
            ("reuse, group out of reach", &twice, &twice.refresh_secrets[0], None, elsewhere(), at_minute(2), "forbidden", None),
            ("unknown token, group out of reach: no oracle", &once, &unknown, None, elsewhere(), at_minute(2), "refused", None),
        ];
        for (case, history, presented, scope, access, now, outcome, logged) in cases {
            let (decision, got) =
                refresh_at(&history.record, presented, scope, &access, now, &pair());
            assert_eq!(name(&got), outcome, "{case}");
            assert_eq!(
                put(decision).map(|(_, event)| event),
                logged.map(Some),
                "{case}"
            );
        }
    }

    #[test]
    fn after_revocation_every_token_is_refused() {
        let once = history(1);
        let record = revoked(once.record.clone());
        for (case, presented, now) in [
            ("current", &once.refresh_secrets[1], at_minute(2)),
            (
                "replayed inside the window",
                &once.refresh_secrets[0],
                at_minute(1),
            ),
            ("reused", &once.refresh_secrets[0], at_minute(10)),
        ] {
            let (decision, got) =
                refresh_at(&record, presented, None, &GroupAccess::All, now, &pair());
            assert_eq!(name(&got), "refused", "{case}");
            assert!(put(decision).is_none(), "{case}");
        }
    }

    #[test]
    fn replay_returns_the_pair_of_the_rotation() {
        let once = history(1);
        let (_, got) = refresh_at(
            &once.record,
            &once.refresh_secrets[0],
            None,
            &GroupAccess::All,
            at_minute(1),
            &pair(),
        );
        let RefreshOutcome::Replayed(replayed) = got else {
            panic!("a replay inside the window gets the successor");
        };
        let made = &once.pairs[0];
        assert_eq!(replayed.session.hash(), made.session.hash());
        assert_eq!(replayed.refresh.hash(), made.refresh.hash());
    }

    #[test]
    fn rotation_retires_the_old_secret_and_opens_the_grace_window() {
        let once = history(1);
        let record = &once.record;
        assert!(once.refresh_secrets[1]
            .hash()
            .matches(&record.refresh_token_hash));
        assert!(once.refresh_secrets[0]
            .hash()
            .among(&record.retired_refresh_digests));
        assert_eq!(record.last_access_at_ms, at_minute(1));
        assert_eq!(record.expires_at_ms, at_minute(1) + record.ttl_ms);
        assert_eq!(
            record.grace_until_ms,
            at_minute(1) + millis(policy().refresh_grace)
        );
        assert!(!record.sealed_successor.is_empty());
    }

    #[test]
    fn the_other_scope_leaves_the_token_usable() {
        let once = history(1);
        let current = &once.refresh_secrets[1];
        let (refused, got) = refresh_at(
            &once.record,
            current,
            Some("admin"),
            &GroupAccess::All,
            at_minute(2),
            &pair(),
        );
        assert_eq!((name(&got), put(refused).is_none()), ("refused", true));
        let (_, got) = refresh_at(
            &once.record,
            current,
            Some("app"),
            &GroupAccess::All,
            at_minute(2),
            &pair(),
        );
        assert_eq!(name(&got), "rotated");
    }

    #[test]
    fn without_grace_nothing_is_sealed() {
        let mut record = session();
        let first = Secret::generate().expect("the OS random generator works in tests");
        record.refresh_token_hash = first.hash().to_vec();
        let no_grace = GroupPolicy {
            refresh_grace: std::time::Duration::ZERO,
            ..policy()
        };
        let token = token(&first);
        let hash = first.hash();
        let successor = pair();
        let call = RefreshCall {
            token: &token,
            presented: &hash,
            expected_scope: None,
            access: acting(&GroupAccess::All),
            successor: &successor,
            sealed_successor: b"sealed",
            client: None,
            proof: &ProofFinding::Absent,
        };
        let (decision, _) = refresh_decision(&record, &call, at_minute(1), &no_grace);
        let (next, _) = put(decision).expect("the current token rotates");
        assert_eq!((next.grace_until_ms, next.sealed_successor.len()), (0, 0));
    }
}
