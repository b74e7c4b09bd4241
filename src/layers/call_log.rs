//! Logs failed and slow calls (every call with `log_calls = "all"`) and counts every
//! call in two metrics: method, gRPC status code, latency and the request id that
//! `request_id` set (the caller's `x-request-id`, or a new one). Nothing of the
//! request or response bodies, so no token can reach the log. With traces on, the call's
//! span is its OpenTelemetry server span (`trace_context`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{request_id, trace_context};
use crate::metrics::{CALLS, CALL_SECONDS};

/// Distinct method labels kept for metrics; further paths (only unknown methods, which
/// anyone can make up) share the label `other`, so labels stay bounded.
const MAX_METHOD_LABELS: usize = 64;

/// Which calls get a log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogCalls {
    /// Failed calls (any code but OK) and calls slower than `slow_call`; successful calls
    /// log at DEBUG, so `RUST_LOG=debug` shows them too.
    #[default]
    Failed,
    /// Every call, at INFO: an access log.
    All,
}

impl std::str::FromStr for LogCalls {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::keyword::parse_keyword(s)
    }
}

/// What the call log writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLogSettings {
    pub log_calls: LogCalls,
    /// A call answered after this long is logged at WARN, whatever its code.
    pub slow_call: Duration,
}

impl Default for CallLogSettings {
    fn default() -> Self {
        CallLogSettings {
            log_calls: LogCalls::default(),
            slow_call: Duration::from_secs(1),
        }
    }
}

/// Wraps a service with [`CallLog`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CallLogLayer {
    settings: CallLogSettings,
}

impl CallLogLayer {
    pub fn new(settings: CallLogSettings) -> CallLogLayer {
        CallLogLayer { settings }
    }
}

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> CallLog<S> {
        CallLog {
            inner,
            settings: self.settings,
        }
    }
}

/// Logs and counts each call when its response head is ready.
#[derive(Clone, Debug)]
pub struct CallLog<S> {
    inner: S,
    settings: CallLogSettings,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CallLog<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = method_label(request.uri().path());
        let request_id = request_id::of(&request);
        let traced = if trace_context::enabled() {
            trace_context::call_span(request.uri().path(), request.headers(), request_id)
        } else {
            None
        };
        let span = traced
            .clone()
            .unwrap_or_else(|| tracing::info_span!("call", request_id));
        let settings = self.settings;
        let started = Instant::now();
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut pending = Pending {
                    method,
                    settings,
                    started,
                    answered: false,
                };
                let mut response = response.await;
                pending.answered = true;
                let elapsed = started.elapsed();
                match &mut response {
                    Ok(response) => {
                        let status = status_code(response.headers());
                        if let Some(span) = &traced {
                            trace_context::record_status(span, status);
                        }
                        let code = code_name(status);
                        record_call(&settings, method, code, elapsed);
                    }
                    Err(_) => {
                        tracing::warn!(
                            method = %method,
                            latency_us = micros(elapsed),
                            "call failed in transport"
                        )
                    }
                }
                response
            }
            .instrument(span),
        )
    }
}

/// A call whose answer is still coming. Dropped before the answer (the client reset
/// the stream or went away), it is counted and logged as CANCELLED.
struct Pending {
    method: &'static str,
    settings: CallLogSettings,
    started: Instant,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        record_call(
            &self.settings,
            self.method,
            code_name(tonic::Code::Cancelled),
            self.started.elapsed(),
        );
    }
}

/// Counts the call and writes its line, at the level its outcome and the settings ask
/// for.
fn record_call(
    settings: &CallLogSettings,
    method: &'static str,
    code: &'static str,
    elapsed: Duration,
) {
    metrics::counter!(CALLS, "method" => method, "code" => code).increment(1);
    metrics::histogram!(CALL_SECONDS, "method" => method).record(elapsed.as_secs_f64());
    let latency_us = micros(elapsed);
    if elapsed >= settings.slow_call {
        tracing::warn!(method = %method, code, latency_us, "slow call");
    } else if code != "OK" || settings.log_calls == LogCalls::All {
        tracing::info!(method = %method, code, latency_us, "call");
    } else {
        tracing::debug!(method = %method, code, latency_us, "call");
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// The call's path as a `'static` label: metrics and log fields then need no allocation
/// per call. The first [`MAX_METHOD_LABELS`] distinct paths are kept (leaked once each).
fn method_label(path: &str) -> &'static str {
    static LABELS: OnceLock<RwLock<HashMap<Box<str>, &'static str>>> = OnceLock::new();
    let labels = LABELS.get_or_init(Default::default);
    if let Some(label) = labels.read().ok().and_then(|map| map.get(path).copied()) {
        return label;
    }
    let Ok(mut map) = labels.write() else {
        return "other";
    };
    if let Some(label) = map.get(path) {
        return label;
    }
    if map.len() >= MAX_METHOD_LABELS {
        return "other";
    }
    let label: &'static str = Box::leak(path.into());
    map.insert(path.into(), label);
    label
}

/// The call's status: in the head for an error (trailers-only), else OK. A unary
/// success carries `grpc-status: 0` in its trailers, after the head.
fn status_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

/// The canonical name of a gRPC status code, as grpcurl and ghz print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_reused_and_bounded() {
        let first = method_label("/a.B/C");
        assert!(std::ptr::eq(first, method_label("/a.B/C")));
        for n in 0..2 * MAX_METHOD_LABELS {
            method_label(&format!("/made.up/{n}"));
        }
        assert_eq!(method_label("/made.up/never-seen"), "other");
    }
}
