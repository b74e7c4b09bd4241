//! Persistence: sessions, token rotations, revocations and extensions survive a
//! restart of the server on the same data dir.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::StartRequest;
use support::*;
use tonic::Code;

/// Whoami persists last_access_at at most once a minute.
const TOUCH_1M: &str = r#"
touch_interval = "60s"
"#;

on_backends!(session_token_works_after_restart: sled, cluster);
async fn session_token_works_after_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    test.restart().await;
    let mut client = test.client().await;

    let who = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(
        session_of(&who.session).session_id,
        session_of(&started.session).session_id
    );
}

on_backends!(refresh_token_works_after_restart: sled, cluster);
async fn refresh_token_works_after_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    test.restart().await;
    let mut client = test.client().await;

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;
    whoami_ok(&mut client, &refreshed.session_token).await;
}

on_backends!(many_sessions_work_after_restart: sled, cluster);
async fn many_sessions_work_after_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let mut started = Vec::new();
    for user in ["alice", "alice", "bob", "carol"] {
        started.push(start_session(&mut client, user).await);
    }

    test.restart().await;
    let mut client = test.client().await;

    for session in &started {
        whoami_ok(&mut client, &session.session_token).await;
    }
}

on_backends!(session_fields_survive_restart: sled, cluster);
async fn session_fields_survive_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            user_id: "alice".into(),
            ttl_seconds: Some(HOUR),
            metadata: map(&[("device", "laptop"), ("ip", "192.0.2.7")]),
            attributes: map(&[("role", "admin")]),
            ..Default::default()
        },
    )
    .await;

    test.restart().await;
    let mut client = test.client().await;

    let who = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(who.session, started.session);
}

on_backends!(rotated_session_token_stays_dead_after_restart: sled, cluster);
async fn rotated_session_token_stays_dead_after_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;

    test.restart().await;
    let mut client = test.client().await;

    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut client, &refreshed.session_token).await;
}

on_backends!(refresh_token_reuse_is_detected_after_restart: sled, cluster);
async fn refresh_token_reuse_is_detected_after_restart() {
    let mut test = TestServer::with_config("[groups.default]\nrefresh_grace = \"0s\"").await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let newest = refresh_ok(&mut client, &started.refresh_token).await;

    test.restart().await;
    let mut client = test.client().await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        whoami(&mut client, &newest.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(revoked_session_stays_revoked_after_restart: sled, cluster);
async fn revoked_session_stays_revoked_after_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &started.session_token).await, 1);

    test.restart().await;
    let mut client = test.client().await;

    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(extended_expiry_survives_restart: sled, cluster);
async fn extended_expiry_survives_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    test.advance(secs(300));
    let extended = extend(
        &mut client,
        &session_of(&started.session).session_id,
        Some(HOUR),
    )
    .await
    .expect("extend succeeds");
    assert!(extended.extended);

    test.restart().await;
    let mut client = test.client().await;

    let who = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(
        session_of(&who.session).expires_at_s(),
        START_S + 300 + HOUR
    );
}

on_backends!(touched_last_access_survives_restart: sled, cluster);
async fn touched_last_access_survives_restart() {
    let mut test = TestServer::with_config(TOUCH_1M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(61));
    whoami_ok(&mut client, &started.session_token).await;

    test.restart().await;
    let mut client = test.client().await;

    let who = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(session_of(&who.session).last_access_at_s(), START_S + 61);
}

on_backends!(store_is_consistent_after_restart: sled, cluster);
async fn store_is_consistent_after_restart() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let first = start_session(&mut client, "alice").await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    refresh_ok(&mut client, &first.refresh_token).await;

    test.restart().await;

    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");
    assert_eq!(report.sessions, 3);
    assert_eq!(report.user_index_entries, 3);
    assert_eq!(report.expiry_index_entries, 3);
    assert_eq!(report.orphans, 0);
}
