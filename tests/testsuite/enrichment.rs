//! Reauthenticate, UpdateAttributes (session and token attributes) and scoped Refresh.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{
    ReauthenticateRequest, RefreshRequest, StartRequest, UpdateAttributesRequest,
};
use support::*;
use tonic::Code;

fn reauth_by_id(session_id: &str, aal: &str) -> ReauthenticateRequest {
    ReauthenticateRequest {
        session_id: session_id.to_owned(),
        aal: aal.to_owned(),
        ..Default::default()
    }
}

on_backends!(reauthenticate_restarts_the_clocks_and_records_the_aal: sled, cluster);
async fn reauthenticate_restarts_the_clocks_and_records_the_aal() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    test.advance(secs(2 * HOUR));

    let session = client
        .reauthenticate(reauth_by_id(&id, "aal2"))
        .await
        .expect("reauthenticate")
        .into_inner()
        .session
        .expect("session");

    let now = START_S + 2 * HOUR;
    assert_eq!(session.authenticated_at.map(|t| t.seconds), Some(now));
    assert_eq!(
        session.max_expires_at.map(|t| t.seconds),
        Some(now + DEFAULT_MAX_LIFETIME_S)
    );
    assert_eq!(
        session.expires_at.map(|t| t.seconds),
        Some(now + DEFAULT_LIFESPAN_S)
    );
    assert_eq!(session.aal, "aal2");
    assert_eq!(
        whoami_ok(&mut client, &started.session_token)
            .await
            .session
            .expect("session")
            .aal,
        "aal2"
    );
}

on_backends!(reauthenticate_by_token_needs_the_current_token: sled, cluster);
async fn reauthenticate_by_token_needs_the_current_token() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let by_token = |token: String| ReauthenticateRequest {
        session_token: token,
        ..Default::default()
    };
    assert!(client
        .reauthenticate(by_token(started.session_token.clone()))
        .await
        .is_ok());
    assert_code(
        client
            .reauthenticate(by_token(with_wrong_secret(&started.session_token)))
            .await,
        Code::Unauthenticated,
    );
}

on_backends!(reauthenticate_refuses_ended_unknown_and_ambiguous_sessions: sled, cluster);
async fn reauthenticate_refuses_ended_unknown_and_ambiguous_sessions() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    logout_token(&mut client, &started.session_token).await;

    assert_code(
        client.reauthenticate(reauth_by_id(&id, "")).await,
        Code::FailedPrecondition,
    );
    assert_code(
        client
            .reauthenticate(reauth_by_id(&uuid::Uuid::now_v7().to_string(), ""))
            .await,
        Code::NotFound,
    );
    assert_invalid_field(
        client
            .reauthenticate(ReauthenticateRequest::default())
            .await,
        "session_token",
    );
    assert_invalid_field(
        client
            .reauthenticate(reauth_by_id(&id, &"a".repeat(33)))
            .await,
        "aal",
    );
}

on_backends!(update_attributes_sets_and_removes_and_whoami_shows_both_kinds: sled, cluster);
async fn update_attributes_sets_and_removes_and_whoami_shows_both_kinds() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            attributes: map(&[("role", "user"), ("tenant", "acme")]),
            token_attributes: map(&[("device", "laptop")]),
            ..start_request("alice")
        },
    )
    .await;
    let id = session_of(&started.session).session_id.clone();

    client
        .update_attributes(UpdateAttributesRequest {
            session_id: id,
            set: map(&[("role", "admin")]),
            remove: vec!["tenant".into()],
            token_set: map(&[("mfa", "totp")]),
            token_remove: Vec::new(),
        })
        .await
        .expect("update");

    let session = whoami_ok(&mut client, &started.session_token)
        .await
        .session
        .expect("session");
    assert_eq!(session.attributes, map(&[("role", "admin")]));
    assert_eq!(
        session.token_attributes,
        map(&[("device", "laptop"), ("mfa", "totp")])
    );
}

on_backends!(token_attributes_are_cleared_when_the_tokens_rotate: sled, cluster);
async fn token_attributes_are_cleared_when_the_tokens_rotate() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            attributes: map(&[("role", "user")]),
            token_attributes: map(&[("device", "laptop")]),
            ..start_request("alice")
        },
    )
    .await;

    let rotated = refresh_ok(&mut client, &started.refresh_token).await;

    let session = whoami_ok(&mut client, &rotated.session_token)
        .await
        .session
        .expect("session");
    assert!(session.token_attributes.is_empty());
    assert_eq!(session.attributes, map(&[("role", "user")]));
}

on_backends!(update_attributes_enforces_the_limits_and_loses_nothing: sled, cluster);
async fn update_attributes_enforces_the_limits_and_loses_nothing() {
    let test = TestServer::with_config("[limits]\nmax_map_entries = 2").await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            attributes: map(&[("a", "1"), ("b", "2")]),
            ..start_request("alice")
        },
    )
    .await;
    let id = session_of(&started.session).session_id.clone();

    assert_invalid_field(
        client
            .update_attributes(UpdateAttributesRequest {
                session_id: id.clone(),
                set: map(&[("c", "3")]),
                ..Default::default()
            })
            .await,
        "set",
    );
    let session = whoami_ok(&mut client, &started.session_token)
        .await
        .session
        .expect("session");
    assert_eq!(session.attributes, map(&[("a", "1"), ("b", "2")]));
}

on_backends!(update_attributes_refuses_unknown_and_ended_sessions: sled, cluster);
async fn update_attributes_refuses_unknown_and_ended_sessions() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let id = session_of(&started.session).session_id.clone();
    logout_token(&mut client, &started.session_token).await;

    let update = |session_id: String| UpdateAttributesRequest {
        session_id,
        set: map(&[("k", "v")]),
        ..Default::default()
    };
    assert_code(
        client.update_attributes(update(id)).await,
        Code::FailedPrecondition,
    );
    assert_code(
        client
            .update_attributes(update(uuid::Uuid::now_v7().to_string()))
            .await,
        Code::NotFound,
    );
    assert_invalid_field(
        client.update_attributes(update("nope".into())).await,
        "session_id",
    );
}

on_backends!(refresh_with_the_sessions_scope_rotates: sled, cluster);
async fn refresh_with_the_sessions_scope_rotates() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            scope: "shop/prod/web".into(),
            ..start_request("alice")
        },
    )
    .await;
    assert_eq!(session_of(&started.session).scope, "shop/prod/web");

    let rotated = client
        .refresh(RefreshRequest {
            refresh_token: started.refresh_token.clone(),
            scope: "shop/prod/web".into(),
            ..Default::default()
        })
        .await;

    assert!(rotated.is_ok(), "{rotated:?}");
}

on_backends!(refresh_with_another_scope_is_refused_and_keeps_the_token: sled, cluster);
async fn refresh_with_another_scope_is_refused_and_keeps_the_token() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            scope: "shop/prod/web".into(),
            ..start_request("alice")
        },
    )
    .await;

    let status = assert_code(
        client
            .refresh(RefreshRequest {
                refresh_token: started.refresh_token.clone(),
                scope: "shop/staging/web".into(),
                ..Default::default()
            })
            .await,
        Code::Unauthenticated,
    );
    let bad_token = assert_code(
        refresh(&mut client, &with_wrong_secret(&started.refresh_token)).await,
        Code::Unauthenticated,
    );
    assert_eq!(status.message(), bad_token.message(), "no oracle");
    refresh_ok(&mut client, &started.refresh_token).await;
}

on_backends!(an_oversized_scope_names_the_field: sled, cluster);
async fn an_oversized_scope_names_the_field() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(
        client
            .start(StartRequest {
                scope: "s".repeat(257),
                ..start_request("alice")
            })
            .await,
        "scope",
    );
}

fn start_external(user: &str, external: &str) -> StartRequest {
    StartRequest {
        external_user_id: external.to_owned(),
        ..start_request(user)
    }
}

on_backends!(the_external_user_id_is_returned_in_the_session: sled, cluster);
async fn the_external_user_id_is_returned_in_the_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_with(&mut client, start_external("u-1", "alice@example.com")).await;

    assert_eq!(
        session_of(&started.session).external_user_id,
        "alice@example.com"
    );
    let whoami = whoami_ok(&mut client, &started.session_token).await;
    assert_eq!(
        whoami.session.expect("session").external_user_id,
        "alice@example.com"
    );
}

on_backends!(refresh_all_accepts_the_external_user_id: sled, cluster);
async fn refresh_all_accepts_the_external_user_id() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_with(&mut client, start_external("u-1", "alice@example.com")).await;
    start_with(&mut client, start_external("u-1", "alice@example.com")).await;
    start_with(&mut client, start_external("u-2", "bob@example.com")).await;

    let refreshed = client
        .refresh_all_for_user(sessiond::proto::session::v1::RefreshAllForUserRequest {
            external_user_id: "alice@example.com".into(),
            keep_alive_seconds: Some(2 * DAY),
            ..Default::default()
        })
        .await
        .expect("refresh all")
        .into_inner();

    assert_eq!(refreshed.refreshed_count, 2);
    assert!(refreshed.sessions.iter().all(|s| s.user_id == "u-1"));
}

on_backends!(logout_by_either_user_id_ends_that_users_sessions: sled, cluster);
async fn logout_by_either_user_id_ends_that_users_sessions() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let alice = start_with(&mut client, start_external("u-1", "alice@example.com")).await;
    let bob = start_with(&mut client, start_external("u-2", "bob@example.com")).await;
    let carol = start_session(&mut client, "u-3").await;

    let by_external = logout(
        &mut client,
        sessiond::proto::session::v1::LogoutRequest {
            external_user_id: "alice@example.com".into(),
            ..Default::default()
        },
    )
    .await
    .expect("logout by external id")
    .revoked_count;
    let by_id = logout(
        &mut client,
        sessiond::proto::session::v1::LogoutRequest {
            user_id: "u-2".into(),
            ..Default::default()
        },
    )
    .await
    .expect("logout by user id")
    .revoked_count;

    assert_eq!((by_external, by_id), (1, 1));
    assert_code(
        whoami(&mut client, &alice.session_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        whoami(&mut client, &bob.session_token).await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut client, &carol.session_token).await;
}

on_backends!(an_unknown_external_user_id_is_not_found_and_two_ids_are_invalid: sled, cluster);
async fn an_unknown_external_user_id_is_not_found_and_two_ids_are_invalid() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_code(
        client
            .refresh_all_for_user(sessiond::proto::session::v1::RefreshAllForUserRequest {
                external_user_id: "nobody@example.com".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_invalid_field(
        client
            .refresh_all_for_user(sessiond::proto::session::v1::RefreshAllForUserRequest {
                user_id: "u-1".into(),
                external_user_id: "alice@example.com".into(),
                ..Default::default()
            })
            .await,
        "user_id",
    );
    assert_invalid_field(
        client.start(start_external("u-1", &"e".repeat(300))).await,
        "external_user_id",
    );
}
