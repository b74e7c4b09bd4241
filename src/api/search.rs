//! ListSessions and RevokeSessions: the admin calls over a session filter, from their
//! protobuf form to the session rules and back.

use super::validate::{self, RequestLimits};
use crate::proto::session::v1 as pb;
use crate::session::manager::BulkRevoke;
use crate::session::{Acting, SessionError, SessionManager};

/// RevokeSessions' guard when the request sets none.
const DEFAULT_MAX_SESSIONS: usize = 1000;

/// Answers one ListSessions request.
pub async fn list_sessions(
    manager: &SessionManager,
    limits: &RequestLimits,
    access: Acting<'_>,
    request: pb::ListSessionsRequest,
) -> Result<pb::ListSessionsResponse, SessionError> {
    let filter = limits.filter(request.filter)?;
    let page_size = validate::page_size(request.page_size)?;
    let before = validate::page_token(&request.page_token)?;
    let page = manager
        .list_sessions(access, &filter, page_size, before)
        .await?;
    Ok(pb::ListSessionsResponse {
        sessions: page.sessions.into_iter().map(Into::into).collect(),
        next_page_token: page
            .next
            .map(validate::encode_page_token)
            .unwrap_or_default(),
    })
}

/// Answers one RevokeSessions request.
pub async fn revoke_sessions(
    manager: &SessionManager,
    limits: &RequestLimits,
    access: Acting<'_>,
    request: pb::RevokeSessionsRequest,
) -> Result<pb::RevokeSessionsResponse, SessionError> {
    let filter = limits.filter(request.filter)?;
    if filter.is_empty() && !request.all {
        return Err(SessionError::invalid(
            "filter",
            "must not be empty (set `all` to end every session)",
        ));
    }
    let request = BulkRevoke {
        filter,
        dry_run: request.dry_run,
        reason: validate::revoke_reason(request.reason)?,
        max_sessions: match request.max_sessions {
            0 => DEFAULT_MAX_SESSIONS,
            max => usize::try_from(max).unwrap_or(usize::MAX),
        },
    };
    let done = manager.revoke_sessions(access, &request).await?;
    Ok(pb::RevokeSessionsResponse {
        matched_count: done.matched,
        revoked_count: done.revoked,
        session_ids: done.session_ids.iter().map(ToString::to_string).collect(),
    })
}
