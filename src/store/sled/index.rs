//! The sled store's indexes (sessions by user, by expiry, by grace window), kept in
//! memory: rebuilt from the records at open and changed with every commit, in commit
//! order, under the writer lock. This process is the only writer of its data dir, so
//! they are exact, and a change writes one sled key (the record) instead of four.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;

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
}

/// The three indexes behind one lock.
pub struct Indexes {
    hasher: std::collections::hash_map::RandomState,
    sets: RwLock<Sets>,
}

impl Indexes {
    pub fn new() -> Indexes {
        Indexes {
            hasher: Default::default(),
            sets: RwLock::default(),
        }
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

    /// Applies committed changes, in commit order.
    pub fn apply(&self, moves: impl IntoIterator<Item = Moved>) {
        let mut sets = self.sets.write();
        for Moved { id, old, new } in moves {
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
    fn moves_keep_each_index_exact() {
        let indexes = Indexes::new();
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
