//! The one mapping from session errors to gRPC statuses.

use std::collections::HashMap;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::session::binding::BindingFailure;
use crate::session::SessionError;
use crate::store::StoreError;

/// The `domain` of every google.rpc.ErrorInfo this server sends.
const ERROR_DOMAIN: &str = "sessiond";

/// A failed binding check: UNAUTHENTICATED with its reason in google.rpc.ErrorInfo and,
/// for `NONCE_REQUIRED`, the nonce to retry with in the info's metadata and in the
/// `dpop-nonce` header (where DPoP's `DPoP-Nonce` would carry it).
fn binding_refusal(failure: BindingFailure, nonce: Option<String>) -> Status {
    let info = nonce
        .iter()
        .map(|nonce| ("nonce".to_owned(), nonce.clone()));
    let mut status = Status::with_error_details(
        Code::Unauthenticated,
        failure.message(),
        ErrorDetails::with_error_info(
            failure.reason(),
            ERROR_DOMAIN,
            info.collect::<HashMap<_, _>>(),
        ),
    );
    if let Some(value) = nonce.and_then(|nonce| MetadataValue::try_from(nonce).ok()) {
        status.metadata_mut().insert("dpop-nonce", value);
    }
    status
}

impl From<SessionError> for Status {
    fn from(error: SessionError) -> Status {
        match error {
            SessionError::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
            SessionError::Unauthenticated => Status::unauthenticated(error.to_string()),
            SessionError::Binding { failure, nonce } => binding_refusal(failure, nonce),
            SessionError::BindingViolated => Status::with_error_details(
                Code::Unauthenticated,
                error.to_string(),
                ErrorDetails::with_error_info("BINDING_VIOLATION", ERROR_DOMAIN, []),
            ),
            SessionError::NotFound(message) => Status::not_found(message),
            SessionError::FailedPrecondition(message) => Status::failed_precondition(message),
            SessionError::OverQuota {
                message,
                retry_after,
            } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                // google.rpc.RetryInfo: gRPC clients and proxies read it to back off.
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            SessionError::OutOfRange(message) => Status::out_of_range(message),
            SessionError::Unavailable(message) => Status::unavailable(message),
            SessionError::PermissionDenied(message) => Status::permission_denied(message),
            SessionError::ResourceExhausted(message) => Status::resource_exhausted(message),
            SessionError::Store(StoreError::Unavailable(detail)) => {
                tracing::warn!(error = %detail, "session store unreachable");
                Status::unavailable("the session store cannot be reached right now; retry shortly")
            }
            // The store logged the detail once for the episode; not again per call.
            SessionError::Store(StoreError::Io(_)) => Status::unavailable(
                "the session store cannot write to its disk right now; retry shortly (another instance, or this one once restarted)",
            ),
            SessionError::Store(StoreError::Rebuilding) => Status::unavailable(
                "the server restarted and is still indexing its sessions; retry in a few seconds",
            ),
            SessionError::Store(StoreError::Unsupported(message)) => {
                Status::failed_precondition(message)
            }
            SessionError::Store(StoreError::Contended(_)) => {
                Status::aborted("too many concurrent changes to the same session; retry")
            }
            SessionError::Store(_) | SessionError::Randomness(_) | SessionError::Signing(_) => {
                // The detail stays in the log; the caller learns only that it was ours.
                tracing::error!(error = %error, "internal failure");
                Status::internal("internal error; the server log has the detail")
            }
        }
    }
}
