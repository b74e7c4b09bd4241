//! The one status mapping, end to end: INVALID_ARGUMENT naming the field (from the
//! request rules, the configured limits, the group policies and bad UTF-8), NOT_FOUND
//! against UNAUTHENTICATED, and one UNAUTHENTICATED message for every token failure.
//! Each request rule's cases are table tests in `src/api/validate/`; UNAVAILABLE is
//! proven in `full_disk.rs` and `redis_outage.rs`, RetryInfo details in `quotas.rs`.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{StartRequest, WhoamiResponse};
use support::*;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Tight limits so the tests can cross them with small values.
const TIGHT_LIMITS: &str = r#"
[limits]
max_user_id_bytes = 16
"#;

/// A group `idle` with a 10 minute idle timeout beside the default one.
const IDLE_GROUP: &str = r#"
[groups.idle]
lifespan = "24h"
max_lifetime = "30d"
idle_timeout = "10m"
"#;

/// A group `short` (1h lifespan, 2h max) beside the default one.
const SHORT_GROUP: &str = r#"
[groups.short]
lifespan = "1h"
max_lifetime = "2h"
"#;

/// WhoamiRequest with its string field as raw bytes, to send invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawWhoami {
    #[prost(bytes = "vec", tag = "1")]
    session_token: Vec<u8>,
}

/// StartRequest's user_id as raw bytes, to send invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawStart {
    #[prost(bytes = "vec", tag = "1")]
    user_id: Vec<u8>,
}

/// Sends `message` to the unary method at `path`, bypassing the generated client.
async fn raw_unary<M, R>(channel: Channel, path: &'static str, message: M) -> Result<R, Status>
where
    M: prost::Message + Send + Sync + 'static,
    R: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    grpc.unary(
        tonic::Request::new(message),
        PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::<M, R>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn start_result(client: &mut Client, request: StartRequest) -> Result<(), Status> {
    client.start(request).await.map(|_| ())
}

on_backends!(a_refused_field_is_invalid_argument_naming_it: sled, cluster);
async fn a_refused_field_is_invalid_argument_naming_it() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_invalid_field(
        start_result(&mut client, start_request("")).await,
        "user_id",
    );
    // A malformed token is the caller's mistake, not a failed authentication.
    assert_invalid_field(
        whoami(&mut client, &started.refresh_token).await,
        "session_token",
    );
    assert_invalid_field(extend(&mut client, "not-a-uuid", None).await, "session_id");
}

on_backends!(the_configured_limits_are_the_ones_enforced: sled, cluster);
async fn the_configured_limits_are_the_ones_enforced() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;

    start_result(&mut client, start_request(&"u".repeat(16)))
        .await
        .expect("user_id of exactly the limit is accepted");
    assert_invalid_field(
        start_result(&mut client, start_request(&"u".repeat(17))).await,
        "user_id",
    );
}

on_backends!(group_policy_bounds_are_invalid_argument_naming_the_field: sled, cluster);
async fn group_policy_bounds_are_invalid_argument_naming_the_field() {
    let test = TestServer::with_config(SHORT_GROUP).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    let in_short_group = StartRequest {
        ttl_seconds: Some(2 * HOUR + 1),
        ..start_request_in_group("alice", "short")
    };

    assert_invalid_field(
        start_result(&mut client, start_request_in_group("alice", "nope")).await,
        "group",
    );
    assert_invalid_field(
        start_result(
            &mut client,
            start_request_with_ttl("alice", DEFAULT_MAX_LIFETIME_S + 1),
        )
        .await,
        "ttl_seconds",
    );
    assert_invalid_field(
        start_result(&mut client, in_short_group).await,
        "ttl_seconds",
    );
    assert_invalid_field(
        extend(&mut client, &id, Some(DEFAULT_MAX_LIFETIME_S + 1)).await,
        "keep_alive_seconds",
    );
    assert_invalid_field(
        refresh_all(&mut client, "alice", Some(DEFAULT_MAX_LIFETIME_S + 1)).await,
        "keep_alive_seconds",
    );
}

on_backends!(an_unknown_session_id_is_not_found_but_an_unknown_token_is_unauthenticated: sled, cluster);
async fn an_unknown_session_id_is_not_found_but_an_unknown_token_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let live = start_session(&mut client, "alice").await;
    let unknown_id = uuid::Uuid::now_v7().to_string();

    assert_code(extend(&mut client, &unknown_id, None).await, Code::NotFound);
    assert_code(
        refresh_all(&mut client, "nobody", None).await,
        Code::NotFound,
    );
    assert_code(
        whoami(&mut client, &with_unknown_session(&live.session_token)).await,
        Code::Unauthenticated,
    );
}

on_backends!(unauthenticated_message_is_same_for_every_token_failure: sled, cluster);
async fn unauthenticated_message_is_same_for_every_token_failure() {
    let test = TestServer::with_config(IDLE_GROUP).await;
    let mut client = test.client().await;
    let expired = start_session_with_ttl(&mut client, "alice", 60).await;
    let idle = start_session_in_group(&mut client, "alice", "idle").await;
    test.advance(secs(11 * MINUTE));
    let revoked = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &revoked.session_token).await, 1);
    let live = start_session(&mut client, "alice").await;

    let tokens = [
        ("expired", expired.session_token),
        ("idle", idle.session_token),
        ("revoked", revoked.session_token),
        ("unknown", with_unknown_session(&live.session_token)),
        ("wrong secret", with_wrong_secret(&live.session_token)),
    ];
    let mut messages = Vec::new();
    for (case, token) in &tokens {
        let status = assert_code(whoami(&mut client, token).await, Code::Unauthenticated);
        messages.push((*case, status.message().to_owned()));
    }

    let first = &messages[0].1;
    for (case, message) in &messages {
        assert_eq!(message, first, "message for {case} differs: {messages:?}");
    }
}

on_backends!(refresh_unauthenticated_message_matches_whoami: sled, cluster);
async fn refresh_unauthenticated_message_matches_whoami() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let reused = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &reused.refresh_token).await;
    let expired = start_session_with_ttl(&mut client, "alice", 60).await;
    let live = start_session(&mut client, "alice").await;
    test.advance(secs(61));
    let whoami_message = assert_code(
        whoami(&mut client, &with_unknown_session(&live.session_token)).await,
        Code::Unauthenticated,
    )
    .message()
    .to_owned();

    let tokens = [
        ("reused", reused.refresh_token),
        ("expired", expired.refresh_token),
        ("unknown", with_unknown_session(&live.refresh_token)),
        ("wrong secret", with_wrong_secret(&live.refresh_token)),
    ];
    for (case, token) in &tokens {
        let status = assert_code(refresh(&mut client, token).await, Code::Unauthenticated);
        assert_eq!(
            status.message(),
            whoami_message,
            "refresh message for {case} differs from whoami's"
        );
    }
}

on_backends!(invalid_utf8_in_session_token_is_invalid_argument: sled, cluster);
async fn invalid_utf8_in_session_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let request = RawWhoami {
        session_token: b"st_\xff\xfe\xfd".to_vec(),
    };

    let result: Result<WhoamiResponse, Status> = raw_unary(
        test.channel().await,
        "/session.v1.SessionService/Whoami",
        request,
    )
    .await;

    assert_code(result, Code::InvalidArgument);
}

on_backends!(invalid_utf8_in_user_id_is_invalid_argument: sled, cluster);
async fn invalid_utf8_in_user_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let request = RawStart {
        user_id: b"al\xffce".to_vec(),
    };

    let result: Result<sessiond::proto::session::v1::StartResponse, Status> = raw_unary(
        test.channel().await,
        "/session.v1.SessionService/Start",
        request,
    )
    .await;

    assert_code(result, Code::InvalidArgument);
}
