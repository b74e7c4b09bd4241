//! Applies the session rules over a `SessionStore`: every call reads, decides with the
//! rules of `policy`, and writes in one atomic store step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::access::GroupAccess;
use super::clock::{millis, Clock};
use super::policy::{GroupPolicy, Policies, SessionLimitAction, SessionState, DEFAULT_GROUP};
use super::token::{new_nonce, Secret, SecretHash, Token, TokenKind, RETIRED_DIGEST_LEN};
use super::SessionError;
use crate::metrics;
use crate::signing::KeyRing;
use crate::store::{
    Commit, Decision, Event, EventKind, SessionId, SessionRecord, SessionStore, StoredState,
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
}

impl Default for ManagerSettings {
    fn default() -> Self {
        ManagerSettings {
            touch_interval: Duration::from_secs(60),
            whoami_cache_max: Duration::from_secs(300),
            event_retention: Duration::from_secs(24 * 3600),
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

fn revoked(record: &SessionRecord) -> SessionRecord {
    let mut next = record.clone();
    next.set_state(StoredState::Revoked);
    close_grace(&mut next);
    next
}

/// Drops the sealed successor: its window closed, or the successor was used.
fn close_grace(record: &mut SessionRecord) {
    record.grace_until_ms = 0;
    record.sealed_successor.clear();
}

fn event(kind: EventKind, at_ms: u64) -> Event {
    Event { kind, at_ms }
}

fn new_session_id(now_ms: u64) -> SessionId {
    let nanos = u32::try_from((now_ms % 1000) * 1_000_000).unwrap_or(0);
    SessionId::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        now_ms / 1000,
        nanos,
    ))
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
        }
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

    /// Adds the access token (and the ID token when asked for) the group issues.
    fn with_jwts(&self, mut issued: Issued, id_token: bool, now_ms: u64) -> Issued {
        let record = &issued.session.record;
        let Some((signer, mut claims, access_token)) = self.signed_access_token(record, now_ms)
        else {
            return issued;
        };
        if id_token {
            claims["auth_time"] = serde_json::json!(record.authenticated_at_ms / 1000);
            claims["jti"] = serde_json::json!(uuid::Uuid::now_v7().to_string());
            issued.id_token = Some(signer.keys.sign(&claims));
        }
        issued.access_token = Some(access_token);
        issued
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
            expires_in: Duration::from_millis(ends_at_ms.saturating_sub(now_ms)),
            cache_until_ms: ends_at_ms
                .min(now_ms.saturating_add(millis(self.settings.whoami_cache_max))),
            record,
        }
    }

    fn policy_of(&self, group: &str) -> Result<&GroupPolicy, SessionError> {
        self.policies.get(group).ok_or_else(|| {
            SessionError::invalid("group", format!("names no configured group ({group:?})"))
        })
    }

    /// Opens a session: ACTIVE, with a fresh token pair.
    pub async fn start(
        &self,
        access: &GroupAccess,
        params: StartParams,
    ) -> Result<Issued, SessionError> {
        let group = params.group.unwrap_or_else(|| DEFAULT_GROUP.to_owned());
        access.check(&group)?;
        let policy = self.policy_of(&group)?;
        let ttl = params.ttl.unwrap_or(policy.lifespan);
        if ttl > policy.max_lifetime {
            return Err(SessionError::invalid(
                "ttl_seconds",
                format!(
                    "must be at most {} (the max_lifetime of group {group:?})",
                    policy.max_lifetime.as_secs()
                ),
            ));
        }
        let tokens = TokenPair::generate()?;
        let now = self.clock.now_ms();
        let max_expires_at_ms = now.saturating_add(millis(policy.max_lifetime));
        let record = SessionRecord {
            session_id: self
                .store
                .place_session_id(new_session_id(now), &params.user_id)
                .as_bytes()
                .to_vec(),
            user_id: params.user_id,
            group,
            state: StoredState::Active as i32,
            created_at_ms: now,
            authenticated_at_ms: now,
            last_access_at_ms: now,
            expires_at_ms: now.saturating_add(millis(ttl)).min(max_expires_at_ms),
            max_expires_at_ms,
            ttl_ms: millis(ttl),
            metadata: params.metadata,
            attributes: params.attributes,
            session_token_hash: tokens.session.hash().to_vec(),
            refresh_token_hash: tokens.refresh.hash().to_vec(),
            retired_refresh_digests: Vec::new(),
            grace_until_ms: 0,
            sealed_successor: Vec::new(),
            scope: params.scope,
            aal: String::new(),
            token_attributes: params.token_attributes,
            external_user_id: params.external_user_id,
        };
        let mut evicted = 0;
        let mut refused = false;
        match policy.max_sessions_per_user {
            None => self.store.insert(&record).await?,
            Some(max) => {
                let user_id = record.user_id.clone();
                self.store
                    .update_user(&user_id, &mut |existing| {
                        let mut active: Vec<&SessionRecord> = existing
                            .iter()
                            .filter(|r| self.state_of(r, now) == SessionState::Active)
                            .collect();
                        active.sort_by_key(|r| (r.created_at_ms, r.session_id.clone()));
                        let excess = (active.len() + 1).saturating_sub(max as usize);
                        refused =
                            excess > 0 && policy.on_session_limit == SessionLimitAction::Refuse;
                        if refused {
                            return Vec::new();
                        }
                        let mut puts: Vec<(SessionRecord, Event)> = active
                            .iter()
                            .take(excess)
                            .map(|r| (revoked(r), event(EventKind::Revoked, now)))
                            .collect();
                        evicted = puts.len();
                        puts.push((record.clone(), event(EventKind::Started, now)));
                        puts
                    })
                    .await?
            }
        }
        if refused {
            return Err(SessionError::ResourceExhausted(format!(
                "user already has the group's maximum of {} active sessions; end one first",
                policy.max_sessions_per_user.unwrap_or_default()
            )));
        }
        ::metrics::counter!(metrics::SESSIONS_STARTED).increment(1);
        count_revoked("evicted", evicted);
        let issued = tokens.issue(self.snapshot(record, now))?;
        Ok(self.with_jwts(issued, params.issue_id_token, now))
    }

    fn state_of(&self, record: &SessionRecord, now_ms: u64) -> SessionState {
        self.policies.for_record(record).state_at(record, now_ms)
    }

    /// Rotates both tokens. A refresh token that was already rotated away is theft:
    /// the session is revoked.
    /// With `expected_scope`, a session of another scope refuses the token like a bad
    /// one, and the token stays usable.
    pub async fn refresh(
        &self,
        access: &GroupAccess,
        token: Token,
        expected_scope: Option<&str>,
        issue_id_token: bool,
    ) -> Result<Issued, SessionError> {
        enum Outcome {
            Forbidden,
            Refused,
            Reused,
            Rotated,
            /// The just-rotated token again, inside its grace window: the same successor.
            Replayed(TokenPair),
        }
        let tokens = TokenPair::generate()?;
        let nonce = new_nonce()?;
        let presented = token.secret.hash();
        let now = self.clock.now_ms();
        let mut outcome = Outcome::Refused;
        let stored = self
            .store
            .update(token.session_id, Commit::Durable, &mut |record| {
                if expected_scope.is_some_and(|scope| scope != record.scope) {
                    outcome = Outcome::Refused;
                    return Decision::Keep;
                }
                let current = presented.matches(&record.refresh_token_hash);
                let replayed = (!current)
                    .then(|| self.replay(record, &token, &presented, now))
                    .flatten();
                let reused = !current
                    && replayed.is_none()
                    && record.state() == StoredState::Active
                    && presented.among(&record.retired_refresh_digests);
                // Only a caller that proved the token learns the group is out of reach:
                // a wrong secret answers like an unknown session, whatever its group.
                if (current || replayed.is_some() || reused) && !access.allows(&record.group) {
                    outcome = Outcome::Forbidden;
                    Decision::Keep
                } else if current {
                    if self.state_of(record, now) != SessionState::Active {
                        outcome = Outcome::Refused;
                        return Decision::Keep;
                    }
                    outcome = Outcome::Rotated;
                    let mut next = self.rotated(record, &tokens, now);
                    let grace = millis(self.policies.for_record(record).refresh_grace);
                    if grace > 0 {
                        next.grace_until_ms = now.saturating_add(grace);
                        next.sealed_successor = token.secret.seal_pair(
                            token.session_id,
                            (&tokens.session, &tokens.refresh),
                            nonce,
                        );
                    }
                    Decision::Put(Box::new(next), Some(event(EventKind::Refreshed, now)))
                } else if let Some(successor) = replayed {
                    outcome = Outcome::Replayed(successor);
                    Decision::Keep
                } else if reused {
                    outcome = Outcome::Reused;
                    Decision::Put(
                        Box::new(revoked(record)),
                        Some(event(EventKind::ReuseDetected, now)),
                    )
                } else {
                    outcome = Outcome::Refused;
                    Decision::Keep
                }
            })
            .await?;
        match (stored, outcome) {
            (Some(record), Outcome::Rotated) => {
                ::metrics::counter!(metrics::SESSIONS_REFRESHED).increment(1);
                let issued = tokens.issue(self.snapshot(record, now))?;
                Ok(self.with_jwts(issued, issue_id_token, now))
            }
            (Some(record), Outcome::Replayed(successor)) => {
                // The rotation that made this pair may still be on its way to disk.
                self.store.sync().await?;
                let issued = successor.issue(self.snapshot(record, now))?;
                Ok(self.with_jwts(issued, issue_id_token, now))
            }
            (Some(record), Outcome::Reused) => {
                ::metrics::counter!(metrics::REFRESH_REUSE).increment(1);
                count_revoked("reuse", 1);
                tracing::warn!(
                    session_id = %token.session_id,
                    user_id = %record.user_id,
                    "refresh token reuse detected: session revoked"
                );
                Err(SessionError::Unauthenticated)
            }
            (Some(record), Outcome::Forbidden) => Err(GroupAccess::denied(&record.group)),
            _ => Err(SessionError::Unauthenticated),
        }
    }

    /// The successor pair of the refresh token rotated away last, if `token` is that
    /// token, its grace window is open and the successor was not used yet.
    fn replay(
        &self,
        record: &SessionRecord,
        token: &Token,
        presented: &SecretHash,
        now_ms: u64,
    ) -> Option<TokenPair> {
        let last_retired = record
            .retired_refresh_digests
            .rchunks_exact(RETIRED_DIGEST_LEN)
            .next()?;
        if now_ms >= record.grace_until_ms
            || record.sealed_successor.is_empty()
            || !presented.among(last_retired)
            || self.state_of(record, now_ms) != SessionState::Active
        {
            return None;
        }
        let (session, refresh) = token
            .secret
            .unseal_pair(token.session_id, &record.sealed_successor)?;
        Some(TokenPair { session, refresh })
    }

    fn rotated(&self, record: &SessionRecord, tokens: &TokenPair, now_ms: u64) -> SessionRecord {
        let mut next = record.clone();
        let retiring = std::mem::take(&mut next.refresh_token_hash);
        let retired = &mut next.retired_refresh_digests;
        retired.extend(retiring.iter().take(RETIRED_DIGEST_LEN));
        let overflow = retired
            .len()
            .saturating_sub(RETIRED_REFRESH_SECRETS * RETIRED_DIGEST_LEN);
        retired.drain(..overflow);
        next.session_token_hash = tokens.session.hash().to_vec();
        next.refresh_token_hash = tokens.refresh.hash().to_vec();
        next.token_attributes.clear();
        next.last_access_at_ms = now_ms;
        next.expires_at_ms = record
            .expires_at_ms
            .max(GroupPolicy::refreshed_expiry(record, now_ms));
        next
    }

    /// Validates a session token; touches `last_access_at` at most once per interval.
    pub async fn whoami(
        &self,
        access: &GroupAccess,
        token: Token,
    ) -> Result<Snapshot, SessionError> {
        let presented = token.secret.hash();
        let now = self.clock.now_ms();
        let record = self
            .store
            .get(token.session_id)
            .await?
            .filter(|record| self.authentic(record, &presented, now))
            .ok_or(SessionError::Unauthenticated)?;
        access.check(&record.group)?;
        let touch_after = millis(self.touch_interval_for(self.policies.for_record(&record)));
        let stale =
            |record: &SessionRecord| now.saturating_sub(record.last_access_at_ms) >= touch_after;
        // Using the successor closes the grace window of the token it replaced.
        let needs_write =
            |record: &SessionRecord| stale(record) || !record.sealed_successor.is_empty();
        if !needs_write(&record) {
            return Ok(self.snapshot(record, now));
        }
        // Closing a grace window must survive a crash (else the old refresh token could
        // replay again); a plain touch need not.
        let commit = if record.sealed_successor.is_empty() {
            Commit::Lazy
        } else {
            Commit::Durable
        };
        let touched = self
            .store
            .update(token.session_id, commit, &mut |record| {
                if !self.authentic(record, &presented, now) || !needs_write(record) {
                    return Decision::Keep;
                }
                let mut next = record.clone();
                if stale(record) {
                    next.last_access_at_ms = now;
                }
                close_grace(&mut next);
                Decision::Put(Box::new(next), None)
            })
            .await?
            .filter(|record| self.authentic(record, &presented, now))
            .ok_or(SessionError::Unauthenticated)?;
        Ok(self.snapshot(touched, now))
    }

    /// Whether `presented` is the session token of this record and the session is valid.
    fn authentic(&self, record: &SessionRecord, presented: &SecretHash, now_ms: u64) -> bool {
        presented.matches(&record.session_token_hash)
            && self.state_of(record, now_ms) == SessionState::Active
    }

    fn touch_interval_for(&self, policy: &GroupPolicy) -> Duration {
        match policy.idle_timeout {
            Some(idle) => self.settings.touch_interval.min(idle / 2),
            None => self.settings.touch_interval,
        }
    }

    /// Pushes one session's expiry out, within its group's window and cap.
    pub async fn extend(
        &self,
        access: &GroupAccess,
        session_id: SessionId,
        keep_alive: Option<Duration>,
    ) -> Result<Extension, SessionError> {
        let now = self.clock.now_ms();
        let mut refusal = None;
        let mut extended = false;
        let stored = self
            .store
            .update(session_id, Commit::Durable, &mut |record| {
                let policy = self.policies.for_record(record);
                refusal = access
                    .check(&record.group)
                    .err()
                    .or_else(|| self.extension_refusal(record, policy, keep_alive, now));
                let expiry = match refusal {
                    None => policy.extended_expiry(record, now, keep_alive),
                    Some(_) => None,
                };
                extended = expiry.is_some();
                match expiry {
                    Some(expires_at_ms) => {
                        let mut next = record.clone();
                        next.expires_at_ms = expires_at_ms;
                        Decision::Put(Box::new(next), Some(event(EventKind::Extended, now)))
                    }
                    None => Decision::Keep,
                }
            })
            .await?
            .ok_or_else(|| SessionError::NotFound(format!("no session with id {session_id}")))?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        if extended {
            ::metrics::counter!(metrics::SESSIONS_EXTENDED).increment(1);
        }
        Ok(Extension {
            session: self.snapshot(stored, now),
            extended,
        })
    }

    /// Why Extend may not touch this session, if it may not.
    fn extension_refusal(
        &self,
        record: &SessionRecord,
        policy: &GroupPolicy,
        keep_alive: Option<Duration>,
        now_ms: u64,
    ) -> Option<SessionError> {
        let state = policy.state_at(record, now_ms);
        if state != SessionState::Active {
            let state = if state == SessionState::Revoked {
                "revoked"
            } else {
                "expired"
            };
            return Some(SessionError::FailedPrecondition(format!(
                "session is {state}; only an active session can be extended"
            )));
        }
        match keep_alive {
            Some(keep_alive) if keep_alive > policy.max_lifetime => Some(SessionError::invalid(
                "keep_alive_seconds",
                format!(
                    "must be at most {} (the max_lifetime of group {:?})",
                    policy.max_lifetime.as_secs(),
                    record.group
                ),
            )),
            _ => None,
        }
    }

    /// Ends one session, or every active session of its user; returns how many it ended.
    /// With `all_for_user`, the session `except` (if any) stays active.
    pub async fn logout(
        &self,
        access: &GroupAccess,
        target: LogoutTarget,
        all_for_user: bool,
        except: Option<SessionId>,
    ) -> Result<u32, SessionError> {
        let now = self.clock.now_ms();
        let is_token = matches!(target, LogoutTarget::Token(_));
        let (session_id, record) = match target {
            LogoutTarget::Token(token) => {
                let presented = token.secret.hash();
                let record = self
                    .store
                    .get(token.session_id)
                    .await?
                    .filter(|record| presented.matches(&record.session_token_hash))
                    .ok_or(SessionError::Unauthenticated)?;
                (token.session_id, record)
            }
            LogoutTarget::Id(id) => {
                let record =
                    self.store.get(id).await?.ok_or_else(|| {
                        SessionError::NotFound(format!("no session with id {id}"))
                    })?;
                (id, record)
            }
        };
        access.check(&record.group)?;
        if all_for_user {
            // An ended session's token still proves nothing about the user now.
            if is_token && self.state_of(&record, now) != SessionState::Active {
                return Err(SessionError::Unauthenticated);
            }
            return self.revoke_all(access, &record.user_id, except, now).await;
        }
        let mut count = 0;
        self.store
            .update(session_id, Commit::Durable, &mut |record| {
                if self.state_of(record, now) == SessionState::Active {
                    count = 1;
                    Decision::Put(
                        Box::new(revoked(record)),
                        Some(event(EventKind::Revoked, now)),
                    )
                } else {
                    count = 0;
                    Decision::Keep
                }
            })
            .await?;
        count_revoked("logout", count as usize);
        Ok(count)
    }

    async fn revoke_all(
        &self,
        access: &GroupAccess,
        user_id: &str,
        except: Option<SessionId>,
        now_ms: u64,
    ) -> Result<u32, SessionError> {
        let except = except.map(|id| id.as_bytes().to_vec());
        let mut count = 0;
        self.store
            .update_user(user_id, &mut |records| {
                let ended: Vec<(SessionRecord, Event)> = records
                    .iter()
                    .filter(|record| self.state_of(record, now_ms) == SessionState::Active)
                    .filter(|record| except.as_ref() != Some(&record.session_id))
                    .filter(|record| access.allows(&record.group))
                    .map(|record| (revoked(record), event(EventKind::Revoked, now_ms)))
                    .collect();
                count = u32::try_from(ended.len()).unwrap_or(u32::MAX);
                ended
            })
            .await?;
        count_revoked("logout", count as usize);
        Ok(count)
    }

    /// Extends every active session of a user by the rules of Extend; returns the
    /// sessions it extended.
    pub async fn refresh_all_for_user(
        &self,
        access: &GroupAccess,
        user_id: &str,
        keep_alive: Option<Duration>,
    ) -> Result<Vec<Snapshot>, SessionError> {
        let now = self.clock.now_ms();
        let mut active = 0;
        let mut refusal = None;
        let mut extended = Vec::new();
        self.store
            .update_user(user_id, &mut |records| {
                active = 0;
                refusal = None;
                let mut puts = Vec::new();
                for record in records {
                    let policy = self.policies.for_record(record);
                    if policy.state_at(record, now) != SessionState::Active
                        || !access.allows(&record.group)
                    {
                        continue;
                    }
                    active += 1;
                    if let Some(problem) = self.extension_refusal(record, policy, keep_alive, now) {
                        refusal = Some(problem);
                        return Vec::new();
                    }
                    if let Some(expires_at_ms) = policy.extended_expiry(record, now, keep_alive) {
                        let mut next = record.clone();
                        next.expires_at_ms = expires_at_ms;
                        puts.push((next, event(EventKind::Extended, now)));
                    }
                }
                extended = puts.iter().map(|(record, _)| record.clone()).collect();
                puts
            })
            .await?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        if active == 0 {
            return Err(SessionError::NotFound(format!(
                "user {user_id:?} has no active session"
            )));
        }
        ::metrics::counter!(metrics::SESSIONS_EXTENDED).increment(extended.len() as u64);
        Ok(extended
            .into_iter()
            .map(|record| self.snapshot(record, now))
            .collect())
    }

    /// Our user id of `user`; NOT_FOUND for an external id no session was started with.
    pub async fn resolve_user(&self, user: UserRef) -> Result<String, SessionError> {
        match user {
            UserRef::Id(user_id) => Ok(user_id),
            UserRef::External(external) => self
                .store
                .user_of_external(&external)
                .await?
                .ok_or_else(|| {
                    SessionError::NotFound(format!(
                        "no session was started for external user {external:?}"
                    ))
                }),
        }
    }

    /// Ends every active session of a user (admin form of Logout with all_for_user).
    pub async fn logout_user(
        &self,
        access: &GroupAccess,
        user: UserRef,
    ) -> Result<u32, SessionError> {
        let user_id = self.resolve_user(user).await?;
        self.revoke_all(access, &user_id, None, self.clock.now_ms())
            .await
    }

    /// The user proved themselves again: `authenticated_at` is now, the absolute cap
    /// restarts from it, the expiry is renewed by the group lifespan, `aal` recorded.
    pub async fn reauthenticate(
        &self,
        access: &GroupAccess,
        target: LogoutTarget,
        aal: String,
    ) -> Result<Snapshot, SessionError> {
        let now = self.clock.now_ms();
        let (session_id, by_token) = match &target {
            LogoutTarget::Token(token) => (token.session_id, Some(token.secret.hash())),
            LogoutTarget::Id(id) => (*id, None),
        };
        let mut refusal = None;
        let stored = self
            .store
            .update(session_id, Commit::Durable, &mut |record| {
                refusal = self.reauthentication_refusal(access, record, by_token.as_ref(), now);
                if refusal.is_some() {
                    return Decision::Keep;
                }
                let policy = self.policies.for_record(record);
                let mut next = record.clone();
                next.authenticated_at_ms = now;
                next.last_access_at_ms = now;
                next.max_expires_at_ms = now.saturating_add(millis(policy.max_lifetime));
                next.expires_at_ms = now
                    .saturating_add(millis(policy.lifespan))
                    .max(record.expires_at_ms)
                    .min(next.max_expires_at_ms);
                next.aal = aal.clone();
                Decision::Put(Box::new(next), Some(event(EventKind::Extended, now)))
            })
            .await?;
        let Some(record) = stored else {
            return Err(match by_token {
                Some(_) => SessionError::Unauthenticated,
                None => SessionError::NotFound(format!("no session with id {session_id}")),
            });
        };
        match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(self.snapshot(record, now)),
        }
    }

    fn reauthentication_refusal(
        &self,
        access: &GroupAccess,
        record: &SessionRecord,
        by_token: Option<&SecretHash>,
        now_ms: u64,
    ) -> Option<SessionError> {
        let active = self.state_of(record, now_ms) == SessionState::Active;
        match by_token {
            Some(presented) if !presented.matches(&record.session_token_hash) || !active => {
                Some(SessionError::Unauthenticated)
            }
            _ if !access.allows(&record.group) => Some(GroupAccess::denied(&record.group)),
            None if !active => Some(SessionError::FailedPrecondition(
                "only an active session can be re-authenticated".into(),
            )),
            _ => None,
        }
    }

    /// Changes a session's attributes and token attributes; `fits` checks the result
    /// against the size limits.
    pub async fn update_attributes(
        &self,
        access: &GroupAccess,
        session_id: SessionId,
        changes: AttributeChanges,
        fits: &(dyn Fn(&SessionRecord) -> Result<(), SessionError> + Sync),
    ) -> Result<Snapshot, SessionError> {
        let now = self.clock.now_ms();
        let mut refusal = None;
        let stored = self
            .store
            .update(session_id, Commit::Durable, &mut |record| {
                refusal = access.check(&record.group).err().or_else(|| {
                    (self.state_of(record, now) != SessionState::Active).then(|| {
                        SessionError::FailedPrecondition(
                            "only an active session's attributes can change".into(),
                        )
                    })
                });
                if refusal.is_some() {
                    return Decision::Keep;
                }
                let mut next = record.clone();
                for key in &changes.remove {
                    next.attributes.remove(key);
                }
                next.attributes.extend(changes.set.clone());
                for key in &changes.token_remove {
                    next.token_attributes.remove(key);
                }
                next.token_attributes.extend(changes.token_set.clone());
                refusal = fits(&next).err();
                match refusal {
                    Some(_) => Decision::Keep,
                    None => Decision::Put(Box::new(next), None),
                }
            })
            .await?
            .ok_or_else(|| SessionError::NotFound(format!("no session with id {session_id}")))?;
        match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(self.snapshot(stored, now)),
        }
    }

    /// A page of a user's sessions, newest first, starting before `before`; only the
    /// active ones unless `include_inactive`.
    pub async fn list_user_sessions(
        &self,
        access: &GroupAccess,
        user_id: &str,
        page_size: usize,
        before: Option<SessionId>,
        include_inactive: bool,
    ) -> Result<SessionPage, SessionError> {
        let now = self.clock.now_ms();
        let mut sessions = Vec::new();
        let mut cursor = before;
        loop {
            let batch = self.store.list_user(user_id, cursor, page_size).await?;
            let exhausted = batch.len() < page_size;
            let mut batch = batch.into_iter().peekable();
            while let Some(record) = batch.next() {
                cursor = Some(session_id_of(&record)?);
                if !access.allows(&record.group) {
                    continue;
                }
                let session = self.snapshot(record, now);
                if include_inactive || session.state == SessionState::Active {
                    sessions.push(session);
                }
                if sessions.len() == page_size {
                    let more = batch.peek().is_some() || !exhausted;
                    return Ok(SessionPage {
                        sessions,
                        next: cursor.filter(|_| more),
                    });
                }
            }
            if exhausted {
                return Ok(SessionPage {
                    sessions,
                    next: None,
                });
            }
        }
    }

    /// Deletes sessions expired by now, drops sealed successors whose grace window
    /// closed and events past retention, `batch` per store step, until none is left.
    /// Returns how many sessions it deleted.
    pub async fn sweep(&self, batch: usize) -> Result<usize, SessionError> {
        let now = self.clock.now_ms();
        loop {
            let closed = self.store.grace_closed(now, batch).await?;
            for id in &closed {
                self.store
                    .update(*id, Commit::Lazy, &mut |record| {
                        if record.grace_until_ms > 0 && record.grace_until_ms <= now {
                            let mut next = record.clone();
                            close_grace(&mut next);
                            Decision::Put(Box::new(next), None)
                        } else {
                            Decision::Keep
                        }
                    })
                    .await?;
            }
            if closed.len() < batch {
                break;
            }
        }
        let horizon = now.saturating_sub(millis(self.settings.event_retention));
        while self.store.prune_events(horizon, batch).await? == batch {
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
        let mut total = 0;
        loop {
            let removed = self.store.remove_expired(now, batch).await?;
            total += removed;
            if removed < batch {
                ::metrics::counter!(metrics::SWEEPER_RUNS).increment(1);
                ::metrics::histogram!(metrics::SWEEPER_BATCH).record(total as f64);
                ::metrics::counter!(metrics::SESSIONS_EXPIRED).increment(total as u64);
                return Ok(total);
            }
            // A batch holds sled's commit lock, which reads wait for: a pause between
            // batches keeps Whoami's tail latency flat while a mass expiry is swept.
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
    }
}
