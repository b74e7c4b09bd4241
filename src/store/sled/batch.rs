//! Single-record changes (Start, Refresh, Extend, Logout, touches): decided on the record
//! as read, queued, and committed with every change queued meanwhile in one transaction
//! under the writer lock (each only if its record is still the one read). A touch of the
//! last access alone goes to `touches`; another lazy change that moves no index entry
//! is one compare-and-swap.

use super::*;

/// Whether `next` keeps every index entry of `old` where it is (same user, expiry and
/// grace window), so storing it rewrites the record alone.
pub(super) fn same_index_entries(old: &SessionRecord, next: &SessionRecord) -> bool {
    old.user_id == next.user_id
        && old.expires_at_ms == next.expires_at_ms
        && old.grace_until_ms == next.grace_until_ms
}

/// Most single-record changes one batched transaction carries.
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
    /// A new session with its STARTED event.
    Insert(Box<SessionRecord>),
    /// `old` becomes `next`, if the stored bytes are still `expected`.
    Replace {
        old: Box<SessionRecord>,
        expected: sled::IVec,
        next: Box<SessionRecord>,
        event: Option<Event>,
    },
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
    pub(super) done: oneshot::Sender<Result<Applied, StoreError>>,
}

impl SledStore {
    /// Stores a change that rewrites the record only (same expiry, grace window and
    /// user: no index entry moves) and logs nothing, as one compare-and-swap of the
    /// record, outside the batched transactions: last-access touches then cost no
    /// transaction. `false` when the record is no longer `expected`.
    pub(super) fn swap_record(
        &self,
        id: SessionId,
        expected: &sled::IVec,
        next: &SessionRecord,
    ) -> Result<bool, StoreError> {
        let bytes = sled::IVec::from(next.encode_to_vec());
        let swapped = self.watch_io(
            self.trees
                .sessions
                .compare_and_swap(keys::session_key(id), Some(expected), Some(bytes.clone()))
                .map_err(StoreError::from),
        )?;
        if swapped.is_err() {
            return Ok(false);
        }
        let cached = CachedRecord {
            bytes,
            record: Arc::new(next.clone()),
        };
        self.cache.replace(id, expected, cached);
        Ok(true)
    }

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
    pub(super) async fn submit(
        &self,
        change: Change,
        commit: Commit,
    ) -> Result<Applied, StoreError> {
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

    pub(super) fn commit_batch(&self, writer: &mut Writer, batch: Vec<Queued>) {
        let changes: Vec<&Change> = batch.iter().map(|queued| &queued.change).collect();
        match self.transact(writer, |tx, first_seq| tx.apply(&changes, first_seq)) {
            Ok((outcomes, _)) => {
                // One flush for the whole batch, before anyone hears back: a group flush
                // per caller afterwards would keep each waiting for another round.
                let flushed = if self.batch_needs_flush(&batch, &outcomes) {
                    self.flush_log()
                } else {
                    Ok(())
                };
                if let Err(error) = &flushed {
                    self.note_io(&StoreError::from(error.clone()));
                }
                for (queued, applied) in batch.into_iter().zip(outcomes) {
                    // A caller that gave up waiting no longer needs its outcome.
                    let _ = queued
                        .done
                        .send(flushed.clone().map(|()| applied).map_err(StoreError::from));
                }
            }
            // One change failed the shared transaction: each gets its own, so the
            // failure reaches only the caller it belongs to.
            Err(_) if batch.len() > 1 => {
                for queued in batch {
                    self.commit_batch(writer, vec![queued]);
                }
            }
            Err(error) => {
                if let Some(queued) = batch.into_iter().next() {
                    let _ = queued.done.send(Err(error));
                }
            }
        }
    }

    /// Whether a committed batch holds a change its caller may only hear of once flushed
    /// (see `finish`).
    pub(super) fn batch_needs_flush(&self, batch: &[Queued], outcomes: &[Applied]) -> bool {
        self.durability == Durability::Sync
            && batch
                .iter()
                .zip(outcomes)
                .any(|(queued, applied)| match applied {
                    Applied::Done(last_seq) => {
                        queued.commit == Commit::Durable || last_seq.is_some()
                    }
                    Applied::Stale => false,
                })
    }

    pub(super) async fn insert_record(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let last_seq = match self
            .submit(Change::Insert(Box::new(record.clone())), Commit::Durable)
            .await?
        {
            Applied::Done(last_seq) => last_seq,
            Applied::Stale => return Err(StoreError::BatchLost),
        };
        self.count_stored(1, 0);
        self.publish(last_seq);
        Ok(())
    }

    pub(super) async fn update_record(
        &self,
        id: SessionId,
        commit: Commit,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // Optimistic: decide on the record as read, then store the outcome if the record
        // is still what was read; otherwise (a concurrent change won) decide again.
        loop {
            let Some(CachedRecord {
                bytes: expected,
                record,
            }) = self.read_record(id)?
            else {
                return Ok(None);
            };
            let current = SessionRecord::clone(&record);
            let Decision::Put(next, event) = decide(&current) else {
                return Ok(Some(current));
            };
            if commit == Commit::Lazy && event.is_none() && Touch::only_difference(&current, &next)
            {
                self.watch_io(self.touches.touch(id, Touch::of(&next)))?;
                return Ok(Some(*next));
            }
            if commit == Commit::Lazy && event.is_none() && same_index_entries(&current, &next) {
                if self.swap_record(id, &expected, &next)? {
                    return Ok(Some(*next));
                }
                self.cache.forget(&id);
                continue;
            }
            let change = Change::Replace {
                old: Box::new(current),
                expected,
                next: next.clone(),
                event,
            };
            if let Applied::Done(last_seq) = self.submit(change, commit).await? {
                self.publish(last_seq);
                return Ok(Some(*next));
            }
            // Changed since it was read: the next read goes to sled.
            self.cache.forget(&id);
        }
    }
}
