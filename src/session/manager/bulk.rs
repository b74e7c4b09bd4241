//! RevokeSessions: ends every active session a filter matches, atomically per user, with
//! a guard on how many and a dry run that only counts.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::session::filter::SessionFilter;

/// How many matched session ids an answer names.
const NAMED_IDS: usize = 100;

/// A RevokeSessions request, validated.
#[derive(Debug, Clone)]
pub struct BulkRevoke {
    pub filter: SessionFilter,
    /// Only count and name; change nothing.
    pub dry_run: bool,
    /// The operator's reason, kept in each REVOKED event.
    pub reason: String,
    /// Refuse when more active sessions than this match.
    pub max_sessions: usize,
}

/// What a RevokeSessions found and did.
#[derive(Debug, Clone, Default)]
pub struct BulkRevoked {
    pub matched: u32,
    pub revoked: u32,
    /// The first matched sessions, newest first (at most 100).
    pub session_ids: Vec<SessionId>,
}

impl SessionManager {
    /// Ends every active session within reach that the filter matches (BULK_REVOKE,
    /// by the caller), one atomic step per user; sessions that ended meanwhile or no
    /// longer match are skipped, so running it again finishes an interrupted run.
    pub async fn revoke_sessions(
        &self,
        access: Acting<'_>,
        request: &BulkRevoke,
    ) -> Result<BulkRevoked, SessionError> {
        let now = self.clock.now_ms();
        let mut found = BulkRevoked::default();
        let mut matched = 0usize;
        let mut by_user: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
        self.walk_matching(
            access,
            &request.filter,
            None,
            usize::MAX,
            now,
            &mut |session| {
                if session.state != SessionState::Active {
                    return true;
                }
                matched += 1;
                if found.session_ids.len() < NAMED_IDS {
                    if let Ok(id) = session_id_of(&session.record) {
                        found.session_ids.push(id);
                    }
                }
                let record = session.record;
                by_user
                    .entry(record.user_id)
                    .or_default()
                    .insert(record.session_id);
                // One past the guard is enough to refuse.
                matched <= request.max_sessions
            },
        )
        .await?;
        if matched > request.max_sessions {
            return Err(SessionError::FailedPrecondition(format!(
                "more than max_sessions ({}) active sessions match; narrow the filter or raise max_sessions",
                request.max_sessions
            )));
        }
        found.matched = u32::try_from(matched).unwrap_or(u32::MAX);
        if request.dry_run {
            return Ok(found);
        }
        for (user_id, ids) in &by_user {
            // Checked again inside the user's atomic step: a session changed since the
            // walk ends only if it still matches.
            let selected = |record: &SessionRecord| {
                ids.contains(&record.session_id)
                    && request.filter.matches(record, SessionState::Active)
            };
            found.revoked += self
                .revoke_where(
                    access,
                    user_id,
                    (EndReason::BulkRevoke, &request.reason),
                    &selected,
                    now,
                )
                .await?;
        }
        tracing::info!(
            matched = found.matched,
            revoked = found.revoked,
            users = by_user.len(),
            actor = access.actor,
            reason = %request.reason,
            "sessions revoked in bulk"
        );
        Ok(found)
    }
}
