//! `GET /auth` for device-bound sessions (docs/gateways.md#device-bound-sessions): the
//! client's `DPoP` header checked against the request the proxy names (nginx's
//! `X-Original-*`, Caddy's `X-Forwarded-*`), refusals as RFC 9449 answers them; directly,
//! and through a real nginx and a real Caddy configured as the docs say.

use super::caddy::start_caddy;
use super::common::TestServer;
use super::gateway::Gateway;
use super::nginx::start_nginx;
use super::plain_http::{echoed, get, Answer, EchoUpstream};
use super::support::{bound_session, device, dpop_reason};
use super::{auth, cookie};
use sessiond::clock::Clock;
use sessiond::session::binding::DeviceSigner;

/// `every` asks a proof on every use, `nonce` also a server nonce; the token comes in
/// the `sid` cookie (or `authorization`).
const GROUPS: &str = r#"metrics_listen = "127.0.0.1:0"

[groups.every]
proof_on_use = "every_call"

[groups.nonce]
proof_on_use = "every_call"
require_nonce = true

[gateway]
token_cookie = "sid"
"#;

const URL: &str = "https://app.example/orders";

/// nginx's headers (as docs/gateways.md configures it) for `GET` `URL`.
const ORIGINAL: [(&str, &str); 2] = [("x-original-method", "GET"), ("x-original-url", URL)];

/// A proof by `device` for `GET url` with `token`, at the server's clock.
fn proof(test: &TestServer, device: &DeviceSigner, url: &str, token: &str) -> String {
    proof_with_nonce(test, device, url, token, None)
}

fn proof_with_nonce(
    test: &TestServer,
    device: &DeviceSigner,
    url: &str,
    token: &str,
    nonce: Option<&str>,
) -> String {
    device
        .proof("GET", url, token, nonce, test.clock.now_ms())
        .expect("a device signs its proofs")
}

/// `headers` with the session cookie and, when given, the proof.
fn with_session<'a>(
    cookie: &'a str,
    dpop: Option<&'a str>,
    headers: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("cookie", cookie)];
    all.extend(dpop.map(|proof| ("dpop", proof)));
    all.extend_from_slice(headers);
    all
}

/// The binding failure's reason in a 401's DPoP challenge, after checking the `error`.
fn refused_for(answer: &Answer, error: &str) -> String {
    assert_eq!(answer.status, 401, "{answer:?}");
    let challenge = answer.header("www-authenticate").join(", ");
    dpop_reason(&challenge, error)
}

on_backends!(auth_checks_a_proof_against_the_request_the_proxy_names: sled, redis);
async fn auth_checks_a_proof_against_the_request_the_proxy_names() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;
    let sid = cookie(&token);
    let caddy = [
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example"),
        ("x-forwarded-uri", "/orders?page=2"),
    ];

    let missing = auth(&test, &with_session(&sid, None, &ORIGINAL)).await;
    assert_eq!(refused_for(&missing, "invalid_dpop_proof"), "PROOF_MISSING");
    for (proxy, named) in [("nginx", &ORIGINAL[..]), ("caddy", &caddy[..])] {
        let dpop = proof(&test, &device, URL, &token);
        let passed = auth(&test, &with_session(&sid, Some(&dpop), named)).await;
        assert_eq!(passed.status, 200, "{proxy}: {passed:?}");
        assert_eq!(passed.header("x-user-id"), ["alice"], "{proxy}");
    }
    for (case, url, named) in [
        ("another URL", "https://app.example/admin", &ORIGINAL[..]),
        ("no request named", URL, &[][..]),
    ] {
        let dpop = proof(&test, &device, url, &token);
        let refused = auth(&test, &with_session(&sid, Some(&dpop), named)).await;
        let reason = refused_for(&refused, "invalid_dpop_proof");
        assert_eq!(reason, "REQUEST_MISMATCH", "{case}");
    }
}

on_backends!(auth_refuses_a_replayed_proof_and_a_dpop_header_sent_twice: sled, redis);
async fn auth_refuses_a_replayed_proof_and_a_dpop_header_sent_twice() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;
    let sid = cookie(&token);
    let dpop = proof(&test, &device, URL, &token);
    let passed = auth(&test, &with_session(&sid, Some(&dpop), &ORIGINAL)).await;
    assert_eq!(passed.status, 200, "{passed:?}");

    let replayed = auth(&test, &with_session(&sid, Some(&dpop), &ORIGINAL)).await;
    assert_eq!(refused_for(&replayed, "invalid_dpop_proof"), "REPLAYED");

    let other = proof(&test, &device, URL, &token);
    let twice = [ORIGINAL[0], ORIGINAL[1], ("dpop", other.as_str())];
    let refused = auth(&test, &with_session(&sid, Some(&dpop), &twice)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("www-authenticate"),
        ["Bearer realm=\"sessiond\", error=\"invalid_token\""]
    );
}

on_backends!(auth_asks_for_a_nonce_and_the_retry_with_it_passes: sled, redis);
async fn auth_asks_for_a_nonce_and_the_retry_with_it_passes() {
    let test = TestServer::with_config(GROUPS).await;
    let device = device();
    let token = bound_session(&mut test.client().await, "nonce", &device).await;
    let sid = cookie(&token);

    let first = proof(&test, &device, URL, &token);
    let refused = auth(&test, &with_session(&sid, Some(&first), &ORIGINAL)).await;
    assert_eq!(refused_for(&refused, "use_dpop_nonce"), "NONCE_REQUIRED");
    let [nonce] = refused.header("dpop-nonce")[..] else {
        panic!("one DPoP-Nonce: {refused:?}");
    };

    let retry = proof_with_nonce(&test, &device, URL, &token, Some(nonce));
    let passed = auth(&test, &with_session(&sid, Some(&retry), &ORIGINAL)).await;
    assert_eq!(passed.status, 200, "{passed:?}");
}

/// `GET /orders?page=2` through `gateway` with the session cookie `sid`, the proof when
/// given, and `headers`.
async fn via(gateway: &Gateway, sid: &str, dpop: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    get(
        gateway.addr,
        "/orders?page=2",
        &with_session(sid, dpop, headers),
    )
    .await
}

/// Through `gateway` in front of `upstream`: a bound session passes only with a fresh
/// proof by its device for the URL the client asked; the gateway passes the DPoP
/// challenge and the nonce to retry with; a client naming another request in
/// `X-Original-*` headers of its own gains nothing.
async fn only_proven_requests_pass(test: &TestServer, upstream: &EchoUpstream, gateway: &Gateway) {
    let device = device();
    let token = bound_session(&mut test.client().await, "every", &device).await;
    let sid = cookie(&token);
    let at = |path: &str| format!("http://{}{path}", gateway.addr);

    let reached = upstream.requests();
    let missing = via(gateway, &sid, None, &[]).await;
    let reason = refused_for(&missing, "invalid_dpop_proof");
    assert_eq!(reason, "PROOF_MISSING", "{}", gateway.log());
    let elsewhere = proof(test, &device, &at("/admin"), &token);
    let refused = via(gateway, &sid, Some(&elsewhere), &[]).await;
    assert_eq!(
        refused_for(&refused, "invalid_dpop_proof"),
        "REQUEST_MISMATCH"
    );
    // The client names the request its proof is for: the gateway's own names win.
    let forged = proof(test, &device, &at("/forged"), &token);
    let named = [
        ("x-original-method", "GET"),
        ("x-original-url", &at("/forged")),
    ];
    let refused = via(gateway, &sid, Some(&forged), &named).await;
    assert_eq!(
        refused_for(&refused, "invalid_dpop_proof"),
        "REQUEST_MISMATCH"
    );
    assert_eq!(
        upstream.requests(),
        reached,
        "no refusal reached the upstream"
    );

    let dpop = proof(test, &device, &at("/orders"), &token);
    let passed = via(gateway, &sid, Some(&dpop), &[]).await;
    assert_eq!(passed.status, 200, "{passed:?}\n{}", gateway.log());
    assert_eq!(echoed(&passed)["x-user-id"], ["alice"]);
    let replayed = via(gateway, &sid, Some(&dpop), &[]).await;
    assert_eq!(refused_for(&replayed, "invalid_dpop_proof"), "REPLAYED");

    let token = bound_session(&mut test.client().await, "nonce", &device).await;
    let sid = cookie(&token);
    let first = proof(test, &device, &at("/orders"), &token);
    let refused = via(gateway, &sid, Some(&first), &[]).await;
    assert_eq!(refused_for(&refused, "use_dpop_nonce"), "NONCE_REQUIRED");
    let [nonce] = refused.header("dpop-nonce")[..] else {
        panic!(
            "the gateway passes one DPoP-Nonce: {refused:?}\n{}",
            gateway.log()
        );
    };
    let retry = proof_with_nonce(test, &device, &at("/orders"), &token, Some(nonce));
    let passed = via(gateway, &sid, Some(&retry), &[]).await;
    assert_eq!(passed.status, 200, "{passed:?}");
}

on_backends!(nginx_passes_a_bound_session_only_with_its_device_proof: sled);
async fn nginx_passes_a_bound_session_only_with_its_device_proof() {
    let test = TestServer::with_config(GROUPS).await;
    let upstream = EchoUpstream::start().await;
    let Some(gateway) = start_nginx(&test, &upstream) else {
        return;
    };
    only_proven_requests_pass(&test, &upstream, &gateway).await;
}

on_backends!(caddy_passes_a_bound_session_only_with_its_device_proof: sled);
async fn caddy_passes_a_bound_session_only_with_its_device_proof() {
    let test = TestServer::with_config(GROUPS).await;
    let upstream = EchoUpstream::start().await;
    let Some(gateway) = start_caddy(&test, &upstream) else {
        return;
    };
    only_proven_requests_pass(&test, &upstream, &gateway).await;
}
