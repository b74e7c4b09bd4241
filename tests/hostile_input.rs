//! Hostile input: arbitrary strings, bytes and sizes in every request field, undecodable
//! messages and broken gRPC frames never panic the server nor get INTERNAL or UNKNOWN;
//! each gets the code the contract names (INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND),
//! and a wrong secret answers exactly like an unknown session. The server keeps serving.

mod common;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::future::{poll_fn, Future};
use std::pin::Pin;

use axum::body::HttpBody;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::TestServer;
use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost::bytes::BufMut;
use sessiond::proto::session::v1::{
    ListUserSessionsRequest, LogoutRequest, RefreshRequest, StartRequest, StartResponse,
    WhoamiRequest,
};
use support::*;
use tokio::runtime::Runtime;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Cases per property: enough to cross every branch, few enough for CI.
const CASES: u32 = 64;

/// The default limits (docs/configuration.md, `[limits]`).
const MAX_USER_ID_BYTES: usize = 256;
const MAX_GROUP_BYTES: usize = 64;
const MAX_MAP_ENTRIES: usize = 32;
const MAX_MAP_KEY_BYTES: usize = 64;
const MAX_MAP_VALUE_BYTES: usize = 1024;

/// Every unary method of the service, by path.
const METHODS: [&str; 7] = [
    "/session.v1.SessionService/Start",
    "/session.v1.SessionService/Refresh",
    "/session.v1.SessionService/Extend",
    "/session.v1.SessionService/Whoami",
    "/session.v1.SessionService/Logout",
    "/session.v1.SessionService/RefreshAllForUser",
    "/session.v1.SessionService/ListUserSessions",
];

/// One in-process server for a whole property, driven from a sync test through
/// `block_on`, with one live session to aim at.
struct Harness {
    client: Client,
    /// The key the harness's own calls carry, if callers are configured.
    api_key: Option<String>,
    live: StartResponse,
    test: TestServer,
    rt: Runtime,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config("", None)
    }

    /// A server with config `toml`; with `api_key`, the harness's own calls carry it.
    fn with_config(toml: &str, api_key: Option<&str>) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (test, mut client) = rt.block_on(async {
            let test = TestServer::with_config(toml).await;
            let client = test.client().await;
            (test, client)
        });
        let live = rt.block_on(async {
            let request = with_key(start_request("victim"), api_key);
            client.start(request).await.expect("start").into_inner()
        });
        Harness {
            client,
            api_key: api_key.map(str::to_owned),
            live,
            test,
            rt,
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn channel(&self) -> Channel {
        self.block_on(self.test.channel())
    }

    fn live_id(&self) -> String {
        session_of(&self.live.session).session_id.clone()
    }

    /// Runs `property` on `CASES` values of `strategy`, then checks the server still
    /// serves: the live session is untouched and a new one starts.
    fn check<S: Strategy>(
        &self,
        strategy: S,
        property: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) {
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(failure) = runner.run(&strategy, property) {
            panic!("{failure}");
        }
        self.assert_still_serving();
    }

    fn assert_still_serving(&self) {
        let mut client = self.client();
        let key = self.api_key.as_deref();
        self.block_on(async {
            let whoami = |token: &str| {
                with_key(
                    WhoamiRequest {
                        session_token: token.to_owned(),
                        client: None,
                    },
                    key,
                )
            };
            client
                .whoami(whoami(&self.live.session_token))
                .await
                .expect("the live session still validates");
            let started = client
                .start(with_key(start_request("after"), key))
                .await
                .expect("a new session starts")
                .into_inner();
            client
                .whoami(whoami(&started.session_token))
                .await
                .expect("the new session validates");
        });
    }
}

/// `message` as a request, with `authorization: Bearer key` when given a key.
fn with_key<T>(message: T, key: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().expect("ascii key");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The code of a call's answer, OK included.
fn code_of<T>(result: &Result<T, Status>) -> Code {
    result.as_ref().map_or_else(Status::code, |_| Code::Ok)
}

/// Fails the case unless `result` has code `expected` (and an INVALID_ARGUMENT names
/// `field`).
fn expect<T: std::fmt::Debug>(
    result: &Result<T, Status>,
    expected: Code,
    field: &'static str,
    input: &dyn std::fmt::Debug,
) -> Result<(), TestCaseError> {
    let verdict = Verdict::default().must(expected == Code::InvalidArgument, field);
    let otherwise = [expected];
    verdict.judge(result, &otherwise, input)
}

/// Fails the case unless the answer's code is one of `allowed`.
fn expect_one_of<T: std::fmt::Debug>(
    result: &Result<T, Status>,
    allowed: &[Code],
    input: &dyn std::fmt::Debug,
) -> Result<(), TestCaseError> {
    prop_assert!(
        allowed.contains(&code_of(result)),
        "input {:?} answered {:?}; allowed: {:?}",
        input,
        result,
        allowed
    );
    Ok(())
}

/// What the contract says of one request: the fields it must refuse, the fields it
/// may refuse (by rules beyond the contract's words, such as a blank user id), and the
/// codes it may answer when it refuses nothing.
#[derive(Debug, Default)]
struct Verdict {
    must: Vec<&'static str>,
    may: Vec<&'static str>,
}

impl Verdict {
    fn must(mut self, refused: bool, field: &'static str) -> Verdict {
        if refused {
            self.must.push(field);
        }
        self
    }

    fn may(mut self, refused: bool, field: &'static str) -> Verdict {
        if refused {
            self.may.push(field);
        }
        self
    }

    /// A refusal must be INVALID_ARGUMENT naming one of the refused fields; with
    /// nothing to refuse, the answer is one of `otherwise`.
    fn judge<T: std::fmt::Debug>(
        &self,
        result: &Result<T, Status>,
        otherwise: &[Code],
        input: &dyn std::fmt::Debug,
    ) -> Result<(), TestCaseError> {
        let code = code_of(result);
        if self.must.is_empty() && code != Code::InvalidArgument {
            return expect_one_of(result, otherwise, input);
        }
        prop_assert!(
            !self.must.is_empty() || !self.may.is_empty(),
            "input {:?} refused though nothing in it is wrong: {:?}",
            input,
            result
        );
        prop_assert_eq!(
            code,
            Code::InvalidArgument,
            "input {:?}: {:?}",
            input,
            result
        );
        let message = result
            .as_ref()
            .err()
            .map(Status::message)
            .unwrap_or_default();
        prop_assert!(
            self.must
                .iter()
                .chain(&self.may)
                .any(|f| message.contains(f)),
            "INVALID_ARGUMENT for {:?} should name one of {:?} {:?}: {:?}",
            input,
            self.must,
            self.may,
            message
        );
        Ok(())
    }
}

/// Whether `text` has the shape of a token with `prefix`: 64 base64url characters,
/// which always decode to a 16-byte id and a 32-byte secret.
fn well_formed(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|body| {
        body.len() == 64
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A token with `prefix` for `id` and `secret`, as the server would write it.
fn token_for(prefix: &str, id: &[u8; 16], secret: &[u8; 32]) -> String {
    format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode([&id[..], &secret[..]].concat())
    )
}

/// Strings shaped anything like a token of `prefix`, and some not at all.
fn token_text(prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[A-Za-z0-9_-]{0,80}".prop_map(move |body| format!("{prefix}{body}")),
        "(st|rt|xx|ST)_[A-Za-z0-9_=+/.-]{60,68}",
        "[A-Za-z0-9_-]{64}".prop_map(move |body| format!("{prefix}{body}")),
        (any::<[u8; 16]>(), any::<[u8; 32]>()).prop_map(move |(id, s)| token_for(prefix, &id, &s)),
        (0usize..20_000).prop_map(move |n| format!("{prefix}{}", "A".repeat(n))),
    ]
}

/// Strings in and around the UUID text forms, and some not at all.
fn session_id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).urn().to_string()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).braced().to_string().to_uppercase()),
        "[0-9a-fA-F-]{30,40}",
        (0usize..20_000).prop_map(|n| "0".repeat(n)),
    ]
}

/// Strings as user ids: ordinary, empty, blank, control characters, oversized.
fn user_id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9@.]{1,40}",
        " {0,3}",
        "[a-z]{0,5}[\\x00-\\x1f\\x7f][a-z]{0,5}",
        (250usize..270).prop_map(|n| "u".repeat(n)),
        (1usize..20_000).prop_map(|n| "é".repeat(n)),
    ]
}

/// Any number of seconds, with the edges of the accepted range (1..=30 days) likely.
fn seconds() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![
        any::<i64>(),
        -2i64..3,
        (DEFAULT_MAX_LIFETIME_S - 2)..(DEFAULT_MAX_LIFETIME_S + 3),
        Just(i64::MAX),
        Just(i64::MIN),
    ])
}

fn seconds_are_valid(seconds: Option<i64>) -> bool {
    seconds.is_none_or(|s| (1..=DEFAULT_MAX_LIFETIME_S).contains(&s))
}

#[test]
fn whoami_with_any_token_text_is_invalid_argument_or_unauthenticated() {
    let h = Harness::new();
    h.check(token_text("st_"), |token| {
        let result = h.block_on(whoami(&mut h.client(), &token));
        let expected = if well_formed("st_", &token) {
            Code::Unauthenticated
        } else {
            Code::InvalidArgument
        };
        expect(&result, expected, "session_token", &token)
    });
}

#[test]
fn refresh_with_any_token_text_is_invalid_argument_or_unauthenticated() {
    let h = Harness::new();
    h.check(token_text("rt_"), |token| {
        let result = h.block_on(refresh(&mut h.client(), &token));
        let expected = if well_formed("rt_", &token) {
            Code::Unauthenticated
        } else {
            Code::InvalidArgument
        };
        expect(&result, expected, "refresh_token", &token)
    });
}

#[test]
fn logout_with_any_token_text_is_invalid_argument_or_unauthenticated() {
    let h = Harness::new();
    h.check(
        (token_text("st_"), any::<bool>()),
        |(token, all_for_user)| {
            let request = LogoutRequest {
                session_token: token.clone(),
                all_for_user,
                ..Default::default()
            };
            let result = h.block_on(logout(&mut h.client(), request));
            let expected = if well_formed("st_", &token) {
                Code::Unauthenticated
            } else {
                Code::InvalidArgument
            };
            // Empty: neither token nor id was given, and the message names both.
            expect(&result, expected, "session_token", &token)
        },
    );
}

#[test]
fn a_tampered_token_never_passes() {
    let h = Harness::new();
    let token = h.live.session_token.clone();
    let positions = 0..token.len();
    h.check((positions, any::<char>()), |(at, c)| {
        let mut tampered: Vec<char> = token.chars().collect();
        tampered[at] = c;
        let tampered: String = tampered.into_iter().collect();
        prop_assume!(tampered != token);
        let result = h.block_on(whoami(&mut h.client(), &tampered));
        let expected = if well_formed("st_", &tampered) {
            Code::Unauthenticated
        } else {
            Code::InvalidArgument
        };
        expect(&result, expected, "session_token", &tampered)
    });
}

#[test]
fn extend_with_any_session_id_and_keep_alive_gets_the_named_code() {
    let h = Harness::new();
    let live_id = h.live_id();
    let ids = prop_oneof![session_id_text(), Just(live_id.clone())];
    h.check((ids, seconds()), |(id, keep_alive)| {
        let result = h.block_on(extend(&mut h.client(), &id, keep_alive));
        let live = id == live_id;
        let too_long = keep_alive.is_some_and(|s| s > DEFAULT_MAX_LIFETIME_S);
        Verdict::default()
            .must(uuid::Uuid::try_parse(&id).is_err(), "session_id")
            .must(keep_alive.is_some_and(|s| s < 1), "keep_alive_seconds")
            .must(live && too_long, "keep_alive_seconds")
            // Of an unknown session the group, and so its max_lifetime, is unknown.
            .may(too_long, "keep_alive_seconds")
            .judge(
                &result,
                if live { &[Code::Ok] } else { &[Code::NotFound] },
                &(&id, keep_alive),
            )
    });
}

#[test]
fn logout_with_any_session_id_is_invalid_argument_or_not_found() {
    let h = Harness::new();
    let excepts = prop_oneof![Just(String::new()), session_id_text()];
    h.check(
        (session_id_text(), excepts, any::<bool>()),
        |(id, except, all_for_user)| {
            let request = LogoutRequest {
                session_id: id.clone(),
                all_for_user,
                except_session_id: except.clone(),
                ..Default::default()
            };
            let result = h.block_on(logout(&mut h.client(), request.clone()));
            Verdict::default()
                .must(uuid::Uuid::try_parse(&id).is_err(), "session_id")
                .must(!except.is_empty() && !all_for_user, "except_session_id")
                .must(
                    !except.is_empty() && uuid::Uuid::try_parse(&except).is_err(),
                    "except_session_id",
                )
                .judge(&result, &[Code::NotFound], &request)
        },
    );
}

/// What the contract says of a user id: empty or over the limit must be refused;
/// blank or with control characters may be.
fn user_id_verdict(user: &str) -> Verdict {
    Verdict::default()
        .must(user.is_empty() || user.len() > MAX_USER_ID_BYTES, "user_id")
        .may(
            user.trim().is_empty() || user.chars().any(char::is_control),
            "user_id",
        )
}

#[test]
fn start_with_any_user_id_is_ok_or_invalid_argument() {
    let h = Harness::new();
    h.check(user_id_text(), |user| {
        let result = h.block_on(h.client().start(start_request(&user)));
        user_id_verdict(&user).judge(&result, &[Code::Ok], &user)
    });
}

#[test]
fn refresh_all_with_any_user_id_is_invalid_argument_or_not_found() {
    let h = Harness::new();
    h.check((user_id_text(), seconds()), |(user, keep_alive)| {
        prop_assume!(user != "victim" && user != "after");
        let result = h.block_on(refresh_all(&mut h.client(), &user, keep_alive));
        user_id_verdict(&user)
            .must(keep_alive.is_some_and(|s| s < 1), "keep_alive_seconds")
            // With no session, no group's max_lifetime applies.
            .may(
                keep_alive.is_some_and(|s| s > DEFAULT_MAX_LIFETIME_S),
                "keep_alive_seconds",
            )
            .judge(&result, &[Code::NotFound], &(&user, keep_alive))
    });
}

#[test]
fn list_with_any_user_page_token_and_size_is_ok_or_invalid_argument() {
    let h = Harness::new();
    let page_tokens = prop_oneof![
        Just(String::new()),
        any::<String>(),
        any::<[u8; 16]>().prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        vec(any::<u8>(), 0..40).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        "[A-Za-z0-9_=+/-]{0,30}",
    ];
    let sizes = prop_oneof![any::<i32>(), -2i32..600];
    h.check(
        (user_id_text(), page_tokens, sizes, any::<bool>()),
        |(user, page_token, page_size, include_inactive)| {
            let request = ListUserSessionsRequest {
                user_id: user.clone(),
                page_size,
                page_token: page_token.clone(),
                include_inactive,
            };
            let result = h.block_on(h.client().list_user_sessions(request.clone()));
            let token_is_cursor = page_token.is_empty()
                || URL_SAFE_NO_PAD
                    .decode(&page_token)
                    .is_ok_and(|b| b.len() == 16);
            user_id_verdict(&user)
                .must(page_size < 0, "page_size")
                .must(!token_is_cursor, "page_token")
                // A cursor-shaped token this call never handed out.
                .may(!page_token.is_empty(), "page_token")
                .judge(&result, &[Code::Ok], &request)
        },
    );
}

#[test]
fn start_with_any_group_and_ttl_is_ok_or_invalid_argument() {
    let h = Harness::new();
    let groups = prop_oneof![
        Just(String::new()),
        Just("default".to_owned()),
        any::<String>(),
        ((MAX_GROUP_BYTES - 2)..(MAX_GROUP_BYTES + 3)).prop_map(|n| "g".repeat(n)),
    ];
    h.check((groups, seconds()), |(group, ttl_seconds)| {
        let request = StartRequest {
            user_id: "alice".into(),
            group: group.clone(),
            ttl_seconds,
            ..Default::default()
        };
        let result = h.block_on(h.client().start(request));
        Verdict::default()
            .must(!group.is_empty() && group != "default", "group")
            .must(!seconds_are_valid(ttl_seconds), "ttl_seconds")
            .judge(&result, &[Code::Ok], &(&group, ttl_seconds))
    });
}

/// Maps of any shape: empty keys, long keys and values, many entries, any characters.
fn string_map() -> impl Strategy<Value = HashMap<String, String>> {
    let keys = prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        (60usize..70).prop_map(|n| "k".repeat(n)),
        "\\PC{1,20}",
    ];
    let values = prop_oneof![
        "[ -~]{0,20}",
        (1000usize..1050).prop_map(|n| "v".repeat(n)),
        (250usize..260).prop_map(|n| "€".repeat(n)),
        "\\PC{0,40}",
    ];
    prop_oneof![
        hash_map(keys.clone(), values.clone(), 0..4),
        hash_map(keys, values, 28..40),
    ]
}

fn map_must_be_refused(map: &HashMap<String, String>) -> bool {
    map.len() > MAX_MAP_ENTRIES
        || map.iter().any(|(k, v)| {
            k.is_empty() || k.len() > MAX_MAP_KEY_BYTES || v.len() > MAX_MAP_VALUE_BYTES
        })
}

#[test]
fn start_with_any_metadata_and_attributes_is_ok_or_invalid_argument_naming_the_map() {
    let h = Harness::new();
    h.check((string_map(), string_map()), |(metadata, attributes)| {
        let request = StartRequest {
            user_id: "alice".into(),
            metadata: metadata.clone(),
            attributes: attributes.clone(),
            ..Default::default()
        };
        let result = h.block_on(h.client().start(request));
        Verdict::default()
            .must(map_must_be_refused(&metadata), "metadata")
            .must(map_must_be_refused(&attributes), "attributes")
            .judge(&result, &[Code::Ok], &(metadata.len(), attributes.len()))
    });
}

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

/// The codes each method may answer to a message of arbitrary bytes.
fn codes_for_any_message(method: &str) -> &'static [Code] {
    match method.rsplit('/').next() {
        Some("Start") => &[Code::Ok, Code::InvalidArgument],
        Some("Refresh") | Some("Whoami") => &[Code::InvalidArgument, Code::Unauthenticated],
        Some("Extend") | Some("RefreshAllForUser") => &[Code::InvalidArgument, Code::NotFound],
        Some("Logout") => &[Code::InvalidArgument, Code::Unauthenticated, Code::NotFound],
        _ => &[Code::Ok, Code::InvalidArgument],
    }
}

#[test]
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

#[test]
fn undecodable_message_bytes_are_invalid_argument() {
    let h = Harness::new();
    let channel = h.channel();
    let methods = proptest::sample::select(&METHODS[..]);
    h.check((methods, undecodable_bytes()), |(method, bytes)| {
        let result = h.block_on(raw_call(channel.clone(), method, bytes.clone()));
        expect(&result, Code::InvalidArgument, "", &(method, &bytes))
    });
}

/// Field `field` (length-delimited) holding `bytes`.
fn length_delimited(field: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
    out
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

#[test]
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

#[test]
fn a_request_without_a_message_is_invalid_argument() {
    let h = Harness::new();
    for method in METHODS {
        let (code, message) = h.block_on(raw_http(h.channel(), method, Vec::new()));
        assert_eq!(code, Code::InvalidArgument, "{method}: {message}");
    }
    h.assert_still_serving();
}

#[test]
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

#[test]
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

#[test]
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

#[test]
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

/// Everything a caller can observe of a failed answer but its request id.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    code: Code,
    message: String,
    details: Vec<u8>,
    metadata_keys: BTreeSet<String>,
}

impl Answer {
    fn of<T: std::fmt::Debug>(result: Result<T, Status>) -> Answer {
        let status = result.expect_err("a bad token fails");
        Answer {
            code: status.code(),
            message: status.message().to_owned(),
            details: status.details().to_vec(),
            metadata_keys: status
                .metadata()
                .clone()
                .into_headers()
                .keys()
                .map(|key| key.as_str().to_owned())
                .filter(|key| key != "x-request-id" && key != "date")
                .collect(),
        }
    }
}

/// The answers of Whoami, Refresh, Logout and Logout of all for one token's session
/// id and secret, sent with `api_key` if given.
async fn answers(
    client: &mut Client,
    api_key: Option<&str>,
    id: &[u8; 16],
    secret: &[u8; 32],
) -> Vec<Answer> {
    let session_token = token_for("st_", id, secret);
    let whoami_request = WhoamiRequest {
        session_token: session_token.clone(),
        client: None,
    };
    let refresh_request = RefreshRequest {
        refresh_token: token_for("rt_", id, secret),
        ..Default::default()
    };
    let logout_request = |all_for_user| LogoutRequest {
        session_token: session_token.clone(),
        all_for_user,
        ..Default::default()
    };
    vec![
        Answer::of(client.whoami(with_key(whoami_request, api_key)).await),
        Answer::of(client.refresh(with_key(refresh_request, api_key)).await),
        Answer::of(
            client
                .logout(with_key(logout_request(false), api_key))
                .await,
        ),
        Answer::of(client.logout(with_key(logout_request(true), api_key)).await),
    ]
}

#[test]
fn a_wrong_secret_answers_exactly_like_an_unknown_session() {
    let h = Harness::new();
    let live_id: [u8; 16] = *uuid::Uuid::parse_str(&h.live_id())
        .expect("session id is a UUID")
        .as_bytes();
    h.check(
        (any::<[u8; 16]>(), any::<[u8; 32]>()),
        |(unknown_id, secret)| {
            let mut client = h.client();
            let (wrong_secret, unknown) = h.block_on(async {
                (
                    answers(&mut client, None, &live_id, &secret).await,
                    answers(&mut client, None, &unknown_id, &secret).await,
                )
            });
            prop_assert_eq!(&wrong_secret, &unknown);
            prop_assert!(wrong_secret.iter().all(|a| a.code == Code::Unauthenticated));
            Ok(())
        },
    );
}

/// An admin caller and a caller limited to the group `partner`.
const ADMIN_KEY: &str = "hostile-admin-key";
const PARTNER_KEY: &str = "hostile-partner-key";

fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn callers_toml() -> String {
    format!(
        r#"
[groups.partner]
lifespan = "1h"

[[callers]]
name = "admin"
api_key_sha256 = "{}"
calls = ["*"]

[[callers]]
name = "partner"
api_key_sha256 = "{}"
calls = ["Start", "Refresh", "Whoami", "Logout", "LogoutAll"]
groups = ["partner"]
"#,
        sha256_hex(ADMIN_KEY),
        sha256_hex(PARTNER_KEY)
    )
}

/// A caller limited to some groups learns nothing about sessions of other groups from
/// a token it cannot prove: no sign that the session exists, nor its group.
#[test]
fn a_wrong_secret_for_another_groups_session_answers_like_an_unknown_session() {
    let h = Harness::with_config(&callers_toml(), Some(ADMIN_KEY));
    let default_group_id: [u8; 16] = *uuid::Uuid::parse_str(&h.live_id())
        .expect("session id is a UUID")
        .as_bytes();
    h.check(
        (any::<[u8; 16]>(), any::<[u8; 32]>()),
        |(unknown_id, secret)| {
            let mut client = h.client();
            let key = Some(PARTNER_KEY);
            let (wrong_secret, unknown) = h.block_on(async {
                (
                    answers(&mut client, key, &default_group_id, &secret).await,
                    answers(&mut client, key, &unknown_id, &secret).await,
                )
            });
            prop_assert_eq!(&wrong_secret, &unknown);
            prop_assert!(wrong_secret.iter().all(|a| a.code == Code::Unauthenticated));
            Ok(())
        },
    );
}

#[test]
fn watch_with_any_user_id_and_cursor_streams_or_gets_invalid_argument() {
    let h = Harness::new();
    let head = h.block_on(async {
        let mut client = h.client();
        let mut events = watch_ok(&mut client, None, "").await;
        expect_caught_up(&mut events).await
    });
    let cursors = prop::option::of(prop_oneof![0..head + 3, any::<u64>()]);
    let users = prop_oneof![Just(String::new()), user_id_text()];
    h.check((users, cursors), |(user, after_cursor)| {
        let result = h.block_on(async {
            let mut client = h.client();
            let mut events = watch_sessions(&mut client, after_cursor, &user).await?;
            next_item(&mut events).await.map(|first| first.is_some())
        });
        let input = (&user, after_cursor);
        prop_assert!(
            !matches!(result, Ok(false)),
            "the stream for {:?} ended before its first event",
            input
        );
        let verdict = if user.is_empty() {
            Verdict::default()
        } else {
            user_id_verdict(&user)
        };
        verdict
            .must(after_cursor.is_some_and(|c| c > head), "after_cursor")
            .judge(&result, &[Code::Ok], &input)
    });
}
