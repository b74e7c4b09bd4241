//! Errors of the session rules. `api::error` maps them to gRPC statuses, in one place.

use super::binding::BindingFailure;
use crate::store::StoreError;

/// Why a session call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The request is wrong in itself; `field` names the request field.
    #[error("{field} {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// A token is unknown, wrong, expired, revoked or reused. One variant, one message:
    /// callers must not learn which.
    #[error("the token is invalid, expired or revoked")]
    Unauthenticated,
    /// The token is the session's own, but its binding check failed (device proof or
    /// network). Only a caller holding the current token learns this; `nonce` is a fresh
    /// server nonce to retry with when `failure` asks for one.
    #[error("{}", failure.message())]
    Binding {
        failure: BindingFailure,
        nonce: Option<String>,
    },
    /// The token is the session's own, but a binding violation ended the session.
    #[error("the session was ended because its token was used without the device's proof (or from another network); sign in again")]
    BindingViolated,
    /// An id names nothing the call can act on.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not make this call on this session or group.
    #[error("{0}")]
    PermissionDenied(String),
    /// A limit refuses the call (e.g. the user's maximum of active sessions).
    #[error("{0}")]
    ResourceExhausted(String),
    /// A quota refuses the call for now; `retry_after` says when it would pass.
    #[error("{message}")]
    OverQuota {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A cursor points before what the event log still keeps.
    #[error("{0}")]
    OutOfRange(String),
    /// The server cannot serve this now (shutting down); retry.
    #[error("{0}")]
    Unavailable(String),
    /// The session exists but its state does not allow the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The signing keys failed.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Randomness(#[from] getrandom::Error),
}

impl SessionError {
    /// A bad request field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> SessionError {
        SessionError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}
