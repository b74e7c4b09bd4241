//! Signed access tokens (JWT) of a session: their claims, signed with the manager's keys,
//! for Start and Refresh, and with Whoami for gateways that pass one upstream.

use std::time::Duration;

use super::access::GroupAccess;
use super::manager::{AccessToken, Signer, Snapshot};
use super::token::Token;
use super::{SessionError, SessionManager};
use crate::clock::millis;
use crate::store::{SessionId, SessionRecord};

impl SessionManager {
    /// The access token the session's group issues, signed at `now_ms`, with its claims
    /// (an ID token adds to them) and the signer; None when the group issues none.
    pub(super) fn signed_access_token(
        &self,
        record: &SessionRecord,
        now_ms: u64,
    ) -> Option<(&Signer, serde_json::Value, AccessToken)> {
        let policy = self.policies.for_record(record);
        let (Some(signer), Some(ttl)) = (&self.signer, policy.access_token_ttl) else {
            return None;
        };
        // Never past the session's own end: expiry and idle deadline as of now.
        let expires_at_ms = now_ms
            .saturating_add(millis(ttl))
            .min(policy.ends_at_ms(record));
        let claims = serde_json::json!({
            "iss": signer.issuer,
            "aud": policy.audience.clone().unwrap_or_else(|| record.group.clone()),
            "sub": record.user_id,
            "sid": SessionId::from_slice(&record.session_id).map(|id| id.to_string()).unwrap_or_default(),
            "iat": now_ms / 1000,
            "exp": expires_at_ms / 1000,
            "group": record.group,
            "jti": uuid::Uuid::now_v7().to_string(),
            "attrs": record.attributes,
        });
        let access_token = AccessToken {
            jwt: signer.keys.sign(&claims),
            expires_in: Duration::from_millis(expires_at_ms.saturating_sub(now_ms)),
        };
        Some((signer, claims, access_token))
    }

    /// Whoami for a gateway: validates the session token (touching the session like
    /// Whoami) and signs a fresh access token when the session's group issues them.
    pub async fn admit(
        &self,
        access: &GroupAccess,
        token: Token,
    ) -> Result<(Snapshot, Option<AccessToken>), SessionError> {
        // A check logs no event, so no actor is recorded; the caller's groups apply.
        let acting = super::Acting {
            access,
            actor: "gateway",
        };
        let session = self.whoami(acting, token, None).await?;
        let access_token = self
            .signed_access_token(&session.record, self.clock.now_ms())
            .map(|(_, _, token)| token);
        Ok((session, access_token))
    }
}
