//! W3C trace context, when OpenTelemetry traces are on: each sampled call's server span,
//! named and tagged by OpenTelemetry's RPC conventions, continues the caller's
//! `traceparent`; a gateway check continues the trace of the request it checks. Sampling
//! is decided here, before any span is made (the caller's flag, else a coin at the
//! ratio), so an unsampled call costs a header read and nothing more. With traces off
//! nothing here runs: the call log keeps its plain span and no header is read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use tonic::codegen::http::HeaderMap;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Of new traces (no caller's), those whose coin falls below this out of 2^32 are kept.
static KEEP_BELOW: AtomicU64 = AtomicU64::new(0);

/// Turns the traced spans on, once the process exports traces; `ratio` (0 to 1) of new
/// traces are kept, and every trace a caller sampled.
pub fn enable(ratio: f64) {
    let keep_below = (ratio.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64;
    KEEP_BELOW.store(keep_below, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether calls get traced spans.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The server span of one gRPC call at `path` (`/package.Service/Method`), a child of the
/// caller's span when its metadata carries a `traceparent`; None when not sampled.
pub fn call_span(path: &str, metadata: &HeaderMap, request_id: &str) -> Option<Span> {
    let parent = sampled_parent(&Headers(metadata))?;
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
    continue_trace(&span, parent);
    Some(span)
}

/// The span of a gateway's check (ext_authz `Check`, `GET /auth`): in the trace of the
/// checked request when its headers carry a `traceparent`, else in the current one;
/// None when that trace is not sampled (or, for a new one, the coin says no).
pub fn gateway_span(name: &'static str, checked: &dyn Extractor) -> Option<Span> {
    let parent = extract(checked);
    let caller = parent.span().span_context().clone();
    let in_traced_call = Span::current()
        .metadata()
        .is_some_and(|meta| meta.name() == "rpc");
    let parent = if caller.is_valid() {
        caller.is_sampled().then_some(parent)?
    } else if in_traced_call || coin() {
        // Under the traced call (ext_authz), else a new trace (GET /auth).
        Context::new()
    } else {
        return None;
    };
    let span = tracing::info_span!(
        "gateway",
        otel.name = name,
        otel.kind = "server",
        trace_id = Empty,
        span_id = Empty,
    );
    continue_trace(&span, parent);
    Some(span)
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

/// The caller's context from `carrier` when its trace is sampled, an empty one for a new
/// trace the coin keeps, else None.
fn sampled_parent(carrier: &dyn Extractor) -> Option<Context> {
    let parent = extract(carrier);
    let caller = parent.span().span_context().clone();
    if caller.is_valid() {
        return caller.is_sampled().then_some(parent);
    }
    coin().then(Context::new)
}

/// The W3C trace context in `carrier` (an empty context without one).
fn extract(carrier: &dyn Extractor) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(carrier))
}

/// Whether a new trace is kept, at the ratio given to [`enable`].
fn coin() -> bool {
    u64::from(getrandom::u32().unwrap_or(u32::MAX)) < KEEP_BELOW.load(Ordering::Relaxed)
}

/// Makes `parent` the span's parent if it is a caller's (else the span stays in the
/// current trace), then writes the span's trace and span ids into its fields, so log
/// lines inside it join the trace.
fn continue_trace(span: &Span, parent: Context) {
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
