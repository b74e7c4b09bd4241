//! Verifying a DPoP proof (RFC 9449 §4.3) against what the server expects of one call:
//! the session's key thumbprint, the call's method and URI, the token sent with it, the
//! time. Replay (`jti`) and nonce freshness are the caller's, who keeps those stores.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::failure::BindingFailure;
use super::jwk::{DeviceKey, KeyAlgorithm};
use super::target::same_target;

/// The longest proof accepted; an ES256 proof with a nonce takes under 1 KiB.
pub const MAX_PROOF_BYTES: usize = 4096;

/// The longest `jti` accepted (it is kept in a replay cache).
pub const MAX_JTI_BYTES: usize = 128;

/// The `typ` header of a DPoP proof.
pub const PROOF_TYPE: &str = "dpop+jwt";

/// What the server expects of the proof sent with one call.
#[derive(Debug, Clone, Copy)]
pub struct ProofExpectations<'a> {
    /// The session's key thumbprint (`jkt`); None: any key, checked by the caller
    /// against `VerifiedProof::thumbprint` (a proof is checked before its session is read).
    pub thumbprint: Option<&'a str>,
    /// The `htm` to match, e.g. "POST".
    pub method: &'a str,
    /// The `htu` to match; query and fragment are ignored on both sides.
    pub uri: &'a str,
    /// The token presented with the proof, whose hash is the proof's `ath`.
    pub token: &'a str,
    /// The server's time.
    pub now_ms: u64,
    /// How far `iat` may be from `now_ms`, either way.
    pub max_skew_ms: u64,
}

/// What a valid proof tells the caller, who checks `jti` against its replay cache and
/// `nonce` against its nonce store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The proof's unique id.
    pub jti: String,
    /// The proof's `iat`, in milliseconds.
    pub issued_at_ms: u64,
    /// The server nonce the proof carries, if any.
    pub nonce: Option<String>,
    /// The thumbprint of the key that signed it.
    pub thumbprint: String,
}

/// The `ath` of a token: base64url (no padding) of SHA-256 of its ASCII bytes.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Checks `proof` against `expected`, in RFC 9449 §4.3's order: form, header, signature,
/// key, claims, time, token hash, request. The first check that fails names the failure.
pub fn verify_proof(
    proof: &str,
    expected: &ProofExpectations<'_>,
) -> Result<VerifiedProof, BindingFailure> {
    if proof.is_empty() {
        return Err(BindingFailure::ProofMissing);
    }
    let jws = CompactJws::parse(proof)?;
    let key = header_key(&jws.header)?;
    if !key.verifies(jws.signing_input.as_bytes(), &jws.signature) {
        return Err(BindingFailure::SignatureInvalid);
    }
    if expected
        .thumbprint
        .is_some_and(|jkt| !bool::from(key.thumbprint().as_bytes().ct_eq(jkt.as_bytes())))
    {
        return Err(BindingFailure::KeyMismatch);
    }
    let claims = Claims::read(&jws.claims)?;
    let issued_at_ms = claims.iat_seconds.saturating_mul(1000);
    if issued_at_ms.abs_diff(expected.now_ms) > expected.max_skew_ms {
        return Err(BindingFailure::IssuedAtOutOfWindow);
    }
    let ath = claims.ath.unwrap_or_default();
    if !bool::from(ath.as_bytes().ct_eq(token_hash(expected.token).as_bytes())) {
        return Err(BindingFailure::TokenHashMismatch);
    }
    if claims.htm != expected.method || !same_target(claims.htu, expected.uri) {
        return Err(BindingFailure::RequestMismatch);
    }
    Ok(VerifiedProof {
        jti: claims.jti.to_owned(),
        issued_at_ms,
        nonce: claims.nonce.map(str::to_owned),
        thumbprint: key.thumbprint().to_owned(),
    })
}

/// A compact JWS split and decoded, not yet verified (a DPoP proof, or a DBSC response).
pub(super) struct CompactJws<'a> {
    pub(super) header: Map<String, Value>,
    pub(super) claims: Map<String, Value>,
    /// `<header>.<claims>` as sent: what the signature covers.
    pub(super) signing_input: &'a str,
    pub(super) signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Three base64url parts, the first two JSON objects, within `MAX_PROOF_BYTES`.
    pub(super) fn parse(proof: &'a str) -> Result<CompactJws<'a>, BindingFailure> {
        let malformed = BindingFailure::ProofMalformed;
        if proof.len() > MAX_PROOF_BYTES {
            return Err(malformed);
        }
        let (signing_input, signature) = proof.rsplit_once('.').ok_or(malformed)?;
        let (header, claims) = signing_input.split_once('.').ok_or(malformed)?;
        if claims.contains('.') {
            return Err(malformed);
        }
        let object = |part: &str| {
            let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed)?;
            serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|_| malformed)
        };
        let jws = CompactJws {
            header: object(header)?,
            claims: object(claims)?,
            signing_input,
            signature: URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed)?,
        };
        // No extension is understood, so a critical one cannot be honoured (RFC 7515
        // §4.1.11).
        if jws.header.contains_key("crit") {
            return Err(malformed);
        }
        Ok(jws)
    }
}

/// The key of a proof's header, once `typ`, `alg` and `jwk` are acceptable and agree.
fn header_key(header: &Map<String, Value>) -> Result<DeviceKey, BindingFailure> {
    if !has_type(header, PROOF_TYPE) {
        return Err(BindingFailure::ProofTypeInvalid);
    }
    let algorithm = header_algorithm(header)?;
    let key = header
        .get("jwk")
        .ok_or(BindingFailure::KeyInvalid)
        .and_then(|jwk| DeviceKey::from_value(jwk).map_err(|_| BindingFailure::KeyInvalid))?;
    if key.algorithm() != algorithm {
        return Err(BindingFailure::AlgorithmNotAllowed);
    }
    Ok(key)
}

/// Whether a JWS header's `typ` is `media_type`: case-insensitively, and "application/"
/// may be left out (RFC 7515 §4.1.9).
pub(super) fn has_type(header: &Map<String, Value>, media_type: &str) -> bool {
    let typ = header
        .get("typ")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    typ.eq_ignore_ascii_case(media_type)
}

/// The algorithm a JWS header names, if it is one of the two allowed.
pub(super) fn header_algorithm(
    header: &Map<String, Value>,
) -> Result<KeyAlgorithm, BindingFailure> {
    match header.get("alg").and_then(Value::as_str) {
        Some("EdDSA") => Ok(KeyAlgorithm::EdDsa),
        Some("ES256") => Ok(KeyAlgorithm::Es256),
        _ => Err(BindingFailure::AlgorithmNotAllowed),
    }
}

/// The claims of a proof, present and of the right types.
struct Claims<'a> {
    jti: &'a str,
    iat_seconds: u64,
    htm: &'a str,
    htu: &'a str,
    ath: Option<&'a str>,
    nonce: Option<&'a str>,
}

impl<'a> Claims<'a> {
    fn read(claims: &'a Map<String, Value>) -> Result<Claims<'a>, BindingFailure> {
        let malformed = BindingFailure::ProofMalformed;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).ok_or(malformed);
        let optional = |name: &str| match claims.get(name) {
            None => Ok(None),
            Some(value) => value.as_str().map(Some).ok_or(malformed),
        };
        let jti = text("jti")?;
        if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
            return Err(malformed);
        }
        Ok(Claims {
            jti,
            iat_seconds: claims.get("iat").and_then(Value::as_u64).ok_or(malformed)?,
            htm: text("htm")?,
            htu: text("htu")?,
            ath: optional("ath")?,
            nonce: optional("nonce")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use hkdf::hmac::{Hmac, Mac};
    use serde_json::json;

    use super::*;
    use crate::session::binding::signer::DeviceSigner;

    const NOW_MS: u64 = 1_700_000_000_000;
    const SKEW_MS: u64 = 60_000;
    const URI: &str = "https://sessions.example/session.v1.SessionService/Refresh";
    const TOKEN: &str = "rt_token";

    fn b64(value: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(value)
    }

    fn signer(ed25519: bool) -> DeviceSigner {
        let signer = if ed25519 {
            DeviceSigner::generate_ed25519()
        } else {
            DeviceSigner::generate_p256()
        };
        signer.expect("the OS random generator works in tests")
    }

    /// The header and claims of a good proof by `signer`.
    fn parts(signer: &DeviceSigner) -> (Value, Value) {
        let header = json!({
            "typ": "dpop+jwt",
            "alg": signer.device_key().algorithm().jws_name(),
            "jwk": signer.device_key().to_value(),
        });
        let claims = json!({
            "jti": "j1", "iat": NOW_MS / 1000, "htm": "POST", "htu": URI, "ath": token_hash(TOKEN),
        });
        (header, claims)
    }

    /// `value` with `member` set to `to` (or removed, for null).
    fn with(mut value: Value, member: &str, to: Value) -> Value {
        if let Some(object) = value.as_object_mut() {
            match to {
                Value::Null => object.remove(member),
                to => object.insert(member.to_owned(), to),
            };
        }
        value
    }

    #[test]
    fn proof_outcomes() {
        use BindingFailure as F;
        let (ed, ec, other) = (signer(true), signer(false), signer(true));
        let sign = |signer: &DeviceSigner, header: Value, claims: Value| {
            signer.sign_compact(&header, &claims).expect("signed")
        };
        let proof = |signer: &DeviceSigner, method: &str, uri: &str, token: &str, now_ms: u64| {
            signer
                .proof(method, uri, token, None, now_ms)
                .expect("signed")
        };
        let (header, claims) = parts(&ed);
        let unsigned = |header: Value, signature: &[u8]| {
            let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
            format!("{input}.{}", b64(signature))
        };
        let hs256 = |key: &[u8]| {
            let header = with(header.clone(), "alg", json!("HS256"));
            let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
            mac.update(input.as_bytes());
            format!("{input}.{}", b64(mac.finalize().into_bytes()))
        };
        let ed_x = URL_SAFE_NO_PAD
            .decode(header["jwk"]["x"].as_str().unwrap_or_default())
            .expect("x");
        let tampered = {
            let good = sign(&ed, header.clone(), claims.clone());
            let forged = b64(with(claims.clone(), "htm", json!("DELETE")).to_string());
            let mut parts = good.split('.');
            let (h, _, s) = (parts.next(), parts.next(), parts.next());
            format!(
                "{}.{forged}.{}",
                h.unwrap_or_default(),
                s.unwrap_or_default()
            )
        };
        let pad = json!("x".repeat(MAX_PROOF_BYTES));
        let (ec_header, ec_claims) = parts(&ec);
        let (ed_tp, ec_tp) = (ed.thumbprint(), ec.thumbprint());
        let c = || claims.clone();
        let h = || header.clone();
        // (case, proof, session thumbprint, outcome)
        #[rustfmt::skip]
        let cases = [
            ("good Ed25519", proof(&ed, "POST", URI, TOKEN, NOW_MS), ed_tp, Ok(())),
            ("good ES256", proof(&ec, "POST", URI, TOKEN, NOW_MS), ec_tp, Ok(())),
            ("htu query and fragment ignored", proof(&ed, "POST", &format!("{URI}?a=1#f"), TOKEN, NOW_MS), ed_tp, Ok(())),
            ("typ with application/, any case", sign(&ed, with(h(), "typ", json!("application/DPoP+JWT")), c()), ed_tp, Ok(())),
            ("iat at the edge of the window", proof(&ed, "POST", URI, TOKEN, NOW_MS - SKEW_MS), ed_tp, Ok(())),
            ("empty", String::new(), ed_tp, Err(F::ProofMissing)),
            ("another device's key", proof(&other, "POST", URI, TOKEN, NOW_MS), ed_tp, Err(F::KeyMismatch)),
            ("alg none, no signature", unsigned(with(h(), "alg", json!("none")), b""), ed_tp, Err(F::AlgorithmNotAllowed)),
            ("HS256 keyed with the public x", hs256(&ed_x), ed_tp, Err(F::AlgorithmNotAllowed)),
            ("HS256 keyed with the JWK JSON", hs256(ed.public_jwk_json().as_bytes()), ed_tp, Err(F::AlgorithmNotAllowed)),
            ("RS256", sign(&ed, with(h(), "alg", json!("RS256")), c()), ed_tp, Err(F::AlgorithmNotAllowed)),
            ("alg eddsa in the wrong case", sign(&ed, with(h(), "alg", json!("eddsa")), c()), ed_tp, Err(F::AlgorithmNotAllowed)),
            ("EdDSA with an EC key", sign(&ec, with(ec_header.clone(), "alg", json!("EdDSA")), ec_claims.clone()), ec_tp, Err(F::AlgorithmNotAllowed)),
            ("ES256 with an OKP key", sign(&ed, with(h(), "alg", json!("ES256")), c()), ed_tp, Err(F::AlgorithmNotAllowed)),
            ("jwk with d", sign(&ed, with(h(), "jwk", with(h()["jwk"].clone(), "d", json!(b64(ed_x.clone())))), c()), ed_tp, Err(F::KeyInvalid)),
            ("no jwk", sign(&ed, with(h(), "jwk", Value::Null), c()), ed_tp, Err(F::KeyInvalid)),
            ("jwk not an object", sign(&ed, with(h(), "jwk", json!(ed.public_jwk_json())), c()), ed_tp, Err(F::KeyInvalid)),
            ("tampered claim", tampered, ed_tp, Err(F::SignatureInvalid)),
            ("signature of another key", sign(&other, h(), c()), ed_tp, Err(F::SignatureInvalid)),
            ("oversized header", sign(&ed, with(h(), "pad", pad.clone()), c()), ed_tp, Err(F::ProofMalformed)),
            ("oversized claims", sign(&ed, h(), with(c(), "pad", pad.clone())), ed_tp, Err(F::ProofMalformed)),
            ("malformed base64", format!("{}!.e30.AA", b64(h().to_string())), ed_tp, Err(F::ProofMalformed)),
            ("malformed JSON", format!("{}.{}.AA", b64("{\"typ\":"), b64(c().to_string())), ed_tp, Err(F::ProofMalformed)),
            ("claims not an object", format!("{}.{}.AA", b64(h().to_string()), b64("[1]")), ed_tp, Err(F::ProofMalformed)),
            ("two parts", format!("{}.{}", b64(h().to_string()), b64(c().to_string())), ed_tp, Err(F::ProofMalformed)),
            ("four parts", format!("{}.AA", proof(&ed, "POST", URI, TOKEN, NOW_MS)), ed_tp, Err(F::ProofMalformed)),
            ("a critical extension", sign(&ed, with(h(), "crit", json!(["exp"])), c()), ed_tp, Err(F::ProofMalformed)),
            ("no jti", sign(&ed, h(), with(c(), "jti", Value::Null)), ed_tp, Err(F::ProofMalformed)),
            ("empty jti", sign(&ed, h(), with(c(), "jti", json!(""))), ed_tp, Err(F::ProofMalformed)),
            ("jti too long", sign(&ed, h(), with(c(), "jti", json!("j".repeat(MAX_JTI_BYTES + 1)))), ed_tp, Err(F::ProofMalformed)),
            ("iat a string", sign(&ed, h(), with(c(), "iat", json!("1700000000"))), ed_tp, Err(F::ProofMalformed)),
            ("iat a fraction", sign(&ed, h(), with(c(), "iat", json!(1_700_000_000.5))), ed_tp, Err(F::ProofMalformed)),
            ("no htu", sign(&ed, h(), with(c(), "htu", Value::Null)), ed_tp, Err(F::ProofMalformed)),
            ("nonce a number", sign(&ed, h(), with(c(), "nonce", json!(7))), ed_tp, Err(F::ProofMalformed)),
            ("typ jwt", sign(&ed, with(h(), "typ", json!("jwt")), c()), ed_tp, Err(F::ProofTypeInvalid)),
            ("no typ", sign(&ed, with(h(), "typ", Value::Null), c()), ed_tp, Err(F::ProofTypeInvalid)),
            ("iat too old", proof(&ed, "POST", URI, TOKEN, NOW_MS - SKEW_MS - 1000), ed_tp, Err(F::IssuedAtOutOfWindow)),
            ("iat in the future", proof(&ed, "POST", URI, TOKEN, NOW_MS + SKEW_MS + 1000), ed_tp, Err(F::IssuedAtOutOfWindow)),
            ("ath of another token", proof(&ed, "POST", URI, "rt_other", NOW_MS), ed_tp, Err(F::TokenHashMismatch)),
            ("no ath", sign(&ed, h(), with(c(), "ath", Value::Null)), ed_tp, Err(F::TokenHashMismatch)),
            ("htu of another call", proof(&ed, "POST", &URI.replace("Refresh", "Logout"), TOKEN, NOW_MS), ed_tp, Err(F::RequestMismatch)),
            ("htm GET", proof(&ed, "GET", URI, TOKEN, NOW_MS), ed_tp, Err(F::RequestMismatch)),
            ("htm in another case", proof(&ed, "post", URI, TOKEN, NOW_MS), ed_tp, Err(F::RequestMismatch)),
        ];
        for (case, proof, thumbprint, outcome) in cases {
            let expected = ProofExpectations {
                thumbprint: Some(thumbprint),
                method: "POST",
                uri: URI,
                token: TOKEN,
                now_ms: NOW_MS,
                max_skew_ms: SKEW_MS,
            };
            assert_eq!(
                verify_proof(&proof, &expected).map(|_| ()),
                outcome,
                "{case}"
            );
        }
    }

    #[test]
    fn a_verified_proof_hands_back_jti_iat_and_nonce() {
        let ed = signer(true);
        let (header, claims) = parts(&ed);
        let proof = ed
            .sign_compact(&header, &with(claims, "nonce", json!("n-1")))
            .expect("signed");
        let expected = ProofExpectations {
            thumbprint: Some(ed.thumbprint()),
            method: "POST",
            uri: URI,
            token: TOKEN,
            now_ms: NOW_MS + 999,
            max_skew_ms: 999,
        };
        assert_eq!(
            verify_proof(&proof, &expected),
            Ok(VerifiedProof {
                jti: "j1".to_owned(),
                issued_at_ms: NOW_MS,
                nonce: Some("n-1".to_owned()),
                thumbprint: ed.thumbprint().to_owned(),
            })
        );
    }

    #[test]
    fn the_token_hash_is_rfc_9449s() {
        // RFC 9449 §7.1: the access token "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
        // has ath "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo".
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
