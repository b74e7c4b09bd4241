//! Logout: one session by token or by id, or every session of its user, and what it
//! leaves alone.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::LogoutRequest;
use support::*;
use tonic::Code;

on_backends!(logout_by_token_revokes_one_session: sled, cluster);
async fn logout_by_token_revokes_one_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let revoked = logout_token(&mut client, &started.session_token).await;

    assert_eq!(revoked, 1);
    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(logout_by_token_leaves_other_sessions_of_user_active: sled, cluster);
async fn logout_by_token_leaves_other_sessions_of_user_active() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let ended = start_session(&mut client, "alice").await;
    let kept = start_session(&mut client, "alice").await;

    logout_token(&mut client, &ended.session_token).await;

    whoami_ok(&mut client, &kept.session_token).await;
}

on_backends!(logout_by_token_of_ended_session_revokes_none: sled, cluster);
async fn logout_by_token_of_ended_session_revokes_none() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &started.session_token).await, 1);

    let again = logout_token(&mut client, &started.session_token).await;

    assert_eq!(again, 0);
}

on_backends!(logout_with_wrong_secret_is_unauthenticated: sled, cluster);
async fn logout_with_wrong_secret_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let result = logout(
        &mut client,
        LogoutRequest {
            session_token: with_wrong_secret(&started.session_token),
            ..Default::default()
        },
    )
    .await;

    assert_code(result, Code::Unauthenticated);
    whoami_ok(&mut client, &started.session_token).await;
}

on_backends!(logout_with_unknown_token_is_unauthenticated: sled, cluster);
async fn logout_with_unknown_token_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let result = logout(
        &mut client,
        LogoutRequest {
            session_token: with_unknown_session(&started.session_token),
            ..Default::default()
        },
    )
    .await;

    assert_code(result, Code::Unauthenticated);
}

on_backends!(logout_by_session_id_revokes_one_session: sled, cluster);
async fn logout_by_session_id_revokes_one_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let other = start_session(&mut client, "alice").await;

    let revoked = logout_id(&mut client, &session_of(&started.session).session_id).await;

    assert_eq!(revoked, 1);
    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut client, &other.session_token).await;
}

on_backends!(logout_by_session_id_of_ended_session_revokes_none: sled, cluster);
async fn logout_by_session_id_of_ended_session_revokes_none() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    assert_eq!(logout_id(&mut client, &id).await, 1);

    let again = logout_id(&mut client, &id).await;

    assert_eq!(again, 0);
}

on_backends!(logout_unknown_session_id_is_not_found: sled, cluster);
async fn logout_unknown_session_id_is_not_found() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;

    let result = logout(
        &mut client,
        LogoutRequest {
            session_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        },
    )
    .await;

    assert_code(result, Code::NotFound);
}

on_backends!(logout_all_for_user_by_token_revokes_every_session: sled, cluster);
async fn logout_all_for_user_by_token_revokes_every_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let sessions = [
        start_session(&mut client, "alice").await,
        start_session(&mut client, "alice").await,
        start_session(&mut client, "alice").await,
    ];

    let revoked = logout(
        &mut client,
        LogoutRequest {
            session_token: sessions[0].session_token.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout all succeeds")
    .revoked_count;

    assert_eq!(revoked, 3);
    for started in &sessions {
        assert_code(
            whoami(&mut client, &started.session_token).await,
            Code::Unauthenticated,
        );
    }
}

on_backends!(logout_all_for_user_by_session_id_revokes_every_session: sled, cluster);
async fn logout_all_for_user_by_session_id_revokes_every_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let sessions = [
        start_session(&mut client, "alice").await,
        start_session(&mut client, "alice").await,
    ];

    let revoked = logout(
        &mut client,
        LogoutRequest {
            session_id: session_of(&sessions[1].session).session_id.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout all succeeds")
    .revoked_count;

    assert_eq!(revoked, 2);
    for started in &sessions {
        assert_code(
            whoami(&mut client, &started.session_token).await,
            Code::Unauthenticated,
        );
    }
}

on_backends!(logout_all_for_user_leaves_other_users_active: sled, cluster);
async fn logout_all_for_user_leaves_other_users_active() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let alice = start_session(&mut client, "alice").await;
    start_session(&mut client, "alice").await;
    let bob = start_session(&mut client, "bob").await;

    logout(
        &mut client,
        LogoutRequest {
            session_token: alice.session_token.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout all succeeds");

    whoami_ok(&mut client, &bob.session_token).await;
}

on_backends!(logout_all_for_user_counts_only_active_sessions: sled, cluster);
async fn logout_all_for_user_counts_only_active_sessions() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let ended = start_session(&mut client, "alice").await;
    let named = start_session(&mut client, "alice").await;
    start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &ended.session_token).await, 1);

    let revoked = logout(
        &mut client,
        LogoutRequest {
            session_token: named.session_token.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout all succeeds")
    .revoked_count;

    assert_eq!(revoked, 2);
}

on_backends!(logout_all_for_user_revokes_refresh_tokens: sled, cluster);
async fn logout_all_for_user_revokes_refresh_tokens() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let first = start_session(&mut client, "alice").await;
    let second = start_session(&mut client, "alice").await;

    logout(
        &mut client,
        LogoutRequest {
            session_token: first.session_token.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout all succeeds");

    assert_code(
        refresh(&mut client, &second.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(logout_all_for_user_with_an_ended_sessions_token_is_unauthenticated: sled, cluster);
async fn logout_all_for_user_with_an_ended_sessions_token_is_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let ended = start_session(&mut client, "alice").await;
    let live = start_session(&mut client, "alice").await;
    assert_eq!(logout_token(&mut client, &ended.session_token).await, 1);

    assert_code(
        logout(
            &mut client,
            LogoutRequest {
                session_token: ended.session_token.clone(),
                all_for_user: true,
                ..Default::default()
            },
        )
        .await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut client, &live.session_token).await;
}
