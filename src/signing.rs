//! Signing keys for access and ID tokens (JWT, EdDSA over Ed25519), kept in a vault as
//! PKCS#8 by key id: files in the data dir (sled), or one Redis hash that every server
//! shares (Redis). Generated on first start, rotated on request. New tokens use the
//! newest key a server knows; every key stays in the JWKS, which is read fresh from the
//! vault, so tokens signed by any server before a rotation verify until they expire.
//! Encoding, signing and the JWK format are `jsonwebtoken`'s; the vault is ours.

use std::path::PathBuf;
use std::sync::RwLock;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{json, Value};

/// Why keys could not be loaded, made or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key {0} is not an Ed25519 PKCS#8 key")]
    BadKey(String),
    #[error("signing key vault: {0}")]
    Vault(String),
    #[error("the operating system's random number generator failed")]
    Randomness,
    #[error("no signing key is loaded")]
    NoKey,
    #[error("cannot sign a token with key {kid}: {source}")]
    Sign {
        kid: String,
        source: jsonwebtoken::errors::Error,
    },
}

/// Where signing keys are kept.
#[async_trait]
pub trait KeyVault: Send + Sync {
    /// Every key: (key id, PKCS#8 document).
    async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, SigningError>;
    /// Adds a key (never replaces one).
    async fn save(&self, kid: &str, pkcs8: &[u8]) -> Result<(), SigningError>;
}

/// Keys as files `<kid>.ed25519.pk8` in one directory.
pub struct KeyFiles {
    dir: PathBuf,
}

const KEY_SUFFIX: &str = ".ed25519.pk8";

impl KeyFiles {
    /// The vault in `dir` (created if missing).
    pub fn new(dir: PathBuf) -> Result<KeyFiles, SigningError> {
        std::fs::create_dir_all(&dir).map_err(|source| SigningError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(KeyFiles { dir })
    }
}

#[async_trait]
impl KeyVault for KeyFiles {
    async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, SigningError> {
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| SigningError::Io { path, source }
        };
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let Some(kid) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(KEY_SUFFIX))
            else {
                continue;
            };
            keys.push((kid.to_owned(), std::fs::read(&path).map_err(io(&path))?));
        }
        Ok(keys)
    }

    async fn save(&self, kid: &str, pkcs8: &[u8]) -> Result<(), SigningError> {
        let path = self.dir.join(format!("{kid}{KEY_SUFFIX}"));
        // Written to a temporary name first, so a crash never leaves half a key.
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, pkcs8)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| SigningError::Io { path, source })
    }
}

/// One key: what signs with it, and its public half as published.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// The key in `pkcs8` (Ed25519, PKCS#8 v1 or v2), with its JWK (RFC 8037 OKP).
    fn from_pkcs8(kid: String, pkcs8: &[u8]) -> Result<SigningKey, SigningError> {
        let pair = ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8)
            .map_err(|_| SigningError::BadKey(kid.clone()))?;
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(pair.verifying_key().as_bytes()),
            }),
        };
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_ed_der(pkcs8),
            jwk,
        })
    }
}

/// The signing keys known to this server, newest last, over their vault.
pub struct KeyRing {
    vault: Box<dyn KeyVault>,
    keys: RwLock<Vec<SigningKey>>,
}

impl KeyRing {
    /// Loads the keys of `vault`, generating the first one.
    pub async fn open(vault: Box<dyn KeyVault>) -> Result<KeyRing, SigningError> {
        let ring = KeyRing {
            vault,
            keys: RwLock::new(Vec::new()),
        };
        ring.reload().await?;
        if ring.read().is_empty() {
            ring.rotate().await?;
        }
        Ok(ring)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<SigningKey>> {
        self.keys
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Every key in the vault as stored: (key id, PKCS#8 document), for a backup.
    pub async fn export(&self) -> Result<Vec<(String, Vec<u8>)>, SigningError> {
        self.vault.load().await
    }

    /// Learns the keys other servers added to the vault.
    pub async fn reload(&self) -> Result<(), SigningError> {
        let stored = self.vault.load().await?;
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        for (kid, pkcs8) in stored {
            if keys.iter().any(|key| key.kid == kid) {
                continue;
            }
            keys.push(SigningKey::from_pkcs8(kid, &pkcs8)?);
        }
        // Key ids are UUID v7: their order is their age.
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        Ok(())
    }

    /// Makes a new key the one that signs; returns its key id.
    pub async fn rotate(&self) -> Result<String, SigningError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| SigningError::Randomness)?;
        let pkcs8 = ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .map_err(|_| SigningError::Randomness)?;
        let kid = uuid::Uuid::now_v7().simple().to_string();
        self.vault.save(&kid, pkcs8.as_bytes()).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// A compact JWT of `claims`, signed with the newest key (EdDSA).
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, SigningError> {
        let keys = self.read();
        // `open` and `rotate` leave at least one key, so NoKey means a bug.
        let key = keys.last().ok_or(SigningError::NoKey)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|source| SigningError::Sign {
            kid: key.kid.clone(),
            source,
        })
    }

    /// The public keys as a JWKS document (RFC 7517, OKP keys of RFC 8037), with every
    /// key in the vault (a vault that cannot be read now leaves the keys known).
    pub async fn jwks(&self) -> Value {
        if let Err(error) = self.reload().await {
            tracing::warn!(%error, "cannot reload signing keys; serving the known ones");
        }
        let keys: Vec<Jwk> = self.read().iter().map(|key| key.jwk.clone()).collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ring_in(dir: &std::path::Path) -> KeyRing {
        let vault = KeyFiles::new(dir.to_owned()).expect("vault");
        KeyRing::open(Box::new(vault)).await.expect("keys")
    }

    async fn verify(ring: &KeyRing, token: &str) -> Option<Value> {
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(ring.jwks().await).ok()?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid)?).ok()?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).ok()?;
        Some(data.claims)
    }

    #[tokio::test]
    async fn a_token_verifies_against_the_jwks_across_a_rotation() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = ring_in(dir.path()).await;
        let before = ring.sign(&json!({"sub": "alice"})).expect("signed");
        ring.rotate().await.expect("rotate");
        let after = ring.sign(&json!({"sub": "bob"})).expect("signed");

        assert_eq!(
            verify(&ring, &before).await.expect("old key verifies")["sub"],
            "alice"
        );
        assert_eq!(
            verify(&ring, &after).await.expect("new key verifies")["sub"],
            "bob"
        );
        assert_eq!(ring.jwks().await["keys"].as_array().map(Vec::len), Some(2));
    }

    #[tokio::test]
    async fn keys_survive_a_reopen_and_the_newest_signs() {
        let dir = tempfile::tempdir().expect("dir");
        let first = ring_in(dir.path()).await;
        let newest = first.rotate().await.expect("rotate");
        drop(first);

        let reopened = ring_in(dir.path()).await;
        let token = reopened.sign(&json!({})).expect("signed");
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().expect("header"))
                .expect("base64"),
        )
        .expect("json");
        assert_eq!(header["kid"], newest.as_str());
        assert!(verify(&reopened, &token).await.is_some());
    }

    #[tokio::test]
    async fn a_tampered_token_does_not_verify() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = ring_in(dir.path()).await;
        let token = ring.sign(&json!({"sub": "alice"})).expect("signed");
        let forged = token.replacen('.', ".e30", 1);
        assert!(verify(&ring, &forged).await.is_none());
    }
}
