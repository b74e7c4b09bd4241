//! The ways a `sessionctl` run fails, how each is printed, and its exit code.

use std::error::Error;
use std::fmt;

use tonic::{Code, Status};

/// Exit code when the server answered with an error status, the call timed out, or its
/// answer could not be written: the call may have had an effect.
const EXIT_CALL_FAILED: u8 = 1;
/// Exit code for bad flags or input and an unreachable server: nothing was sent. Clap
/// uses it for its own usage errors too.
const EXIT_NOTHING_SENT: u8 = 2;

/// Why a run failed.
#[derive(Debug)]
pub enum CtlError {
    /// Bad flags or input, found before anything was sent.
    Usage(String),
    /// No connection to the server could be made.
    Connect {
        /// The address as the endpoint saw it.
        addr: String,
        /// What went wrong, with its causes.
        detail: String,
    },
    /// The call failed with a gRPC status (from the server, the transport or the timeout).
    Status(Status),
    /// The answer could not be written to stdout.
    Output(std::io::Error),
    /// `health`: the server answered, with a status other than SERVING.
    NotServing {
        /// The service asked about ("" is the whole server).
        service: String,
        /// The status's name in the health protocol, e.g. "NOT_SERVING".
        status: &'static str,
    },
}

impl CtlError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) | CtlError::Connect { .. } => EXIT_NOTHING_SENT,
            CtlError::Status(_) | CtlError::Output(_) | CtlError::NotServing { .. } => {
                EXIT_CALL_FAILED
            }
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Usage(message) => f.write_str(message),
            CtlError::Connect { addr, detail } => write!(f, "cannot connect to {addr}: {detail}"),
            CtlError::Status(status) => {
                f.write_str(code_name(status.code()))?;
                if !status.message().is_empty() {
                    write!(f, ": {}", status.message())?;
                }
                match status.source() {
                    Some(source) => write!(f, ": {}", causes(source)),
                    None => Ok(()),
                }
            }
            CtlError::Output(error) => write!(f, "cannot write the answer: {error}"),
            CtlError::NotServing { service, status } => match service.as_str() {
                "" => write!(f, "the server is {status}"),
                service => write!(f, "{service} is {status}"),
            },
        }
    }
}

impl From<Status> for CtlError {
    fn from(status: Status) -> Self {
        CtlError::Status(status)
    }
}

/// `error` and its sources, joined by ": ", skipping a source that only repeats the
/// message before it.
pub fn causes(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(source) = current {
        let message = source.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        current = source.source();
    }
    text
}

/// The canonical gRPC name of `code`, as grpcurl and the other gRPC tools print it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_prints_its_code_name_and_message() {
        let error = CtlError::from(Status::unauthenticated("invalid or expired session"));
        assert_eq!(
            error.to_string(),
            "UNAUTHENTICATED: invalid or expired session"
        );
        assert_eq!(error.exit_code(), 1);
    }

    #[test]
    fn usage_and_connection_failures_exit_2() {
        assert_eq!(CtlError::Usage("bad".into()).exit_code(), 2);
        let connect = CtlError::Connect {
            addr: "http://127.0.0.1:1".into(),
            detail: "refused".into(),
        };
        assert_eq!(
            connect.to_string(),
            "cannot connect to http://127.0.0.1:1: refused"
        );
        assert_eq!(connect.exit_code(), 2);
    }

    #[test]
    fn a_service_not_serving_names_itself_and_exits_1() {
        let not_serving = |service: &str| CtlError::NotServing {
            service: service.into(),
            status: "NOT_SERVING",
        };
        let error = not_serving("session.v1.SessionService");
        assert_eq!(
            error.to_string(),
            "session.v1.SessionService is NOT_SERVING"
        );
        assert_eq!(error.exit_code(), 1);
        assert_eq!(not_serving("").to_string(), "the server is NOT_SERVING");
    }
}
