//! Built only when the Redis suites are not (no test Redis Cluster configured, so
//! build.rs left `cfg(redis_tests)` off): one test that says so in `cargo test`'s own
//! output, as an ignored test with the reason, instead of four suites silently
//! compiling to nothing. Under CI (`CI` set) it runs and fails: CI must test on Redis.
#![cfg(not(redis_tests))]

#[test]
#[cfg_attr(
    not(redis_tests_required),
    ignore = "Redis suites skipped (on_redis, on_redis_cluster, redis_multi_instance, \
              redis_outage): no test Redis. To run them: scripts/redis-test-env.sh start \
              && eval \"$(scripts/redis-test-env.sh env)\" && cargo test"
)]
fn redis_suites_skipped_without_a_test_redis() {
    panic!(
        "SESSIOND_TEST_REDIS_CLUSTER_URLS is not set, so the Redis suites (tests/on_redis*.rs, \
         tests/redis_*.rs) were not built. Start the test Redis first: \
         scripts/redis-test-env.sh start && eval \"$(scripts/redis-test-env.sh env)\" && cargo test"
    );
}
