//! Writing transactions: a user-wide change or a sweep runs under the writer lock in one
//! sled transaction (`Tx`) that writes the records and one page of events (batches of
//! single-record changes are written without one, see `batch`); once committed,
//! the records reach the read cache and their moves the indexes. User-wide changes
//! (`update_user`) look up the user's sessions and write under the same lock.

use std::cell::RefCell;
use std::sync::Arc;

use prost::Message;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::cache::CachedRecord;
use super::events::store_page;
use super::index::{Indexes, Moved, Placement};
use super::keys;
use super::touches::Touches;
use super::{SledStore, Writer};
use crate::store::record::{decode_record, record_id};
use crate::store::{Event, SessionId, SessionRecord, StoreError, StoredEvent};

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

/// Whether storing `new` in place of `old` (`None`: a new record) writes its external
/// user id's mapping, as `mapped` reads it now: only when it changes, since most Starts
/// of a user repeat it.
pub(super) fn maps_external_user_anew<E>(
    old: Option<&SessionRecord>,
    new: &SessionRecord,
    mapped: impl FnOnce(&[u8]) -> Result<Option<sled::IVec>, E>,
) -> Result<bool, E> {
    if old.is_some() || new.external_user_id.is_empty() {
        return Ok(false);
    }
    Ok(mapped(new.external_user_id.as_bytes())?.as_deref() != Some(new.user_id.as_bytes()))
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

/// What one run of a transaction body wrote: applied to the read cache and the indexes
/// once committed, and its events stored as one page when the body is done.
#[derive(Default)]
pub(super) struct Written {
    /// Every record written (`None`: deleted).
    records: Vec<(SessionId, Option<CachedRecord>)>,
    /// Every record whose index placement moved.
    moves: Vec<Moved>,
    pub(super) events: Vec<StoredEvent>,
    /// Bytes the records written took, less those they replaced or deleted.
    record_bytes: i64,
    /// Bytes of the event page written.
    event_bytes: i64,
}

impl Written {
    /// Notes `new`, stored as `bytes` in place of `old` (`None`: a new record).
    pub(super) fn put(
        &mut self,
        indexes: &Indexes,
        id: SessionId,
        old: Option<&SessionRecord>,
        new: &SessionRecord,
        bytes: sled::IVec,
        replaced: Option<sled::IVec>,
    ) {
        if indexes.covers(id) {
            self.record_bytes += bytes.len() as i64 - replaced.map_or(0, |old| old.len() as i64);
        }
        self.records.push((
            id,
            Some(CachedRecord {
                bytes,
                record: Arc::new(new.clone()),
            }),
        ));
        let old = old.map(|old| indexes.placement(old));
        let new = indexes.placement(new);
        if old != Some(new) {
            self.moves.push(Moved {
                id,
                old,
                new: Some(new),
            });
        }
    }

    /// Notes a record deleted: its `removed` bytes and its placement `old` leave.
    fn delete(
        &mut self,
        indexes: &Indexes,
        id: SessionId,
        old: Placement,
        removed: Option<sled::IVec>,
    ) {
        if indexes.covers(id) {
            self.record_bytes -= removed.map_or(0, |bytes| bytes.len() as i64);
        }
        self.records.push((id, None));
        self.moves.push(Moved {
            id,
            old: Some(old),
            new: None,
        });
    }

    /// Notes the bytes of the event page written.
    pub(super) fn paged(&mut self, bytes: usize) {
        self.event_bytes += bytes as i64;
    }

    /// Notes the event of `record` at `seq`; a commit stores its events together, as
    /// one page (see `events`).
    pub(super) fn log(&mut self, seq: u64, record: &SessionRecord, event: &Event) {
        self.events
            .push(event.stored(seq, &record.session_id, &record.user_id));
    }
}

/// The trees inside one transaction.
pub(super) struct Tx<'a> {
    pub(super) sessions: &'a TransactionalTree,
    pub(super) events: &'a TransactionalTree,
    pub(super) meta: &'a TransactionalTree,
    by_external: &'a TransactionalTree,
    indexes: &'a Indexes,
    touches: &'a Touches,
    written: &'a RefCell<Written>,
}

impl Tx<'_> {
    pub(super) fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, TxError> {
        match self.sessions.get(keys::session_key(id))? {
            Some(bytes) => {
                let mut record = decode_record(id, &bytes).map_err(abort)?;
                self.touches.merge(id, &mut record);
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }

    /// Writes `new` in place of `old` (`None`: a new record); its index entries move
    /// once committed.
    pub(super) fn put(
        &self,
        old: Option<&SessionRecord>,
        new: &SessionRecord,
    ) -> Result<(), TxError> {
        let id = record_id(new).map_err(abort)?;
        let bytes = sled::IVec::from(new.encode_to_vec());
        let replaced = self
            .sessions
            .insert(&keys::session_key(id)[..], bytes.clone())?;
        if maps_external_user_anew(old, new, |external| self.by_external.get(external))? {
            self.by_external
                .insert(new.external_user_id.as_bytes(), new.user_id.as_bytes())?;
        }
        self.written
            .borrow_mut()
            .put(self.indexes, id, old, new, bytes, replaced);
        Ok(())
    }

    pub(super) fn delete(&self, record: &SessionRecord) -> Result<(), TxError> {
        let id = record_id(record).map_err(abort)?;
        let removed = self.sessions.remove(&keys::session_key(id)[..])?;
        self.written
            .borrow_mut()
            .delete(self.indexes, id, self.indexes.placement(record), removed);
        Ok(())
    }

    /// Appends the event of `record` at `seq` (see `Written::log`).
    pub(super) fn log(&self, seq: u64, record: &SessionRecord, event: &Event) {
        self.written.borrow_mut().log(seq, record, event);
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
        // Pending touches go to disk with this write's flush.
        self.watch_io(self.touches.write_pending())?;
        let first_seq = writer.next_seq;
        let written = RefCell::new(Written::default());
        let engine = self.engine();
        let t = &engine.trees;
        let committed = (&t.sessions, &t.events, &t.meta, &t.by_external)
            .transaction(|(sessions, events, meta, by_external)| {
                // A re-run starts over: only the last run's writes were committed.
                written.take();
                let tx = Tx {
                    sessions,
                    events,
                    meta,
                    by_external,
                    indexes: &self.indexes,
                    touches: &self.touches,
                    written: &written,
                };
                let outcome = body(&tx, first_seq)?;
                let paged = store_page(events, &written.borrow().events)?;
                written.borrow_mut().paged(paged);
                Ok(outcome)
            })
            .map_err(from_tx);
        let (result, appended) = self.watch_io(committed)?;
        Ok((
            result,
            self.committed(writer, written.into_inner(), appended),
        ))
    }

    /// Shows what a commit wrote to the read cache, the indexes and the touches, and
    /// counts its events; the caller holds the writer lock, so they see commits in
    /// order. The seq of the last event, if it appended any.
    pub(super) fn committed(
        &self,
        writer: &mut Writer,
        written: Written,
        appended: u64,
    ) -> Option<u64> {
        let Written {
            records,
            moves,
            record_bytes,
            event_bytes,
            ..
        } = written;
        self.live.add(record_bytes, event_bytes);
        self.compaction
            .note_changed(records.iter().map(|(id, _)| *id));
        self.touches.settle(
            records
                .iter()
                .map(|(id, cached)| (*id, cached.as_ref().map(|cached| &*cached.record))),
        );
        self.indexes.note_written(records.iter().map(|(id, _)| *id));
        self.cache.apply(records);
        self.indexes.apply(moves);
        self.show_stored();
        writer.next_seq += appended;
        (appended > 0).then(|| writer.next_seq - 1)
    }
}
