//! The expiry sweep: deleting expired sessions (each with an EXPIRED event) in bounded
//! batches, and finding refresh grace windows that closed.

use super::*;

impl SledStore {
    pub(super) async fn remove_expired_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let due = self.indexes.expired(now_ms, limit);
        if due.is_empty() {
            return Ok(0);
        }
        let (removed, last_seq) = self.write(|tx, first_seq| {
            let mut removed = 0;
            for &(_, id) in &due {
                // Extended since the lookup: its new expiry is not due yet.
                if let Some(record) = tx.get(id)?.filter(|r| r.expires_at_ms <= now_ms) {
                    tx.delete(&record)?;
                    tx.log(
                        first_seq + removed,
                        &record,
                        &Event::expired(Some(&record), now_ms),
                    );
                    removed += 1;
                }
            }
            Ok((removed, removed))
        })?;
        self.count_stored(0, removed);
        // Deleting expired sessions needs no flush before it is acknowledged: a crash
        // that loses it leaves sessions that are expired anyway and swept again.
        self.finish(Commit::Lazy, last_seq).await?;
        Ok(removed as usize)
    }

    pub(super) async fn grace_closed_ids(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<SessionId>, StoreError> {
        Ok(self
            .indexes
            .grace_closed(now_ms, limit)
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }
}
