//! The store-wide page of records, newest first: Redis keeps no index in id order, so
//! each page reads the ids of every shard's expiry set (ids only), keeps the newest
//! `limit` before the bound, and reads just those records, one MGET per shard.

use std::collections::BTreeMap;

use super::*;

impl RedisStore {
    /// Up to `limit` records of every shard, newest first, before `before`. Costs one
    /// read of every shard's expiry set (O(sessions stored) ids) per page.
    pub(super) async fn newest_records_before(
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
