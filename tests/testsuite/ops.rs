//! Operations: gRPC health, server reflection, the expiry sweeper (on demand and in the
//! background) and the store's index consistency.

use crate::common;
use crate::support;

use std::time::Duration;

use common::TestServer;
use support::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// A background sweeper that never runs during a test, so only `sweep_now` removes.
const NO_BACKGROUND_SWEEP: &str = r#"
[sweeper]
interval = "1h"
"#;

/// `sweep_now` has to run several batches to remove more than two sessions.
const SMALL_BATCHES: &str = r#"
[sweeper]
interval = "1h"
batch_size = 2
"#;

/// A background sweeper that runs every 50 ms.
const FAST_SWEEP: &str = r#"
[sweeper]
interval = "50ms"
"#;

async fn health_status(test: &TestServer, service: &str) -> ServingStatus {
    HealthClient::new(test.channel().await)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check answers")
        .into_inner()
        .status()
}

on_backends!(health_reports_session_service_serving: sled, cluster);
async fn health_reports_session_service_serving() {
    let test = TestServer::start().await;

    assert_eq!(
        health_status(&test, "session.v1.SessionService").await,
        ServingStatus::Serving
    );
}

on_backends!(health_reports_server_serving: sled, cluster);
async fn health_reports_server_serving() {
    let test = TestServer::start().await;

    assert_eq!(health_status(&test, "").await, ServingStatus::Serving);
}

on_backends!(reflection_lists_session_service: sled, cluster);
async fn reflection_lists_session_service() {
    let test = TestServer::start().await;
    let mut reflection = ServerReflectionClient::new(test.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection stream is healthy")
        .expect("one response");

    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"session.v1.SessionService"),
        "services: {names:?}"
    );
}

on_backends!(sweep_now_removes_expired_sessions: sled, cluster);
async fn sweep_now_removes_expired_sessions() {
    let test = TestServer::with_config(NO_BACKGROUND_SWEEP).await;
    let mut client = test.client().await;
    for _ in 0..3 {
        start_session_with_ttl(&mut client, "alice", 60).await;
    }
    test.advance(secs(61));

    let removed = test.running().sweep_now().await.expect("sweep runs");

    assert_eq!(removed, 3);
}

on_backends!(sweep_now_clears_indexes_of_expired_sessions: sled, cluster);
async fn sweep_now_clears_indexes_of_expired_sessions() {
    let test = TestServer::with_config(NO_BACKGROUND_SWEEP).await;
    let mut client = test.client().await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    start_session_with_ttl(&mut client, "bob", 60).await;
    test.advance(secs(61));

    test.running().sweep_now().await.expect("sweep runs");

    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");
    assert_eq!(report.sessions, 0);
    assert_eq!(report.user_index_entries, 0);
    assert_eq!(report.expiry_index_entries, 0);
    assert_eq!(report.orphans, 0);
}

on_backends!(sweep_now_keeps_live_sessions: sled, cluster);
async fn sweep_now_keeps_live_sessions() {
    let test = TestServer::with_config(NO_BACKGROUND_SWEEP).await;
    let mut client = test.client().await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    let alice_live = start_session(&mut client, "alice").await;
    let bob = start_session(&mut client, "bob").await;
    test.advance(secs(61));

    let removed = test.running().sweep_now().await.expect("sweep runs");

    assert_eq!(removed, 2);
    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");
    assert_eq!(report.sessions, 2);
    assert_eq!(report.user_index_entries, 2);
    assert_eq!(report.expiry_index_entries, 2);
    assert_eq!(report.orphans, 0);
    whoami_ok(&mut client, &alice_live.session_token).await;
    whoami_ok(&mut client, &bob.session_token).await;
}

on_backends!(sweep_now_with_nothing_expired_removes_nothing: sled, cluster);
async fn sweep_now_with_nothing_expired_removes_nothing() {
    let test = TestServer::with_config(NO_BACKGROUND_SWEEP).await;
    let mut client = test.client().await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    test.advance(secs(59));

    let removed = test.running().sweep_now().await.expect("sweep runs");

    assert_eq!(removed, 0);
}

on_backends!(sweep_now_removes_more_than_one_batch: sled, cluster);
async fn sweep_now_removes_more_than_one_batch() {
    let test = TestServer::with_config(SMALL_BATCHES).await;
    let mut client = test.client().await;
    for user in ["alice", "alice", "bob", "bob", "carol"] {
        start_session_with_ttl(&mut client, user, 60).await;
    }
    test.advance(secs(61));

    let removed = test.running().sweep_now().await.expect("sweep runs");

    assert_eq!(removed, 5);
    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");
    assert_eq!(report.sessions, 0);
    assert_eq!(report.orphans, 0);
}

on_backends!(sweep_now_skips_sessions_kept_alive_by_extend: sled, cluster);
async fn sweep_now_skips_sessions_kept_alive_by_extend() {
    let test = TestServer::with_config(NO_BACKGROUND_SWEEP).await;
    let mut client = test.client().await;
    let kept = start_session_with_ttl(&mut client, "alice", 60).await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    test.advance(secs(30));
    extend(
        &mut client,
        &session_of(&kept.session).session_id,
        Some(HOUR),
    )
    .await
    .expect("extend succeeds");
    test.advance(secs(31));

    let removed = test.running().sweep_now().await.expect("sweep runs");

    assert_eq!(removed, 1);
    whoami_ok(&mut client, &kept.session_token).await;
}

on_backends!(background_sweeper_removes_expired_sessions: sled, cluster);
async fn background_sweeper_removes_expired_sessions() {
    let test = TestServer::with_config(FAST_SWEEP).await;
    let mut client = test.client().await;
    start_session_with_ttl(&mut client, "alice", 60).await;
    start_session_with_ttl(&mut client, "bob", 60).await;
    let live = start_session(&mut client, "carol").await;
    test.advance(secs(61));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let report = loop {
        let report = test
            .running()
            .check_consistency()
            .await
            .expect("consistency check runs");
        if report.sessions == 1 || tokio::time::Instant::now() >= deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert_eq!(report.sessions, 1, "the expired sessions are still stored");
    assert_eq!(report.user_index_entries, 1);
    assert_eq!(report.expiry_index_entries, 1);
    assert_eq!(report.orphans, 0);
    whoami_ok(&mut client, &live.session_token).await;
}

on_backends!(consistency_counts_live_sessions_and_indexes: sled, cluster);
async fn consistency_counts_live_sessions_and_indexes() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;

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

on_backends!(expiry_index_follows_refresh_and_extend: sled, cluster);
async fn expiry_index_follows_refresh_and_extend() {
    let test = TestServer::with_config(NO_BACKGROUND_SWEEP).await;
    let mut client = test.client().await;
    let refreshed = start_session_with_ttl(&mut client, "alice", 600).await;
    let extended = start_session_with_ttl(&mut client, "bob", 600).await;
    test.advance(secs(300));
    refresh_ok(&mut client, &refreshed.refresh_token).await;
    extend(
        &mut client,
        &session_of(&extended.session).session_id,
        Some(HOUR),
    )
    .await
    .expect("extend succeeds");

    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");

    assert_eq!(report.sessions, 2);
    assert_eq!(report.expiry_index_entries, 2);
    assert_eq!(report.user_index_entries, 2);
    assert_eq!(report.orphans, 0);
}

on_backends!(store_has_no_orphans_after_every_kind_of_call: sled, cluster);
async fn store_has_no_orphans_after_every_kind_of_call() {
    let test = TestServer::with_config(&format!(
        "{NO_BACKGROUND_SWEEP}\n[groups.default]\nrefresh_grace = \"0s\""
    ))
    .await;
    let mut client = test.client().await;
    let a = start_session(&mut client, "alice").await;
    let b = start_session(&mut client, "alice").await;
    let c = start_session(&mut client, "bob").await;
    let d = start_session(&mut client, "bob").await;
    let rotated = refresh_ok(&mut client, &a.refresh_token).await;
    assert_code(
        refresh(&mut client, &a.refresh_token).await,
        tonic::Code::Unauthenticated,
    );
    extend_ok(&mut client, &session_of(&b.session).session_id).await;
    whoami_ok(&mut client, &c.session_token).await;
    logout_token(&mut client, &d.session_token).await;
    refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");
    assert_code(
        whoami(&mut client, &rotated.session_token).await,
        tonic::Code::Unauthenticated,
    );

    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");

    assert_eq!(report.orphans, 0);
}
