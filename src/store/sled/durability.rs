//! Where a sled commit waits for the disk: the batch leader's flush, group commit for
//! other durable writes, and what a failed disk write does (the store's write fault).

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::watch;

use super::SledStore;
use crate::store::{Commit, Durability, Persistence, StoreError};

/// Group commit: a writer that finds a flush under way waits for it and then for one
/// more flush, shared with every writer that queued meanwhile.
#[derive(Default)]
pub(super) struct GroupCommit {
    /// Writes applied in memory, counted.
    written: AtomicU64,
    /// How many of those a finished flush covers.
    flushed: AtomicU64,
    flushing: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    pub(super) async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        let mine = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        let _turn = self.flushing.lock().await;
        if self.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let covered = self.written.load(Ordering::Acquire);
        let started = std::time::Instant::now();
        db.flush_async().await?;
        metrics::histogram!(crate::metrics::STORE_FLUSH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        self.flushed.fetch_max(covered, Ordering::AcqRel);
        Ok(())
    }
}

impl SledStore {
    /// Flushes sled's log now, on this thread.
    pub(super) fn flush_log(&self) -> Result<(), sled::Error> {
        let started = std::time::Instant::now();
        self.engine().db.flush()?;
        metrics::histogram!(crate::metrics::STORE_FLUSH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Makes a write durable as its commit mode and the store's durability ask, then
    /// shows its events to watchers (only once durable, so a watcher never acts on an
    /// event a crash could take back).
    pub(super) async fn finish(
        &self,
        commit: Commit,
        last_seq: Option<u64>,
    ) -> Result<(), StoreError> {
        // A write that logged events is made durable whatever its commit mode: a watcher
        // must never see an event (or a cursor) that a crash could take back.
        let durable = commit == Commit::Durable || last_seq.is_some();
        if durable && self.durability == Durability::Sync {
            // A clone of the handle: a compaction may replace the engine meanwhile, and then
            // this write is in the new generation, flushed before it became current.
            let db = self.engine().db.clone();
            self.watch_io(self.group_commit.flush(&db).await)?;
        }
        self.publish(last_seq);
        Ok(())
    }

    /// Passes `result` on; a disk failure in it is reported once, as the store's write
    /// fault (one log line and one count per episode, not one per call).
    pub(super) fn watch_io<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(error) = &result {
            self.note_io(error);
        }
        result
    }

    /// Reports `error` as the store's write fault if it is the disk's (see `watch_io`).
    pub(super) fn note_io(&self, error: &StoreError) {
        if let StoreError::Io(detail) = error {
            self.fault.send_if_modified(|fault| {
                if fault.is_some() {
                    return false;
                }
                tracing::error!(error = %detail, "the session store cannot write to disk; writes answer UNAVAILABLE and the server stops so it can be restarted");
                metrics::counter!(crate::metrics::STORE_WRITE_FAULTS).increment(1);
                *fault = Some(detail.clone());
                true
            });
        }
    }
}

#[async_trait]
impl Persistence for SledStore {
    async fn flush(&self) -> Result<(), StoreError> {
        self.watch_io(self.touches.write_pending())?;
        let db = self.engine().db.clone();
        self.watch_io(db.flush_async().await.map_err(StoreError::from))?;
        Ok(())
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.watch_io(self.finish(Commit::Durable, None).await)
    }

    fn write_fault(&self) -> watch::Receiver<Option<String>> {
        self.fault.subscribe()
    }
}
