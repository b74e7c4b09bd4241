//! Part of the core integration suite again, on a standalone Redis
//! (`SESSIOND_TEST_REDIS_URL`): enough to show the store works without a cluster too
//! (tests/on_redis_cluster.rs runs the whole suite on the cluster). Each `TestServer` has
//! a key prefix of its own (see `tests/common/mod.rs`). Built only where a test Redis is
//! configured (`cfg(redis_tests)`, set by build.rs): start one with
//! `scripts/redis-test-env.sh start && eval "$(scripts/redis-test-env.sh env)"`.
#![cfg(redis_tests)]
// Each included file declares its own `mod common; mod support;` (a file loaded with
// #[path] resolves them from tests/, like a mod.rs), so they are compiled once per file.
#![allow(clippy::duplicate_mod)]

// `support` names `crate::common`, which is this one.
mod common;

#[path = "backup.rs"]
mod backup;
#[path = "client_context.rs"]
mod client_context;
#[path = "end_reasons.rs"]
mod end_reasons;
#[path = "ext_authz.rs"]
mod ext_authz;
#[path = "forward_auth/main.rs"]
mod forward_auth;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "list.rs"]
mod list;
#[path = "refresh.rs"]
mod refresh;
#[path = "revocations.rs"]
mod revocations;
#[path = "revoke_user.rs"]
mod revoke_user;
#[path = "search.rs"]
mod search;
#[path = "watch/main.rs"]
mod watch;

#[test]
fn this_crate_runs_on_standalone_redis() {
    assert_eq!(common::backend(), common::Backend::Redis);
}
