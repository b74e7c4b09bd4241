//! Why a proxied request may not pass, and how a proxy says so: the HTTP status and the
//! headers of the answer (the RFC 6750 `Bearer` challenge, or RFC 9449's `DPoP` one and
//! `DPoP-Nonce` when a device-bound session's proof failed).

use tonic::{Code, Status};

use crate::session::binding::BindingFailure;
use crate::session::SessionError;

/// `WWW-Authenticate` of a request that brought no token (RFC 6750).
const CHALLENGE: &str = "Bearer realm=\"sessiond\"";
/// `WWW-Authenticate` of a request whose token is malformed, unknown, expired or revoked.
const CHALLENGE_INVALID: &str = "Bearer realm=\"sessiond\", error=\"invalid_token\"";
/// The proof algorithms a device may sign with, as RFC 9449 §7.1's `algs` lists them.
const PROOF_ALGORITHMS: &str = "EdDSA ES256";

/// The header a challenge travels in.
pub const WWW_AUTHENTICATE: &str = "www-authenticate";
/// The header a server nonce travels in (RFC 9449 §8).
pub const DPOP_NONCE: &str = "dpop-nonce";

/// Why a request may not pass.
#[derive(Debug)]
pub enum Refusal {
    /// No session token where the settings say to look.
    NoToken,
    /// A token that is unreadable, malformed, unknown, expired or revoked (a binding
    /// violation included); a `DPoP` header that is unreadable, oversized or sent twice;
    /// a network-bound session asked from another network.
    BadToken,
    /// A device-bound session's proof is missing or fails: its reason, and for
    /// `NONCE_REQUIRED` the nonce to retry with.
    BadProof {
        failure: BindingFailure,
        nonce: Option<String>,
    },
    /// A valid session of a group this gateway does not accept.
    GroupNotAccepted,
    /// sessiond could not decide (store unreachable, or its own failure): never a pass.
    Undecided(Status),
}

impl Refusal {
    /// The refusal a failed Whoami of the gatekeeper becomes.
    pub fn of(error: SessionError) -> Refusal {
        match error {
            // The network rule is not the proof's: the token is the one refused.
            SessionError::Binding {
                failure: BindingFailure::NetworkMismatch | BindingFailure::NetworkUnknown,
                ..
            } => Refusal::BadToken,
            SessionError::Binding { failure, nonce } => Refusal::BadProof { failure, nonce },
            SessionError::Unauthenticated
            | SessionError::BindingViolated
            | SessionError::InvalidArgument { .. } => Refusal::BadToken,
            SessionError::PermissionDenied(_) => Refusal::GroupNotAccepted,
            // The one mapping to a status, which also logs the failure.
            error => Refusal::Undecided(Status::from(error)),
        }
    }

    /// The HTTP status a proxy answers the client with.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::NoToken | Refusal::BadToken | Refusal::BadProof { .. } => 401,
            Refusal::GroupNotAccepted => 403,
            Refusal::Undecided(status) if retryable(status.code()) => 503,
            Refusal::Undecided(_) => 500,
        }
    }

    /// The headers of the proxy's answer (names in lower case): a 401's challenge and,
    /// when a proof lacked a fresh nonce, the nonce to retry with.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Refusal::NoToken => vec![(WWW_AUTHENTICATE, CHALLENGE.to_owned())],
            Refusal::BadToken => vec![(WWW_AUTHENTICATE, CHALLENGE_INVALID.to_owned())],
            Refusal::BadProof { failure, nonce } => {
                let mut headers = vec![(WWW_AUTHENTICATE, dpop_challenge(*failure))];
                headers.extend(nonce.iter().map(|nonce| (DPOP_NONCE, nonce.clone())));
                headers
            }
            Refusal::GroupNotAccepted | Refusal::Undecided(_) => Vec::new(),
        }
    }
}

/// RFC 9449's challenge for a failed proof (§7.1), or for one without the nonce the
/// server wants (§8: `use_dpop_nonce`); the description is the failure's reason.
fn dpop_challenge(failure: BindingFailure) -> String {
    let error = match failure {
        BindingFailure::NonceRequired => "use_dpop_nonce",
        _ => "invalid_dpop_proof",
    };
    format!(
        "DPoP realm=\"sessiond\", algs=\"{PROOF_ALGORITHMS}\", error=\"{error}\", \
         error_description=\"{}\"",
        failure.reason()
    )
}

/// Codes of failures that may pass by themselves: 503, so the client may retry.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Aborted | Code::ResourceExhausted | Code::DeadlineExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: SessionError) -> (u16, Vec<(&'static str, String)>) {
        let refusal = Refusal::of(error);
        (refusal.http_status(), refusal.headers())
    }

    fn binding(failure: BindingFailure, nonce: Option<&str>) -> SessionError {
        SessionError::Binding {
            failure,
            nonce: nonce.map(str::to_owned),
        }
    }

    #[test]
    fn binding_failures_answer_as_rfc_9449_says() {
        let invalid = |reason: &str| {
            format!(
                "DPoP realm=\"sessiond\", algs=\"EdDSA ES256\", error=\"invalid_dpop_proof\", \
                 error_description=\"{reason}\""
            )
        };
        let bearer_invalid = vec![(WWW_AUTHENTICATE, CHALLENGE_INVALID.to_owned())];
        // (case, error, status, headers)
        #[rustfmt::skip]
        let cases = [
            ("no proof", binding(BindingFailure::ProofMissing, None), 401, vec![(WWW_AUTHENTICATE, invalid("PROOF_MISSING"))]),
            ("a replay", binding(BindingFailure::Replayed, None), 401, vec![(WWW_AUTHENTICATE, invalid("REPLAYED"))]),
            ("another request", binding(BindingFailure::RequestMismatch, None), 401, vec![(WWW_AUTHENTICATE, invalid("REQUEST_MISMATCH"))]),
            ("a nonce due", binding(BindingFailure::NonceRequired, Some("n1")), 401, vec![
                (WWW_AUTHENTICATE, "DPoP realm=\"sessiond\", algs=\"EdDSA ES256\", error=\"use_dpop_nonce\", error_description=\"NONCE_REQUIRED\"".to_owned()),
                (DPOP_NONCE, "n1".to_owned()),
            ]),
            ("another network", binding(BindingFailure::NetworkMismatch, None), 401, bearer_invalid.clone()),
            ("no network", binding(BindingFailure::NetworkUnknown, None), 401, bearer_invalid.clone()),
            ("ended by a violation", SessionError::BindingViolated, 401, bearer_invalid.clone()),
            ("a bad token", SessionError::Unauthenticated, 401, bearer_invalid),
            ("another group", SessionError::PermissionDenied("no".into()), 403, vec![]),
        ];
        for (case, error, status, headers) in cases {
            assert_eq!(answer(error), (status, headers), "{case}");
        }
    }
}
