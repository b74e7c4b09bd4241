//! The stored form of a session: a prost message, so records written by an older version
//! stay readable (unknown fields are skipped, new fields default).

use std::collections::BTreeMap;

use prost::Message;

use super::{SessionId, StoreError};

/// A session's persisted state. The one model the session rules operate on.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionRecord {
    /// UUID v7 of the session, 16 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub session_id: Vec<u8>,
    #[prost(string, tag = "2")]
    pub user_id: String,
    #[prost(string, tag = "3")]
    pub group: String,
    #[prost(enumeration = "StoredState", tag = "4")]
    pub state: i32,
    #[prost(uint64, tag = "5")]
    pub created_at_ms: u64,
    #[prost(uint64, tag = "6")]
    pub authenticated_at_ms: u64,
    #[prost(uint64, tag = "7")]
    pub last_access_at_ms: u64,
    #[prost(uint64, tag = "8")]
    pub expires_at_ms: u64,
    #[prost(uint64, tag = "9")]
    pub max_expires_at_ms: u64,
    /// The session's lifespan: what a refresh renews `expires_at_ms` by.
    #[prost(uint64, tag = "10")]
    pub ttl_ms: u64,
    #[prost(btree_map = "string, string", tag = "11")]
    pub metadata: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    pub attributes: BTreeMap<String, String>,
    /// SHA-256 of the current session token's secret.
    #[prost(bytes = "vec", tag = "13")]
    pub session_token_hash: Vec<u8>,
    /// SHA-256 of the current refresh token's secret.
    #[prost(bytes = "vec", tag = "14")]
    pub refresh_token_hash: Vec<u8>,
    /// Refresh secrets already rotated away, newest last: the first 16 bytes of each
    /// one's SHA-256, packed in one field (one allocation to decode). A match is reuse.
    #[prost(bytes = "vec", tag = "15")]
    pub retired_refresh_digests: Vec<u8>,
    /// Until when the refresh token rotated away last may be presented again and get
    /// `sealed_successor` back (0: no grace window open).
    #[prost(uint64, tag = "16")]
    pub grace_until_ms: u64,
    /// The current token pair's secrets, sealed under a key derived from the refresh
    /// secret rotated away last, so only its holder can unseal them (nonce ‖ ciphertext).
    #[prost(bytes = "vec", tag = "17")]
    pub sealed_successor: Vec<u8>,
    #[prost(string, tag = "18")]
    pub scope: String,
    /// Authenticator assurance level of the last Reauthenticate.
    #[prost(string, tag = "19")]
    pub aal: String,
    /// Enrichment data of the current token pair; cleared when it rotates.
    #[prost(btree_map = "string, string", tag = "20")]
    pub token_attributes: BTreeMap<String, String>,
    /// The user's id in the caller's system; empty: none.
    #[prost(string, tag = "21")]
    pub external_user_id: String,
    /// The client the session was started from (None: none given).
    #[prost(message, optional, tag = "22")]
    pub client: Option<ClientContext>,
    /// The IP address (canonical text) the session was last seen from; empty: unknown.
    #[prost(string, tag = "23")]
    pub last_ip: String,
    /// The user agent the session was last seen with; empty: unknown.
    #[prost(string, tag = "24")]
    pub last_user_agent: String,
    /// When `last_ip` / `last_user_agent` were last recorded (0: never).
    #[prost(uint64, tag = "25")]
    pub last_seen_at_ms: u64,
    /// Why a REVOKED session ended (Unspecified while active, and in older records).
    #[prost(enumeration = "EndReason", tag = "26")]
    pub end_reason: i32,
    /// The caller that started the session ("anonymous" without configured callers;
    /// empty in older records).
    #[prost(string, tag = "27")]
    pub started_by: String,
    /// The group's idle timeout when the session started (0: none), so that the
    /// sweeper, which sees no policy, can tell an idle timeout from a lifespan's end.
    #[prost(uint64, tag = "28")]
    pub idle_timeout_ms: u64,
    /// RFC 7638 thumbprint of the device key the session is bound to; empty: unbound.
    #[prost(string, tag = "29")]
    pub device_jkt: String,
    /// That device key as a public JWK (JSON), to check a DBSC response, which names no
    /// key; empty: unbound.
    #[prost(string, tag = "30")]
    pub device_jwk: String,
}

/// The end user's client as the caller saw it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClientContext {
    /// Canonical text form of an IPv4 or IPv6 address; empty: unknown.
    #[prost(string, tag = "1")]
    pub ip: String,
    #[prost(string, tag = "2")]
    pub user_agent: String,
    #[prost(string, tag = "3")]
    pub device_id: String,
    #[prost(string, tag = "4")]
    pub device_label: String,
}

/// One entry of the session event log.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredEvent {
    /// Position in the log: strictly increasing, the watchers' cursor.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    #[prost(enumeration = "EventKind", tag = "2")]
    pub kind: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub session_id: Vec<u8>,
    #[prost(string, tag = "4")]
    pub user_id: String,
    #[prost(uint64, tag = "5")]
    pub at_ms: u64,
    /// Why the session ended, for events that end or delete one (older events: none).
    #[prost(enumeration = "EndReason", tag = "6")]
    pub end_reason: i32,
    /// Who caused it: a caller's name, "anonymous", or "sessiond" (the sweeper).
    #[prost(string, tag = "7")]
    pub actor: String,
    /// The operator's reason text of a bulk revoke; empty otherwise.
    #[prost(string, tag = "8")]
    pub note: String,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EndReason {
    Unspecified = 0,
    /// Logout of this session by its token.
    Logout = 1,
    /// Logout of every session of the user.
    LogoutAll = 2,
    /// Logout of every session of the user but the caller's.
    LogoutOthers = 3,
    /// Ended by id, or by user, through an admin call.
    AdminRevoke = 4,
    /// Ended by RevokeSessions.
    BulkRevoke = 5,
    /// Evicted by a newer session over the group's max_sessions_per_user.
    LimitEvicted = 6,
    /// A rotated-away refresh token was presented again.
    RefreshReuse = 7,
    /// No access for the group's idle_timeout.
    IdleTimeout = 8,
    /// Its expiry passed.
    LifespanEnd = 9,
    /// Its absolute cap (max_expires_at) passed.
    AbsoluteCap = 10,
    /// Authenticated before the user's not_before (RevokeUserSessions).
    UserNotBefore = 11,
    /// A bound session's token came without a valid proof of its device key.
    BindingViolation = 12,
}

/// What happened to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EventKind {
    Unspecified = 0,
    Started = 1,
    Refreshed = 2,
    Extended = 3,
    Revoked = 4,
    Expired = 5,
    ReuseDetected = 6,
}

/// The stored part of a session's state; "expired" is derived from the clock, not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StoredState {
    Unspecified = 0,
    Active = 1,
    Revoked = 2,
}

/// The id of a session, from its record's 16 id bytes.
pub(crate) fn record_id(record: &SessionRecord) -> Result<SessionId, StoreError> {
    SessionId::from_slice(&record.session_id)
        .map_err(|_| StoreError::MalformedKey("session record"))
}

/// Decodes the stored record of session `id`.
pub(crate) fn decode_record(id: SessionId, bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    SessionRecord::decode(bytes).map_err(|source| StoreError::CorruptRecord { id, source })
}
