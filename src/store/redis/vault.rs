//! The signing keys in one Redis hash, shared by every server.

use async_trait::async_trait;

use super::{Connection, RedisStore};
use crate::signing::{KeyVault, SigningError};

/// Signing keys in one Redis hash, so every server signs with keys all of them publish.
pub struct RedisKeyVault {
    pub(super) conn: Connection,
    pub(super) key: String,
}

#[async_trait]
impl KeyVault for RedisKeyVault {
    async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, SigningError> {
        redis::cmd("HGETALL")
            .arg(&self.key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|error| SigningError::Vault(error.to_string()))
    }

    async fn save(&self, kid: &str, pkcs8: &[u8]) -> Result<(), SigningError> {
        redis::cmd("HSETNX")
            .arg(&self.key)
            .arg(kid)
            .arg(pkcs8)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|error| SigningError::Vault(error.to_string()))
    }
}

impl RedisStore {
    /// The signing keys every server of this deployment shares.
    pub fn key_vault(&self) -> RedisKeyVault {
        RedisKeyVault {
            conn: self.conn(),
            key: self.keys.signing_keys(),
        }
    }
}
