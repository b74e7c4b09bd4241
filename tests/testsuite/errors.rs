//! Request validation and error mapping: INVALID_ARGUMENT naming the field (sizes,
//! ranges, malformed tokens and ids, bad UTF-8), and one UNAUTHENTICATED message for
//! every token failure.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{LogoutRequest, StartRequest, WhoamiResponse};
use support::*;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Tight limits so the tests can cross them with small values.
const TIGHT_LIMITS: &str = r#"
[limits]
max_user_id_bytes = 16
max_group_bytes = 64
max_map_entries = 4
max_map_key_bytes = 8
max_map_value_bytes = 16
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

on_backends!(start_without_user_id_is_invalid_argument: sled, cluster);
async fn start_without_user_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(
        start_result(&mut client, start_request("")).await,
        "user_id",
    );
}

on_backends!(start_with_user_id_over_limit_is_invalid_argument: sled, cluster);
async fn start_with_user_id_over_limit_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;

    assert_invalid_field(
        start_result(&mut client, start_request(&"u".repeat(17))).await,
        "user_id",
    );
}

on_backends!(start_with_user_id_at_limit_succeeds: sled, cluster);
async fn start_with_user_id_at_limit_succeeds() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;

    start_result(&mut client, start_request(&"u".repeat(16)))
        .await
        .expect("user_id of exactly the limit is accepted");
}

on_backends!(user_id_limit_counts_bytes_not_chars: sled, cluster);
async fn user_id_limit_counts_bytes_not_chars() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    // 9 characters, 18 bytes.
    let user = "é".repeat(9);

    assert_invalid_field(
        start_result(&mut client, start_request(&user)).await,
        "user_id",
    );
}

on_backends!(start_with_unknown_group_is_invalid_argument: sled, cluster);
async fn start_with_unknown_group_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_code(
        start_result(&mut client, start_request_in_group("alice", "nope")).await,
        Code::InvalidArgument,
    );
}

on_backends!(start_with_oversized_group_is_invalid_argument: sled, cluster);
async fn start_with_oversized_group_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;

    assert_invalid_field(
        start_result(
            &mut client,
            start_request_in_group("alice", &"g".repeat(65)),
        )
        .await,
        "group",
    );
}

on_backends!(start_with_zero_ttl_is_invalid_argument: sled, cluster);
async fn start_with_zero_ttl_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(
        start_result(&mut client, start_request_with_ttl("alice", 0)).await,
        "ttl_seconds",
    );
}

on_backends!(start_with_negative_ttl_is_invalid_argument: sled, cluster);
async fn start_with_negative_ttl_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(
        start_result(&mut client, start_request_with_ttl("alice", -5)).await,
        "ttl_seconds",
    );
}

on_backends!(start_with_ttl_above_max_lifetime_is_invalid_argument: sled, cluster);
async fn start_with_ttl_above_max_lifetime_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(
        start_result(
            &mut client,
            start_request_with_ttl("alice", DEFAULT_MAX_LIFETIME_S + 1),
        )
        .await,
        "ttl_seconds",
    );
}

on_backends!(start_with_ttl_above_group_max_lifetime_is_invalid_argument: sled, cluster);
async fn start_with_ttl_above_group_max_lifetime_is_invalid_argument() {
    let test = TestServer::with_config(SHORT_GROUP).await;
    let mut client = test.client().await;
    let request = StartRequest {
        ttl_seconds: Some(2 * HOUR + 1),
        ..start_request_in_group("alice", "short")
    };

    assert_invalid_field(start_result(&mut client, request).await, "ttl_seconds");
}

on_backends!(start_with_too_many_metadata_entries_is_invalid_argument: sled, cluster);
async fn start_with_too_many_metadata_entries_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        metadata: map_of_len(5),
        ..start_request("alice")
    };

    assert_invalid_field(start_result(&mut client, request).await, "metadata");
}

on_backends!(start_with_metadata_at_entry_limit_succeeds: sled, cluster);
async fn start_with_metadata_at_entry_limit_succeeds() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        metadata: map_of_len(4),
        ..start_request("alice")
    };

    start_result(&mut client, request)
        .await
        .expect("metadata of exactly the limit is accepted");
}

on_backends!(start_with_long_metadata_key_is_invalid_argument: sled, cluster);
async fn start_with_long_metadata_key_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        metadata: map(&[("k".repeat(9).as_str(), "v")]),
        ..start_request("alice")
    };

    assert_invalid_field(start_result(&mut client, request).await, "metadata");
}

on_backends!(start_with_long_metadata_value_is_invalid_argument: sled, cluster);
async fn start_with_long_metadata_value_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        metadata: map(&[("k", "v".repeat(17).as_str())]),
        ..start_request("alice")
    };

    assert_invalid_field(start_result(&mut client, request).await, "metadata");
}

on_backends!(start_with_too_many_attributes_is_invalid_argument: sled, cluster);
async fn start_with_too_many_attributes_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        attributes: map_of_len(5),
        ..start_request("alice")
    };

    assert_invalid_field(start_result(&mut client, request).await, "attributes");
}

on_backends!(start_with_long_attribute_key_is_invalid_argument: sled, cluster);
async fn start_with_long_attribute_key_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        attributes: map(&[("k".repeat(9).as_str(), "v")]),
        ..start_request("alice")
    };

    assert_invalid_field(start_result(&mut client, request).await, "attributes");
}

on_backends!(start_with_long_attribute_value_is_invalid_argument: sled, cluster);
async fn start_with_long_attribute_value_is_invalid_argument() {
    let test = TestServer::with_config(TIGHT_LIMITS).await;
    let mut client = test.client().await;
    let request = StartRequest {
        attributes: map(&[("k", "v".repeat(17).as_str())]),
        ..start_request("alice")
    };

    assert_invalid_field(start_result(&mut client, request).await, "attributes");
}

on_backends!(whoami_with_empty_token_is_invalid_argument: sled, cluster);
async fn whoami_with_empty_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(whoami(&mut client, "").await, "session_token");
}

on_backends!(whoami_with_unknown_prefix_is_invalid_argument: sled, cluster);
async fn whoami_with_unknown_prefix_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let token = format!("xx_{}", &started.session_token[3..]);

    assert_invalid_field(whoami(&mut client, &token).await, "session_token");
}

on_backends!(whoami_with_refresh_token_is_invalid_argument: sled, cluster);
async fn whoami_with_refresh_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_invalid_field(
        whoami(&mut client, &started.refresh_token).await,
        "session_token",
    );
}

on_backends!(whoami_with_bad_base64_is_invalid_argument: sled, cluster);
async fn whoami_with_bad_base64_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let body_len = started.session_token.len() - 3;
    let token = format!("st_{}", "!".repeat(body_len));

    assert_invalid_field(whoami(&mut client, &token).await, "session_token");
}

on_backends!(whoami_with_truncated_token_is_invalid_argument: sled, cluster);
async fn whoami_with_truncated_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    // Four base64 characters less: still valid base64, three bytes short.
    let token = &started.session_token[..started.session_token.len() - 4];

    assert_invalid_field(whoami(&mut client, token).await, "session_token");
}

on_backends!(whoami_with_extended_token_is_invalid_argument: sled, cluster);
async fn whoami_with_extended_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    // Four base64 characters more: still valid base64, three bytes too many.
    let token = format!("{}AAAA", started.session_token);

    assert_invalid_field(whoami(&mut client, &token).await, "session_token");
}

on_backends!(refresh_with_empty_token_is_invalid_argument: sled, cluster);
async fn refresh_with_empty_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(refresh(&mut client, "").await, "refresh_token");
}

on_backends!(refresh_with_session_token_is_invalid_argument: sled, cluster);
async fn refresh_with_session_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_invalid_field(
        refresh(&mut client, &started.session_token).await,
        "refresh_token",
    );
}

on_backends!(refresh_with_truncated_token_is_invalid_argument: sled, cluster);
async fn refresh_with_truncated_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let token = &started.refresh_token[..started.refresh_token.len() - 4];

    assert_invalid_field(refresh(&mut client, token).await, "refresh_token");
}

on_backends!(extend_with_malformed_session_id_is_invalid_argument: sled, cluster);
async fn extend_with_malformed_session_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(extend(&mut client, "not-a-uuid", None).await, "session_id");
}

on_backends!(extend_with_empty_session_id_is_invalid_argument: sled, cluster);
async fn extend_with_empty_session_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(extend(&mut client, "", None).await, "session_id");
}

on_backends!(extend_with_zero_keep_alive_is_invalid_argument: sled, cluster);
async fn extend_with_zero_keep_alive_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();

    assert_invalid_field(
        extend(&mut client, &id, Some(0)).await,
        "keep_alive_seconds",
    );
}

on_backends!(extend_with_keep_alive_above_max_lifetime_is_invalid_argument: sled, cluster);
async fn extend_with_keep_alive_above_max_lifetime_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();

    assert_invalid_field(
        extend(&mut client, &id, Some(DEFAULT_MAX_LIFETIME_S + 1)).await,
        "keep_alive_seconds",
    );
}

on_backends!(logout_with_token_and_session_id_is_invalid_argument: sled, cluster);
async fn logout_with_token_and_session_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let result = logout(
        &mut client,
        LogoutRequest {
            session_token: started.session_token.clone(),
            session_id: session_of(&started.session).session_id.clone(),
            ..Default::default()
        },
    )
    .await;

    assert_code(result, Code::InvalidArgument);
    whoami_ok(&mut client, &started.session_token).await;
}

on_backends!(logout_without_token_or_session_id_is_invalid_argument: sled, cluster);
async fn logout_without_token_or_session_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_code(
        logout(&mut client, LogoutRequest::default()).await,
        Code::InvalidArgument,
    );
}

on_backends!(logout_with_malformed_session_id_is_invalid_argument: sled, cluster);
async fn logout_with_malformed_session_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let result = logout(
        &mut client,
        LogoutRequest {
            session_id: "not-a-uuid".into(),
            ..Default::default()
        },
    )
    .await;

    assert_invalid_field(result, "session_id");
}

on_backends!(logout_with_malformed_token_is_invalid_argument: sled, cluster);
async fn logout_with_malformed_token_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let result = logout(
        &mut client,
        LogoutRequest {
            session_token: "st_!!!!".into(),
            ..Default::default()
        },
    )
    .await;

    assert_invalid_field(result, "session_token");
}

on_backends!(refresh_all_with_empty_user_id_is_invalid_argument: sled, cluster);
async fn refresh_all_with_empty_user_id_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(refresh_all(&mut client, "", None).await, "user_id");
}

on_backends!(refresh_all_with_zero_keep_alive_is_invalid_argument: sled, cluster);
async fn refresh_all_with_zero_keep_alive_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;

    assert_invalid_field(
        refresh_all(&mut client, "alice", Some(0)).await,
        "keep_alive_seconds",
    );
}

on_backends!(refresh_all_with_keep_alive_above_max_lifetime_is_invalid_argument: sled, cluster);
async fn refresh_all_with_keep_alive_above_max_lifetime_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;

    assert_invalid_field(
        refresh_all(&mut client, "alice", Some(DEFAULT_MAX_LIFETIME_S + 1)).await,
        "keep_alive_seconds",
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
