//! The core integration suite again, with every test on the Redis Cluster store: each
//! `TestServer` keeps its sessions in the test cluster (`SESSIOND_TEST_REDIS_CLUSTER_URLS`)
//! under a key prefix of its own (see `tests/common/mod.rs`). Built only where a test
//! cluster is configured (`cfg(redis_tests)`, set by build.rs): start one with
//! `scripts/redis-test-env.sh start && eval "$(scripts/redis-test-env.sh env)"`.
//!
//! Left out, as sled-only by nature: crash.rs (SIGKILLs the binary and opens its sled
//! dir), model.rs (drives `SledStore` directly), no_secret_leaks.rs, bench_smoke.rs,
//! python_client.rs and sessionctl.rs (the binary and clients, not the store). The one
//! test of the included files that scans sled's files returns early on Redis; its Redis
//! counterpart is in `stored_in_redis` below.
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
#[path = "enrichment.rs"]
mod enrichment;
#[path = "errors.rs"]
mod errors;
#[path = "extend.rs"]
mod extend;
#[path = "hostile_input.rs"]
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
#[path = "watch.rs"]
mod watch;

#[test]
fn this_crate_runs_on_the_redis_cluster() {
    assert_eq!(common::backend(), common::Backend::RedisCluster);
}

/// What the store keeps in Redis, read back from the cluster: the Redis side of
/// refresh_grace.rs's sled-file scan.
mod stored_in_redis {
    use crate::common::{self, TestServer};
    use crate::support::*;

    /// Every byte string stored in one Redis value (whatever its type).
    fn flatten(value: redis::Value, into: &mut Vec<Vec<u8>>) {
        match value {
            redis::Value::BulkString(bytes) => into.push(bytes),
            redis::Value::SimpleString(text) => into.push(text.into_bytes()),
            redis::Value::Array(items) | redis::Value::Set(items) => {
                for item in items {
                    flatten(item, into);
                }
            }
            redis::Value::Map(pairs) => {
                for (key, value) in pairs {
                    flatten(key, into);
                    flatten(value, into);
                }
            }
            _ => {}
        }
    }

    /// Every key under `prefix` in the test cluster, with the byte strings its value
    /// holds. Reads each node named by the test env (all masters, no replicas).
    async fn stored_under(prefix: &str) -> Vec<(String, Vec<Vec<u8>>)> {
        let mut found = Vec::new();
        for url in common::redis_urls(common::REDIS_CLUSTER_URLS_ENV) {
            let client = redis::Client::open(url.as_str()).expect("a redis URL");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect to a cluster node");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            for key in keys {
                let kind: String = redis::cmd("TYPE")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("TYPE");
                let read = match kind.as_str() {
                    "string" => redis::cmd("GET").arg(&key).clone(),
                    "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                    "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                    "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
                    "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                    "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
                    _ => continue, // expired between KEYS and TYPE ("none")
                };
                let value: redis::Value = read.query_async(&mut conn).await.expect("read a value");
                let mut bytes = Vec::new();
                flatten(value, &mut bytes);
                found.push((key, bytes));
            }
        }
        found
    }

    #[tokio::test]
    async fn no_token_secret_is_stored_in_plaintext() {
        let mut test = TestServer::start().await;
        let mut client = test.client().await;
        let probe = "plaintext-probe-user-5b0d3c";
        let started = start_session(&mut client, probe).await;
        let successor = refresh_ok(&mut client, &started.refresh_token).await;
        test.stop().await; // inside the window: the sealed successor is stored

        let stored = stored_under(&test.key_prefix).await;

        assert!(
            stored
                .iter()
                .any(|(_, values)| values.iter().any(|v| contains_bytes(v, probe.as_bytes()))),
            "the scan sees stored records (the user id is stored as is): {:?}",
            stored.iter().map(|(key, _)| key).collect::<Vec<_>>()
        );
        for token in [
            &started.session_token,
            &started.refresh_token,
            &successor.session_token,
            &successor.refresh_token,
        ] {
            let secret = secret_of(token);
            for (key, values) in &stored {
                for value in values {
                    assert!(
                        !contains_bytes(value, &secret),
                        "a token secret is stored in plaintext under {key}"
                    );
                    assert!(
                        !contains_bytes(value, token.as_bytes()),
                        "a token is stored under {key}"
                    );
                }
            }
        }
    }
}
