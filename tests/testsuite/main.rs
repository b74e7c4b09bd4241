//! The integration suite as one test binary (cargo's own `tests/testsuite` layout): one
//! module per area, the helpers compiled once. Each test declares the stores it runs on
//! with `on_backends!` (`common/backends.rs`); tests/README.md says which module covers
//! what. One area: `cargo test --test testsuite refresh::`.
//!
//! Test binaries apart from this one, each for a reason given in its first lines:
//! `tests/refresh_grace_log.rs` (a process-wide log subscriber).

// The helpers; `common` first, for its `on_backends!` macro.
#[macro_use]
mod common;
mod plain_http;
mod stored;
mod support;

mod access_tokens;
mod alerting;
mod auth;
mod backup;
mod bench_smoke;
mod binding;
mod client_context;
mod compaction;
mod compaction_crash;
mod connections;
mod crash;
mod dbsc;
mod end_reasons;
mod enrichment;
mod errors;
mod ext_authz;
mod ext_authz_binding;
mod extend;
mod forward_auth;
mod full_disk;
mod ghz_configs;
mod go_client;
mod hostile_input;
mod lifecycle;
mod list;
mod logout;
mod model;
mod no_secret_leaks;
mod node_client;
mod observability;
mod ops;
mod persistence;
mod python_client;
mod quotas;
mod races;
mod redis_multi_instance;
mod redis_near_cache;
mod redis_outage;
mod reflection;
mod refresh;
mod refresh_grace;
mod revocations;
mod revoke_user;
mod search;
mod sessionctl;
mod sessionctl_admin;
mod sessionctl_binding;
mod sessionctl_health;
mod sled_layout;
mod tracing;
mod watch;

use common::{backend, Backend};
use sessiond::store::StoreKind;

// The suite's own wiring: a test's servers run on the store it declared.
on_backends!(a_test_server_runs_on_its_tests_backend: sled, redis, cluster);
async fn a_test_server_runs_on_its_tests_backend() {
    let config = common::TestServer::start().await.config();
    let runs_on = match (config.store, config.redis.cluster) {
        (StoreKind::Sled, _) => Backend::Sled,
        (StoreKind::Redis, false) => Backend::Redis,
        (StoreKind::Redis, true) => Backend::RedisCluster,
    };
    assert_eq!(runs_on, backend());
}
