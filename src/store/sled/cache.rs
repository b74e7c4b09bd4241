//! What the sled store's read cache (a `RecordCache`) holds: the newest committed version
//! of recently used session records, so validating a session reads memory and never
//! waits on sled's transaction lock. This process is the only writer of its data dir,
//! and every committed change reaches the cache before its caller hears back, so the
//! cache is never behind sled.

use std::sync::Arc;

use crate::store::cache::RecordCache;
use crate::store::SessionRecord;

/// A stored record: its bytes as sled holds them (what a queued change expects to
/// replace) and the decoded record.
#[derive(Clone, Debug)]
pub struct CachedRecord {
    pub bytes: sled::IVec,
    pub record: Arc<SessionRecord>,
}

/// The sled store's read cache.
pub type SledCache = RecordCache<CachedRecord>;
