//! Why sessions end and who ended them: every ended session and every event carries an
//! end reason, and events name the actor (a caller's name, "anonymous", or "sessiond"
//! for the sweeper).

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{
    EndReason, ListUserSessionsRequest, LogoutRequest, Session, SessionEvent, SessionEventKind,
};
use sha2::{Digest, Sha256};
use support::*;
use tonic::Request;

async fn listed(client: &mut Client, user: &str) -> Vec<Session> {
    client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: user.into(),
            include_inactive: true,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .sessions
}

fn reason_of(sessions: &[Session], id: &str) -> EndReason {
    sessions
        .iter()
        .find(|session| session.session_id == id)
        .expect("listed")
        .end_reason()
}

fn ending_events(log: &[SessionEvent]) -> Vec<(String, EndReason, String)> {
    log.iter()
        .filter(|event| {
            matches!(
                event.kind(),
                SessionEventKind::Revoked
                    | SessionEventKind::ReuseDetected
                    | SessionEventKind::Expired
            )
        })
        .map(|event| {
            (
                event.session_id.clone(),
                event.end_reason(),
                event.actor.clone(),
            )
        })
        .collect()
}

on_backends!(each_logout_form_records_its_reason_with_actor_anonymous: sled, redis, cluster);
async fn each_logout_form_records_its_reason_with_actor_anonymous() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let by_token = start_session(&mut client, "alice").await;
    logout_token(&mut client, &by_token.session_token).await;
    let by_id = start_session(&mut client, "alice").await;
    let by_id_sid = session_of(&by_id.session).session_id.clone();
    logout_id(&mut client, &by_id_sid).await;
    let other = start_session(&mut client, "alice").await;
    let keeper = start_session(&mut client, "alice").await;
    let keeper_sid = session_of(&keeper.session).session_id.clone();
    logout(
        &mut client,
        LogoutRequest {
            session_token: keeper.session_token.clone(),
            all_for_user: true,
            except_session_id: keeper_sid.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("logout others");
    logout(
        &mut client,
        LogoutRequest {
            session_token: keeper.session_token.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout all");

    let id = |started: &sessiond::proto::session::v1::StartResponse| {
        session_of(&started.session).session_id.clone()
    };
    let sessions = listed(&mut client, "alice").await;
    assert_eq!(reason_of(&sessions, &id(&by_token)), EndReason::Logout);
    assert_eq!(reason_of(&sessions, &by_id_sid), EndReason::AdminRevoke);
    assert_eq!(reason_of(&sessions, &id(&other)), EndReason::LogoutOthers);
    assert_eq!(reason_of(&sessions, &keeper_sid), EndReason::LogoutAll);

    let log = event_log(&mut client).await;
    let anonymous = "anonymous".to_owned();
    assert_eq!(
        ending_events(&log),
        vec![
            (id(&by_token), EndReason::Logout, anonymous.clone()),
            (by_id_sid, EndReason::AdminRevoke, anonymous.clone()),
            (id(&other), EndReason::LogoutOthers, anonymous.clone()),
            (keeper_sid, EndReason::LogoutAll, anonymous.clone()),
        ]
    );
    assert!(log
        .iter()
        .filter(|event| event.kind() == SessionEventKind::Started)
        .all(|event| event.actor == "anonymous" && event.end_reason() == EndReason::Unspecified));
}

on_backends!(eviction_and_refresh_reuse_record_their_reasons: sled, redis, cluster);
async fn eviction_and_refresh_reuse_record_their_reasons() {
    let test = TestServer::with_config(
        "[groups.default]\nmax_sessions_per_user = 1\nrefresh_grace = \"0s\"\n",
    )
    .await;
    let mut client = test.client().await;
    let first = start_session(&mut client, "alice").await;
    let second = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &second.refresh_token).await;
    assert!(refresh(&mut client, &second.refresh_token).await.is_err());

    let sessions = listed(&mut client, "alice").await;
    let first_id = session_of(&first.session).session_id.clone();
    let second_id = session_of(&second.session).session_id.clone();
    assert_eq!(reason_of(&sessions, &first_id), EndReason::LimitEvicted);
    assert_eq!(reason_of(&sessions, &second_id), EndReason::RefreshReuse);
    let log = event_log(&mut client).await;
    let reuse = log
        .iter()
        .find(|event| event.kind() == SessionEventKind::ReuseDetected)
        .expect("reuse event");
    assert_eq!(reuse.end_reason(), EndReason::RefreshReuse);
}

on_backends!(expiry_reasons_are_derived_and_the_sweeper_is_the_actor: sled, redis, cluster);
async fn expiry_reasons_are_derived_and_the_sweeper_is_the_actor() {
    let test = TestServer::with_config(
        "[groups.idle]\nlifespan = \"1h\"\nidle_timeout = \"10m\"\n\
         [groups.capped]\nlifespan = \"1h\"\nmax_lifetime = \"1h\"\n\
         [groups.short]\nlifespan = \"1h\"\nmax_lifetime = \"2h\"\n",
    )
    .await;
    let mut client = test.client().await;
    let idle = start_session_in_group(&mut client, "alice", "idle").await;
    let capped = start_session_in_group(&mut client, "alice", "capped").await;
    let short = start_session_in_group(&mut client, "alice", "short").await;
    test.advance(secs(3600));

    let sessions = listed(&mut client, "alice").await;
    let id = |started: &sessiond::proto::session::v1::StartResponse| {
        session_of(&started.session).session_id.clone()
    };
    assert_eq!(reason_of(&sessions, &id(&idle)), EndReason::IdleTimeout);
    assert_eq!(reason_of(&sessions, &id(&capped)), EndReason::AbsoluteCap);
    assert_eq!(reason_of(&sessions, &id(&short)), EndReason::LifespanEnd);

    test.running().sweep_now().await.expect("sweep");
    let log = event_log(&mut client).await;
    let expired = ending_events(&log);
    assert_eq!(expired.len(), 3, "{expired:?}");
    assert!(expired.iter().all(|(_, _, actor)| actor == "sessiond"));
    let reason = |sid: String| {
        expired
            .iter()
            .find(|(id, _, _)| *id == sid)
            .map(|(_, reason, _)| *reason)
    };
    assert_eq!(reason(id(&idle)), Some(EndReason::IdleTimeout));
    assert_eq!(reason(id(&capped)), Some(EndReason::AbsoluteCap));
    assert_eq!(reason(id(&short)), Some(EndReason::LifespanEnd));
}

const LOGIN_KEY: &str = "login-key-0123456789";

fn with_key<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {LOGIN_KEY}").parse().expect("ascii key"),
    );
    request
}

on_backends!(a_configured_caller_is_named_as_the_actor_and_starter: sled, redis, cluster);
async fn a_configured_caller_is_named_as_the_actor_and_starter() {
    let hash: String = Sha256::digest(LOGIN_KEY.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let test = TestServer::with_config(&format!(
        "[[callers]]\nname = \"login\"\napi_key_sha256 = \"{hash}\"\ncalls = [\"*\"]\n"
    ))
    .await;
    let mut client = test.client().await;
    let started = client
        .start(with_key(start_request("alice")))
        .await
        .expect("start")
        .into_inner();
    assert_eq!(session_of(&started.session).started_by, "login");
    client
        .logout(with_key(LogoutRequest {
            session_token: started.session_token.clone(),
            ..Default::default()
        }))
        .await
        .expect("logout");
    let mut events = client
        .watch_sessions(with_key(watch_request(Some(0), "")))
        .await
        .expect("watch")
        .into_inner();
    let mut actors = Vec::new();
    while actors.len() < 2 {
        let event = events.message().await.expect("event").expect("open stream");
        if event.kind() != SessionEventKind::CaughtUp {
            actors.push((event.kind(), event.actor.clone(), event.end_reason()));
        }
    }
    assert_eq!(
        actors,
        vec![
            (
                SessionEventKind::Started,
                "login".to_owned(),
                EndReason::Unspecified
            ),
            (
                SessionEventKind::Revoked,
                "login".to_owned(),
                EndReason::Logout
            ),
        ]
    );
}
