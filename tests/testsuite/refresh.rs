//! Refresh: token rotation, expiry renewal and its cap, and refresh-token reuse
//! (token-theft detection) revoking the whole session.

use crate::common;
use crate::support;

use common::TestServer;
use support::*;

/// Reuse is theft at once: no grace window for a lost response.
const NO_GRACE: &str = "[groups.default]\nrefresh_grace = \"0s\"";
use tonic::Code;

/// A group `short` (1h lifespan, 2h max) beside the default one.
const SHORT_GROUP: &str = r#"
[groups.short]
lifespan = "1h"
max_lifetime = "2h"
"#;

on_backends!(refresh_returns_new_prefixed_token_pair: sled, redis, cluster);
async fn refresh_returns_new_prefixed_token_pair() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;

    assert!(refreshed.session_token.starts_with("st_"));
    assert!(refreshed.refresh_token.starts_with("rt_"));
    assert_ne!(refreshed.session_token, started.session_token);
    assert_ne!(refreshed.refresh_token, started.refresh_token);
}

on_backends!(refresh_keeps_the_session_id: sled, redis, cluster);
async fn refresh_keeps_the_session_id() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;

    assert_eq!(
        session_of(&refreshed.session).session_id,
        session_of(&started.session).session_id
    );
}

on_backends!(refresh_invalidates_old_session_token: sled, redis, cluster);
async fn refresh_invalidates_old_session_token() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    refresh_ok(&mut client, &started.refresh_token).await;

    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_new_session_token_works: sled, redis, cluster);
async fn refresh_new_session_token_works() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;

    let who = whoami_ok(&mut client, &refreshed.session_token).await;
    assert_eq!(
        session_of(&who.session).session_id,
        session_of(&started.session).session_id
    );
}

on_backends!(refresh_new_refresh_token_works: sled, redis, cluster);
async fn refresh_new_refresh_token_works() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let first = refresh_ok(&mut client, &started.refresh_token).await;

    let second = refresh_ok(&mut client, &first.refresh_token).await;

    whoami_ok(&mut client, &second.session_token).await;
}

on_backends!(refresh_renews_expiry_by_session_ttl: sled, redis, cluster);
async fn refresh_renews_expiry_by_session_ttl() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", HOUR).await;
    test.advance(secs(30 * MINUTE));

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;
    let session = session_of(&refreshed.session);

    assert_eq!(session.expires_at_s(), START_S + 30 * MINUTE + HOUR);
    assert_eq!(session.ttl_seconds, HOUR);
    assert_eq!(refreshed.expires_in_seconds, HOUR);
}

on_backends!(refresh_updates_last_access: sled, redis, cluster);
async fn refresh_updates_last_access() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(30 * MINUTE));

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;

    assert_eq!(
        session_of(&refreshed.session).last_access_at_s(),
        START_S + 30 * MINUTE
    );
}

on_backends!(refresh_keeps_creation_authentication_and_cap: sled, redis, cluster);
async fn refresh_keeps_creation_authentication_and_cap() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(HOUR));

    let refreshed = refresh_ok(&mut client, &started.refresh_token).await;
    let session = session_of(&refreshed.session);

    assert_eq!(session.created_at_s(), START_S);
    assert_eq!(session.authenticated_at_s(), START_S);
    assert_eq!(session.max_expires_at_s(), START_S + DEFAULT_MAX_LIFETIME_S);
}

on_backends!(refresh_expiry_is_capped_at_max_expires_at: sled, redis, cluster);
async fn refresh_expiry_is_capped_at_max_expires_at() {
    let test = TestServer::with_config(SHORT_GROUP).await;
    let mut client = test.client().await;
    let started = start_session_in_group(&mut client, "alice", "short").await;
    test.advance(secs(50 * MINUTE));
    let first = refresh_ok(&mut client, &started.refresh_token).await;
    assert_eq!(
        session_of(&first.session).expires_at_s(),
        START_S + 110 * MINUTE
    );
    test.advance(secs(50 * MINUTE));

    let second = refresh_ok(&mut client, &first.refresh_token).await;
    let session = session_of(&second.session);

    assert_eq!(session.expires_at_s(), START_S + 2 * HOUR);
    assert_eq!(session.expires_at_s(), session.max_expires_at_s());
    assert_eq!(second.expires_in_seconds, 20 * MINUTE);
}

on_backends!(refresh_token_reuse_is_unauthenticated: sled, redis, cluster);
async fn refresh_token_reuse_is_unauthenticated() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_token_reuse_revokes_session: sled, redis, cluster);
async fn refresh_token_reuse_revokes_session() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let newest = refresh_ok(&mut client, &started.refresh_token).await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );

    assert_code(
        whoami(&mut client, &newest.session_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        refresh(&mut client, &newest.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_token_reuse_marks_session_revoked: sled, redis, cluster);
async fn refresh_token_reuse_marks_session_revoked() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let session_id = session_of(&started.session).session_id.clone();
    refresh_ok(&mut client, &started.refresh_token).await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );

    assert_code(
        extend(&mut client, &session_id, None).await,
        Code::FailedPrecondition,
    );
}

on_backends!(refresh_token_reuse_leaves_other_sessions_of_user_active: sled, redis, cluster);
async fn refresh_token_reuse_leaves_other_sessions_of_user_active() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;
    let stolen = start_session(&mut client, "alice").await;
    let other = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &stolen.refresh_token).await;

    assert_code(
        refresh(&mut client, &stolen.refresh_token).await,
        Code::Unauthenticated,
    );

    whoami_ok(&mut client, &other.session_token).await;
}

on_backends!(refresh_on_expired_session_is_unauthenticated: sled, redis, cluster);
async fn refresh_on_expired_session_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", 60).await;
    test.advance(secs(61));

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_after_logout_is_unauthenticated: sled, redis, cluster);
async fn refresh_after_logout_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &started.session_token).await, 1);

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_with_wrong_secret_is_unauthenticated: sled, redis, cluster);
async fn refresh_with_wrong_secret_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_code(
        refresh(&mut client, &with_wrong_secret(&started.refresh_token)).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_with_unknown_session_is_unauthenticated: sled, redis, cluster);
async fn refresh_with_unknown_session_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_code(
        refresh(&mut client, &with_unknown_session(&started.refresh_token)).await,
        Code::Unauthenticated,
    );
}

on_backends!(refresh_token_reuse_after_many_rotations_revokes_session: sled, redis, cluster);
async fn refresh_token_reuse_after_many_rotations_revokes_session() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let mut refresh_token = started.refresh_token.clone();
    let mut session_token = started.session_token.clone();
    for _ in 0..40 {
        let refreshed = refresh_ok(&mut client, &refresh_token).await;
        refresh_token = refreshed.refresh_token;
        session_token = refreshed.session_token;
    }

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );

    assert_code(
        whoami(&mut client, &session_token).await,
        Code::Unauthenticated,
    );
}
