//! The near cache: session records this server read from Redis, answered from memory
//! only while its tail of every shard's change streams (`tail`) was caught up within
//! `staleness`; otherwise reads go to Redis as without it. The tail drops each record
//! the streams name; this server's own writes drop theirs before the call returns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::{NEAR_CACHE_HITS, NEAR_CACHE_LAG_SECONDS, NEAR_CACHE_MISSES};
use crate::store::cache::RecordCache;
use crate::store::{SessionId, SessionRecord};

/// Records of this server's recent reads and when the tail last caught up.
pub(super) struct NearCache {
    records: RecordCache<Arc<SessionRecord>>,
    staleness: Duration,
    /// Start of the monotonic clock `caught_up_ns` counts from.
    epoch: Instant,
    /// When the tail last started a pass that then read every shard to its end (every
    /// change committed before then is applied), in ns since `epoch`; 0: never.
    caught_up_ns: AtomicU64,
    /// The tail's last pass failed.
    failed: AtomicBool,
}

/// What the near cache has for a read.
pub(super) enum Lookup {
    /// The record, current within the staleness bound.
    Hit(Arc<SessionRecord>),
    /// Read Redis, then offer the record to `fill` with this version.
    Miss(u64),
    /// Not caught up: read Redis and keep nothing.
    Stale,
}

impl NearCache {
    /// A near cache of about `records` (up to twice as many) that answers while the tail
    /// is at most `staleness` behind.
    pub(super) fn new(records: usize, staleness: Duration) -> NearCache {
        NearCache {
            records: RecordCache::new(records),
            staleness,
            epoch: Instant::now(),
            caught_up_ns: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }

    /// How long the tail may take between confirmed passes: its poll interval.
    pub(super) fn poll_interval(&self) -> Duration {
        self.staleness / 4
    }

    fn ns_at(&self, at: Instant) -> u64 {
        // At least 1: 0 means "never caught up". u64 nanoseconds last 584 years.
        (at.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
    }

    /// Time since the tail was last caught up (since the cache was made, if never).
    fn lag(&self, now: Instant) -> Duration {
        let caught_up = self.caught_up_ns.load(Ordering::Acquire);
        Duration::from_nanos(self.ns_at(now).saturating_sub(caught_up))
    }

    /// THE rule: answers from memory are allowed only while the tail was caught up at
    /// most `staleness` ago and has not failed since.
    pub(super) fn fresh_at(&self, now: Instant) -> bool {
        !self.failed.load(Ordering::Acquire)
            && self.caught_up_ns.load(Ordering::Acquire) != 0
            && self.lag(now) <= self.staleness
    }

    /// The record of `id` if the cache may answer and has it.
    pub(super) fn lookup(&self, id: SessionId) -> Lookup {
        if !self.fresh_at(Instant::now()) {
            metrics::counter!(NEAR_CACHE_MISSES, "reason" => "stale").increment(1);
            return Lookup::Stale;
        }
        // The version before the cache is read: a drop between the two moves it.
        let version = self.records.version();
        match self.records.get(&id) {
            Some(record) => {
                metrics::counter!(NEAR_CACHE_HITS).increment(1);
                Lookup::Hit(record)
            }
            None => {
                metrics::counter!(NEAR_CACHE_MISSES, "reason" => "absent").increment(1);
                Lookup::Miss(version)
            }
        }
    }

    /// Before a read that must skip the cache: drops the copy of `id` (it may be what
    /// sent the caller past the cache) and returns the version to offer the fresh record
    /// to `fill` with, while the cache may answer.
    pub(super) fn reread(&self, id: SessionId) -> Option<u64> {
        self.fresh_at(Instant::now())
            .then(|| self.records.apply([(id, None)]))
    }

    /// Keeps a record read from Redis after [`Lookup::Miss`], unless a change of any
    /// cached record was dropped since (the read may be older than it).
    pub(super) fn fill(&self, id: SessionId, record: &SessionRecord, version: u64) {
        self.records.fill(id, Arc::new(record.clone()), version);
    }

    /// Drops records that changed (or may have): named by the streams, or written by
    /// this server, whose next read must then go to Redis.
    pub(super) fn drop_changed(&self, ids: impl IntoIterator<Item = SessionId>) {
        let mut ids = ids.into_iter().peekable();
        if ids.peek().is_some() {
            self.records.apply(ids.map(|id| (id, None)));
        }
    }

    /// The tail read every shard to its end in a pass that started at `started`.
    /// Coming back from stale (or the first pass), it first forgets everything: a change
    /// it missed meanwhile may have been trimmed from the streams before it read them.
    pub(super) fn caught_up(&self, started: Instant) {
        if !self.fresh_at(started) {
            self.records.clear();
        }
        self.caught_up_ns
            .store(self.ns_at(started), Ordering::Release);
        self.failed.store(false, Ordering::Release);
        self.report_lag(Instant::now());
    }

    /// The tail failed: stop answering at once and forget everything.
    pub(super) fn lost(&self) {
        self.failed.store(true, Ordering::Release);
        self.records.clear();
        self.report_lag(Instant::now());
    }

    /// Sets the lag gauge: seconds since the tail was last caught up.
    fn report_lag(&self, now: Instant) {
        metrics::gauge!(NEAR_CACHE_LAG_SECONDS).set(self.lag(now).as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str) -> SessionRecord {
        SessionRecord {
            user_id: user.to_owned(),
            ..SessionRecord::default()
        }
    }

    fn hit(near: &NearCache, id: SessionId) -> Option<String> {
        match near.lookup(id) {
            Lookup::Hit(record) => Some(record.user_id.clone()),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn it_answers_only_while_caught_up_within_the_bound() {
        let near = NearCache::new(8, Duration::from_millis(100));
        let id = SessionId::from_u128(1);
        assert!(matches!(near.lookup(id), Lookup::Stale), "never caught up");

        near.caught_up(Instant::now());
        let Lookup::Miss(version) = near.lookup(id) else {
            panic!("caught up and empty: a miss");
        };
        near.fill(id, &record("a"), version);
        assert_eq!(hit(&near, id).as_deref(), Some("a"));

        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(hit(&near, id).as_deref(), Some("a"), "at the bound");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(matches!(near.lookup(id), Lookup::Stale), "past the bound");

        // Back from stale: what it held may have missed a change.
        near.caught_up(Instant::now());
        assert!(hit(&near, id).is_none());

        near.fill(id, &record("a"), near.records.version());
        near.lost();
        assert!(matches!(near.lookup(id), Lookup::Stale), "a failed tail");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_change_keeps_an_older_read_out() {
        let near = NearCache::new(8, Duration::from_millis(100));
        let id = SessionId::from_u128(1);
        near.caught_up(Instant::now());
        let Lookup::Miss(version) = near.lookup(id) else {
            panic!("a miss");
        };
        near.drop_changed([SessionId::from_u128(2)]);
        near.fill(id, &record("old"), version);
        assert!(hit(&near, id).is_none());
    }
}
