//! The indexes' rebuild at open, from the records in id order, in chunks: open indexes
//! the first [`INDEXED_AT_OPEN`] records itself and a thread reads the rest while the
//! server serves. Calls by session id need no index and are answered at once; the
//! calls that read a user's sessions wait for the rebuild, and the sweeper finds only
//! the expired sessions read so far. Each chunk is read under the writer lock, so a
//! commit sees the rebuild's cursor stand still, and moves (and counts the bytes of)
//! only the records behind it: the rebuild reads the others as committed.

use std::ops::Bound;
use std::sync::{Arc, Weak};

use super::keys;
use super::SledStore;
use crate::store::StoreError;

/// Records open indexes before it returns: a store up to this size (about a tenth of
/// a second's reading) opens with its indexes complete, as before the rebuild moved
/// to a thread.
const INDEXED_AT_OPEN: usize = 65_536;

/// Records read per chunk, with commits waiting meanwhile (a few milliseconds).
const CHUNK: usize = 4_096;

/// How the rebuild goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Progress {
    Running,
    Done,
    /// It met a record it cannot read; the detail is for the log and the callers.
    Failed(String),
}

impl SledStore {
    /// Indexes the first records now and the rest on a thread of its own.
    pub(super) fn rebuild_indexes(self: &Arc<Self>) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        for _ in 0..INDEXED_AT_OPEN / CHUNK {
            if self.rebuild_chunk()? {
                return Ok(());
            }
        }
        tracing::info!(
            indexed = self.indexes.records(),
            "serving while the indexes of the stored sessions are rebuilt"
        );
        let store = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sled-rebuild".into())
            .spawn(move || rebuild_rest(&store, started))
            .map_err(|error| StoreError::Io(format!("cannot start the index rebuild: {error}")))?;
        Ok(())
    }

    /// Indexes the next chunk of records; true once every record is in.
    fn rebuild_chunk(&self) -> Result<bool, StoreError> {
        // Commits wait: the cursor must not move under one (see `Indexes::covers`).
        let _writer = self.writer();
        let from = match self.indexes.rebuilt_through() {
            Some(id) => Bound::Excluded(keys::session_key(id).to_vec()),
            None => Bound::Unbounded,
        };
        let mut placed = Vec::with_capacity(CHUNK);
        let mut bytes = 0;
        let engine = self.engine();
        for entry in engine
            .trees
            .sessions
            .range::<Vec<u8>, _>((from, Bound::Unbounded))
            .take(CHUNK)
        {
            let (key, record) = entry?;
            let id = keys::id_from(&key, "session record")?;
            let placement = self
                .indexes
                .placement_of_bytes(&record)
                .map_err(|source| StoreError::CorruptRecord { id, source })?;
            placed.push((id, placement));
            bytes += record.len() as i64;
        }
        let complete = placed.len() < CHUNK;
        let last = placed.last().map(|(id, _)| *id);
        self.indexes.add_rebuilt(placed, last, complete);
        self.live.add(bytes, 0);
        self.show_stored();
        if complete {
            self.rebuild.send_replace(Progress::Done);
        }
        Ok(complete)
    }

    /// Waits until every record is indexed: for the calls that read a user's sessions.
    pub(super) async fn indexes_complete(&self) -> Result<(), StoreError> {
        let mut progress = self.rebuild.subscribe();
        let progress = progress
            .wait_for(|progress| *progress != Progress::Running)
            .await
            .map_err(|_| StoreError::Unavailable("the index rebuild stopped".into()))?;
        match &*progress {
            Progress::Failed(detail) => Err(StoreError::Engine(
                format!("the indexes could not be rebuilt at open: {detail}").into(),
            )),
            _ => Ok(()),
        }
    }

    /// Sets the stored-sessions gauge: the records in the indexes (all of them once the
    /// rebuild is done).
    pub(super) fn show_stored(&self) {
        metrics::gauge!(crate::metrics::SESSIONS_STORED).set(self.indexes.records() as f64);
    }
}

/// The rebuild's thread: chunk after chunk until done, or the store is dropped.
fn rebuild_rest(store: &Weak<SledStore>, started: std::time::Instant) {
    while let Some(store) = store.upgrade() {
        match store.rebuild_chunk() {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(
                    sessions = store.indexes.records(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "the indexes of the stored sessions are rebuilt"
                );
                return;
            }
            Err(error) => {
                tracing::error!(%error, "the index rebuild failed: calls that read a user's sessions fail until a restart");
                store
                    .rebuild
                    .send_replace(Progress::Failed(error.to_string()));
                return;
            }
        }
    }
}
