//! Reauthenticate, UpdateAttributes (session and token attributes) and scoped Refresh.

mod common;
mod support;

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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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
