//! The expiry sweep: deleting expired sessions (each with an EXPIRED event) in bounded
//! batches, and finding refresh grace windows that closed.

use async_trait::async_trait;

use super::SledStore;
use crate::store::{Commit, ExpiredEvent, Expiry, SessionId, StoreError};

#[async_trait]
impl Expiry for SledStore {
    async fn remove_expired(
        &self,
        now_ms: u64,
        limit: usize,
        expired: &ExpiredEvent<'_>,
    ) -> Result<usize, StoreError> {
        let removed = self.remove_due(now_ms, limit, expired).await?;
        // The end of a sweep, which the server runs every second: the time to look at
        // the data dir's size, and compact when it is due.
        if removed < limit {
            self.compact_if_due().await;
        }
        Ok(removed)
    }

    async fn grace_closed(&self, now_ms: u64, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        Ok(self
            .indexes
            .grace_closed(now_ms, limit)
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }
}

impl SledStore {
    /// Deletes up to `limit` sessions due by `now_ms`, each with its EXPIRED event, in
    /// one transaction; returns how many.
    async fn remove_due(
        &self,
        now_ms: u64,
        limit: usize,
        expired: &ExpiredEvent<'_>,
    ) -> Result<usize, StoreError> {
        let due = self.indexes.expired(now_ms, limit);
        if due.is_empty() {
            return Ok(0);
        }
        let written = self.write(|tx, first_seq| {
            let mut removed = 0;
            for &(_, id) in &due {
                // Extended since the lookup: its new expiry is not due yet.
                if let Some(record) = tx.get(id)?.filter(|r| r.expires_at_ms <= now_ms) {
                    tx.delete(&record)?;
                    tx.log(first_seq + removed, &record, &expired(Some(&record)));
                    removed += 1;
                }
            }
            Ok((removed, removed))
        });
        let (removed, last_seq) = self.watch_io(written)?;
        // Deleting expired sessions needs no flush before it is acknowledged: a crash
        // that loses it leaves sessions that are expired anyway and swept again.
        self.watch_io(self.finish(Commit::Lazy, last_seq).await)?;
        Ok(removed as usize)
    }
}
