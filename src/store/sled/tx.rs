//! Writing transactions: every multi-tree change runs under the writer lock in one sled
//! transaction over all trees (`Tx`), whose records reach the read cache once committed;
//! user-wide changes (`update_user`) scan and write under the same lock.

use super::*;

/// Runs `work`, which may wait on the disk (sled writes its log buffer, and waits for
/// `sync_file_range`, inside a commit), so that the runtime's other tasks move to
/// another thread meanwhile instead of waiting with it. A current-thread runtime has
/// no other thread to give them, so there it just runs.
pub(super) fn off_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The error a transaction body can raise: an abort with a store error, or sled's own.
pub(super) type TxError = ConflictableTransactionError<StoreError>;

pub(super) fn abort(error: StoreError) -> TxError {
    ConflictableTransactionError::Abort(error)
}

pub(super) fn from_tx(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::from(error),
    }
}

/// The trees inside one transaction.
pub(super) struct Tx<'a> {
    pub(super) sessions: &'a TransactionalTree,
    pub(super) by_user: &'a TransactionalTree,
    pub(super) by_expiry: &'a TransactionalTree,
    pub(super) by_grace: &'a TransactionalTree,
    pub(super) events: &'a TransactionalTree,
    pub(super) meta: &'a TransactionalTree,
    pub(super) by_external: &'a TransactionalTree,
    /// Every record this run wrote (`None`: deleted), for the cache once committed.
    pub(super) written: &'a RefCell<Vec<(SessionId, Option<CachedRecord>)>>,
}

impl Tx<'_> {
    pub(super) fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, TxError> {
        match self.sessions.get(keys::session_key(id))? {
            Some(bytes) => decode(id, &bytes).map(Some).map_err(abort),
            None => Ok(None),
        }
    }

    /// Writes `new` and moves its index entries from where `old` had them.
    pub(super) fn put(
        &self,
        old: Option<&SessionRecord>,
        new: &SessionRecord,
    ) -> Result<(), TxError> {
        let id = record_id(new).map_err(abort)?;
        let (old_expiry, old_grace) = old.map_or((None, 0), |old| {
            (Some(old.expires_at_ms), old.grace_until_ms)
        });
        if let Some(old_expiry) = old_expiry.filter(|at| *at != new.expires_at_ms) {
            self.by_expiry
                .remove(&keys::expiry_key(old_expiry, id)[..])?;
        }
        if old_grace != new.grace_until_ms {
            if old_grace > 0 {
                self.by_grace.remove(&keys::expiry_key(old_grace, id)[..])?;
            }
            if new.grace_until_ms > 0 {
                self.by_grace
                    .insert(&keys::expiry_key(new.grace_until_ms, id)[..], &[][..])?;
            }
        }
        let bytes = sled::IVec::from(new.encode_to_vec());
        self.sessions
            .insert(&keys::session_key(id)[..], bytes.clone())?;
        let cached = CachedRecord {
            bytes,
            record: Arc::new(new.clone()),
        };
        self.written.borrow_mut().push((id, Some(cached)));
        // Both indexes hold only the expiry: a change that keeps it (a Whoami touch,
        // attributes) writes one tree, not three.
        if old_expiry != Some(new.expires_at_ms) {
            self.by_user.insert(
                keys::user_key(&new.user_id, id).map_err(abort)?,
                &keys::encode_ms(new.expires_at_ms)[..],
            )?;
            self.by_expiry
                .insert(&keys::expiry_key(new.expires_at_ms, id)[..], &[][..])?;
        }
        if old.is_none() && !new.external_user_id.is_empty() {
            self.by_external
                .insert(new.external_user_id.as_bytes(), new.user_id.as_bytes())?;
        }
        Ok(())
    }

    pub(super) fn delete(&self, record: &SessionRecord) -> Result<(), TxError> {
        let id = record_id(record).map_err(abort)?;
        self.sessions.remove(&keys::session_key(id)[..])?;
        self.written.borrow_mut().push((id, None));
        self.by_user
            .remove(keys::user_key(&record.user_id, id).map_err(abort)?)?;
        self.by_expiry
            .remove(&keys::expiry_key(record.expires_at_ms, id)[..])?;
        if record.grace_until_ms > 0 {
            self.by_grace
                .remove(&keys::expiry_key(record.grace_until_ms, id)[..])?;
        }
        Ok(())
    }

    /// Applies queued changes in order, numbering their events from `first_seq`; returns
    /// each one's outcome and how many events they appended.
    pub(super) fn apply(
        &self,
        changes: &[&Change],
        first_seq: u64,
    ) -> Result<(Vec<Applied>, u64), TxError> {
        let mut seq = first_seq;
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let (record, event) = match change {
                Change::Insert(record) => {
                    self.put(None, record)?;
                    (record, Some(Event::started(record)))
                }
                Change::Replace {
                    old,
                    expected,
                    next,
                    event,
                } => {
                    let id = record_id(next).map_err(abort)?;
                    if self.sessions.get(keys::session_key(id))?.as_ref() != Some(expected) {
                        outcomes.push(Applied::Stale);
                        continue;
                    }
                    self.put(Some(old), next)?;
                    (next, event.clone())
                }
            };
            outcomes.push(Applied::Done(match event {
                Some(event) => {
                    self.log(seq, record, &event)?;
                    seq += 1;
                    Some(seq - 1)
                }
                None => None,
            }));
        }
        Ok((outcomes, seq - first_seq))
    }

    /// Appends the event of `record` at `seq`.
    pub(super) fn log(
        &self,
        seq: u64,
        record: &SessionRecord,
        event: &Event,
    ) -> Result<(), TxError> {
        let entry = event.stored(seq, &record.session_id, &record.user_id);
        self.events
            .insert(&keys::event_key(seq)[..], entry.encode_to_vec())?;
        Ok(())
    }
}

impl SledStore {
    /// Runs one writing transaction of the sweeper under the writer lock, off the async
    /// workers: the lock may be held by a batch waiting on the disk, and the transaction
    /// waits on sled's log write itself (see `off_runtime`). Per-call writes stay on the
    /// workers: a hand-off per call cost RefreshAllForUser half its throughput.
    pub(super) fn write<T>(
        &self,
        body: impl Fn(&Tx<'_>, u64) -> Result<(T, u64), TxError>,
    ) -> Result<(T, Option<u64>), StoreError> {
        off_runtime(|| self.transact(&mut self.writer(), body))
    }

    /// Runs one writing transaction; the caller holds the writer lock. `body` gets the
    /// first free event seq and returns its result plus how many events it appended.
    /// It must not read outside the transaction: sled's transactions hold a process-wide
    /// lock that plain reads wait for.
    pub(super) fn transact<T>(
        &self,
        writer: &mut Writer,
        body: impl Fn(&Tx<'_>, u64) -> Result<(T, u64), TxError>,
    ) -> Result<(T, Option<u64>), StoreError> {
        let first_seq = writer.next_seq;
        let written = RefCell::new(Vec::new());
        let t = &self.trees;
        let committed = (
            &t.sessions,
            &t.by_user,
            &t.by_expiry,
            &t.by_grace,
            &t.events,
            &t.meta,
            &t.by_external,
        )
            .transaction(
                |(sessions, by_user, by_expiry, by_grace, events, meta, by_external)| {
                    // A re-run starts over: only the last run's writes were committed.
                    written.borrow_mut().clear();
                    body(
                        &Tx {
                            sessions,
                            by_user,
                            by_expiry,
                            by_grace,
                            events,
                            meta,
                            by_external,
                            written: &written,
                        },
                        first_seq,
                    )
                },
            )
            .map_err(from_tx);
        let (result, appended) = self.watch_io(committed)?;
        // Still under the writer lock: the cache sees commits in their order.
        self.cache.apply(written.into_inner());
        writer.next_seq += appended;
        Ok((result, (appended > 0).then(|| writer.next_seq - 1)))
    }

    pub(super) async fn update_user_records(
        &self,
        user_id: &str,
        decide: &mut UserDecision<'_>,
    ) -> Result<(), StoreError> {
        let decide = Mutex::new(decide);
        let ((changed, added), last_seq) = {
            // The scan must see what the transaction will: both run under the writer
            // lock, so no other write can change the index in between.
            let mut writer = self.writer();
            let ids = self.session_ids_of(user_id)?;
            self.transact(&mut writer, |tx, first_seq| {
                let mut current = Vec::with_capacity(ids.len());
                for id in &ids {
                    if let Some(record) = tx.get(*id)? {
                        current.push(record);
                    }
                }
                let mut decide = decide.lock().unwrap_or_else(|poison| poison.into_inner());
                let puts = decide(&current);
                let mut added = 0;
                for (seq, (next, event)) in (first_seq..).zip(&puts) {
                    let old = current
                        .iter()
                        .find(|record| record.session_id == next.session_id);
                    added += u64::from(old.is_none());
                    tx.put(old, next)?;
                    tx.log(seq, next, event)?;
                }
                Ok(((!puts.is_empty(), added), puts.len() as u64))
            })?
        };
        self.count_stored(added, 0);
        if changed {
            self.finish(Commit::Durable, last_seq).await?;
        }
        Ok(())
    }
}
