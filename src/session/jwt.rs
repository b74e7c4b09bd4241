//! Signed access and ID tokens (JWT) of a session: their claims as a typed struct,
//! signed with the manager's keys for Start and Refresh, and with Whoami for gateways
//! that pass one upstream.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::access::GroupAccess;
use super::manager::{AccessToken, Issued, PresentedProof, Signer, Snapshot};
use super::token::Token;
use super::{SessionError, SessionManager};
use crate::clock::millis;
use crate::store::{SessionId, SessionRecord};

/// The claims of an access token; an ID token adds `auth_time` and has a `jti` of its
/// own. The fields are in alphabetical order because serde writes them in declaration
/// order: tokens read byte for byte as when the claims were a sorted JSON map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The session's attributes.
    pub attrs: BTreeMap<String, String>,
    /// The group's audience, or the group's name.
    pub aud: String,
    /// When the user last authenticated, in seconds (ID tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The device key a bound session's tokens are confirmed by (RFC 7800, RFC 9449).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Expiry, in seconds since the epoch: never past the session's own end.
    pub exp: u64,
    pub group: String,
    /// Issued at, in seconds since the epoch.
    pub iat: u64,
    pub iss: String,
    /// This token's own id (UUID v7).
    pub jti: String,
    /// The session id.
    pub sid: String,
    /// The user id.
    pub sub: String,
}

/// RFC 7800's `cnf` claim as DPoP uses it: the SHA-256 thumbprint of the device key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    pub jkt: String,
}

impl SessionManager {
    /// The access token the session's group issues, signed at `now_ms`, with its claims
    /// (an ID token adds to them) and the signer; None when the group issues none.
    fn signed_access_token(
        &self,
        record: &SessionRecord,
        now_ms: u64,
    ) -> Result<Option<(&Signer, Claims, AccessToken)>, SessionError> {
        let policy = self.policies.for_record(record);
        let (Some(signer), Some(ttl)) = (&self.signer, policy.access_token_ttl) else {
            return Ok(None);
        };
        // Never past the session's own end: expiry and idle deadline as of now.
        let expires_at_ms = now_ms
            .saturating_add(millis(ttl))
            .min(policy.ends_at_ms(record));
        let claims = Claims {
            attrs: record.attributes.clone(),
            aud: policy
                .audience
                .clone()
                .unwrap_or_else(|| record.group.clone()),
            auth_time: None,
            cnf: (!record.device_jkt.is_empty()).then(|| Confirmation {
                jkt: record.device_jkt.clone(),
            }),
            exp: expires_at_ms / 1000,
            group: record.group.clone(),
            iat: now_ms / 1000,
            iss: signer.issuer.clone(),
            jti: uuid::Uuid::now_v7().to_string(),
            sid: SessionId::from_slice(&record.session_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
            sub: record.user_id.clone(),
        };
        let access_token = AccessToken {
            jwt: signer.keys.sign(&claims)?,
            expires_in: Duration::from_millis(expires_at_ms.saturating_sub(now_ms)),
        };
        Ok(Some((signer, claims, access_token)))
    }

    /// Adds the access token (and the ID token when asked for) the group issues.
    pub(super) fn with_jwts(
        &self,
        mut issued: Issued,
        id_token: bool,
        now_ms: u64,
    ) -> Result<Issued, SessionError> {
        let record = &issued.session.record;
        let Some((signer, claims, access_token)) = self.signed_access_token(record, now_ms)? else {
            return Ok(issued);
        };
        if id_token {
            let id_claims = Claims {
                auth_time: Some(record.authenticated_at_ms / 1000),
                jti: uuid::Uuid::now_v7().to_string(),
                ..claims
            };
            issued.id_token = Some(signer.keys.sign(&id_claims)?);
        }
        issued.access_token = Some(access_token);
        Ok(issued)
    }

    /// Whoami for a gateway: validates the session token (touching the session like
    /// Whoami) and signs a fresh access token when the session's group issues them.
    pub async fn admit(
        &self,
        access: &GroupAccess,
        token: Token,
        proof: Option<&PresentedProof>,
    ) -> Result<(Snapshot, Option<AccessToken>), SessionError> {
        // A check logs no event, so no actor is recorded; the caller's groups apply.
        let acting = super::Acting {
            access,
            actor: "gateway",
        };
        let session = self.whoami(acting, token, None, proof).await?;
        let access_token = self
            .signed_access_token(&session.record, self.clock.now_ms())?
            .map(|(_, _, token)| token);
        Ok((session, access_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claims as the `serde_json::json!` map wrote them before they were typed.
    #[test]
    fn claims_serialize_as_the_sorted_map_did() {
        let claims = Claims {
            attrs: BTreeMap::from([("plan".into(), "pro".into())]),
            aud: "web".into(),
            auth_time: None,
            cnf: None,
            exp: 20,
            group: "web".into(),
            iat: 10,
            iss: "sessiond".into(),
            jti: "j".into(),
            sid: "s".into(),
            sub: "alice".into(),
        };
        let map = serde_json::json!({
            "iss": "sessiond", "aud": "web", "sub": "alice", "sid": "s", "iat": 10,
            "exp": 20, "group": "web", "jti": "j", "attrs": { "plan": "pro" },
        });
        let typed = serde_json::to_string(&claims).expect("serializes");
        assert_eq!(typed, map.to_string());
        let mut id_map = map;
        id_map["auth_time"] = serde_json::json!(5);
        let id_claims = Claims {
            auth_time: Some(5),
            ..claims
        };
        let typed = serde_json::to_string(&id_claims).expect("serializes");
        assert_eq!(typed, id_map.to_string());
    }
}
