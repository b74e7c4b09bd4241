//! The key layout (see the module docs): every key's name under the prefix and its
//! shard's hash tag, and how session ids, users and index members map to them.

use sha2::{Digest, Sha256};

use super::SHARDS;
use crate::store::{SessionId, StoreError};

/// Names of every key, under one prefix.
pub(super) struct Keys {
    pub(super) prefix: String,
}

impl Keys {
    pub(super) fn tag(&self, shard: u16) -> String {
        format!("{}:{{s{shard}}}", self.prefix)
    }

    pub(super) fn session(&self, id: SessionId) -> String {
        format!("{}:s:{}", self.tag(shard_of(id)), id.simple())
    }

    pub(super) fn user(&self, user_id: &str) -> String {
        format!("{}:u:{user_id}", self.tag(shard_of_user(user_id)))
    }

    pub(super) fn expiry(&self, shard: u16) -> String {
        format!("{}:exp", self.tag(shard))
    }

    pub(super) fn grace(&self, shard: u16) -> String {
        format!("{}:grace", self.tag(shard))
    }

    pub(super) fn events(&self, shard: u16) -> String {
        format!("{}:ev", self.tag(shard))
    }

    /// Ids of records changed with no event (touches, attributes), for near caches.
    pub(super) fn quiet_changes(&self, shard: u16) -> String {
        format!("{}:chg", self.tag(shard))
    }

    pub(super) fn events_top(&self, shard: u16) -> String {
        format!("{}:evtop", self.tag(shard))
    }

    pub(super) fn events_pruned(&self) -> String {
        format!("{}:evpruned", self.prefix)
    }

    pub(super) fn external(&self, external_user_id: &str) -> String {
        format!("{}:x:{external_user_id}", self.prefix)
    }

    /// A proof mark (`ProofMarks`): a key of its own, wherever the cluster puts it.
    pub(super) fn mark(&self, key: &str) -> String {
        format!("{}:pm:{key}", self.prefix)
    }

    pub(super) fn signing_keys(&self) -> String {
        format!("{}:signing_keys", self.prefix)
    }
}

/// The shard of a user: where the user's index and sessions live.
pub(super) fn shard_of_user(user_id: &str) -> u16 {
    let digest = Sha256::digest(user_id.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]]) % SHARDS
}

/// The shard a session id names (ids from elsewhere still land on some shard).
pub(super) fn shard_of(id: SessionId) -> u16 {
    let bytes = id.as_bytes();
    u16::from_be_bytes([bytes[14], bytes[15]]) % SHARDS
}

pub(super) fn id_hex(id: SessionId) -> String {
    id.simple().to_string()
}

pub(super) fn expiry_member(id: SessionId, user_id: &str) -> String {
    format!("{}:{user_id}", id.simple())
}

/// Splits an expiry index member into its session id and user id.
pub(super) fn parse_expiry_member(member: &str) -> Result<(SessionId, &str), StoreError> {
    let (id, user_id) = member
        .split_once(':')
        .ok_or(StoreError::MalformedKey("expiry index"))?;
    Ok((parse_id_hex(id, "expiry index")?, user_id))
}

pub(super) fn parse_id_hex(hex: &str, what: &'static str) -> Result<SessionId, StoreError> {
    SessionId::try_parse(hex).map_err(|_| StoreError::MalformedKey(what))
}
