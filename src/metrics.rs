//! Metric names in one place, their help texts, and the Prometheus recorder. Without
//! `--metrics-listen` no recorder is installed and every metric call is a no-op.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Calls by `method` and gRPC `code`.
pub const CALLS: &str = "sessiond_calls_total";
/// Call latency by `method`, seconds.
pub const CALL_SECONDS: &str = "sessiond_call_duration_seconds";
/// Session records stored: active ones plus ended ones the sweeper has not deleted yet.
pub const SESSIONS_STORED: &str = "sessiond_sessions_stored";
/// Sessions opened by Start.
pub const SESSIONS_STARTED: &str = "sessiond_sessions_started_total";
/// Token rotations by Refresh.
pub const SESSIONS_REFRESHED: &str = "sessiond_sessions_refreshed_total";
/// Expiry extensions, by Extend or RefreshAllForUser.
pub const SESSIONS_EXTENDED: &str = "sessiond_sessions_extended_total";
/// Sessions ended, by `reason`: logout, evicted (max_sessions_per_user) or reuse.
pub const SESSIONS_REVOKED: &str = "sessiond_sessions_revoked_total";
/// Expired sessions deleted by the sweeper.
pub const SESSIONS_EXPIRED: &str = "sessiond_sessions_expired_total";
/// Refresh tokens presented again after rotation (theft suspected).
pub const REFRESH_REUSE: &str = "sessiond_refresh_reuse_detected_total";
/// Binding checks that failed (device proof or network), by `reason` (docs/binding.md).
pub const BINDING_FAILURES: &str = "sessiond_binding_failures_total";
/// Sweeper passes.
pub const SWEEPER_RUNS: &str = "sessiond_sweeper_runs_total";
/// Sessions deleted per sweeper pass.
pub const SWEEPER_BATCH: &str = "sessiond_sweeper_batch_size";
/// Disk failures that stopped the store writing (once per episode: the server then
/// stops so it can be restarted).
pub const STORE_WRITE_FAULTS: &str = "sessiond_store_write_faults_total";
/// Time a durable write waits for its (shared) flush, seconds.
pub const STORE_FLUSH_SECONDS: &str = "sessiond_store_flush_duration_seconds";
/// Bytes on disk under the sled store's data dir.
pub const STORE_DATA_DIR_BYTES: &str = "sessiond_store_data_dir_bytes";
/// Bytes of the sled store's live data: records, event pages kept, touches pending.
pub const STORE_LIVE_BYTES: &str = "sessiond_store_live_bytes";
/// The data dir's bytes over the live bytes (what compaction keeps bounded).
pub const STORE_SPACE_AMPLIFICATION: &str = "sessiond_store_space_amplification";
/// Compactions of the sled store that finished.
pub const STORE_COMPACTIONS: &str = "sessiond_store_compactions_total";
/// How long a compaction took, seconds.
pub const STORE_COMPACTION_SECONDS: &str = "sessiond_store_compaction_duration_seconds";
/// How long writes waited for a compaction's switch, seconds.
pub const STORE_COMPACTION_PAUSE_SECONDS: &str = "sessiond_store_compaction_write_pause_seconds";
/// Bytes of the data dir that compactions gave back.
pub const STORE_COMPACTION_RECLAIMED_BYTES: &str =
    "sessiond_store_compaction_reclaimed_bytes_total";
/// Reads the Redis near cache answered from memory.
pub const NEAR_CACHE_HITS: &str = "sessiond_near_cache_hits_total";
/// Reads the Redis near cache sent to Redis, by `reason`: absent (not cached) or stale
/// (its tail was not caught up within the bound).
pub const NEAR_CACHE_MISSES: &str = "sessiond_near_cache_misses_total";
/// Seconds since the near cache's tail was last caught up on the change streams (it
/// grows while the tail cannot read them).
pub const NEAR_CACHE_LAG_SECONDS: &str = "sessiond_near_cache_lag_seconds";

/// Client connections open.
pub const CONNECTIONS_OPEN: &str = "sessiond_connections_open";
/// Connections the server closed, by `reason`: max_connections (at accept),
/// handshake_timeout or idle_timeout.
pub const CONNECTIONS_CLOSED: &str = "sessiond_connections_closed_total";
/// Trace spans the OTLP exporter delivered to the collector.
pub const TRACE_SPANS_EXPORTED: &str = "sessiond_trace_spans_exported_total";
/// Trace spans dropped, by `reason`: queue_full (the collector is slow or away) or
/// export_failed (it refused or did not answer in time).
pub const TRACE_SPANS_DROPPED: &str = "sessiond_trace_spans_dropped_total";

/// The Prometheus recorder's handle, once [`prometheus`] installed it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was set first; ours then stays unused and
        // the scrape shows nothing, which the metrics test would catch.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        alerting::describe();
        handle
    })
}

/// Whether [`prometheus`] installed the recorder: until then every metric is a no-op,
/// so a hot path may skip building its keys, and handles it keeps are real ones.
pub fn installed() -> bool {
    HANDLE.get().is_some()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(CALLS, "gRPC calls by method and status code");
    describe_histogram!(CALL_SECONDS, Unit::Seconds, "gRPC call latency by method");
    describe_gauge!(
        SESSIONS_STORED,
        "session records stored (active plus ended, not yet swept)"
    );
    describe_counter!(SESSIONS_STARTED, "sessions opened");
    describe_counter!(
        STORE_WRITE_FAULTS,
        "disk failures that stopped the store writing (the server then restarts)"
    );
    describe_counter!(SESSIONS_REFRESHED, "token rotations");
    describe_counter!(SESSIONS_EXTENDED, "session expiry extensions");
    describe_counter!(SESSIONS_REVOKED, "sessions ended, by reason");
    describe_counter!(SESSIONS_EXPIRED, "expired sessions deleted by the sweeper");
    describe_counter!(REFRESH_REUSE, "rotated refresh tokens presented again");
    describe_counter!(
        BINDING_FAILURES,
        "failed binding checks of bound sessions, by reason"
    );
    describe_counter!(SWEEPER_RUNS, "sweeper passes");
    describe_histogram!(SWEEPER_BATCH, "sessions deleted per sweeper pass");
    describe_gauge!(
        STORE_DATA_DIR_BYTES,
        Unit::Bytes,
        "bytes on disk under the sled data dir"
    );
    describe_gauge!(
        STORE_LIVE_BYTES,
        Unit::Bytes,
        "bytes of live data in the sled store (records, event pages, touches)"
    );
    describe_gauge!(
        STORE_SPACE_AMPLIFICATION,
        "sled data dir bytes over live bytes"
    );
    describe_counter!(STORE_COMPACTIONS, "compactions of the sled store");
    describe_histogram!(
        STORE_COMPACTION_SECONDS,
        Unit::Seconds,
        "how long a compaction took"
    );
    describe_histogram!(
        STORE_COMPACTION_PAUSE_SECONDS,
        Unit::Seconds,
        "how long writes waited for a compaction's switch"
    );
    describe_counter!(
        STORE_COMPACTION_RECLAIMED_BYTES,
        Unit::Bytes,
        "bytes of the data dir that compactions gave back"
    );
    describe_counter!(NEAR_CACHE_HITS, "reads the Redis near cache answered");
    describe_counter!(
        NEAR_CACHE_MISSES,
        "reads the Redis near cache sent to Redis, by reason"
    );
    describe_gauge!(
        NEAR_CACHE_LAG_SECONDS,
        Unit::Seconds,
        "how far the near cache's tail of the change streams is behind"
    );
    describe_gauge!(CONNECTIONS_OPEN, "client connections open");
    describe_counter!(
        CONNECTIONS_CLOSED,
        "connections closed by the server's connection bounds, by reason"
    );
    describe_counter!(
        TRACE_SPANS_EXPORTED,
        "trace spans delivered to the collector"
    );
    describe_counter!(TRACE_SPANS_DROPPED, "trace spans dropped, by reason");
    describe_histogram!(
        STORE_FLUSH_SECONDS,
        Unit::Seconds,
        "time a durable write waits for its flush"
    );
}

/// Metrics added for the alert rules and dashboard in `deploy/` (issue 29).
pub mod alerting {
    /// `max_connections`, to compare [`super::CONNECTIONS_OPEN`] with.
    pub const CONNECTIONS_MAX: &str = "sessiond_connections_max";
    /// Calls refused by a quota, by `quota`: the setting's name (`start_per_caller`, ...).
    pub const QUOTA_REFUSALS: &str = "sessiond_quota_refusals_total";
    /// WatchSessions streams open.
    pub const WATCHERS_OPEN: &str = "sessiond_watchers_open";
    /// Events a watcher is behind the event log's head, at each page it reads.
    pub const WATCH_LAG_EVENTS: &str = "sessiond_watch_lag_events";
    /// Watchers cut off because their stream stayed full for `watch_stall_timeout`.
    pub const WATCHERS_CUT_OFF: &str = "sessiond_watchers_cut_off_total";
    /// When the sweeper last finished a pass, Unix seconds by the server's clock.
    pub const SWEEPER_LAST_SUCCESS: &str = "sessiond_sweeper_last_success_timestamp_seconds";
    /// Changes written per sled commit batch (group commit).
    pub const STORE_COMMIT_BATCH: &str = "sessiond_store_commit_batch_size";

    pub(super) fn describe() {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_gauge!(CONNECTIONS_MAX, "client connections allowed at once");
        describe_counter!(QUOTA_REFUSALS, "calls refused by a quota, by quota");
        describe_gauge!(WATCHERS_OPEN, "WatchSessions streams open");
        describe_histogram!(
            WATCH_LAG_EVENTS,
            "events a watcher is behind the event log, at each page it reads"
        );
        describe_counter!(WATCHERS_CUT_OFF, "watchers cut off for falling behind");
        describe_gauge!(
            SWEEPER_LAST_SUCCESS,
            Unit::Seconds,
            "when the sweeper last finished a pass (Unix time)"
        );
        describe_histogram!(STORE_COMMIT_BATCH, "changes written per sled commit batch");
        // Counters an alert watches for a first increase are exported from the start:
        // a series that appears at 1 shows no increase to Prometheus.
        metrics::counter!(super::STORE_WRITE_FAULTS).absolute(0);
        metrics::counter!(super::REFRESH_REUSE).absolute(0);
        metrics::counter!(WATCHERS_CUT_OFF).absolute(0);
        metrics::counter!(super::CONNECTIONS_CLOSED, "reason" => "max_connections").absolute(0);
        metrics::gauge!(WATCHERS_OPEN).set(0.0);
    }
}
