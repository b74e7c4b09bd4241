//! Idempotent Refresh inside the grace window (`refresh_grace`): concurrent and retried
//! refreshes of one token get the same successor pair; after the window, or once the
//! successor was used, a re-presented refresh token is theft. The successor is kept
//! only sealed, and the sweeper drops it when the window closes.

use crate::common;
use crate::support;

use std::sync::Arc;

use common::TestServer;
use sessiond::proto::session::v1::{
    ListUserSessionsRequest, RefreshResponse, SessionEventKind as Kind, SessionState,
};
use support::*;
use tonic::{Code, Status};

/// Reuse is theft at once: the grace window is off.
const NO_GRACE: &str = "[groups.default]\nrefresh_grace = \"0s\"";

/// The default grace window, in seconds.
const GRACE_S: i64 = 30;

/// How many callers race in the concurrency tests.
const CALLERS: usize = 32;

/// The (session token, refresh token) pair of a refresh answer.
fn pair(response: &RefreshResponse) -> (String, String) {
    (
        response.session_token.clone(),
        response.refresh_token.clone(),
    )
}

/// `CALLERS` clients, each on its own connection, present `token` to Refresh at once.
async fn refresh_concurrently(
    test: &TestServer,
    token: &str,
) -> Vec<Result<RefreshResponse, Status>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        let mut client = test.client().await;
        let barrier = barrier.clone();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            refresh(&mut client, &token).await
        }));
    }
    let mut results = Vec::with_capacity(CALLERS);
    for task in tasks {
        results.push(task.await.expect("refresh task"));
    }
    results
}

/// Every stored session of `user`, ended ones included.
async fn all_sessions(
    client: &mut Client,
    user: &str,
) -> Vec<sessiond::proto::session::v1::Session> {
    client
        .list_user_sessions(ListUserSessionsRequest {
            user_id: user.to_owned(),
            include_inactive: true,
            ..Default::default()
        })
        .await
        .expect("list succeeds")
        .into_inner()
        .sessions
}

/// The state of the only stored session of `user`.
async fn only_session_state(client: &mut Client, user: &str) -> SessionState {
    let sessions = all_sessions(client, user).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions[0].state()
}

/// The kinds of every event in the log.
async fn logged_kinds(client: &mut Client) -> Vec<Kind> {
    event_log(client).await.iter().map(kind_of).collect()
}

/// Asserts that the session behind `refreshed` is revoked: its tokens are refused.
async fn assert_revoked(client: &mut Client, user: &str, refreshed: &RefreshResponse) {
    assert_code(
        whoami(client, &refreshed.session_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        refresh(client, &refreshed.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_eq!(
        only_session_state(client, user).await,
        SessionState::Revoked
    );
}

// --- concurrent refreshes -------------------------------------------------------------------

on_backends!(concurrent_refreshes_in_the_window_all_get_the_same_successor: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_refreshes_in_the_window_all_get_the_same_successor() {
    let test = TestServer::start().await;
    let started = start_session(&mut test.client().await, "alice").await;

    let results = refresh_concurrently(&test, &started.refresh_token).await;

    let pairs: Vec<(String, String)> = results
        .into_iter()
        .map(|result| pair(&result.expect("every caller in the window succeeds")))
        .collect();
    assert!(
        pairs.iter().all(|p| *p == pairs[0]),
        "every caller gets the same pair"
    );
    assert_ne!(pairs[0].1, started.refresh_token);
}

on_backends!(concurrent_refreshes_in_the_window_leave_one_session_with_one_valid_pair: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_refreshes_in_the_window_leave_one_session_with_one_valid_pair() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let results = refresh_concurrently(&test, &started.refresh_token).await;

    let successor = results[0].as_ref().expect("refresh succeeds").clone();
    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
    whoami_ok(&mut client, &successor.session_token).await;
    assert_eq!(
        only_session_state(&mut client, "alice").await,
        SessionState::Active
    );
}

on_backends!(concurrent_refreshes_in_the_window_rotate_once: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_refreshes_in_the_window_rotate_once() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    refresh_concurrently(&test, &started.refresh_token).await;

    assert_eq!(
        logged_kinds(&mut client).await,
        vec![Kind::Started, Kind::Refreshed]
    );
}

on_backends!(concurrent_refreshes_without_grace_let_exactly_one_win: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_refreshes_without_grace_let_exactly_one_win() {
    let test = TestServer::with_config(NO_GRACE).await;
    let started = start_session(&mut test.client().await, "alice").await;

    let results = refresh_concurrently(&test, &started.refresh_token).await;

    let winners = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for result in results.into_iter().filter(Result::is_err) {
        assert_code(result, Code::Unauthenticated);
    }
}

// --- a retry after a lost response ---------------------------------------------------------

on_backends!(a_retry_after_a_lost_response_gets_the_same_pair: sled, cluster);
async fn a_retry_after_a_lost_response_gets_the_same_pair() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let lost = refresh_ok(&mut client, &started.refresh_token).await;

    let retried = refresh_ok(&mut client, &started.refresh_token).await;

    assert_eq!(pair(&retried), pair(&lost));
    assert_eq!(
        session_of(&retried.session).session_id,
        session_of(&lost.session).session_id
    );
}

on_backends!(the_pair_a_retry_returns_works: sled, cluster);
async fn the_pair_a_retry_returns_works() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;

    let retried = refresh_ok(&mut client, &started.refresh_token).await;

    whoami_ok(&mut client, &retried.session_token).await;
    refresh_ok(&mut client, &retried.refresh_token).await;
}

on_backends!(a_retry_rotates_nothing: sled, cluster);
async fn a_retry_rotates_nothing() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;

    refresh_ok(&mut client, &started.refresh_token).await;
    refresh_ok(&mut client, &started.refresh_token).await;

    assert_eq!(
        logged_kinds(&mut client).await,
        vec![Kind::Started, Kind::Refreshed]
    );
}

on_backends!(a_retry_does_not_revive_the_old_session_token: sled, cluster);
async fn a_retry_does_not_revive_the_old_session_token() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;

    refresh_ok(&mut client, &started.refresh_token).await;

    assert_code(
        whoami(&mut client, &started.session_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(a_retry_just_inside_the_window_gets_the_same_pair: sled, cluster);
async fn a_retry_just_inside_the_window_gets_the_same_pair() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let lost = refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S - 1));

    let retried = refresh_ok(&mut client, &started.refresh_token).await;

    assert_eq!(pair(&retried), pair(&lost));
}

on_backends!(a_retry_after_logout_is_refused: sled, cluster);
async fn a_retry_after_logout_is_refused() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let lost = refresh_ok(&mut client, &started.refresh_token).await;
    logout_id(&mut client, &session_of(&lost.session).session_id).await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(the_grace_window_is_the_sessions_groups: sled, cluster);
async fn the_grace_window_is_the_sessions_groups() {
    let test = TestServer::with_config("[groups.strict]\nrefresh_grace = \"5s\"").await;
    let mut client = test.client().await;
    let strict = start_session_in_group(&mut client, "alice", "strict").await;
    let default = start_session(&mut client, "bob").await;
    refresh_ok(&mut client, &strict.refresh_token).await;
    let lost = refresh_ok(&mut client, &default.refresh_token).await;
    test.advance(secs(6));

    assert_code(
        refresh(&mut client, &strict.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_eq!(
        pair(&refresh_ok(&mut client, &default.refresh_token).await),
        pair(&lost)
    );
}

// --- reuse after the window ----------------------------------------------------------------

on_backends!(reuse_after_the_window_fails_unauthenticated: sled, cluster);
async fn reuse_after_the_window_fails_unauthenticated() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S + 1));

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
}

on_backends!(reuse_after_the_window_revokes_the_session: sled, cluster);
async fn reuse_after_the_window_revokes_the_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S + 1));

    let _ = refresh(&mut client, &started.refresh_token).await;

    assert_revoked(&mut client, "alice", &successor).await;
}

on_backends!(reuse_after_the_sweeper_closed_the_window_revokes_the_session: sled, cluster);
async fn reuse_after_the_sweeper_closed_the_window_revokes_the_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S + 1));
    test.running().sweep_now().await.expect("sweep");

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_revoked(&mut client, "alice", &successor).await;
}

on_backends!(reuse_after_the_window_is_a_reuse_detected_event: sled, cluster);
async fn reuse_after_the_window_is_a_reuse_detected_event() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S + 1));

    let _ = refresh(&mut client, &started.refresh_token).await;

    assert_eq!(
        logged_kinds(&mut client).await,
        vec![Kind::Started, Kind::Refreshed, Kind::ReuseDetected]
    );
}

/// The value of the sample line that starts with `name` followed by a space, or 0.
fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

on_backends!(reuse_after_the_window_is_counted: sled, cluster);
async fn reuse_after_the_window_is_counted() {
    const REUSE: &str = "sessiond_refresh_reuse_detected_total";
    let test = TestServer::with_config("metrics_listen = \"127.0.0.1:0\"").await;
    let addr = test.running().metrics_addr().expect("metrics port on");
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S + 1));
    let before = metric_value(&scrape_metrics(addr).await, REUSE);

    let _ = refresh(&mut client, &started.refresh_token).await;

    let text = scrape_metrics(addr).await;
    // Other tests of this binary share the process-wide recorder: at least one more.
    assert!(metric_value(&text, REUSE) >= before + 1.0, "{text}");
}

// --- reuse after the successor was used -----------------------------------------------------

on_backends!(reuse_after_the_successor_session_token_was_used_is_theft: sled, cluster);
async fn reuse_after_the_successor_session_token_was_used_is_theft() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    whoami_ok(&mut client, &successor.session_token).await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_revoked(&mut client, "alice", &successor).await;
}

on_backends!(reuse_after_the_successor_refresh_token_was_used_is_theft: sled, cluster);
async fn reuse_after_the_successor_refresh_token_was_used_is_theft() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    let third = refresh_ok(&mut client, &successor.refresh_token).await;

    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_revoked(&mut client, "alice", &third).await;
}

// --- restart -------------------------------------------------------------------------------

on_backends!(a_retry_after_a_restart_in_the_window_gets_the_same_pair: sled, cluster);
async fn a_retry_after_a_restart_in_the_window_gets_the_same_pair() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let lost = refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S / 2));

    test.restart().await;

    let mut client = test.client().await;
    let retried = refresh_ok(&mut client, &started.refresh_token).await;
    assert_eq!(pair(&retried), pair(&lost));
}

on_backends!(a_window_open_at_a_restart_still_closes: sled, cluster);
async fn a_window_open_at_a_restart_still_closes() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;

    test.restart().await;
    test.advance(secs(GRACE_S + 1));

    let mut client = test.client().await;
    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_revoked(&mut client, "alice", &successor).await;
}

on_backends!(a_successor_used_before_a_restart_stays_used: sled, cluster);
async fn a_successor_used_before_a_restart_stays_used() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    whoami_ok(&mut client, &successor.session_token).await;

    test.restart().await;

    let mut client = test.client().await;
    assert_code(
        refresh(&mut client, &started.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_revoked(&mut client, "alice", &successor).await;
}

// --- what the store keeps ------------------------------------------------------------------

on_backends!(no_token_secret_is_stored_in_plaintext: sled, cluster);
async fn no_token_secret_is_stored_in_plaintext() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let probe = "plaintext-probe-user-5b0d3c";
    let started = start_session(&mut client, probe).await;
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    test.stop().await; // inside the window: the sealed successor is stored

    let stored = test.stored_bytes().await;

    assert!(
        stored
            .iter()
            .any(|(_, bytes)| contains_bytes(bytes, probe.as_bytes())),
        "the scan sees stored records (the user id is stored as is)"
    );
    for token in [
        &started.session_token,
        &started.refresh_token,
        &successor.session_token,
        &successor.refresh_token,
    ] {
        let secret = secret_of(token);
        for (place, bytes) in &stored {
            assert!(
                !contains_bytes(bytes, &secret),
                "a token secret is stored in plaintext in {place}"
            );
            assert!(
                !contains_bytes(bytes, token.as_bytes()),
                "a token is stored in {place}"
            );
        }
    }
}

on_backends!(the_sweeper_drops_the_sealed_successor_once_the_window_closes: sled, cluster);
async fn the_sweeper_drops_the_sealed_successor_once_the_window_closes() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let closed = start_session(&mut client, "alice").await;
    let open = start_session(&mut client, "bob").await;
    refresh_ok(&mut client, &closed.refresh_token).await;
    test.advance(secs(GRACE_S + 1));
    refresh_ok(&mut client, &open.refresh_token).await;

    test.running().sweep_now().await.expect("sweep");
    test.stop().await;

    let store = test.open_store().await;
    let record = |started: &sessiond::proto::session::v1::StartResponse| {
        let id = uuid::Uuid::parse_str(&session_of(&started.session).session_id)
            .expect("session id is a uuid");
        let store = &store;
        async move {
            store
                .get(id)
                .await
                .expect("read record")
                .expect("record stored")
        }
    };
    let closed = record(&closed).await;
    assert!(
        closed.sealed_successor.is_empty(),
        "dropped after the window"
    );
    assert_eq!(closed.grace_until_ms, 0);
    let open = record(&open).await;
    assert!(!open.sealed_successor.is_empty(), "kept inside the window");
}
