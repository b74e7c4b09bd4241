//! Session lifetimes per group, and the pure rules that apply them to a record: when it
//! ends, why it ended, and the events that begin and end it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::binding::BindingPolicy;
use crate::clock::millis;
use crate::store::{EndReason, Event, EventKind, SessionRecord, StoredState};

/// The group every session belongs to unless Start names another.
pub const DEFAULT_GROUP: &str = "default";

/// The actor of what the sweeper does.
pub const SWEEPER_ACTOR: &str = "sessiond";

/// Lifetimes of the sessions of one group, as written in the config file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPolicy {
    /// Default lifespan of a session (its TTL), renewed by Refresh and Extend.
    #[serde(with = "humantime_serde", default = "default_lifespan")]
    pub lifespan: Duration,
    /// Absolute cap counted from `authenticated_at`: nothing extends a session past it.
    #[serde(with = "humantime_serde", default = "default_max_lifetime")]
    pub max_lifetime: Duration,
    /// No access for this long ends the session. None: no idle timeout.
    #[serde(with = "humantime_serde", default)]
    pub idle_timeout: Option<Duration>,
    /// Extend works only when the remaining lifetime is at most this. None: the
    /// lifespan, so every Extend is inside the window.
    #[serde(with = "humantime_serde", default)]
    pub earliest_possible_extend: Option<Duration>,
    /// At most this many active sessions per user.
    #[serde(default)]
    pub max_sessions_per_user: Option<u32>,
    /// What Start does at `max_sessions_per_user`.
    #[serde(default)]
    pub on_session_limit: SessionLimitAction,
    /// How long a just-rotated refresh token, presented again before its successor is
    /// used, gets the same successor back instead of counting as theft (0s: never).
    #[serde(with = "humantime_serde", default = "default_refresh_grace")]
    pub refresh_grace: Duration,
    /// Lifetime of the signed access tokens Start and Refresh return; None: none issued.
    #[serde(with = "humantime_serde", default)]
    pub access_token_ttl: Option<Duration>,
    /// `aud` claim of those tokens; None: the group's name.
    #[serde(default)]
    pub audience: Option<String>,
    /// Device and network binding (docs/binding.md).
    #[serde(flatten)]
    pub binding: BindingPolicy,
}

fn default_refresh_grace() -> Duration {
    Duration::from_secs(30)
}

/// What Start does when a user already has `max_sessions_per_user` active sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionLimitAction {
    /// Revoke the oldest active sessions to make room (Kratos, SuperTokens).
    #[default]
    EvictOldest,
    /// Refuse the new session with RESOURCE_EXHAUSTED.
    Refuse,
}

fn default_lifespan() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_max_lifetime() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl Default for GroupPolicy {
    fn default() -> Self {
        GroupPolicy {
            lifespan: default_lifespan(),
            max_lifetime: default_max_lifetime(),
            idle_timeout: None,
            earliest_possible_extend: None,
            max_sessions_per_user: None,
            on_session_limit: SessionLimitAction::EvictOldest,
            refresh_grace: default_refresh_grace(),
            access_token_ttl: None,
            audience: None,
            binding: BindingPolicy::default(),
        }
    }
}

impl GroupPolicy {
    /// Why this policy cannot work, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.lifespan.is_zero() {
            Some("lifespan must be more than 0s")
        } else if self.max_lifetime < self.lifespan {
            Some("max_lifetime must be at least the lifespan")
        } else if self.idle_timeout.is_some_and(|idle| idle.is_zero()) {
            Some("idle_timeout must be more than 0s (leave it out for none)")
        } else if self.earliest_possible_extend.is_some_and(|e| e.is_zero()) {
            Some("earliest_possible_extend must be more than 0s")
        } else if self.max_sessions_per_user == Some(0) {
            Some("max_sessions_per_user must be at least 1 (leave it out for no limit)")
        } else {
            None
        }
    }

    /// Whether a session is valid at `now_ms`: active, unexpired and not idle too long.
    pub fn state_at(&self, record: &SessionRecord, now_ms: u64) -> SessionState {
        if record.state() == StoredState::Revoked {
            SessionState::Revoked
        } else if now_ms >= self.ends_at_ms(record) {
            SessionState::Expired
        } else {
            SessionState::Active
        }
    }

    /// Why the session is not active at `now_ms`: its stored reason when revoked, else
    /// the deadline it passed; Unspecified while it is active.
    pub fn end_reason_at(&self, record: &SessionRecord, now_ms: u64) -> EndReason {
        match self.state_at(record, now_ms) {
            SessionState::Active => EndReason::Unspecified,
            SessionState::Revoked => record.end_reason(),
            SessionState::Expired => deadline_passed(record, self.idle_timeout.map(millis)),
        }
    }

    /// When the session ends if nothing happens: its expiry or its idle deadline.
    pub fn ends_at_ms(&self, record: &SessionRecord) -> u64 {
        match self.idle_timeout {
            Some(idle) => record
                .expires_at_ms
                .min(record.last_access_at_ms.saturating_add(millis(idle))),
            None => record.expires_at_ms,
        }
    }

    /// The expiry Extend gives at `now_ms` with `keep_alive` (or the lifespan), or None
    /// when the session is outside the extension window or would not move out (Extend
    /// never shortens a session).
    pub fn extended_expiry(
        &self,
        record: &SessionRecord,
        now_ms: u64,
        keep_alive: Option<Duration>,
    ) -> Option<u64> {
        let window = millis(self.earliest_possible_extend.unwrap_or(self.lifespan));
        let remaining = record.expires_at_ms.saturating_sub(now_ms);
        if remaining > window {
            return None;
        }
        let keep_alive = millis(keep_alive.unwrap_or(self.lifespan));
        let expiry = now_ms
            .saturating_add(keep_alive)
            .min(record.max_expires_at_ms);
        (expiry > record.expires_at_ms).then_some(expiry)
    }

    /// The expiry a refresh gives at `now_ms`: the session's own lifespan, capped.
    pub fn refreshed_expiry(record: &SessionRecord, now_ms: u64) -> u64 {
        now_ms
            .saturating_add(record.ttl_ms)
            .min(record.max_expires_at_ms)
    }
}

/// Which deadline ended a session that is past its end, given the idle timeout that
/// applies to it: its idle deadline when that came before its expiry, else its absolute
/// cap when its expiry had reached the cap, else its lifespan.
pub fn deadline_passed(record: &SessionRecord, idle_timeout_ms: Option<u64>) -> EndReason {
    if idle_timeout_ms
        .is_some_and(|idle| record.last_access_at_ms.saturating_add(idle) < record.expires_at_ms)
    {
        EndReason::IdleTimeout
    } else if record.expires_at_ms >= record.max_expires_at_ms {
        EndReason::AbsoluteCap
    } else {
        EndReason::LifespanEnd
    }
}

/// The STARTED event of a new session, by the caller that started it.
pub fn started_event(record: &SessionRecord) -> Event {
    Event {
        kind: EventKind::Started,
        at_ms: record.created_at_ms,
        reason: EndReason::Unspecified,
        actor: record.started_by.as_str().into(),
        note: "".into(),
    }
}

/// The EXPIRED event of the sweeper deleting `record` at `now_ms` (None: the store had
/// already dropped the record): the reason it ended with, or else the deadline that
/// ended it, by the idle timeout stored with it (the sweeper sees no policy).
pub fn expired_event(record: Option<&SessionRecord>, now_ms: u64) -> Event {
    let reason = match record {
        Some(record) if record.end_reason() != EndReason::Unspecified => record.end_reason(),
        Some(record) => deadline_passed(
            record,
            (record.idle_timeout_ms > 0).then_some(record.idle_timeout_ms),
        ),
        None => EndReason::LifespanEnd,
    };
    Event {
        kind: EventKind::Expired,
        at_ms: now_ms,
        reason,
        actor: SWEEPER_ACTOR.into(),
        note: "".into(),
    }
}

/// A session's state as callers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Active,
    Revoked,
    Expired,
}

/// All configured groups; `default` is always there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policies {
    default: GroupPolicy,
    named: BTreeMap<String, GroupPolicy>,
}

impl Policies {
    /// The given groups, plus the built-in `default` group unless they define it.
    pub fn new(mut groups: BTreeMap<String, GroupPolicy>) -> Policies {
        Policies {
            default: groups.remove(DEFAULT_GROUP).unwrap_or_default(),
            named: groups,
        }
    }

    /// The policy of a configured group.
    pub fn get(&self, group: &str) -> Option<&GroupPolicy> {
        if group == DEFAULT_GROUP {
            Some(&self.default)
        } else {
            self.named.get(group)
        }
    }

    /// The policy that governs a stored session: its group's, or `default` if that
    /// group was removed from the config since.
    pub fn for_record(&self, record: &SessionRecord) -> &GroupPolicy {
        self.named.get(&record.group).unwrap_or(&self.default)
    }

    /// Every group with its policy, `default` first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &GroupPolicy)> {
        std::iter::once((DEFAULT_GROUP, &self.default)).chain(
            self.named
                .iter()
                .map(|(name, policy)| (name.as_str(), policy)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    fn record(expires_at_ms: u64, max_expires_at_ms: u64) -> SessionRecord {
        SessionRecord {
            state: StoredState::Active as i32,
            expires_at_ms,
            max_expires_at_ms,
            last_access_at_ms: 0,
            ttl_ms: HOUR_MS,
            ..Default::default()
        }
    }

    fn policy(window_hours: u64) -> GroupPolicy {
        GroupPolicy {
            lifespan: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(10 * 3600),
            earliest_possible_extend: Some(Duration::from_secs(window_hours * 3600)),
            ..Default::default()
        }
    }

    #[test]
    fn extend_outside_the_window_changes_nothing() {
        let record = record(5 * HOUR_MS, 10 * HOUR_MS);
        assert_eq!(policy(1).extended_expiry(&record, 0, None), None);
        // Inside the window, but now + lifespan is the current expiry: nothing moves.
        assert_eq!(policy(1).extended_expiry(&record, 4 * HOUR_MS, None), None);
    }

    #[test]
    fn extend_inside_the_window_is_capped_by_max_lifetime() {
        let record = record(HOUR_MS, 10 * HOUR_MS);
        assert_eq!(
            policy(1).extended_expiry(&record, HOUR_MS / 2, None),
            Some(HOUR_MS / 2 + HOUR_MS)
        );
        assert_eq!(
            policy(1).extended_expiry(&record, 9 * HOUR_MS + 1, None),
            Some(10 * HOUR_MS)
        );
    }

    #[test]
    fn idle_timeout_ends_a_session_before_its_expiry() {
        let idle = GroupPolicy {
            idle_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let record = record(HOUR_MS, 10 * HOUR_MS);
        assert_eq!(idle.state_at(&record, 59_999), SessionState::Active);
        assert_eq!(idle.state_at(&record, 60_000), SessionState::Expired);
    }

    #[test]
    fn the_deadline_passed_is_the_idle_one_if_first_then_the_cap_then_the_lifespan() {
        let idle = Some(60_000);
        // (last access, expiry, absolute cap, idle timeout, reason)
        let cases = [
            (0, HOUR_MS, 10 * HOUR_MS, idle, EndReason::IdleTimeout),
            (0, HOUR_MS, HOUR_MS, idle, EndReason::IdleTimeout),
            // The idle deadline at the expiry is not before it.
            (
                HOUR_MS - 60_000,
                HOUR_MS,
                10 * HOUR_MS,
                idle,
                EndReason::LifespanEnd,
            ),
            (
                HOUR_MS - 60_000,
                HOUR_MS,
                HOUR_MS,
                idle,
                EndReason::AbsoluteCap,
            ),
            (
                u64::MAX,
                HOUR_MS,
                10 * HOUR_MS,
                idle,
                EndReason::LifespanEnd,
            ),
            (0, HOUR_MS, HOUR_MS, None, EndReason::AbsoluteCap),
            (0, HOUR_MS, 10 * HOUR_MS, None, EndReason::LifespanEnd),
        ];
        for (last_access_at_ms, expires, cap, idle, reason) in cases {
            let record = SessionRecord {
                last_access_at_ms,
                ..record(expires, cap)
            };
            assert_eq!(
                deadline_passed(&record, idle),
                reason,
                "last access {last_access_at_ms}, expiry {expires}, cap {cap}, idle {idle:?}"
            );
        }
    }

    #[test]
    fn end_reason_at_is_none_while_active_the_stored_one_when_revoked_else_the_deadline() {
        let idle = GroupPolicy {
            idle_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let plain = GroupPolicy::default();
        let revoked = |reason: EndReason| SessionRecord {
            state: StoredState::Revoked as i32,
            end_reason: reason as i32,
            ..record(HOUR_MS, 10 * HOUR_MS)
        };
        // (policy, record, now, reason)
        let cases = [
            (
                &idle,
                record(HOUR_MS, 10 * HOUR_MS),
                59_999,
                EndReason::Unspecified,
            ),
            (
                &idle,
                record(HOUR_MS, 10 * HOUR_MS),
                60_000,
                EndReason::IdleTimeout,
            ),
            (
                &plain,
                record(HOUR_MS, 10 * HOUR_MS),
                60_000,
                EndReason::Unspecified,
            ),
            (
                &plain,
                record(HOUR_MS, 10 * HOUR_MS),
                HOUR_MS,
                EndReason::LifespanEnd,
            ),
            (
                &plain,
                record(HOUR_MS, HOUR_MS),
                HOUR_MS,
                EndReason::AbsoluteCap,
            ),
            (
                &plain,
                revoked(EndReason::LogoutAll),
                0,
                EndReason::LogoutAll,
            ),
            // Revoked by an older version, which stored no reason.
            (
                &plain,
                revoked(EndReason::Unspecified),
                0,
                EndReason::Unspecified,
            ),
        ];
        for (row, (policy, record, now_ms, reason)) in cases.into_iter().enumerate() {
            assert_eq!(policy.end_reason_at(&record, now_ms), reason, "row {row}");
        }
    }

    #[test]
    fn the_sweepers_event_keeps_a_stored_reason_or_names_the_deadline_by_the_record() {
        let idle_record = SessionRecord {
            idle_timeout_ms: 60_000,
            ..record(HOUR_MS, 10 * HOUR_MS)
        };
        let revoked = SessionRecord {
            end_reason: EndReason::LogoutOthers as i32,
            ..idle_record.clone()
        };
        // (record swept, reason)
        let cases = [
            (None, EndReason::LifespanEnd),
            (Some(revoked), EndReason::LogoutOthers),
            (Some(idle_record), EndReason::IdleTimeout),
            (Some(record(HOUR_MS, HOUR_MS)), EndReason::AbsoluteCap),
            (Some(record(HOUR_MS, 10 * HOUR_MS)), EndReason::LifespanEnd),
        ];
        for (row, (record, reason)) in cases.into_iter().enumerate() {
            let event = expired_event(record.as_ref(), 2 * HOUR_MS);
            assert_eq!(
                event,
                Event {
                    kind: EventKind::Expired,
                    at_ms: 2 * HOUR_MS,
                    reason,
                    actor: SWEEPER_ACTOR.into(),
                    note: "".into(),
                },
                "row {row}"
            );
        }
    }

    #[test]
    fn a_session_starts_when_created_by_its_caller() {
        let record = SessionRecord {
            created_at_ms: 7,
            started_by: "admin-ui".to_owned(),
            ..record(HOUR_MS, 10 * HOUR_MS)
        };
        let event = started_event(&record);
        assert_eq!(
            (event.kind, event.at_ms, event.reason, &*event.actor),
            (EventKind::Started, 7, EndReason::Unspecified, "admin-ui")
        );
    }

    #[test]
    fn default_group_always_exists() {
        assert!(Policies::default().get(DEFAULT_GROUP).is_some());
    }
}
