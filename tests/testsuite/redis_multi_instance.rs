//! Two real `sessiond` processes on one Redis Cluster (the test cluster of
//! `SESSIOND_TEST_REDIS_CLUSTER_URLS`) with the same key prefix, each with a data dir of
//! its own: what one instance changes, the other sees at once, and both sign with the
//! keys kept in Redis. Instance A takes its Redis settings from its config file, B from
//! flags.

use crate::common;
use crate::support;

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::REDIS_CLUSTER_URLS_ENV;
use sessiond::proto::session::v1::{
    GetJwksRequest, ListUserSessionsRequest, LogoutRequest, RotateSigningKeyRequest,
    SessionEventKind as Kind, StartRequest,
};
use support::*;
use tempfile::TempDir;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tonic::Code;

/// Groups of both instances: `strict` has no refresh grace (a re-presented refresh
/// token is theft at once), `tokens` issues access tokens.
const GROUPS: &str = r#"
[groups.strict]
refresh_grace = "0s"

[groups.tokens]
access_token_ttl = "5m"
"#;

/// Concurrent Refresh calls in the race, half on each instance.
const RACERS: usize = 16;

/// Two instances on one cluster and key prefix; both killed on drop.
struct Pair {
    a: Daemon,
    b: Daemon,
    // Dropped last: the processes go first.
    _dir: TempDir,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn arg(path: &Path) -> String {
    path.to_str().expect("utf-8 temp path").to_owned()
}

/// Starts A (Redis from its config file), waits until it serves (it creates the
/// signing keys), then B (Redis from flags); each has a data dir of its own.
async fn pair() -> Pair {
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = common::redis_urls(REDIS_CLUSTER_URLS_ENV);
    let prefix = common::unique_key_prefix();

    let a_config = dir.path().join("a.toml");
    write(
        &a_config,
        &format!(
            "store = \"redis\"\n{GROUPS}\n{}",
            common::redis_table(&urls, true, &prefix)
        ),
    );
    let b_config = dir.path().join("b.toml");
    write(&b_config, GROUPS);

    let mut a = Daemon::spawn(
        &dir.path().join("a-data"),
        &dir.path().join("a.log"),
        "info",
        ["--config".to_owned(), arg(&a_config)],
    );
    a.serving().await;

    let mut b_args = vec![
        "--config".to_owned(),
        arg(&b_config),
        "--store".to_owned(),
        "redis".to_owned(),
        "--redis-cluster".to_owned(),
        "--redis-key-prefix".to_owned(),
        prefix,
    ];
    for url in urls {
        b_args.push("--redis-url".to_owned());
        b_args.push(url);
    }
    let mut b = Daemon::spawn(
        &dir.path().join("b-data"),
        &dir.path().join("b.log"),
        "info",
        &b_args,
    );
    b.serving().await;

    Pair { a, b, _dir: dir }
}

impl Pair {
    /// Both logs, for failure messages.
    fn logs(&self) -> String {
        format!(
            "--- A:\n{}\n--- B:\n{}",
            self.a.log_text(),
            self.b.log_text()
        )
    }
}

on_backends!(a_session_started_on_one_instance_is_valid_on_the_other: cluster);
async fn a_session_started_on_one_instance_is_valid_on_the_other() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;

    let on_a = start_session(&mut a, "alice").await;
    let on_b = start_session(&mut b, "alice").await;

    let seen_by_b = whoami(&mut b, &on_a.session_token).await;
    let seen_by_b = seen_by_b.unwrap_or_else(|s| panic!("B: {s:?}\n{}", pair.logs()));
    assert_eq!(
        session_of(&seen_by_b.session).session_id,
        session_of(&on_a.session).session_id
    );
    let seen_by_a = whoami(&mut a, &on_b.session_token).await;
    let seen_by_a = seen_by_a.unwrap_or_else(|s| panic!("A: {s:?}\n{}", pair.logs()));
    assert_eq!(
        session_of(&seen_by_a.session).session_id,
        session_of(&on_b.session).session_id
    );

    for client in [&mut a, &mut b] {
        let listed = client
            .list_user_sessions(ListUserSessionsRequest {
                user_id: "alice".to_owned(),
                page_size: 10,
                ..Default::default()
            })
            .await
            .expect("list succeeds")
            .into_inner();
        assert_eq!(
            sorted_ids(&listed.sessions),
            sorted_ids([session_of(&on_a.session), session_of(&on_b.session)]),
            "both instances list both sessions"
        );
    }
}

on_backends!(a_refresh_on_one_instance_rotates_the_tokens_for_both: cluster);
async fn a_refresh_on_one_instance_rotates_the_tokens_for_both() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;
    let started = start_session(&mut a, "alice").await;

    let rotated = refresh(&mut b, &started.refresh_token)
        .await
        .unwrap_or_else(|s| panic!("refresh on B: {s:?}\n{}", pair.logs()));

    whoami_ok(&mut a, &rotated.session_token).await;
    assert_code(
        whoami(&mut a, &started.session_token).await,
        Code::Unauthenticated,
    );
    refresh(&mut a, &rotated.refresh_token)
        .await
        .unwrap_or_else(|s| panic!("refresh on A: {s:?}\n{}", pair.logs()));
}

on_backends!(refresh_race_across_instances_has_one_winner: cluster);
async fn refresh_race_across_instances_has_one_winner() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let started = start_session_in_group(&mut a, "alice", "strict").await;

    let barrier = Arc::new(Barrier::new(RACERS));
    let mut racers = JoinSet::new();
    for i in 0..RACERS {
        // Every racer on its own connection, alternating instances.
        let mut client = if i % 2 == 0 {
            pair.a.client().await
        } else {
            pair.b.client().await
        };
        let token = started.refresh_token.clone();
        let barrier = barrier.clone();
        racers.spawn(async move {
            barrier.wait().await;
            refresh(&mut client, &token).await
        });
    }
    let mut ok = 0;
    let mut unexpected = Vec::new();
    while let Some(result) = racers.join_next().await {
        match result.expect("racer task") {
            Ok(_) => ok += 1,
            Err(status) if status.code() == Code::Unauthenticated => {}
            Err(status) => unexpected.push(format!("{:?}: {}", status.code(), status.message())),
        }
    }

    assert!(
        unexpected.is_empty(),
        "every loser is UNAUTHENTICATED, got {unexpected:?}\n{}",
        pair.logs()
    );
    assert_eq!(
        ok,
        1,
        "exactly one of {RACERS} refreshes wins\n{}",
        pair.logs()
    );
}

on_backends!(logout_on_one_instance_ends_the_session_on_the_other_at_once: cluster);
async fn logout_on_one_instance_ends_the_session_on_the_other_at_once() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;
    let started = start_session(&mut a, "alice").await;
    whoami_ok(&mut b, &started.session_token).await;

    assert_eq!(logout_token(&mut a, &started.session_token).await, 1);

    assert_code(
        whoami(&mut b, &started.session_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        refresh(&mut b, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(logout_of_all_sessions_of_a_user_reaches_sessions_of_both_instances: cluster);
async fn logout_of_all_sessions_of_a_user_reaches_sessions_of_both_instances() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;
    let on_a = start_session(&mut a, "alice").await;
    let on_b = start_session(&mut b, "alice").await;

    let revoked = logout(
        &mut b,
        LogoutRequest {
            user_id: "alice".to_owned(),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|s| panic!("logout of alice on B: {s:?}\n{}", pair.logs()))
    .revoked_count;

    assert_eq!(revoked, 2);
    for token in [&on_a.session_token, &on_b.session_token] {
        assert_code(whoami(&mut a, token).await, Code::Unauthenticated);
    }
}

on_backends!(refresh_all_on_one_instance_extends_sessions_started_on_the_other: cluster);
async fn refresh_all_on_one_instance_extends_sessions_started_on_the_other() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;
    let first = start_session_with_ttl(&mut a, "alice", 2 * MINUTE).await;
    let second = start_session_with_ttl(&mut a, "alice", 2 * MINUTE).await;

    let refreshed = refresh_all(&mut b, "alice", Some(HOUR))
        .await
        .unwrap_or_else(|s| panic!("refresh all on B: {s:?}\n{}", pair.logs()));

    assert_eq!(refreshed.refreshed_count, 2);
    assert_eq!(
        sorted_ids(&refreshed.sessions),
        sorted_ids([session_of(&first.session), session_of(&second.session)])
    );
    for started in [&first, &second] {
        let before = session_of(&started.session).expires_at_s();
        let seen_by_a = whoami_ok(&mut a, &started.session_token).await;
        let after = session_of(&seen_by_a.session).expires_at_s();
        assert!(
            after >= before + HOUR - 2 * MINUTE - 60,
            "A sees the extended expiry: {before} -> {after}"
        );
        assert!(
            seen_by_a.expires_in_seconds > 2 * MINUTE,
            "expires in {} s",
            seen_by_a.expires_in_seconds
        );
    }
}

on_backends!(a_watcher_on_one_instance_sees_the_changes_made_on_the_other: cluster);
async fn a_watcher_on_one_instance_sees_the_changes_made_on_the_other() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;
    let mut events = watch_ok(&mut b, None, "").await;
    expect_caught_up(&mut events).await;

    let started = start_session(&mut a, "alice").await;
    logout_token(&mut a, &started.session_token).await;

    let id = session_of(&started.session).session_id.clone();
    let seen: Vec<(Kind, String)> = next_session_events(&mut events, 2)
        .await
        .iter()
        .map(|event| (kind_of(event), event.session_id.clone()))
        .collect();
    assert_eq!(seen, vec![(Kind::Started, id.clone()), (Kind::Revoked, id)]);
}

/// The JWKS an instance publishes.
async fn jwks(client: &mut Client) -> serde_json::Value {
    let json = client
        .get_jwks(GetJwksRequest {})
        .await
        .expect("GetJwks succeeds")
        .into_inner()
        .jwks_json;
    serde_json::from_str(&json).expect("JWKS is JSON")
}

/// The key ids of a JWKS.
fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("JWKS has keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid is a string").to_owned())
        .collect()
}

/// The key id in a JWT's header.
fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().expect("a JWT header");
    let header = URL_SAFE_NO_PAD.decode(header).expect("base64url header");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("JSON header");
    header["kid"].as_str().expect("kid is a string").to_owned()
}

/// An access token from `client` (group `tokens`).
async fn access_token(client: &mut Client) -> String {
    start_with(
        client,
        StartRequest {
            group: "tokens".to_owned(),
            ..start_request("alice")
        },
    )
    .await
    .access_token
}

on_backends!(both_instances_sign_with_the_keys_kept_in_redis: cluster);
async fn both_instances_sign_with_the_keys_kept_in_redis() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;

    let from_a = jwks(&mut a).await;
    assert_eq!(from_a, jwks(&mut b).await, "one set of keys");
    let token = access_token(&mut a).await;
    assert!(
        kids(&from_a).contains(&kid_of(&token)),
        "the key of A's token is published"
    );
}

on_backends!(a_key_rotated_on_one_instance_reaches_the_other: cluster);
async fn a_key_rotated_on_one_instance_reaches_the_other() {
    let pair = pair().await;
    let mut a = pair.a.client().await;
    let mut b = pair.b.client().await;
    let old_token = access_token(&mut a).await;

    let rotated = b
        .rotate_signing_key(RotateSigningKeyRequest {})
        .await
        .unwrap_or_else(|s| panic!("rotate on B: {s:?}\n{}", pair.logs()))
        .into_inner()
        .kid;

    let published_by_a = kids(&jwks(&mut a).await);
    assert!(
        published_by_a.contains(&rotated),
        "A publishes B's new key at once: {rotated} not in {published_by_a:?}"
    );
    assert!(
        published_by_a.contains(&kid_of(&old_token)),
        "the old key stays published"
    );
    // A signs with the new key once it has learnt of the rotation (every sweep, 1 s).
    let mut seen = Vec::new();
    for _ in 0..50 {
        let kid = kid_of(&access_token(&mut a).await);
        if kid == rotated {
            return;
        }
        seen.push(kid);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!(
        "A still signs with {:?} 10 s after B rotated to {rotated}\n{}",
        seen.last(),
        pair.logs()
    );
}
