//! Chrome's Device Bound Session Credentials with sessiond behind a web backend (BFF),
//! docs/binding.md#dbsc: the test plays the browser from the W3C draft's formats
//! (`Secure-Session-Response` JWTs of type `dbsc+jwt`) and the BFF in between, which
//! maps registration to Start with the browser's key, takes each refresh challenge
//! from sessiond's nonce, and hands the browser's response to Refresh as its proof.

use crate::common;
use crate::support;

use common::TestServer;
use serde_json::json;
use sessiond::clock::Clock;
use sessiond::proto::session::v1::{RefreshRequest, RefreshResponse, StartRequest};
use sessiond::session::binding::{verify_dbsc_response, DeviceSigner};
use support::*;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// Web sessions: bound always, refreshed only against a server challenge.
const GROUPS: &str = r#"
[groups.web]
device_binding = "required"
require_nonce = true
"#;

const START_URL: &str = "https://app.example/dbsc/start";
const REFRESH_URL: &str = "https://app.example/dbsc/refresh";

/// The browser's `Secure-Session-Response`: a `dbsc+jwt` over `challenge`, with its
/// key in the header at registration.
fn browser_response(
    browser: &DeviceSigner,
    challenge: &str,
    aud: &str,
    with_key: bool,
    now_ms: u64,
) -> String {
    let mut header = json!({"alg": "ES256", "typ": "dbsc+jwt"});
    if with_key {
        header["jwk"] = browser.device_key().to_value();
    }
    let claims = json!({"jti": challenge, "aud": aud, "iat": now_ms / 1000});
    browser
        .sign_compact(&header, &claims)
        .expect("the browser signs")
}

/// The BFF's Refresh, with the browser's response (if any) as the proof.
async fn refresh(
    client: &mut Client,
    token: &str,
    response: Option<&str>,
) -> Result<RefreshResponse, Status> {
    let mut request = Request::new(RefreshRequest {
        refresh_token: token.to_owned(),
        ..RefreshRequest::default()
    });
    if let Some(response) = response {
        let value = MetadataValue::try_from(response).expect("a JWT is ASCII");
        request.metadata_mut().insert("dpop", value);
    }
    client.refresh(request).await.map(|r| r.into_inner())
}

/// The reason and the nonce of a refusal.
fn refusal(status: &Status) -> (String, Option<String>) {
    let details = status.get_error_details();
    let info = details.error_info();
    (
        info.map(|info| info.reason.clone()).unwrap_or_default(),
        info.and_then(|info| info.metadata.get("nonce").cloned()),
    )
}

/// What the BFF sends the browser for a refresh: 403 with this header.
fn challenge_header(challenge: &str, session_id: &str) -> String {
    format!("\"{challenge}\";id=\"{session_id}\"")
}

/// The challenge the browser reads from that header.
fn challenge_of(header: &str) -> String {
    header
        .split(';')
        .next()
        .map(|quoted| quoted.trim_matches('"').to_owned())
        .expect("a challenge")
}

on_backends!(a_browser_registers_and_refreshes_with_dbsc: sled, redis);
async fn a_browser_registers_and_refreshes_with_dbsc() {
    let test = TestServer::with_config(GROUPS).await;
    let mut client = test.client().await;
    let browser = DeviceSigner::generate_p256().expect("random");
    let now = test.clock.now_ms();

    // Registration: the BFF checks the browser's response over its own challenge and
    // starts the session with the key it carries.
    let registration = browser_response(&browser, "registration-challenge", START_URL, true, now);
    let registered = verify_dbsc_response(&registration, None, now, 60_000)
        .expect("the registration response verifies with the key it carries");
    assert_eq!(registered.challenge, "registration-challenge");
    let started = start_with(
        &mut client,
        StartRequest {
            device_key: registered.key.to_json(),
            ..start_request_in_group("alice", "web")
        },
    )
    .await;
    let session_id = session_of(&started.session).session_id.clone();
    assert_eq!(
        session_of(&started.session).device_key_thumbprint,
        browser.thumbprint()
    );

    // Refresh: without a response sessiond refuses and hands out the challenge.
    let status = assert_code(
        refresh(&mut client, &started.refresh_token, None).await,
        Code::Unauthenticated,
    );
    let (reason, nonce) = refusal(&status);
    assert_eq!(reason, "PROOF_MISSING");
    let header = challenge_header(&nonce.expect("a challenge to send"), &session_id);

    // The browser signs the challenge; the BFF passes the response on as the proof.
    let signed = browser_response(&browser, &challenge_of(&header), REFRESH_URL, false, now);
    let refreshed = refresh(&mut client, &started.refresh_token, Some(&signed))
        .await
        .expect("the browser's response refreshes the session");

    // A response is good once; one by another key, or over a challenge sessiond never
    // gave, is refused.
    let again = assert_code(
        refresh(&mut client, &refreshed.refresh_token, Some(&signed)).await,
        Code::Unauthenticated,
    );
    assert_eq!(refusal(&again).0, "REPLAYED");
    let status = assert_code(
        refresh(&mut client, &refreshed.refresh_token, None).await,
        Code::Unauthenticated,
    );
    let challenge = refusal(&status).1.expect("a new challenge");
    let thief = DeviceSigner::generate_p256().expect("random");
    let forged = browser_response(&thief, &challenge, REFRESH_URL, false, now);
    let status = assert_code(
        refresh(&mut client, &refreshed.refresh_token, Some(&forged)).await,
        Code::Unauthenticated,
    );
    assert_eq!(refusal(&status).0, "SIGNATURE_INVALID");
    let made_up = browser_response(&browser, "made-up", REFRESH_URL, false, now);
    let status = assert_code(
        refresh(&mut client, &refreshed.refresh_token, Some(&made_up)).await,
        Code::Unauthenticated,
    );
    let (reason, nonce) = refusal(&status);
    assert_eq!(reason, "NONCE_REQUIRED");
    let fresh = browser_response(
        &browser,
        &nonce.expect("a challenge"),
        REFRESH_URL,
        false,
        now,
    );
    refresh(&mut client, &refreshed.refresh_token, Some(&fresh))
        .await
        .expect("the response over the new challenge refreshes");
}
