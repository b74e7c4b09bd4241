//! Applies the session rules over a `SessionStore`: every call reads, decides with the
//! rules of `policy`, and writes in one atomic store step. Each call's file holds its
//! rule as a pure function of the record, the call and `now` (`refresh_decision`,
//! `extend_decision`, ...) with a table test; `decide.rs` runs a rule in the store step.

mod attributes;
mod binding;
mod bulk;
mod decide;
mod extension;
#[cfg(test)]
mod fixtures;
mod listing;
mod logout;
mod reauthentication;
mod rotation;
mod search;
mod sighting;
mod start;
mod sweep;
mod validation;

pub use binding::PresentedProof;
pub use bulk::{BulkRevoke, BulkRevoked};
pub use reauthentication::Reauthentication;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::access::Acting;
use super::binding::{DeviceKey, ProofSettings};
use super::ids::SessionIds;
use super::policy::{GroupPolicy, Policies, SessionState};
use super::token::{Secret, Token, TokenKind};
use super::SessionError;
use crate::clock::{millis, Clock};
use crate::metrics;
use crate::signing::KeyRing;
use crate::store::{
    ClientContext, Commit, Decision, EndReason, Event, EventKind, SessionId, SessionRecord,
    SessionStore, StoredState,
};

/// Pause between two sweeper batches.
const SWEEP_PAUSE: Duration = Duration::from_millis(5);

/// How many rotated-away refresh secrets a session remembers for reuse detection
/// (2 KiB of digests at most); an older one is simply refused.
const RETIRED_REFRESH_SECRETS: usize = 128;

/// What Start needs, validated for shape by the API layer.
#[derive(Debug, Clone, Default)]
pub struct StartParams {
    pub user_id: String,
    /// None: the default group.
    pub group: Option<String>,
    /// None: the group's lifespan.
    pub ttl: Option<Duration>,
    pub metadata: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
    /// Empty: no scope.
    pub scope: String,
    pub token_attributes: BTreeMap<String, String>,
    /// Also sign an ID token.
    pub issue_id_token: bool,
    /// Empty: none.
    pub external_user_id: String,
    /// The client the session is started from, if the caller said.
    pub client: Option<ClientContext>,
    /// The device key to bind the session to; None: a bearer session.
    pub device_key: Option<DeviceKey>,
}

/// A user, by our id or by the caller's.
#[derive(Debug, Clone)]
pub enum UserRef {
    Id(String),
    External(String),
}

/// What UpdateAttributes changes; removals apply before additions.
#[derive(Debug, Clone, Default)]
pub struct AttributeChanges {
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
    pub token_set: BTreeMap<String, String>,
    pub token_remove: Vec<String>,
}

/// A session as of one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub record: SessionRecord,
    pub state: SessionState,
    /// Why it is not active (Unspecified while it is).
    pub end_reason: EndReason,
    /// Until the session ends (expiry or idle timeout), from the moment of the call.
    pub expires_in: Duration,
    /// Until when a caller following WatchSessions may cache this answer.
    pub cache_until_ms: u64,
}

/// A session with a fresh token pair, from Start or Refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub session: Snapshot,
    pub session_token: String,
    pub refresh_token: String,
    /// A signed access token, when the group issues them.
    pub access_token: Option<AccessToken>,
    /// A signed ID token, when asked for and the group issues access tokens.
    pub id_token: Option<String>,
}

/// A signed JWT and how long it is valid.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub jwt: String,
    pub expires_in: Duration,
}

/// Signs access and ID tokens: the key ring and the `iss` claim.
pub struct Signer {
    pub keys: Arc<KeyRing>,
    pub issuer: String,
}

/// The result of Extend.
#[derive(Debug, Clone)]
pub struct Extension {
    pub session: Snapshot,
    pub extended: bool,
}

/// One page of a user's sessions.
#[derive(Debug, Clone)]
pub struct SessionPage {
    /// Newest first.
    pub sessions: Vec<Snapshot>,
    /// Where the next page starts (before this session), if there may be one.
    pub next: Option<SessionId>,
}

/// Which session a Logout names.
#[derive(Debug, Clone)]
pub enum LogoutTarget {
    Token(Token),
    Id(SessionId),
}

/// Settings of the rules that are not per group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerSettings {
    /// Whoami persists `last_access_at` at most this often per session (or per half the
    /// idle timeout, if that is shorter).
    pub touch_interval: Duration,
    /// Longest Whoami's `cache_until` hint reaches past now.
    pub whoami_cache_max: Duration,
    /// How long the event log keeps an event.
    pub event_retention: Duration,
    /// How device proofs are checked.
    pub proofs: ProofSettings,
}

impl Default for ManagerSettings {
    fn default() -> Self {
        ManagerSettings {
            touch_interval: Duration::from_secs(60),
            whoami_cache_max: Duration::from_secs(300),
            event_retention: Duration::from_secs(24 * 3600),
            proofs: ProofSettings::default(),
        }
    }
}

/// The session rules, bound to a store, the group policies and a clock.
pub struct SessionManager {
    pub(super) store: Arc<dyn SessionStore>,
    pub(super) policies: Policies,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: ManagerSettings,
    /// Turns true at shutdown: watchers end their streams.
    pub(super) closing: tokio::sync::watch::Sender<bool>,
    pub(super) signer: Option<Signer>,
    /// Ids of new sessions, in creation order.
    pub(super) ids: SessionIds,
}

/// A fresh pair of secrets, made before a store step (which may re-run) uses them.
struct TokenPair {
    session: Secret,
    refresh: Secret,
}

impl TokenPair {
    fn generate() -> Result<TokenPair, SessionError> {
        Ok(TokenPair {
            session: Secret::generate()?,
            refresh: Secret::generate()?,
        })
    }

    fn issue(self, session: Snapshot) -> Result<Issued, SessionError> {
        let session_id = session_id_of(&session.record)?;
        Ok(Issued {
            session_token: Token {
                session_id,
                secret: self.session,
            }
            .encode(TokenKind::Session),
            refresh_token: Token {
                session_id,
                secret: self.refresh,
            }
            .encode(TokenKind::Refresh),
            session,
            access_token: None,
            id_token: None,
        })
    }
}

fn session_id_of(record: &SessionRecord) -> Result<SessionId, SessionError> {
    SessionId::from_slice(&record.session_id)
        .map_err(|_| SessionError::Store(crate::store::StoreError::MalformedKey("session id")))
}

fn count_revoked(reason: &'static str, count: usize) {
    if count > 0 {
        ::metrics::counter!(metrics::SESSIONS_REVOKED, "reason" => reason).increment(count as u64);
    }
}

/// `record` ended for `reason` by `actor`, with the event that says so (REUSE_DETECTED
/// for a reused refresh token, REVOKED otherwise).
fn ended(
    record: &SessionRecord,
    reason: EndReason,
    at_ms: u64,
    actor: &str,
) -> (SessionRecord, Event) {
    let mut next = record.clone();
    next.set_state(StoredState::Revoked);
    next.set_end_reason(reason);
    close_grace(&mut next);
    let kind = match reason {
        EndReason::RefreshReuse => EventKind::ReuseDetected,
        _ => EventKind::Revoked,
    };
    let mut event = event(kind, at_ms, actor);
    event.reason = reason;
    (next, event)
}

/// Drops the sealed successor: its window closed, or the successor was used.
fn close_grace(record: &mut SessionRecord) {
    record.grace_until_ms = 0;
    record.sealed_successor.clear();
}

fn event(kind: EventKind, at_ms: u64, actor: &str) -> Event {
    Event {
        kind,
        at_ms,
        reason: EndReason::Unspecified,
        actor: actor.into(),
        note: "".into(),
    }
}

impl SessionManager {
    /// Binds the rules to a store.
    pub fn new(
        store: Arc<dyn SessionStore>,
        policies: Policies,
        clock: Arc<dyn Clock>,
        settings: ManagerSettings,
    ) -> SessionManager {
        SessionManager {
            store,
            policies,
            clock,
            settings,
            closing: tokio::sync::watch::Sender::new(false),
            signer: None,
            ids: SessionIds::default(),
        }
    }

    /// Orders the ids of new sessions after the newest one stored, so a restart within
    /// the same millisecond (or onto a clock that stepped back) keeps creation order.
    pub async fn resume_session_ids(&self) -> Result<(), SessionError> {
        if let Some(newest) = self.store.records_before(None, 1).await?.first() {
            self.ids.resume_after(session_id_of(newest)?);
        }
        Ok(())
    }

    /// Signs access tokens (for groups with `access_token_ttl`) with `signer`.
    pub fn with_signer(mut self, signer: Signer) -> SessionManager {
        self.signer = Some(signer);
        self
    }

    /// The public keys of the signer as a JWKS document (empty without a signer).
    pub async fn jwks(&self) -> serde_json::Value {
        match &self.signer {
            Some(signer) => signer.keys.jwks().await,
            None => serde_json::json!({ "keys": [] }),
        }
    }

    /// Signs new tokens with a new key from now on; returns its key id.
    pub async fn rotate_signing_key(&self) -> Result<String, SessionError> {
        let signer = self.signer.as_ref().ok_or_else(|| {
            SessionError::FailedPrecondition("this server signs no tokens".into())
        })?;
        let kid = signer.keys.rotate().await?;
        tracing::info!(kid, "signing key rotated");
        Ok(kid)
    }

    /// The store the manager works on.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    fn snapshot(&self, record: SessionRecord, now_ms: u64) -> Snapshot {
        let policy = self.policies.for_record(&record);
        let ends_at_ms = policy.ends_at_ms(&record);
        Snapshot {
            state: policy.state_at(&record, now_ms),
            end_reason: policy.end_reason_at(&record, now_ms),
            expires_in: Duration::from_millis(ends_at_ms.saturating_sub(now_ms)),
            cache_until_ms: ends_at_ms
                .min(now_ms.saturating_add(millis(self.settings.whoami_cache_max))),
            record,
        }
    }

    /// The record of session `id` for a check that `accepts` it. A copy from a cache
    /// that may lag other servers' changes (the Redis near cache) may pass the check but
    /// never fail it: one it fails (a token rotated elsewhere, a touch made elsewhere)
    /// is read again as stored.
    async fn read_checked(
        &self,
        id: SessionId,
        accepts: impl Fn(&SessionRecord) -> bool,
    ) -> Result<Option<SessionRecord>, SessionError> {
        match self.store.get(id).await? {
            Some(record) if accepts(&record) => Ok(Some(record)),
            _ => Ok(self.store.get_stored(id).await?),
        }
    }

    fn policy_of(&self, group: &str) -> Result<&GroupPolicy, SessionError> {
        self.policies.get(group).ok_or_else(|| {
            SessionError::invalid("group", format!("names no configured group ({group:?})"))
        })
    }

    fn state_of(&self, record: &SessionRecord, now_ms: u64) -> SessionState {
        self.policies.for_record(record).state_at(record, now_ms)
    }
}
