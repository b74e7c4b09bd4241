//! Signing keys for access and ID tokens (JWT, EdDSA over Ed25519), kept in a vault as
//! PKCS#8 by key id: files in the data dir (sled), or one Redis hash that every server
//! shares (Redis). Generated on first start, rotated on request. New tokens use the
//! newest key a server knows; every key stays in the JWKS, which is read fresh from the
//! vault, so tokens signed by any server before a rotation verify until they expire.

use std::path::PathBuf;
use std::sync::RwLock;

use async_trait::async_trait;
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
    #[error("signing key {0} is not an Ed25519 PKCS#8 key")]
    BadKey(String),
    #[error("signing key vault: {0}")]
    Vault(String),
    #[error("the operating system's random number generator failed")]
    Randomness,
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

struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
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
            let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
                .map_err(|_| SigningError::BadKey(kid.clone()))?;
            keys.push(SigningKey { kid, pair });
        }
        // Key ids are UUID v7: their order is their age.
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        Ok(())
    }

    /// Makes a new key the one that signs; returns its key id.
    pub async fn rotate(&self) -> Result<String, SigningError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SigningError::Randomness)?;
        let kid = uuid::Uuid::now_v7().simple().to_string();
        self.vault.save(&kid, pkcs8.as_ref()).await?;
        self.reload().await?;
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

    /// The public keys as a JWKS document (RFC 7517, OKP keys of RFC 8037), with every
    /// key in the vault (a vault that cannot be read now leaves the keys known).
    pub async fn jwks(&self) -> Value {
        if let Err(error) = self.reload().await {
            tracing::warn!(%error, "cannot reload signing keys; serving the known ones");
        }
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

    async fn ring_in(dir: &std::path::Path) -> KeyRing {
        let vault = KeyFiles::new(dir.to_owned()).expect("vault");
        KeyRing::open(Box::new(vault)).await.expect("keys")
    }

    async fn verify(ring: &KeyRing, token: &str) -> Option<Value> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(signing_input.split('.').next()?)
                .ok()?,
        )
        .ok()?;
        let jwks = ring.jwks().await;
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

    #[tokio::test]
    async fn a_token_verifies_against_the_jwks_across_a_rotation() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = ring_in(dir.path()).await;
        let before = ring.sign(&json!({"sub": "alice"}));
        ring.rotate().await.expect("rotate");
        let after = ring.sign(&json!({"sub": "bob"}));

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
        let token = reopened.sign(&json!({}));
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
        let token = ring.sign(&json!({"sub": "alice"}));
        let forged = token.replacen('.', ".e30", 1);
        assert!(verify(&ring, &forged).await.is_none());
    }
}
