//! Some faults of the caller surface in tonic itself, before our codec sees a message:
//! a missing message, a truncated frame, an unknown compression flag (tonic: INTERNAL)
//! and a message over `max_request_bytes` (tonic: OUT_OF_RANGE). INTERNAL must mean our
//! bug or a storage failure, so this layer re-labels those answers: INVALID_ARGUMENT for
//! bad framing, RESOURCE_EXHAUSTED for the size limit. Messages stay as tonic wrote them.

use std::task::{Context, Poll};

use futures::future::{MapOk, TryFutureExt};
use tonic::codegen::http::{self, HeaderValue};
use tower::{Layer, Service};

/// tonic's messages for faults of the caller, with the code they should carry.
///
/// tonic gives these faults no type or code of their own, and they happen before any
/// codec of ours runs, so matching the text is the only hook. The texts mirror tonic
/// 0.14.9: `src/server/grpc.rs` (`Status::internal("Missing request message.")` in
/// `map_request_unary`) and `src/codec/decode.rs` (`StreamingInner::decode_chunk`: the
/// compression flag and the length limit; `poll_frame`: "Unexpected EOF decoding
/// stream."). If a tonic upgrade rewords one, these tests fail loudly (INTERNAL or
/// OUT_OF_RANGE instead of the code below): `tests/testsuite/hostile_input/`
/// (`a_request_without_a_message_is_invalid_argument`,
/// `a_truncated_request_frame_is_invalid_argument`,
/// `an_unknown_compression_flag_is_invalid_argument`) and `tests/testsuite/auth.rs` (the
/// `max_request_bytes` test).
const CLIENT_FAULTS: [(&str, tonic::Code); 4] = [
    ("Missing request message", tonic::Code::InvalidArgument),
    (
        "Unexpected EOF decoding stream",
        tonic::Code::InvalidArgument,
    ),
    ("invalid compression flag", tonic::Code::InvalidArgument),
    (
        "decoded message length too large",
        tonic::Code::ResourceExhausted,
    ),
];

/// Wraps a service with [`ClientFaults`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientFaultsLayer;

impl<S> Layer<S> for ClientFaultsLayer {
    type Service = ClientFaults<S>;

    fn layer(&self, inner: S) -> ClientFaults<S> {
        ClientFaults { inner }
    }
}

/// Re-labels tonic's answers to faults of the caller.
#[derive(Clone, Debug)]
pub struct ClientFaults<S> {
    inner: S,
}

type Relabel<B> = fn(http::Response<B>) -> http::Response<B>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ClientFaults<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = MapOk<S::Future, Relabel<ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        self.inner.call(request).map_ok(relabel::<ResBody>)
    }
}

fn relabel<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let faulty = matches!(
        headers.get("grpc-status").map(HeaderValue::as_bytes),
        Some(b"13") | Some(b"11")
    );
    if !faulty {
        return response;
    }
    let message = headers
        .get("grpc-message")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    // grpc-message is percent-encoded: compare with spaces encoded too.
    let code = CLIENT_FAULTS.iter().find_map(|(text, code)| {
        (message.contains(text) || message.contains(&text.replace(' ', "%20"))).then_some(*code)
    });
    if let Some(code) = code {
        response
            .headers_mut()
            .insert("grpc-status", HeaderValue::from(code as i32));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &str, message: &str) -> http::Response<()> {
        let mut response = http::Response::new(());
        response
            .headers_mut()
            .insert("grpc-status", status.parse().expect("ascii"));
        response
            .headers_mut()
            .insert("grpc-message", message.parse().expect("ascii"));
        response
    }

    fn code(response: &http::Response<()>) -> &str {
        response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    #[test]
    fn a_missing_message_is_the_callers_fault() {
        assert_eq!(
            code(&relabel(answer("13", "Missing%20request%20message."))),
            "3"
        );
    }

    #[test]
    fn an_oversized_message_hits_a_limit() {
        let response = relabel(answer(
            "11",
            "Error, decoded message length too large: found 2031 bytes",
        ));
        assert_eq!(code(&response), "8");
    }

    #[test]
    fn other_internal_errors_stay_internal() {
        assert_eq!(code(&relabel(answer("13", "internal error"))), "13");
    }
}
