//! Chrome's Device Bound Session Credentials (W3C draft): the browser's
//! `Secure-Session-Response`, a JWT of type `dbsc+jwt` signed over the server's challenge
//! (its `jti`). A registration response carries its key (the `jwk` header, or the `key`
//! claim of older drafts); a refresh response is checked with the key the session was
//! bound to. sessiond takes one as the proof of a Refresh (docs/binding.md).

use serde_json::{Map, Value};

use super::failure::BindingFailure;
use super::jwk::DeviceKey;
use super::proof::{has_type, header_algorithm, CompactJws, MAX_JTI_BYTES};

/// The `typ` of a DBSC response.
pub const DBSC_TYPE: &str = "dbsc+jwt";

/// A verified DBSC response: the challenge it signs, and the key it was signed with.
#[derive(Debug, Clone)]
pub struct DbscResponse {
    pub challenge: String,
    pub key: DeviceKey,
}

/// Whether `jwt` claims to be a DBSC response (by its header's `typ`), so it is checked
/// as one instead of as a DPoP proof.
pub fn is_dbsc(jwt: &str) -> bool {
    CompactJws::parse(jwt).is_ok_and(|jws| has_type(&jws.header, DBSC_TYPE))
}

/// Checks a DBSC response: with `key` (a refresh: the session's key), or with the key it
/// carries (a registration). An `iat`, when present, must be within `max_skew_ms` of
/// `now_ms`; the challenge's freshness and single use are the caller's.
pub fn verify_dbsc_response(
    jwt: &str,
    key: Option<&DeviceKey>,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<DbscResponse, BindingFailure> {
    let jws = CompactJws::parse(jwt)?;
    if !has_type(&jws.header, DBSC_TYPE) {
        return Err(BindingFailure::ProofTypeInvalid);
    }
    let algorithm = header_algorithm(&jws.header)?;
    let key = match key {
        Some(key) => key.clone(),
        None => carried_key(&jws.header, &jws.claims)?,
    };
    if key.algorithm() != algorithm {
        return Err(BindingFailure::AlgorithmNotAllowed);
    }
    if !key.verifies(jws.signing_input.as_bytes(), &jws.signature) {
        return Err(BindingFailure::SignatureInvalid);
    }
    let challenge = jws
        .claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_BYTES)
        .ok_or(BindingFailure::ProofMalformed)?;
    match jws.claims.get("iat").map(Value::as_u64) {
        None => {}
        Some(Some(iat)) if iat.saturating_mul(1000).abs_diff(now_ms) <= max_skew_ms => {}
        Some(Some(_)) => return Err(BindingFailure::IssuedAtOutOfWindow),
        Some(None) => return Err(BindingFailure::ProofMalformed),
    }
    Ok(DbscResponse {
        challenge: challenge.to_owned(),
        key,
    })
}

/// The key a registration response carries: the `jwk` header, else the `key` claim.
fn carried_key(
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
) -> Result<DeviceKey, BindingFailure> {
    let jwk = header
        .get("jwk")
        .or_else(|| claims.get("key"))
        .ok_or(BindingFailure::KeyInvalid)?;
    DeviceKey::from_value(jwk).map_err(|_| BindingFailure::KeyInvalid)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::session::binding::DeviceSigner;

    const NOW_MS: u64 = 1_767_225_600_000;

    fn response(browser: &DeviceSigner, header: Value, claims: Value) -> String {
        browser.sign_compact(&header, &claims).expect("signed")
    }

    #[test]
    fn dbsc_responses() {
        let browser = DeviceSigner::generate_p256().expect("random");
        let other = DeviceSigner::generate_p256().expect("random");
        let key = browser.device_key();
        let jwk = key.to_value();
        let header = json!({"alg": "ES256", "typ": "dbsc+jwt"});
        let claims = json!({"jti": "challenge-1", "iat": NOW_MS / 1000, "aud": "https://app.example/dbsc/refresh"});
        let with_jwk = json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk});
        let registration =
            json!({"jti": "challenge-0", "key": jwk, "aud": "https://app.example/dbsc/start"});
        /// (case, response, the session's key, outcome: the challenge)
        type Case<'a> = (
            &'a str,
            String,
            Option<&'a DeviceKey>,
            Result<&'a str, BindingFailure>,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("a refresh response, with the session's key", response(&browser, header.clone(), claims.clone()), Some(key), Ok("challenge-1")),
            ("a registration with its key in the header", response(&browser, with_jwk.clone(), claims.clone()), None, Ok("challenge-1")),
            ("a registration with its key in a claim", response(&browser, header.clone(), registration), None, Ok("challenge-0")),
            ("signed by another key", response(&other, header.clone(), claims.clone()), Some(key), Err(BindingFailure::SignatureInvalid)),
            ("a registration without a key", response(&browser, header.clone(), claims.clone()), None, Err(BindingFailure::KeyInvalid)),
            ("a DPoP typ", response(&browser, json!({"alg": "ES256", "typ": "dpop+jwt"}), claims.clone()), Some(key), Err(BindingFailure::ProofTypeInvalid)),
            ("alg none", response(&browser, json!({"alg": "none", "typ": "dbsc+jwt"}), claims.clone()), Some(key), Err(BindingFailure::AlgorithmNotAllowed)),
            ("no challenge", response(&browser, header.clone(), json!({"iat": NOW_MS / 1000})), Some(key), Err(BindingFailure::ProofMalformed)),
            ("an old iat", response(&browser, header.clone(), json!({"jti": "c", "iat": NOW_MS / 1000 - 600})), Some(key), Err(BindingFailure::IssuedAtOutOfWindow)),
        ];
        for (case, jwt, key, outcome) in cases {
            let got = verify_dbsc_response(&jwt, key, NOW_MS, 60_000);
            assert_eq!(
                got.as_ref()
                    .map(|response| response.challenge.as_str())
                    .map_err(|f| *f),
                outcome,
                "{case}"
            );
            assert_eq!(is_dbsc(&jwt), case != "a DPoP typ", "{case}");
        }
    }
}
