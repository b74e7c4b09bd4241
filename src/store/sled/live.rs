//! The live data of the sled store, in bytes: what a compaction would copy (records and
//! event pages), summed at open and kept in step by every commit and prune, so the
//! space amplification (data dir / live bytes) is known without a scan.

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Default)]
pub(super) struct LiveBytes {
    records: AtomicI64,
    events: AtomicI64,
}

impl LiveBytes {
    /// Adds what a commit changed (negative: removed).
    pub(super) fn add(&self, records: i64, events: i64) {
        if records != 0 {
            self.records.fetch_add(records, Ordering::Relaxed);
        }
        if events != 0 {
            self.events.fetch_add(events, Ordering::Relaxed);
        }
    }

    /// Records and event pages, in bytes.
    pub(super) fn total(&self) -> u64 {
        let total = self.records.load(Ordering::Relaxed) + self.events.load(Ordering::Relaxed);
        u64::try_from(total).unwrap_or(0)
    }
}
