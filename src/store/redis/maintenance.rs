//! The consistency check on Redis: each shard's expiry set against the records and the
//! user indexes. No online backup here (the trait's default says so): Redis has its own
//! RDB and AOF files.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::keys::{expiry_member, parse_expiry_member, parse_id_hex};
use super::{RedisStore, SHARDS};
use crate::store::{ConsistencyReport, Maintenance, SessionRecords, StoreError};

#[async_trait]
impl Maintenance for RedisStore {
    async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        let mut report = ConsistencyReport::default();
        for shard in 0..SHARDS {
            let entries = self.scored_members(self.keys.expiry(shard)).await?;
            let mut users = BTreeSet::new();
            for (member, expires_at_ms) in &entries {
                report.expiry_index_entries += 1;
                let (id, user_id) = parse_expiry_member(member)?;
                users.insert(user_id.to_owned());
                // A record Redis already expired awaits the sweeper: not an orphan.
                if let Some(record) = self.get(id).await? {
                    report.sessions += 1;
                    if record.expires_at_ms != *expires_at_ms || record.user_id != user_id {
                        report.orphans += 1;
                    }
                }
            }
            for user_id in &users {
                let indexed = self.scored_members(self.keys.user(user_id)).await?;
                for (member, expires_at_ms) in indexed {
                    report.user_index_entries += 1;
                    let id = parse_id_hex(&member, "user index")?;
                    let listed = entries.iter().any(|(entry, at)| {
                        *at == expires_at_ms && *entry == expiry_member(id, user_id)
                    });
                    if !listed {
                        report.orphans += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}
