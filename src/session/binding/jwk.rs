//! A device's public key as a JWK, Ed25519 (RFC 8037) or P-256 (RFC 7518) only, and its
//! RFC 7638 thumbprint: the `jkt` that a device-bound session stores.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The longest JWK text accepted; a public Ed25519 or P-256 JWK takes about 200 bytes.
pub const MAX_JWK_BYTES: usize = 1024;

/// JWK members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2,
/// §6.4; RFC 8037 §2): a device sends none of them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK is not a device key we accept. Each message completes a sentence that
/// starts with the field's name, e.g. "device_key is not a JSON object".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// The text is over `MAX_JWK_BYTES`.
    #[error("is longer than {MAX_JWK_BYTES} bytes: send only the public JWK")]
    TooLong,
    /// The text is not a JSON object.
    #[error("is not a JSON object: send the public key as a JWK")]
    NotJson,
    /// The JWK holds a private or symmetric member (named).
    #[error("holds private key material ({0}): send the public key only")]
    PrivateKey(&'static str),
    /// Another `kty` or `crv` than OKP/Ed25519 or EC/P-256.
    #[error("is not a supported key: use kty OKP with crv Ed25519, or kty EC with crv P-256")]
    Unsupported,
    /// A coordinate is not 32 bytes of base64url, or not a usable point (why).
    #[error("is malformed: {0}")]
    Malformed(&'static str),
}

/// The signature algorithm a device key signs with, as JWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (`kty` OKP), JWS `alg` EdDSA.
    EdDsa,
    /// ECDSA over P-256 with SHA-256 (`kty` EC), JWS `alg` ES256.
    Es256,
}

impl KeyAlgorithm {
    /// The JWS `alg` header value.
    pub fn jws_name(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDsa => "EdDSA",
            KeyAlgorithm::Es256 => "ES256",
        }
    }
}

#[derive(Debug, Clone)]
enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// A device's public key, checked to be a usable Ed25519 or P-256 point.
#[derive(Debug, Clone)]
pub struct DeviceKey {
    key: PublicKey,
    thumbprint: String,
}

impl DeviceKey {
    /// Parses a public JWK given as JSON text (at most `MAX_JWK_BYTES`).
    pub fn from_json(text: &str) -> Result<DeviceKey, KeyProblem> {
        if text.len() > MAX_JWK_BYTES {
            return Err(KeyProblem::TooLong);
        }
        let value: Value = serde_json::from_str(text).map_err(|_| KeyProblem::NotJson)?;
        DeviceKey::from_value(&value)
    }

    /// Parses a public JWK already parsed as JSON, e.g. a proof's `jwk` header.
    pub fn from_value(value: &Value) -> Result<DeviceKey, KeyProblem> {
        let jwk = value.as_object().ok_or(KeyProblem::NotJson)?;
        if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| jwk.contains_key(*m)) {
            return Err(KeyProblem::PrivateKey(member));
        }
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        match (text("kty"), text("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let x = coordinate(jwk, "x", "x must be 32 bytes of base64url")?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| KeyProblem::Malformed("x is not an Ed25519 point"))?;
                // A small-order point verifies forged signatures; no real device has one.
                if key.is_weak() {
                    return Err(KeyProblem::Malformed("x is a weak Ed25519 point"));
                }
                Ok(DeviceKey::from_ed25519(key))
            }
            (Some("EC"), Some("P-256")) => {
                let x = coordinate(jwk, "x", "x must be 32 bytes of base64url")?;
                let y = coordinate(jwk, "y", "y must be 32 bytes of base64url")?;
                let point =
                    p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| KeyProblem::Malformed("x and y are not a point on P-256"))?;
                Ok(DeviceKey::from_p256(key))
            }
            _ => Err(KeyProblem::Unsupported),
        }
    }

    /// The device key of an Ed25519 public key.
    pub(crate) fn from_ed25519(key: ed25519_dalek::VerifyingKey) -> DeviceKey {
        DeviceKey::with_thumbprint(PublicKey::Ed25519(key))
    }

    /// The device key of a P-256 public key.
    pub(crate) fn from_p256(key: p256::ecdsa::VerifyingKey) -> DeviceKey {
        DeviceKey::with_thumbprint(PublicKey::P256(key))
    }

    fn with_thumbprint(key: PublicKey) -> DeviceKey {
        let members = required_members(&key).to_string();
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(members.as_bytes()));
        DeviceKey { key, thumbprint }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url without padding (DPoP's `jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The one JWS algorithm this key signs with.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            PublicKey::Ed25519(_) => KeyAlgorithm::EdDsa,
            PublicKey::P256(_) => KeyAlgorithm::Es256,
        }
    }

    /// The public JWK: its required members only (no `kid`, `alg` or `use`).
    pub fn to_value(&self) -> Value {
        required_members(&self.key)
    }

    /// The public JWK as compact JSON text, members in RFC 7638 order.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// Whether `signature` (JWS form: 64 bytes, R ‖ S for ES256) signs `message`.
    /// Ed25519 is checked strictly (no malleable signatures, no small-order points).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_strict(message, &signature).is_ok()),
            // ring's P-256 (assembly) verifies ~4x faster than p256's, which parsed the
            // point; a device proof is checked on every bound Refresh.
            PublicKey::P256(key) => {
                let point = key.to_encoded_point(false);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_bytes())
                    .verify(message, signature)
                    .is_ok()
            }
        }
    }
}

/// The 32 bytes of a base64url member, or `problem`.
fn coordinate(
    jwk: &Map<String, Value>,
    name: &str,
    problem: &'static str,
) -> Result<[u8; 32], KeyProblem> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or(KeyProblem::Malformed(problem))
}

/// The JWK's required members, written in lexicographic order so that their compact
/// JSON is RFC 7638 §3.2's input, with or without serde_json's `preserve_order`.
fn required_members(key: &PublicKey) -> Value {
    match key {
        PublicKey::Ed25519(key) => json!({
            "crv": "Ed25519",
            "kty": "OKP",
            "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
        }),
        PublicKey::P256(key) => {
            let point = key.to_encoded_point(false);
            // An uncompressed point of a valid key always has both coordinates.
            let (x, y) = (point.x().map(|x| &x[..]), point.y().map(|y| &y[..]));
            json!({
                "crv": "P-256",
                "kty": "EC",
                "x": URL_SAFE_NO_PAD.encode(x.unwrap_or_default()),
                "y": URL_SAFE_NO_PAD.encode(y.unwrap_or_default()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 Appendix A.2's public key; A.3 gives its thumbprint.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    /// A P-256 public key (RFC 7515 Appendix A.3's).
    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn the_ed25519_thumbprint_is_rfc_8037s() {
        let text = json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}).to_string();
        let key = DeviceKey::from_json(&text).expect("the RFC's key");
        assert_eq!(key.thumbprint(), RFC8037_THUMBPRINT);
        assert_eq!(key.algorithm(), KeyAlgorithm::EdDsa);
    }

    #[test]
    fn the_p256_thumbprint_hashes_the_required_members_in_order() {
        // Extra members and another member order change nothing.
        let text = json!({"y": P256_Y, "x": P256_X, "kty": "EC", "crv": "P-256", "kid": "a"});
        let key = DeviceKey::from_json(&text.to_string()).expect("a P-256 key");
        let canonical =
            serde_json::to_string(&json!({"crv": "P-256", "kty": "EC", "x": P256_X, "y": P256_Y}))
                .expect("json");
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        assert_eq!(key.thumbprint(), expected);
        assert_eq!(key.to_json(), canonical);
        assert_eq!(key.algorithm(), KeyAlgorithm::Es256);
    }

    #[test]
    fn what_is_refused_and_why() {
        let okp = |x: &str| json!({"kty": "OKP", "crv": "Ed25519", "x": x}).to_string();
        let ec = |x: &str, y: &str| json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        let short = URL_SAFE_NO_PAD.encode([7u8; 31]);
        let long = URL_SAFE_NO_PAD.encode([7u8; 33]);
        // The identity point has small order: a weak key.
        let identity = URL_SAFE_NO_PAD.encode({
            let mut bytes = [0u8; 32];
            bytes[0] = 1;
            bytes
        });
        let malformed = KeyProblem::Malformed;
        // (case, JWK text, problem)
        #[rustfmt::skip]
        let cases = [
            ("too long", format!("{}{}", okp(RFC8037_X), " ".repeat(MAX_JWK_BYTES)), KeyProblem::TooLong),
            ("not JSON", "kty=OKP".to_owned(), KeyProblem::NotJson),
            ("not an object", json!(["OKP"]).to_string(), KeyProblem::NotJson),
            ("private d", json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_X}).to_string(), KeyProblem::PrivateKey("d")),
            ("symmetric k", json!({"kty": "oct", "k": "c2VjcmV0"}).to_string(), KeyProblem::PrivateKey("k")),
            ("RSA private", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "p": "AQ"}).to_string(), KeyProblem::PrivateKey("p")),
            ("RSA", json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}).to_string(), KeyProblem::Unsupported),
            ("X25519", json!({"kty": "OKP", "crv": "X25519", "x": RFC8037_X}).to_string(), KeyProblem::Unsupported),
            ("P-384", json!({"kty": "EC", "crv": "P-384", "x": P256_X, "y": P256_Y}).to_string(), KeyProblem::Unsupported),
            ("no kty", json!({"crv": "Ed25519", "x": RFC8037_X}).to_string(), KeyProblem::Unsupported),
            ("x missing", json!({"kty": "OKP", "crv": "Ed25519"}).to_string(), malformed("x must be 32 bytes of base64url")),
            ("x not a string", json!({"kty": "OKP", "crv": "Ed25519", "x": 7}).to_string(), malformed("x must be 32 bytes of base64url")),
            ("x padded", okp(&format!("{RFC8037_X}=")), malformed("x must be 32 bytes of base64url")),
            ("x standard base64", okp(&RFC8037_X.replace('_', "/")), malformed("x must be 32 bytes of base64url")),
            ("x short", okp(&short), malformed("x must be 32 bytes of base64url")),
            ("x long", okp(&long), malformed("x must be 32 bytes of base64url")),
            ("x weak", okp(&identity), malformed("x is a weak Ed25519 point")),
            ("EC y missing", json!({"kty": "EC", "crv": "P-256", "x": P256_X}).to_string(), malformed("y must be 32 bytes of base64url")),
            ("EC y short", ec(P256_X, &short).to_string(), malformed("y must be 32 bytes of base64url")),
            ("EC off the curve", ec(P256_X, P256_X).to_string(), malformed("x and y are not a point on P-256")),
        ];
        for (case, text, problem) in cases {
            let got = DeviceKey::from_json(&text).map(|key| key.thumbprint().to_owned());
            assert_eq!(got, Err(problem), "{case}");
        }
    }

    #[test]
    fn messages_tell_what_to_send() {
        assert_eq!(
            KeyProblem::Unsupported.to_string(),
            "is not a supported key: use kty OKP with crv Ed25519, or kty EC with crv P-256"
        );
        assert_eq!(
            KeyProblem::PrivateKey("d").to_string(),
            "holds private key material (d): send the public key only"
        );
    }
}
