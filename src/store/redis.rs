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

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use prost::Message;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{
    Commit, ConsistencyReport, Decision, Event, EventsAfter, RecordDecision, SessionId,
    SessionRecord, SessionStore, StoreError, StoredEvent, UserDecision,
};
use crate::clock::Clock;
use crate::signing::{KeyVault, SigningError};

/// Hash-tag shards. Fixed for the life of a deployment: session ids carry theirs.
pub const SHARDS: u16 = 32;
/// How long a record outlives its expiry in Redis, so the sweeper (not Redis) normally
/// deletes it and logs EXPIRED with the full record, and late calls get precise errors.
const LINGER_MS: u64 = 5 * 60 * 1000;
/// Optimistic attempts before a change gives up as contended.
const MAX_ATTEMPTS: u32 = 32;
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
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            urls: Vec::new(),
            cluster: false,
            key_prefix: "sessiond".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
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

/// Applies a plan (see `Plan`) if its checks hold. Returns {1, first event seq} or {0, 0}.
const COMMIT_SCRIPT: &str = r"
local n = #ARGV
local i = 1
while i <= n do
  local op = ARGV[i]
  if op == 'C' then
    local current = redis.call('GET', KEYS[tonumber(ARGV[i + 1])]) or ''
    if current ~= ARGV[i + 2] then return {0, 0} end
    i = i + 3
  elseif op == 'M' then
    local members = redis.call('ZRANGE', KEYS[tonumber(ARGV[i + 1])], 0, -1)
    table.sort(members)
    if table.concat(members, ',') ~= ARGV[i + 2] then return {0, 0} end
    i = i + 3
  elseif op == 'S' or op == 'Z' then i = i + 4
  elseif op == 'R' then i = i + 3
  elseif op == 'D' or op == 'E' then i = i + 2
  else return redis.error_reply('unknown plan step ' .. op) end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local first = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') + 1, now)
local seq = first
i = 1
while i <= n do
  local op = ARGV[i]
  if op == 'C' or op == 'M' then i = i + 3
  elseif op == 'S' then
    local key = KEYS[tonumber(ARGV[i + 1])]
    redis.call('SET', key, ARGV[i + 2])
    redis.call('PEXPIREAT', key, string.format('%d', now + tonumber(ARGV[i + 3])))
    i = i + 4
  elseif op == 'D' then
    redis.call('DEL', KEYS[tonumber(ARGV[i + 1])])
    i = i + 2
  elseif op == 'Z' then
    redis.call('ZADD', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'R' then
    redis.call('ZREM', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2])
    i = i + 3
  else
    redis.call('XADD', KEYS[2], string.format('%d-1', seq), 'e', ARGV[i + 1])
    seq = seq + 1
    i = i + 2
  end
end
if seq > first then redis.call('SET', KEYS[1], string.format('%d', seq - 1)) end
return {1, first}
";

/// Raises a shard's event top to at least this node's now; returns the top.
const FENCE_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local top = tonumber(redis.call('GET', KEYS[1]) or '0')
if now > top then
  redis.call('SET', KEYS[1], string.format('%d', now))
  top = now
end
return top
";

/// Raises a stored number to at least ARGV[1].
const RAISE_SCRIPT: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
";

/// Names of every key, under one prefix.
struct Keys {
    prefix: String,
}

impl Keys {
    fn tag(&self, shard: u16) -> String {
        format!("{}:{{s{shard}}}", self.prefix)
    }

    fn session(&self, id: SessionId) -> String {
        format!("{}:s:{}", self.tag(shard_of(id)), id.simple())
    }

    fn user(&self, user_id: &str) -> String {
        format!("{}:u:{user_id}", self.tag(shard_of_user(user_id)))
    }

    fn expiry(&self, shard: u16) -> String {
        format!("{}:exp", self.tag(shard))
    }

    fn grace(&self, shard: u16) -> String {
        format!("{}:grace", self.tag(shard))
    }

    fn events(&self, shard: u16) -> String {
        format!("{}:ev", self.tag(shard))
    }

    fn events_top(&self, shard: u16) -> String {
        format!("{}:evtop", self.tag(shard))
    }

    fn events_pruned(&self) -> String {
        format!("{}:evpruned", self.prefix)
    }

    fn external(&self, external_user_id: &str) -> String {
        format!("{}:x:{external_user_id}", self.prefix)
    }

    fn signing_keys(&self) -> String {
        format!("{}:signing_keys", self.prefix)
    }
}

/// The shard of a user: where the user's index and sessions live.
fn shard_of_user(user_id: &str) -> u16 {
    let digest = Sha256::digest(user_id.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]]) % SHARDS
}

/// The shard a session id names (ids from elsewhere still land on some shard).
fn shard_of(id: SessionId) -> u16 {
    let bytes = id.as_bytes();
    u16::from_be_bytes([bytes[14], bytes[15]]) % SHARDS
}

fn id_hex(id: SessionId) -> String {
    id.simple().to_string()
}

fn expiry_member(id: SessionId, user_id: &str) -> String {
    format!("{}:{user_id}", id.simple())
}

/// Splits an expiry index member into its session id and user id.
fn parse_expiry_member(member: &str) -> Result<(SessionId, &str), StoreError> {
    let (id, user_id) = member
        .split_once(':')
        .ok_or(StoreError::MalformedKey("expiry index"))?;
    Ok((parse_id_hex(id, "expiry index")?, user_id))
}

fn parse_id_hex(hex: &str, what: &'static str) -> Result<SessionId, StoreError> {
    SessionId::try_parse(hex).map_err(|_| StoreError::MalformedKey(what))
}

fn record_id(record: &SessionRecord) -> Result<SessionId, StoreError> {
    super::keys::id_from(&record.session_id, "session record")
}

fn decode(id: SessionId, bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    SessionRecord::decode(bytes).map_err(|source| StoreError::CorruptRecord { id, source })
}

/// One atomic change in one shard, as steps the commit script runs: every check first,
/// then every write.
struct Plan {
    shard: u16,
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
    /// External user id → user id, written before the script (see `run`).
    external: Vec<(String, String)>,
}

impl Plan {
    fn new(keys: &Keys, shard: u16) -> Plan {
        Plan {
            shard,
            keys: vec![keys.events_top(shard), keys.events(shard)],
            args: Vec::new(),
            external: Vec::new(),
        }
    }

    /// The script's 1-based index of `key`.
    fn key(&mut self, key: String) -> Vec<u8> {
        let index = match self.keys.iter().position(|known| *known == key) {
            Some(index) => index,
            None => {
                self.keys.push(key);
                self.keys.len() - 1
            }
        };
        (index + 1).to_string().into_bytes()
    }

    fn step(&mut self, op: &str, key: String, rest: impl IntoIterator<Item = Vec<u8>>) {
        let key = self.key(key);
        self.args.push(op.as_bytes().to_vec());
        self.args.push(key);
        self.args.extend(rest);
    }

    /// Checks that `key` still holds `value` (None: does not exist).
    fn check_value(&mut self, key: String, value: Option<&[u8]>) {
        self.step("C", key, [value.unwrap_or_default().to_vec()]);
    }

    /// Checks that the zset `key` still has exactly `members`.
    fn check_members(&mut self, key: String, members: &[String]) {
        let mut sorted = members.to_vec();
        sorted.sort();
        self.step("M", key, [sorted.join(",").into_bytes()]);
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) {
        self.step("S", key, [value, ttl_ms.to_string().into_bytes()]);
    }

    fn delete(&mut self, key: String) {
        self.step("D", key, []);
    }

    fn zadd(&mut self, key: String, score: u64, member: String) {
        self.step(
            "Z",
            key,
            [score.to_string().into_bytes(), member.into_bytes()],
        );
    }

    fn zrem(&mut self, key: String, member: String) {
        self.step("R", key, [member.into_bytes()]);
    }

    fn event(&mut self, session_id: &[u8], user_id: &str, event: &Event) {
        let stored = event.stored(0, session_id, user_id);
        self.args.push(b"E".to_vec());
        self.args.push(stored.encode_to_vec());
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
        });
        store.settle().await?;
        tokio::spawn(show_events(Arc::downgrade(&store)));
        Ok(store)
    }

    fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// The signing keys every server of this deployment shares.
    pub fn key_vault(&self) -> RedisKeyVault {
        RedisKeyVault {
            conn: self.conn(),
            key: self.keys.signing_keys(),
        }
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

    /// Runs a plan; false when a check failed (someone changed what was read).
    async fn run(&self, plan: Plan) -> Result<bool, StoreError> {
        for (external_user_id, user_id) in &plan.external {
            // Before the session, in its own slot: a crash in between leaves a mapping to
            // a user that may have no new session, which lookups tolerate.
            self.query::<()>(
                redis::cmd("SET")
                    .arg(self.keys.external(external_user_id))
                    .arg(user_id),
            )
            .await?;
        }
        let mut invocation = self.commit.prepare_invoke();
        for key in &plan.keys {
            invocation.key(key);
        }
        for arg in &plan.args {
            invocation.arg(arg.as_slice());
        }
        let (applied, _first_seq): (i64, u64) = invocation.invoke_async(&mut self.conn()).await?;
        Ok(applied == 1)
    }

    /// Adds to `plan` the write of `new` and the index moves from where `old` had them.
    fn plan_put(
        &self,
        plan: &mut Plan,
        old: Option<&SessionRecord>,
        new: &SessionRecord,
    ) -> Result<(), StoreError> {
        let id = record_id(new)?;
        if shard_of(id) != plan.shard || shard_of_user(&new.user_id) != plan.shard {
            return Err(StoreError::MalformedKey(
                "session id outside its user's shard",
            ));
        }
        plan.set(
            self.keys.session(id),
            new.encode_to_vec(),
            self.ttl_ms(new.expires_at_ms),
        );
        plan.zadd(self.keys.user(&new.user_id), new.expires_at_ms, id_hex(id));
        plan.zadd(
            self.keys.expiry(plan.shard),
            new.expires_at_ms,
            expiry_member(id, &new.user_id),
        );
        let old_grace = old.map_or(0, |old| old.grace_until_ms);
        if old_grace != new.grace_until_ms {
            if new.grace_until_ms > 0 {
                plan.zadd(self.keys.grace(plan.shard), new.grace_until_ms, id_hex(id));
            } else {
                plan.zrem(self.keys.grace(plan.shard), id_hex(id));
            }
        }
        if old.is_none() && !new.external_user_id.is_empty() {
            plan.external
                .push((new.external_user_id.clone(), new.user_id.clone()));
        }
        Ok(())
    }

    /// Fences every shard at G (the lowest top after fencing), so every event at or
    /// below G is final; the head becomes the newest of those events' cursors.
    async fn settle(&self) -> Result<u64, StoreError> {
        let tops = try_join_all((0..SHARDS).map(|shard| {
            let mut conn = self.conn();
            let key = self.keys.events_top(shard);
            async move { self.fence.key(key).invoke_async::<u64>(&mut conn).await }
        }))
        .await?;
        let final_seq = tops.into_iter().min().unwrap_or(0);
        let newest = try_join_all((0..SHARDS).map(|shard| {
            let key = self.keys.events(shard);
            async move {
                let reply: StreamRangeReply = self
                    .query(
                        redis::cmd("XREVRANGE")
                            .arg(key)
                            .arg(format!("{final_seq}-1"))
                            .arg("-")
                            .arg("COUNT")
                            .arg(1),
                    )
                    .await?;
                reply
                    .ids
                    .first()
                    .map(|entry| parse_entry_seq(&entry.id).map(|seq| cursor_of(seq, shard)))
                    .transpose()
            }
        }))
        .await?;
        self.final_seq.fetch_max(final_seq, Ordering::AcqRel);
        let head = newest.into_iter().flatten().max().unwrap_or(0);
        self.head.send_if_modified(|current| {
            let moved = head > *current;
            *current = (*current).max(head);
            moved
        });
        Ok(self.head_seq())
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

    async fn due(&self, key: String, now_ms: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(limit),
        )
        .await
    }

    /// Deletes up to `limit` sessions of one shard that expired by `now_ms`.
    async fn remove_expired_in(
        &self,
        shard: u16,
        now_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let members = self.due(self.keys.expiry(shard), now_ms, limit).await?;
        let due = members
            .iter()
            .map(|member| parse_expiry_member(member))
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<SessionId> = due.iter().map(|(id, _)| *id).collect();
        let stored = self.records(&ids).await?;
        let mut plan = Plan::new(&self.keys, shard);
        let mut removed = 0;
        for ((id, user_id), bytes) in due.iter().zip(&stored) {
            let key = self.keys.session(*id);
            plan.check_value(key.clone(), bytes.as_deref());
            let record = bytes
                .as_deref()
                .map(|bytes| decode(*id, bytes))
                .transpose()?;
            if record
                .as_ref()
                .is_some_and(|record| record.expires_at_ms > now_ms)
            {
                continue;
            }
            // None: Redis's own expiry was first, only the indexes are left.
            let grace = record.as_ref().map_or(1, |record| record.grace_until_ms);
            plan.delete(key);
            plan.zrem(self.keys.user(user_id), id_hex(*id));
            plan.zrem(self.keys.expiry(shard), expiry_member(*id, user_id));
            if grace > 0 {
                plan.zrem(self.keys.grace(shard), id_hex(*id));
            }
            plan.event(
                id.as_bytes(),
                user_id,
                &Event::expired(record.as_ref(), now_ms),
            );
            removed += 1;
        }
        if removed == 0 || !self.run(plan).await? {
            // A concurrent change (an extension, another sweeper): the next sweep retries.
            return Ok(0);
        }
        Ok(removed)
    }

    /// Events of one shard after cursor `after`, numbered up to `through_seq`.
    async fn shard_events(
        &self,
        shard: u16,
        after: u64,
        through_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let shards = u64::from(SHARDS);
        let (after_seq, after_shard) = (after / shards, after % shards);
        let first_seq = if u64::from(shard) > after_shard {
            after_seq
        } else {
            after_seq + 1
        };
        if first_seq > through_seq {
            return Ok(Vec::new());
        }
        let reply: StreamRangeReply = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.keys.events(shard))
                    .arg(format!("{first_seq}-0"))
                    .arg(format!("{through_seq}-1"))
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        reply
            .ids
            .iter()
            .map(|entry| {
                let cursor = cursor_of(parse_entry_seq(&entry.id)?, shard);
                let bytes: Vec<u8> = entry
                    .map
                    .get("e")
                    .and_then(|value| redis::from_redis_value_ref(value).ok())
                    .ok_or(StoreError::MalformedKey("event entry"))?;
                let mut event = StoredEvent::decode(bytes.as_slice()).map_err(|source| {
                    StoreError::CorruptEvent {
                        seq: cursor,
                        source,
                    }
                })?;
                event.seq = cursor;
                Ok(event)
            })
            .collect()
    }
}

/// Signing keys in one Redis hash, so every server signs with keys all of them publish.
pub struct RedisKeyVault {
    conn: Connection,
    key: String,
}

#[async_trait]
impl KeyVault for RedisKeyVault {
    async fn load(&self) -> Result<Vec<(String, Vec<u8>)>, SigningError> {
        redis::cmd("HGETALL")
            .arg(&self.key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|error| SigningError::Vault(error.to_string()))
    }

    async fn save(&self, kid: &str, pkcs8: &[u8]) -> Result<(), SigningError> {
        redis::cmd("HSETNX")
            .arg(&self.key)
            .arg(kid)
            .arg(pkcs8)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|error| SigningError::Vault(error.to_string()))
    }
}

/// A watcher's cursor of event `seq` of `shard`.
fn cursor_of(seq: u64, shard: u16) -> u64 {
    seq * u64::from(SHARDS) + u64::from(shard)
}

/// The seq of a stream entry id "<seq>-1".
fn parse_entry_seq(id: &str) -> Result<u64, StoreError> {
    id.split_once('-')
        .and_then(|(seq, _)| seq.parse().ok())
        .ok_or(StoreError::MalformedKey("event entry id"))
}

/// While the store lives: makes events final often enough for live watchers.
async fn show_events(store: Weak<RedisStore>) {
    loop {
        tokio::time::sleep(EVENT_POLL).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        if store.head.receiver_count() > 0 {
            if let Err(error) = store.settle().await {
                tracing::debug!(%error, "cannot settle events now");
            }
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn place_session_id(&self, fresh: SessionId, user_id: &str) -> SessionId {
        let mut bytes = *fresh.as_bytes();
        bytes[14..].copy_from_slice(&shard_of_user(user_id).to_be_bytes());
        SessionId::from_bytes(bytes)
    }

    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.keys.session(id)))
            .await?;
        bytes.map(|bytes| decode(id, &bytes)).transpose()
    }

    async fn insert(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let id = record_id(record)?;
        let mut plan = Plan::new(&self.keys, shard_of(id));
        plan.check_value(self.keys.session(id), None);
        self.plan_put(&mut plan, None, record)?;
        plan.event(&record.session_id, &record.user_id, &Event::started(record));
        if self.run(plan).await? {
            Ok(())
        } else {
            Err(StoreError::Contended(1))
        }
    }

    async fn update(
        &self,
        id: SessionId,
        _commit: Commit,
        decide: &mut RecordDecision<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.keys.session(id);
        for _ in 0..MAX_ATTEMPTS {
            let bytes: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            let current = decode(id, &bytes)?;
            match decide(&current) {
                Decision::Keep => return Ok(Some(current)),
                Decision::Put(next, event) => {
                    let mut plan = Plan::new(&self.keys, shard_of(id));
                    plan.check_value(key.clone(), Some(&bytes));
                    self.plan_put(&mut plan, Some(&current), &next)?;
                    if let Some(event) = &event {
                        plan.event(&next.session_id, &next.user_id, event);
                    }
                    if self.run(plan).await? {
                        return Ok(Some(*next));
                    }
                }
            }
        }
        Err(StoreError::Contended(MAX_ATTEMPTS))
    }

    async fn update_user(
        &self,
        user_id: &str,
        decide: &mut UserDecision<'_>,
    ) -> Result<(), StoreError> {
        let user_key = self.keys.user(user_id);
        for _ in 0..MAX_ATTEMPTS {
            let members = self.user_members(user_id).await?;
            let mut ids = members
                .iter()
                .map(|member| parse_id_hex(member, "user index"))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            let stored = self.records(&ids).await?;
            let mut plan = Plan::new(&self.keys, shard_of_user(user_id));
            plan.check_members(user_key.clone(), &members);
            let mut current = Vec::with_capacity(ids.len());
            for (id, bytes) in ids.iter().zip(&stored) {
                plan.check_value(self.keys.session(*id), bytes.as_deref());
                if let Some(bytes) = bytes {
                    current.push(decode(*id, bytes)?);
                }
            }
            let puts = decide(&current);
            if puts.is_empty() {
                return Ok(());
            }
            for (next, event) in &puts {
                let old = current
                    .iter()
                    .find(|record| record.session_id == next.session_id);
                if old.is_none() {
                    plan.check_value(self.keys.session(record_id(next)?), None);
                }
                self.plan_put(&mut plan, old, next)?;
                plan.event(&next.session_id, &next.user_id, event);
            }
            if self.run(plan).await? {
                return Ok(());
            }
        }
        Err(StoreError::Contended(MAX_ATTEMPTS))
    }

    async fn user_of_external(&self, external_user_id: &str) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("GET").arg(self.keys.external(external_user_id)))
            .await
    }

    async fn list_user(
        &self,
        user_id: &str,
        before: Option<SessionId>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut ids = self
            .user_members(user_id)
            .await?
            .iter()
            .map(|member| parse_id_hex(member, "user index"))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_by(|a, b| b.cmp(a));
        ids.retain(|id| before.is_none_or(|before| *id < before));
        ids.truncate(limit);
        let stored = self.records(&ids).await?;
        ids.iter()
            .zip(stored)
            .filter_map(|(id, bytes)| bytes.map(|bytes| decode(*id, &bytes)))
            .collect()
    }

    async fn remove_expired(&self, now_ms: u64, limit: usize) -> Result<usize, StoreError> {
        // Every server sweeps every shard, each starting where the last sweep started
        // plus one, from a random shard: servers that sweep at once mostly work on
        // different shards instead of racing for the same records.
        let first = self.next_sweep_shard.fetch_add(1, Ordering::Relaxed);
        let mut removed = 0;
        for offset in 0..SHARDS {
            let shard = first.wrapping_add(offset) % SHARDS;
            if removed >= limit {
                break;
            }
            removed += self
                .remove_expired_in(shard, now_ms, limit - removed)
                .await?;
        }
        // Every server sweeps, so every server's gauge shows the deployment's total.
        let stored: Vec<u64> = try_join_all((0..SHARDS).map(|shard| {
            let count = redis::cmd("ZCARD").arg(self.keys.expiry(shard)).to_owned();
            async move { self.query(&count).await }
        }))
        .await?;
        metrics::gauge!(crate::metrics::SESSIONS_STORED).set(stored.iter().sum::<u64>() as f64);
        Ok(removed)
    }

    async fn grace_closed(&self, now_ms: u64, limit: usize) -> Result<Vec<SessionId>, StoreError> {
        let mut closed = Vec::new();
        for shard in 0..SHARDS {
            if closed.len() >= limit {
                break;
            }
            let key = self.keys.grace(shard);
            let ids = self
                .due(key.clone(), now_ms, limit - closed.len())
                .await?
                .iter()
                .map(|member| parse_id_hex(member, "grace index"))
                .collect::<Result<Vec<_>, _>>()?;
            for (id, bytes) in ids.iter().zip(self.records(&ids).await?) {
                if bytes.is_some() {
                    closed.push(*id);
                } else {
                    // Redis expired the record: nothing left to close.
                    self.query::<()>(redis::cmd("ZREM").arg(&key).arg(id_hex(*id)))
                        .await?;
                }
            }
        }
        Ok(closed)
    }

    async fn events_after(&self, after_seq: u64, limit: usize) -> Result<EventsAfter, StoreError> {
        let pruned_through: Option<u64> = self
            .query(redis::cmd("GET").arg(self.keys.events_pruned()))
            .await?;
        if let Some(pruned_through) = pruned_through.filter(|pruned| after_seq < *pruned) {
            return Ok(EventsAfter::Pruned { pruned_through });
        }
        let final_seq = self.final_seq.load(Ordering::Acquire);
        let mut events: Vec<StoredEvent> = try_join_all(
            (0..SHARDS).map(|shard| self.shard_events(shard, after_seq, final_seq, limit)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        events.sort_by_key(|event| event.seq);
        events.truncate(limit);
        Ok(EventsAfter::Events(events))
    }

    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for shard in 0..SHARDS {
            if pruned >= limit {
                break;
            }
            // Old by time, so final whatever the fences say.
            let oldest = self
                .shard_events(shard, 0, u64::MAX / u64::from(SHARDS), limit - pruned)
                .await?;
            let doomed: Vec<&StoredEvent> = oldest
                .iter()
                .take_while(|event| event.at_ms < before_ms)
                .collect();
            let Some(last) = doomed.last() else {
                continue;
            };
            // Raised before the trim: a watcher may be told "pruned" a moment early,
            // never find a silent gap.
            self.raise
                .key(self.keys.events_pruned())
                .arg(last.seq)
                .invoke_async::<()>(&mut self.conn())
                .await?;
            let last_seq = last.seq / u64::from(SHARDS);
            self.query::<()>(
                redis::cmd("XTRIM")
                    .arg(self.keys.events(shard))
                    .arg("MINID")
                    .arg(format!("{}-0", last_seq + 1)),
            )
            .await?;
            pruned += doomed.len();
        }
        Ok(pruned)
    }

    fn head_seq(&self) -> u64 {
        *self.head.borrow()
    }

    fn subscribe_events(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    async fn settled_head(&self) -> Result<u64, StoreError> {
        self.settle().await
    }

    async fn check_consistency(&self) -> Result<ConsistencyReport, StoreError> {
        let mut report = ConsistencyReport::default();
        for shard in 0..SHARDS {
            let entries = self.scored_members(self.keys.expiry(shard)).await?;
            let mut users = std::collections::BTreeSet::new();
            for (member, expires_at_ms) in &entries {
                report.expiry_index_entries += 1;
                let (id, user_id) = parse_expiry_member(member)?;
                users.insert(user_id.to_owned());
                // A record Redis already expired awaits the sweeper: not an orphan.
                if let Some(record) = self.get(id).await? {
                    report.sessions += 1;
                    if record.expires_at_ms != *expires_at_ms || record.user_id != user_id {
                        report.orphans += 1;
                    }
                }
            }
            for user_id in &users {
                let indexed = self.scored_members(self.keys.user(user_id)).await?;
                for (member, expires_at_ms) in indexed {
                    report.user_index_entries += 1;
                    let id = parse_id_hex(&member, "user index")?;
                    let listed = entries.iter().any(|(entry, at)| {
                        *at == expires_at_ms && *entry == expiry_member(id, user_id)
                    });
                    if !listed {
                        report.orphans += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Redis acknowledges a write once applied; its persistence is its own config.
        Ok(())
    }

    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
