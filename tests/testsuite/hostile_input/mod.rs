//! Hostile input: arbitrary strings, bytes and sizes in every request field, undecodable
//! messages and broken gRPC frames never panic the server nor get INTERNAL or UNKNOWN;
//! each gets the code the contract names (INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND),
//! and a wrong secret answers exactly like an unknown session. The server keeps serving.

use crate::common;
use crate::support;

mod fields;
mod frames;
mod messages;
mod secrets;

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

/// What a call must answer to `text` as its token with `prefix`: UNAUTHENTICATED when it
/// is shaped like one (it proves nothing), INVALID_ARGUMENT when it is not.
fn token_code(prefix: &str, text: &str) -> Code {
    if well_formed(prefix, text) {
        Code::Unauthenticated
    } else {
        Code::InvalidArgument
    }
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
