//! ListSessions and RevokeSessions: admin calls over a filter of every user's sessions
//! (newest first, AND filters, paging), and the bulk revoke with its dry run, guard,
//! reason in the events, and re-runs that finish the job.

use crate::common;
use crate::support;

use common::{TestServer, START_MS};
use sessiond::proto::session::v1::{
    ClientContext, EndReason, ListSessionsRequest, RevokeSessionsRequest, SessionEventKind,
    SessionFilter, SessionState, StartRequest,
};
use support::*;
use tonic::Code;

fn at_ms(ms: u64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

fn from(user: &str, ip: &str, device: &str) -> StartRequest {
    StartRequest {
        client: Some(ClientContext {
            ip: ip.into(),
            device_id: device.into(),
            ..Default::default()
        }),
        ..start_request(user)
    }
}

/// Every session the filter lists, following the pages; returns (user, ids) in order.
async fn list_all(client: &mut Client, filter: SessionFilter, page_size: i32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_sessions(ListSessionsRequest {
                filter: Some(filter.clone()),
                page_size,
                page_token,
            })
            .await
            .expect("list sessions")
            .into_inner();
        ids.extend(page.sessions.into_iter().map(|s| s.session_id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        page_token = page.next_page_token;
    }
}

fn id_of(started: &sessiond::proto::session::v1::StartResponse) -> String {
    session_of(&started.session).session_id.clone()
}

on_backends!(list_sessions_pages_every_user_newest_first_with_and_filters: sled, redis, cluster);
async fn list_sessions_pages_every_user_newest_first_with_and_filters() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let a1 = start_with(&mut client, from("alice", "10.1.2.3", "laptop")).await;
    test.advance(secs(10));
    let b1 = start_with(&mut client, from("bob", "192.0.2.9", "phone")).await;
    test.advance(secs(10));
    let a2 = start_with(&mut client, from("alice", "10.9.9.9", "phone")).await;
    test.advance(secs(10));
    let c1 = start_with(&mut client, from("carol", "2001:db8::7", "tablet")).await;
    logout_token(&mut client, &b1.session_token).await;

    let everything = list_all(&mut client, SessionFilter::default(), 2).await;
    assert_eq!(everything, [id_of(&c1), id_of(&a2), id_of(&b1), id_of(&a1)]);

    let cases = [
        (
            SessionFilter {
                user_id: "alice".into(),
                ..Default::default()
            },
            vec![id_of(&a2), id_of(&a1)],
        ),
        (
            SessionFilter {
                ip: "10.0.0.0/8".into(),
                ..Default::default()
            },
            vec![id_of(&a2), id_of(&a1)],
        ),
        (
            SessionFilter {
                ip: "2001:db8::7".into(),
                ..Default::default()
            },
            vec![id_of(&c1)],
        ),
        (
            SessionFilter {
                device_id: "phone".into(),
                state: SessionState::Active as i32,
                ..Default::default()
            },
            vec![id_of(&a2)],
        ),
        (
            SessionFilter {
                state: SessionState::Revoked as i32,
                ..Default::default()
            },
            vec![id_of(&b1)],
        ),
        (
            SessionFilter {
                created_after: at_ms(START_MS + 5_000),
                created_before: at_ms(START_MS + 25_000),
                ..Default::default()
            },
            vec![id_of(&a2), id_of(&b1)],
        ),
        (
            SessionFilter {
                user_id: "alice".into(),
                created_before: at_ms(START_MS + 15_000),
                ..Default::default()
            },
            vec![id_of(&a1)],
        ),
        (
            SessionFilter {
                last_seen_before: at_ms(START_MS + 15_000),
                ..Default::default()
            },
            vec![id_of(&b1), id_of(&a1)],
        ),
        (
            SessionFilter {
                started_by: "anonymous".into(),
                group: "default".into(),
                user_id: "carol".into(),
                ..Default::default()
            },
            vec![id_of(&c1)],
        ),
        (
            SessionFilter {
                started_by: "someone-else".into(),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            list_all(&mut client, filter.clone(), 1).await,
            expected,
            "{filter:?}"
        );
    }
}

on_backends!(list_sessions_names_the_bad_filter_field: sled, redis, cluster);
async fn list_sessions_names_the_bad_filter_field() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let cases = [
        (
            SessionFilter {
                state: 42,
                ..Default::default()
            },
            "filter.state",
        ),
        (
            SessionFilter {
                ip: "10.0.0.0/33".into(),
                ..Default::default()
            },
            "filter.ip",
        ),
        (
            SessionFilter {
                ip: "not-an-ip".into(),
                ..Default::default()
            },
            "filter.ip",
        ),
        (
            SessionFilter {
                created_after: at_ms(START_MS + 2),
                created_before: at_ms(START_MS + 1),
                ..Default::default()
            },
            "filter.created_after",
        ),
    ];
    for (filter, field) in cases {
        let result = client
            .list_sessions(ListSessionsRequest {
                filter: Some(filter),
                ..Default::default()
            })
            .await;
        assert_invalid_field(result, field);
    }
    let result = client
        .list_sessions(ListSessionsRequest {
            page_token: "@@".into(),
            ..Default::default()
        })
        .await;
    assert_invalid_field(result, "page_token");
}

fn revoke(filter: SessionFilter) -> RevokeSessionsRequest {
    RevokeSessionsRequest {
        filter: Some(filter),
        reason: "incident 42".into(),
        ..Default::default()
    }
}

on_backends!(revoke_sessions_counts_on_a_dry_run_guards_and_keeps_the_reason: sled, redis, cluster);
async fn revoke_sessions_counts_on_a_dry_run_guards_and_keeps_the_reason() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    // A second apart: ids order by creation time, not within one millisecond.
    let a1 = start_with(&mut client, from("alice", "10.1.2.3", "laptop")).await;
    test.advance(secs(1));
    let a2 = start_with(&mut client, from("alice", "10.1.2.4", "phone")).await;
    test.advance(secs(1));
    let b1 = start_with(&mut client, from("bob", "10.7.0.1", "phone")).await;
    let c1 = start_with(&mut client, from("carol", "192.0.2.1", "phone")).await;
    let in_ten = SessionFilter {
        ip: "10.0.0.0/8".into(),
        ..Default::default()
    };

    let dry = client
        .revoke_sessions(RevokeSessionsRequest {
            dry_run: true,
            ..revoke(in_ten.clone())
        })
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!((dry.matched_count, dry.revoked_count), (3, 0));
    assert_eq!(dry.session_ids, [id_of(&b1), id_of(&a2), id_of(&a1)]);
    whoami_ok(&mut client, &a1.session_token).await;

    let guarded = client
        .revoke_sessions(RevokeSessionsRequest {
            max_sessions: 2,
            ..revoke(in_ten.clone())
        })
        .await;
    assert_code(guarded, Code::FailedPrecondition);
    whoami_ok(&mut client, &b1.session_token).await;

    let done = client
        .revoke_sessions(revoke(in_ten.clone()))
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!((done.matched_count, done.revoked_count), (3, 3));
    for token in [&a1, &a2, &b1] {
        assert!(whoami(&mut client, &token.session_token).await.is_err());
    }
    whoami_ok(&mut client, &c1.session_token).await;

    // Running it again finds nothing left to do: ended sessions are skipped.
    let again = client
        .revoke_sessions(revoke(in_ten))
        .await
        .expect("revoke again")
        .into_inner();
    assert_eq!((again.matched_count, again.revoked_count), (0, 0));

    let mut revoked: Vec<_> = event_log(&mut client)
        .await
        .into_iter()
        .filter(|event| event.kind() == SessionEventKind::Revoked)
        .map(|event| {
            assert_eq!(event.end_reason(), EndReason::BulkRevoke);
            assert_eq!(event.reason, "incident 42");
            assert_eq!(event.actor, "anonymous");
            event.session_id
        })
        .collect();
    revoked.sort();
    let mut expected = vec![id_of(&a1), id_of(&a2), id_of(&b1)];
    expected.sort();
    assert_eq!(revoked, expected);
}

on_backends!(revoke_sessions_refuses_an_empty_filter_unless_all_and_needs_a_reason: sled, redis, cluster);
async fn revoke_sessions_refuses_an_empty_filter_unless_all_and_needs_a_reason() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let alice = start_session(&mut client, "alice").await;
    let bob = start_session(&mut client, "bob").await;

    let empty = client
        .revoke_sessions(revoke(SessionFilter::default()))
        .await;
    assert_invalid_field(empty, "filter");
    let no_reason = client
        .revoke_sessions(RevokeSessionsRequest {
            reason: String::new(),
            ..revoke(SessionFilter {
                user_id: "alice".into(),
                ..Default::default()
            })
        })
        .await;
    assert_invalid_field(no_reason, "reason");
    whoami_ok(&mut client, &alice.session_token).await;

    let all = client
        .revoke_sessions(RevokeSessionsRequest {
            all: true,
            ..revoke(SessionFilter::default())
        })
        .await
        .expect("revoke all")
        .into_inner();
    assert_eq!(all.revoked_count, 2);
    assert!(whoami(&mut client, &bob.session_token).await.is_err());
}
