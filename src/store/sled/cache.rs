//! The sled store's read cache: the newest committed version of recently used session
//! records, so validating a session reads memory and never waits on sled's transaction
//! lock. This process is the only writer of its data dir, and every committed change
//! reaches the cache before its caller hears back, so the cache is never behind sled.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{SessionId, SessionRecord};

/// A stored record: its bytes as sled holds them (what a queued change expects to replace) and
/// the decoded record.
#[derive(Clone, Debug)]
pub struct CachedRecord {
    pub bytes: sled::IVec,
    pub record: Arc<SessionRecord>,
}

/// Up to twice `capacity` records in two generations: a full current generation becomes
/// the previous one and the old previous one is dropped, so records used within the
/// last `capacity` fills stay (a cheap approximation of least-recently-used).
pub struct RecordCache {
    capacity: usize,
    state: RwLock<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<SessionId, CachedRecord>,
    previous: HashMap<SessionId, CachedRecord>,
    /// Moves with every change of a cached id's record; a fill that read sled before a
    /// change (and so may hold the old version) sees it moved and stays out.
    version: u64,
}

impl Generations {
    fn get(&self, id: &SessionId) -> Option<&CachedRecord> {
        self.current.get(id).or_else(|| self.previous.get(id))
    }

    fn remove(&mut self, id: &SessionId) {
        self.current.remove(id);
        self.previous.remove(id);
    }

    fn insert(&mut self, id: SessionId, cached: CachedRecord, capacity: usize) {
        if self.current.len() >= capacity && !self.current.contains_key(&id) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.previous.remove(&id);
        self.current.insert(id, cached);
    }
}

impl RecordCache {
    /// A cache of at most about `2 × capacity` records; 0 turns it off.
    pub fn new(capacity: usize) -> RecordCache {
        RecordCache {
            capacity,
            state: RwLock::default(),
        }
    }

    /// The cached record of `id`, if any.
    pub fn get(&self, id: &SessionId) -> Option<CachedRecord> {
        let cached = self.state.read().get(id).cloned();
        if cached.is_some() {
            // For traces (at DEBUG: nothing is done with it unless they are on).
            tracing::debug!(decision = "cache_hit", "record from the read cache");
        }
        cached
    }

    /// The version to hand to [`RecordCache::fill`] after reading sled.
    pub fn version(&self) -> u64 {
        self.state.read().version
    }

    /// Caches a record read from sled, unless a change moved the version since
    /// `version_before_read` was taken (the read may then be older than the change).
    pub fn fill(&self, id: SessionId, cached: CachedRecord, version_before_read: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.state.write();
        if state.version == version_before_read && state.get(&id).is_none() {
            state.insert(id, cached, self.capacity);
        }
    }

    /// Committed changes, in commit order: a new version of each record, or `None` for
    /// a deleted one.
    pub fn apply(&self, changes: impl IntoIterator<Item = (SessionId, Option<CachedRecord>)>) {
        let mut state = self.state.write();
        state.version += 1;
        for (id, change) in changes {
            match change {
                Some(cached) if self.capacity > 0 => state.insert(id, cached, self.capacity),
                _ => state.remove(&id),
            }
        }
    }

    /// Forgets `id` (its cached version disagreed with sled).
    pub fn forget(&self, id: &SessionId) {
        let mut state = self.state.write();
        state.version += 1;
        state.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(user: &str) -> CachedRecord {
        CachedRecord {
            bytes: sled::IVec::from(user.as_bytes()),
            record: Arc::new(SessionRecord {
                user_id: user.to_owned(),
                ..Default::default()
            }),
        }
    }

    fn id(n: u128) -> SessionId {
        SessionId::from_u128(n)
    }

    #[test]
    fn a_fill_that_raced_a_change_stays_out() {
        let cache = RecordCache::new(8);
        let before = cache.version();
        cache.apply([(id(1), Some(cached("new")))]);
        cache.fill(id(1), cached("old"), before);
        assert_eq!(cache.get(&id(1)).map(|c| c.bytes), Some("new".into()));

        cache.apply([(id(1), None)]);
        cache.fill(id(1), cached("old"), before);
        assert!(cache.get(&id(1)).is_none());
    }

    #[test]
    fn two_generations_keep_the_recent_and_drop_the_old() {
        let cache = RecordCache::new(2);
        for n in 0..5 {
            cache.apply([(id(n), Some(cached("r")))]);
        }
        // current: 4; previous: 2, 3; 0 and 1 dropped.
        assert!(cache.get(&id(0)).is_none() && cache.get(&id(1)).is_none());
        assert!((2..5).all(|n| cache.get(&id(n)).is_some()));
    }
}
