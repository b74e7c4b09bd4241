//! Whoami: validates a session token, and touches `last_access_at` (and the last-seen
//! client) at most once per touch interval, or at once when the ip or user agent
//! changed (closing a grace window once the successor is used). `touch_decision` is the
//! rule.

use std::time::Duration;

use super::binding::{
    binding_check, binding_refused, bound, ended_by_binding, ends_session, proof_due, BoundUse,
    PresentedProof, ProofFinding,
};
use super::{close_grace, count_revoked, sighting, SessionManager, Snapshot};
use crate::clock::millis;
use crate::session::access::Acting;
use crate::session::policy::{GroupPolicy, SessionState};
use crate::session::token::{SecretHash, Token, TokenKind};
use crate::session::SessionError;
use crate::store::{ClientContext, Commit, Decision, SessionRecord};

/// Whether `presented` is the session token of `record` (of group `policy`) and the
/// session is valid at `now_ms`.
fn authentic(
    record: &SessionRecord,
    policy: &GroupPolicy,
    presented: &SecretHash,
    now_ms: u64,
) -> bool {
    presented.matches(&record.session_token_hash)
        && policy.state_at(record, now_ms) == SessionState::Active
}

/// Whether the last touch is at least `touch_after_ms` old.
fn stale(record: &SessionRecord, touch_after_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(record.last_access_at_ms) >= touch_after_ms
}

/// Whether Whoami writes: using the successor closes the grace window of the token it
/// replaced; a new ip or user agent is recorded at once, a known one with the next touch.
fn needs_write(
    record: &SessionRecord,
    client: Option<&ClientContext>,
    touch_after_ms: u64,
    now_ms: u64,
) -> bool {
    stale(record, touch_after_ms, now_ms)
        || !record.sealed_successor.is_empty()
        || sighting::moved(record, client)
}

/// The Whoami touch rule over `record` (of group `policy`) at `now_ms`, for the session
/// token `presented` by `client`: touches a stale session, records a new sighting and
/// closes an open grace window; leaves an inauthentic one alone.
pub(super) fn touch_decision(
    record: &SessionRecord,
    policy: &GroupPolicy,
    presented: &SecretHash,
    client: Option<&ClientContext>,
    touch_after_ms: u64,
    now_ms: u64,
) -> Decision {
    if !authentic(record, policy, presented, now_ms)
        || !needs_write(record, client, touch_after_ms, now_ms)
    {
        return Decision::Keep;
    }
    let stale = stale(record, touch_after_ms, now_ms);
    let mut next = record.clone();
    if stale {
        next.last_access_at_ms = now_ms;
    }
    if stale || sighting::moved(record, client) {
        sighting::record_sighting(&mut next, client, now_ms);
    }
    close_grace(&mut next);
    Decision::Put(Box::new(next), None)
}

impl SessionManager {
    /// Validates a session token; touches `last_access_at` at most once per interval.
    pub async fn whoami(
        &self,
        access: Acting<'_>,
        token: Token,
        client: Option<&ClientContext>,
        proof: Option<&PresentedProof>,
    ) -> Result<Snapshot, SessionError> {
        let presented = token.secret.hash();
        let now = self.clock.now_ms();
        let authentic = |record: &SessionRecord| {
            authentic(record, self.policies.for_record(record), &presented, now)
        };
        let record = self
            .read_checked(token.session_id, authentic)
            .await?
            .ok_or(SessionError::Unauthenticated)?;
        if !authentic(&record) {
            return Err(
                if presented.matches(&record.session_token_hash) && ended_by_binding(&record) {
                    SessionError::BindingViolated
                } else {
                    SessionError::Unauthenticated
                },
            );
        }
        access.check(&record.group)?;
        if bound(&record, &self.policies.for_record(&record).binding) {
            self.whoami_binding(&record, &token, client, proof, access, now)
                .await?;
        }
        let touch_after = millis(self.touch_interval_for(self.policies.for_record(&record)));
        if !needs_write(&record, client, touch_after, now) {
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
                let policy = self.policies.for_record(record);
                touch_decision(record, policy, &presented, client, touch_after, now)
            })
            .await?
            .filter(authentic)
            .ok_or(SessionError::Unauthenticated)?;
        Ok(self.snapshot(touched, now))
    }

    /// The binding check of a Whoami of `record`, which `token` proved: the network where
    /// the group binds one, the device proof where it asks one on every call. A failure
    /// that ends the session revokes it, if the token is still its own.
    async fn whoami_binding(
        &self,
        record: &SessionRecord,
        token: &Token,
        client: Option<&ClientContext>,
        proof: Option<&PresentedProof>,
        access: Acting<'_>,
        now: u64,
    ) -> Result<(), SessionError> {
        let policy = self.policies.for_record(record);
        let finding = if proof_due(record, &policy.binding, BoundUse::Whoami) {
            let text = token.encode(TokenKind::Session);
            self.examine_proof(proof, &text, None, now).await?
        } else {
            ProofFinding::Absent
        };
        let Err(failure) =
            binding_check(record, &policy.binding, &finding, client, BoundUse::Whoami)
        else {
            return Ok(());
        };
        if ends_session(failure, &policy.binding) {
            let presented = token.secret.hash();
            let revoked = self
                .store
                .update(token.session_id, Commit::Durable, &mut |record| {
                    let policy = self.policies.for_record(record);
                    if !authentic(record, policy, &presented, now) {
                        return Decision::Keep;
                    }
                    binding_refused(record, failure, policy, now, access.actor, |_| ()).0
                })
                .await?;
            if revoked.as_ref().is_some_and(ended_by_binding) {
                count_revoked("binding", 1);
            }
        }
        Err(self.binding_refusal(failure, &policy.binding).await?)
    }

    fn touch_interval_for(&self, policy: &GroupPolicy) -> Duration {
        match policy.idle_timeout {
            Some(idle) => self.settings.touch_interval.min(idle / 2),
            None => self.settings.touch_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{at_minute, policy, put, revoked, session};
    use super::*;
    use crate::session::token::Secret;

    const TOUCH_AFTER_MS: u64 = 60_000;

    fn client(ip: &str, user_agent: &str) -> ClientContext {
        ClientContext {
            ip: ip.into(),
            user_agent: user_agent.into(),
            ..ClientContext::default()
        }
    }

    #[test]
    fn touch_outcomes() {
        let secret = Secret::generate().expect("the OS random generator works in tests");
        let wrong = Secret::generate().expect("the OS random generator works in tests");
        let seen = SessionRecord {
            session_token_hash: secret.hash().to_vec(),
            last_access_at_ms: at_minute(10),
            last_ip: "10.0.0.1".into(),
            last_user_agent: "ua".into(),
            last_seen_at_ms: at_minute(10),
            ..session()
        };
        let in_grace = SessionRecord {
            grace_until_ms: at_minute(11),
            sealed_successor: vec![1; 8],
            ..seen.clone()
        };
        let known = client("10.0.0.1", "ua");
        let moved = client("10.0.0.2", "");
        let (token, other) = (secret.hash(), wrong.hash());
        // (case, record, presented, client, now, written: (last access, last ip, last seen))
        #[rustfmt::skip]
        let cases = [
            ("fresh and known: no write", seen.clone(), &token, Some(&known), at_minute(10) + 1, None),
            ("no client, fresh: no write", seen.clone(), &token, None, at_minute(10) + 1, None),
            ("stale: touched and seen", seen.clone(), &token, Some(&known), at_minute(11), Some((at_minute(11), "10.0.0.1", at_minute(11)))),
            ("stale without a client: touched only", seen.clone(), &token, None, at_minute(11), Some((at_minute(11), "10.0.0.1", at_minute(10)))),
            ("a new ip: seen at once, not touched", seen.clone(), &token, Some(&moved), at_minute(10) + 1, Some((at_minute(10), "10.0.0.2", at_minute(10) + 1))),
            ("using the successor closes the grace window", in_grace.clone(), &token, None, at_minute(10) + 1, Some((at_minute(10), "10.0.0.1", at_minute(10)))),
            ("wrong token: left alone", seen.clone(), &other, Some(&moved), at_minute(11), None),
            ("revoked: left alone", revoked(seen.clone()), &token, Some(&moved), at_minute(11), None),
            ("expired: left alone", seen.clone(), &token, Some(&moved), at_minute(60), None),
        ];
        for (case, record, presented, client, now, written) in cases {
            let decision =
                touch_decision(&record, &policy(), presented, client, TOUCH_AFTER_MS, now);
            let got = put(decision).map(|(next, event)| {
                assert_eq!(event, None, "{case}: a touch logs no event");
                assert_eq!(
                    (next.grace_until_ms, next.sealed_successor.len()),
                    (0, 0),
                    "{case}"
                );
                (next.last_access_at_ms, next.last_ip, next.last_seen_at_ms)
            });
            let written = written.map(|(access, ip, seen)| (access, ip.to_owned(), seen));
            assert_eq!(got, written, "{case}");
        }
    }
}
