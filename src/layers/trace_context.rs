//! W3C trace context, when OpenTelemetry traces are on: each call's server span, named and
//! tagged by OpenTelemetry's RPC conventions, continues the caller's `traceparent`; a
//! gateway check continues the trace of the request it checks. With traces off nothing
//! here runs: the call log keeps its plain span and no header is read.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tonic::codegen::http::HeaderMap;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the traced spans on, once the process exports traces.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether calls get traced spans.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The server span of one gRPC call at `path` (`/package.Service/Method`), a child of the
/// caller's span when its metadata carries a `traceparent`.
pub fn call_span(path: &str, metadata: &HeaderMap, request_id: &str) -> Span {
    let name = path.trim_start_matches('/');
    let (service, method) = name.split_once('/').unwrap_or(("", name));
    let span = tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        request_id,
        trace_id = Empty,
        span_id = Empty,
    );
    continue_trace(&span, &Headers(metadata));
    span
}

/// The span of a gateway's check (ext_authz `Check`, `GET /auth`): in the trace of the
/// checked request when its headers carry a `traceparent`, else in the current one.
pub fn gateway_span(name: &'static str, checked: &dyn Extractor) -> Span {
    let span = tracing::info_span!(
        "gateway",
        otel.name = name,
        otel.kind = "server",
        trace_id = Empty,
        span_id = Empty,
    );
    continue_trace(&span, checked);
    span
}

/// gRPC metadata (HTTP/2 headers), where OpenTelemetry looks for `traceparent`.
struct Headers<'a>(pub &'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// Puts the call's gRPC status on its span; the codes that OpenTelemetry's conventions
/// count as a server's error also mark the span's status.
pub fn record_status(span: &Span, code: tonic::Code) {
    span.record("rpc.grpc.status_code", code as i64);
    use tonic::Code::*;
    if matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    ) {
        span.record("otel.status_code", "ERROR");
    }
}

/// Takes the parent from `carrier` if it has a valid one (else the span stays in the
/// current trace), then writes the span's trace and span ids into its fields, so log
/// lines inside it join the trace.
fn continue_trace(span: &Span, carrier: &dyn Extractor) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    if parent.span().span_context().is_valid() {
        // Fails only for a span already started or disabled: then it keeps its parent.
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let ids = context.span().span_context().clone();
    if ids.is_valid() {
        span.record("trace_id", tracing::field::display(ids.trace_id()));
        span.record("span_id", tracing::field::display(ids.span_id()));
    }
}
