//! The one decision both gateway front ends make: find the session token (and a device
//! proof for the client's request), validate them as Whoami does (touch, idle timeout and
//! the group's `proof_on_use` included), and name the headers the upstream gets, or the
//! refusal.

use std::sync::Arc;

use opentelemetry::propagation::Extractor;
use tonic::Status;
use tracing::Instrument;

use super::credentials::{self, Credential};
use super::{proof, GatewaySettings, Refusal, RequestHeaders};
use crate::layers::trace_context;
use crate::session::token::{Token, TokenKind};
use crate::session::{GroupAccess, SessionManager};
use crate::store::SessionId;

/// A request that may pass, and what the upstream is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Headers to set on the request upstream, replacing every copy the client sent.
    pub set: Vec<(String, String)>,
    /// Gateway headers this grant does not set: every copy the client sent is removed.
    pub unset: Vec<String>,
}

/// Decides proxied requests by their session token.
pub struct Gatekeeper {
    manager: Arc<SessionManager>,
    settings: GatewaySettings,
    accepted: GroupAccess,
}

impl Gatekeeper {
    /// Decides by the sessions of `manager`, as `settings` say.
    pub fn new(manager: Arc<SessionManager>, settings: GatewaySettings) -> Gatekeeper {
        let accepted = match &settings.groups {
            Some(groups) => GroupAccess::Only(groups.iter().cloned().collect()),
            None => GroupAccess::All,
        };
        Gatekeeper {
            manager,
            settings,
            accepted,
        }
    }

    /// Decides one request by its `headers`, for a caller that may reach `caller` groups.
    /// With traces on, the decision is a span in the checked request's trace.
    pub async fn check(
        &self,
        caller: &GroupAccess,
        headers: &(dyn RequestHeaders + Sync),
    ) -> Result<Grant, Refusal> {
        let span = trace_context::enabled()
            .then(|| trace_context::gateway_span("gateway.check", &TraceCarrier(headers)))
            .flatten();
        match span {
            Some(span) => self.decide(caller, headers).instrument(span).await,
            None => self.decide(caller, headers).await,
        }
    }

    async fn decide(
        &self,
        caller: &GroupAccess,
        headers: &(dyn RequestHeaders + Sync),
    ) -> Result<Grant, Refusal> {
        let token = match credentials::find(headers, &self.settings) {
            Credential::Missing => return Err(Refusal::NoToken),
            Credential::Unreadable => return Err(Refusal::BadToken),
            Credential::Token(token) => {
                Token::parse(TokenKind::Session, token).map_err(|_| Refusal::BadToken)?
            }
        };
        let proof = proof::presented(headers)?;
        let access = caller.within(&self.accepted);
        // Whoami's rules: the group's `proof_on_use` decides whether the proof counts.
        let (session, access_token) = self
            .manager
            .admit(&access, token, proof.as_ref())
            .await
            .map_err(Refusal::of)?;
        let record = session.record;
        let session_id = SessionId::from_slice(&record.session_id)
            .map_err(|_| Refusal::Undecided(Status::internal("malformed session id")))?;
        let settings = &self.settings;
        let mut set = vec![
            (settings.user_id_header.clone(), record.user_id),
            (settings.session_id_header.clone(), session_id.to_string()),
            (settings.group_header.clone(), record.group),
        ];
        let mut unset = Vec::new();
        match access_token {
            Some(token) => set.push((settings.access_token_header.clone(), token.jwt)),
            None => unset.push(settings.access_token_header.clone()),
        }
        Ok(Grant { set, unset })
    }
}

/// A checked request's headers, where OpenTelemetry looks for `traceparent`.
struct TraceCarrier<'a>(&'a (dyn RequestHeaders + Sync));

impl Extractor for TraceCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let headers: &(dyn RequestHeaders + Sync) = self.0;
        let first = headers.values(key).into_iter().next()?;
        std::str::from_utf8(first).ok()
    }

    fn keys(&self) -> Vec<&str> {
        // The W3C propagator only asks for its own two headers by name.
        Vec::new()
    }
}
