//! The sled store's indexes (sessions by user, by expiry, by grace window), kept in
//! memory: rebuilt from the records at open and changed with every commit, in commit
//! order, under the writer lock. This process is the only writer of its data dir, so
//! they are exact, and a change writes one sled key (the record) instead of four.
//! The rebuild reads the records in id order, in chunks (see `rebuild`): until it is
//! done, they hold only the records up to its cursor, and a commit moves only those.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use prost::Message;

use super::{SessionId, SessionRecord};

/// Where a record sits in the indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The user id, hashed (see [`Indexes::user_hash`]).
    pub user: u64,
    pub expires_at_ms: u64,
    pub grace_until_ms: u64,
}

/// The fields of a stored `SessionRecord` that place it, decoded alone at open (prost
/// skips the others, which saves decoding every other string and map).
#[derive(Clone, PartialEq, prost::Message)]
struct StoredPlacement {
    #[prost(string, tag = "2")]
    user_id: String,
    #[prost(uint64, tag = "8")]
    expires_at_ms: u64,
    #[prost(uint64, tag = "16")]
    grace_until_ms: u64,
}

/// One committed change of a record's placement: `old` leaves, `new` arrives.
#[derive(Clone, Copy, Debug)]
pub struct Moved {
    pub id: SessionId,
    pub old: Option<Placement>,
    pub new: Option<Placement>,
}

#[derive(Default)]
struct Sets {
    /// (hash of the user id, session id): a user's sessions in id order, which is
    /// creation order. Two users whose ids hash alike share entries, so readers check
    /// each record's user id (a 64-bit hash keeps an entry at 24 bytes for any user id).
    by_user: BTreeSet<(u64, SessionId)>,
    by_expiry: BTreeSet<(u64, SessionId)>,
    by_grace: BTreeSet<(u64, SessionId)>,
    /// The last record the rebuild at open has read (`None`: none yet); only
    /// meaningful until `Indexes::complete`.
    rebuilt_through: Option<SessionId>,
    /// Records committed past that cursor since the rebuild last asked (`take_unread`).
    unread_changes: Vec<SessionId>,
}

/// The three indexes behind one lock.
pub struct Indexes {
    hasher: std::collections::hash_map::RandomState,
    sets: RwLock<Sets>,
    /// Whether the rebuild at open has read every record: then every record is in.
    complete: AtomicBool,
}

impl Indexes {
    /// Empty indexes, waiting for their rebuild (`add_rebuilt`).
    pub fn new() -> Indexes {
        Indexes {
            hasher: Default::default(),
            sets: RwLock::default(),
            complete: AtomicBool::new(false),
        }
    }

    /// Whether every record is in (the rebuild at open is done).
    pub fn complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Whether `id`'s record is in the indexes, or will be once its commit applies:
    /// the rebuild has read it (or is done). A commit counts the bytes and moves of
    /// these records only; the rebuild will read the others as they are then. The
    /// answer holds while the caller has the writer lock, which every rebuild step takes.
    pub fn covers(&self, id: SessionId) -> bool {
        self.complete()
            || self
                .sets
                .read()
                .rebuilt_through
                .is_some_and(|last| id <= last)
    }

    /// The last record the rebuild has read, where its next chunk starts after.
    pub fn rebuilt_through(&self) -> Option<SessionId> {
        self.sets.read().rebuilt_through
    }

    /// Notes records a commit wrote (or deleted): those past the rebuild's cursor are
    /// kept for it, since it may have read them before the commit.
    pub fn note_written(&self, ids: impl IntoIterator<Item = SessionId>) {
        if self.complete() {
            return;
        }
        let mut sets = self.sets.write();
        let through = sets.rebuilt_through;
        sets.unread_changes.extend(
            ids.into_iter()
                .filter(|&id| through.is_none_or(|last| id > last)),
        );
    }

    /// The records noted by `note_written` since the last call.
    pub fn take_unread(&self) -> Vec<SessionId> {
        std::mem::take(&mut self.sets.write().unread_changes)
    }

    /// Adds one chunk of the rebuild at open: the placements of the records read after
    /// the previous chunk, through `last`; `complete` when no record follows.
    pub fn add_rebuilt(
        &self,
        placed: impl IntoIterator<Item = (SessionId, Placement)>,
        last: Option<SessionId>,
        complete: bool,
    ) {
        let mut sets = self.sets.write();
        for (id, placement) in placed {
            sets.insert(id, placement);
        }
        sets.rebuilt_through = last.or(sets.rebuilt_through);
        if complete {
            self.complete.store(true, Ordering::Release);
        }
    }

    /// How many records are in: one expiry entry each.
    pub fn records(&self) -> u64 {
        self.sets.read().by_expiry.len() as u64
    }

    /// The user index's hash of `user_id`.
    pub fn user_hash(&self, user_id: &str) -> u64 {
        self.hasher.hash_one(user_id)
    }

    /// Where `record` sits in the indexes.
    pub fn placement(&self, record: &SessionRecord) -> Placement {
        Placement {
            user: self.user_hash(&record.user_id),
            expires_at_ms: record.expires_at_ms,
            grace_until_ms: record.grace_until_ms,
        }
    }

    /// Where the stored bytes of a record sit, decoding only what that takes.
    pub fn placement_of_bytes(&self, bytes: &[u8]) -> Result<Placement, prost::DecodeError> {
        let stored = StoredPlacement::decode(bytes)?;
        Ok(Placement {
            user: self.user_hash(&stored.user_id),
            expires_at_ms: stored.expires_at_ms,
            grace_until_ms: stored.grace_until_ms,
        })
    }

    /// Applies committed changes, in commit order; those of records the rebuild has not
    /// read yet wait for it (it will read them as committed).
    pub fn apply(&self, moves: impl IntoIterator<Item = Moved>) {
        let complete = self.complete();
        let mut sets = self.sets.write();
        for Moved { id, old, new } in moves {
            if !complete && sets.rebuilt_through.is_none_or(|last| id > last) {
                continue;
            }
            if let Some(old) = old {
                sets.remove(id, old);
            }
            if let Some(new) = new {
                sets.insert(id, new);
            }
        }
    }

    /// Every session id under `user_id`'s hash, oldest first.
    pub fn user_ids(&self, user_id: &str) -> Vec<SessionId> {
        let user = self.user_hash(user_id);
        self.sets
            .read()
            .by_user
            .range((user, SessionId::nil())..=(user, SessionId::max()))
            .map(|&(_, id)| id)
            .collect()
    }

    /// Up to `limit` session ids under `user_id`'s hash, newest first, before `before`.
    pub fn user_ids_before(
        &self,
        user_id: &str,
        before: Option<SessionId>,
        limit: usize,
    ) -> Vec<SessionId> {
        let user = self.user_hash(user_id);
        let end = match before {
            Some(id) => Bound::Excluded((user, id)),
            None => Bound::Included((user, SessionId::max())),
        };
        self.sets
            .read()
            .by_user
            .range((Bound::Included((user, SessionId::nil())), end))
            .rev()
            .take(limit)
            .map(|&(_, id)| id)
            .collect()
    }

    /// Up to `limit` (expiry, id) entries due at `now_ms`, soonest first.
    pub fn expired(&self, now_ms: u64, limit: usize) -> Vec<(u64, SessionId)> {
        due(&self.sets.read().by_expiry, now_ms, limit)
    }

    /// Up to `limit` (grace end, id) entries whose grace window closed at `now_ms`.
    pub fn grace_closed(&self, now_ms: u64, limit: usize) -> Vec<(u64, SessionId)> {
        due(&self.sets.read().by_grace, now_ms, limit)
    }

    /// For the consistency check, against `expected` (each record's placement by id):
    /// how many entries the user and expiry indexes hold, and how many entries point
    /// nowhere or disagree, plus records missing an entry.
    pub fn compare(
        &self,
        expected: &std::collections::HashMap<SessionId, Placement>,
    ) -> (u64, u64, u64) {
        let sets = self.sets.read();
        let mut orphans = 0;
        for &(user, id) in &sets.by_user {
            orphans += u64::from(expected.get(&id).is_none_or(|p| p.user != user));
        }
        for &(at, id) in &sets.by_expiry {
            orphans += u64::from(expected.get(&id).is_none_or(|p| p.expires_at_ms != at));
        }
        for &(at, id) in &sets.by_grace {
            orphans += u64::from(expected.get(&id).is_none_or(|p| p.grace_until_ms != at));
        }
        for (&id, at) in expected {
            orphans += u64::from(!sets.by_user.contains(&(at.user, id)))
                + u64::from(!sets.by_expiry.contains(&(at.expires_at_ms, id)))
                + u64::from(
                    at.grace_until_ms > 0 && !sets.by_grace.contains(&(at.grace_until_ms, id)),
                );
        }
        (
            sets.by_user.len() as u64,
            sets.by_expiry.len() as u64,
            orphans,
        )
    }
}

impl Sets {
    fn insert(&mut self, id: SessionId, at: Placement) {
        self.by_user.insert((at.user, id));
        self.by_expiry.insert((at.expires_at_ms, id));
        if at.grace_until_ms > 0 {
            self.by_grace.insert((at.grace_until_ms, id));
        }
    }

    fn remove(&mut self, id: SessionId, at: Placement) {
        self.by_user.remove(&(at.user, id));
        self.by_expiry.remove(&(at.expires_at_ms, id));
        self.by_grace.remove(&(at.grace_until_ms, id));
    }
}

fn due(set: &BTreeSet<(u64, SessionId)>, now_ms: u64, limit: usize) -> Vec<(u64, SessionId)> {
    set.range(..=(now_ms, SessionId::max()))
        .take(limit)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, expires: u64, grace: u64) -> SessionRecord {
        SessionRecord {
            user_id: user.to_owned(),
            expires_at_ms: expires,
            grace_until_ms: grace,
            metadata: [("k".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn placement_decoded_from_bytes_matches_the_record() {
        let indexes = Indexes::new();
        let record = record("alice", 42, 7);
        let bytes = record.encode_to_vec();
        assert_eq!(
            indexes.placement_of_bytes(&bytes).expect("decodes"),
            indexes.placement(&record)
        );
    }

    #[test]
    fn moves_of_records_the_rebuild_has_not_read_wait_for_it() {
        let indexes = Indexes::new();
        let (a, b) = (SessionId::from_u128(1), SessionId::from_u128(2));
        let (old, new) = (
            indexes.placement(&record("alice", 10, 0)),
            indexes.placement(&record("alice", 20, 0)),
        );
        indexes.add_rebuilt([(a, old)], Some(a), false);
        assert!(indexes.covers(a) && !indexes.covers(b));
        // b's commit comes before the rebuild reads b: the rebuild reads it as committed.
        indexes.apply([a, b].map(|id| Moved {
            id,
            old: Some(old),
            new: Some(new),
        }));
        assert_eq!(indexes.expired(15, 10), vec![]);
        indexes.add_rebuilt([(b, new)], Some(b), true);
        assert!(indexes.complete() && indexes.covers(SessionId::max()));
        assert_eq!(indexes.expired(25, 10), vec![(20, a), (20, b)]);
        assert_eq!(indexes.records(), 2);
    }

    #[test]
    fn moves_keep_each_index_exact() {
        let indexes = Indexes::new();
        indexes.add_rebuilt([], None, true);
        let (a, b) = (SessionId::from_u128(1), SessionId::from_u128(2));
        let first = indexes.placement(&record("alice", 10, 0));
        let second = indexes.placement(&record("alice", 20, 5));
        indexes.apply([
            Moved {
                id: a,
                old: None,
                new: Some(first),
            },
            Moved {
                id: b,
                old: None,
                new: Some(first),
            },
            Moved {
                id: a,
                old: Some(first),
                new: Some(second),
            },
        ]);
        assert_eq!(indexes.user_ids("alice"), vec![a, b]);
        assert_eq!(indexes.user_ids_before("alice", Some(b), 10), vec![a]);
        assert_eq!(indexes.expired(15, 10), vec![(10, b)]);
        assert_eq!(indexes.grace_closed(5, 10), vec![(5, a)]);
        indexes.apply([Moved {
            id: a,
            old: Some(second),
            new: None,
        }]);
        assert_eq!(indexes.user_ids("alice"), vec![b]);
        assert!(indexes.grace_closed(100, 10).is_empty());
        assert!(indexes.user_ids("bob").is_empty());
    }
}
