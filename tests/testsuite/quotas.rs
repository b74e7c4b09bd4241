//! Quotas on Start and Refresh: per caller, per user, per session; RESOURCE_EXHAUSTED
//! with a RetryInfo saying when to retry; none unless configured.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{RefreshRequest, RefreshResponse, StartResponse};
use sha2::{Digest, Sha256};
use support::*;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

const KEY_A: &str = "caller-a-key-51d0";
const KEY_B: &str = "caller-b-key-9f3e";

fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Two callers, "a" and "b", both allowed everything, under `quotas` (a `[quotas]` body).
fn two_callers_with(quotas: &str) -> String {
    format!(
        "[quotas]\n{quotas}\n\
         [[callers]]\nname = \"a\"\napi_key_sha256 = \"{}\"\ncalls = [\"*\"]\n\
         [[callers]]\nname = \"b\"\napi_key_sha256 = \"{}\"\ncalls = [\"*\"]\n",
        sha256_hex(KEY_A),
        sha256_hex(KEY_B)
    )
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii key"),
    );
    request
}

async fn start_as(client: &mut Client, key: &str, user: &str) -> Result<StartResponse, Status> {
    client
        .start(with_key(start_request(user), key))
        .await
        .map(|response| response.into_inner())
}

async fn refresh_as(
    client: &mut Client,
    key: &str,
    refresh_token: &str,
) -> Result<RefreshResponse, Status> {
    let request = RefreshRequest {
        refresh_token: refresh_token.to_owned(),
        ..Default::default()
    };
    client
        .refresh(with_key(request, key))
        .await
        .map(|response| response.into_inner())
}

/// The status is RESOURCE_EXHAUSTED with a RetryInfo of a positive delay.
fn assert_over_quota(status: Status) -> std::time::Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(!retry.is_zero(), "{status:?}");
    retry
}

on_backends!(a_caller_over_its_start_quota_waits_while_another_caller_goes_on: sled);
async fn a_caller_over_its_start_quota_waits_while_another_caller_goes_on() {
    let server = TestServer::with_config(&two_callers_with(
        "start_per_caller = { calls = 3, per = \"1m\" }",
    ))
    .await;
    let mut client = server.client().await;
    for n in 0..3 {
        start_as(&mut client, KEY_A, &format!("a-user-{n}"))
            .await
            .expect("within caller a's quota");
    }
    let refused = start_as(&mut client, KEY_A, "a-user-3")
        .await
        .expect_err("caller a is over its quota");
    let retry = assert_over_quota(refused);
    assert_eq!(retry, secs(20), "a call comes back every 20 s");
    for n in 0..3 {
        start_as(&mut client, KEY_B, &format!("b-user-{n}"))
            .await
            .expect("caller b has a bucket of its own");
    }
    server.advance(retry);
    start_as(&mut client, KEY_A, "a-user-3")
        .await
        .expect("caller a is admitted again after the delay it was given");
}

/// A server where caller "a" may Start once a minute and has just done so; refusals are
/// held up to `hold_limit`.
async fn caller_a_after_its_one_start(hold_limit: &str) -> (TestServer, Client) {
    let server = TestServer::with_config(&two_callers_with(&format!(
        "start_per_caller = {{ calls = 1, per = \"1m\" }}\nrefusal_hold_limit = \"{hold_limit}\""
    )))
    .await;
    let mut client = server.client().await;
    start_as(&mut client, KEY_A, "a-user")
        .await
        .expect("within caller a's quota");
    (server, client)
}

on_backends!(a_flood_of_refusals_is_answered_at_the_pace_of_its_bucket: sled);
async fn a_flood_of_refusals_is_answered_at_the_pace_of_its_bucket() {
    let (_server, mut client) = caller_a_after_its_one_start("1s").await;
    let began = std::time::Instant::now();
    let flood: Vec<_> = (0..20)
        .map(|n| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let refused = start_as(&mut client, KEY_A, &format!("a-flood-{n}")).await;
                (refused, began.elapsed())
            })
        })
        .collect();
    start_as(&mut client, KEY_B, "b-user")
        .await
        .expect("caller b is not held behind caller a's refusals");
    let mut slowest = std::time::Duration::ZERO;
    for call in flood {
        let (refused, took) = call.await.expect("flood task");
        assert_over_quota(refused.expect_err("caller a is over its quota"));
        slowest = slowest.max(took);
    }
    // 20 refusals at once: the first is answered at once, the others wait for their
    // turn (a minute each), at most the 1 s limit.
    assert!(
        slowest >= secs(1) - std::time::Duration::from_millis(50),
        "{slowest:?}"
    );
}

on_backends!(a_held_refusal_is_answered_within_the_clients_deadline: sled);
async fn a_held_refusal_is_answered_within_the_clients_deadline() {
    let (_server, mut client) = caller_a_after_its_one_start("10s").await;
    start_as(&mut client, KEY_A, "a-first-refused")
        .await
        .expect_err("over quota, answered at once");
    // The next refusal comes before its turn and would be held for up to 10 s; the
    // client allows 400 ms, so it is held at most half of that.
    let mut request = with_key(start_request("a-too-soon"), KEY_A);
    request.set_timeout(std::time::Duration::from_millis(400));
    let status = client.start(request).await.expect_err("still over quota");
    assert_over_quota(status);
}

on_backends!(a_user_over_its_start_quota_is_refused_whoever_calls: sled);
async fn a_user_over_its_start_quota_is_refused_whoever_calls() {
    let server = TestServer::with_config(&two_callers_with(
        "start_per_user = { calls = 1, per = \"1h\", burst = 2 }",
    ))
    .await;
    let mut client = server.client().await;
    start_as(&mut client, KEY_A, "ada").await.expect("first");
    start_as(&mut client, KEY_B, "ada").await.expect("second");
    let retry = assert_over_quota(
        start_as(&mut client, KEY_A, "ada")
            .await
            .expect_err("ada is over her quota"),
    );
    assert_eq!(retry, secs(3600), "one Start an hour refills");
    assert_over_quota(
        start_as(&mut client, KEY_B, "ada")
            .await
            .expect_err("through either caller"),
    );
    start_as(&mut client, KEY_A, "bob")
        .await
        .expect("another user has a bucket of his own");
}

on_backends!(refreshes_of_one_session_are_limited_failed_ones_included: sled);
async fn refreshes_of_one_session_are_limited_failed_ones_included() {
    let server = TestServer::with_config(&two_callers_with(
        "refresh_per_session = { calls = 2, per = \"1m\" }",
    ))
    .await;
    let mut client = server.client().await;
    let ada = start_as(&mut client, KEY_A, "ada").await.expect("start");
    let refreshed = refresh_as(&mut client, KEY_A, &ada.refresh_token)
        .await
        .expect("first refresh");
    let wrong = refresh_as(
        &mut client,
        KEY_A,
        &with_wrong_secret(&refreshed.refresh_token),
    )
    .await
    .expect_err("a wrong secret");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_over_quota(
        refresh_as(&mut client, KEY_A, &refreshed.refresh_token)
            .await
            .expect_err("the session's two refreshes a minute are used"),
    );
    let bob = start_as(&mut client, KEY_B, "bob").await.expect("start");
    refresh_as(&mut client, KEY_B, &bob.refresh_token)
        .await
        .expect("another session has a bucket of its own");
}

on_backends!(without_quotas_a_caller_and_a_user_start_freely: sled);
async fn without_quotas_a_caller_and_a_user_start_freely() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for _ in 0..200 {
        start_session(&mut client, "ada").await;
    }
}
