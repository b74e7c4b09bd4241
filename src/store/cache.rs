//! A read cache of recent session records in two generations, with a version that keeps
//! a fill read before a change from landing after it: sled's read cache and the Redis
//! near cache are both one of these, over values of their own.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::SessionId;

/// Up to twice `capacity` values in two generations: a full current generation becomes
/// the previous one and the old previous one is dropped, so records used within the
/// last `capacity` fills stay (a cheap approximation of least-recently-used).
pub struct RecordCache<V> {
    capacity: usize,
    state: RwLock<Generations<V>>,
}

struct Generations<V> {
    current: HashMap<SessionId, V>,
    previous: HashMap<SessionId, V>,
    /// Moves with every change of a cached id's record; a fill that read the store
    /// before a change (and so may hold the old version) sees it moved and stays out.
    version: u64,
}

impl<V> Default for Generations<V> {
    fn default() -> Self {
        Generations {
            current: HashMap::new(),
            previous: HashMap::new(),
            version: 0,
        }
    }
}

impl<V> Generations<V> {
    fn get(&self, id: &SessionId) -> Option<&V> {
        self.current.get(id).or_else(|| self.previous.get(id))
    }

    fn remove(&mut self, id: &SessionId) {
        self.current.remove(id);
        self.previous.remove(id);
    }

    fn insert(&mut self, id: SessionId, value: V, capacity: usize) {
        if self.current.len() >= capacity && !self.current.contains_key(&id) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.previous.remove(&id);
        self.current.insert(id, value);
    }
}

impl<V: Clone> RecordCache<V> {
    /// A cache of at most about `2 × capacity` records; 0 turns it off.
    pub fn new(capacity: usize) -> RecordCache<V> {
        RecordCache {
            capacity,
            state: RwLock::default(),
        }
    }

    /// The cached value of `id`, if any.
    pub fn get(&self, id: &SessionId) -> Option<V> {
        let cached = self.state.read().get(id).cloned();
        if cached.is_some() {
            // For traces (at DEBUG: nothing is done with it unless they are on).
            tracing::debug!(decision = "cache_hit", "record from the read cache");
        }
        cached
    }

    /// The version to hand to [`RecordCache::fill`] after reading the store.
    pub fn version(&self) -> u64 {
        self.state.read().version
    }

    /// Caches a record read from the store, unless a change moved the version since
    /// `version_before_read` was taken (the read may then be older than the change).
    pub fn fill(&self, id: SessionId, value: V, version_before_read: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.state.write();
        if state.version == version_before_read && state.get(&id).is_none() {
            state.insert(id, value, self.capacity);
        }
    }

    /// Committed changes, in commit order: a new version of each record, or `None` for
    /// a deleted (or merely changed, where the new version is unknown) one. Returns the
    /// version after them.
    pub fn apply(&self, changes: impl IntoIterator<Item = (SessionId, Option<V>)>) -> u64 {
        let mut state = self.state.write();
        state.version += 1;
        for (id, change) in changes {
            match change {
                Some(value) if self.capacity > 0 => state.insert(id, value, self.capacity),
                _ => state.remove(&id),
            }
        }
        state.version
    }

    /// Forgets `id` (its cached version disagreed with the store).
    pub fn forget(&self, id: &SessionId) {
        self.apply([(*id, None)]);
    }

    /// Forgets every record (updates about them may have been missed).
    pub fn clear(&self) {
        let mut state = self.state.write();
        state.version += 1;
        state.current.clear();
        state.previous.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> SessionId {
        SessionId::from_u128(n)
    }

    #[test]
    fn a_fill_that_raced_a_change_stays_out() {
        let cache = RecordCache::new(8);
        let before = cache.version();
        cache.apply([(id(1), Some("new"))]);
        cache.fill(id(1), "old", before);
        assert_eq!(cache.get(&id(1)), Some("new"));

        cache.apply([(id(1), None)]);
        cache.fill(id(1), "old", before);
        assert!(cache.get(&id(1)).is_none());

        let before = cache.version();
        cache.clear();
        cache.fill(id(1), "old", before);
        assert!(cache.get(&id(1)).is_none());
    }

    #[test]
    fn two_generations_keep_the_recent_and_drop_the_old() {
        let cache = RecordCache::new(2);
        for n in 0..5 {
            cache.apply([(id(n), Some("r"))]);
        }
        // current: 4; previous: 2, 3; 0 and 1 dropped.
        assert!(cache.get(&id(0)).is_none() && cache.get(&id(1)).is_none());
        assert!((2..5).all(|n| cache.get(&id(n)).is_some()));
    }
}
