//! The embedded default backend: three sled trees (see `keys` for their layouts), every
//! change one multi-tree transaction, and group commit for `sync` durability.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use prost::Message;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::keys;
use super::{
    Commit, ConsistencyReport, Decision, Durability, RecordDecision, SessionId, SessionRecord,
    SessionStore, StoreError, UserDecision,
};

/// Stripes of the per-user write lock: enough that unrelated users rarely share one.
const USER_LOCK_STRIPES: usize = 256;

/// Sessions in a sled database on local disk.
pub struct SledStore {
    db: sled::Db,
    sessions: sled::Tree,
    by_user: sled::Tree,
    by_expiry: sled::Tree,
    durability: Durability,
    group_commit: GroupCommit,
    /// sled transactions cannot scan, so a user's index is read before its transaction;
    /// this lock keeps two `update_user` calls of one user from interleaving there.
    user_locks: Vec<Mutex<()>>,
    /// Session records stored, kept in step by every insert and delete.
    stored: AtomicU64,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let sessions = db.open_tree("sessionid_session")?;
        let stored = AtomicU64::new(sessions.len() as u64);
        Ok(SledStore {
            stored,
            sessions,
            by_user: db.open_tree("userid_sessionids")?,
            by_expiry: db.open_tree("expiresat_sessionid")?,
            db,
            durability,
            group_commit: GroupCommit::default(),
            user_locks: (0..USER_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// Waits until the writes made so far are on disk, if the durability asks for it.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        match (commit, self.durability) {
            (Commit::Durable, Durability::Sync) => self.group_commit.flush(&self.db).await,
            _ => Ok(()),
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

    fn user_lock(&self, user_id: &str) -> &Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user_id);
        // The modulo keeps the index below the number of stripes.
        &self.user_locks[(hash % USER_LOCK_STRIPES as u64) as usize]
    }

    fn session_ids_of(&self, user_id: &str) -> Result<Vec<SessionId>, StoreError> {
        self.by_user
            .scan_prefix(keys::user_prefix(user_id)?)
            .map(|entry| keys::session_id_of_user_key(&entry?.0))
            .collect()
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
        TransactionError::Storage(error) => StoreError::Engine(error),
    }
}

fn decode(id: SessionId, bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    SessionRecord::decode(bytes).map_err(|source| StoreError::CorruptRecord { id, source })
}

fn record_id(record: &SessionRecord) -> Result<SessionId, StoreError> {
    keys::id_from(&record.session_id, "session record")
}

/// The three trees inside one transaction.
struct Tx<'a> {
    sessions: &'a TransactionalTree,
    by_user: &'a TransactionalTree,
    by_expiry: &'a TransactionalTree,
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
        if let Some(old) = old {
            if old.expires_at_ms != new.expires_at_ms {
                self.by_expiry
                    .remove(&keys::expiry_key(old.expires_at_ms, id)[..])?;
            }
        }
        self.sessions
            .insert(&keys::session_key(id)[..], new.encode_to_vec())?;
        self.by_user.insert(
            keys::user_key(&new.user_id, id).map_err(abort)?,
            &keys::encode_ms(new.expires_at_ms)[..],
        )?;
        self.by_expiry
            .insert(&keys::expiry_key(new.expires_at_ms, id)[..], &[][..])?;
        Ok(())
    }

    fn delete(&self, record: &SessionRecord) -> Result<(), TxError> {
        let id = record_id(record).map_err(abort)?;
        self.sessions.remove(&keys::session_key(id)[..])?;
        self.by_user
            .remove(keys::user_key(&record.user_id, id).map_err(abort)?)?;
        self.by_expiry
            .remove(&keys::expiry_key(record.expires_at_ms, id)[..])?;
        Ok(())
    }
}

impl SledStore {
    fn transaction<T>(
        &self,
        body: impl Fn(&Tx<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        (&self.sessions, &self.by_user, &self.by_expiry)
            .transaction(|(sessions, by_user, by_expiry)| {
                body(&Tx {
                    sessions,
                    by_user,
                    by_expiry,
                })
            })
            .map_err(from_tx)
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        match self.sessions.get(keys::session_key(id))? {
            Some(bytes) => decode(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    async fn insert(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put(None, record))?;
        self.count_stored(1, 0);
        self.commit(Commit::Durable).await
    }

    async fn update(
        &self,
        id: SessionId,
        commit: Commit,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // `transaction` takes `Fn`; the decision is `FnMut`, so it sits behind a lock
        // that is never contended (one transaction body runs at a time).
        let decide = Mutex::new(decide);
        let (stored, changed) = self.transaction(|tx| {
            let Some(current) = tx.get(id)? else {
                return Ok((None, false));
            };
            let mut decide = decide.lock().unwrap_or_else(|poison| poison.into_inner());
            match decide(&current) {
                Decision::Keep => Ok((Some(current), false)),
                Decision::Put(next) => {
                    tx.put(Some(&current), &next)?;
                    Ok((Some(*next), true))
                }
            }
        })?;
        if changed {
            self.commit(commit).await?;
        }
        Ok(stored)
    }

    async fn update_user(
        &self,
        user_id: &str,
        decide: &mut UserDecision<'_>,
    ) -> Result<(), StoreError> {
        let decide = Mutex::new(decide);
        let (changed, added) = {
            let _serialized = self
                .user_lock(user_id)
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let ids = self.session_ids_of(user_id)?;
            self.transaction(|tx| {
                let mut current = Vec::with_capacity(ids.len());
                for id in &ids {
                    if let Some(record) = tx.get(*id)? {
                        current.push(record);
                    }
                }
                let mut decide = decide.lock().unwrap_or_else(|poison| poison.into_inner());
                let puts = decide(&current);
                let mut added = 0;
                for next in &puts {
                    let old = current
                        .iter()
                        .find(|record| record.session_id == next.session_id);
                    added += u64::from(old.is_none());
                    tx.put(old, next)?;
                }
                Ok((!puts.is_empty(), added))
            })?
        };
        self.count_stored(added, 0);
        if changed {
            self.commit(Commit::Durable).await?;
        }
        Ok(())
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
        let due: Vec<(u64, SessionId)> = self
            .by_expiry
            .range(..=keys::expiry_upper_bound(now_ms))
            .take(limit)
            .map(|entry| keys::parse_expiry_key(&entry?.0))
            .collect::<Result<_, _>>()?;
        if due.is_empty() {
            return Ok(0);
        }
        let removed = self.transaction(|tx| {
            let mut removed = 0;
            for &(expires_at_ms, id) in &due {
                match tx.get(id)? {
                    Some(record) if record.expires_at_ms <= now_ms => {
                        tx.delete(&record)?;
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
            Ok(removed)
        })?;
        self.count_stored(0, removed as u64);
        // Deleting expired sessions needs no flush before it is acknowledged: a crash
        // that loses it leaves sessions that are expired anyway and swept again.
        Ok(removed)
    }

    async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        let mut report = ConsistencyReport::default();
        for entry in self.sessions.iter() {
            let (key, bytes) = entry?;
            let id = keys::id_from(&key, "session record")?;
            let record = decode(id, &bytes)?;
            report.sessions += 1;
            let user_entry = self.by_user.get(keys::user_key(&record.user_id, id)?)?;
            if user_entry.as_deref() != Some(&keys::encode_ms(record.expires_at_ms)[..]) {
                report.orphans += 1;
            }
            if !self
                .by_expiry
                .contains_key(keys::expiry_key(record.expires_at_ms, id))?
            {
                report.orphans += 1;
            }
        }
        for entry in self.by_user.iter() {
            let (key, _) = entry?;
            report.user_index_entries += 1;
            if !self
                .sessions
                .contains_key(keys::session_key(keys::session_id_of_user_key(&key)?))?
            {
                report.orphans += 1;
            }
        }
        for entry in self.by_expiry.iter() {
            let (key, _) = entry?;
            report.expiry_index_entries += 1;
            let (expires_at_ms, id) = keys::parse_expiry_key(&key)?;
            let matches = match self.sessions.get(keys::session_key(id))? {
                Some(bytes) => decode(id, &bytes)?.expires_at_ms == expires_at_ms,
                None => false,
            };
            if !matches {
                report.orphans += 1;
            }
        }
        Ok(report)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}
