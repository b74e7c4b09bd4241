//! Online backup and restore of the sled store: paging through records for a backup,
//! and writing a backup's records with their index entries into a new store.

use std::ops::Bound;

use super::{keys, SessionId, SessionRecord, SledStore, StoreError};

/// Records a restore writes per transaction.
const IMPORT_BATCH: usize = 256;

impl SledStore {
    /// Up to `limit` records in id order after `after` (from the first when None).
    pub(super) fn records_after(
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
        self.count_stored(records.len() as u64, 0);
        self.engine().db.flush()?;
        Ok(())
    }
}
