//! The sled store's settings (`[sled]` in the config file): its page cache and when it
//! compacts (see `compact`).

use std::time::Duration;

use super::CompactStep;

/// sled's page cache, in MiB, unless configured. sled counts its pages' serialized
/// size, and the heap they take is about 2.5 times that: 256 MiB kept a store of 1 M
/// sessions at ~0.75 GB of RSS, where sled's own default (1 GiB) let it reach 2.7 GB.
/// Whoami reads the read cache first, so a smaller page cache mostly costs cold reads
/// and index updates.
pub const DEFAULT_CACHE_MIB: u64 = 256;

/// The sled store's settings (`[sled]` in the config file).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SledConfig {
    /// sled's page cache in MiB (see [`DEFAULT_CACHE_MIB`]).
    pub cache_mib: u64,
    /// Compact once the data dir passes this many times the live data (records, event
    /// pages inside the retention, touches); 0 never compacts online.
    pub compact_above: f64,
    /// ... and only once the data dir is past this many MiB: a small store's sled
    /// files are mostly sled's own fixed overhead, which compacting cannot shrink.
    pub compact_min_mib: u64,
    /// At least this long between two online compactions (and so, the longest an
    /// emptied store keeps its space once the sweeper deleted its sessions). Short
    /// enough that heavy churn cannot push the data dir far past the threshold
    /// meanwhile: at ~8,000 calls/s sled grew ~50 MB a minute past a 16 MB fresh
    /// generation, and a one-minute interval let it reach 4.6× the live data.
    #[serde(with = "humantime_serde")]
    pub compact_interval: Duration,
    /// A test hook for crash tests: a compaction stops at this step, logs it and waits
    /// to be killed. Never set outside a test.
    pub compact_pause_at: Option<CompactStep>,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig {
            cache_mib: DEFAULT_CACHE_MIB,
            compact_above: 4.0,
            compact_min_mib: 16,
            compact_interval: Duration::from_secs(15),
            compact_pause_at: None,
        }
    }
}

impl SledConfig {
    /// What makes this config unusable, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        if self.cache_mib < 16 {
            return Some("sled.cache_mib must be at least 16");
        }
        // Written so that NaN is refused too.
        let usable = self.compact_above == 0.0 || self.compact_above >= 1.0;
        if !usable {
            return Some("sled.compact_above must be 0 (never) or at least 1");
        }
        None
    }

    /// The data dir size past which a compaction is due, for `live_bytes` of live data;
    /// None when online compaction is off.
    pub(super) fn compact_past(&self, live_bytes: u64) -> Option<u64> {
        if self.compact_above == 0.0 {
            return None;
        }
        let relative = (live_bytes as f64 * self.compact_above) as u64;
        Some(relative.max(self.compact_min_mib.saturating_mul(1 << 20)))
    }
}
