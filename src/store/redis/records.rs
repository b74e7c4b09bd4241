//! Session records on Redis: reads of one key or one shard's keys; every change is a
//! plan of checks and writes run as one script (see `plan`), retried on conflict.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::keys::{parse_expiry_member, parse_id_hex, shard_of, shard_of_user};
use super::near::Lookup;
use super::plan::Plan;
use super::{RedisStore, MAX_ATTEMPTS, SHARDS};
use crate::store::record::{decode_record, record_id};
use crate::store::{
    Decision, Event, RecordDecision, SessionId, SessionRecord, SessionRecords, StoreError,
    UserDecision,
};

#[async_trait]
impl SessionRecords for RedisStore {
    fn place_session_id(&self, fresh: SessionId, user_id: &str) -> SessionId {
        let mut bytes = *fresh.as_bytes();
        bytes[14..].copy_from_slice(&shard_of_user(user_id).to_be_bytes());
        SessionId::from_bytes(bytes)
    }

    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let version = match self.near.as_ref().map(|near| near.lookup(id)) {
            Some(Lookup::Hit(record)) => return Ok(Some(SessionRecord::clone(&record))),
            Some(Lookup::Miss(version)) => Some(version),
            Some(Lookup::Stale) | None => None,
        };
        self.read_record(id, version).await
    }

    async fn get_stored(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let version = self.near.as_ref().and_then(|near| near.reread(id));
        self.read_record(id, version).await
    }

    async fn insert(
        &self,
        record: SessionRecord,
        started: Event,
    ) -> Result<SessionRecord, StoreError> {
        let id = record_id(&record)?;
        let mut plan = Plan::new(&self.keys, shard_of(id));
        plan.check_value(self.keys.session(id), None);
        self.plan_put(&mut plan, None, &record)?;
        plan.event(&record.session_id, &record.user_id, &started);
        if self.run(plan).await? {
            Ok(record)
        } else {
            Err(StoreError::Contended(1))
        }
    }

    async fn update_durably(
        &self,
        id: SessionId,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.keys.session(id);
        for _ in 0..MAX_ATTEMPTS {
            let bytes: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            let current = decode_record(id, &bytes)?;
            match decide(&current) {
                Decision::Keep => return Ok(Some(current)),
                Decision::Put(next, event) => {
                    let mut plan = Plan::new(&self.keys, shard_of(id));
                    plan.check_value(key.clone(), Some(&bytes));
                    self.plan_put(&mut plan, Some(&current), &next)?;
                    match &event {
                        Some(event) => plan.event(&next.session_id, &next.user_id, event),
                        None => plan.quiet_change(&next.session_id),
                    }
                    if self.run(plan).await? {
                        return Ok(Some(*next));
                    }
                }
            }
        }
        Err(StoreError::Contended(MAX_ATTEMPTS))
    }

    async fn update_user(
        &self,
        user_id: &str,
        decide: &mut UserDecision<'_>,
    ) -> Result<(), StoreError> {
        let user_key = self.keys.user(user_id);
        for _ in 0..MAX_ATTEMPTS {
            let members = self.user_members(user_id).await?;
            let mut ids = members
                .iter()
                .map(|member| parse_id_hex(member, "user index"))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            let stored = self.records(&ids).await?;
            let mut plan = Plan::new(&self.keys, shard_of_user(user_id));
            plan.check_members(user_key.clone(), &members);
            let mut current = Vec::with_capacity(ids.len());
            for (id, bytes) in ids.iter().zip(&stored) {
                plan.check_value(self.keys.session(*id), bytes.as_deref());
                if let Some(bytes) = bytes {
                    current.push(decode_record(*id, bytes)?);
                }
            }
            let puts = decide(&current);
            if puts.is_empty() {
                return Ok(());
            }
            for (next, event) in &puts {
                let old = current
                    .iter()
                    .find(|record| record.session_id == next.session_id);
                if old.is_none() {
                    plan.check_value(self.keys.session(record_id(next)?), None);
                }
                self.plan_put(&mut plan, old, next)?;
                plan.event(&next.session_id, &next.user_id, event);
            }
            if self.run(plan).await? {
                return Ok(());
            }
        }
        Err(StoreError::Contended(MAX_ATTEMPTS))
    }

    async fn user_of_external(&self, external_user_id: &str) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("GET").arg(self.keys.external(external_user_id)))
            .await
    }

    async fn list_user(
        &self,
        user_id: &str,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut ids = self
            .user_members(user_id)
            .await?
            .iter()
            .map(|member| parse_id_hex(member, "user index"))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_by(|a, b| b.cmp(a));
        ids.retain(|id| before.is_none_or(|before| *id < before));
        ids.truncate(limit);
        let stored = self.records(&ids).await?;
        ids.iter()
            .zip(stored)
            .filter_map(|(id, bytes)| bytes.map(|bytes| decode_record(*id, &bytes)))
            .collect()
    }

    /// Redis keeps no index in id order: each page reads the ids of every shard's
    /// expiry set (ids only, O(sessions stored) per page), keeps the newest `limit`
    /// before the bound, and reads just those records, one MGET per shard.
    async fn records_before(
        &self,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let per_shard =
            try_join_all((0..SHARDS).map(|shard| self.shard_ids_before(shard, before, limit)))
                .await?;
        let mut ids: Vec<SessionId> = per_shard.into_iter().flatten().collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(limit);
        // Keys of one MGET must share a hash slot: one per shard.
        let mut by_shard: BTreeMap<u16, Vec<SessionId>> = BTreeMap::new();
        for id in ids {
            by_shard.entry(shard_of(id)).or_default().push(id);
        }
        let fetched = try_join_all(by_shard.into_values().map(|ids| async move {
            let stored = self.records(&ids).await?;
            Ok::<_, StoreError>(ids.into_iter().zip(stored).collect::<Vec<_>>())
        }))
        .await?;
        let mut records = fetched
            .into_iter()
            .flatten()
            .filter_map(|(id, bytes)| bytes.map(|bytes| decode_record(id, &bytes)))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_unstable_by(|a, b| b.session_id.cmp(&a.session_id));
        Ok(records)
    }
}

impl RedisStore {
    /// The record of `id` as Redis has it, offered to the near cache when the read
    /// began at its `version`.
    async fn read_record(
        &self,
        id: SessionId,
        version: Option<u64>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.keys.session(id)))
            .await?;
        let record = bytes.map(|bytes| decode_record(id, &bytes)).transpose()?;
        if let (Some(near), Some(version), Some(record)) = (&self.near, version, &record) {
            near.fill(id, record, version);
        }
        Ok(record)
    }

    /// The newest `limit` session ids of one shard before `before`.
    async fn shard_ids_before(
        &self,
        shard: u16,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError> {
        let members: Vec<String> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.keys.expiry(shard))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let mut ids = Vec::with_capacity(members.len());
        for member in &members {
            let (id, _) = parse_expiry_member(member)?;
            if before.is_none_or(|before| id < before) {
                ids.push(id);
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(limit);
        Ok(ids)
    }
}
