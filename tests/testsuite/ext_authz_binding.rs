//! Envoy ext_authz for device-bound sessions (docs/gateways.md#device-bound-sessions):
//! the client's `DPoP` header checked against the method and URL Envoy puts in the
//! check's attributes, and refusals as RFC 9449 answers them, through a client generated
//! from Envoy's own protos (envoy-types).

use crate::common;
use crate::support;

use common::TestServer;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use sessiond::clock::Clock;
use sessiond::session::binding::DeviceSigner;
use support::*;
use tonic::transport::Channel;

/// `every` asks a proof on every use, `nonce` also a server nonce; `refresh` (the
/// default `proof_on_use`) asks none at the gateway.
const GROUPS: &str = r#"
[groups.every]
proof_on_use = "every_call"

[groups.nonce]
proof_on_use = "every_call"
require_nonce = true

[groups.refresh]
lifespan = "1h"
"#;

/// The request the client makes through Envoy, and the URL a proof for it names (the
/// query is not compared).
const METHOD: &str = "GET";
const HOST: &str = "app.example:8443";
const PATH: &str = "/orders?page=2";
const URL: &str = "https://app.example:8443/orders";

/// A proof by `device` for `method` `url` with `token`, at the server's clock.
fn proof(
    test: &TestServer,
    device: &DeviceSigner,
    (method, url): (&str, &str),
    token: &str,
    nonce: Option<&str>,
) -> String {
    device
        .proof(method, url, token, nonce, test.clock.now_ms())
        .expect("a device signs its proofs")
}

/// Envoy's check of `GET https://app.example:8443/orders?page=2` with the session
/// token, and the `DPoP` header when given.
fn check_request(token: &str, dpop: Option<&str>) -> CheckRequest {
    let mut headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    headers.extend(dpop.map(|proof| ("dpop".to_owned(), proof.to_owned())));
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: METHOD.into(),
                    scheme: "https".into(),
                    host: HOST.into(),
                    path: PATH.into(),
                    headers: headers.into_iter().collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

async fn check(test: &TestServer, token: &str, dpop: Option<&str>) -> CheckResponse {
    AuthorizationClient::<Channel>::new(test.channel().await)
        .check(check_request(token, dpop))
        .await
        .expect("a refusal is an answer, not a failed call")
        .into_inner()
}

/// The user an OK response passes upstream, or the denied response's status and headers.
fn answer(response: CheckResponse) -> Result<String, (i32, Vec<(String, String)>)> {
    match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => Ok(ok
            .headers
            .iter()
            .filter_map(|option| option.header.as_ref())
            .find(|header| header.key == "x-user-id")
            .map(|header| header.value.clone())
            .expect("an OK response names the user")),
        Some(HttpResponse::DeniedResponse(denied)) => Err((
            denied.status.expect("an HTTP status").code,
            denied
                .headers
                .iter()
                .filter_map(|option| option.header.as_ref())
                .map(|header| (header.key.clone(), header.value.clone()))
                .collect(),
        )),
        other => panic!("expected an HTTP response, got {other:?}"),
    }
}

/// The `error_description` (the binding failure's reason) of a denied response's DPoP
/// challenge, after checking it is a 401 with that challenge.
fn refused_for(response: CheckResponse, error: &str) -> String {
    let (status, headers) = answer(response).expect_err("refused");
    assert_eq!(status, 401, "{headers:?}");
    let challenge = headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.as_str())
        .expect("a challenge");
    dpop_reason(challenge, error)
}

on_backends!(a_bound_session_without_a_proof_is_401_invalid_dpop_proof: sled, redis);
async fn a_bound_session_without_a_proof_is_401_invalid_dpop_proof() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;

    let refused = check(&test, &token, None).await;

    assert_eq!(refused_for(refused, "invalid_dpop_proof"), "PROOF_MISSING");
}

on_backends!(a_device_proof_for_the_request_passes: sled, redis);
async fn a_device_proof_for_the_request_passes() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;

    let dpop = proof(&test, &device, (METHOD, URL), &token, None);
    let passed = check(&test, &token, Some(&dpop)).await;

    assert_eq!(answer(passed), Ok("alice".to_owned()));
}

on_backends!(a_proof_for_another_request_is_401: sled, redis);
async fn a_proof_for_another_request_is_401() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;

    for other in [
        ("GET", "https://app.example:8443/admin"),
        ("GET", "https://other.example:8443/orders"),
        ("POST", URL),
    ] {
        let dpop = proof(&test, &device, other, &token, None);
        let refused = check(&test, &token, Some(&dpop)).await;
        assert_eq!(
            refused_for(refused, "invalid_dpop_proof"),
            "REQUEST_MISMATCH",
            "{other:?}"
        );
    }
}

on_backends!(a_replayed_proof_is_401: sled, redis);
async fn a_replayed_proof_is_401() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;
    let dpop = proof(&test, &device, (METHOD, URL), &token, None);
    assert!(answer(check(&test, &token, Some(&dpop)).await).is_ok());

    let replayed = check(&test, &token, Some(&dpop)).await;

    assert_eq!(refused_for(replayed, "invalid_dpop_proof"), "REPLAYED");
}

on_backends!(a_nonce_round_trip_passes: sled, redis);
async fn a_nonce_round_trip_passes() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "nonce", &device).await;

    let first = proof(&test, &device, (METHOD, URL), &token, None);
    let refused = check(&test, &token, Some(&first)).await;
    let (_, headers) = answer(refused.clone()).expect_err("a nonce is due");
    assert_eq!(refused_for(refused, "use_dpop_nonce"), "NONCE_REQUIRED");
    let nonce = headers
        .iter()
        .find(|(name, _)| name == "dpop-nonce")
        .map(|(_, value)| value.clone())
        .expect("the refusal carries a DPoP-Nonce");

    let retry = proof(&test, &device, (METHOD, URL), &token, Some(&nonce));
    let passed = check(&test, &token, Some(&retry)).await;

    assert_eq!(answer(passed), Ok("alice".to_owned()));
}

on_backends!(a_refresh_only_group_ignores_the_dpop_header: sled);
async fn a_refresh_only_group_ignores_the_dpop_header() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "refresh", &device).await;

    for dpop in [None, Some("not.a.proof")] {
        let passed = check(&test, &token, dpop).await;
        assert_eq!(answer(passed), Ok("alice".to_owned()), "{dpop:?}");
    }
}
