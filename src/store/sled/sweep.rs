//! The expiry sweep: deleting expired sessions with their index entries (EXPIRED
//! events) in bounded batches, and finding refresh grace windows that closed.

use super::*;

impl SledStore {
    pub(super) async fn remove_expired_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let due = Self::ids_due(&self.trees.by_expiry, now_ms, limit)?;
        if due.is_empty() {
            return Ok(0);
        }
        let (removed, last_seq) = self.write(|tx, first_seq| {
            let mut removed = 0;
            for &(expires_at_ms, id) in &due {
                match tx.get(id)? {
                    Some(record) if record.expires_at_ms <= now_ms => {
                        tx.delete(&record)?;
                        let expired = Event::expired(Some(&record), now_ms);
                        tx.log(first_seq + removed, &record, &expired)?;
                        removed += 1;
                    }
                    // Extended since the scan: its new entry stays, the stale one goes.
                    Some(record) if record.expires_at_ms != expires_at_ms => {
                        tx.by_expiry
                            .remove(&keys::expiry_key(expires_at_ms, id)[..])?;
                    }
                    Some(_) => {}
                    None => {
                        tx.by_expiry
                            .remove(&keys::expiry_key(expires_at_ms, id)[..])?;
                    }
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
        Ok(Self::ids_due(&self.trees.by_grace, now_ms, limit)?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }
}
