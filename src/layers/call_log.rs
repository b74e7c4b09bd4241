//! One INFO line and two metrics per call: method, gRPC status code, latency and a
//! request id (the caller's `x-request-id`, or a new one), which the response carries
//! back. Nothing of the request or response bodies, so no token can reach the log.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http::{self, HeaderValue};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::{CALLS, CALL_SECONDS};

/// The header that carries the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest request id taken from a caller; a longer or odd one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Wraps a service with [`CallLog`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CallLogLayer;

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> CallLog<S> {
        CallLog { inner }
    }
}

/// Logs and counts each call when its response head is ready.
#[derive(Clone, Debug)]
pub struct CallLog<S> {
    inner: S,
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

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let request_id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID, request_id.clone());
        let span =
            tracing::info_span!("call", request_id = request_id.to_str().unwrap_or_default());
        let started = Instant::now();
        let response = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut response = response.await;
                let elapsed = started.elapsed();
                let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                match &mut response {
                    Ok(response) => {
                        let code = status_code(response.headers());
                        response.headers_mut().insert(REQUEST_ID, request_id);
                        metrics::counter!(CALLS, "method" => method.clone(), "code" => code_name(code))
                            .increment(1);
                        metrics::histogram!(CALL_SECONDS, "method" => method.clone())
                            .record(elapsed.as_secs_f64());
                        tracing::info!(method = %method, code = code_name(code), latency_us, "call");
                    }
                    Err(_) => {
                        tracing::warn!(method = %method, latency_us, "call failed in transport")
                    }
                }
                response
            }
            .instrument(span),
        )
    }
}

/// The caller's request id if it is short printable ASCII, else a new UUID v7.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|value| {
            value.len() <= MAX_REQUEST_ID_LEN
                && !value.is_empty()
                && value.as_bytes().iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| {
            // A UUID's text form is always a valid header value.
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
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
