//! ListRevocations: the sessions revoked while their access tokens may still be
//! unexpired, paged by cursor, handed over to WatchSessions, dropped once every token
//! of theirs has expired, and kept across a restart.

use crate::common;
use crate::support;

use common::TestServer;
use sessiond::config::Config;
use sessiond::proto::session::v1::{
    ListRevocationsRequest, ListRevocationsResponse, LogoutRequest, Revocation, SessionEventKind,
};
use support::*;
use tonic::Code;

/// Access tokens of 5 minutes: a revocation matters for 5m30s (the ttl and the margin).
const ACCESS_TOKENS: &str =
    "event_retention = \"10m\"\n[groups.default]\naccess_token_ttl = \"5m\"\nrefresh_grace = \"0s\"\n";
const WINDOW_S: i64 = 5 * MINUTE + 30;

async fn list_revocations(
    client: &mut Client,
    after_cursor: Option<u64>,
    page_size: i32,
) -> Result<ListRevocationsResponse, tonic::Status> {
    client
        .list_revocations(ListRevocationsRequest {
            after_cursor,
            page_size,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Every page from `after_cursor` on: the revocations and the cursor of the last page.
async fn all_revocations(client: &mut Client, after_cursor: Option<u64>) -> (Vec<Revocation>, u64) {
    let mut found = Vec::new();
    let mut cursor = after_cursor;
    loop {
        let page = list_revocations(client, cursor, 0)
            .await
            .expect("ListRevocations");
        found.extend(page.revocations);
        if page.caught_up {
            return (found, page.cursor);
        }
        cursor = Some(page.cursor);
    }
}

fn ids(revocations: &[Revocation]) -> Vec<&str> {
    revocations.iter().map(|r| r.session_id.as_str()).collect()
}

fn id_of(started: &sessiond::proto::session::v1::StartResponse) -> String {
    session_of(&started.session).session_id.clone()
}

on_backends!(a_logout_is_listed_until_its_access_tokens_have_expired: sled, redis, cluster);
async fn a_logout_is_listed_until_its_access_tokens_have_expired() {
    let test = TestServer::with_config(ACCESS_TOKENS).await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let ended = start_session(&mut client, "alice").await;
    logout_token(&mut client, &ended.session_token).await;

    let page = list_revocations(&mut client, None, 0).await.expect("list");
    assert!(page.caught_up);
    assert_eq!(page.window.as_ref().map(|w| w.seconds), Some(WINDOW_S));
    assert_eq!(ids(&page.revocations), [id_of(&ended)]);
    let revocation = &page.revocations[0];
    assert_eq!(revocation.user_id, "alice");
    assert_eq!(
        ms_of(revocation.not_after.as_ref()) - ms_of(revocation.revoked_at.as_ref()),
        WINDOW_S * 1000
    );
    test.advance(secs(WINDOW_S));
    let later = list_revocations(&mut client, None, 0).await.expect("list");
    assert!(later.revocations.is_empty(), "{later:?}");
}

on_backends!(only_revocations_inside_the_window_are_listed: sled, redis, cluster);
async fn only_revocations_inside_the_window_are_listed() {
    let test = TestServer::with_config(ACCESS_TOKENS).await;
    let mut client = test.client().await;
    for n in 0..20 {
        let old = start_session(&mut client, &format!("old-{n}")).await;
        logout_token(&mut client, &old.session_token).await;
    }
    test.advance(secs(4 * MINUTE));
    let mut recent = Vec::new();
    for n in 0..5 {
        let started = start_session(&mut client, &format!("new-{n}")).await;
        logout_token(&mut client, &started.session_token).await;
        recent.push(id_of(&started));
    }
    test.advance(secs(2 * MINUTE));

    let (found, _) = all_revocations(&mut client, None).await;

    assert_eq!(ids(&found), recent);
}

on_backends!(pages_follow_the_cursor_and_watch_sessions_continues_from_the_last: sled, redis, cluster);
async fn pages_follow_the_cursor_and_watch_sessions_continues_from_the_last() {
    let test = TestServer::with_config(ACCESS_TOKENS).await;
    let mut client = test.client().await;
    let mut revoked = Vec::new();
    for n in 0..3 {
        let started = start_session(&mut client, &format!("user-{n}")).await;
        start_session(&mut client, "bystander").await;
        logout_token(&mut client, &started.session_token).await;
        revoked.push(id_of(&started));
    }

    let first = list_revocations(&mut client, None, 1)
        .await
        .expect("page 1");
    assert_eq!(ids(&first.revocations), [revoked[0].as_str()]);
    assert!(!first.caught_up);
    let (rest, cursor) = all_revocations(&mut client, Some(first.cursor)).await;
    assert_eq!(ids(&rest), [revoked[1].as_str(), revoked[2].as_str()]);

    let mut events = watch_ok(&mut client, Some(cursor), "").await;
    let late = start_session(&mut client, "late").await;
    logout_token(&mut client, &late.session_token).await;
    let streamed = next_session_events(&mut events, 2).await;
    assert_eq!(kind_of(&streamed[1]), SessionEventKind::Revoked);
    assert_eq!(streamed[1].session_id, id_of(&late));
}

on_backends!(reuse_eviction_and_logout_of_all_are_revocations_too: sled, redis, cluster);
async fn reuse_eviction_and_logout_of_all_are_revocations_too() {
    let test =
        TestServer::with_config(&format!("{ACCESS_TOKENS}max_sessions_per_user = 1\n")).await;
    let mut client = test.client().await;
    let stolen = start_session(&mut client, "victim").await;
    refresh_ok(&mut client, &stolen.refresh_token).await;
    assert_code(
        refresh(&mut client, &stolen.refresh_token).await,
        Code::Unauthenticated,
    );
    let evicted = start_session(&mut client, "eve").await;
    let evictor = start_session(&mut client, "eve").await;
    let everywhere = start_session(&mut client, "frank").await;
    logout(
        &mut client,
        LogoutRequest {
            session_token: everywhere.session_token.clone(),
            all_for_user: true,
            ..Default::default()
        },
    )
    .await
    .expect("logout of all");

    let (found, _) = all_revocations(&mut client, None).await;

    assert_eq!(
        ids(&found),
        [id_of(&stolen), id_of(&evicted), id_of(&everywhere)]
    );
    assert!(!ids(&found).contains(&id_of(&evictor).as_str()));
}

on_backends!(the_feed_survives_a_restart: sled, redis, cluster);
async fn the_feed_survives_a_restart() {
    let mut test = TestServer::with_config(ACCESS_TOKENS).await;
    let mut client = test.client().await;
    let ended = start_session(&mut client, "alice").await;
    logout_token(&mut client, &ended.session_token).await;

    test.restart().await;
    let mut client = test.client().await;
    let (found, _) = all_revocations(&mut client, None).await;

    assert_eq!(ids(&found), [id_of(&ended)]);
}

on_backends!(a_cursor_older_than_the_log_is_out_of_range_and_one_ahead_is_invalid: sled, redis, cluster);
async fn a_cursor_older_than_the_log_is_out_of_range_and_one_ahead_is_invalid() {
    let test = TestServer::with_config(ACCESS_TOKENS).await;
    let mut client = test.client().await;
    let ended = start_session(&mut client, "alice").await;
    logout_token(&mut client, &ended.session_token).await;
    let (_, head) = all_revocations(&mut client, None).await;

    assert_code(
        list_revocations(&mut client, Some(head + 1_000_000), 0).await,
        Code::InvalidArgument,
    );
    test.advance(secs(11 * MINUTE));
    test.running().sweep_now().await.expect("sweep");
    assert_code(
        list_revocations(&mut client, Some(0), 0).await,
        Code::OutOfRange,
    );
    let fresh = list_revocations(&mut client, None, 0).await.expect("list");
    assert!(fresh.caught_up && fresh.revocations.is_empty(), "{fresh:?}");
}

#[test]
fn an_event_retention_shorter_than_the_window_is_refused_when_access_tokens_exist() {
    let error = Config::from_toml_str(
        "event_retention = \"5m\"\n[groups.default]\naccess_token_ttl = \"5m\"\n",
    )
    .expect_err("the feed could not see every revocation that matters");
    assert!(error.to_string().contains("event_retention"), "{error}");
    assert!(
        Config::from_toml_str("event_retention = \"10s\"").is_ok(),
        "without access tokens there is nothing for the feed to cover"
    );
}
