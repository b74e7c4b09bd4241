//! Device-bound sessions (docs/binding.md): Start binds a session to a device key, Refresh
//! (and Whoami where the group asks) needs a DPoP proof signed by it; hostile proofs are
//! refused with their reason and change nothing; `revoke` ends a session whose token
//! left its device; network binding; all over the real server and generated client.

use crate::common;
use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::TestServer;
use sessiond::clock::Clock;
use sessiond::proto::session::v1::{
    EndReason, ListUserSessionsRequest, ReauthenticateRequest, RefreshRequest, StartRequest,
    WhoamiRequest,
};
use sessiond::session::binding::DeviceSigner;
use support::*;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// The URLs a direct call's proof names: only the path is compared, so any host does.
const REFRESH: &str = "http://sessiond.test/session.v1.SessionService/Refresh";
const WHOAMI: &str = "https://sessiond.test:8443/session.v1.SessionService/Whoami";

/// Groups: `revoke` ends a session on a proof only a thief makes; `every` asks a proof
/// on Whoami too; `nonce` wants server nonces; `required` and `off` bind always and
/// never; `net` binds to the /24 of Start's ip; `tokens` issues access tokens.
const GROUPS: &str = r#"
[groups.revoke]
on_binding_failure = "revoke"

[groups.every]
proof_on_use = "every_call"

[groups.nonce]
require_nonce = true

[groups.required]
device_binding = "required"

[groups.off]
device_binding = "off"

[groups.net]
network_binding = "subnet"

[groups.tokens]
access_token_ttl = "5m"
"#;

fn device() -> DeviceSigner {
    DeviceSigner::generate_ed25519().expect("the OS random generator works in tests")
}

/// A Start of `user` in `group`, bound to `device` when given.
fn bound_start(user: &str, group: &str, device: Option<&DeviceSigner>) -> StartRequest {
    StartRequest {
        device_key: device
            .map(DeviceSigner::public_jwk_json)
            .unwrap_or_default(),
        ..start_request_in_group(user, group)
    }
}

async fn start_bound(client: &mut Client, group: &str, device: &DeviceSigner) -> StartResponseT {
    start_with(client, bound_start("alice", group, Some(device))).await
}

type StartResponseT = sessiond::proto::session::v1::StartResponse;

/// `message` with `proof` in its `dpop` metadata.
fn with_proof<T>(message: T, proof: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "dpop",
        MetadataValue::try_from(proof).expect("a compact JWS is ASCII"),
    );
    request
}

/// A proof by `device` for the call at `path` with `token`, at the server's clock.
fn proof(test: &TestServer, device: &DeviceSigner, path: &str, token: &str) -> String {
    device_proof(device, "POST", path, token, test.clock.now_ms())
}

async fn refresh_with(
    client: &mut Client,
    token: &str,
    proof: Option<&str>,
) -> Result<sessiond::proto::session::v1::RefreshResponse, Status> {
    let message = RefreshRequest {
        refresh_token: token.to_owned(),
        ..RefreshRequest::default()
    };
    let request = match proof {
        Some(proof) => with_proof(message, proof),
        None => Request::new(message),
    };
    client.refresh(request).await.map(|r| r.into_inner())
}

async fn whoami_with(
    client: &mut Client,
    token: &str,
    proof: Option<&str>,
) -> Result<sessiond::proto::session::v1::WhoamiResponse, Status> {
    let message = WhoamiRequest {
        session_token: token.to_owned(),
        ..WhoamiRequest::default()
    };
    let request = match proof {
        Some(proof) => with_proof(message, proof),
        None => Request::new(message),
    };
    client.whoami(request).await.map(|r| r.into_inner())
}

/// The google.rpc.ErrorInfo reason of an UNAUTHENTICATED answer.
fn refused_for<T: std::fmt::Debug>(result: Result<T, Status>) -> (String, Status) {
    let status = assert_code(result, Code::Unauthenticated);
    let reason = status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default();
    (reason, status)
}

/// A JWS with `header` and `claims` (JSON) and `signature` (raw bytes), unverified.
fn jws(header: &serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

on_backends!(a_bound_session_refreshes_only_with_its_device_proof: sled, redis, cluster);
async fn a_bound_session_refreshes_only_with_its_device_proof() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let started = start_bound(&mut client, "default", &device).await;
    assert_eq!(
        session_of(&started.session).device_key_thumbprint,
        device.thumbprint()
    );

    let (reason, status) =
        refused_for(refresh_with(&mut client, &started.refresh_token, None).await);
    assert_eq!(reason, "PROOF_MISSING");
    assert!(!status.message().contains(&started.refresh_token));

    let good = proof(&test, &device, REFRESH, &started.refresh_token);
    let refreshed = refresh_with(&mut client, &started.refresh_token, Some(&good))
        .await
        .expect("the device's proof rotates the tokens");
    assert_eq!(
        session_of(&refreshed.session).device_key_thumbprint,
        device.thumbprint()
    );
    whoami_ok(&mut client, &refreshed.session_token).await;
}

on_backends!(hostile_proofs_are_refused_with_their_reason_and_change_nothing: sled);
async fn hostile_proofs_are_refused_with_their_reason_and_change_nothing() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let started = start_bound(&mut client, "default", &device).await;
    let token = &started.refresh_token;
    let now = test.clock.now_ms();
    let other = start_bound(&mut client, "default", &device).await;
    let public_jwk: serde_json::Value =
        serde_json::from_str(&device.public_jwk_json()).expect("a JWK is JSON");
    let claims = serde_json::json!({
        "jti": "hostile", "iat": now / 1000, "htm": "POST", "htu": REFRESH,
        "ath": sessiond::session::binding::token_hash(token),
    });
    let none = jws(
        &serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk}),
        &claims,
        b"",
    );
    let mut private_jwk = public_jwk.clone();
    private_jwk["d"] = serde_json::json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let with_d = jws(
        &serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": private_jwk}),
        &claims,
        &[0u8; 64],
    );
    let cases = [
        (
            "another device's key",
            device_proof(&self::device(), "POST", REFRESH, token, now),
            "KEY_MISMATCH",
        ),
        (
            "another token's ath",
            device_proof(&device, "POST", REFRESH, &other.refresh_token, now),
            "TOKEN_HASH_MISMATCH",
        ),
        (
            "another call's htu",
            device_proof(&device, "POST", WHOAMI, token, now),
            "REQUEST_MISMATCH",
        ),
        (
            "another method",
            device_proof(&device, "GET", REFRESH, token, now),
            "REQUEST_MISMATCH",
        ),
        (
            "iat too old",
            device_proof(&device, "POST", REFRESH, token, now - 120_000),
            "ISSUED_AT_OUT_OF_WINDOW",
        ),
        (
            "iat in the future",
            device_proof(&device, "POST", REFRESH, token, now + 120_000),
            "ISSUED_AT_OUT_OF_WINDOW",
        ),
        ("alg none", none, "ALGORITHM_NOT_ALLOWED"),
        ("a JWK with d", with_d, "KEY_INVALID"),
        (
            "HS256 keyed with the public key",
            hs256_with_public_key(&public_jwk, &claims),
            "ALGORITHM_NOT_ALLOWED",
        ),
        ("not a JWS", "not-a-jws".to_owned(), "PROOF_MALFORMED"),
        (
            "malformed base64",
            "e30.!!!.AA".to_owned(),
            "PROOF_MALFORMED",
        ),
        (
            "claims not JSON",
            format!(
                "{}.{}.AA",
                URL_SAFE_NO_PAD.encode(r#"{"typ":"dpop+jwt"}"#),
                URL_SAFE_NO_PAD.encode("{oops")
            ),
            "PROOF_MALFORMED",
        ),
        ("oversized", "a".repeat(5000), "PROOF_MALFORMED"),
    ];
    for (case, hostile, expected) in cases {
        let (reason, status) = refused_for(refresh_with(&mut client, token, Some(&hostile)).await);
        assert_eq!(reason, expected, "{case}: {status:?}");
    }

    // Nothing was written: the same refresh token still rotates with a good proof.
    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: "alice".into(),
            ..ListUserSessionsRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed
        .sessions
        .iter()
        .all(|session| session.end_reason == EndReason::Unspecified as i32));
    let good = proof(&test, &device, REFRESH, token);
    refresh_with(&mut client, token, Some(&good))
        .await
        .expect("the token survived every hostile proof");
}

/// The classic confusion: an HMAC "signature" keyed with the public key's bytes.
fn hs256_with_public_key(jwk: &serde_json::Value, claims: &serde_json::Value) -> String {
    use hkdf::hmac::{Hmac, Mac};
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk});
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let input = format!("{}.{}", part(&header), part(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(jwk.to_string().as_bytes())
        .expect("HMAC takes any key");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn device_proof(
    device: &DeviceSigner,
    method: &str,
    path: &str,
    token: &str,
    at_ms: u64,
) -> String {
    device
        .proof(method, path, token, None, at_ms)
        .expect("a device signs its proofs")
}

on_backends!(a_replayed_proof_is_refused: sled, redis, cluster);
async fn a_replayed_proof_is_refused() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let started = start_bound(&mut client, "every", &device).await;
    let once = proof(&test, &device, WHOAMI, &started.session_token);
    whoami_with(&mut client, &started.session_token, Some(&once))
        .await
        .expect("a fresh proof passes");
    let (reason, _) =
        refused_for(whoami_with(&mut client, &started.session_token, Some(&once)).await);
    assert_eq!(reason, "REPLAYED");
    let (reason, _) = refused_for(whoami_with(&mut client, &started.session_token, None).await);
    assert_eq!(reason, "PROOF_MISSING", "every_call: Whoami needs a proof");
}

on_backends!(a_proof_replayed_on_another_server_is_refused: redis, cluster);
async fn a_proof_replayed_on_another_server_is_refused() {
    let a = TestServer::with_config(GROUPS).await;
    let mut b = TestServer::with_config(GROUPS).await;
    b.key_prefix = a.key_prefix.clone();
    b.restart().await;
    let (mut on_a, mut on_b) = (a.client().await, b.client().await);
    let device = device();
    let started = start_bound(&mut on_a, "every", &device).await;
    let once = proof(&a, &device, WHOAMI, &started.session_token);
    whoami_with(&mut on_a, &started.session_token, Some(&once))
        .await
        .expect("a fresh proof passes on A");
    let (reason, _) =
        refused_for(whoami_with(&mut on_b, &started.session_token, Some(&once)).await);
    assert_eq!(reason, "REPLAYED", "B sees the proof id A marked");
}

on_backends!(a_stolen_refresh_token_ends_the_session_under_revoke: sled, redis, cluster);
async fn a_stolen_refresh_token_ends_the_session_under_revoke() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let started = start_bound(&mut client, "revoke", &device).await;

    let (reason, _) = refused_for(refresh_with(&mut client, &started.refresh_token, None).await);
    assert_eq!(reason, "PROOF_MISSING", "the thief, without the key");

    let owner = proof(&test, &device, REFRESH, &started.refresh_token);
    let (reason, status) =
        refused_for(refresh_with(&mut client, &started.refresh_token, Some(&owner)).await);
    assert_eq!(
        reason, "BINDING_VIOLATION",
        "the owner learns why: {status:?}"
    );
    let (reason, _) = refused_for(whoami(&mut client, &started.session_token).await);
    assert_eq!(reason, "BINDING_VIOLATION");
    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: "alice".into(),
            include_inactive: true,
            ..ListUserSessionsRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.sessions[0].end_reason,
        EndReason::BindingViolation as i32
    );
}

on_backends!(a_nonce_round_trip_passes: sled, redis);
async fn a_nonce_round_trip_passes() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let started = start_bound(&mut client, "nonce", &device).await;
    let first = proof(&test, &device, REFRESH, &started.refresh_token);
    let (reason, status) =
        refused_for(refresh_with(&mut client, &started.refresh_token, Some(&first)).await);
    assert_eq!(reason, "NONCE_REQUIRED");
    let nonce = status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("nonce").cloned())
        .expect("the refusal carries a nonce");
    assert_eq!(
        status.metadata().get("dpop-nonce").map(|v| v.to_str().ok()),
        Some(Some(nonce.as_str()))
    );
    let now = test.clock.now_ms();
    let retry = device
        .proof("POST", REFRESH, &started.refresh_token, Some(&nonce), now)
        .expect("a device signs its proofs");
    let refreshed = refresh_with(&mut client, &started.refresh_token, Some(&retry))
        .await
        .expect("the retry with the nonce passes");
    let wrong = with_wrong_secret(&refreshed.refresh_token);
    let (reason, _) = refused_for(refresh_with(&mut client, &wrong, None).await);
    assert!(
        reason.is_empty(),
        "a wrong token learns nothing of the binding"
    );
}

on_backends!(start_binds_as_the_group_says: sled);
async fn start_binds_as_the_group_says() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let required = client.start(bound_start("bob", "required", None)).await;
    assert_invalid_field(required, "device_key");
    let off = client.start(bound_start("bob", "off", Some(&device))).await;
    assert_invalid_field(off, "device_key");
    for (case, jwk) in [
        ("a private key", r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#.to_owned()),
        ("RSA", r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.to_owned()),
        ("oversized", format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, "A".repeat(2000))),
        ("not JSON", "{".to_owned()),
    ] {
        let request = StartRequest {
            device_key: jwk,
            ..start_request("bob")
        };
        let refused = client.start(request).await;
        let status = assert_code(refused, Code::InvalidArgument);
        assert!(status.message().starts_with("device_key"), "{case}: {status:?}");
    }
    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: "bob".into(),
            include_inactive: true,
            ..ListUserSessionsRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.sessions.is_empty(), "nothing was written");
}

on_backends!(an_unbound_session_ignores_a_proof: sled);
async fn an_unbound_session_ignores_a_proof() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let stray = proof(&test, &device(), REFRESH, &started.refresh_token);
    refresh_with(&mut client, &started.refresh_token, Some(&stray))
        .await
        .expect("a bearer session refreshes whatever proof comes along");
}

on_backends!(reauthenticate_rebinds_to_a_new_device: sled);
async fn reauthenticate_rebinds_to_a_new_device() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let (old, new) = (device(), device());
    let started = start_bound(&mut client, "default", &old).await;
    client
        .reauthenticate(ReauthenticateRequest {
            session_token: started.session_token.clone(),
            device_key: new.public_jwk_json(),
            ..ReauthenticateRequest::default()
        })
        .await
        .expect("rebind");
    let by_old = proof(&test, &old, REFRESH, &started.refresh_token);
    let (reason, _) =
        refused_for(refresh_with(&mut client, &started.refresh_token, Some(&by_old)).await);
    assert_eq!(reason, "KEY_MISMATCH");
    let by_new = proof(&test, &new, REFRESH, &started.refresh_token);
    refresh_with(&mut client, &started.refresh_token, Some(&by_new))
        .await
        .expect("the new device's proof passes");
}

on_backends!(a_bound_session_survives_a_restart: sled, redis);
async fn a_bound_session_survives_a_restart() {
    let mut test = TestServer::with_config(GROUPS).await;
    let device = device();
    let started = start_bound(&mut test.client().await, "default", &device).await;
    test.restart().await;
    let mut client = test.client().await;
    let (reason, _) = refused_for(refresh_with(&mut client, &started.refresh_token, None).await);
    assert_eq!(reason, "PROOF_MISSING", "still bound after a restart");
    let good = proof(&test, &device, REFRESH, &started.refresh_token);
    refresh_with(&mut client, &started.refresh_token, Some(&good))
        .await
        .expect("the device's proof passes after a restart");
}

on_backends!(access_tokens_of_a_bound_session_carry_cnf: sled);
async fn access_tokens_of_a_bound_session_carry_cnf() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let device = device();
    let started = start_bound(&mut client, "tokens", &device).await;
    let payload = started
        .access_token
        .split('.')
        .nth(1)
        .expect("a JWT has a payload");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims");
    assert_eq!(claims["cnf"]["jkt"], device.thumbprint());
    let bearer = start_with(&mut client, start_request_in_group("bob", "tokens")).await;
    let payload = bearer.access_token.split('.').nth(1).expect("payload");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims");
    assert!(
        claims.get("cnf").is_none(),
        "a bearer session's token has none"
    );
}

on_backends!(network_binding_holds_a_session_to_its_subnet: sled);
async fn network_binding_holds_a_session_to_its_subnet() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            client: Some(client_at("10.1.2.3")),
            ..start_request_in_group("alice", "net")
        },
    )
    .await;
    let from = |ip: &str| WhoamiRequest {
        session_token: started.session_token.clone(),
        client: Some(client_at(ip)),
    };
    client
        .whoami(from("10.1.2.200"))
        .await
        .expect("the same /24");
    let (reason, _) = refused_for(client.whoami(from("10.1.3.1")).await);
    assert_eq!(reason, "NETWORK_MISMATCH");
    let (reason, _) = refused_for(whoami(&mut client, &started.session_token).await);
    assert_eq!(reason, "NETWORK_UNKNOWN");
}

fn client_at(ip: &str) -> sessiond::proto::session::v1::ClientContext {
    sessiond::proto::session::v1::ClientContext {
        ip: ip.into(),
        ..Default::default()
    }
}
