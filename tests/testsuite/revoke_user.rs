//! RevokeUserSessions: a credential change ends every session of the user authenticated
//! before `not_before`, atomically, and leaves later ones (and later Starts) alone.

use crate::common;
use crate::support;

use common::{TestServer, START_MS};
use sessiond::proto::session::v1::{
    EndReason, RevokeUserSessionsRequest, SessionEventKind, SessionState, StartRequest,
};
use support::*;

fn at_ms(ms: u64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

on_backends!(sessions_authenticated_before_not_before_end_and_later_ones_stay: sled, redis, cluster);
async fn sessions_authenticated_before_not_before_end_and_later_ones_stay() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let old = start_session(&mut client, "alice").await;
    let old_external = start_with(
        &mut client,
        StartRequest {
            external_user_id: "alice@example.com".into(),
            ..start_request("alice")
        },
    )
    .await;
    let bob = start_session(&mut client, "bob").await;
    test.advance(secs(10));
    let recent = start_session(&mut client, "alice").await;

    let answer = client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            external_user_id: "alice@example.com".into(),
            not_before: at_ms(START_MS + 5_000),
            ..Default::default()
        })
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!(answer.revoked_count, 2);

    assert!(whoami(&mut client, &old.session_token).await.is_err());
    assert!(whoami(&mut client, &old_external.session_token)
        .await
        .is_err());
    whoami_ok(&mut client, &recent.session_token).await;
    whoami_ok(&mut client, &bob.session_token).await;
    let later = start_session(&mut client, "alice").await;
    let later = whoami_ok(&mut client, &later.session_token).await;
    assert_eq!(session_of(&later.session).state(), SessionState::Active);

    let log = event_log(&mut client).await;
    let mut revoked: Vec<_> = log
        .iter()
        .filter(|event| event.kind() == SessionEventKind::Revoked)
        .map(|event| (event.session_id.clone(), event.end_reason()))
        .collect();
    revoked.sort();
    let mut expected = vec![
        (
            session_of(&old.session).session_id.clone(),
            EndReason::UserNotBefore,
        ),
        (
            session_of(&old_external.session).session_id.clone(),
            EndReason::UserNotBefore,
        ),
    ];
    expected.sort();
    assert_eq!(revoked, expected);
}

on_backends!(revoke_user_sessions_needs_a_user_and_not_before: sled, redis, cluster);
async fn revoke_user_sessions_needs_a_user_and_not_before() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let no_moment = client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            user_id: "alice".into(),
            ..Default::default()
        })
        .await;
    assert_invalid_field(no_moment, "not_before");
    let no_user = client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            not_before: at_ms(START_MS + 1),
            ..Default::default()
        })
        .await;
    assert_invalid_field(no_user, "user_id");
    whoami_ok(&mut client, &started.session_token).await;
}
