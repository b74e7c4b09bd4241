//! The core integration suite again, with every test on the Redis Cluster store: each
//! `TestServer` keeps its sessions in the test cluster (`SESSIOND_TEST_REDIS_CLUSTER_URLS`)
//! under a key prefix of its own (see `tests/common/mod.rs`). Built only where a test
//! cluster is configured (`cfg(redis_tests)`, set by build.rs): start one with
//! `scripts/redis-test-env.sh start && eval "$(scripts/redis-test-env.sh env)"`.
//!
//! Left out, as sled-only by nature: crash.rs (SIGKILLs the binary and opens its sled
//! dir), model/ and sled_layout.rs (drive `SledStore` directly), no_secret_leaks.rs, bench_smoke.rs,
//! python_client.rs and sessionctl.rs (the binary and clients, not the store), and
//! forward_auth.rs (nginx in front of the gatekeeper that ext_authz.rs tests here; it
//! runs on standalone Redis in tests/on_redis.rs).
#![cfg(redis_tests)]
// Each included file declares its own `mod common; mod support;` (a file loaded with
// #[path] resolves them from tests/, like a mod.rs), so they are compiled once per file.
#![allow(clippy::duplicate_mod)]

// `support` names `crate::common`, which is this one.
mod common;
mod support;

#[path = "access_tokens.rs"]
mod access_tokens;
#[path = "auth.rs"]
mod auth;
#[path = "client_context.rs"]
mod client_context;
#[path = "end_reasons.rs"]
mod end_reasons;
#[path = "enrichment.rs"]
mod enrichment;
#[path = "errors.rs"]
mod errors;
#[path = "ext_authz.rs"]
mod ext_authz;
#[path = "extend.rs"]
mod extend;
#[path = "hostile_input/main.rs"]
mod hostile_input;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "list.rs"]
mod list;
#[path = "logout.rs"]
mod logout;
#[path = "observability.rs"]
mod observability;
#[path = "ops.rs"]
mod ops;
#[path = "persistence.rs"]
mod persistence;
#[path = "races.rs"]
mod races;
#[path = "refresh.rs"]
mod refresh;
#[path = "refresh_grace.rs"]
mod refresh_grace;
#[path = "revocations.rs"]
mod revocations;
#[path = "revoke_user.rs"]
mod revoke_user;
#[path = "search.rs"]
mod search;
#[path = "watch/main.rs"]
mod watch;

#[test]
fn this_crate_runs_on_the_redis_cluster() {
    assert_eq!(common::backend(), common::Backend::RedisCluster);
}
