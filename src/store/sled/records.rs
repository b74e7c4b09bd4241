//! Session records on sled: reads through the read cache and the in-memory indexes;
//! single-record changes through the batch (`batch`), user-wide ones through one
//! transaction under the writer lock (`tx`). Every write passes its result through
//! `watch_io`: a disk error met anywhere on the way (a read inside the batch, after
//! sled's own flusher failed first) still reports the fault that stops the server.

use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::batch::{Applied, Change};
use super::cache::CachedRecord;
use super::keys;
use super::touches::Touch;
use super::SledStore;
use crate::store::{
    Commit, Decision, Event, RecordDecision, SessionId, SessionRecord, SessionRecords, StoreError,
    UserDecision,
};

#[async_trait]
impl SessionRecords for SledStore {
    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        // Whoami's read: one copy of the record, the touch merged into it in place.
        Ok(self.read_stored(id)?.map(|cached| {
            let mut record = SessionRecord::clone(&cached.record);
            self.touches.merge(id, &mut record);
            record
        }))
    }

    async fn insert(
        &self,
        record: SessionRecord,
        started: Event,
    ) -> Result<SessionRecord, StoreError> {
        self.watch_io(
            async {
                let change = Change::Insert(Box::new(record), started);
                let (last_seq, record) = match self.submit(change, Commit::Durable).await? {
                    (Applied::Done(last_seq), record) => (last_seq, record),
                    (Applied::Stale, _) => return Err(StoreError::BatchLost),
                };
                self.publish(last_seq);
                Ok(*record)
            }
            .await,
        )
    }

    async fn update_durably(
        &self,
        id: SessionId,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.watch_io(self.update_committed(id, Commit::Durable, decide).await)
    }

    async fn update_lazily(
        &self,
        id: SessionId,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.watch_io(self.update_committed(id, Commit::Lazy, decide).await)
    }

    async fn update_user(
        &self,
        user_id: &str,
        decide: &mut UserDecision<'_>,
    ) -> Result<(), StoreError> {
        self.indexes_complete().await?;
        self.watch_io(
            async {
                let decide = Mutex::new(decide);
                let (changed, last_seq) = {
                    // The lookup must see what the transaction will: both run under the
                    // writer lock, so no other write can move the index in between.
                    let mut writer = self.writer();
                    let ids = self.indexes.user_ids(user_id);
                    self.transact(&mut writer, |tx, first_seq| {
                        let mut current = Vec::with_capacity(ids.len());
                        for id in &ids {
                            // The index may hold another user whose id hashes alike.
                            match tx.get(*id)? {
                                Some(record) if record.user_id == user_id => current.push(record),
                                _ => {}
                            }
                        }
                        let mut decide = decide.lock().unwrap_or_else(|poison| poison.into_inner());
                        let puts = decide(&current);
                        for (seq, (next, event)) in (first_seq..).zip(&puts) {
                            let old = current
                                .iter()
                                .find(|record| record.session_id == next.session_id);
                            tx.put(old, next)?;
                            tx.log(seq, next, event);
                        }
                        Ok((!puts.is_empty(), puts.len() as u64))
                    })?
                };
                if changed {
                    self.finish(Commit::Durable, last_seq).await?;
                }
                Ok(())
            }
            .await,
        )
    }

    async fn user_of_external(&self, external_user_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .engine()
            .trees
            .by_external
            .get(external_user_id.as_bytes())?
            .map(|user_id| String::from_utf8_lossy(&user_id).into_owned()))
    }

    async fn list_user(
        &self,
        user_id: &str,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.indexes_complete().await?;
        let mut records = Vec::with_capacity(limit.min(64));
        let mut cursor = before;
        while records.len() < limit {
            let ids = self
                .indexes
                .user_ids_before(user_id, cursor, limit - records.len());
            let Some(&last) = ids.last() else { break };
            cursor = Some(last);
            for id in ids {
                // The index may hold another user whose id hashes alike.
                match self.read_record(id)? {
                    Some(cached) if cached.record.user_id == user_id => {
                        records.push(SessionRecord::clone(&cached.record));
                    }
                    _ => {}
                }
            }
        }
        Ok(records)
    }

    async fn records_before(
        &self,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        // A reverse range of the sessions tree: reads only the records returned.
        let end = match before {
            Some(id) => Bound::Excluded(keys::session_key(id).to_vec()),
            None => Bound::Unbounded,
        };
        self.engine()
            .trees
            .sessions
            .range::<Vec<u8>, _>((Bound::Unbounded, end))
            .rev()
            .take(limit)
            .map(|entry| self.decode_entry(entry))
            .collect()
    }
}

impl SledStore {
    /// Applies `decide` to a record (see `SessionRecords::update`), committed as `commit`
    /// says: a lazy change that only touches the last access goes to `touches`.
    async fn update_committed(
        &self,
        id: SessionId,
        commit: Commit,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // Optimistic: decide on the record as read, then store the outcome if the record
        // is still what was read; otherwise (a concurrent change won) decide again.
        loop {
            let Some(CachedRecord {
                bytes: expected,
                record,
            }) = self.read_record(id)?
            else {
                return Ok(None);
            };
            let Decision::Put(next, event) = decide(&record) else {
                return Ok(Some(SessionRecord::clone(&record)));
            };
            if commit == Commit::Lazy && event.is_none() && Touch::only_difference(&record, &next) {
                self.watch_io(self.touches.touch(id, Touch::of(&next)))?;
                return Ok(Some(*next));
            }
            let change = Change::Replace {
                old: record,
                expected,
                next,
                event,
            };
            if let (Applied::Done(last_seq), next) = self.submit(change, commit).await? {
                self.publish(last_seq);
                return Ok(Some(*next));
            }
            // Changed since it was read: the next read goes to sled.
            self.cache.forget(&id);
        }
    }
}
