//! Why a device-bound call was refused: the machine-readable reasons that go into
//! `google.rpc.ErrorInfo`, a sentence a caller can act on, and which of them prove theft.

/// Why a proof of possession (or the caller's network) did not match the session.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::AsRefStr, strum::IntoStaticStr, strum::EnumCount,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum BindingFailure {
    /// The call carried no proof.
    ProofMissing,
    /// The proof is not a compact JWS of JSON objects within the size limit, or a claim
    /// is missing or of the wrong type.
    ProofMalformed,
    /// The proof's `typ` header is not `dpop+jwt`.
    ProofTypeInvalid,
    /// The proof's `alg` is not EdDSA or ES256, or does not fit its key.
    AlgorithmNotAllowed,
    /// The proof's `jwk` header is not a supported public key.
    KeyInvalid,
    /// The signature does not verify with the proof's key.
    SignatureInvalid,
    /// The proof was signed by another key than the one the session is bound to.
    KeyMismatch,
    /// The proof's `iat` is too far from the server's clock.
    IssuedAtOutOfWindow,
    /// The proof's `jti` was seen before.
    Replayed,
    /// The proof's `ath` is not the hash of the token presented with it.
    TokenHashMismatch,
    /// The proof's `htm` or `htu` names another call.
    RequestMismatch,
    /// The session's group requires a server nonce that the proof lacks or has stale.
    NonceRequired,
    /// The caller's ip is outside the network the session started from.
    NetworkMismatch,
    /// The caller did not report the client's ip, so the network cannot be checked.
    NetworkUnknown,
}

impl BindingFailure {
    /// The `ErrorInfo.reason`, e.g. `PROOF_MISSING`.
    pub fn reason(&self) -> &'static str {
        self.into()
    }

    /// One sentence a caller can act on; it never echoes the proof or any token.
    pub fn message(&self) -> &'static str {
        match self {
            BindingFailure::ProofMissing => {
                "the session is bound to a device key: send a DPoP proof signed with it"
            }
            BindingFailure::ProofMalformed => {
                "the DPoP proof is not a compact JWS with the claims jti, iat, htm, htu and ath"
            }
            BindingFailure::ProofTypeInvalid => "the DPoP proof's typ header must be dpop+jwt",
            BindingFailure::AlgorithmNotAllowed => {
                "the DPoP proof must be signed with EdDSA (Ed25519 key) or ES256 (P-256 key)"
            }
            BindingFailure::KeyInvalid => {
                "the DPoP proof's jwk header must be an Ed25519 or P-256 public key"
            }
            BindingFailure::SignatureInvalid => {
                "the DPoP proof's signature does not verify with its jwk"
            }
            BindingFailure::KeyMismatch => {
                "the DPoP proof is signed with another key than the session's device key"
            }
            BindingFailure::IssuedAtOutOfWindow => {
                "the DPoP proof's iat is too far from the server's time: check the device clock"
            }
            BindingFailure::Replayed => {
                "the DPoP proof was used before: make a new proof with a fresh jti for every call"
            }
            BindingFailure::TokenHashMismatch => {
                "the DPoP proof's ath is not the hash of the token sent with it"
            }
            BindingFailure::RequestMismatch => {
                "the DPoP proof's htm or htu names another call than this one"
            }
            BindingFailure::NonceRequired => {
                "the session's group requires a server nonce: retry once with the nonce in this error's metadata"
            }
            BindingFailure::NetworkMismatch => {
                "the call comes from another network than the one the session started from"
            }
            BindingFailure::NetworkUnknown => {
                "the session is bound to a network: report the client's ip with the call"
            }
        }
    }

    /// Whether this failure shows that someone other than the device holds the token,
    /// so the session should be revoked rather than the call merely refused.
    ///
    /// True for what a device holding its key, on its network, never produces: no proof,
    /// a broken or foreign proof, a reused proof, or another network. False for what an
    /// honest device meets in normal operation: a drifting clock (`iat`), a proxy that
    /// rewrites the URL the client signed (`htu`), the nonce round trip, and a caller
    /// that did not report the client's ip; revoking on those would log out real users.
    pub fn proves_theft(&self) -> bool {
        match self {
            BindingFailure::ProofMissing
            | BindingFailure::ProofMalformed
            | BindingFailure::ProofTypeInvalid
            | BindingFailure::AlgorithmNotAllowed
            | BindingFailure::KeyInvalid
            | BindingFailure::SignatureInvalid
            | BindingFailure::KeyMismatch
            | BindingFailure::Replayed
            | BindingFailure::TokenHashMismatch
            | BindingFailure::NetworkMismatch => true,
            BindingFailure::IssuedAtOutOfWindow
            | BindingFailure::RequestMismatch
            | BindingFailure::NonceRequired
            | BindingFailure::NetworkUnknown => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use strum::EnumCount;

    use super::*;

    #[test]
    fn every_failure_has_its_reason_message_and_verdict() {
        use BindingFailure as F;
        // (failure, reason, proves theft)
        #[rustfmt::skip]
        let cases = [
            (F::ProofMissing, "PROOF_MISSING", true),
            (F::ProofMalformed, "PROOF_MALFORMED", true),
            (F::ProofTypeInvalid, "PROOF_TYPE_INVALID", true),
            (F::AlgorithmNotAllowed, "ALGORITHM_NOT_ALLOWED", true),
            (F::KeyInvalid, "KEY_INVALID", true),
            (F::SignatureInvalid, "SIGNATURE_INVALID", true),
            (F::KeyMismatch, "KEY_MISMATCH", true),
            (F::IssuedAtOutOfWindow, "ISSUED_AT_OUT_OF_WINDOW", false),
            (F::Replayed, "REPLAYED", true),
            (F::TokenHashMismatch, "TOKEN_HASH_MISMATCH", true),
            (F::RequestMismatch, "REQUEST_MISMATCH", false),
            (F::NonceRequired, "NONCE_REQUIRED", false),
            (F::NetworkMismatch, "NETWORK_MISMATCH", true),
            (F::NetworkUnknown, "NETWORK_UNKNOWN", false),
        ];
        assert_eq!(
            cases.len(),
            BindingFailure::COUNT,
            "a row for every failure"
        );
        for (failure, reason, theft) in cases {
            assert_eq!(failure.reason(), reason);
            assert_eq!(failure.as_ref(), reason);
            assert_eq!(failure.proves_theft(), theft, "{reason}");
            assert!(!failure.message().is_empty(), "{reason}");
        }
    }
}
