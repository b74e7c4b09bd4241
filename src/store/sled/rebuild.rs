//! The indexes' rebuild at open, from the records in id order, in chunks: open indexes
//! the first [`INDEXED_AT_OPEN`] records itself and a thread reads the rest while the
//! server serves, then sums the bytes of the event pages there were at open and drops
//! the touches their records hold already. Calls by session id need no index and are
//! answered at once; the calls that read a user's sessions wait for the rebuild, the
//! sweeper finds only the expired sessions read so far, and event pruning and online
//! compaction wait (the live bytes are not all counted). A chunk is read without the
//! writer lock, then added under it: a commit sees the rebuild's cursor stand still,
//! moves (and counts the bytes of) only the records behind it, and notes the others,
//! which the rebuild reads again if it may have read them before the commit.

use std::ops::Bound;
use std::sync::{Arc, Weak};

use super::index::Placement;
use super::keys;
use super::touches::Touches;
use super::SledStore;
use crate::store::{SessionId, StoreError};

/// Records open indexes before it returns: a store up to this size (about a tenth of
/// a second's reading) opens with its indexes complete, as before the rebuild moved
/// to a thread.
const INDEXED_AT_OPEN: usize = 65_536;

/// Records read per chunk; commits wait only while one is added (about a millisecond).
const CHUNK: usize = 4_096;

/// How long a call that needs the whole indexes waits for the rebuild before it is
/// told to retry: well inside the default `call_timeout` (10 s), so the caller hears
/// why instead of a timeout.
const REBUILD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How the rebuild goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Progress {
    Running,
    Done,
    /// It met a record it cannot read; the detail is for the log and the callers.
    Failed(String),
}

impl SledStore {
    /// Indexes the first records now and the rest on a thread of its own; `events_head`
    /// is the last event seq at open (pages after it are counted by their commits).
    pub(super) fn rebuild_indexes(self: &Arc<Self>, events_head: u64) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        for _ in 0..INDEXED_AT_OPEN / CHUNK {
            if self.rebuild_chunk()? {
                return self.finish_rebuild(events_head);
            }
        }
        tracing::info!(
            indexed = self.indexes.records(),
            "serving while the indexes of the stored sessions are rebuilt"
        );
        let store = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sled-rebuild".into())
            .spawn(move || rebuild_rest(&store, events_head, started))
            .map_err(|error| StoreError::Io(format!("cannot start the index rebuild: {error}")))?;
        Ok(())
    }

    /// Indexes the next chunk of records; true once every record is in.
    fn rebuild_chunk(&self) -> Result<bool, StoreError> {
        let through = self.indexes.rebuilt_through();
        // From here on, commits past the cursor are noted: this read may miss them.
        self.indexes.take_unread();
        let from = match through {
            Some(id) => Bound::Excluded(keys::session_key(id).to_vec()),
            None => Bound::Unbounded,
        };
        let mut read: Vec<(SessionId, Placement, usize)> = Vec::with_capacity(CHUNK);
        for entry in self
            .engine()
            .trees
            .sessions
            .range::<Vec<u8>, _>((from, Bound::Unbounded))
            .take(CHUNK)
        {
            let (key, bytes) = entry?;
            let id = keys::id_from(&key, "session record")?;
            read.push((id, self.placement_of(id, &bytes)?, bytes.len()));
        }
        let complete = read.len() < CHUNK;
        let last = read.last().map(|(id, ..)| *id);
        // Commits wait: the cursor must not move under one (see `Indexes::covers`).
        let _writer = self.writer();
        for id in self.indexes.take_unread() {
            if complete || last.is_some_and(|last| id <= last) {
                self.read_again(&mut read, id)?;
            }
        }
        let bytes = read.iter().map(|(.., bytes)| *bytes as i64).sum();
        let last = read.iter().map(|(id, ..)| *id).max();
        self.indexes.add_rebuilt(
            read.into_iter().map(|(id, placement, _)| (id, placement)),
            last,
            complete,
        );
        self.live.add(bytes, 0);
        self.show_stored();
        Ok(complete)
    }

    /// Replaces what a chunk read of `id` with the record as committed now.
    fn read_again(
        &self,
        read: &mut Vec<(SessionId, Placement, usize)>,
        id: SessionId,
    ) -> Result<(), StoreError> {
        read.retain(|(read_id, ..)| *read_id != id);
        if let Some(bytes) = self.engine().trees.sessions.get(keys::session_key(id))? {
            read.push((id, self.placement_of(id, &bytes)?, bytes.len()));
        }
        Ok(())
    }

    fn placement_of(&self, id: SessionId, bytes: &[u8]) -> Result<Placement, StoreError> {
        self.indexes
            .placement_of_bytes(bytes)
            .map_err(|source| StoreError::CorruptRecord { id, source })
    }

    /// Once every record is in: counts the event pages, drops the touches the records
    /// hold already (see `Touches::settle_stored`), and marks the rebuild done.
    fn finish_rebuild(&self, events_head: u64) -> Result<(), StoreError> {
        self.count_event_pages(events_head)?;
        self.touches.settle_stored(|id| {
            match self.engine().trees.sessions.get(keys::session_key(id))? {
                Some(bytes) => Touches::stored_touch(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::CorruptRecord { id, source }),
                None => Ok(None),
            }
        })?;
        self.rebuild.send_replace(Progress::Done);
        Ok(())
    }

    /// Adds the bytes of the event pages there were at open (through `events_head`; no
    /// page is pruned until the rebuild is done).
    fn count_event_pages(&self, events_head: u64) -> Result<(), StoreError> {
        let mut bytes = 0;
        for entry in self
            .engine()
            .trees
            .events
            .range(..=keys::event_key(events_head))
        {
            bytes += entry?.1.len() as i64;
        }
        self.live.add(0, bytes);
        Ok(())
    }

    /// Whether the rebuild is done: every record indexed, every byte counted.
    pub(super) fn rebuilt(&self) -> bool {
        *self.rebuild.borrow() == Progress::Done
    }

    /// Waits until every record is indexed, for the calls that read a user's sessions:
    /// at most [`REBUILD_WAIT`], then `Rebuilding` (UNAVAILABLE, retry).
    pub(super) async fn indexes_complete(&self) -> Result<(), StoreError> {
        let mut progress = self.rebuild.subscribe();
        let waited = tokio::time::timeout(
            REBUILD_WAIT,
            progress.wait_for(|progress| *progress != Progress::Running),
        )
        .await;
        let progress = match waited {
            Ok(Ok(progress)) => progress,
            Ok(Err(_)) | Err(_) => return Err(StoreError::Rebuilding),
        };
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
fn rebuild_rest(store: &Weak<SledStore>, events_head: u64, started: std::time::Instant) {
    while let Some(store) = store.upgrade() {
        let step = store.rebuild_chunk().and_then(|complete| match complete {
            true => store.finish_rebuild(events_head).map(|()| true),
            false => Ok(false),
        });
        match step {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(
                    sessions = store.indexes.records(),
                    took_ms = started.elapsed().as_millis() as u64,
                    "rebuilt the indexes of the stored sessions"
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
