//! Full scans of the sled store for operators: the consistency check (records against
//! the indexes), paging through records for an online backup, and writing a backup's
//! records with their index entries into a new store (restore).

use std::collections::HashMap;
use std::ops::Bound;

use async_trait::async_trait;

use super::keys;
use super::SledStore;
use crate::store::record::decode_record;
use crate::store::{ConsistencyReport, Maintenance, SessionId, SessionRecord, StoreError};

/// Records a restore writes per transaction.
const IMPORT_BATCH: usize = 256;

#[async_trait]
impl Maintenance for SledStore {
    /// Compares every record with its index entries; on a live server a change made
    /// during the scan may show as a disagreement, so run it again before acting on one.
    async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        self.indexes_complete().await?;
        let mut expected = HashMap::new();
        for entry in self.engine().trees.sessions.iter() {
            let (key, bytes) = entry?;
            let id = keys::id_from(&key, "session record")?;
            expected.insert(id, self.indexes.placement(&decode_record(id, &bytes)?));
        }
        let (user_index_entries, expiry_index_entries, orphans) = self.indexes.compare(&expected);
        Ok(ConsistencyReport {
            sessions: expected.len() as u64,
            user_index_entries,
            expiry_index_entries,
            orphans,
        })
    }

    async fn export_records(
        &self,
        after: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let from = match after {
            Some(id) => Bound::Excluded(keys::session_key(id).to_vec()),
            None => Bound::Unbounded,
        };
        self.engine()
            .trees
            .sessions
            .range::<Vec<u8>, _>((from, Bound::Unbounded))
            .take(limit)
            .map(|entry| self.decode_entry(entry))
            .collect()
    }
}

impl SledStore {
    /// Writes restored records with their index entries (no events), and starts the
    /// event log after `events_head`: cursors from before the backup cannot resume
    /// here, so watchers start over. For a new, empty store only.
    pub fn import(&self, records: &[SessionRecord], events_head: u64) -> Result<(), StoreError> {
        for batch in records.chunks(IMPORT_BATCH) {
            self.write(|tx, _| {
                for record in batch {
                    tx.put(None, record)?;
                }
                Ok(((), 0))
            })?;
        }
        self.write(|tx, _| {
            tx.meta.insert(
                keys::EVENTS_PRUNED_THROUGH,
                &keys::event_key(events_head)[..],
            )?;
            Ok(((), 0))
        })?;
        self.engine().db.flush()?;
        Ok(())
    }
}
