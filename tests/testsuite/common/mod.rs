//! Test harness: a real `sessiond` served in-process on a loopback port, with a temp
//! data dir and a `ManualClock`, reached through the generated client.
//!
//! Each server runs on its test's backend (`backends.rs`): sled in the data dir, or the
//! test Redis named by `SESSIOND_TEST_REDIS_URL` or `SESSIOND_TEST_REDIS_CLUSTER_URLS`
//! (`scripts/redis-test-env.sh env`), under a key prefix of its own.

#[macro_use]
mod backends;
pub mod foreign_client;

pub use backends::{backend, enter, redis_urls, Backend, REDIS_CLUSTER_URLS_ENV};

use std::sync::Arc;
use std::time::Duration;

use sessiond::clock::ManualClock;
use sessiond::config::Config;
use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::server::{self, RunningServer};
use sessiond::store::redis::RedisStore;
use sessiond::store::sled::SledStore;
use sessiond::store::{Durability, SessionStore, StoreKind};
use tempfile::TempDir;
use tonic::transport::Channel;

/// A key prefix no other test server uses: `t` and 16 random hex digits.
pub fn unique_key_prefix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS randomness");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("t{hex}")
}

/// The `[redis]` table for `urls` (cluster or not) with `key_prefix`.
pub fn redis_table(urls: &[String], cluster: bool, key_prefix: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|url| format!("{url:?}")).collect();
    format!(
        "[redis]\nurls = [{}]\ncluster = {cluster}\nkey_prefix = {key_prefix:?}\n",
        urls.join(", ")
    )
}

/// `toml` made to run on `backend`: unchanged for sled; for Redis `store = "redis"` goes
/// first (before any table the test opens) and the `[redis]` table last.
pub fn toml_for(backend: Backend, toml: &str, key_prefix: &str) -> String {
    let Some(var) = backend.redis_env() else {
        return toml.to_owned();
    };
    let cluster = backend == Backend::RedisCluster;
    format!(
        "store = \"redis\"\n{toml}\n{}",
        redis_table(&redis_urls(var), cluster, key_prefix)
    )
}

/// 2026-01-01T00:00:00Z: tests start their clock here, so timestamps are readable.
pub const START_MS: u64 = 1_767_225_600_000;

/// A running server, its clock and its data dir (deleted on drop).
pub struct TestServer {
    /// The store it runs on: its test's backend.
    pub backend: Backend,
    pub clock: Arc<ManualClock>,
    pub data_dir: TempDir,
    pub running: Option<RunningServer>,
    /// Where its sessions live in Redis (unused on sled); kept across `restart`.
    pub key_prefix: String,
    toml: String,
}

impl TestServer {
    /// Starts a server with the default config (no file).
    pub async fn start() -> TestServer {
        Self::with_config("").await
    }

    /// Starts a server whose config file holds `toml` (the data dir is set by the harness).
    pub async fn with_config(toml: &str) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(START_MS));
        let mut server = TestServer {
            backend: backend(),
            clock,
            data_dir,
            running: None,
            key_prefix: unique_key_prefix(),
            toml: toml.to_owned(),
        };
        server.boot().await;
        server
    }

    /// The config the server runs with (on its backend).
    pub fn config(&self) -> Config {
        let toml = toml_for(self.backend, &self.toml, &self.key_prefix);
        let mut config = Config::from_toml_str(&toml).expect("valid test config");
        config.data_dir = self.data_dir.path().to_path_buf();
        config.listen = "127.0.0.1:0".parse().expect("loopback address");
        config
    }

    async fn boot(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let running = server::start(&self.config(), self.clock.clone(), listener)
            .await
            .expect("server starts");
        self.running = Some(running);
    }

    /// The running server (panics after `stop`).
    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("server is running")
    }

    /// `http://127.0.0.1:PORT` of the running server.
    pub fn url(&self) -> String {
        format!("http://{}", self.running().local_addr())
    }

    /// A fresh connected client.
    pub async fn client(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel().await)
    }

    /// A fresh connected channel (for health and reflection clients).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("valid url")
            .connect()
            .await
            .expect("connect to test server")
    }

    /// Graceful stop: drains calls, flushes and closes the store.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
    }

    /// The store the server kept its sessions in, opened again (call after `stop`): the
    /// sled database of the data dir, or the server's Redis under its key prefix.
    pub async fn open_store(&self) -> Arc<dyn SessionStore> {
        open_store(&self.config(), Durability::Sync, self.clock.clone()).await
    }

    /// Stops and starts again on the same data dir, key prefix and clock.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    /// Every byte string this server's store holds, each with where it is: sled's files
    /// in the data dir, or the values of the Redis keys under this server's prefix.
    pub async fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        match self.backend.redis_env() {
            None => files_under(self.data_dir.path()),
            Some(var) => redis_values_under(var, &self.key_prefix).await,
        }
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The store `config` names, on `clock`: sled in its data dir with `durability`, or its
/// Redis.
pub async fn open_store(
    config: &Config,
    durability: Durability,
    clock: Arc<ManualClock>,
) -> Arc<dyn SessionStore> {
    match config.store {
        StoreKind::Sled => {
            SledStore::open(&config.data_dir, durability).expect("open the sled store")
        }
        StoreKind::Redis => RedisStore::connect(&config.redis, clock)
            .await
            .expect("connect to the test Redis"),
    }
}

/// Every file below `dir`, by path, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read data dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).expect("read data file");
            files.push((path.display().to_string(), bytes));
        }
    }
    files
}

/// Every byte string held under the keys starting with `prefix`, by key, on each node
/// that `var` names (standalone, or every master of the test cluster).
async fn redis_values_under(var: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for url in redis_urls(var) {
        let client = redis::Client::open(url.as_str()).expect("a redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a test Redis node");
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
            found.extend(bytes.into_iter().map(|value| (key.clone(), value)));
        }
    }
    found
}

/// Every byte string in one Redis value (whatever its type).
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
