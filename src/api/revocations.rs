//! ListRevocations: the revocation feed's request and answer in their protobuf form.

use super::convert::timestamp;
use super::validate;
use crate::proto::session::v1 as pb;
use crate::session::revocations::{Revocation, RevocationPage};
use crate::session::{SessionError, SessionManager};

/// Answers one ListRevocations request.
pub async fn list_revocations(
    manager: &SessionManager,
    request: pb::ListRevocationsRequest,
) -> Result<pb::ListRevocationsResponse, SessionError> {
    let page_size = validate::page_size(request.page_size)?;
    let page = manager
        .list_revocations(request.after_cursor, page_size)
        .await?;
    Ok(page.into())
}

impl From<Revocation> for pb::Revocation {
    fn from(revocation: Revocation) -> Self {
        pb::Revocation {
            session_id: revocation.session_id.to_string(),
            user_id: revocation.user_id,
            revoked_at: timestamp(revocation.revoked_at_ms),
            not_after: timestamp(revocation.not_after_ms),
        }
    }
}

impl From<RevocationPage> for pb::ListRevocationsResponse {
    fn from(page: RevocationPage) -> Self {
        pb::ListRevocationsResponse {
            revocations: page.revocations.into_iter().map(Into::into).collect(),
            cursor: page.cursor,
            caught_up: page.caught_up,
            window: Some(prost_types::Duration {
                seconds: i64::try_from(page.window.as_secs()).unwrap_or(i64::MAX),
                // Below 1e9, so it fits.
                nanos: i32::try_from(page.window.subsec_nanos()).unwrap_or(0),
            }),
        }
    }
}
