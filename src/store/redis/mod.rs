//! Sessions in Redis or Redis Cluster, shared by any number of servers.
//!
//! Every change is one Lua script on keys of one hash slot. Keys carry a shard's hash
//! tag `{sN}`: a user's index and all of the user's sessions sit in the user's shard
//! (its number is folded into the last two bytes of each session id, so a token alone
//! finds its record), next to the shard's expiry and grace indexes and its event stream.
//!
//! ```text
//! P:{sN}:s:<session id hex>   string  SessionRecord (prost), PEXPIREAT expiry + linger
//! P:{sN}:u:<user id>          zset    session id hex, scored by expires_at_ms
//! P:{sN}:exp                  zset    "<session id hex>:<user id>", scored by expires_at_ms
//! P:{sN}:grace                zset    session id hex, scored by grace_until_ms
//! P:{sN}:ev                   stream  entry id "<seq>-1", field e = StoredEvent (prost)
//! P:{sN}:chg                  stream  field s = session id of a change with no event
//! P:{sN}:evtop                string  highest event seq this shard wrote or was fenced at
//! P:evpruned                  string  watch cursor through which retention pruned events
//! P:x:<external user id>      string  user id
//! P:signing_keys              hash    key id -> Ed25519 PKCS#8 (shared by every server)
//! ```
//!
//! Writes are optimistic: read, let the session rules decide, then a script that checks
//! the records (and the user's index) are still what was read and applies the whole
//! change, or reports a conflict so the decision runs again on fresh data.
//!
//! Events: a shard numbers its events `max(top + 1, now_ms)`, so numbers are unique per
//! shard and near wall-clock time; a watcher's cursor is `seq * SHARDS + shard`. To show
//! events up to G in order, every shard is first fenced at G (its top raised to at least
//! G), so no event at or below G can still appear anywhere.
//!
//! Near cache (`near`, opt-in): reads answered from memory while `tail` is caught up on
//! every shard's `ev` and `chg` streams within `near_cache_staleness` (docs/redis.md).

mod error;
mod events;
mod keys;
mod maintenance;
mod marks;
mod near;
mod plan;
mod records;
mod sweep;
mod tail;
mod vault;

pub use vault::RedisKeyVault;

use std::sync::atomic::{AtomicU16, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use serde::Deserialize;
use tokio::sync::watch;

use super::{Persistence, SessionId, StoreError};
use crate::clock::Clock;
use events::show_events;
use keys::Keys;
use near::NearCache;
use plan::{COMMIT_SCRIPT, FENCE_SCRIPT, RAISE_SCRIPT};
use tail::tail_changes;

/// Hash-tag shards. Fixed for the life of a deployment: session ids carry theirs.
pub const SHARDS: u16 = 32;
/// How long a record outlives its expiry in Redis, so the sweeper (not Redis) normally
/// deletes it and logs EXPIRED with the full record, and late calls get precise errors.
const LINGER_MS: u64 = 5 * 60 * 1000;
/// Optimistic attempts before a change gives up as contended.
const MAX_ATTEMPTS: u32 = 32;
/// The tightest near cache bound: the tail polls every shard four times within it.
const MIN_NEAR_CACHE_STALENESS: Duration = Duration::from_millis(10);
/// How often events are made visible while someone watches.
const EVENT_POLL: Duration = Duration::from_millis(20);

/// How to reach Redis (`[redis]` in the config file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// One URL (standalone), or seed nodes of a cluster.
    pub urls: Vec<String>,
    /// The URLs are seed nodes of a Redis Cluster.
    pub cluster: bool,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Limit on opening one connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Limit on one command's answer; past it the call fails with UNAVAILABLE.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Answer reads of sessions this server has seen from memory while its tail of the
    /// change streams is caught up (docs/redis.md, "Near cache").
    pub near_cache: bool,
    /// How far behind the change streams the near cache may be and still answer: the
    /// longest a change made on another server can go unseen here.
    #[serde(with = "humantime_serde")]
    pub near_cache_staleness: Duration,
    /// Records the near cache keeps (up to twice as many, in two generations).
    pub near_cache_records: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            urls: Vec::new(),
            cluster: false,
            key_prefix: "sessiond".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            near_cache: false,
            near_cache_staleness: Duration::from_millis(100),
            near_cache_records: 100_000,
        }
    }
}

impl RedisConfig {
    /// What makes this config unusable, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        if self.urls.is_empty() {
            Some("store = \"redis\" needs redis.urls (or --redis-url)")
        } else if !self.cluster && self.urls.len() > 1 {
            Some("several redis.urls are cluster seed nodes: set redis.cluster = true")
        } else if self.key_prefix.is_empty()
            || self.key_prefix.contains('{')
            || self.key_prefix.contains('}')
        {
            Some("redis.key_prefix must be non-empty and contain no '{' or '}'")
        } else if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            Some("redis.connect_timeout and redis.response_timeout must be more than 0s")
        } else if self.near_cache
            && (self.near_cache_staleness < MIN_NEAR_CACHE_STALENESS
                || self.near_cache_records == 0)
        {
            Some("redis.near_cache_staleness must be at least 10ms and near_cache_records more than 0")
        } else {
            None
        }
    }
}

/// A multiplexed connection to one server, or to every node of a cluster; both
/// reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Sessions in Redis; see the module docs for the layout.
pub struct RedisStore {
    conn: Connection,
    keys: Keys,
    clock: Arc<dyn Clock>,
    commit: Script,
    fence: Script,
    raise: Script,
    /// Every event numbered at or below this is final in every shard.
    final_seq: AtomicU64,
    /// Cursor of the newest final event.
    head: watch::Sender<u64>,
    /// The shard the next sweep starts at (see `remove_expired`).
    next_sweep_shard: AtomicU16,
    /// Records answered from memory, when `near_cache` is on.
    near: Option<NearCache>,
}

impl RedisStore {
    /// Connects (failing fast if Redis cannot be reached) and starts making events
    /// visible to this server's watchers.
    pub async fn connect(
        config: &RedisConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<RedisStore>, StoreError> {
        let conn = if config.cluster {
            let client = redis::cluster::ClusterClientBuilder::new(config.urls.clone())
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()?;
            Connection::Cluster(client.get_async_connection().await?)
        } else {
            let client = redis::Client::open(config.urls[0].as_str())?;
            let settings = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(200));
            Connection::Single(ConnectionManager::new_with_config(client, settings).await?)
        };
        let store = Arc::new(RedisStore {
            conn,
            keys: Keys {
                prefix: config.key_prefix.clone(),
            },
            clock,
            commit: Script::new(COMMIT_SCRIPT),
            fence: Script::new(FENCE_SCRIPT),
            raise: Script::new(RAISE_SCRIPT),
            final_seq: AtomicU64::new(0),
            head: watch::Sender::new(0),
            // Any start will do; a random one keeps servers apart (see `remove_expired`).
            next_sweep_shard: AtomicU16::new(getrandom::u32().unwrap_or(0) as u16 % SHARDS),
            near: config
                .near_cache
                .then(|| NearCache::new(config.near_cache_records, config.near_cache_staleness)),
        });
        store.settle().await?;
        tokio::spawn(show_events(Arc::downgrade(&store)));
        if store.near.is_some() {
            tokio::spawn(tail_changes(Arc::downgrade(&store)));
        }
        Ok(store)
    }

    fn conn(&self) -> Connection {
        self.conn.clone()
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        Ok(cmd.query_async(&mut self.conn()).await?)
    }

    /// Milliseconds Redis keeps a record that expires at `expires_at_ms`.
    fn ttl_ms(&self, expires_at_ms: u64) -> u64 {
        expires_at_ms
            .saturating_sub(self.clock.now_ms())
            .saturating_add(LINGER_MS)
    }

    /// Records of `ids` in one shard (one MGET; None where Redis has none).
    async fn records(&self, ids: &[SessionId]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = redis::cmd("MGET");
        for id in ids {
            mget.arg(self.keys.session(*id));
        }
        self.query(&mget).await
    }

    /// Every member of a sorted set with its score (an expiry).
    async fn scored_members(&self, key: String) -> Result<Vec<(String, u64)>, StoreError> {
        self.query(
            redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES"),
        )
        .await
    }

    async fn user_members(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        self.query(
            redis::cmd("ZRANGE")
                .arg(self.keys.user(user_id))
                .arg(0)
                .arg(-1),
        )
        .await
    }
}

// Redis acknowledges a write once applied, and its persistence is its own config
// (RDB, AOF): nothing to flush or wait for, and no fault it cannot recover from.
impl Persistence for RedisStore {}

#[cfg(test)]
mod tests {
    use super::keys::{expiry_member, parse_expiry_member, shard_of, shard_of_user};
    use super::*;

    #[test]
    fn a_placed_session_id_names_its_users_shard() {
        let store_shard = shard_of_user("alice");
        let mut bytes = *SessionId::now_v7().as_bytes();
        bytes[14..].copy_from_slice(&store_shard.to_be_bytes());
        assert_eq!(shard_of(SessionId::from_bytes(bytes)), store_shard);
    }

    #[test]
    fn keys_of_one_user_share_one_hash_tag() {
        let keys = Keys {
            prefix: "p".to_owned(),
        };
        let shard = shard_of_user("bob}{x");
        let mut bytes = *SessionId::now_v7().as_bytes();
        bytes[14..].copy_from_slice(&shard.to_be_bytes());
        let tag = format!("{{s{shard}}}");
        for key in [
            keys.session(SessionId::from_bytes(bytes)),
            keys.user("bob}{x"),
            keys.expiry(shard),
            keys.events(shard),
        ] {
            assert!(key.starts_with(&format!("p:{tag}")), "{key}");
        }
    }

    #[test]
    fn expiry_members_round_trip_with_any_user_id() {
        let id = SessionId::now_v7();
        let member = expiry_member(id, "a:b:c");
        assert_eq!(parse_expiry_member(&member).expect("parse"), (id, "a:b:c"));
        assert!(parse_expiry_member("nonsense").is_err());
    }

    #[test]
    fn a_config_without_urls_or_with_a_braced_prefix_is_refused() {
        assert!(RedisConfig::default().problem().is_some());
        let config = RedisConfig {
            urls: vec!["redis://127.0.0.1".to_owned()],
            key_prefix: "a{b".to_owned(),
            ..RedisConfig::default()
        };
        assert!(config.problem().is_some());
    }
}
