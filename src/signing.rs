//! Signing keys for access and ID tokens (JWT, EdDSA over Ed25519): kept in the data
//! dir as PKCS#8 files named by their key id, generated on first start, rotated on
//! request. New tokens use the newest key; every key stays in the JWKS so tokens signed
//! before a rotation verify until they expire.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

/// Why keys could not be loaded, made or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key file {0} is not an Ed25519 PKCS#8 key")]
    BadKey(PathBuf),
    #[error("the operating system's random number generator failed")]
    Randomness,
}

struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

/// The signing keys, newest last.
pub struct KeyRing {
    dir: PathBuf,
    keys: RwLock<Vec<SigningKey>>,
}

const KEY_SUFFIX: &str = ".ed25519.pk8";

impl KeyRing {
    /// Loads the keys in `dir` (created if missing), generating the first one.
    pub fn open(dir: &Path) -> Result<KeyRing, SigningError> {
        let io = |source| SigningError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(kid) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(KEY_SUFFIX))
            else {
                continue;
            };
            let der = std::fs::read(&path).map_err(|source| SigningError::Io {
                path: path.clone(),
                source,
            })?;
            let pair =
                Ed25519KeyPair::from_pkcs8(&der).map_err(|_| SigningError::BadKey(path.clone()))?;
            keys.push(SigningKey {
                kid: kid.to_owned(),
                pair,
            });
        }
        // Key ids are UUID v7: their order is their age.
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        let ring = KeyRing {
            dir: dir.to_owned(),
            keys: RwLock::new(keys),
        };
        if ring.read().is_empty() {
            ring.rotate()?;
        }
        Ok(ring)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<SigningKey>> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Makes a new key the one that signs; returns its key id.
    pub fn rotate(&self) -> Result<String, SigningError> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SigningError::Randomness)?;
        let kid = uuid::Uuid::now_v7().simple().to_string();
        let path = self.dir.join(format!("{kid}{KEY_SUFFIX}"));
        let pair = Ed25519KeyPair::from_pkcs8(der.as_ref())
            .map_err(|_| SigningError::BadKey(path.clone()))?;
        // Written to a temporary name first, so a crash never leaves half a key.
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, der.as_ref())
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| SigningError::Io {
                path: path.clone(),
                source,
            })?;
        self.keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(SigningKey {
                kid: kid.clone(),
                pair,
            });
        Ok(kid)
    }

    /// A compact JWT of `claims`, signed with the newest key (EdDSA).
    pub fn sign(&self, claims: &Value) -> String {
        let keys = self.read();
        // `open` and `rotate` guarantee at least one key.
        let Some(key) = keys.last() else {
            return String::new();
        };
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": key.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.pair.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    /// The public keys as a JWKS document (RFC 7517, OKP keys of RFC 8037).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .read()
            .iter()
            .map(|key| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(key.pair.public_key().as_ref()),
                    "kid": key.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{UnparsedPublicKey, ED25519};

    use super::*;

    fn verify(ring: &KeyRing, token: &str) -> Option<Value> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(signing_input.split('.').next()?)
                .ok()?,
        )
        .ok()?;
        let jwks = ring.jwks();
        let jwk = jwks["keys"]
            .as_array()?
            .iter()
            .find(|key| key["kid"] == header["kid"])?;
        let public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str()?).ok()?;
        UnparsedPublicKey::new(&ED25519, public)
            .verify(
                signing_input.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).ok()?,
            )
            .ok()?;
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(signing_input.split('.').nth(1)?)
                .ok()?,
        )
        .ok()
    }

    #[test]
    fn a_token_verifies_against_the_jwks_across_a_rotation() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = KeyRing::open(dir.path()).expect("keys");
        let before = ring.sign(&json!({"sub": "alice"}));
        ring.rotate().expect("rotate");
        let after = ring.sign(&json!({"sub": "bob"}));

        assert_eq!(
            verify(&ring, &before).expect("old key verifies")["sub"],
            "alice"
        );
        assert_eq!(
            verify(&ring, &after).expect("new key verifies")["sub"],
            "bob"
        );
        assert_eq!(ring.jwks()["keys"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn keys_survive_a_reopen_and_the_newest_signs() {
        let dir = tempfile::tempdir().expect("dir");
        let first = KeyRing::open(dir.path()).expect("keys");
        let newest = first.rotate().expect("rotate");
        drop(first);

        let reopened = KeyRing::open(dir.path()).expect("reopen");
        let token = reopened.sign(&json!({}));
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().expect("header"))
                .expect("base64"),
        )
        .expect("json");
        assert_eq!(header["kid"], newest.as_str());
        assert!(verify(&reopened, &token).is_some());
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = KeyRing::open(dir.path()).expect("keys");
        let token = ring.sign(&json!({"sub": "alice"}));
        let forged = token.replacen('.', ".e30", 1);
        assert!(verify(&ring, &forged).is_none());
    }
}
