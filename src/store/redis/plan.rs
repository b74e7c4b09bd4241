//! Changes as one Lua script each: a `Plan` lists the checks (records and index members
//! still as read) and the writes of one change on one hash slot; the commit script
//! (`lua/commit.lua`) applies it whole or reports a conflict, and the decision runs again.

use prost::Message;

use super::keys::{expiry_member, id_hex, shard_of, shard_of_user, Keys};
use super::RedisStore;
use crate::store::record::record_id;
use crate::store::{Event, SessionId, SessionRecord, StoreError};

/// Applies a plan (see `Plan`) if its checks hold. Returns {1, first event seq} or {0, 0}.
pub(super) const COMMIT_SCRIPT: &str = include_str!("lua/commit.lua");

/// Raises a shard's event top to at least this node's now; returns the top.
pub(super) const FENCE_SCRIPT: &str = include_str!("lua/fence.lua");

/// Raises a stored number to at least ARGV[1].
pub(super) const RAISE_SCRIPT: &str = include_str!("lua/raise.lua");

/// One atomic change in one shard, as steps the commit script runs: every check first,
/// then every write.
pub(super) struct Plan {
    pub(super) shard: u16,
    pub(super) keys: Vec<String>,
    pub(super) args: Vec<Vec<u8>>,
    /// External user id → user id, written before the script (see `run`).
    pub(super) external: Vec<(String, String)>,
    /// Sessions whose record the plan writes or deletes: this server's near cache
    /// drops them once the script ran (see `run`).
    pub(super) sessions: Vec<SessionId>,
}

impl Plan {
    pub(super) fn new(keys: &Keys, shard: u16) -> Plan {
        Plan {
            shard,
            keys: vec![
                keys.events_top(shard),
                keys.events(shard),
                keys.quiet_changes(shard),
            ],
            args: Vec::new(),
            external: Vec::new(),
            sessions: Vec::new(),
        }
    }

    /// The script's 1-based index of `key`.
    pub(super) fn key(&mut self, key: String) -> Vec<u8> {
        let index = match self.keys.iter().position(|known| *known == key) {
            Some(index) => index,
            None => {
                self.keys.push(key);
                self.keys.len() - 1
            }
        };
        (index + 1).to_string().into_bytes()
    }

    pub(super) fn step(&mut self, op: &str, key: String, rest: impl IntoIterator<Item = Vec<u8>>) {
        let key = self.key(key);
        self.args.push(op.as_bytes().to_vec());
        self.args.push(key);
        self.args.extend(rest);
    }

    /// Checks that `key` still holds `value` (None: does not exist).
    pub(super) fn check_value(&mut self, key: String, value: Option<&[u8]>) {
        self.step("C", key, [value.unwrap_or_default().to_vec()]);
    }

    /// Checks that the zset `key` still has exactly `members`.
    pub(super) fn check_members(&mut self, key: String, members: &[String]) {
        let mut sorted = members.to_vec();
        sorted.sort();
        self.step("M", key, [sorted.join(",").into_bytes()]);
    }

    pub(super) fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) {
        self.step("S", key, [value, ttl_ms.to_string().into_bytes()]);
    }

    pub(super) fn zadd(&mut self, key: String, score: u64, member: String) {
        self.step(
            "Z",
            key,
            [score.to_string().into_bytes(), member.into_bytes()],
        );
    }

    pub(super) fn zrem(&mut self, key: String, member: String) {
        self.step("R", key, [member.into_bytes()]);
    }

    /// Deletes the record of session `id` (its key is `key`).
    pub(super) fn delete_record(&mut self, key: String, id: SessionId) {
        self.step("D", key, []);
        self.sessions.push(id);
    }

    /// Notes a change of `session_id`'s record that logs no event (a touch, new
    /// attributes), so other servers' near caches still hear of it.
    pub(super) fn quiet_change(&mut self, session_id: &[u8]) {
        self.args.push(b"Q".to_vec());
        self.args.push(session_id.to_vec());
    }

    pub(super) fn event(&mut self, session_id: &[u8], user_id: &str, event: &Event) {
        let stored = event.stored(0, session_id, user_id);
        self.args.push(b"E".to_vec());
        self.args.push(stored.encode_to_vec());
    }
}

impl RedisStore {
    /// Runs a plan; false when a check failed (someone changed what was read).
    #[tracing::instrument(level = "debug", name = "redis.commit_script", skip_all)]
    pub(super) async fn run(&self, plan: Plan) -> Result<bool, StoreError> {
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
        let outcome = invocation
            .invoke_async::<(i64, u64)>(&mut self.conn())
            .await;
        if let Some(near) = &self.near {
            // Whatever the outcome (a timeout may still have applied it): reads that
            // started before the script must not refill the cache with an older record.
            near.drop_changed(plan.sessions.iter().copied());
        }
        let (applied, _first_seq) = outcome?;
        Ok(applied == 1)
    }

    /// Adds to `plan` the write of `new` and the index moves from where `old` had them.
    pub(super) fn plan_put(
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
        plan.sessions.push(id);
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
}
