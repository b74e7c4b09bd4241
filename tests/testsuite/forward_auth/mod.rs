//! HTTP forward-auth (`GET /auth` on the admin port): directly, and behind real gateways
//! (nginx's `auth_request`, Caddy's `forward_auth`, each configured as docs/gateways.md
//! says) in front of an upstream that echoes the headers it receives. Each gateway runs
//! from a temp dir of its own on a loopback port. Without its binary a gateway's test is
//! skipped, loudly, except under CI (`CI` set), where it fails.

use crate::common;
use crate::plain_http;
use crate::support;

mod binding;
mod caddy;
mod gateway;
mod nginx;

use std::net::SocketAddr;

use common::TestServer;
use gateway::Gateway;
use plain_http::{echoed, get, Answer, EchoUpstream};
use support::*;

/// Access tokens in the default group, none in `plain`; the token comes in the `sid`
/// cookie (or `authorization`); `plain` and `default` pass, `other` does not.
const GATEWAY: &str = r#"metrics_listen = "127.0.0.1:0"

[groups.default]
access_token_ttl = "5m"

[groups.plain]
lifespan = "1h"

[groups.other]
lifespan = "1h"

[gateway]
token_cookie = "sid"
groups = ["default", "plain"]
"#;

fn admin_addr(test: &TestServer) -> SocketAddr {
    test.running().metrics_addr().expect("admin port on")
}

async fn auth(test: &TestServer, headers: &[(&str, &str)]) -> Answer {
    get(admin_addr(test), "/auth", headers).await
}

fn cookie(token: &str) -> String {
    format!("theme=dark; sid={token}")
}

on_backends!(a_valid_session_gets_200_with_the_upstream_headers_and_no_body: sled, redis);
async fn a_valid_session_gets_200_with_the_upstream_headers_and_no_body() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let answer = auth(&test, &[("cookie", &cookie(&started.session_token))]).await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-user-id"), ["alice"]);
    assert_eq!(
        answer.header("x-session-id"),
        [session_of(&started.session).session_id.as_str()]
    );
    assert_eq!(answer.header("x-session-group"), ["default"]);
    assert_eq!(answer.header("x-access-token").len(), 1);
    assert_eq!(answer.header("cache-control"), ["no-store"]);
    assert!(answer.body.is_empty(), "never a body: {answer:?}");
}

on_backends!(missing_bad_and_foreign_tokens_are_refused: sled, redis);
async fn missing_bad_and_foreign_tokens_are_refused() {
    let test = TestServer::with_config(GATEWAY).await;
    let mut client = test.client().await;
    let valid = start_session(&mut client, "bob").await;
    let other = start_session_in_group(&mut client, "bob", "other").await;
    let oversized = cookie(&"a".repeat(9 * 1024));

    let missing = auth(&test, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        ["Bearer realm=\"sessiond\""]
    );
    for headers in [
        [("authorization", "Bearer st_garbage".to_owned())],
        [("cookie", cookie(&with_wrong_secret(&valid.session_token)))],
        [("cookie", oversized)],
    ] {
        let refused = auth(&test, &[(headers[0].0, &headers[0].1)]).await;
        assert_eq!(refused.status, 401, "{:.60}", headers[0].1);
        assert_eq!(
            refused.header("www-authenticate"),
            ["Bearer realm=\"sessiond\", error=\"invalid_token\""]
        );
        assert!(refused.header("x-user-id").is_empty());
    }
    let foreign = auth(&test, &[("cookie", &cookie(&other.session_token))]).await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.header("x-user-id").is_empty());
}

/// Through `gateway` in front of `upstream`: a valid session passes as its user, and no
/// identity header a client forges reaches the upstream; missing, revoked and expired
/// tokens get 401 with the challenge, and the upstream never hears of them.
async fn only_valid_sessions_pass(test: &TestServer, upstream: &EchoUpstream, gateway: &Gateway) {
    let mut client = test.client().await;
    let valid = start_session(&mut client, "alice").await;
    let plain = start_session_in_group(&mut client, "alice", "plain").await;
    let revoked = start_session(&mut client, "alice").await;
    let expiring = start_session_with_ttl(&mut client, "alice", 60).await;
    logout_token(&mut client, &revoked.session_token).await;

    // A valid cookie: through, as alice; the client's own identity headers do not survive.
    let passed = get(
        gateway.addr,
        "/orders",
        &[
            ("cookie", &cookie(&valid.session_token)),
            ("x-user-id", "mallory"),
            ("x-session-group", "admin"),
        ],
    )
    .await;
    assert_eq!(passed.status, 200, "{passed:?}\n{}", gateway.log());
    let seen = echoed(&passed);
    assert_eq!(seen["x-user-id"], ["alice"]);
    assert_eq!(
        seen["x-session-id"],
        [session_of(&valid.session).session_id.clone()]
    );
    assert_eq!(seen["x-session-group"], ["default"]);
    assert_eq!(seen["x-access-token"].len(), 1);

    // A group without access tokens: no forged token reaches the upstream either.
    let plain_passed = get(
        gateway.addr,
        "/orders",
        &[
            ("cookie", &cookie(&plain.session_token)),
            ("x-access-token", "forged"),
        ],
    )
    .await;
    assert_eq!(plain_passed.status, 200, "{plain_passed:?}");
    assert!(
        !echoed(&plain_passed).contains_key("x-access-token"),
        "{:?}",
        echoed(&plain_passed)
    );

    // Missing, bogus, revoked and expired tokens: 401, and the upstream never asked.
    test.advance(secs(61));
    let reached = upstream.requests();
    for (what, headers) in [
        ("missing", vec![("x-user-id", "mallory".to_owned())]),
        (
            "bogus",
            vec![("authorization", "Bearer st_bogus".to_owned())],
        ),
        ("revoked", vec![("cookie", cookie(&revoked.session_token))]),
        ("expired", vec![("cookie", cookie(&expiring.session_token))]),
    ] {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let refused = get(gateway.addr, "/orders", &headers).await;
        assert_eq!(refused.status, 401, "{what}: {refused:?}");
        assert!(
            !refused.header("www-authenticate").is_empty(),
            "{what}: the gateway passes the challenge on"
        );
    }
    assert_eq!(
        upstream.requests(),
        reached,
        "no refused request reached the upstream"
    );
}
