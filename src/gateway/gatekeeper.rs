//! The one decision both gateway front ends make: find the session token, validate it as
//! Whoami does (touch and idle timeout included), and name the headers the upstream
//! gets, or the refusal and its HTTP status.

use std::sync::Arc;

use opentelemetry::propagation::Extractor;
use tonic::{Code, Status};
use tracing::Instrument;

use super::credentials::{self, Credential};
use super::{GatewaySettings, RequestHeaders};
use crate::layers::trace_context;
use crate::session::token::{Token, TokenKind};
use crate::session::{GroupAccess, SessionError, SessionManager};
use crate::store::SessionId;

/// `WWW-Authenticate` of a request that brought no token (RFC 6750).
const CHALLENGE: &str = "Bearer realm=\"sessiond\"";
/// `WWW-Authenticate` of a request whose token is malformed, unknown, expired or revoked.
const CHALLENGE_INVALID: &str = "Bearer realm=\"sessiond\", error=\"invalid_token\"";

/// A request that may pass, and what the upstream is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Headers to set on the request upstream, replacing every copy the client sent.
    pub set: Vec<(String, String)>,
    /// Gateway headers this grant does not set: every copy the client sent is removed.
    pub unset: Vec<String>,
}

/// Why a request may not pass.
#[derive(Debug)]
pub enum Refusal {
    /// No session token where the settings say to look.
    NoToken,
    /// A token that is unreadable, malformed, unknown, expired or revoked.
    BadToken,
    /// A valid session of a group this gateway does not accept.
    GroupNotAccepted,
    /// sessiond could not decide (store unreachable, or its own failure): never a pass.
    Undecided(Status),
}

impl Refusal {
    /// The HTTP status a proxy answers the client with.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::NoToken | Refusal::BadToken => 401,
            Refusal::GroupNotAccepted => 403,
            Refusal::Undecided(status) if retryable(status.code()) => 503,
            Refusal::Undecided(_) => 500,
        }
    }

    /// The `WWW-Authenticate` challenge of a 401.
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            Refusal::NoToken => Some(CHALLENGE),
            Refusal::BadToken => Some(CHALLENGE_INVALID),
            Refusal::GroupNotAccepted | Refusal::Undecided(_) => None,
        }
    }
}

/// Codes of failures that may pass by themselves: 503, so the client may retry.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Aborted | Code::ResourceExhausted | Code::DeadlineExceeded
    )
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
        let access = caller.within(&self.accepted);
        let (session, access_token) =
            self.manager
                .admit(&access, token, None)
                .await
                .map_err(|error| match error {
                    SessionError::Unauthenticated
                    | SessionError::Binding { .. }
                    | SessionError::BindingViolated
                    | SessionError::InvalidArgument { .. } => Refusal::BadToken,
                    SessionError::PermissionDenied(_) => Refusal::GroupNotAccepted,
                    // The one mapping to a status, which also logs the failure.
                    error => Refusal::Undecided(Status::from(error)),
                })?;
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
