//! The consistency check: a full scan of the records, compared with the indexes.

use std::collections::HashMap;

use super::*;

impl SledStore {
    /// Compares every record with its index entries; on a live server a change made
    /// during the scan may show as a disagreement, so run it again before acting on one.
    pub(super) async fn scan_consistency(&self) -> Result<ConsistencyReport, StoreError> {
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
}
