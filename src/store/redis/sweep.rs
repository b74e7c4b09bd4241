//! The expiry sweep on Redis (one shard at a time, each sweep starting one shard further)
//! and the grace windows that closed.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::keys::{expiry_member, id_hex, parse_expiry_member, parse_id_hex};
use super::plan::Plan;
use super::{RedisStore, SHARDS};
use crate::store::record::decode_record;
use crate::store::{ExpiredEvent, Expiry, SessionId, StoreError};

impl RedisStore {
    pub(super) async fn due(
        &self,
        key: String,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(limit),
        )
        .await
    }

    /// Deletes up to `limit` sessions of one shard that expired by `now_ms`.
    pub(super) async fn remove_expired_in(
        &self,
        shard: u16,
        now_ms: u64,
        limit: usize,
        expired: &ExpiredEvent<'_>,
    ) -> Result<usize, StoreError> {
        let members = self.due(self.keys.expiry(shard), now_ms, limit).await?;
        let due = members
            .iter()
            .map(|member| parse_expiry_member(member))
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<SessionId> = due.iter().map(|(id, _)| *id).collect();
        let stored = self.records(&ids).await?;
        let mut plan = Plan::new(&self.keys, shard);
        let mut removed = 0;
        for ((id, user_id), bytes) in due.iter().zip(&stored) {
            let key = self.keys.session(*id);
            plan.check_value(key.clone(), bytes.as_deref());
            let record = bytes
                .as_deref()
                .map(|bytes| decode_record(*id, bytes))
                .transpose()?;
            if record
                .as_ref()
                .is_some_and(|record| record.expires_at_ms > now_ms)
            {
                continue;
            }
            // None: Redis's own expiry was first, only the indexes are left.
            let grace = record.as_ref().map_or(1, |record| record.grace_until_ms);
            plan.delete_record(key, *id);
            plan.zrem(self.keys.user(user_id), id_hex(*id));
            plan.zrem(self.keys.expiry(shard), expiry_member(*id, user_id));
            if grace > 0 {
                plan.zrem(self.keys.grace(shard), id_hex(*id));
            }
            plan.event(id.as_bytes(), user_id, &expired(record.as_ref()));
            removed += 1;
        }
        if removed == 0 || !self.run(plan).await? {
            // A concurrent change (an extension, another sweeper): the next sweep retries.
            return Ok(0);
        }
        Ok(removed)
    }
}

#[async_trait]
impl Expiry for RedisStore {
    async fn remove_expired(
        &self,
        now_ms: u64,
        limit: usize,
        expired: &ExpiredEvent<'_>,
    ) -> Result<usize, StoreError> {
        // Every server sweeps every shard, each starting where the last sweep started
        // plus one, from a random shard: servers that sweep at once mostly work on
        // different shards instead of racing for the same records.
        let first = self.next_sweep_shard.fetch_add(1, Ordering::Relaxed);
        let mut removed = 0;
        for offset in 0..SHARDS {
            let shard = first.wrapping_add(offset) % SHARDS;
            if removed >= limit {
                break;
            }
            removed += self
                .remove_expired_in(shard, now_ms, limit - removed, expired)
                .await?;
        }
        // Every server sweeps, so every server's gauge shows the deployment's total.
        let stored: Vec<u64> = try_join_all((0..SHARDS).map(|shard| {
            let count = redis::cmd("ZCARD").arg(self.keys.expiry(shard)).to_owned();
            async move { self.query(&count).await }
        }))
        .await?;
        metrics::gauge!(crate::metrics::SESSIONS_STORED).set(stored.iter().sum::<u64>() as f64);
        Ok(removed)
    }

    async fn grace_closed(&self, now_ms: u64, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        let mut closed = Vec::new();
        for shard in 0..SHARDS {
            if closed.len() >= limit {
                break;
            }
            let key = self.keys.grace(shard);
            let ids = self
                .due(key.clone(), now_ms, limit - closed.len())
                .await?
                .iter()
                .map(|member| parse_id_hex(member, "grace index"))
                .collect::<Result<Vec<_>, _>>()?;
            for (id, bytes) in ids.iter().zip(self.records(&ids).await?) {
                if bytes.is_some() {
                    closed.push(*id);
                } else {
                    // Redis expired the record: nothing left to close.
                    self.query::<()>(redis::cmd("ZREM").arg(&key).arg(id_hex(*id)))
                        .await?;
                }
            }
        }
        Ok(closed)
    }
}
