//! Message bytes no prost type would send: arbitrary bytes, undecodable protobuf and
//! invalid UTF-8 in any string field get a client error, never INTERNAL.

use super::*;

/// Sends already-encoded message bytes, so a test can send what no prost type would.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// Reads any answer's message and keeps nothing of it.
struct SkipDecoder;

impl Decoder for SkipDecoder {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        use prost::bytes::Buf;
        let len = src.remaining();
        src.advance(len);
        Ok(Some(()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = SkipDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> SkipDecoder {
        SkipDecoder
    }
}

/// Sends `message` as the request message of `method`.
async fn raw_call(channel: Channel, method: &'static str, message: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    grpc.unary(
        tonic::Request::new(message),
        PathAndQuery::from_static(method),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

on_backends!(any_message_bytes_get_a_client_error_never_internal: sled, cluster; sync);
fn any_message_bytes_get_a_client_error_never_internal() {
    let h = Harness::new();
    let channel = h.channel();
    let methods = proptest::sample::select(&METHODS[..]);
    h.check((methods, vec(any::<u8>(), 0..300)), |(method, bytes)| {
        let result = h.block_on(raw_call(channel.clone(), method, bytes.clone()));
        expect_one_of(&result, codes_for_any_message(method), &(method, &bytes))
    });
}

/// Message bytes that are not protobuf: a key with wire type 6 or 7 (which do not
/// exist), or a length-delimited field longer than what follows.
fn undecodable_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1u8..16, 6u8..8, vec(any::<u8>(), 0..40)).prop_map(|(field, wire, rest)| [
            vec![(field << 3) | wire],
            rest
        ]
        .concat()),
        (1u8..16, vec(any::<u8>(), 0..40)).prop_map(|(field, rest)| {
            let claimed = u8::try_from(rest.len() + 1).unwrap_or(u8::MAX).min(127);
            [vec![(field << 3) | 2, claimed], rest].concat()
        }),
    ]
}

on_backends!(undecodable_message_bytes_are_invalid_argument: sled, cluster; sync);
fn undecodable_message_bytes_are_invalid_argument() {
    let h = Harness::new();
    let channel = h.channel();
    let methods = proptest::sample::select(&METHODS[..]);
    h.check((methods, undecodable_bytes()), |(method, bytes)| {
        let result = h.block_on(raw_call(channel.clone(), method, bytes.clone()));
        expect(&result, Code::InvalidArgument, "", &(method, &bytes))
    });
}

/// Every string field of every request by (method, field number, is a map).
const STRING_FIELDS: [(&str, u8, bool); 13] = [
    ("/session.v1.SessionService/Start", 1, false),
    ("/session.v1.SessionService/Start", 2, false),
    ("/session.v1.SessionService/Start", 4, true),
    ("/session.v1.SessionService/Start", 5, true),
    ("/session.v1.SessionService/Refresh", 1, false),
    ("/session.v1.SessionService/Extend", 1, false),
    ("/session.v1.SessionService/Whoami", 1, false),
    ("/session.v1.SessionService/Logout", 1, false),
    ("/session.v1.SessionService/Logout", 2, false),
    ("/session.v1.SessionService/Logout", 4, false),
    ("/session.v1.SessionService/RefreshAllForUser", 1, false),
    ("/session.v1.SessionService/ListUserSessions", 1, false),
    ("/session.v1.SessionService/ListUserSessions", 3, false),
];

on_backends!(invalid_utf8_in_any_string_field_is_invalid_argument: sled, cluster; sync);
fn invalid_utf8_in_any_string_field_is_invalid_argument() {
    let h = Harness::new();
    let channel = h.channel();
    let bad_utf8 =
        vec(any::<u8>(), 1..60).prop_filter("not UTF-8", |b| std::str::from_utf8(b).is_err());
    let fields = proptest::sample::select(&STRING_FIELDS[..]);
    h.check(
        (fields, bad_utf8, any::<bool>()),
        |((method, field, is_map), bytes, in_key)| {
            let message = if is_map {
                // A map entry is a message: key = 1, value = 2.
                let entry = if in_key {
                    [length_delimited(1, &bytes), length_delimited(2, b"v")].concat()
                } else {
                    [length_delimited(1, b"k"), length_delimited(2, &bytes)].concat()
                };
                [
                    length_delimited(1, b"alice"),
                    length_delimited(field, &entry),
                ]
                .concat()
            } else {
                length_delimited(field, &bytes)
            };
            let result = h.block_on(raw_call(channel.clone(), method, message));
            expect(&result, Code::InvalidArgument, "", &(method, field, &bytes))
        },
    );
}
