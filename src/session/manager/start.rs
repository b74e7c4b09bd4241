//! Start: opens a session with a fresh token pair, within the group's policy and the
//! user's session limit (evicting or refusing as the group says).

use super::*;

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
        };
        sighting::record_sighting(&mut record, params.client.as_ref(), now);
        record.client = params.client;
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
                            .map(|r| ended(r, EndReason::LimitEvicted, now, access.actor))
                            .collect();
                        evicted = puts.len();
                        puts.push((record.clone(), Event::started(&record)));
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
        self.with_jwts(issued, params.issue_id_token, now)
    }
}
