//! Start and Whoami: what a new session looks like, how it is validated, and how time
//! (expiry, idle timeout, touch interval) and per-user limits end it.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{SessionState, StartRequest};
use support::*;
use tonic::Code;

/// A group `short` (1h lifespan, 2h max) beside the default one.
const SHORT_GROUP: &str = r#"
[groups.short]
lifespan = "1h"
max_lifetime = "2h"
"#;

/// The default group with a 30 minute idle timeout.
const IDLE_30M: &str = r#"
[groups.default]
lifespan = "24h"
max_lifetime = "30d"
idle_timeout = "30m"
"#;

/// The default group with an idle timeout of 2 minutes, touched at most once a minute.
const IDLE_2M_TOUCH_1M: &str = r#"
touch_interval = "60s"

[groups.default]
lifespan = "24h"
max_lifetime = "30d"
idle_timeout = "2m"
"#;

/// Whoami persists last_access_at at most once a minute.
const TOUCH_1M: &str = r#"
touch_interval = "60s"
"#;

/// At most two sessions per user in the default group.
const TWO_PER_USER: &str = r#"
[groups.default]
lifespan = "24h"
max_lifetime = "30d"
max_sessions_per_user = 2
"#;

on_backends!(start_returns_active_session_for_user: sled, redis, cluster);
async fn start_returns_active_session_for_user() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;
    let session = session_of(&started.session);

    assert_eq!(session.user_id, "alice");
    assert_eq!(session.state(), SessionState::Active);
    assert_eq!(session.state, SessionState::Active as i32);
}

on_backends!(start_without_group_uses_default_group: sled, redis, cluster);
async fn start_without_group_uses_default_group() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;

    assert_eq!(session_of(&started.session).group, "default");
}

on_backends!(start_sets_timestamps_from_clock_and_default_lifetimes: sled, redis, cluster);
async fn start_sets_timestamps_from_clock_and_default_lifetimes() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;
    let session = session_of(&started.session);

    assert_eq!(session.created_at_s(), START_S);
    assert_eq!(session.authenticated_at_s(), START_S);
    assert_eq!(session.last_access_at_s(), START_S);
    assert_eq!(session.expires_at_s(), START_S + DEFAULT_LIFESPAN_S);
    assert_eq!(session.max_expires_at_s(), START_S + DEFAULT_MAX_LIFETIME_S);
    assert_eq!(session.ttl_seconds, DEFAULT_LIFESPAN_S);
    assert_eq!(started.expires_in_seconds, DEFAULT_LIFESPAN_S);
}

on_backends!(start_timestamps_follow_the_server_clock: sled, redis, cluster);
async fn start_timestamps_follow_the_server_clock() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    test.advance(secs(HOUR));

    let started = start_session(&mut client, "alice").await;
    let session = session_of(&started.session);

    assert_eq!(session.created_at_s(), START_S + HOUR);
    assert_eq!(session.expires_at_s(), START_S + HOUR + DEFAULT_LIFESPAN_S);
    assert_eq!(
        session.max_expires_at_s(),
        START_S + HOUR + DEFAULT_MAX_LIFETIME_S
    );
}

on_backends!(start_with_ttl_sets_expiry_and_ttl: sled, redis, cluster);
async fn start_with_ttl_sets_expiry_and_ttl() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    let session = session_of(&started.session);

    assert_eq!(session.expires_at_s(), START_S + 600);
    assert_eq!(session.ttl_seconds, 600);
    assert_eq!(started.expires_in_seconds, 600);
    assert_eq!(session.max_expires_at_s(), START_S + DEFAULT_MAX_LIFETIME_S);
}

on_backends!(start_with_ttl_equal_to_max_lifetime_succeeds: sled, redis, cluster);
async fn start_with_ttl_equal_to_max_lifetime_succeeds() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session_with_ttl(&mut client, "alice", DEFAULT_MAX_LIFETIME_S).await;
    let session = session_of(&started.session);

    assert_eq!(session.expires_at_s(), START_S + DEFAULT_MAX_LIFETIME_S);
    assert_eq!(session.expires_at_s(), session.max_expires_at_s());
}

on_backends!(start_in_named_group_uses_its_lifetimes: sled, redis, cluster);
async fn start_in_named_group_uses_its_lifetimes() {
    let test = TestServer::with_config(SHORT_GROUP).await;
    let mut client = test.client().await;

    let started = start_session_in_group(&mut client, "alice", "short").await;
    let session = session_of(&started.session);

    assert_eq!(session.group, "short");
    assert_eq!(session.ttl_seconds, HOUR);
    assert_eq!(session.expires_at_s(), START_S + HOUR);
    assert_eq!(session.max_expires_at_s(), START_S + 2 * HOUR);
}

on_backends!(start_echoes_metadata_and_attributes: sled, redis, cluster);
async fn start_echoes_metadata_and_attributes() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let metadata = map(&[("device", "laptop"), ("ip", "192.0.2.7")]);
    let attributes = map(&[("role", "admin"), ("tenant", "acme")]);

    let started = start_with(
        &mut client,
        StartRequest {
            user_id: "alice".into(),
            metadata: metadata.clone(),
            attributes: attributes.clone(),
            ..Default::default()
        },
    )
    .await;
    let session = session_of(&started.session);

    assert_eq!(session.metadata, metadata);
    assert_eq!(session.attributes, attributes);
}

on_backends!(start_returns_prefixed_distinct_tokens: sled, redis, cluster);
async fn start_returns_prefixed_distinct_tokens() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;

    assert!(
        started.session_token.starts_with("st_"),
        "session token prefix: {}",
        started.session_token
    );
    assert!(
        started.refresh_token.starts_with("rt_"),
        "refresh token prefix: {}",
        started.refresh_token
    );
    assert_ne!(started.session_token[3..], started.refresh_token[3..]);
}

on_backends!(start_session_id_is_uuid_v7: sled, redis, cluster);
async fn start_session_id_is_uuid_v7() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;
    let id = &session_of(&started.session).session_id;

    let uuid = uuid::Uuid::parse_str(id).expect("session_id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "session_id {id} is UUID v7");
}

on_backends!(start_twice_gives_distinct_sessions_and_tokens: sled, redis, cluster);
async fn start_twice_gives_distinct_sessions_and_tokens() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let first = start_session(&mut client, "alice").await;
    let second = start_session(&mut client, "alice").await;

    assert_ne!(
        session_of(&first.session).session_id,
        session_of(&second.session).session_id
    );
    assert_ne!(first.session_token, second.session_token);
    assert_ne!(first.refresh_token, second.refresh_token);
}

on_backends!(whoami_returns_the_started_session: sled, redis, cluster);
async fn whoami_returns_the_started_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            user_id: "alice".into(),
            ttl_seconds: Some(600),
            metadata: map(&[("device", "phone")]),
            attributes: map(&[("role", "reader")]),
            ..Default::default()
        },
    )
    .await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(who.session, started.session);
    assert_eq!(who.expires_in_seconds, 600);
}

on_backends!(whoami_expires_in_counts_down_with_the_clock: sled, redis, cluster);
async fn whoami_expires_in_counts_down_with_the_clock() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 600).await;
    test.advance(secs(100));

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(who.expires_in_seconds, 500);
}

on_backends!(whoami_just_before_expiry_succeeds: sled, redis, cluster);
async fn whoami_just_before_expiry_succeeds() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 60).await;
    test.advance(secs(59));

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(session_of(&who.session).state(), SessionState::Active);
}

on_backends!(whoami_after_expiry_is_unauthenticated: sled, redis, cluster);
async fn whoami_after_expiry_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 60).await;
    test.advance(secs(61));

    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(whoami_after_idle_timeout_is_unauthenticated: sled, redis, cluster);
async fn whoami_after_idle_timeout_is_unauthenticated() {
    let test = TestServer::with_config(IDLE_30M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(31 * MINUTE));

    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(whoami_before_idle_timeout_succeeds: sled, redis, cluster);
async fn whoami_before_idle_timeout_succeeds() {
    let test = TestServer::with_config(IDLE_30M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(29 * MINUTE));

    whoami_ok(&mut client, &started.session_token).await;
}

on_backends!(whoami_expires_in_reports_idle_deadline_when_sooner: sled, redis, cluster);
async fn whoami_expires_in_reports_idle_deadline_when_sooner() {
    let test = TestServer::with_config(IDLE_30M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(who.expires_in_seconds, 30 * MINUTE);
}

on_backends!(whoami_keeps_idle_session_alive: sled, redis, cluster);
async fn whoami_keeps_idle_session_alive() {
    let test = TestServer::with_config(IDLE_2M_TOUCH_1M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(90));
    whoami_ok(&mut client, &started.session_token).await;
    // 180 s after Start (past Start + 2 min) but 90 s after the touch.
    test.advance(secs(90));

    whoami_ok(&mut client, &started.session_token).await;
}

on_backends!(whoami_after_touch_interval_bumps_last_access: sled, redis, cluster);
async fn whoami_after_touch_interval_bumps_last_access() {
    let test = TestServer::with_config(TOUCH_1M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(61));
    whoami_ok(&mut client, &started.session_token).await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(session_of(&who.session).last_access_at_s(), START_S + 61);
}

on_backends!(whoami_within_touch_interval_keeps_last_access: sled, redis, cluster);
async fn whoami_within_touch_interval_keeps_last_access() {
    let test = TestServer::with_config(TOUCH_1M).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(30));
    whoami_ok(&mut client, &started.session_token).await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert_eq!(session_of(&who.session).last_access_at_s(), START_S);
}

on_backends!(whoami_with_wrong_secret_is_unauthenticated: sled, redis, cluster);
async fn whoami_with_wrong_secret_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_code(
        whoami(&mut client, &with_wrong_secret(&started.session_token)).await,
        Code::Unauthenticated,
    );
}

on_backends!(whoami_with_unknown_session_is_unauthenticated: sled, redis, cluster);
async fn whoami_with_unknown_session_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_code(
        whoami(&mut client, &with_unknown_session(&started.session_token)).await,
        Code::Unauthenticated,
    );
}

on_backends!(start_beyond_max_sessions_per_user_revokes_oldest: sled, redis, cluster);
async fn start_beyond_max_sessions_per_user_revokes_oldest() {
    let test = TestServer::with_config(TWO_PER_USER).await;
    let mut client = test.client().await;
    let oldest = start_session(&mut client, "alice").await;
    test.advance(secs(1));
    start_session(&mut client, "alice").await;
    test.advance(secs(1));

    start_session(&mut client, "alice").await;

    assert_code(
        whoami(&mut client, &oldest.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(start_beyond_max_sessions_per_user_keeps_newest: sled, redis, cluster);
async fn start_beyond_max_sessions_per_user_keeps_newest() {
    let test = TestServer::with_config(TWO_PER_USER).await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    test.advance(secs(1));
    let second = start_session(&mut client, "alice").await;
    test.advance(secs(1));

    let third = start_session(&mut client, "alice").await;

    whoami_ok(&mut client, &second.session_token).await;
    whoami_ok(&mut client, &third.session_token).await;
}

on_backends!(max_sessions_per_user_counts_each_user_apart: sled, redis, cluster);
async fn max_sessions_per_user_counts_each_user_apart() {
    let test = TestServer::with_config(TWO_PER_USER).await;
    let mut client = test.client().await;
    let bob = start_session(&mut client, "bob").await;
    for _ in 0..3 {
        test.advance(secs(1));
        start_session(&mut client, "alice").await;
    }

    whoami_ok(&mut client, &bob.session_token).await;
}

on_backends!(max_sessions_per_user_ignores_revoked_sessions: sled, redis, cluster);
async fn max_sessions_per_user_ignores_revoked_sessions() {
    let test = TestServer::with_config(TWO_PER_USER).await;
    let mut client = test.client().await;
    let first = start_session(&mut client, "alice").await;
    test.advance(secs(1));
    let second = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &first.session_token).await, 1);
    test.advance(secs(1));

    let third = start_session(&mut client, "alice").await;

    whoami_ok(&mut client, &second.session_token).await;
    whoami_ok(&mut client, &third.session_token).await;
}
