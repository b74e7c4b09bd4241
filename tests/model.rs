//! Model check of the session rules over the sled store: random sequences of every call
//! and of clock moves run against `SessionManager` and against a small in-memory model
//! written from docs/behaviour.md and docs/api.md ("Refresh that clients can trust") and
//! `session::policy`; every answer and the final state must agree.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use sessiond::clock::ManualClock;
use sessiond::session::manager::{LogoutTarget, ManagerSettings, Snapshot, StartParams};
use sessiond::session::policy::{GroupPolicy, Policies, SessionLimitAction, SessionState};
use sessiond::session::token::{Token, TokenKind};
use sessiond::session::{Acting, SessionError, SessionManager};
use sessiond::store::sled::SledStore;
use sessiond::store::{Durability, SessionId};

const SECOND_MS: u64 = 1000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;

/// 2026-01-01T00:00:00Z.
const START_MS: u64 = 1_767_225_600_000;

/// Whoami persists last_access_at at most this often.
const TOUCH_MS: u64 = MINUTE_MS;

/// Sessions deleted per store step by Sweep: small, so sweeps take several steps.
const SWEEP_BATCH: usize = 2;

const USERS: [&str; 3] = ["u0", "u1", "u2"];

/// The groups under test, by name.
const GROUPS: [&str; 3] = ["default", "two", "refuse"];

/// A group's rules in milliseconds, as the model reads them.
#[derive(Clone, Copy, Debug)]
struct Rules {
    lifespan: u64,
    max_lifetime: u64,
    idle: Option<u64>,
    /// Extend works with at most this much left.
    window: u64,
    max_sessions: Option<usize>,
    refuse_over_limit: bool,
    /// A just-rotated refresh token presented again within this gets the same
    /// successor pair (0: never).
    grace: u64,
}

/// All: 1h lifespan, 3h cap.
/// `default`: 30m idle timeout, extend in the last 30m, 30s refresh grace.
/// `two`: at most two active sessions per user, the oldest evicted; no refresh grace.
/// `refuse`: at most two active sessions per user, a third refused; 10m refresh grace.
fn rules(group: &str) -> Rules {
    let base = Rules {
        lifespan: HOUR_MS,
        max_lifetime: 3 * HOUR_MS,
        idle: None,
        window: HOUR_MS,
        max_sessions: None,
        refuse_over_limit: false,
        grace: 0,
    };
    match group {
        "two" => Rules {
            max_sessions: Some(2),
            ..base
        },
        "refuse" => Rules {
            max_sessions: Some(2),
            refuse_over_limit: true,
            grace: 10 * MINUTE_MS,
            ..base
        },
        _ => Rules {
            idle: Some(30 * MINUTE_MS),
            window: 30 * MINUTE_MS,
            grace: 30 * SECOND_MS,
            ..base
        },
    }
}

fn policies() -> Policies {
    let groups = GROUPS
        .iter()
        .map(|&name| {
            let r = rules(name);
            let policy = GroupPolicy {
                lifespan: Duration::from_millis(r.lifespan),
                max_lifetime: Duration::from_millis(r.max_lifetime),
                idle_timeout: r.idle.map(Duration::from_millis),
                earliest_possible_extend: (r.window != r.lifespan)
                    .then(|| Duration::from_millis(r.window)),
                max_sessions_per_user: r.max_sessions.map(|n| n as u32),
                on_session_limit: if r.refuse_over_limit {
                    SessionLimitAction::Refuse
                } else {
                    SessionLimitAction::EvictOldest
                },
                refresh_grace: Duration::from_millis(r.grace),
                ..GroupPolicy::default()
            };
            (name.to_owned(), policy)
        })
        .collect();
    Policies::new(groups)
}

/// One step of a run. Indexes pick among the tokens or sessions issued so far.
#[derive(Clone, Debug)]
enum Op {
    Start {
        user: usize,
        group: usize,
        ttl_s: Option<u64>,
    },
    Whoami {
        token: Index,
    },
    Refresh {
        token: Index,
    },
    Extend {
        session: Index,
        keep_alive_s: Option<u64>,
    },
    Logout {
        by_token: bool,
        target: Index,
        all_for_user: bool,
        except: Option<Index>,
    },
    RefreshAll {
        user: usize,
        keep_alive_s: Option<u64>,
    },
    List {
        user: usize,
        include_inactive: bool,
        page_size: usize,
    },
    Advance {
        secs: u64,
    },
    Sweep,
}

/// Lifetimes in seconds, with the edges of the rules above likely.
fn lifetime_s() -> impl Strategy<Value = u64> {
    prop_oneof![
        prop::sample::select(vec![
            1, 60, 1799, 1800, 1801, 3599, 3600, 3601, 7200, 10799, 10800, 10801
        ]),
        1u64..15_000,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS.len(), 0..GROUPS.len(), prop::option::of(lifetime_s()))
            .prop_map(|(user, group, ttl_s)| Op::Start { user, group, ttl_s }),
        3 => any::<Index>().prop_map(|token| Op::Whoami { token }),
        3 => any::<Index>().prop_map(|token| Op::Refresh { token }),
        2 => (any::<Index>(), prop::option::of(lifetime_s()))
            .prop_map(|(session, keep_alive_s)| Op::Extend { session, keep_alive_s }),
        2 => (any::<bool>(), any::<Index>(), any::<bool>(), prop::option::of(any::<Index>()))
            .prop_map(|(by_token, target, all_for_user, except)| Op::Logout {
                by_token,
                target,
                all_for_user,
                except,
            }),
        1 => (0..USERS.len(), prop::option::of(lifetime_s()))
            .prop_map(|(user, keep_alive_s)| Op::RefreshAll { user, keep_alive_s }),
        1 => (0..USERS.len(), any::<bool>(), 1usize..4).prop_map(
            |(user, include_inactive, page_size)| Op::List {
                user,
                include_inactive,
                page_size,
            }
        ),
        3 => prop_oneof![
            prop::sample::select(vec![0, 1, 30, 59, 60, 61, 600, 1799, 1800, 1801, 3600, 7200]),
            0u64..7200,
        ]
        .prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Sweep),
    ]
}

/// What a caller sees of a session: every field the rules decide.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    id: SessionId,
    user: String,
    group: String,
    state: SessionState,
    created_ms: u64,
    last_access_ms: u64,
    expires_ms: u64,
    max_expires_ms: u64,
    ttl_ms: u64,
    expires_in_ms: u64,
}

impl From<&Snapshot> for View {
    fn from(snapshot: &Snapshot) -> View {
        let r = &snapshot.record;
        View {
            id: SessionId::from_slice(&r.session_id).expect("16-byte id"),
            user: r.user_id.clone(),
            group: r.group.clone(),
            state: snapshot.state,
            created_ms: r.created_at_ms,
            last_access_ms: r.last_access_at_ms,
            expires_ms: r.expires_at_ms,
            max_expires_ms: r.max_expires_at_ms,
            ttl_ms: r.ttl_ms,
            expires_in_ms: u64::try_from(snapshot.expires_in.as_millis()).expect("fits"),
        }
    }
}

/// How a call failed, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failure {
    InvalidArgument,
    Unauthenticated,
    NotFound,
    FailedPrecondition,
    ResourceExhausted,
    Other(String),
}

impl From<SessionError> for Failure {
    fn from(error: SessionError) -> Failure {
        match error {
            SessionError::InvalidArgument { .. } => Failure::InvalidArgument,
            SessionError::Unauthenticated => Failure::Unauthenticated,
            SessionError::NotFound(_) => Failure::NotFound,
            SessionError::FailedPrecondition(_) => Failure::FailedPrecondition,
            SessionError::ResourceExhausted(_) => Failure::ResourceExhausted,
            other => Failure::Other(other.to_string()),
        }
    }
}

/// The answer to one step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// Start or Refresh: the session, and the tokens when the model knows them (a
    /// replay within the grace window); new random tokens are adopted by the model.
    Issued(View, Option<(String, String)>),
    /// Whoami.
    Session(View),
    Extended(View, bool),
    Count(u64),
    Sessions(Vec<View>),
    Failed(Failure),
    /// A step with nothing to aim at (no token issued yet), or a clock move.
    Nothing,
}

/// A session as the model keeps it.
#[derive(Clone, Debug)]
struct ModelSession {
    id: SessionId,
    user: String,
    group: String,
    revoked: bool,
    created_ms: u64,
    last_access_ms: u64,
    expires_ms: u64,
    max_expires_ms: u64,
    ttl_ms: u64,
    session_token: String,
    refresh_token: String,
    /// Refresh tokens rotated away: presenting one again is reuse.
    retired: Vec<String>,
    /// The open grace window of the last rotation: until when, and the successor pair
    /// its rotated-away token gets again. Closed when the successor is used.
    grace: Option<(u64, String, String)>,
}

/// The rules, over a map of stored sessions and a clock.
struct Model {
    now: u64,
    sessions: BTreeMap<SessionId, ModelSession>,
}

impl Model {
    fn rules_of(s: &ModelSession) -> Rules {
        rules(&s.group)
    }

    /// When a session ends unless something happens: expiry or idle deadline.
    fn ends_at(s: &ModelSession) -> u64 {
        match Self::rules_of(s).idle {
            Some(idle) => s.expires_ms.min(s.last_access_ms + idle),
            None => s.expires_ms,
        }
    }

    fn state(&self, s: &ModelSession) -> SessionState {
        if s.revoked {
            SessionState::Revoked
        } else if self.now >= Self::ends_at(s) {
            SessionState::Expired
        } else {
            SessionState::Active
        }
    }

    fn active(&self, s: &ModelSession) -> bool {
        self.state(s) == SessionState::Active
    }

    fn view(&self, s: &ModelSession) -> View {
        View {
            id: s.id,
            user: s.user.clone(),
            group: s.group.clone(),
            state: self.state(s),
            created_ms: s.created_ms,
            last_access_ms: s.last_access_ms,
            expires_ms: s.expires_ms,
            max_expires_ms: s.max_expires_ms,
            ttl_ms: s.ttl_ms,
            expires_in_ms: Self::ends_at(s).saturating_sub(self.now),
        }
    }

    fn of_user<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a ModelSession> + 'a {
        self.sessions.values().filter(move |s| s.user == user)
    }

    /// Start; `issued` is what the server issued (its id and tokens), if it did.
    fn start(
        &mut self,
        user: &str,
        group: &str,
        ttl: Option<u64>,
        issued: Option<(SessionId, String, String)>,
    ) -> Answer {
        let r = rules(group);
        let ttl = ttl.unwrap_or(r.lifespan);
        if ttl > r.max_lifetime {
            return Answer::Failed(Failure::InvalidArgument);
        }
        if let Some(max) = r.max_sessions {
            let mut active: Vec<(u64, SessionId)> = self
                .of_user(user)
                .filter(|s| self.active(s))
                .map(|s| (s.created_ms, s.id))
                .collect();
            active.sort();
            let excess = (active.len() + 1).saturating_sub(max);
            if excess > 0 && r.refuse_over_limit {
                return Answer::Failed(Failure::ResourceExhausted);
            }
            for (_, id) in active.into_iter().take(excess) {
                self.sessions.get_mut(&id).expect("stored").revoked = true;
            }
        }
        let (id, session_token, refresh_token) =
            issued.unwrap_or_else(|| (SessionId::nil(), String::new(), String::new()));
        let max_expires_ms = self.now + r.max_lifetime;
        let session = ModelSession {
            id,
            user: user.to_owned(),
            group: group.to_owned(),
            revoked: false,
            created_ms: self.now,
            last_access_ms: self.now,
            expires_ms: (self.now + ttl).min(max_expires_ms),
            max_expires_ms,
            ttl_ms: ttl,
            session_token,
            refresh_token,
            retired: Vec::new(),
            grace: None,
        };
        let view = self.view(&session);
        self.sessions.insert(id, session);
        Answer::Issued(view, None)
    }

    fn whoami(&mut self, id: SessionId, token: &str) -> Answer {
        let now = self.now;
        let Some(s) = self.sessions.get(&id) else {
            return Answer::Failed(Failure::Unauthenticated);
        };
        if s.session_token != token || !self.active(s) {
            return Answer::Failed(Failure::Unauthenticated);
        }
        let touch_after = match Self::rules_of(s).idle {
            Some(idle) => TOUCH_MS.min(idle / 2),
            None => TOUCH_MS,
        };
        let s = self.sessions.get_mut(&id).expect("stored");
        if now - s.last_access_ms >= touch_after {
            s.last_access_ms = now;
        }
        // Using the successor closes the grace window of the token it replaced.
        s.grace = None;
        let s = &self.sessions[&id];
        Answer::Session(self.view(s))
    }

    /// Refresh; `issued` is the pair the server issued, if it did.
    fn refresh(&mut self, id: SessionId, token: &str, issued: Option<(String, String)>) -> Answer {
        let now = self.now;
        let Some(s) = self.sessions.get(&id) else {
            return Answer::Failed(Failure::Unauthenticated);
        };
        let active = self.active(s);
        let grace = Self::rules_of(s).grace;
        let s = self.sessions.get_mut(&id).expect("stored");
        if s.refresh_token == token {
            if !active {
                return Answer::Failed(Failure::Unauthenticated);
            }
            let (session_token, refresh_token) = issued.unwrap_or_default();
            let retiring = std::mem::replace(&mut s.refresh_token, refresh_token.clone());
            s.retired.push(retiring);
            s.session_token = session_token.clone();
            s.last_access_ms = now;
            s.expires_ms = s.expires_ms.max((now + s.ttl_ms).min(s.max_expires_ms));
            s.grace = (grace > 0).then(|| (now + grace, session_token, refresh_token));
            let s = &self.sessions[&id];
            return Answer::Issued(self.view(s), None);
        }
        let just_rotated = s.retired.last().is_some_and(|t| t == token);
        if let Some((until, session_token, refresh_token)) = s.grace.clone() {
            if just_rotated && now < until && active {
                let s = &self.sessions[&id];
                return Answer::Issued(self.view(s), Some((session_token, refresh_token)));
            }
        }
        if !s.revoked && s.retired.iter().any(|t| t == token) {
            s.revoked = true;
            s.grace = None;
        }
        Answer::Failed(Failure::Unauthenticated)
    }

    /// The expiry Extend gives, if it moves.
    fn extended_expiry(&self, s: &ModelSession, keep_alive: Option<u64>) -> Option<u64> {
        let r = Self::rules_of(s);
        if s.expires_ms.saturating_sub(self.now) > r.window {
            return None;
        }
        let expiry = (self.now + keep_alive.unwrap_or(r.lifespan)).min(s.max_expires_ms);
        // Extend never shortens a session.
        (expiry > s.expires_ms).then_some(expiry)
    }

    fn extend(&mut self, id: SessionId, keep_alive: Option<u64>) -> Answer {
        let Some(s) = self.sessions.get(&id) else {
            return Answer::Failed(Failure::NotFound);
        };
        if !self.active(s) {
            return Answer::Failed(Failure::FailedPrecondition);
        }
        if keep_alive.is_some_and(|k| k > Self::rules_of(s).max_lifetime) {
            return Answer::Failed(Failure::InvalidArgument);
        }
        let expiry = self.extended_expiry(s, keep_alive);
        let s = self.sessions.get_mut(&id).expect("stored");
        if let Some(expiry) = expiry {
            s.expires_ms = expiry;
        }
        let s = &self.sessions[&id];
        Answer::Extended(self.view(s), expiry.is_some())
    }

    fn logout(
        &mut self,
        target: Result<(SessionId, &str), SessionId>,
        all_for_user: bool,
        except: Option<SessionId>,
    ) -> Answer {
        let (id, by_token) = match target {
            Ok((id, token)) => match self.sessions.get(&id) {
                Some(s) if s.session_token == token => (id, true),
                _ => return Answer::Failed(Failure::Unauthenticated),
            },
            Err(id) => match self.sessions.get(&id) {
                Some(_) => (id, false),
                None => return Answer::Failed(Failure::NotFound),
            },
        };
        let s = &self.sessions[&id];
        if !all_for_user {
            let active = self.active(s);
            if active {
                self.sessions.get_mut(&id).expect("stored").revoked = true;
            }
            return Answer::Count(u64::from(active));
        }
        if by_token && !self.active(s) {
            return Answer::Failed(Failure::Unauthenticated);
        }
        let user = s.user.clone();
        let ending: Vec<SessionId> = self
            .of_user(&user)
            .filter(|s| self.active(s) && Some(s.id) != except)
            .map(|s| s.id)
            .collect();
        for id in &ending {
            self.sessions.get_mut(id).expect("stored").revoked = true;
        }
        Answer::Count(ending.len() as u64)
    }

    fn refresh_all(&mut self, user: &str, keep_alive: Option<u64>) -> Answer {
        let active: Vec<SessionId> = self
            .of_user(user)
            .filter(|s| self.active(s))
            .map(|s| s.id)
            .collect();
        if active.is_empty() {
            return Answer::Failed(Failure::NotFound);
        }
        let mut extended = Vec::new();
        for id in &active {
            let s = &self.sessions[id];
            if keep_alive.is_some_and(|k| k > Self::rules_of(s).max_lifetime) {
                return Answer::Failed(Failure::InvalidArgument);
            }
            if let Some(expiry) = self.extended_expiry(s, keep_alive) {
                extended.push((*id, expiry));
            }
        }
        let mut views = Vec::new();
        for (id, expiry) in extended {
            self.sessions.get_mut(&id).expect("stored").expires_ms = expiry;
            views.push(self.view(&self.sessions[&id]));
        }
        Answer::Sessions(views)
    }

    /// A user's sessions, newest (highest id) first.
    fn list(&self, user: &str, include_inactive: bool) -> Vec<View> {
        let mut views: Vec<View> = self
            .of_user(user)
            .filter(|s| include_inactive || self.active(s))
            .map(|s| self.view(s))
            .collect();
        views.sort_by_key(|view| std::cmp::Reverse(view.id));
        views
    }

    fn sweep(&mut self) -> Answer {
        let now = self.now;
        let before = self.sessions.len();
        self.sessions.retain(|_, s| s.expires_ms > now);
        Answer::Count((before - self.sessions.len()) as u64)
    }
}

/// The system under test: the rules over a sled store in a temp dir, on a manual clock.
struct System {
    manager: SessionManager,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl System {
    fn new() -> System {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), Durability::Periodic).expect("open sled");
        let clock = Arc::new(ManualClock::new(START_MS));
        let manager = SessionManager::new(
            Arc::new(store),
            policies(),
            clock.clone(),
            ManagerSettings {
                touch_interval: Duration::from_millis(TOUCH_MS),
                ..ManagerSettings::default()
            },
        );
        System {
            manager,
            clock,
            _dir: dir,
        }
    }

    async fn list(&self, user: &str, include_inactive: bool, page_size: usize) -> Vec<View> {
        let mut views = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .manager
                .list_user_sessions(Acting::ANONYMOUS, user, page_size, before, include_inactive)
                .await
                .expect("list succeeds");
            assert!(page.sessions.len() <= page_size, "page over its size");
            views.extend(page.sessions.iter().map(View::from));
            match page.next {
                Some(next) => before = Some(next),
                None => return views,
            }
        }
    }
}

/// Tokens and sessions issued so far, for the steps to aim at.
#[derive(Default)]
struct Issued {
    session_tokens: Vec<(SessionId, String)>,
    refresh_tokens: Vec<(SessionId, String)>,
    sessions: Vec<SessionId>,
}

fn secs(n: Option<u64>) -> Option<Duration> {
    n.map(Duration::from_secs)
}

fn ms(n: Option<u64>) -> Option<u64> {
    n.map(|s| s * SECOND_MS)
}

fn parse(kind: TokenKind, text: &str) -> Token {
    Token::parse(kind, text).expect("the server's own token parses")
}

/// Runs one step on the system and the model; returns both answers.
async fn step(
    system: &System,
    model: &mut Model,
    issued: &mut Issued,
    op: &Op,
) -> (Answer, Answer) {
    let access = Acting::ANONYMOUS;
    let m = &system.manager;
    match op {
        Op::Start { user, group, ttl_s } => {
            let params = StartParams {
                user_id: USERS[*user].to_owned(),
                group: Some(GROUPS[*group].to_owned()),
                ttl: secs(*ttl_s),
                ..Default::default()
            };
            match m.start(access, params).await {
                Ok(new) => {
                    let view = View::from(&new.session);
                    issued.sessions.push(view.id);
                    issued
                        .session_tokens
                        .push((view.id, new.session_token.clone()));
                    issued
                        .refresh_tokens
                        .push((view.id, new.refresh_token.clone()));
                    let expected = model.start(
                        USERS[*user],
                        GROUPS[*group],
                        ms(*ttl_s),
                        Some((view.id, new.session_token, new.refresh_token)),
                    );
                    (Answer::Issued(view, None), expected)
                }
                Err(error) => {
                    let expected = model.start(USERS[*user], GROUPS[*group], ms(*ttl_s), None);
                    (Answer::Failed(error.into()), expected)
                }
            }
        }
        Op::Whoami { token } => {
            if issued.session_tokens.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let (id, text) =
                issued.session_tokens[token.index(issued.session_tokens.len())].clone();
            let actual = match m
                .whoami(access, parse(TokenKind::Session, &text), None)
                .await
            {
                Ok(snapshot) => Answer::Session(View::from(&snapshot)),
                Err(error) => Answer::Failed(error.into()),
            };
            (actual, model.whoami(id, &text))
        }
        Op::Refresh { token } => {
            if issued.refresh_tokens.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let (id, text) =
                issued.refresh_tokens[token.index(issued.refresh_tokens.len())].clone();
            match m
                .refresh(access, parse(TokenKind::Refresh, &text), None, false, None)
                .await
            {
                Ok(new) => {
                    let pair = (new.session_token, new.refresh_token);
                    let expected = model.refresh(id, &text, Some(pair.clone()));
                    let known = matches!(expected, Answer::Issued(_, Some(_)));
                    if !known {
                        // A rotation hands out tokens never seen before.
                        let seen = issued.session_tokens.iter().any(|(_, t)| *t == pair.0)
                            || issued.refresh_tokens.iter().any(|(_, t)| *t == pair.1);
                        assert!(!seen, "a rotation handed out a token issued before");
                        issued.session_tokens.push((id, pair.0.clone()));
                        issued.refresh_tokens.push((id, pair.1.clone()));
                    }
                    let view = View::from(&new.session);
                    (Answer::Issued(view, known.then_some(pair)), expected)
                }
                Err(error) => (Answer::Failed(error.into()), model.refresh(id, &text, None)),
            }
        }
        Op::Extend {
            session,
            keep_alive_s,
        } => {
            if issued.sessions.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let id = issued.sessions[session.index(issued.sessions.len())];
            let actual = match m.extend(access, id, secs(*keep_alive_s)).await {
                Ok(extension) => {
                    Answer::Extended(View::from(&extension.session), extension.extended)
                }
                Err(error) => Answer::Failed(error.into()),
            };
            (actual, model.extend(id, ms(*keep_alive_s)))
        }
        Op::Logout {
            by_token,
            target,
            all_for_user,
            except,
        } => {
            if issued.sessions.is_empty() {
                return (Answer::Nothing, Answer::Nothing);
            }
            let except = except.map(|i| issued.sessions[i.index(issued.sessions.len())]);
            let except = except.filter(|_| *all_for_user);
            if *by_token {
                let (id, text) =
                    issued.session_tokens[target.index(issued.session_tokens.len())].clone();
                let token = LogoutTarget::Token(parse(TokenKind::Session, &text));
                let actual = match m.logout(access, token, *all_for_user, except).await {
                    Ok(count) => Answer::Count(u64::from(count)),
                    Err(error) => Answer::Failed(error.into()),
                };
                (actual, model.logout(Ok((id, &text)), *all_for_user, except))
            } else {
                let id = issued.sessions[target.index(issued.sessions.len())];
                let actual = match m
                    .logout(access, LogoutTarget::Id(id), *all_for_user, except)
                    .await
                {
                    Ok(count) => Answer::Count(u64::from(count)),
                    Err(error) => Answer::Failed(error.into()),
                };
                (actual, model.logout(Err(id), *all_for_user, except))
            }
        }
        Op::RefreshAll { user, keep_alive_s } => {
            let actual = match m
                .refresh_all_for_user(access, USERS[*user], secs(*keep_alive_s))
                .await
            {
                Ok(snapshots) => {
                    let mut views: Vec<View> = snapshots.iter().map(View::from).collect();
                    views.sort_by_key(|v| v.id);
                    Answer::Sessions(views)
                }
                Err(error) => Answer::Failed(error.into()),
            };
            let mut expected = model.refresh_all(USERS[*user], ms(*keep_alive_s));
            if let Answer::Sessions(views) = &mut expected {
                views.sort_by_key(|v| v.id);
            }
            (actual, expected)
        }
        Op::List {
            user,
            include_inactive,
            page_size,
        } => (
            Answer::Sessions(
                system
                    .list(USERS[*user], *include_inactive, *page_size)
                    .await,
            ),
            Answer::Sessions(model.list(USERS[*user], *include_inactive)),
        ),
        Op::Advance { secs } => {
            system.clock.advance(Duration::from_secs(*secs));
            model.now += secs * SECOND_MS;
            (Answer::Nothing, Answer::Nothing)
        }
        Op::Sweep => {
            let actual = match m.sweep(SWEEP_BATCH).await {
                Ok(removed) => Answer::Count(removed as u64),
                Err(error) => Answer::Failed(error.into()),
            };
            (actual, model.sweep())
        }
    }
}

/// Runs `ops` on a fresh system and model; the first disagreement, if any.
async fn run(ops: &[Op]) -> Result<(), String> {
    let system = System::new();
    let mut model = Model {
        now: START_MS,
        sessions: BTreeMap::new(),
    };
    let mut issued = Issued::default();
    for (i, op) in ops.iter().enumerate() {
        let (actual, expected) = step(&system, &mut model, &mut issued, op).await;
        if actual != expected {
            return Err(format!(
                "step {i} {op:?}:\n  server: {actual:?}\n  model:  {expected:?}"
            ));
        }
    }
    for user in USERS {
        let actual = system.list(user, true, 50).await;
        let expected = model.list(user, true);
        if actual != expected {
            return Err(format!(
                "final sessions of {user}:\n  server: {actual:?}\n  model:  {expected:?}"
            ));
        }
    }
    let store = system.manager.store();
    for id in &issued.sessions {
        let stored = store.get(*id).await.expect("get").is_some();
        if stored != model.sessions.contains_key(id) {
            return Err(format!("session {id}: stored {stored}, model disagrees"));
        }
    }
    let report = store.check_consistency().await.expect("consistency check");
    let expected = model.sessions.len() as u64;
    if report.orphans != 0
        || report.sessions != expected
        || report.user_index_entries != expected
        || report.expiry_index_entries != expected
    {
        return Err(format!(
            "store inconsistent with {expected} sessions: {report:?}"
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn session_rules_over_sled_match_the_model(ops in vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let bounded = async { tokio::time::timeout(Duration::from_secs(20), run(&ops)).await };
        match rt.block_on(bounded) {
            Ok(Ok(())) => {}
            Ok(Err(disagreement)) => return Err(TestCaseError::fail(disagreement)),
            Err(_) => return Err(TestCaseError::fail("the run did not finish within 20 s")),
        }
    }
}
