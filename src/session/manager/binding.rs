//! Device and network binding at Refresh and Whoami. `binding_check` is the rule: whether
//! a session's binding holds for a call; around it, the proof checks that need the
//! store (proof ids already used, nonces handed out) and the refusal a failure becomes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::{ended, SessionManager};
use crate::metrics;
use crate::session::binding::{
    is_dbsc, network_check, verify_dbsc_response, verify_proof, BindingFailure, BindingPolicy,
    DeviceKey, NetworkBinding, OnBindingFailure, ProofExpectations, ProofOnUse,
};
use crate::session::policy::GroupPolicy;
use crate::session::SessionError;
use crate::store::SessionId;
use crate::store::{ClientContext, Decision, EndReason, SessionRecord, StoredState};

/// A device proof as a call presented it (the `dpop` metadata), with the request it must
/// name: the gRPC call itself, unless the caller forwarded a client's proof of another
/// request (`dpop-method` and `dpop-url`).
#[derive(Clone, Debug)]
pub struct PresentedProof {
    pub proof: String,
    pub method: String,
    pub uri: String,
}

/// What the checks that need no session found in what a call presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ProofFinding {
    /// No proof came with the call.
    Absent,
    /// The proof fails whatever the session.
    Invalid(BindingFailure),
    /// A good proof by the key with `thumbprint`; `nonce_fresh`: it carries a nonce this
    /// store handed out and still remembers.
    Valid {
        thumbprint: String,
        nonce_fresh: bool,
    },
}

/// The call a binding is checked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BoundUse {
    Refresh,
    Whoami,
}

/// The binding rule: whether `record`'s binding (of `policy`) holds for a `used_for`
/// call from `client` that presented `finding`. A session started without an ip has no
/// network to compare; an unbound session ignores any proof (RFC 9449 lets a proof come
/// with an unbound token).
pub(super) fn binding_check(
    record: &SessionRecord,
    policy: &BindingPolicy,
    finding: &ProofFinding,
    client: Option<&ClientContext>,
    used_for: BoundUse,
) -> Result<(), BindingFailure> {
    let started_from = record
        .client
        .as_ref()
        .map_or("", |client| client.ip.as_str());
    let calling_from = client.map(|client| client.ip.as_str());
    network_check(policy.network_binding, started_from, calling_from)?;
    if !proof_due(record, policy, used_for) {
        return Ok(());
    }
    match finding {
        ProofFinding::Absent => Err(BindingFailure::ProofMissing),
        ProofFinding::Invalid(failure) => Err(*failure),
        ProofFinding::Valid { thumbprint, .. }
            if !bool::from(thumbprint.as_bytes().ct_eq(record.device_jkt.as_bytes())) =>
        {
            Err(BindingFailure::KeyMismatch)
        }
        ProofFinding::Valid {
            nonce_fresh: false, ..
        } if policy.require_nonce => Err(BindingFailure::NonceRequired),
        ProofFinding::Valid { .. } => Ok(()),
    }
}

/// `record` bound to the device `key` from now on.
pub(super) fn bind_to(record: &mut SessionRecord, key: &DeviceKey) {
    record.device_jkt = key.thumbprint().to_owned();
    record.device_jwk = key.to_json();
}

/// Whether `record` is bound at all, to a device or (by `policy`) to a network: the
/// Whoami of any other session skips the binding check.
pub(super) fn bound(record: &SessionRecord, policy: &BindingPolicy) -> bool {
    !record.device_jkt.is_empty() || policy.network_binding != NetworkBinding::Off
}

/// Whether a `used_for` call of `record` needs a device proof.
pub(super) fn proof_due(
    record: &SessionRecord,
    policy: &BindingPolicy,
    used_for: BoundUse,
) -> bool {
    !record.device_jkt.is_empty()
        && (used_for == BoundUse::Refresh || policy.proof_on_use == ProofOnUse::EveryCall)
}

/// Whether `failure` ends the session under `policy`: only with `revoke`, and only for
/// what a token away from its device produces.
pub(super) fn ends_session(failure: BindingFailure, policy: &BindingPolicy) -> bool {
    policy.on_binding_failure == OnBindingFailure::Revoke && failure.proves_theft()
}

/// Whether `record` is a session a binding violation ended: its owner, presenting the
/// token the thief could not use, learns why it must sign in again.
pub(super) fn ended_by_binding(record: &SessionRecord) -> bool {
    record.state() == StoredState::Revoked && record.end_reason() == EndReason::BindingViolation
}

/// The decision a failed binding check makes: revoke the session for it where `policy`
/// says, else change nothing. The outcome carries the failure.
pub(super) fn binding_refused<O>(
    record: &SessionRecord,
    failure: BindingFailure,
    policy: &GroupPolicy,
    now_ms: u64,
    actor: &str,
    outcome: impl FnOnce(BindingFailure) -> O,
) -> (Decision, O) {
    if ends_session(failure, &policy.binding) {
        let (next, event) = ended(record, EndReason::BindingViolation, now_ms, actor);
        (Decision::Put(Box::new(next), Some(event)), outcome(failure))
    } else {
        (Decision::Keep, outcome(failure))
    }
}

/// The key of a used proof id: per device key, so two devices' ids never collide.
fn used_proof_key(thumbprint: &str, jti: &str) -> String {
    format!("jti:{thumbprint}:{jti}")
}

fn nonce_key(nonce: &str) -> String {
    format!("nonce:{nonce}")
}

/// A fresh server nonce: 128 random bits, base64url.
fn server_nonce() -> Result<String, getrandom::Error> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    Ok(URL_SAFE_NO_PAD.encode(nonce))
}

impl SessionManager {
    /// The proof checks that need no session: the pure ones, then whether its id was
    /// used before (marked now, so a second use anywhere is a replay) and whether its
    /// nonce is one this store handed out. `token` is the token presented with it.
    /// `dbsc_session` is the session of a Refresh, where a DBSC response may stand in
    /// for the proof.
    pub(super) async fn examine_proof(
        &self,
        presented: Option<&PresentedProof>,
        token: &str,
        dbsc_session: Option<SessionId>,
        now_ms: u64,
    ) -> Result<ProofFinding, SessionError> {
        let Some(presented) = presented else {
            return Ok(ProofFinding::Absent);
        };
        let settings = self.settings.proofs;
        if let Some(session_id) = dbsc_session.filter(|_| is_dbsc(&presented.proof)) {
            return self
                .examine_dbsc(&presented.proof, session_id, now_ms)
                .await;
        }
        let expected = ProofExpectations {
            thumbprint: None,
            method: &presented.method,
            uri: &presented.uri,
            token,
            now_ms,
            max_skew_ms: crate::clock::millis(settings.max_skew),
        };
        let proof = match verify_proof(&presented.proof, &expected) {
            Ok(proof) => proof,
            Err(failure) => return Ok(ProofFinding::Invalid(failure)),
        };
        let used = used_proof_key(&proof.thumbprint, &proof.jti);
        if !self.store.mark_once(&used, settings.max_skew * 2).await? {
            return Ok(ProofFinding::Invalid(BindingFailure::Replayed));
        }
        let nonce_fresh = match &proof.nonce {
            Some(nonce) => self.store.is_marked(&nonce_key(nonce)).await?,
            None => false,
        };
        Ok(ProofFinding::Valid {
            thumbprint: proof.thumbprint,
            nonce_fresh,
        })
    }

    /// A DBSC response as the proof of a Refresh of `session_id`: checked with the key
    /// the session is bound to (the response names none); its challenge must be a nonce
    /// this store handed out, and is good for one response.
    async fn examine_dbsc(
        &self,
        response: &str,
        session_id: SessionId,
        now_ms: u64,
    ) -> Result<ProofFinding, SessionError> {
        let settings = self.settings.proofs;
        // Unknown or unbound: the rule refuses the token or ignores the proof.
        let Some(record) = self.store.get(session_id).await? else {
            return Ok(ProofFinding::Absent);
        };
        let Ok(key) = DeviceKey::from_json(&record.device_jwk) else {
            return Ok(ProofFinding::Absent);
        };
        let max_skew_ms = crate::clock::millis(settings.max_skew);
        let response = match verify_dbsc_response(response, Some(&key), now_ms, max_skew_ms) {
            Ok(response) => response,
            Err(failure) => return Ok(ProofFinding::Invalid(failure)),
        };
        if !self
            .store
            .is_marked(&nonce_key(&response.challenge))
            .await?
        {
            return Ok(ProofFinding::Invalid(BindingFailure::NonceRequired));
        }
        let used = format!("dbsc:{}", response.challenge);
        if !self.store.mark_once(&used, settings.nonce_lifetime).await? {
            return Ok(ProofFinding::Invalid(BindingFailure::Replayed));
        }
        Ok(ProofFinding::Valid {
            thumbprint: record.device_jkt,
            nonce_fresh: true,
        })
    }

    /// The error a failed binding check of a session of `policy` answers with, counted
    /// by reason. `NONCE_REQUIRED` carries a fresh nonce, and so does `PROOF_MISSING`
    /// where the group wants nonces (a DBSC refresh asks for its challenge that way).
    pub(super) async fn binding_refusal(
        &self,
        failure: BindingFailure,
        policy: &BindingPolicy,
    ) -> Result<SessionError, SessionError> {
        ::metrics::counter!(metrics::BINDING_FAILURES, "reason" => failure.reason()).increment(1);
        let nonce_due = failure == BindingFailure::NonceRequired
            || (failure == BindingFailure::ProofMissing && policy.require_nonce);
        let nonce = if nonce_due {
            let nonce = server_nonce()?;
            let lifetime = self.settings.proofs.nonce_lifetime;
            self.store.mark_once(&nonce_key(&nonce), lifetime).await?;
            Some(nonce)
        } else {
            None
        };
        Ok(SessionError::Binding { failure, nonce })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{at_minute, policy, put, session, session_id, ANYONE};
    use super::super::rotation::{refresh_decision, RefreshCall, RefreshOutcome};
    use super::super::TokenPair;
    use super::*;
    use crate::session::token::{new_nonce, Secret, Token, RETIRED_DIGEST_LEN};
    use crate::store::EventKind;

    fn bound(ip: &str) -> SessionRecord {
        SessionRecord {
            device_jkt: "jkt-of-the-device".into(),
            client: Some(ClientContext {
                ip: ip.into(),
                ..ClientContext::default()
            }),
            ..session()
        }
    }

    fn valid(thumbprint: &str, nonce_fresh: bool) -> ProofFinding {
        ProofFinding::Valid {
            thumbprint: thumbprint.into(),
            nonce_fresh,
        }
    }

    fn from(ip: &str) -> ClientContext {
        ClientContext {
            ip: ip.into(),
            ..ClientContext::default()
        }
    }

    #[test]
    fn binding_outcomes() {
        use BindingFailure::*;
        use BoundUse::*;
        let refresh_only = BindingPolicy::default();
        let every_call = BindingPolicy {
            proof_on_use: ProofOnUse::EveryCall,
            ..BindingPolicy::default()
        };
        let nonces = BindingPolicy {
            require_nonce: true,
            ..BindingPolicy::default()
        };
        let subnet = BindingPolicy {
            network_binding: NetworkBinding::Subnet,
            ..BindingPolicy::default()
        };
        let unbound = SessionRecord {
            device_jkt: String::new(),
            ..bound("10.0.0.1")
        };
        let good = valid("jkt-of-the-device", false);
        let same_net = from("10.0.0.7");
        let other_net = from("10.0.9.1");
        // (case, record, policy, finding, client, call, outcome)
        #[rustfmt::skip]
        let cases = [
            ("a good proof at Refresh", bound("10.0.0.1"), &refresh_only, good.clone(), None, Refresh, Ok(())),
            ("no proof at Refresh", bound("10.0.0.1"), &refresh_only, ProofFinding::Absent, None, Refresh, Err(ProofMissing)),
            ("a bad proof keeps its reason", bound("10.0.0.1"), &refresh_only, ProofFinding::Invalid(Replayed), None, Refresh, Err(Replayed)),
            ("another device's key", bound("10.0.0.1"), &refresh_only, valid("jkt-of-another", false), None, Refresh, Err(KeyMismatch)),
            ("Whoami needs none by default", bound("10.0.0.1"), &refresh_only, ProofFinding::Absent, None, Whoami, Ok(())),
            ("Whoami with every_call needs one", bound("10.0.0.1"), &every_call, ProofFinding::Absent, None, Whoami, Err(ProofMissing)),
            ("Whoami with every_call and a good one", bound("10.0.0.1"), &every_call, good.clone(), None, Whoami, Ok(())),
            ("an unbound session ignores a proof", unbound.clone(), &refresh_only, valid("jkt-of-another", false), None, Refresh, Ok(())),
            ("an unbound session needs none", unbound.clone(), &every_call, ProofFinding::Absent, None, Refresh, Ok(())),
            ("a nonce is due", bound("10.0.0.1"), &nonces, good.clone(), None, Refresh, Err(NonceRequired)),
            ("a fresh nonce passes", bound("10.0.0.1"), &nonces, valid("jkt-of-the-device", true), None, Refresh, Ok(())),
            ("the same subnet", unbound.clone(), &subnet, ProofFinding::Absent, Some(&same_net), Whoami, Ok(())),
            ("another subnet", unbound.clone(), &subnet, ProofFinding::Absent, Some(&other_net), Whoami, Err(NetworkMismatch)),
            ("no ip reported", unbound.clone(), &subnet, ProofFinding::Absent, None, Refresh, Err(NetworkUnknown)),
            ("the network is checked before the proof", bound("10.0.0.1"), &subnet, ProofFinding::Absent, Some(&other_net), Refresh, Err(NetworkMismatch)),
        ];
        for (case, record, policy, finding, client, used_for, outcome) in cases {
            assert_eq!(
                binding_check(&record, policy, &finding, client, used_for),
                outcome,
                "{case}"
            );
        }
    }

    /// A bound session whose refresh token is `current`, after one rotation away from
    /// `first` (its grace window open until minute 2).
    fn rotated_once(first: &Secret, current: &TokenPair) -> SessionRecord {
        let sealed = first.seal_pair(
            session_id(),
            (&current.session, &current.refresh),
            new_nonce().expect("the OS random generator works in tests"),
        );
        let mut retired = first.hash().to_vec();
        retired.truncate(RETIRED_DIGEST_LEN);
        SessionRecord {
            device_jkt: "jkt-of-the-device".into(),
            refresh_token_hash: current.refresh.hash().to_vec(),
            retired_refresh_digests: retired,
            grace_until_ms: at_minute(2),
            sealed_successor: sealed,
            ..session()
        }
    }

    #[test]
    fn bound_refresh_outcomes() {
        let first = Secret::generate().expect("the OS random generator works in tests");
        let current = TokenPair::generate().expect("the OS random generator works in tests");
        let record = rotated_once(&first, &current);
        let ended = binding_refused(
            &record,
            BindingFailure::ProofMissing,
            &revoking(),
            at_minute(1),
            "thief",
            |_| (),
        )
        .0;
        let ended = put(ended).expect("revoke ends the session").0;
        let good = valid("jkt-of-the-device", false);
        // (case, record, presented, proof, policy, outcome, event logged)
        #[rustfmt::skip]
        let cases = [
            ("current token, good proof: rotated", &record, &current.refresh, good.clone(), policy(), "rotated", Some(EventKind::Refreshed)),
            ("current token, no proof: refused", &record, &current.refresh, ProofFinding::Absent, policy(), "PROOF_MISSING", None),
            ("current token, no proof, revoke: ended", &record, &current.refresh, ProofFinding::Absent, revoking(), "PROOF_MISSING", Some(EventKind::Revoked)),
            ("current token, a nonce due, revoke: only refused", &record, &current.refresh, good.clone(), GroupPolicy { binding: BindingPolicy { require_nonce: true, ..revoking().binding }, ..policy() }, "NONCE_REQUIRED", None),
            ("grace replay without a proof: refused", &record, &first, ProofFinding::Absent, policy(), "PROOF_MISSING", None),
            ("grace replay with a good proof: the same pair", &record, &first, good.clone(), policy(), "replayed", None),
            ("a wrong token learns nothing of the binding", &record, &Secret::generate().expect("random"), ProofFinding::Absent, revoking(), "refused", None),
            ("the owner's token after a binding violation", &ended, &current.refresh, good.clone(), policy(), "ended by binding", None),
        ];
        for (case, record, presented, proof, policy, outcome, logged) in cases {
            let token = Token {
                session_id: session_id(),
                secret: presented.clone(),
            };
            let call = RefreshCall {
                token: &token,
                presented: &presented.hash(),
                expected_scope: None,
                access: ANYONE,
                successor: &TokenPair::generate().expect("random"),
                sealed_successor: b"sealed",
                client: None,
                proof: &proof,
            };
            let (decision, got) = refresh_decision(record, &call, at_minute(1), &policy);
            let got = match got {
                RefreshOutcome::Rotated => "rotated",
                RefreshOutcome::Replayed(_) => "replayed",
                RefreshOutcome::Refused => "refused",
                RefreshOutcome::BindingRefused(failure) => failure.reason(),
                RefreshOutcome::EndedByBinding => "ended by binding",
                RefreshOutcome::Reused | RefreshOutcome::Forbidden => "other",
            };
            assert_eq!(got, outcome, "{case}");
            let written = put(decision);
            assert_eq!(
                written.as_ref().map(|(_, event)| *event),
                logged.map(Some),
                "{case}"
            );
            if let Some((next, Some(EventKind::Revoked))) = written {
                assert_eq!(next.end_reason(), EndReason::BindingViolation, "{case}");
            }
        }
    }

    fn revoking() -> GroupPolicy {
        GroupPolicy {
            binding: BindingPolicy {
                on_binding_failure: OnBindingFailure::Revoke,
                ..BindingPolicy::default()
            },
            ..policy()
        }
    }

    #[test]
    fn only_revoke_and_theft_end_a_session() {
        let revoke = BindingPolicy {
            on_binding_failure: OnBindingFailure::Revoke,
            ..BindingPolicy::default()
        };
        assert!(ends_session(BindingFailure::ProofMissing, &revoke));
        assert!(ends_session(BindingFailure::KeyMismatch, &revoke));
        assert!(!ends_session(BindingFailure::NonceRequired, &revoke));
        assert!(!ends_session(BindingFailure::IssuedAtOutOfWindow, &revoke));
        assert!(!ends_session(
            BindingFailure::ProofMissing,
            &BindingPolicy::default()
        ));
    }
}
