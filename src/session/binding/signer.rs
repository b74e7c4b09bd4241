//! The device's half of DPoP: a private key (Ed25519 or P-256) that makes proofs, for
//! the `sessionctl` CLI, for clients written in Rust, and for tests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::Signer;
use p256::pkcs8::LineEnding;
use serde_json::{json, Value};

use super::jwk::DeviceKey;
use super::proof::{token_hash, PROOF_TYPE};

/// Random bytes in a proof's `jti`.
const JTI_BYTES: usize = 16;

/// Why a device key could not be made, read, written or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The CSPRNG failed (key generation or `jti`).
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// The PEM holds no Ed25519 or P-256 PKCS#8 private key.
    #[error("not an Ed25519 or P-256 private key in PKCS#8 PEM (openssl genpkey writes one)")]
    BadKey,
    /// PKCS#8 encoding failed.
    #[error("cannot write the device key as PKCS#8 PEM")]
    Encode,
    /// The signature could not be made.
    #[error("cannot sign with the device key")]
    Sign,
}

enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A device's private key, with its public half. `Debug` shows only the thumbprint.
pub struct DeviceSigner {
    key: PrivateKey,
    public: DeviceKey,
}

impl std::fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSigner")
            .field("thumbprint", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DeviceSigner {
    /// A new Ed25519 key from the operating system's CSPRNG.
    pub fn generate_ed25519() -> Result<DeviceSigner, SignerError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| SignerError::Randomness)?;
        Ok(DeviceSigner::ed25519(
            ed25519_dalek::SigningKey::from_bytes(&seed),
        ))
    }

    /// A new P-256 key from the operating system's CSPRNG.
    pub fn generate_p256() -> Result<DeviceSigner, SignerError> {
        // 32 random bytes are a valid scalar (non-zero, below the group order) but for
        // a chance of about 2^-32; a few draws make a failure the CSPRNG's.
        for _ in 0..4 {
            let mut scalar = [0u8; 32];
            getrandom::fill(&mut scalar).map_err(|_| SignerError::Randomness)?;
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&scalar) {
                return Ok(DeviceSigner::p256(key));
            }
        }
        Err(SignerError::Randomness)
    }

    /// The key in a PKCS#8 PEM document ("PRIVATE KEY"), Ed25519 or P-256, as
    /// `openssl genpkey -algorithm ed25519` or
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` write it.
    pub fn from_pkcs8_pem(pem: &str) -> Result<DeviceSigner, SignerError> {
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(DeviceSigner::ed25519(key));
        }
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map(DeviceSigner::p256)
            .map_err(|_| SignerError::BadKey)
    }

    fn ed25519(key: ed25519_dalek::SigningKey) -> DeviceSigner {
        DeviceSigner {
            public: DeviceKey::from_ed25519(key.verifying_key()),
            key: PrivateKey::Ed25519(key),
        }
    }

    fn p256(key: p256::ecdsa::SigningKey) -> DeviceSigner {
        DeviceSigner {
            public: DeviceKey::from_p256(*key.verifying_key()),
            key: PrivateKey::P256(key),
        }
    }

    /// The private key as a PKCS#8 PEM document, to keep on the device.
    pub fn to_pkcs8_pem(&self) -> Result<String, SignerError> {
        let pem = match &self.key {
            PrivateKey::Ed25519(key) => key.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P256(key) => key.to_pkcs8_pem(LineEnding::LF),
        };
        pem.map(|pem| pem.as_str().to_owned())
            .map_err(|_| SignerError::Encode)
    }

    /// The public key, what a device registers with its session.
    pub fn device_key(&self) -> &DeviceKey {
        &self.public
    }

    /// The public JWK as JSON text (no private member).
    pub fn public_jwk_json(&self) -> String {
        self.public.to_json()
    }

    /// The key's RFC 7638 thumbprint (the session's `jkt`).
    pub fn thumbprint(&self) -> &str {
        self.public.thumbprint()
    }

    /// A DPoP proof for one call: `method` and `uri` of the call, the `token` sent with
    /// it, the server's `nonce` if it asked for one, and the device's time `now_ms`.
    pub fn proof(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        nonce: Option<&str>,
        now_ms: u64,
    ) -> Result<String, SignerError> {
        let mut jti = [0u8; JTI_BYTES];
        getrandom::fill(&mut jti).map_err(|_| SignerError::Randomness)?;
        let header = json!({
            "typ": PROOF_TYPE,
            "alg": self.public.algorithm().jws_name(),
            "jwk": self.public.to_value(),
        });
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now_ms / 1000,
            "htm": method,
            "htu": uri,
            "ath": token_hash(token),
        });
        if let (Some(nonce), Some(claims)) = (nonce, claims.as_object_mut()) {
            claims.insert("nonce".to_owned(), nonce.into());
        }
        self.sign_compact(&header, &claims)
    }

    /// A compact JWS of any `header` and `claims`, signed with this key whatever the
    /// header says: `proof` uses it, and tests build hostile proofs with it.
    pub fn sign_compact(&self, header: &Value, claims: &Value) -> Result<String, SignerError> {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.key {
            PrivateKey::Ed25519(key) => key
                .try_sign(input.as_bytes())
                .map(|signature| signature.to_bytes().to_vec()),
            PrivateKey::P256(key) => key
                .try_sign(input.as_bytes())
                .map(|signature: p256::ecdsa::Signature| signature.to_bytes().to_vec()),
        }
        .map_err(|_| SignerError::Sign)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::binding::proof::{verify_proof, ProofExpectations};

    /// Written by `openssl genpkey -algorithm ed25519` (OpenSSL 3.0), a test key only.
    const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIG3M5sSP/apK23KVM9L6OjnQSTg5gwl+V/UIIcbUtA27
-----END PRIVATE KEY-----
";
    /// Its public key, read back with `openssl pkey -pubout`.
    const OPENSSL_ED25519_X: &str = "SHoV8stsIfxBDUkxX9abCumC-Lw0MR-RhsInzUKLERY";

    /// Written by `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
    const OPENSSL_P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgF2C4D5zyfvQMxSnE
eA2E+BZK1JQQaxxAqDkPsnwHyR6hRANCAASm0m2Z0GzQ66P8JffNmjHyBzFGInGq
iTT+Xz2PWNZLaDQOjDqfOk/XBoB+E/Ue4tWx2Ie39D6rYlkmHIbxjjDW
-----END PRIVATE KEY-----
";
    /// Its public key, read back with `openssl ec -pubout`.
    const OPENSSL_P256_XY: (&str, &str) = (
        "ptJtmdBs0Ouj_CX3zZox8gcxRiJxqok0_l89j1jWS2g",
        "NA6MOp86T9cGgH4T9R7i1bHYh7f0PqtiWSYchvGOMNY",
    );

    #[test]
    fn openssl_keys_load_with_their_public_jwk() {
        let (x, y) = OPENSSL_P256_XY;
        // (case, PEM, public JWK)
        let cases = [
            (
                "Ed25519",
                OPENSSL_ED25519,
                json!({"crv": "Ed25519", "kty": "OKP", "x": OPENSSL_ED25519_X}),
            ),
            (
                "P-256",
                OPENSSL_P256,
                json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}),
            ),
        ];
        for (case, pem, jwk) in cases {
            let signer = DeviceSigner::from_pkcs8_pem(pem).expect(case);
            assert_eq!(signer.public_jwk_json(), jwk.to_string(), "{case}");
            let again = signer.to_pkcs8_pem().expect(case);
            let reloaded = DeviceSigner::from_pkcs8_pem(&again).expect(case);
            assert_eq!(reloaded.thumbprint(), signer.thumbprint(), "{case}");
        }
    }

    #[test]
    fn what_is_not_a_device_key_is_refused() {
        let public_only = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEASHoV8stsIfxBDUkxX9abCumC+Lw0MR+RhsInzUKLERY=\n-----END PUBLIC KEY-----\n";
        for pem in ["", "not a key", public_only] {
            assert_eq!(
                DeviceSigner::from_pkcs8_pem(pem).map(|s| s.thumbprint().to_owned()),
                Err(SignerError::BadKey),
                "{pem}"
            );
        }
    }

    #[test]
    fn a_generated_keys_proof_verifies_and_carries_its_claims() {
        let signers = [
            DeviceSigner::generate_ed25519().expect("the OS random generator works in tests"),
            DeviceSigner::generate_p256().expect("the OS random generator works in tests"),
        ];
        for signer in signers {
            assert!(!signer.public_jwk_json().contains("\"d\""));
            let proof = signer
                .proof(
                    "POST",
                    "https://a.example/x",
                    "st_t",
                    Some("n1"),
                    1_700_000_000_123,
                )
                .expect("signed");
            let expected = ProofExpectations {
                thumbprint: Some(signer.thumbprint()),
                method: "POST",
                uri: "https://a.example/x",
                token: "st_t",
                now_ms: 1_700_000_000_123,
                max_skew_ms: 1000,
            };
            let verified = verify_proof(&proof, &expected).expect("a good proof");
            assert_eq!(verified.issued_at_ms, 1_700_000_000_000);
            assert_eq!(verified.nonce.as_deref(), Some("n1"));
            assert_eq!(
                URL_SAFE_NO_PAD.decode(&verified.jti).map(|j| j.len()),
                Ok(16)
            );
            assert!(format!("{signer:?}").contains(signer.thumbprint()));
        }
    }
}
