//! Signed access and ID tokens, GetJwks, key rotation and the JWKS on the admin port.
//! (`clients/python/tests/test_access_tokens.py` verifies them with PyJWT.)

use crate::common;
use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::TestServer;
use sessiond::proto::session::v1::{
    GetJwksRequest, RefreshRequest, RotateSigningKeyRequest, StartRequest,
};
use support::*;
use tonic::Code;

const WITH_ACCESS_TOKENS: &str =
    "[groups.default]\naccess_token_ttl = \"5m\"\naudience = \"shop\"\n";

/// The JSON of a JWT's header (`part` 0) or claims (`part` 1), unverified.
fn jwt_part(token: &str, part: usize) -> serde_json::Value {
    let encoded = token.split('.').nth(part).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).expect("base64url")).expect("json")
}

on_backends!(no_access_token_unless_the_group_sets_a_ttl: sled, cluster);
async fn no_access_token_unless_the_group_sets_a_ttl() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;

    assert!(started.access_token.is_empty());
    assert_eq!(started.access_token_expires_in_seconds, 0);
}

on_backends!(an_access_token_carries_the_sessions_claims: sled, cluster);
async fn an_access_token_carries_the_sessions_claims() {
    let test = TestServer::with_config(WITH_ACCESS_TOKENS).await;
    let mut client = test.client().await;

    let started = start_with(
        &mut client,
        StartRequest {
            attributes: map(&[("role", "admin")]),
            ..start_request("alice")
        },
    )
    .await;

    let claims = jwt_part(&started.access_token, 1);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["sid"],
        session_of(&started.session).session_id.as_str()
    );
    assert_eq!(claims["aud"], "shop");
    assert_eq!(claims["iss"], "sessiond");
    assert_eq!(claims["group"], "default");
    assert_eq!(claims["attrs"]["role"], "admin");
    assert_eq!(claims["iat"], START_S);
    assert_eq!(claims["exp"], START_S + 5 * MINUTE);
    assert_eq!(started.access_token_expires_in_seconds, 5 * MINUTE);
    assert_eq!(jwt_part(&started.access_token, 0)["alg"], "EdDSA");
    assert!(started.id_token.is_empty());
}

on_backends!(an_access_token_never_outlives_its_session: sled, cluster);
async fn an_access_token_never_outlives_its_session() {
    let test = TestServer::with_config(WITH_ACCESS_TOKENS).await;
    let mut client = test.client().await;

    let started = start_session_with_ttl(&mut client, "alice", 60).await;

    assert_eq!(jwt_part(&started.access_token, 1)["exp"], START_S + 60);
}

on_backends!(an_id_token_comes_when_asked_for_with_auth_time: sled, cluster);
async fn an_id_token_comes_when_asked_for_with_auth_time() {
    let test = TestServer::with_config(WITH_ACCESS_TOKENS).await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            issue_id_token: true,
            ..start_request("alice")
        },
    )
    .await;
    test.advance(secs(MINUTE));

    let refreshed = client
        .refresh(RefreshRequest {
            refresh_token: started.refresh_token.clone(),
            issue_id_token: true,
            ..Default::default()
        })
        .await
        .expect("refresh")
        .into_inner();

    assert_eq!(jwt_part(&started.id_token, 1)["auth_time"], START_S);
    let claims = jwt_part(&refreshed.id_token, 1);
    assert_eq!(claims["auth_time"], START_S);
    assert_eq!(claims["iat"], START_S + MINUTE);
    assert!(!refreshed.access_token.is_empty());
}

on_backends!(rotation_signs_with_a_new_key_and_keeps_the_old_one_published: sled, cluster);
async fn rotation_signs_with_a_new_key_and_keeps_the_old_one_published() {
    let test = TestServer::with_config(WITH_ACCESS_TOKENS).await;
    let mut client = test.client().await;
    let before = start_session(&mut client, "alice").await;

    let kid = client
        .rotate_signing_key(RotateSigningKeyRequest {})
        .await
        .expect("rotate")
        .into_inner()
        .kid;
    let after = start_session(&mut client, "bob").await;

    let jwks: serde_json::Value = serde_json::from_str(
        &client
            .get_jwks(GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner()
            .jwks_json,
    )
    .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|key| key["kid"].as_str())
        .collect();
    assert_eq!(jwt_part(&after.access_token, 0)["kid"], kid.as_str());
    assert!(kids.contains(&kid.as_str()));
    let old_kid = jwt_part(&before.access_token, 0)["kid"].clone();
    assert!(kids.iter().any(|k| *k == old_kid));
}

on_backends!(keys_survive_a_restart: sled, cluster);
async fn keys_survive_a_restart() {
    let mut test = TestServer::with_config(WITH_ACCESS_TOKENS).await;
    let mut client = test.client().await;
    let before = start_session(&mut client, "alice").await;

    test.restart().await;
    let mut client = test.client().await;
    let after = start_session(&mut client, "alice").await;

    assert_eq!(
        jwt_part(&before.access_token, 0)["kid"],
        jwt_part(&after.access_token, 0)["kid"]
    );
}

on_backends!(the_jwks_is_open_but_rotation_needs_its_permission: sled, cluster);
async fn the_jwks_is_open_but_rotation_needs_its_permission() {
    let key_hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(b"edge-key")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let test = TestServer::with_config(&format!(
        "[[callers]]\nname = \"edge\"\napi_key_sha256 = \"{key_hash}\"\ncalls = [\"Whoami\"]\n"
    ))
    .await;
    let mut client = test.client().await;

    assert!(client.get_jwks(GetJwksRequest {}).await.is_ok());
    let mut rotate = tonic::Request::new(RotateSigningKeyRequest {});
    rotate
        .metadata_mut()
        .insert("authorization", "Bearer edge-key".parse().expect("ascii"));
    assert_code(
        client.rotate_signing_key(rotate).await,
        Code::PermissionDenied,
    );
}

on_backends!(the_admin_port_serves_the_same_jwks: sled, cluster);
async fn the_admin_port_serves_the_same_jwks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let test = TestServer::with_config("metrics_listen = \"127.0.0.1:0\"").await;
    let mut client = test.client().await;
    let published: serde_json::Value = serde_json::from_str(
        &client
            .get_jwks(GetJwksRequest {})
            .await
            .expect("jwks")
            .into_inner()
            .jwks_json,
    )
    .expect("json");

    let addr = test.running().metrics_addr().expect("admin port");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /.well-known/jwks.json HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let body = response.split("\r\n\r\n").nth(1).expect("body");

    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).expect("json"),
        published
    );
}
