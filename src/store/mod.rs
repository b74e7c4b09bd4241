//! Persistence of sessions behind a few concern traits, so the session rules never see
//! an engine.
//! Every state change is one atomic step in the store: record and indexes together.

pub mod backup_file;
pub mod cache;
#[cfg(test)]
mod contract;
pub mod marks;
pub mod record;
pub mod redis;
pub mod sled;

use std::str::FromStr;

use async_trait::async_trait;
use serde::Deserialize;

pub use record::{ClientContext, EndReason, EventKind, SessionRecord, StoredEvent, StoredState};

/// Session ids are UUID v7: unique, and sorted by creation time.
pub type SessionId = uuid::Uuid;

/// An event a change appends to the session event log, in the same atomic step. The
/// session rules decide every event; a store appends the ones it is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub at_ms: u64,
    /// Why the session ended (Unspecified for events that end none).
    pub reason: EndReason,
    /// Who caused it (a caller's name, "anonymous", or the sweeper).
    pub actor: std::sync::Arc<str>,
    /// Free text kept with it (a bulk revoke's reason); empty: none.
    pub note: std::sync::Arc<str>,
}

impl Event {
    /// The log entry of this event of `session_id` / `user_id`, numbered `seq`.
    pub fn stored(&self, seq: u64, session_id: &[u8], user_id: &str) -> StoredEvent {
        StoredEvent {
            seq,
            kind: self.kind as i32,
            session_id: session_id.to_vec(),
            user_id: user_id.to_owned(),
            at_ms: self.at_ms,
            end_reason: self.reason as i32,
            actor: self.actor.to_string(),
            note: self.note.to_string(),
        }
    }
}

/// What a store call's decision does to one record.
#[derive(Debug)]
pub enum Decision {
    /// Leave the record as it is.
    Keep,
    /// Store this version of the record (indexes follow), and log the event if any.
    Put(Box<SessionRecord>, Option<Event>),
}

/// The log after a cursor.
#[derive(Debug)]
pub enum EventsAfter {
    /// Events after the cursor, oldest first (empty: the cursor is at the head).
    Events(Vec<StoredEvent>),
    /// Retention pruned events after the cursor: it cannot be resumed.
    Pruned { pruned_through: u64 },
}

/// When a write must be on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Flushed before the call returns when the store's durability is `sync`.
    Durable,
    /// Flushed with the next durable write or background flush (last-access touches).
    Lazy,
}

/// How the store makes writes durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A durable write is flushed to disk before it is acknowledged; concurrent writers
    /// share one flush.
    #[default]
    Sync,
    /// Writes reach disk with the engine's background flush (every few hundred ms).
    Periodic,
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::keyword::parse_keyword(s)
    }
}

/// Which backend holds the sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded sled database in the data dir: one server.
    #[default]
    Sled,
    /// Redis or Redis Cluster shared by any number of servers.
    Redis,
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::keyword::parse_keyword(s)
    }
}

/// How the indexes and records agree, as found by a full scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsistencyReport {
    /// Session records.
    pub sessions: u64,
    /// Entries of the per-user index.
    pub user_index_entries: u64,
    /// Entries of the expiry index.
    pub expiry_index_entries: u64,
    /// Index entries that point at no record or disagree with it, plus records that miss
    /// an index entry. Zero in a healthy store.
    pub orphans: u64,
}

/// Failures of the storage layer, in terms of no engine: each adapter turns its
/// engine's errors into these (`sled/error.rs`, `redis/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed in a way no other variant names; the detail is for the log.
    #[error("{0}")]
    Engine(Box<dyn std::error::Error + Send + Sync>),
    /// The disk failed a read or write (full, I/O error): retrying may help once it is
    /// fixed; the store reports it through [`Persistence::write_fault`].
    #[error("storage I/O: {0}")]
    Io(String),
    #[error("stored record of session {id} cannot be decoded: {source}")]
    CorruptRecord {
        id: SessionId,
        source: prost::DecodeError,
    },
    #[error("stored event {seq} cannot be decoded: {source}")]
    CorruptEvent {
        seq: u64,
        source: prost::DecodeError,
    },
    #[error("malformed {0} key")]
    MalformedKey(&'static str),
    /// The store cannot be reached now (network, failover, timeout): callers may retry.
    #[error("store unreachable: {0}")]
    Unavailable(String),
    /// The store restarted and is still rebuilding the indexes a call needs (those of a
    /// user's sessions): retrying in a few seconds succeeds.
    #[error("the indexes are still being rebuilt after a restart")]
    Rebuilding,
    /// A batched write got no outcome from the writer that took it.
    #[error("a batched write was lost by its writer")]
    BatchLost,
    /// The backend does not do this (e.g. an online backup of Redis: use Redis's own).
    #[error("{0}")]
    Unsupported(&'static str),
    /// A change kept losing to concurrent changes of the same records.
    #[error("gave up after {0} attempts lost to concurrent changes")]
    Contended(u32),
}

/// A decision over one record, re-run if the store retries the atomic step (so it must
/// have no side effects beyond what it captures for its caller).
pub type RecordDecision<'a> = dyn FnMut(&SessionRecord) -> Decision + Send + 'a;

/// A decision over all of one user's records: returns the records to put (changed ones,
/// and new ones to insert) with the event each logs. Re-run on retry like
/// [`RecordDecision`].
pub type UserDecision<'a> = dyn FnMut(&[SessionRecord]) -> Vec<(SessionRecord, Event)> + Send + 'a;

/// The event the sweeper logs for a session it deletes, from its record: None when
/// the engine had already dropped the record by itself (Redis's own expiry) and only
/// its index entries were left. May be called again if the store retries its step.
pub type ExpiredEvent<'a> = dyn Fn(Option<&SessionRecord>) -> Event + Send + Sync + 'a;

/// Where sessions live: every concern of a store, as the one object the session rules
/// hold (`Arc<dyn SessionStore>`). Each engine implements each concern in that
/// concern's file (`sled/events.rs` holds `impl EventLog for SledStore`).
pub trait SessionStore:
    SessionRecords + EventLog + Expiry + Persistence + Maintenance + ProofMarks
{
}

impl<T: SessionRecords + EventLog + Expiry + Persistence + Maintenance + ProofMarks> SessionStore
    for T
{
}

/// Session records and their indexes. Every call is atomic: a crash or a concurrent
/// call never sees a record without its index entries, or the reverse.
#[async_trait]
pub trait SessionRecords: Send + Sync {
    /// The id a new session of `user_id` gets, from a fresh UUID v7: a store may fold
    /// placement into it (Redis puts the user's shard in its last two bytes).
    fn place_session_id(&self, fresh: SessionId, _user_id: &str) -> SessionId {
        fresh
    }

    /// The record of a session, if it exists. A store may answer from a cache that lags
    /// other servers' changes by a bounded time (the Redis near cache).
    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// The record of a session as stored now, past any cache that may lag: for a
    /// refusal that must not rest on a stale copy.
    async fn get_stored(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.get(id).await
    }

    /// Stores a new session with its index entries, logging `started` (durable), and
    /// hands the record back: taken by value, so storing it copies nothing.
    async fn insert(
        &self,
        record: SessionRecord,
        started: Event,
    ) -> Result<SessionRecord, StoreError>;

    /// Reads a session and atomically applies `decide` to it, durable as `commit` asks.
    /// Returns the record as stored afterwards, or `None` (without calling `decide`)
    /// when it does not exist.
    async fn update(
        &self,
        id: SessionId,
        commit: Commit,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        match commit {
            Commit::Durable => self.update_durably(id, decide).await,
            Commit::Lazy => self.update_lazily(id, decide).await,
        }
    }

    /// [`SessionRecords::update`] that returns once the change is as durable as the
    /// store's durability promises.
    async fn update_durably(
        &self,
        id: SessionId,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// [`SessionRecords::update`] that may return before the change is durable, so a
    /// crash may lose it (a last-access touch, a grace window closed by the sweeper).
    /// A store that makes every write durable at once has no cheaper way.
    async fn update_lazily(
        &self,
        id: SessionId,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.update_durably(id, decide).await
    }

    /// Reads all sessions of a user (oldest first) and atomically stores what `decide`
    /// returns, serialized with every other `update_user` of that user (durable).
    async fn update_user(
        &self,
        user_id: &str,
        decide: &mut UserDecision<'_>,
    ) -> Result<(), StoreError>;

    /// The user id that sessions started with `external_user_id` belong to (the most
    /// recent Start wins).
    async fn user_of_external(&self, external_user_id: &str) -> Result<Option<String>, StoreError>;

    /// Up to `limit` sessions of a user, newest first, started before the session
    /// `before` (all when None).
    async fn list_user(
        &self,
        user_id: &str,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Up to `limit` session records of every user, newest first (descending id: ids
    /// are UUID v7, so creation order), before `before` (from the newest when None).
    /// Records whose id is not placed by time (none are) would sort by id all the same.
    async fn records_before(
        &self,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError>;
}

/// The session event log and its feed to watchers.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Up to `limit` events after `after_seq`, oldest first.
    async fn events_after(&self, after_seq: u64, limit: usize) -> Result<EventsAfter, StoreError>;

    /// Deletes the oldest events logged before `before_ms`, about `limit` of them
    /// (a store that prunes pages of events may prune a few more). Returns how many it
    /// deleted: fewer than `limit` only when no more were due.
    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError>;

    /// The sequence number of the newest event visible to watchers (durable, in `sync`).
    fn head_seq(&self) -> u64;

    /// A receiver that changes whenever `head_seq` moves.
    fn subscribe_events(&self) -> tokio::sync::watch::Receiver<u64>;

    /// The newest event seq, after making every event of a call answered so far
    /// visible (where the store shows events lazily): where "from now" starts.
    async fn settled_head(&self) -> Result<u64, StoreError> {
        Ok(self.head_seq())
    }
}

/// The sweeper's view: sessions past their expiry, and grace windows that closed.
#[async_trait]
pub trait Expiry: Send + Sync {
    /// Deletes up to `limit` sessions whose expiry is at or before `now_ms`, with their
    /// index entries, logging for each the event `expired` gives. Returns how many it
    /// deleted.
    async fn remove_expired(
        &self,
        now_ms: u64,
        limit: usize,
        expired: &ExpiredEvent<'_>,
    ) -> Result<usize, StoreError>;

    /// Up to `limit` sessions whose grace window closed at or before `now_ms`.
    async fn grace_closed(&self, now_ms: u64, limit: usize) -> Result<Vec<SessionId>, StoreError>;
}

/// How acknowledged writes reach stable storage, and whether the store can still
/// write. The defaults fit a store that makes each write durable before acknowledging
/// it and recovers from failures by itself (Redis, whose persistence is its own config).
#[async_trait]
pub trait Persistence: Send + Sync {
    /// Makes every acknowledged write durable (used at shutdown).
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits until every write made so far is as durable as the store's durability
    /// promises acknowledged writes to be (for answers that write nothing themselves
    /// but hand out what an earlier write made).
    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Turns to `Some(detail)` once the store can no longer write until it is opened
    /// again (sled stays failed after a failed disk write); the server then stops
    /// serving and exits, so a supervisor restarts it. Stores that recover by
    /// themselves never turn it.
    fn write_fault(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        tokio::sync::watch::channel(None).1
    }
}

/// Short-lived marks that every server of a store sees: the ids of device proofs
/// (`jti`) already used, and the nonces handed out (docs/binding.md). In memory on sled,
/// so a restart forgets them; `SET NX PX` on Redis, so two servers refuse one replay.
#[async_trait]
pub trait ProofMarks: Send + Sync {
    /// Sets `key` for `ttl`; false (and nothing changes) when it is already set.
    async fn mark_once(&self, key: &str, ttl: std::time::Duration) -> Result<bool, StoreError>;

    /// Whether `key` is set and its `ttl` has not passed.
    async fn is_marked(&self, key: &str) -> Result<bool, StoreError>;
}

/// Full scans for operators: the consistency check and the online backup.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Scans everything and reports how records and indexes agree.
    async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError>;

    /// Up to `limit` session records in id order, after `after` (from the first when
    /// None): an online backup pages through every record with it. Each record is read
    /// as committed; one changed meanwhile is read in either version.
    async fn export_records(
        &self,
        _after: Option<SessionId>,
        _limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        Err(StoreError::Unsupported(
            "this store has no online backup: back up Redis with its own RDB or AOF files",
        ))
    }
}
