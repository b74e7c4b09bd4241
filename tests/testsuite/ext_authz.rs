//! Envoy ext_authz against the real server, through a client generated from Envoy's own
//! protos (envoy-types): who passes, with which upstream headers, and every refusal.

use crate::common;
use crate::support;

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::TestServer;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use sessiond::proto::session::v1::WhoamiRequest;
use support::*;
use tonic::transport::Channel;
use tonic::Code;

/// Access tokens in the default group, none in `plain`, the cookie `sid` as a second
/// place for the token, and an idle timeout in `idle` (to see that a check touches).
const GATEWAY: &str = r#"
[groups.default]
access_token_ttl = "5m"

[groups.plain]
lifespan = "1h"

[groups.idle]
lifespan = "1h"
idle_timeout = "10m"

[gateway]
token_cookie = "sid"
"#;

async fn envoy(test: &TestServer) -> AuthorizationClient<Channel> {
    AuthorizationClient::new(test.channel().await)
}

async fn check(
    envoy: &mut AuthorizationClient<Channel>,
    headers: &[(&str, &str)],
) -> Result<CheckResponse, tonic::Status> {
    envoy
        .check(check_request(headers))
        .await
        .map(|response| response.into_inner())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn ok_response(response: CheckResponse) -> OkHttpResponse {
    assert_eq!(
        response.status.as_ref().map(|s| s.code),
        Some(0),
        "{response:?}"
    );
    match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("expected an OK response, got {other:?}"),
    }
}

fn denied_response(response: CheckResponse) -> DeniedHttpResponse {
    assert_ne!(
        response.status.as_ref().map(|s| s.code),
        Some(0),
        "{response:?}"
    );
    match response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied,
        other => panic!("expected a denied response, got {other:?}"),
    }
}

/// The headers an OK response sets upstream; each must replace the client's copies.
fn upstream(ok: &OkHttpResponse) -> HashMap<String, String> {
    ok.headers
        .iter()
        .map(|option| {
            assert_eq!(
                option.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                "{option:?} must replace what the client sent"
            );
            let header = option.header.as_ref().expect("a header");
            (header.key.clone(), header.value.clone())
        })
        .collect()
}

/// The HTTP status and WWW-Authenticate of a denied response.
fn refusal(response: CheckResponse) -> (i32, Option<String>) {
    let denied = denied_response(response);
    let challenge = denied
        .headers
        .iter()
        .filter_map(|option| option.header.as_ref())
        .find(|header| header.key == "www-authenticate")
        .map(|header| header.value.clone());
    (denied.status.expect("an HTTP status").code, challenge)
}

fn claims(jwt: &str) -> serde_json::Value {
    let encoded = jwt.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).expect("base64url")).expect("json")
}

on_backends!(a_valid_token_passes_with_the_upstream_headers_and_a_fresh_access_token: sled, redis, cluster);
async fn a_valid_token_passes_with_the_upstream_headers_and_a_fresh_access_token() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let started = start_session(&mut client, "alice").await;
    let session_id = session_of(&started.session).session_id.clone();

    // The client also sends its own x-user-id: the answer replaces it.
    let ok = ok_response(
        check(
            &mut envoy,
            &[
                ("authorization", &bearer(&started.session_token)),
                ("x-user-id", "mallory"),
            ],
        )
        .await
        .expect("check"),
    );

    let headers = upstream(&ok);
    assert_eq!(headers["x-user-id"], "alice");
    assert_eq!(headers["x-session-id"], session_id);
    assert_eq!(headers["x-session-group"], "default");
    let access_token = claims(&headers["x-access-token"]);
    assert_eq!(access_token["sub"], "alice");
    assert_eq!(access_token["sid"], session_id.as_str());
    assert!(ok.headers_to_remove.is_empty(), "{ok:?}");
}

on_backends!(a_group_without_access_tokens_has_the_token_header_removed: sled, redis, cluster);
async fn a_group_without_access_tokens_has_the_token_header_removed() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let started = start_session_in_group(&mut client, "bob", "plain").await;

    let ok = ok_response(
        check(
            &mut envoy,
            &[
                ("authorization", &bearer(&started.session_token)),
                ("x-access-token", "forged"),
            ],
        )
        .await
        .expect("check"),
    );

    assert!(!upstream(&ok).contains_key("x-access-token"));
    assert_eq!(ok.headers_to_remove, ["x-access-token"]);
}

on_backends!(the_token_may_come_in_the_cookie: sled, redis, cluster);
async fn the_token_may_come_in_the_cookie() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let started = start_session(&mut client, "carol").await;

    let cookie = format!("theme=dark; sid={}", started.session_token);
    let ok = ok_response(
        check(&mut envoy, &[("cookie", &cookie)])
            .await
            .expect("check"),
    );

    assert_eq!(upstream(&ok)["x-user-id"], "carol");
}

on_backends!(no_token_is_401_with_a_challenge: sled, redis, cluster);
async fn no_token_is_401_with_a_challenge() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut envoy = envoy(&test).await;

    let (status, challenge) = refusal(
        check(&mut envoy, &[("cookie", "theme=dark")])
            .await
            .expect("check"),
    );

    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"sessiond\""));
}

on_backends!(malformed_unknown_and_oversized_tokens_are_401: sled, redis, cluster);
async fn malformed_unknown_and_oversized_tokens_are_401() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let started = start_session(&mut client, "dave").await;
    let oversized = format!("Bearer {}", "a".repeat(9 * 1024));

    for token in [
        "Bearer st_not-base64!".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
        bearer(&with_wrong_secret(&started.session_token)),
        bearer(&with_unknown_session(&started.session_token)),
        bearer(&started.refresh_token),
        oversized,
    ] {
        let (status, challenge) = refusal(
            check(&mut envoy, &[("authorization", &token)])
                .await
                .unwrap_or_else(|s| panic!("{token:.40}: answered, not failed: {s:?}")),
        );
        assert_eq!(status, 401, "{token:.40}");
        assert!(
            challenge.is_some_and(|c| c.contains("invalid_token")),
            "{token:.40}"
        );
    }
}

on_backends!(expired_and_revoked_sessions_are_401: sled, redis, cluster);
async fn expired_and_revoked_sessions_are_401() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let revoked = start_session(&mut client, "erin").await;
    let expiring = start_session_with_ttl(&mut client, "erin", 60).await;
    logout_token(&mut client, &revoked.session_token).await;
    test.advance(secs(61));

    for token in [&revoked.session_token, &expiring.session_token] {
        let (status, _) = refusal(
            check(&mut envoy, &[("authorization", &bearer(token))])
                .await
                .expect("check"),
        );
        assert_eq!(status, 401);
    }
}

on_backends!(a_session_of_a_group_not_accepted_is_403: sled, redis, cluster);
async fn a_session_of_a_group_not_accepted_is_403() {
    let test = TestServer::with_config(&format!("{GATEWAY}groups = [\"plain\"]\n")).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let default = start_session(&mut client, "frank").await;
    let plain = start_session_in_group(&mut client, "frank", "plain").await;

    let (status, challenge) = refusal(
        check(
            &mut envoy,
            &[("authorization", &bearer(&default.session_token))],
        )
        .await
        .expect("check"),
    );
    assert_eq!((status, challenge), (403, None));
    ok_response(
        check(
            &mut envoy,
            &[("authorization", &bearer(&plain.session_token))],
        )
        .await
        .expect("check"),
    );
}

on_backends!(a_check_counts_as_a_use_against_the_idle_timeout: sled, redis, cluster);
async fn a_check_counts_as_a_use_against_the_idle_timeout() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let started = start_session_in_group(&mut client, "grace", "idle").await;
    let authorization = bearer(&started.session_token);

    // 16 minutes in all, never 10 without a use: only the checks keep it alive.
    for _ in 0..2 {
        test.advance(secs(8 * MINUTE));
        ok_response(
            check(&mut envoy, &[("authorization", &authorization)])
                .await
                .expect("check"),
        );
    }
    whoami_ok(&mut client, &started.session_token).await;
}

on_backends!(configured_callers_need_the_ext_authz_permission_and_keep_their_groups: sled, redis, cluster);
async fn configured_callers_need_the_ext_authz_permission_and_keep_their_groups() {
    let test = TestServer::with_config(&format!(
        "{GATEWAY}\n[[callers]]\nname = \"envoy\"\napi_key_sha256 = \"{}\"\n\
         calls = [\"ExtAuthz\"]\ngroups = [\"plain\"]\n\n\
         [[callers]]\nname = \"app\"\napi_key_sha256 = \"{}\"\ncalls = [\"Start\", \"Whoami\"]\n",
        sha256_hex("envoy-key"),
        sha256_hex("app-key")
    ))
    .await;
    let mut client = test.client().await;
    let mut envoy = envoy(&test).await;
    let start = |group: &str| with_key(start_request_in_group("hank", group), "app-key");
    let default = client
        .start(start("default"))
        .await
        .expect("start")
        .into_inner();
    let plain = client
        .start(start("plain"))
        .await
        .expect("start")
        .into_inner();
    let request =
        |token: &str, key: &str| with_key(check_request(&[("authorization", &bearer(token))]), key);

    assert_code(
        envoy.check(request(&plain.session_token, "app-key")).await,
        Code::PermissionDenied,
    );
    assert_code(envoy.check(check_request(&[])).await, Code::Unauthenticated);
    let passed = envoy
        .check(request(&plain.session_token, "envoy-key"))
        .await
        .expect("envoy may check");
    ok_response(passed.into_inner());
    let outside = envoy
        .check(request(&default.session_token, "envoy-key"))
        .await
        .expect("envoy may check");
    assert_eq!(refusal(outside.into_inner()).0, 403);
    client
        .whoami(with_key(
            WhoamiRequest {
                session_token: plain.session_token,
                ..Default::default()
            },
            "app-key",
        ))
        .await
        .expect("the app still sees its session");
}
