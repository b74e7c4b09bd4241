//! Request ids: the caller's `x-request-id` when it is short printable ASCII, else a new
//! one (32 hex digits), set on the request for the call log and trace and carried back
//! on the response. tower-http's request-id layers do the setting and carrying; what is
//! ours is which caller ids are kept and how a new id is made.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tonic::codegen::http::{self, HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header that carries the request id both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller; a longer or odd one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a caller's request id that is empty, too long or not printable ASCII, so the
/// request-id layer after it makes a new one.
pub fn drop_unusable<B>(mut request: http::Request<B>) -> http::Request<B> {
    let usable = request.headers().get(&REQUEST_ID).is_none_or(|value| {
        value.len() <= MAX_REQUEST_ID_LEN
            && !value.is_empty()
            && value.as_bytes().iter().all(u8::is_ascii_graphic)
    });
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// Makes request ids unique to this process run: a random prefix drawn at start and a
/// counter, as 32 hex digits (a fresh UUID per call cost a random draw each).
#[derive(Clone, Copy, Debug, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // Without OS randomness the ids are still unique within the run.
            let _ = getrandom::fill(&mut bytes);
            u64::from_be_bytes(bytes)
        });
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&prefix.to_be_bytes());
        id[8..].copy_from_slice(&count.to_be_bytes());
        HeaderValue::from_str(&hex::encode(id))
            .ok()
            .map(RequestId::new)
    }
}

/// The call's request id as the request-id layer set it ("" without that layer).
pub fn of<B>(request: &http::Request<B>) -> &str {
    request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
}

/// The call's request id as the request-id layer set it, if it did.
pub fn value<B>(request: &http::Request<B>) -> Option<HeaderValue> {
    let id = request.extensions().get::<RequestId>()?;
    Some(id.header_value().clone())
}

tokio::task_local! {
    /// The request id of the call the task is serving, for its log lines.
    static CALL_REQUEST_ID: HeaderValue;
}

/// Runs `call` as the call with request id `id` (see [`current`]).
pub fn scope<F: Future>(id: HeaderValue, call: F) -> impl Future<Output = F::Output> {
    CALL_REQUEST_ID.scope(id, call)
}

/// Runs `call` synchronously as the call with request id `id` (see [`current`]).
pub fn sync_scope<R>(id: HeaderValue, call: impl FnOnce() -> R) -> R {
    CALL_REQUEST_ID.sync_scope(id, call)
}

/// The request id of the call being served where this runs (inside [`scope`] or
/// [`sync_scope`]), if any.
pub fn current() -> Option<HeaderValue> {
    CALL_REQUEST_ID.try_with(HeaderValue::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_id() -> String {
        let id = NewRequestId.make_request_id(&http::Request::new(()));
        let id = id.expect("always made");
        id.header_value().to_str().expect("ascii").to_owned()
    }

    #[test]
    fn new_request_ids_are_distinct_hex() {
        let (first, second) = (new_id(), new_id());
        assert_ne!(first, second);
        assert_eq!(first.len(), 32);
        assert!(first
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn only_short_printable_caller_ids_are_kept() {
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        let at_limit = "x".repeat(MAX_REQUEST_ID_LEN);
        let cases = [
            ("abc-123", true),
            (&*at_limit, true),
            ("", false),
            (&*long, false),
            ("a b", false),
            ("tab\there", false),
        ];
        for (id, kept) in cases {
            let mut request = http::Request::new(());
            let value = HeaderValue::from_str(id).expect("header value");
            request.headers_mut().insert(REQUEST_ID, value);
            let request = drop_unusable(request);
            assert_eq!(request.headers().contains_key(REQUEST_ID), kept, "{id:?}");
        }
    }
}
