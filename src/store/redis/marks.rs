//! `ProofMarks` of the Redis store: one key per mark with Redis's own expiry, so every
//! server sees it and `SET NX` lets exactly one of them set it.

use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use crate::store::{ProofMarks, StoreError};

#[async_trait]
impl ProofMarks for RedisStore {
    async fn mark_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.mark(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(set.is_some())
    }

    async fn is_marked(&self, key: &str) -> Result<bool, StoreError> {
        Ok(redis::cmd("EXISTS")
            .arg(self.keys.mark(key))
            .query_async::<u32>(&mut self.conn.clone())
            .await?
            > 0)
    }
}
