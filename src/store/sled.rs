//! The embedded default backend: sled trees (see `keys` for their layouts), every change
//! one multi-tree transaction that also appends its events, and group commit for `sync`
//! durability.

use std::cell::RefCell;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use tokio::sync::{oneshot, watch, Notify};

mod backup;

use super::keys;
use super::sled_cache::{CachedRecord, RecordCache};
use super::{
    Commit, ConsistencyReport, Decision, Durability, Event, EventsAfter, RecordDecision, SessionId,
    SessionRecord, SessionStore, StoreError, StoredEvent, UserDecision,
};

/// Sessions in a sled database on local disk.
pub struct SledStore {
    db: sled::Db,
    trees: Trees,
    durability: Durability,
    group_commit: GroupCommit,
    /// Held across every writing transaction: it hands out event sequence numbers in
    /// commit order (so a watcher never sees seq 7 before seq 6 exists), and, since sled
    /// transactions cannot scan, keeps a user's index from changing between the scan
    /// and the transaction of `update_user`. Transactions take microseconds; flushes
    /// happen outside it.
    writer: Mutex<Writer>,
    /// Fired whenever the writer lock is released: queued changes may need a leader.
    writer_released: Notify,
    /// Single-record changes waiting for the next batched transaction.
    queue: Mutex<Vec<Queued>>,
    /// The newest event seq that watchers may read.
    head: watch::Sender<u64>,
    /// Session records stored, kept in step by every insert and delete.
    stored: AtomicU64,
    /// Recently used records, kept in step with every commit (see `sled_cache`).
    cache: RecordCache,
    /// The first failed disk write: sled stays failed after one (see `write_fault`).
    fault: watch::Sender<Option<String>>,
}

struct Trees {
    sessions: sled::Tree,
    by_user: sled::Tree,
    by_expiry: sled::Tree,
    by_grace: sled::Tree,
    events: sled::Tree,
    meta: sled::Tree,
    by_external: sled::Tree,
}

struct Writer {
    next_seq: u64,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<SledStore, StoreError> {
        let db = open_db(dir)?;
        let trees = Trees {
            sessions: db.open_tree("sessionid_session")?,
            by_user: db.open_tree("userid_sessionids")?,
            by_expiry: db.open_tree("expiresat_sessionid")?,
            by_grace: db.open_tree("graceuntil_sessionid")?,
            events: db.open_tree("seq_event")?,
            meta: db.open_tree("meta")?,
            by_external: db.open_tree("extuserid_userid")?,
        };
        let last_event = match trees.events.last()? {
            Some((key, _)) => keys::decode_u64(&key, "event")?,
            None => 0,
        };
        let pruned_through = match trees.meta.get(keys::EVENTS_PRUNED_THROUGH)? {
            Some(value) => keys::decode_u64(&value, "meta")?,
            None => 0,
        };
        let head = last_event.max(pruned_through);
        Ok(SledStore {
            stored: AtomicU64::new(trees.sessions.len() as u64),
            trees,
            db,
            durability,
            group_commit: GroupCommit::default(),
            writer: Mutex::new(Writer { next_seq: head + 1 }),
            writer_released: Notify::new(),
            queue: Mutex::new(Vec::new()),
            head: watch::Sender::new(head),
            cache: RecordCache::new(READ_CACHE_RECORDS),
            fault: watch::Sender::new(None),
        })
    }

    /// Passes `result` on; a disk failure in it is reported once, as the store's write
    /// fault (one log line and one count per episode, not one per call).
    fn watch_io<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(error) = &result {
            self.note_io(error);
        }
        result
    }

    /// Reports `error` as the store's write fault if it is the disk's (see `watch_io`).
    fn note_io(&self, error: &StoreError) {
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

    /// A session's record as stored, from the cache or else from sled (then cached).
    fn read_record(&self, id: SessionId) -> Result<Option<CachedRecord>, StoreError> {
        if let Some(cached) = self.cache.get(&id) {
            return Ok(Some(cached));
        }
        let version = self.cache.version();
        let Some(bytes) = self.trees.sessions.get(keys::session_key(id))? else {
            return Ok(None);
        };
        let cached = CachedRecord {
            record: Arc::new(decode(id, &bytes)?),
            bytes,
        };
        self.cache.fill(id, cached.clone(), version);
        Ok(Some(cached))
    }

    /// Stores a change that rewrites the record only (same expiry, grace window and
    /// user: no index entry moves) and logs nothing, as one compare-and-swap of the
    /// record, outside the batched transactions: last-access touches then cost no
    /// transaction. `false` when the record is no longer `expected`.
    fn swap_record(
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
    fn writer(&self) -> WriterGuard<'_> {
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
    fn try_writer(&self) -> Option<WriterGuard<'_>> {
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

    fn queue(&self) -> MutexGuard<'_, Vec<Queued>> {
        self.queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Applies one single-record change in the next batched transaction: whoever finds
    /// the writer lock free commits every queued change in one sled transaction (each
    /// sled transaction costs a log write of its own, so sharing one is what makes
    /// concurrent writes cheap), and the others wait for their outcome.
    async fn submit(&self, change: Change, commit: Commit) -> Result<Applied, StoreError> {
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
    fn lead(&self, writer: &mut Writer) {
        let batch: Vec<Queued> = {
            let mut queue = self.queue();
            let take = queue.len().min(MAX_BATCH);
            queue.drain(..take).collect()
        };
        if !batch.is_empty() {
            self.commit_batch(writer, batch);
        }
    }

    fn commit_batch(&self, writer: &mut Writer, batch: Vec<Queued>) {
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
    fn batch_needs_flush(&self, batch: &[Queued], outcomes: &[Applied]) -> bool {
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

    /// Flushes sled's log now, on this thread.
    fn flush_log(&self) -> Result<(), sled::Error> {
        let started = std::time::Instant::now();
        self.db.flush()?;
        metrics::histogram!(crate::metrics::STORE_FLUSH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Runs one writing transaction of the sweeper under the writer lock, off the async
    /// workers: the lock may be held by a batch waiting on the disk, and the transaction
    /// waits on sled's log write itself (see `off_runtime`). Per-call writes stay on the
    /// workers: a hand-off per call cost RefreshAllForUser half its throughput.
    fn write<T>(
        &self,
        body: impl Fn(&Tx<'_>, u64) -> Result<(T, u64), TxError>,
    ) -> Result<(T, Option<u64>), StoreError> {
        off_runtime(|| self.transact(&mut self.writer(), body))
    }

    /// Runs one writing transaction; the caller holds the writer lock. `body` gets the
    /// first free event seq and returns its result plus how many events it appended.
    /// It must not read outside the transaction: sled's transactions hold a process-wide
    /// lock that plain reads wait for.
    fn transact<T>(
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

    /// Makes a write durable as its commit mode and the store's durability ask, then
    /// shows its events to watchers (only once durable, so a watcher never acts on an
    /// event a crash could take back).
    async fn finish(&self, commit: Commit, last_seq: Option<u64>) -> Result<(), StoreError> {
        // A write that logged events is made durable whatever its commit mode: a watcher
        // must never see an event (or a cursor) that a crash could take back.
        let durable = commit == Commit::Durable || last_seq.is_some();
        if durable && self.durability == Durability::Sync {
            self.watch_io(self.group_commit.flush(&self.db).await)?;
        }
        self.publish(last_seq);
        Ok(())
    }

    /// Shows events through `last_seq` to watchers; the caller made them durable.
    fn publish(&self, last_seq: Option<u64>) {
        if let Some(seq) = last_seq {
            self.head.send_if_modified(|head| {
                let moved = seq > *head;
                *head = (*head).max(seq);
                moved
            });
        }
    }

    /// Adds `added` and takes `removed` from the stored-sessions gauge.
    fn count_stored(&self, added: u64, removed: u64) {
        let now = if added >= removed {
            self.stored.fetch_add(added - removed, Ordering::Relaxed) + (added - removed)
        } else {
            let taken = removed - added;
            self.stored
                .fetch_sub(taken, Ordering::Relaxed)
                .saturating_sub(taken)
        };
        metrics::gauge!(crate::metrics::SESSIONS_STORED).set(now as f64);
    }

    fn session_ids_of(&self, user_id: &str) -> Result<Vec<SessionId>, StoreError> {
        self.trees
            .by_user
            .scan_prefix(keys::user_prefix(user_id)?)
            .map(|entry| keys::session_id_of_user_key(&entry?.0))
            .collect()
    }

    fn ids_due(
        tree: &sled::Tree,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, SessionId)>, StoreError> {
        tree.range(..=keys::expiry_upper_bound(now_ms))
            .take(limit)
            .map(|entry| keys::parse_expiry_key(&entry?.0))
            .collect()
    }
}

/// Records the read cache keeps per generation (at most twice this many in all): about
/// 50 MB at most, room for every session validated often.
const READ_CACHE_RECORDS: usize = 32_768;

/// Whether `next` keeps every index entry of `old` where it is (same user, expiry and
/// grace window), so storing it rewrites the record alone.
fn same_index_entries(old: &SessionRecord, next: &SessionRecord) -> bool {
    old.user_id == next.user_id
        && old.expires_at_ms == next.expires_at_ms
        && old.grace_until_ms == next.grace_until_ms
}

/// Most single-record changes one batched transaction carries.
const MAX_BATCH: usize = 128;

/// The writer lock, held; released first and then announced, so that a caller woken by
/// the announcement finds the lock free.
struct WriterGuard<'a> {
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
enum Change {
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
enum Applied {
    /// Stored, and flushed if its caller needs that (see `finish`); the seq of its
    /// event, if it logged one.
    Done(Option<u64>),
    /// The record changed since it was read: decide again.
    Stale,
}

struct Queued {
    change: Change,
    commit: Commit,
    done: oneshot::Sender<Result<Applied, StoreError>>,
}

/// How long `open_db` waits for the data dir's lock.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Opens the sled database in `dir`, waiting a moment if its lock is still held: a
/// store closed in this process lets go of it only once sled's background threads
/// have dropped their handles, which a busy machine can delay.
fn open_db(dir: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Err(sled::Error::Io(error))
                if error.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => return opened,
        }
    }
}

/// Runs `work`, which may wait on the disk (sled writes its log buffer, and waits for
/// `sync_file_range`, inside a commit), so that the runtime's other tasks move to
/// another thread meanwhile instead of waiting with it. A current-thread runtime has
/// no other thread to give them, so there it just runs.
fn off_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Group commit: a writer that finds a flush under way waits for it and then for one
/// more flush, shared with every writer that queued meanwhile.
#[derive(Default)]
struct GroupCommit {
    /// Writes applied in memory, counted.
    written: AtomicU64,
    /// How many of those a finished flush covers.
    flushed: AtomicU64,
    flushing: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
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

/// The error a transaction body can raise: an abort with a store error, or sled's own.
type TxError = ConflictableTransactionError<StoreError>;

fn abort(error: StoreError) -> TxError {
    ConflictableTransactionError::Abort(error)
}

fn from_tx(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::from(error),
    }
}

fn decode(id: SessionId, bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    SessionRecord::decode(bytes).map_err(|source| StoreError::CorruptRecord { id, source })
}

fn record_id(record: &SessionRecord) -> Result<SessionId, StoreError> {
    keys::id_from(&record.session_id, "session record")
}

/// The trees inside one transaction.
struct Tx<'a> {
    sessions: &'a TransactionalTree,
    by_user: &'a TransactionalTree,
    by_expiry: &'a TransactionalTree,
    by_grace: &'a TransactionalTree,
    events: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    by_external: &'a TransactionalTree,
    /// Every record this run wrote (`None`: deleted), for the cache once committed.
    written: &'a RefCell<Vec<(SessionId, Option<CachedRecord>)>>,
}

impl Tx<'_> {
    fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, TxError> {
        match self.sessions.get(keys::session_key(id))? {
            Some(bytes) => decode(id, &bytes).map(Some).map_err(abort),
            None => Ok(None),
        }
    }

    /// Writes `new` and moves its index entries from where `old` had them.
    fn put(&self, old: Option<&SessionRecord>, new: &SessionRecord) -> Result<(), TxError> {
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

    fn delete(&self, record: &SessionRecord) -> Result<(), TxError> {
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
    fn apply(&self, changes: &[&Change], first_seq: u64) -> Result<(Vec<Applied>, u64), TxError> {
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
    fn log(&self, seq: u64, record: &SessionRecord, event: &Event) -> Result<(), TxError> {
        let entry = event.stored(seq, &record.session_id, &record.user_id);
        self.events
            .insert(&keys::event_key(seq)[..], entry.encode_to_vec())?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .read_record(id)?
            .map(|cached| SessionRecord::clone(&cached.record)))
    }

    async fn insert(&self, record: &SessionRecord) -> Result<(), StoreError> {
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

    async fn update(
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

    async fn update_user(
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

    async fn user_of_external(&self, external_user_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .trees
            .by_external
            .get(external_user_id.as_bytes())?
            .map(|user_id| String::from_utf8_lossy(&user_id).into_owned()))
    }

    async fn list_user(
        &self,
        user_id: &str,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let first = keys::user_prefix(user_id)?;
        let end = match before {
            Some(id) => Bound::Excluded(keys::user_key(user_id, id)?),
            None => Bound::Included(keys::user_key(user_id, SessionId::max())?),
        };
        let mut records = Vec::with_capacity(limit.min(64));
        for entry in self
            .trees
            .by_user
            .range((Bound::Included(first), end))
            .rev()
            .take(limit)
        {
            let id = keys::session_id_of_user_key(&entry?.0)?;
            if let Some(record) = self.get(id).await? {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn remove_expired(&self, now_ms: u64, limit: usize) -> Result<usize, StoreError> {
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

    async fn grace_closed(&self, now_ms: u64, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        Ok(Self::ids_due(&self.trees.by_grace, now_ms, limit)?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }

    async fn events_after(&self, after_seq: u64, limit: usize) -> Result<EventsAfter, StoreError> {
        let pruned_through = match self.trees.meta.get(keys::EVENTS_PRUNED_THROUGH)? {
            Some(value) => keys::decode_u64(&value, "meta")?,
            None => 0,
        };
        if after_seq < pruned_through {
            return Ok(EventsAfter::Pruned { pruned_through });
        }
        let head = self.head_seq();
        let mut events = Vec::new();
        for entry in self
            .trees
            .events
            .range(keys::event_key(after_seq.saturating_add(1))..)
            .take(limit)
        {
            let (key, bytes) = entry?;
            let seq = keys::decode_u64(&key, "event")?;
            // Past the head: committed but not yet durable; shown after the flush.
            if seq > head {
                break;
            }
            let event = StoredEvent::decode(&*bytes)
                .map_err(|source| StoreError::CorruptEvent { seq, source })?;
            events.push(event);
        }
        Ok(EventsAfter::Events(events))
    }

    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut doomed = Vec::new();
        for entry in self.trees.events.iter().take(limit) {
            let (key, bytes) = entry?;
            let seq = keys::decode_u64(&key, "event")?;
            let event = StoredEvent::decode(&*bytes)
                .map_err(|source| StoreError::CorruptEvent { seq, source })?;
            if event.at_ms >= before_ms {
                break;
            }
            doomed.push(seq);
        }
        let Some(&last) = doomed.last() else {
            return Ok(0);
        };
        self.write(|tx, _| {
            for seq in &doomed {
                tx.events.remove(&keys::event_key(*seq)[..])?;
            }
            tx.meta
                .insert(keys::EVENTS_PRUNED_THROUGH, &keys::event_key(last)[..])?;
            Ok(((), 0))
        })?;
        Ok(doomed.len())
    }

    fn head_seq(&self) -> u64 {
        *self.head.borrow()
    }

    fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn export_records(
        &self,
        after: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.records_after(after, limit)
    }

    async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        let t = &self.trees;
        let mut report = ConsistencyReport::default();
        for entry in t.sessions.iter() {
            let (key, bytes) = entry?;
            let id = keys::id_from(&key, "session record")?;
            let record = decode(id, &bytes)?;
            report.sessions += 1;
            let user_entry = t.by_user.get(keys::user_key(&record.user_id, id)?)?;
            if user_entry.as_deref() != Some(&keys::encode_ms(record.expires_at_ms)[..]) {
                report.orphans += 1;
            }
            if !t
                .by_expiry
                .contains_key(keys::expiry_key(record.expires_at_ms, id))?
            {
                report.orphans += 1;
            }
            if record.grace_until_ms > 0
                && !t
                    .by_grace
                    .contains_key(keys::expiry_key(record.grace_until_ms, id))?
            {
                report.orphans += 1;
            }
        }
        for entry in t.by_user.iter() {
            let (key, _) = entry?;
            report.user_index_entries += 1;
            if !t
                .sessions
                .contains_key(keys::session_key(keys::session_id_of_user_key(&key)?))?
            {
                report.orphans += 1;
            }
        }
        for (tree, counter) in [
            (&t.by_expiry, &mut report.expiry_index_entries),
            (&t.by_grace, &mut 0),
        ] {
            for entry in tree.iter() {
                let (key, _) = entry?;
                *counter += 1;
                let (at_ms, id) = keys::parse_expiry_key(&key)?;
                let matches = match t.sessions.get(keys::session_key(id))? {
                    Some(bytes) => {
                        let record = decode(id, &bytes)?;
                        if std::ptr::eq(tree, &t.by_expiry) {
                            record.expires_at_ms == at_ms
                        } else {
                            record.grace_until_ms == at_ms
                        }
                    }
                    None => false,
                };
                if !matches {
                    report.orphans += 1;
                }
            }
        }
        Ok(report)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    fn write_fault(&self) -> watch::Receiver<Option<String>> {
        self.fault.subscribe()
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.finish(Commit::Durable, None).await
    }
}
