//! Refresh: rotates both tokens; the refresh grace rule (a just-rotated refresh token
//! presented again within `refresh_grace` gets the same sealed successor pair) and reuse
//! detection (any other rotated-away token revokes the session).

use super::*;

impl SessionManager {
    /// Rotates both tokens. A refresh token that was already rotated away is theft:
    /// the session is revoked.
    /// With `expected_scope`, a session of another scope refuses the token like a bad
    /// one, and the token stays usable.
    pub async fn refresh(
        &self,
        access: Acting<'_>,
        token: Token,
        expected_scope: Option<&str>,
        issue_id_token: bool,
        client: Option<&ClientContext>,
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
                    sighting::record_sighting(&mut next, client, now);
                    let grace = millis(self.policies.for_record(record).refresh_grace);
                    if grace > 0 {
                        next.grace_until_ms = now.saturating_add(grace);
                        next.sealed_successor = token.secret.seal_pair(
                            token.session_id,
                            (&tokens.session, &tokens.refresh),
                            nonce,
                        );
                    }
                    Decision::Put(
                        Box::new(next),
                        Some(event(EventKind::Refreshed, now, access.actor)),
                    )
                } else if let Some(successor) = replayed {
                    outcome = Outcome::Replayed(successor);
                    Decision::Keep
                } else if reused {
                    outcome = Outcome::Reused;
                    let (next, event) = ended(record, EndReason::RefreshReuse, now, access.actor);
                    Decision::Put(Box::new(next), Some(event))
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
                self.with_jwts(issued, issue_id_token, now)
            }
            (Some(record), Outcome::Replayed(successor)) => {
                tracing::debug!(
                    decision = "grace_replay",
                    "just-rotated refresh token inside its grace window: the same pair"
                );
                // The rotation that made this pair may still be on its way to disk.
                self.store.sync().await?;
                let issued = successor.issue(self.snapshot(record, now))?;
                self.with_jwts(issued, issue_id_token, now)
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
    pub(super) fn replay(
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

    pub(super) fn rotated(
        &self,
        record: &SessionRecord,
        tokens: &TokenPair,
        now_ms: u64,
    ) -> SessionRecord {
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
}
