//! Logs failed and slow calls (every call with `log_calls = "all"`) and counts every
//! call in two metrics: method, gRPC status code, latency and the request id that
//! `request_id` set (the caller's `x-request-id`, or a new one). Nothing of the
//! request or response bodies, so no token can reach the log. A traced call runs in its
//! OpenTelemetry server span (`trace_context`); any other call runs with its request id
//! in its task, which its log lines show (`log_lines`). Each method keeps its metric
//! handles, so a call builds no metric key; without a recorder it touches no metric.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use metrics::{Counter, Histogram};
use serde::Deserialize;
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{request_id, trace_context};
use crate::metrics::{CALLS, CALL_SECONDS};

/// Distinct method labels kept for metrics; further paths (only unknown methods, which
/// anyone can make up) share the label `other`, so labels stay bounded.
const MAX_METHOD_LABELS: usize = 64;

/// gRPC status codes: 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;

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
        let method = method_of(request.uri().path());
        let traced = if trace_context::enabled() {
            let request_id = request_id::of(&request);
            trace_context::call_span(request.uri().path(), request.headers(), request_id)
        } else {
            None
        };
        // An untraced call's log lines get its request id from the task, not from a
        // span: a span per call cost ~8 % of a Whoami's server CPU (BENCHMARKS.md).
        let untraced_id = match traced {
            Some(_) => None,
            None => request_id::value(&request),
        };
        let settings = self.settings;
        let started = Instant::now();
        let response = match (&traced, &untraced_id) {
            (Some(span), _) => span.in_scope(|| self.inner.call(request)),
            (None, Some(id)) => request_id::sync_scope(id.clone(), || self.inner.call(request)),
            (None, None) => self.inner.call(request),
        };
        let call = {
            let traced = traced.clone();
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
                        record_call(&settings, method, status, elapsed);
                    }
                    Err(_) => {
                        tracing::warn!(
                            method = %method.label,
                            latency_us = micros(elapsed),
                            "call failed in transport"
                        )
                    }
                }
                response
            }
        };
        match (traced, untraced_id) {
            (Some(span), _) => Box::pin(call.instrument(span)),
            (None, Some(id)) => Box::pin(request_id::scope(id, call)),
            (None, None) => Box::pin(call),
        }
    }
}

/// A call whose answer is still coming. Dropped before the answer (the client reset
/// the stream or went away), it is counted and logged as CANCELLED.
struct Pending {
    method: &'static MethodMetrics,
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
            tonic::Code::Cancelled,
            self.started.elapsed(),
        );
    }
}

/// Counts the call and writes its line, at the level its outcome and the settings ask
/// for.
fn record_call(
    settings: &CallLogSettings,
    method: &'static MethodMetrics,
    status: tonic::Code,
    elapsed: Duration,
) {
    let code = code_name(status);
    if crate::metrics::installed() {
        method.count(status);
        method.latency().record(elapsed.as_secs_f64());
    }
    let method = method.label;
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

/// A method's label and its metric handles, made on first use once the recorder is
/// installed (a handle made before would stay a no-op).
struct MethodMetrics {
    label: &'static str,
    latency: OnceLock<Histogram>,
    /// By status code.
    calls: [OnceLock<Counter>; CODES],
}

impl MethodMetrics {
    fn leak(label: &'static str) -> &'static MethodMetrics {
        Box::leak(Box::new(MethodMetrics {
            label,
            latency: OnceLock::new(),
            calls: [const { OnceLock::new() }; CODES],
        }))
    }

    fn latency(&self) -> &Histogram {
        self.latency
            .get_or_init(|| metrics::histogram!(CALL_SECONDS, "method" => self.label))
    }

    /// Counts a call answered with `status`.
    fn count(&self, status: tonic::Code) {
        let counter =
            || metrics::counter!(CALLS, "method" => self.label, "code" => code_name(status));
        match self.calls.get(status as usize) {
            Some(cell) => cell.get_or_init(counter).increment(1),
            // A code past the table (none today) is counted without a kept handle.
            None => counter().increment(1),
        }
    }
}

/// The call's path as a `'static` label with its metric handles: metrics and log fields
/// then need no allocation per call. The first [`MAX_METHOD_LABELS`] distinct paths are
/// kept (leaked once each); the rest share `other`.
fn method_of(path: &str) -> &'static MethodMetrics {
    type Methods = RwLock<HashMap<Box<str>, &'static MethodMetrics>>;
    static METHODS: OnceLock<Methods> = OnceLock::new();
    static OTHER: OnceLock<&'static MethodMetrics> = OnceLock::new();
    let other = || *OTHER.get_or_init(|| MethodMetrics::leak("other"));
    let methods = METHODS.get_or_init(Default::default);
    if let Some(method) = methods.read().ok().and_then(|map| map.get(path).copied()) {
        return method;
    }
    let Ok(mut map) = methods.write() else {
        return other();
    };
    if let Some(method) = map.get(path) {
        return method;
    }
    if map.len() >= MAX_METHOD_LABELS {
        return other();
    }
    let method = MethodMetrics::leak(Box::leak(path.into()));
    map.insert(path.into(), method);
    method
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
        let first = method_of("/a.B/C");
        assert!(std::ptr::eq(first, method_of("/a.B/C")));
        assert_eq!(first.label, "/a.B/C");
        for n in 0..2 * MAX_METHOD_LABELS {
            method_of(&format!("/made.up/{n}"));
        }
        assert_eq!(method_of("/made.up/never-seen").label, "other");
        assert!(std::ptr::eq(
            method_of("/made.up/never-seen"),
            method_of("/made.up/other-never-seen")
        ));
    }
}
