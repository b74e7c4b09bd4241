//! Start: opens a session with a fresh token pair, within the group's policy and the
//! user's session limit (evicting or refusing as the group says). `session_limit_decision`
//! is the limit's rule.

use super::binding::bind_to;
use super::decide::UserPuts;
use super::{count_revoked, ended, sighting, Issued, SessionManager, StartParams, TokenPair};
use crate::clock::millis;
use crate::metrics;
use crate::session::access::Acting;
use crate::session::binding::DeviceBinding;
use crate::session::policy::{
    started_event, Policies, SessionLimitAction, SessionState, DEFAULT_GROUP,
};
use crate::session::SessionError;
use crate::store::{EndReason, Event, SessionRecord, StoredState};

/// The session-limit rule at Start, for a group allowing `max` active sessions per user:
/// the oldest active sessions in `existing` are evicted to make room for `new` (with its
/// event), or the new one is refused when the group says so. The outcome is how many
/// sessions it evicted.
pub(super) fn session_limit_decision(
    existing: &[SessionRecord],
    new: (&SessionRecord, &Event),
    (max, on_limit): (u32, SessionLimitAction),
    policies: &Policies,
    access: Acting<'_>,
    now_ms: u64,
) -> (UserPuts, Result<usize, SessionError>) {
    let mut active: Vec<&SessionRecord> = existing
        .iter()
        .filter(|r| policies.for_record(r).state_at(r, now_ms) == SessionState::Active)
        .collect();
    active.sort_by_key(|r| (r.created_at_ms, r.session_id.clone()));
    let excess = (active.len() + 1).saturating_sub(max as usize);
    if excess > 0 && on_limit == SessionLimitAction::Refuse {
        return (
            Vec::new(),
            Err(SessionError::ResourceExhausted(format!(
                "user already has the group's maximum of {max} active sessions; end one first"
            ))),
        );
    }
    let mut puts: UserPuts = active
        .iter()
        .take(excess)
        .map(|r| ended(r, EndReason::LimitEvicted, now_ms, access.actor))
        .collect();
    let evicted = puts.len();
    let (record, started) = new;
    puts.push((record.clone(), started.clone()));
    (puts, Ok(evicted))
}

/// Whether group `group`, binding as `binding` says, takes a Start with or without a
/// device key.
fn binding_at_start(group: &str, binding: DeviceBinding, keyed: bool) -> Result<(), SessionError> {
    match (binding, keyed) {
        (DeviceBinding::Off, true) => Err(SessionError::invalid(
            "device_key",
            format!("must be empty: group {group:?} binds no session to a device (device_binding = \"off\")"),
        )),
        (DeviceBinding::Required, false) => Err(SessionError::invalid(
            "device_key",
            format!("is required: group {group:?} binds every session to a device key (device_binding = \"required\")"),
        )),
        _ => Ok(()),
    }
}

impl SessionManager {
    /// Opens a session: ACTIVE, with a fresh token pair.
    pub async fn start(
        &self,
        access: Acting<'_>,
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
        binding_at_start(
            &group,
            policy.binding.device_binding,
            params.device_key.is_some(),
        )?;
        let tokens = TokenPair::generate()?;
        let now = self.clock.now_ms();
        let max_expires_at_ms = now.saturating_add(millis(policy.max_lifetime));
        let mut record = SessionRecord {
            session_id: self
                .store
                .place_session_id(self.ids.next(now)?, &params.user_id)
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
            client: None,
            last_ip: String::new(),
            last_user_agent: String::new(),
            last_seen_at_ms: 0,
            end_reason: EndReason::Unspecified as i32,
            started_by: access.actor.to_owned(),
            idle_timeout_ms: policy.idle_timeout.map_or(0, millis),
            device_jkt: String::new(),
            device_jwk: String::new(),
        };
        if let Some(key) = &params.device_key {
            bind_to(&mut record, key);
        }
        sighting::record_sighting(&mut record, params.client.as_ref(), now);
        record.client = params.client;
        let mut evicted = 0;
        let record = match policy.max_sessions_per_user {
            None => {
                let started = started_event(&record);
                self.store.insert(record, started).await?
            }
            Some(max) => {
                let user_id = record.user_id.clone();
                let started = started_event(&record);
                let limit = (max, policy.on_session_limit);
                evicted = self
                    .decide_user(&user_id, |existing| {
                        let new = (&record, &started);
                        session_limit_decision(existing, new, limit, &self.policies, access, now)
                    })
                    .await??;
                record
            }
        };
        ::metrics::counter!(metrics::SESSIONS_STARTED).increment(1);
        count_revoked("evicted", evicted);
        let issued = tokens.issue(self.snapshot(record, now))?;
        self.with_jwts(issued, params.issue_id_token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{at_minute, other_session, revoked, ANYONE};
    use super::*;
    use crate::store::EventKind;

    /// Alice's session `n`, started at minute `n`.
    fn started_at(n: u64) -> SessionRecord {
        SessionRecord {
            created_at_ms: at_minute(n),
            ..other_session("alice", n.into())
        }
    }

    #[test]
    fn session_limit_outcomes() {
        let new = started_at(30);
        let started = started_event(&new);
        let three = vec![started_at(3), started_at(1), started_at(2)];
        let one_ended = vec![started_at(1), revoked(started_at(2))];
        let evict = SessionLimitAction::EvictOldest;
        let refuse = SessionLimitAction::Refuse;
        /// (case, existing sessions, limit, sessions evicted (by start minute) or refused)
        type Case<'a> = (
            &'a str,
            &'a [SessionRecord],
            (u32, SessionLimitAction),
            Option<Vec<u64>>,
        );
        #[rustfmt::skip]
        let cases: [Case; 7] = [
            ("room left", &three, (4, evict), Some(vec![])),
            ("no sessions yet", &[], (1, refuse), Some(vec![])),
            ("at the limit: the oldest goes", &three, (3, evict), Some(vec![1])),
            ("over the limit: the oldest go", &three, (2, evict), Some(vec![1, 2])),
            ("at the limit: refused", &three, (3, refuse), None),
            ("ended sessions do not count", &one_ended, (2, refuse), Some(vec![])),
            ("ended sessions are not evicted", &one_ended, (1, evict), Some(vec![1])),
        ];
        for (case, existing, limit, evictions) in cases {
            let (puts, got) = session_limit_decision(
                existing,
                (&new, &started),
                limit,
                &Policies::default(),
                ANYONE,
                at_minute(30),
            );
            let Some(evictions) = evictions else {
                assert!(
                    matches!(got, Err(SessionError::ResourceExhausted(_))),
                    "{case}"
                );
                assert!(puts.is_empty(), "{case}");
                continue;
            };
            assert_eq!(got.ok(), Some(evictions.len()), "{case}");
            let (last, evicted) = puts.split_last().expect("the new session is put");
            assert_eq!(last.0.session_id, new.session_id, "{case}");
            assert_eq!(last.1.kind, EventKind::Started, "{case}");
            let minutes: Vec<u64> = evicted
                .iter()
                .map(|(record, _)| (record.created_at_ms - at_minute(0)) / 60_000)
                .collect();
            assert_eq!(minutes, evictions, "{case}");
            for (record, event) in evicted {
                assert_eq!(record.end_reason(), EndReason::LimitEvicted, "{case}");
                assert_eq!(event.kind, EventKind::Revoked, "{case}");
            }
        }
    }
}
