//! Extend and RefreshAllForUser: the keep-alive, its earliest_possible_extend window, the
//! max-lifetime cap, and which sessions they act on.

use crate::common;
use crate::support;

use common::TestServer;
use support::*;
use tonic::Code;

/// A group `short` (1h lifespan, 2h max) beside the default one.
const SHORT_GROUP: &str = r#"
[groups.short]
lifespan = "1h"
max_lifetime = "2h"
"#;

/// The default group extendable only in the last hour of a session.
const LAST_HOUR_WINDOW: &str = r#"
[groups.default]
lifespan = "24h"
max_lifetime = "30d"
earliest_possible_extend = "1h"
"#;

/// A sweeper that never runs during a test, so expired sessions stay in the store.
const NO_SWEEP: &str = r#"
[sweeper]
interval = "1h"
"#;

on_backends!(extend_pushes_expiry_to_now_plus_lifespan: sled, cluster);
async fn extend_pushes_expiry_to_now_plus_lifespan() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(300));

    let extended = extend_ok(&mut client, &id).await;

    assert!(extended.extended);
    assert_eq!(
        session_of(&extended.session).expires_at_s(),
        START_S + 300 + DEFAULT_LIFESPAN_S
    );
}

on_backends!(extend_with_keep_alive_sets_expiry_to_now_plus_keep_alive: sled, cluster);
async fn extend_with_keep_alive_sets_expiry_to_now_plus_keep_alive() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(300));

    let extended = extend(&mut client, &id, Some(2 * HOUR))
        .await
        .expect("extend succeeds");

    assert!(extended.extended);
    assert_eq!(
        session_of(&extended.session).expires_at_s(),
        START_S + 300 + 2 * HOUR
    );
}

on_backends!(extend_is_seen_by_whoami: sled, cluster);
async fn extend_is_seen_by_whoami() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(300));
    extend(&mut client, &id, Some(HOUR))
        .await
        .expect("extend succeeds");
    // Past the original expiry (600 s), inside the extended one.
    test.advance(secs(600));

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(
        session_of(&who.session).expires_at_s(),
        START_S + 300 + HOUR
    );
}

on_backends!(extend_keeps_max_expires_at: sled, cluster);
async fn extend_keeps_max_expires_at() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(300));

    let extended = extend_ok(&mut client, &id).await;

    assert_eq!(
        session_of(&extended.session).max_expires_at_s(),
        START_S + DEFAULT_MAX_LIFETIME_S
    );
}

on_backends!(extend_is_capped_at_max_expires_at: sled, cluster);
async fn extend_is_capped_at_max_expires_at() {
    let test = TestServer::with_config(SHORT_GROUP).await;
    let mut client = test.client().await;
    let started = start_session_in_group(&mut client, "alice", "short").await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(50 * MINUTE));
    extend_ok(&mut client, &id).await;
    test.advance(secs(40 * MINUTE));

    let extended = extend_ok(&mut client, &id).await;
    let session = session_of(&extended.session);

    assert!(extended.extended);
    assert_eq!(session.expires_at_s(), START_S + 2 * HOUR);
    assert_eq!(session.expires_at_s(), session.max_expires_at_s());
}

on_backends!(extend_at_cap_reports_not_extended: sled, cluster);
async fn extend_at_cap_reports_not_extended() {
    let test = TestServer::with_config(SHORT_GROUP).await;
    let mut client = test.client().await;
    let started = start_session_in_group(&mut client, "alice", "short").await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(50 * MINUTE));
    let capped = extend(&mut client, &id, Some(2 * HOUR))
        .await
        .expect("extend succeeds");
    assert!(capped.extended);
    assert_eq!(
        session_of(&capped.session).expires_at_s(),
        session_of(&capped.session).max_expires_at_s()
    );
    test.advance(secs(10 * MINUTE));

    let again = extend(&mut client, &id, Some(2 * HOUR))
        .await
        .expect("extend succeeds");

    assert!(!again.extended);
    assert_eq!(
        session_of(&again.session).expires_at_s(),
        START_S + 2 * HOUR
    );
}

on_backends!(extend_outside_window_leaves_session_unchanged: sled, cluster);
async fn extend_outside_window_leaves_session_unchanged() {
    let test = TestServer::with_config(LAST_HOUR_WINDOW).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(HOUR));

    let extended = extend_ok(&mut client, &id).await;

    assert!(!extended.extended);
    assert_eq!(
        session_of(&extended.session).expires_at_s(),
        START_S + DEFAULT_LIFESPAN_S
    );
    let who = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(
        session_of(&who.session).expires_at_s(),
        START_S + DEFAULT_LIFESPAN_S
    );
}

on_backends!(extend_inside_window_extends: sled, cluster);
async fn extend_inside_window_extends() {
    let test = TestServer::with_config(LAST_HOUR_WINDOW).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(23 * HOUR + 30 * MINUTE));

    let extended = extend_ok(&mut client, &id).await;

    assert!(extended.extended);
    assert_eq!(
        session_of(&extended.session).expires_at_s(),
        START_S + 23 * HOUR + 30 * MINUTE + DEFAULT_LIFESPAN_S
    );
}

on_backends!(extend_at_window_edge_extends: sled, cluster);
async fn extend_at_window_edge_extends() {
    let test = TestServer::with_config(LAST_HOUR_WINDOW).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    // Remaining lifetime is exactly the window: inside it.
    test.advance(secs(23 * HOUR));

    let extended = extend_ok(&mut client, &id).await;

    assert!(extended.extended);
    assert_eq!(
        session_of(&extended.session).expires_at_s(),
        START_S + 23 * HOUR + DEFAULT_LIFESPAN_S
    );
}

on_backends!(extend_unknown_session_is_not_found: sled, cluster);
async fn extend_unknown_session_is_not_found() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let unknown = uuid::Uuid::now_v7().to_string();

    assert_code(extend(&mut client, &unknown, None).await, Code::NotFound);
}

on_backends!(extend_revoked_session_is_failed_precondition: sled, cluster);
async fn extend_revoked_session_is_failed_precondition() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    assert_eq!(logout_token(&mut client, &started.session_token).await, 1);

    assert_code(
        extend(&mut client, &id, None).await,
        Code::FailedPrecondition,
    );
}

on_backends!(extend_expired_session_is_failed_precondition: sled, cluster);
async fn extend_expired_session_is_failed_precondition() {
    let test = TestServer::with_config(NO_SWEEP).await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 60).await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(61));

    assert_code(
        extend(&mut client, &id, None).await,
        Code::FailedPrecondition,
    );
}

on_backends!(refresh_all_for_user_extends_every_active_session: sled, cluster);
async fn refresh_all_for_user_extends_every_active_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let first = start_session_with_ttl(&mut client, "alice", 600).await;
    let second = start_session_with_ttl(&mut client, "alice", 600).await;
    test.advance(secs(300));

    let refreshed = refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");

    assert_eq!(refreshed.refreshed_count, 2);
    assert_eq!(
        sorted_ids(&refreshed.sessions),
        sorted_ids([session_of(&first.session), session_of(&second.session)])
    );
    for session in &refreshed.sessions {
        assert_eq!(session.expires_at_s(), START_S + 300 + DEFAULT_LIFESPAN_S);
    }
}

on_backends!(refresh_all_for_user_with_keep_alive_sets_expiry: sled, cluster);
async fn refresh_all_for_user_with_keep_alive_sets_expiry() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session_with_ttl(&mut client, "alice", 600).await;
    start_session_with_ttl(&mut client, "alice", 600).await;
    test.advance(secs(300));

    let refreshed = refresh_all(&mut client, "alice", Some(HOUR))
        .await
        .expect("refresh all succeeds");

    assert_eq!(refreshed.sessions.len(), 2);
    for session in &refreshed.sessions {
        assert_eq!(session.expires_at_s(), START_S + 300 + HOUR);
    }
}

on_backends!(refresh_all_for_user_is_seen_by_whoami: sled, cluster);
async fn refresh_all_for_user_is_seen_by_whoami() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    test.advance(secs(300));
    refresh_all(&mut client, "alice", Some(HOUR))
        .await
        .expect("refresh all succeeds");
    test.advance(secs(600));

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(
        session_of(&who.session).expires_at_s(),
        START_S + 300 + HOUR
    );
}

on_backends!(refresh_all_for_user_leaves_other_users_untouched: sled, cluster);
async fn refresh_all_for_user_leaves_other_users_untouched() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session_with_ttl(&mut client, "alice", 600).await;
    let bob = start_session_with_ttl(&mut client, "bob", 600).await;
    test.advance(secs(300));

    let refreshed = refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");

    assert!(refreshed.sessions.iter().all(|s| s.user_id == "alice"));
    let who = whoami_ok(&mut client, &bob.session_token).await;
    assert_eq!(session_of(&who.session).expires_at_s(), START_S + 600);
}

on_backends!(refresh_all_for_user_skips_revoked_sessions: sled, cluster);
async fn refresh_all_for_user_skips_revoked_sessions() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let revoked = start_session_with_ttl(&mut client, "alice", 600).await;
    let active = start_session_with_ttl(&mut client, "alice", 600).await;
    assert_eq!(logout_token(&mut client, &revoked.session_token).await, 1);
    test.advance(secs(300));

    let refreshed = refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");

    assert_eq!(refreshed.refreshed_count, 1);
    assert_eq!(
        sorted_ids(&refreshed.sessions),
        sorted_ids([session_of(&active.session)])
    );
    assert_code(
        whoami(&mut client, &revoked.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_all_for_user_without_sessions_is_not_found: sled, cluster);
async fn refresh_all_for_user_without_sessions_is_not_found() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;

    assert_code(
        refresh_all(&mut client, "nobody", None).await,
        Code::NotFound,
    );
}

on_backends!(refresh_all_for_user_with_only_revoked_sessions_is_not_found: sled, cluster);
async fn refresh_all_for_user_with_only_revoked_sessions_is_not_found() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &started.session_token).await, 1);

    assert_code(
        refresh_all(&mut client, "alice", None).await,
        Code::NotFound,
    );
}

on_backends!(refresh_all_for_user_outside_window_extends_none: sled, cluster);
async fn refresh_all_for_user_outside_window_extends_none() {
    let test = TestServer::with_config(LAST_HOUR_WINDOW).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(HOUR));

    let refreshed = refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");

    assert_eq!(refreshed.refreshed_count, 0);
    assert!(refreshed.sessions.is_empty());
    let who = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(
        session_of(&who.session).expires_at_s(),
        START_S + DEFAULT_LIFESPAN_S
    );
}
