//! ListUserSessions (paged, newest first) and Logout of every session but one; session
//! ids in creation order, within one millisecond and across a restart.

use crate::common;
use crate::support;

use std::collections::BTreeSet;

use common::TestServer;
use sessiond::proto::session::v1::{ListUserSessionsRequest, LogoutRequest, SessionState};
use support::*;
use tokio::task::JoinSet;
use tonic::Code;

fn list_request(user: &str, page_size: i32, page_token: &str) -> ListUserSessionsRequest {
    ListUserSessionsRequest {
        user_id: user.to_owned(),
        page_size,
        page_token: page_token.to_owned(),
        include_inactive: false,
    }
}

on_backends!(list_returns_a_users_sessions_newest_first: sled, redis, cluster);
async fn list_returns_a_users_sessions_newest_first() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut started = Vec::new();
    for _ in 0..3 {
        started.push(start_session(&mut client, "alice").await);
        test.advance(secs(1));
    }
    start_session(&mut client, "bob").await;

    let page = client
        .list_user_sessions(list_request("alice", 0, ""))
        .await
        .expect("list")
        .into_inner();

    let listed: Vec<&str> = page
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    let expected: Vec<&str> = started
        .iter()
        .rev()
        .map(|s| session_of(&s.session).session_id.as_str())
        .collect();
    assert_eq!(listed, expected);
    assert!(page.next_page_token.is_empty());
    assert!(page.sessions.iter().all(|s| s.user_id == "alice"));
}

on_backends!(list_pages_through_every_session_once: sled, redis, cluster);
async fn list_pages_through_every_session_once() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    for _ in 0..7 {
        start_session(&mut client, "alice").await;
        test.advance(secs(1));
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_user_sessions(list_request("alice", 3, &token))
            .await
            .expect("list page")
            .into_inner();
        assert!(page.sessions.len() <= 3);
        seen.extend(page.sessions.into_iter().map(|s| s.session_id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 10, "paging must end");
    }
    assert_eq!(seen.len(), 7);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 7);
}

on_backends!(list_hides_ended_sessions_unless_asked: sled, redis, cluster);
async fn list_hides_ended_sessions_unless_asked() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let ended = start_session(&mut client, "alice").await;
    start_session(&mut client, "alice").await;
    logout_token(&mut client, &ended.session_token).await;

    let active = client
        .list_user_sessions(list_request("alice", 10, ""))
        .await
        .expect("list")
        .into_inner();
    let all = client
        .list_user_sessions(ListUserSessionsRequest {
            include_inactive: true,
            ..list_request("alice", 10, "")
        })
        .await
        .expect("list all")
        .into_inner();

    assert_eq!(active.sessions.len(), 1);
    assert_eq!(all.sessions.len(), 2);
    assert!(all
        .sessions
        .iter()
        .any(|s| s.state() == SessionState::Revoked));
}

on_backends!(list_of_an_unknown_user_is_empty: sled, redis, cluster);
async fn list_of_an_unknown_user_is_empty() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let page = client
        .list_user_sessions(list_request("nobody", 0, ""))
        .await
        .expect("list")
        .into_inner();

    assert!(page.sessions.is_empty());
}

on_backends!(list_with_a_bad_page_token_names_the_field: sled, redis, cluster);
async fn list_with_a_bad_page_token_names_the_field() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    assert_invalid_field(
        client
            .list_user_sessions(list_request("alice", 0, "not-a-token!"))
            .await,
        "page_token",
    );
    assert_invalid_field(
        client
            .list_user_sessions(list_request("alice", -1, ""))
            .await,
        "page_size",
    );
    assert_invalid_field(
        client.list_user_sessions(list_request("", 0, "")).await,
        "user_id",
    );
}

on_backends!(logout_all_except_one_keeps_that_session: sled, redis, cluster);
async fn logout_all_except_one_keeps_that_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let keep = start_session(&mut client, "alice").await;
    let others = [
        start_session(&mut client, "alice").await,
        start_session(&mut client, "alice").await,
    ];
    let bob = start_session(&mut client, "bob").await;

    let revoked = logout(
        &mut client,
        LogoutRequest {
            session_token: keep.session_token.clone(),
            all_for_user: true,
            except_session_id: session_of(&keep.session).session_id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("logout others")
    .revoked_count;

    assert_eq!(revoked, 2);
    whoami_ok(&mut client, &keep.session_token).await;
    whoami_ok(&mut client, &bob.session_token).await;
    for other in &others {
        assert_code(
            whoami(&mut client, &other.session_token).await,
            Code::Unauthenticated,
        );
    }
}

on_backends!(logout_except_without_all_for_user_is_invalid: sled, redis, cluster);
async fn logout_except_without_all_for_user_is_invalid() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    assert_invalid_field(
        logout(
            &mut client,
            LogoutRequest {
                session_token: started.session_token.clone(),
                except_session_id: session_of(&started.session).session_id.clone(),
                ..Default::default()
            },
        )
        .await,
        "except_session_id",
    );
    whoami_ok(&mut client, &started.session_token).await;
}

/// The ids of `user`'s sessions as ListUserSessions gives them, every page.
async fn listed_ids(client: &mut Client, user: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_user_sessions(list_request(user, 100, &token))
            .await
            .expect("list")
            .into_inner();
        ids.extend(page.sessions.into_iter().map(|s| s.session_id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

/// Starts `count` sessions of `user` one after another; their ids in that order.
async fn start_ids(client: &mut Client, user: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let started = start_session(client, user).await;
        ids.push(session_of(&started.session).session_id.clone());
    }
    ids
}

// The test clock stands still: every Start below falls in the same millisecond.
on_backends!(ids_follow_creation_order_within_one_millisecond_from_many_tasks: sled, redis, cluster; flavor = "multi_thread", worker_threads = 2);
async fn ids_follow_creation_order_within_one_millisecond_from_many_tasks() {
    const TASKS: usize = 16;
    const STARTS: usize = 150;
    let test = TestServer::start().await;
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let mut client = test.client().await;
        tasks.spawn(async move {
            let user = format!("user-{task}");
            let ids = start_ids(&mut client, &user, STARTS).await;
            (user, ids)
        });
    }
    let mut client = test.client().await;
    let mut every_id = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (user, ids) = joined.expect("task");
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "{user}: each Start began after the one before returned, so its id is greater"
        );
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(listed_ids(&mut client, &user).await, newest_first, "{user}");
        every_id.extend(ids);
    }
    assert_eq!(every_id.len(), TASKS * STARTS, "ids are unique");
}

on_backends!(ids_after_a_restart_in_the_same_millisecond_sort_after_the_ones_before: sled, redis, cluster);
async fn ids_after_a_restart_in_the_same_millisecond_sort_after_the_ones_before() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let before = start_ids(&mut client, "alice", 20).await;
    test.restart().await;
    let mut client = test.client().await;
    let after = start_ids(&mut client, "alice", 20).await;
    let newest_before = before.iter().max().expect("sessions before");
    assert!(
        after.iter().all(|id| id > newest_before),
        "every id after the restart is greater than {newest_before}: {after:?}"
    );
}
