//! Single-record changes (Start, Refresh, Extend, Logout, touches): decided on the record
//! as read, queued, and written with every change queued meanwhile under the writer lock
//! (each only if its record is still the one read), their events first as one page. A
//! touch of the last access alone goes to `touches`.

use std::sync::{Arc, MutexGuard, TryLockError};

use prost::Message;
use tokio::sync::{oneshot, Notify};

use super::events;
use super::keys;
use super::tx::{maps_external_user_anew, off_runtime, Written};
use super::{SledStore, Writer};
use crate::store::record::record_id;
use crate::store::{Commit, Durability, Event, SessionId, SessionRecord, StoreError};

/// Most single-record changes one batch carries.
pub(super) const MAX_BATCH: usize = 128;

/// The writer lock, held; released first and then announced, so that a caller woken by
/// the announcement finds the lock free.
pub(super) struct WriterGuard<'a> {
    guard: Option<MutexGuard<'a, Writer>>,
    released: &'a Notify,
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Writer;

    fn deref(&self) -> &Writer {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("held until drop"))
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("held until drop"))
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        self.released.notify_waiters();
    }
}

/// A single-record change, decided before its transaction and applied in one batch.
pub(super) enum Change {
    /// A new session with its event (STARTED).
    Insert(Box<SessionRecord>, Event),
    /// `old` becomes `next`, if the stored bytes are still `expected`.
    Replace {
        old: Arc<SessionRecord>,
        expected: sled::IVec,
        next: Box<SessionRecord>,
        event: Option<Event>,
    },
}

impl Change {
    /// The record the change stores, handed back to its caller once applied.
    fn into_next(self) -> Box<SessionRecord> {
        match self {
            Change::Insert(record, _) => record,
            Change::Replace { next, .. } => next,
        }
    }
}

/// A change whose record is still the one read, about to be written.
pub(super) struct Planned<'c> {
    id: SessionId,
    old: Option<&'c SessionRecord>,
    next: &'c SessionRecord,
    event: Option<&'c Event>,
}

/// What a change came to.
pub(super) enum Applied {
    /// Stored, and flushed if its caller needs that (see `finish`); the seq of its
    /// event, if it logged one.
    Done(Option<u64>),
    /// The record changed since it was read: decide again.
    Stale,
}

pub(super) struct Queued {
    pub(super) change: Change,
    pub(super) commit: Commit,
    /// The outcome, with the record the change stores (so its caller needs no copy).
    pub(super) done: oneshot::Sender<Result<(Applied, Box<SessionRecord>), StoreError>>,
}

impl SledStore {
    /// The writer lock (see `writer`).
    pub(super) fn writer(&self) -> WriterGuard<'_> {
        WriterGuard {
            guard: Some(
                self.writer
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()),
            ),
            released: &self.writer_released,
        }
    }

    /// The writer lock, if nobody holds it.
    pub(super) fn try_writer(&self) -> Option<WriterGuard<'_>> {
        let guard = match self.writer.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poison)) => poison.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(WriterGuard {
            guard: Some(guard),
            released: &self.writer_released,
        })
    }

    pub(super) fn queue(&self) -> MutexGuard<'_, Vec<Queued>> {
        self.queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Applies one single-record change in the next batched transaction: whoever finds
    /// the writer lock free commits every queued change in one sled transaction (each
    /// sled transaction costs a log write of its own, so sharing one is what makes
    /// concurrent writes cheap), and the others wait for their outcome.
    #[tracing::instrument(level = "debug", name = "sled.commit", skip_all)]
    pub(super) async fn submit(
        &self,
        change: Change,
        commit: Commit,
    ) -> Result<(Applied, Box<SessionRecord>), StoreError> {
        let (done, mut outcome) = oneshot::channel();
        self.queue().push(Queued {
            change,
            commit,
            done,
        });
        loop {
            // Registered before looking at the lock, so a release in between still wakes us.
            let released = self.writer_released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(mut writer) = self.try_writer() {
                off_runtime(|| self.lead(&mut writer));
            }
            match outcome.try_recv() {
                Ok(applied) => return applied,
                Err(oneshot::error::TryRecvError::Closed) => return Err(StoreError::BatchLost),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            tokio::select! {
                applied = &mut outcome => return applied.unwrap_or(Err(StoreError::BatchLost)),
                () = &mut released => {}
            }
        }
    }

    /// Commits one batch of queued changes (its own change among them unless the queue
    /// was past a batch); releasing the lock then wakes a waiter to lead the next.
    pub(super) fn lead(&self, writer: &mut Writer) {
        let batch: Vec<Queued> = {
            let mut queue = self.queue();
            let take = queue.len().min(MAX_BATCH);
            queue.drain(..take).collect()
        };
        if !batch.is_empty() {
            self.commit_batch(writer, batch);
        }
    }

    #[tracing::instrument(level = "debug", name = "sled.write_batch", skip_all, fields(changes = batch.len()))]
    pub(super) fn commit_batch(&self, writer: &mut Writer, batch: Vec<Queued>) {
        metrics::histogram!(crate::metrics::alerting::STORE_COMMIT_BATCH)
            .record(batch.len() as f64);
        let changes: Vec<&Change> = batch.iter().map(|queued| &queued.change).collect();
        let outcomes = self.write_changes(writer, &changes);
        // One flush for the whole batch, before anyone hears back: a group flush per
        // caller afterwards would keep each waiting for another round.
        let flushed = if self.batch_needs_flush(&batch, &outcomes) {
            self.flush_log()
        } else {
            Ok(())
        };
        if let Err(error) = &flushed {
            self.note_io(&StoreError::from(error.clone()));
        }
        for (queued, outcome) in batch.into_iter().zip(outcomes) {
            // A caller that gave up waiting no longer needs its outcome.
            let outcome = flushed.clone().map_err(StoreError::from).and(outcome);
            let _ = queued
                .done
                .send(outcome.map(|applied| (applied, queued.change.into_next())));
        }
    }

    /// Writes queued changes, numbering their events in order from the writer's next
    /// seq: first their events as one page, then each record that is still the one read
    /// (else `Stale`). Every record write holds the writer lock, so that check is exact.
    /// No sled transaction: each of those rolls sled's log buffer, one disk write and
    /// `sync_file_range` per transaction (a fifth of the server's CPU under Start).
    /// A crash keeps a prefix of sled's log, and the page comes first: a change on disk
    /// always has its event; an event may outlive a change that never reached the disk
    /// (never acknowledged). One outcome per change.
    pub(super) fn write_changes(
        &self,
        writer: &mut Writer,
        changes: &[&Change],
    ) -> Vec<Result<Applied, StoreError>> {
        // Pending touches go to disk with this write's flush.
        if let Err(error) = self.watch_io(self.touches.write_pending()) {
            let error = error.to_string();
            return changes
                .iter()
                .map(|_| Err(StoreError::Io(error.clone())))
                .collect();
        }
        let mut outcomes: Vec<Result<Applied, StoreError>> = Vec::with_capacity(changes.len());
        let mut planned = Vec::with_capacity(changes.len());
        let mut written = Written::default();
        for (index, change) in changes.iter().enumerate() {
            let seq = writer.next_seq + written.events.len() as u64;
            match self.plan(change) {
                // An earlier change of this batch rewrites the record this one read.
                Ok(Some(plan))
                    if planned
                        .iter()
                        .any(|(_, earlier): &(usize, Planned)| earlier.id == plan.id) =>
                {
                    outcomes.push(Ok(Applied::Stale))
                }
                Ok(Some(plan)) => {
                    outcomes.push(Ok(Applied::Done(plan.event.map(|event| {
                        written.log(seq, plan.next, event);
                        seq
                    }))));
                    planned.push((index, plan));
                }
                Ok(None) => outcomes.push(Ok(Applied::Stale)),
                Err(error) => outcomes.push(Err(error)),
            }
        }
        if let Some((key, bytes)) = events::page_entry(&written.events) {
            written.paged(bytes.len());
            if let Err(error) = self.engine().trees.events.insert(&key[..], bytes) {
                self.note_io(&StoreError::from(error.clone()));
                for (index, _) in planned {
                    outcomes[index] = Err(StoreError::from(error.clone()));
                }
                return outcomes;
            }
        }
        for (index, plan) in planned {
            if let Err(error) = self.watch_io(self.write_record(&plan, &mut written)) {
                outcomes[index] = Err(error);
            }
        }
        let appended = written.events.len() as u64;
        self.committed(writer, written, appended);
        outcomes
    }

    /// What writing `change` takes, if its record is still the one read.
    fn plan<'c>(&self, change: &'c Change) -> Result<Option<Planned<'c>>, StoreError> {
        let (old, next, event, expected) = match change {
            Change::Insert(record, event) => (None, &**record, Some(event), None),
            Change::Replace {
                old,
                expected,
                next,
                event,
            } => (Some(&**old), &**next, event.as_ref(), Some(expected)),
        };
        let id = record_id(next)?;
        let stored = self.engine().trees.sessions.get(keys::session_key(id))?;
        if stored.as_ref() != expected {
            return Ok(None);
        }
        Ok(Some(Planned {
            id,
            old,
            next,
            event,
        }))
    }

    /// Writes a planned record, noting it in `written`.
    fn write_record(&self, plan: &Planned<'_>, written: &mut Written) -> Result<(), StoreError> {
        let bytes = sled::IVec::from(plan.next.encode_to_vec());
        let replaced = self
            .engine()
            .trees
            .sessions
            .insert(keys::session_key(plan.id), bytes.clone())?;
        if maps_external_user_anew(plan.old, plan.next, |external| {
            self.engine().trees.by_external.get(external)
        })? {
            self.engine().trees.by_external.insert(
                plan.next.external_user_id.as_bytes(),
                plan.next.user_id.as_bytes(),
            )?;
        }
        written.put(&self.indexes, plan.id, plan.old, plan.next, bytes, replaced);
        Ok(())
    }

    /// Whether a committed batch holds a change its caller may only hear of once flushed
    /// (see `finish`).
    pub(super) fn batch_needs_flush(
        &self,
        batch: &[Queued],
        outcomes: &[Result<Applied, StoreError>],
    ) -> bool {
        self.durability == Durability::Sync
            && batch
                .iter()
                .zip(outcomes)
                .any(|(queued, outcome)| match outcome {
                    Ok(Applied::Done(last_seq)) => {
                        queued.commit == Commit::Durable || last_seq.is_some()
                    }
                    Ok(Applied::Stale) | Err(_) => false,
                })
    }
}
