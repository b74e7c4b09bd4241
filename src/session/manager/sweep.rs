//! The sweeper's work: deletes expired sessions in bounded batches, closes refresh
//! grace windows that ended and prunes events past their retention.

use super::*;
use crate::session::policy::expired_event;

impl SessionManager {
    /// Deletes sessions expired by now, drops sealed successors whose grace window
    /// closed and events past retention, `batch` per store step, until none is left.
    /// Returns how many sessions it deleted.
    pub async fn sweep(&self, batch: usize) -> Result<usize, SessionError> {
        let now = self.clock.now_ms();
        loop {
            let closed = self.store.grace_closed(now, batch).await?;
            for id in &closed {
                self.store
                    .update(*id, Commit::Lazy, &mut |record| {
                        if record.grace_until_ms > 0 && record.grace_until_ms <= now {
                            let mut next = record.clone();
                            close_grace(&mut next);
                            Decision::Put(Box::new(next), None)
                        } else {
                            Decision::Keep
                        }
                    })
                    .await?;
            }
            if closed.len() < batch {
                break;
            }
        }
        let horizon = now.saturating_sub(millis(self.settings.event_retention));
        while self.store.prune_events(horizon, batch).await? >= batch {
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
        let mut total = 0;
        loop {
            let removed = self
                .store
                .remove_expired(now, batch, &|record| expired_event(record, now))
                .await?;
            total += removed;
            if removed < batch {
                ::metrics::counter!(metrics::SWEEPER_RUNS).increment(1);
                ::metrics::histogram!(metrics::SWEEPER_BATCH).record(total as f64);
                ::metrics::counter!(metrics::SESSIONS_EXPIRED).increment(total as u64);
                ::metrics::gauge!(metrics::alerting::SWEEPER_LAST_SUCCESS)
                    .set(self.clock.now_ms() as f64 / 1000.0);
                return Ok(total);
            }
            // A batch holds sled's commit lock, which reads wait for: a pause between
            // batches keeps Whoami's tail latency flat while a mass expiry is swept.
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
    }
}
