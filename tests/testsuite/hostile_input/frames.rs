//! Broken gRPC framing over raw HTTP/2: no message, truncated frames, unknown
//! compression flags, random frames and oversized requests are client errors.

use super::*;

/// Posts `body` as a gRPC request to `method` and returns the answer's grpc-status and
/// grpc-message, from the head (trailers-only answer) or from the trailers.
async fn raw_http(channel: Channel, method: &str, body: Vec<u8>) -> (Code, String) {
    use tower::ServiceExt;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(axum::body::Body::from(body)))
        .expect("request");
    let response = channel.oneshot(request).await.expect("an HTTP answer");
    let read = |headers: &http::HeaderMap| {
        let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
        let message = headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .map(percent_decoded)
            .unwrap_or_default();
        Some((Code::from_i32(code), message))
    };
    if let Some(answer) = read(response.headers()) {
        return answer;
    }
    let mut body = response.into_body();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(trailers) = frame.expect("answer body").into_trailers() {
            return read(&trailers).expect("grpc-status in the trailers");
        }
    }
    panic!("the answer carries no grpc-status");
}

/// A grpc-message header value with its %XX escapes undone.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A gRPC frame: compression flag, length (big-endian), message.
fn frame(flag: u8, claimed_len: u32, message: &[u8]) -> Vec<u8> {
    [&[flag][..], &claimed_len.to_be_bytes(), message].concat()
}

on_backends!(a_request_without_a_message_is_invalid_argument: sled, cluster; sync);
fn a_request_without_a_message_is_invalid_argument() {
    let h = Harness::new();
    for method in METHODS {
        let (code, message) = h.block_on(raw_http(h.channel(), method, Vec::new()));
        assert_eq!(code, Code::InvalidArgument, "{method}: {message}");
    }
    h.assert_still_serving();
}

on_backends!(a_truncated_request_frame_is_invalid_argument: sled, cluster; sync);
fn a_truncated_request_frame_is_invalid_argument() {
    let h = Harness::new();
    let message = length_delimited(1, b"st_abc");
    for method in METHODS {
        let body = frame(0, message.len() as u32 + 10, &message);
        let (code, text) = h.block_on(raw_http(h.channel(), method, body));
        assert_eq!(code, Code::InvalidArgument, "{method}: {text}");
    }
    h.assert_still_serving();
}

on_backends!(an_unknown_compression_flag_is_invalid_argument: sled, cluster; sync);
fn an_unknown_compression_flag_is_invalid_argument() {
    let h = Harness::new();
    let message = length_delimited(1, b"st_abc");
    for method in METHODS {
        for flag in [2u8, 0x7f, 0xff] {
            let body = frame(flag, message.len() as u32, &message);
            let (code, text) = h.block_on(raw_http(h.channel(), method, body));
            assert_eq!(code, Code::InvalidArgument, "{method} flag {flag}: {text}");
        }
    }
    h.assert_still_serving();
}

on_backends!(well_framed_random_bytes_never_get_internal: sled, cluster; sync);
fn well_framed_random_bytes_never_get_internal() {
    let h = Harness::new();
    let channel = h.channel();
    let methods = proptest::sample::select(&METHODS[..]);
    h.check((methods, vec(any::<u8>(), 0..200)), |(method, bytes)| {
        let body = frame(0, bytes.len() as u32, &bytes);
        let (code, text) = h.block_on(raw_http(channel.clone(), method, body));
        let answer: Result<(), Status> = match code {
            Code::Ok => Ok(()),
            code => Err(Status::new(code, text)),
        };
        expect_one_of(&answer, codes_for_any_message(method), &(method, &bytes))
    });
}

on_backends!(a_request_over_the_size_limit_is_refused_as_a_client_error: sled, cluster; sync);
fn a_request_over_the_size_limit_is_refused_as_a_client_error() {
    let h = Harness::new();
    let mut client = h.client();
    // Far over any sensible request size (the default limit is 64 KiB), under the
    // transport's own frame limits.
    let huge = "u".repeat(3 * 1024 * 1024);

    let answers = h.block_on(async {
        vec![
            ("Start", code_of(&client.start(start_request(&huge)).await)),
            ("Whoami", code_of(&whoami(&mut client, &huge).await)),
            ("Refresh", code_of(&refresh(&mut client, &huge).await)),
            (
                "RefreshAllForUser",
                code_of(&refresh_all(&mut client, &huge, None).await),
            ),
        ]
    });

    for (method, code) in answers {
        assert!(
            matches!(code, Code::InvalidArgument | Code::ResourceExhausted),
            "{method} with a 3 MiB field answered {code:?}"
        );
    }
    h.assert_still_serving();
}
