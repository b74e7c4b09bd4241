//! Client context: Start keeps the client a session was opened from; Start, Refresh and
//! Whoami record where it was last seen (Whoami only when the touch interval passed or
//! the ip or user agent changed); ListUserSessions shows both.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::proto::session::v1::{
    ClientContext, ListUserSessionsRequest, RefreshRequest, Session, StartRequest, WhoamiRequest,
};
use support::*;

fn client_at(ip: &str, user_agent: &str) -> ClientContext {
    ClientContext {
        ip: ip.to_owned(),
        user_agent: user_agent.to_owned(),
        ..Default::default()
    }
}

fn laptop() -> ClientContext {
    ClientContext {
        ip: "2001:db8:0:0::1".to_owned(),
        user_agent: "Firefox/140".to_owned(),
        device_id: "dev-1".to_owned(),
        device_label: "Alice's laptop".to_owned(),
    }
}

async fn whoami_from(client: &mut Client, token: &str, from: ClientContext) -> Session {
    let answer = client
        .whoami(WhoamiRequest {
            session_token: token.to_owned(),
            client: Some(from),
        })
        .await
        .expect("whoami")
        .into_inner();
    session_of(&answer.session).clone()
}

on_backends!(start_keeps_the_client_and_lists_it: sled, redis, cluster);
async fn start_keeps_the_client_and_lists_it() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            client: Some(laptop()),
            ..start_request("alice")
        },
    )
    .await;
    let session = session_of(&started.session);
    let kept = session.client.clone().expect("client kept");
    assert_eq!(kept.ip, "2001:db8::1", "stored in canonical form");
    assert_eq!(kept.device_label, "Alice's laptop");
    assert_eq!(session.last_ip, "2001:db8::1");
    assert_eq!(session.last_user_agent, "Firefox/140");
    assert_eq!(
        ms_of(session.last_seen_at.as_ref()),
        common::START_MS as i64
    );

    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.sessions[0].client, Some(kept));
    assert_eq!(listed.sessions[0].last_ip, "2001:db8::1");
}

on_backends!(whoami_records_a_new_ip_at_once_and_a_known_one_per_touch_interval: sled, redis, cluster);
async fn whoami_records_a_new_ip_at_once_and_a_known_one_per_touch_interval() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_with(
        &mut client,
        StartRequest {
            client: Some(client_at("10.0.0.1", "ua")),
            ..start_request("alice")
        },
    )
    .await;
    let token = started.session_token.as_str();

    test.advance(secs(5));
    let same = whoami_from(&mut client, token, client_at("10.0.0.1", "ua")).await;
    assert_eq!(
        ms_of(same.last_seen_at.as_ref()),
        common::START_MS as i64,
        "coalesced"
    );

    let moved = whoami_from(&mut client, token, client_at("10.0.0.2", "")).await;
    assert_eq!(moved.last_ip, "10.0.0.2");
    assert_eq!(
        moved.last_user_agent, "ua",
        "an empty field keeps the last value"
    );
    assert_eq!(
        ms_of(moved.last_seen_at.as_ref()),
        common::START_MS as i64 + 5000
    );

    test.advance(secs(120));
    let touched = whoami_from(&mut client, token, client_at("10.0.0.2", "ua")).await;
    assert_eq!(
        ms_of(touched.last_seen_at.as_ref()),
        common::START_MS as i64 + 125_000
    );
    let plain = whoami_ok(&mut client, token).await;
    assert_eq!(session_of(&plain.session).last_ip, "10.0.0.2");
}

on_backends!(refresh_records_the_client: sled, redis, cluster);
async fn refresh_records_the_client() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    assert!(session_of(&started.session).client.is_none());
    assert!(session_of(&started.session).last_seen_at.is_none());
    let refreshed = client
        .refresh(RefreshRequest {
            refresh_token: started.refresh_token,
            client: Some(client_at("192.0.2.7", "curl/8")),
            ..Default::default()
        })
        .await
        .expect("refresh")
        .into_inner();
    let session = session_of(&refreshed.session);
    assert_eq!(session.last_ip, "192.0.2.7");
    assert_eq!(session.last_user_agent, "curl/8");
    assert!(session.client.is_none(), "client stays as given at Start");
}

on_backends!(a_bad_client_context_is_invalid_and_changes_nothing: sled, redis, cluster);
async fn a_bad_client_context_is_invalid_and_changes_nothing() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let bad_ip = client
        .start(StartRequest {
            client: Some(client_at("10.0.0.256", "")),
            ..start_request("alice")
        })
        .await;
    assert_invalid_field(bad_ip, "client.ip");
    let long_agent = client
        .start(StartRequest {
            client: Some(client_at("", &"x".repeat(513))),
            ..start_request("alice")
        })
        .await;
    assert_invalid_field(long_agent, "client.user_agent");
    let long_label = client
        .start(StartRequest {
            client: Some(ClientContext {
                device_label: "x".repeat(129),
                ..Default::default()
            }),
            ..start_request("alice")
        })
        .await;
    assert_invalid_field(long_label, "client.device_label");
    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.sessions.is_empty());

    let started = start_session(&mut client, "alice").await;
    let whoami = client
        .whoami(WhoamiRequest {
            session_token: started.session_token,
            client: Some(client_at("not-an-ip", "")),
        })
        .await;
    assert_invalid_field(whoami, "client.ip");
}
