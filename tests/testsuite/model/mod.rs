//! Model check of the session rules over each store (sled, Redis, Redis Cluster): random
//! sequences of every call and of clock moves run against `SessionManager` and against a
//! small in-memory model written from docs/behaviour.md and docs/api.md ("Refresh that
//! clients can trust") and `session::policy`; every answer and the final state must agree.

mod spec;
mod system;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use sessiond::clock::ManualClock;
use sessiond::config::Config;
use sessiond::session::manager::{LogoutTarget, ManagerSettings, Snapshot, StartParams};
use sessiond::session::policy::{GroupPolicy, Policies, SessionLimitAction, SessionState};
use sessiond::session::token::{Token, TokenKind};
use sessiond::session::{Acting, SessionError, SessionManager};
use sessiond::store::{Durability, SessionId};

use crate::common;

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
