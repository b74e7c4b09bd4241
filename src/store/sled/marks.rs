//! `ProofMarks` of the sled store: in memory, since one server owns a data dir.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::SledStore;
use crate::store::{ProofMarks, StoreError};

#[async_trait]
impl ProofMarks for SledStore {
    async fn mark_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        Ok(self.marks.mark_once(key, ttl, Instant::now()))
    }

    async fn is_marked(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.marks.is_marked(key, Instant::now()))
    }
}
