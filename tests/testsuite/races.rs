//! Races: calls on one session or one user that arrive at the same moment end in one
//! consistent state. Of concurrent Refreshes with one token exactly one wins (without
//! refresh grace; within it, all get the one successor pair), and Extend, Logout and
//! RefreshAllForUser interleave without leaving an index out of step with its records.

use crate::common;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use common::TestServer;
use sessiond::proto::session::v1::{
    ListUserSessionsRequest, LogoutRequest, RefreshResponse, Session, SessionState, StartResponse,
};
use support::*;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tonic::{Code, Status};

/// How many callers present the same refresh token at once.
const RACERS: usize = 32;

/// Sessions of the user whose calls race in the user-wide tests.
const SESSIONS: usize = 8;

/// No refresh grace: a re-presented refresh token is reuse at once, so exactly one of
/// several concurrent Refreshes with one token can win.
const NO_GRACE: &str = r#"
[groups.default]
refresh_grace = "0s"
"#;

/// Every session of `user` (all pages), newest first.
async fn list_sessions(client: &mut Client, user: &str, include_inactive: bool) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_user_sessions(ListUserSessionsRequest {
                user_id: user.to_owned(),
                page_size: 3,
                page_token: page_token.clone(),
                include_inactive,
            })
            .await
            .expect("list succeeds")
            .into_inner();
        sessions.extend(page.sessions);
        if page.next_page_token.is_empty() {
            return sessions;
        }
        page_token = page.next_page_token;
    }
}

/// Runs `call(i, client)` for i in 0..RACERS on as many tasks, each with its own
/// connection, released together.
async fn race<T, F, Fut>(test: &TestServer, call: F) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    F: Fn(usize, Client) -> Fut,
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = JoinSet::new();
    for i in 0..RACERS {
        let call = call(i, test.client().await);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            call.await
        });
    }
    tasks.join_all().await
}

/// Presents `refresh_token` on `RACERS` connections at once.
async fn refresh_race(
    test: &TestServer,
    refresh_token: &str,
) -> Vec<Result<RefreshResponse, Status>> {
    race(test, |_, mut client| {
        let token = refresh_token.to_owned();
        async move { refresh(&mut client, &token).await }
    })
    .await
}

/// The one successful answer among `results`, after checking that every other one is
/// UNAUTHENTICATED.
#[track_caller]
fn single_winner(results: Vec<Result<RefreshResponse, Status>>) -> RefreshResponse {
    let mut winners = Vec::new();
    let mut codes = BTreeMap::new();
    for result in results {
        match result {
            Ok(response) => winners.push(response),
            Err(status) => *codes.entry(format!("{:?}", status.code())).or_insert(0) += 1,
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one concurrent Refresh must succeed; failures: {codes:?}"
    );
    assert_eq!(
        codes,
        BTreeMap::from([(format!("{:?}", Code::Unauthenticated), RACERS - 1)]),
        "every losing Refresh must be UNAUTHENTICATED"
    );
    winners.pop().expect("one winner")
}

/// A user's sessions, started one after the other.
async fn start_sessions(client: &mut Client, user: &str) -> Vec<StartResponse> {
    let mut started = Vec::new();
    for _ in 0..SESSIONS {
        started.push(start_session(client, user).await);
    }
    started
}

fn id_of(started: &StartResponse) -> String {
    session_of(&started.session).session_id.clone()
}

/// Checks that the store and every view of `user`'s sessions agree: no orphan index
/// entry, each session listed once, the active-only list is exactly the ACTIVE ones, and
/// each newest session token passes Whoami exactly when its session is ACTIVE. Returns
/// the state of each session by id.
async fn assert_consistent(
    test: &TestServer,
    client: &mut Client,
    user: &str,
    newest_tokens: &BTreeMap<String, String>,
) -> BTreeMap<String, SessionState> {
    let report = test
        .running()
        .check_consistency()
        .await
        .expect("consistency check runs");
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(report.sessions, report.user_index_entries, "{report:?}");
    assert_eq!(report.sessions, report.expiry_index_entries, "{report:?}");

    let listed = list_sessions(client, user, true).await;
    let mut states = BTreeMap::new();
    for session in &listed {
        let state = session.state();
        assert!(
            states.insert(session.session_id.clone(), state).is_none(),
            "session {} listed twice",
            session.session_id
        );
        assert!(
            matches!(state, SessionState::Active | SessionState::Revoked),
            "session {} is {state:?}; nothing expires in this test",
            session.session_id
        );
    }
    assert_eq!(
        states.keys().collect::<BTreeSet<_>>(),
        newest_tokens.keys().collect::<BTreeSet<_>>(),
        "the list shows exactly the user's sessions"
    );

    let active: BTreeSet<String> = list_sessions(client, user, false)
        .await
        .into_iter()
        .map(|session| session.session_id)
        .collect();
    for (id, state) in &states {
        assert_eq!(
            active.contains(id),
            *state == SessionState::Active,
            "session {id} is {state:?} in one list and not the other"
        );
        let who = whoami(client, &newest_tokens[id]).await;
        match state {
            SessionState::Active => {
                let who = who.unwrap_or_else(|status| {
                    panic!("session {id} is ACTIVE but Whoami says {status:?}")
                });
                let listed = listed
                    .iter()
                    .find(|session| &session.session_id == id)
                    .expect("listed");
                assert_eq!(
                    session_of(&who.session).expires_at,
                    listed.expires_at,
                    "Whoami and the list disagree on the expiry of {id}"
                );
            }
            _ => {
                assert_code(who, Code::Unauthenticated);
            }
        }
    }
    states
}

on_backends!(concurrent_refreshes_of_one_token_let_exactly_one_succeed: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_refreshes_of_one_token_let_exactly_one_succeed() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;

    for _ in 0..3 {
        let started = start_session(&mut client, "alice").await;

        let winner = single_winner(refresh_race(&test, &started.refresh_token).await);

        assert_eq!(session_of(&winner.session).session_id, id_of(&started));
        assert_ne!(winner.session_token, started.session_token);
        assert_ne!(winner.refresh_token, started.refresh_token);
    }
}

on_backends!(losers_of_a_refresh_race_without_grace_revoke_the_session: sled, cluster; flavor = "multi_thread", worker_threads = 4);
/// Without grace, every loser presents a token the winner already rotated away, which
/// the contract calls reuse: so after the race the whole session is revoked, the
/// winner's new pair included.
async fn losers_of_a_refresh_race_without_grace_revoke_the_session() {
    let test = TestServer::with_config(NO_GRACE).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let winner = single_winner(refresh_race(&test, &started.refresh_token).await);

    assert_code(
        whoami(&mut client, &winner.session_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        refresh(&mut client, &winner.refresh_token).await,
        Code::Unauthenticated,
    );
    let listed = list_sessions(&mut client, "alice", true).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state(), SessionState::Revoked);
}

on_backends!(concurrent_refreshes_within_the_grace_window_all_get_one_pair: sled, cluster; flavor = "multi_thread", worker_threads = 4);
/// Within the grace window (default 30s) every concurrent Refresh with one token gets
/// the very same successor pair, and that pair stays valid.
async fn concurrent_refreshes_within_the_grace_window_all_get_one_pair() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let results = refresh_race(&test, &started.refresh_token).await;

    let pairs: BTreeSet<(String, String)> = results
        .into_iter()
        .map(|result| {
            let response = result.expect("every Refresh inside the grace window succeeds");
            (response.session_token, response.refresh_token)
        })
        .collect();
    assert_eq!(pairs.len(), 1, "one successor pair, not {}", pairs.len());
    let (session_token, refresh_token) = pairs.into_iter().next().expect("one pair");
    let who = whoami_ok(&mut client, &session_token).await;
    assert_eq!(session_of(&who.session).session_id, id_of(&started));
    refresh_ok(&mut client, &refresh_token).await;
}

/// One racing call on the user's sessions: what it was and how it ended.
#[derive(Debug)]
enum Outcome {
    Extend(Result<bool, Code>),
    RefreshAll(Result<u32, Code>),
    Logout(Result<u32, Code>),
    Refresh(Result<String, Code>),
}

/// Extend on every session (twice), RefreshAllForUser, single Logouts by id and by
/// token on `singles`, one Logout of all sessions of the user (but `except`, if given),
/// and a chain of Refreshes on `chain` (the first session): all released together.
/// Returns every outcome and the newest session token of the refresh chain.
async fn user_wide_race(
    test: &TestServer,
    started: &[StartResponse],
    singles: &[usize],
    except: Option<usize>,
) -> (Vec<Outcome>, String) {
    let mut calls: Vec<std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>> = Vec::new();
    for round in 0..2 {
        for (i, session) in started.iter().enumerate() {
            let mut client = test.client().await;
            let id = id_of(session);
            let keep_alive = Some(HOUR * (1 + (i as i64 + round) % 3));
            calls.push(Box::pin(async move {
                Outcome::Extend(
                    extend(&mut client, &id, keep_alive)
                        .await
                        .map(|r| r.extended)
                        .map_err(|s| s.code()),
                )
            }));
        }
    }
    for keep_alive in [None, Some(2 * HOUR), Some(3 * HOUR)] {
        let mut client = test.client().await;
        calls.push(Box::pin(async move {
            Outcome::RefreshAll(
                refresh_all(&mut client, "alice", keep_alive)
                    .await
                    .map(|r| r.refreshed_count)
                    .map_err(|s| s.code()),
            )
        }));
    }
    for (n, &i) in singles.iter().enumerate() {
        let mut client = test.client().await;
        let request = if n % 2 == 0 {
            LogoutRequest {
                session_id: id_of(&started[i]),
                ..Default::default()
            }
        } else {
            LogoutRequest {
                session_token: started[i].session_token.clone(),
                ..Default::default()
            }
        };
        calls.push(Box::pin(async move {
            Outcome::Logout(
                logout(&mut client, request)
                    .await
                    .map(|r| r.revoked_count)
                    .map_err(|s| s.code()),
            )
        }));
    }
    {
        let mut client = test.client().await;
        let request = LogoutRequest {
            session_id: id_of(&started[SESSIONS - 1]),
            all_for_user: true,
            except_session_id: except.map(|i| id_of(&started[i])).unwrap_or_default(),
            ..Default::default()
        };
        calls.push(Box::pin(async move {
            Outcome::Logout(
                logout(&mut client, request)
                    .await
                    .map(|r| r.revoked_count)
                    .map_err(|s| s.code()),
            )
        }));
    }
    let chain_start = started[0].refresh_token.clone();
    let mut chain_client = test.client().await;

    let barrier = Arc::new(Barrier::new(calls.len() + 1));
    let mut tasks = JoinSet::new();
    for call in calls {
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            call.await
        });
    }
    let chain = tokio::spawn({
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            let mut outcomes = Vec::new();
            let mut token = chain_start;
            let mut newest_session_token = None;
            for _ in 0..6 {
                match refresh(&mut chain_client, &token).await {
                    Ok(response) => {
                        token = response.refresh_token;
                        newest_session_token = Some(response.session_token.clone());
                        outcomes.push(Outcome::Refresh(Ok(response.session_token)));
                    }
                    Err(status) => {
                        outcomes.push(Outcome::Refresh(Err(status.code())));
                        break;
                    }
                }
            }
            (outcomes, newest_session_token)
        }
    });
    let mut outcomes = tasks.join_all().await;
    let (chain_outcomes, newest) = chain.await.expect("refresh chain task");
    outcomes.extend(chain_outcomes);
    (
        outcomes,
        newest.unwrap_or_else(|| started[0].session_token.clone()),
    )
}

/// Checks each racing call's answer is one the contract allows in this race, and
/// returns the sum of the Logouts' revoked counts.
#[track_caller]
fn revoked_total(outcomes: &[Outcome]) -> u32 {
    let mut revoked = 0;
    for outcome in outcomes {
        match outcome {
            Outcome::Extend(Ok(_)) | Outcome::Extend(Err(Code::FailedPrecondition)) => {}
            Outcome::RefreshAll(Ok(_)) | Outcome::RefreshAll(Err(Code::NotFound)) => {}
            Outcome::Logout(Ok(count)) => revoked += count,
            // A revoked session's refresh token is refused.
            Outcome::Refresh(Ok(_)) | Outcome::Refresh(Err(Code::Unauthenticated)) => {}
            other => panic!("answer not allowed in this race: {other:?}"),
        }
    }
    revoked
}

on_backends!(concurrent_extend_logout_all_and_refresh_all_leave_every_session_revoked: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_extend_logout_all_and_refresh_all_leave_every_session_revoked() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_sessions(&mut client, "alice").await;

    let (outcomes, newest_first_token) = user_wide_race(&test, &started, &[1, 2, 3, 4], None).await;

    assert_eq!(
        revoked_total(&outcomes),
        SESSIONS as u32,
        "each session is revoked by exactly one Logout: {outcomes:?}"
    );
    let mut tokens: BTreeMap<String, String> = started
        .iter()
        .map(|s| (id_of(s), s.session_token.clone()))
        .collect();
    tokens.insert(id_of(&started[0]), newest_first_token);
    let states = assert_consistent(&test, &mut client, "alice", &tokens).await;
    assert!(
        states.values().all(|state| *state == SessionState::Revoked),
        "{states:?}"
    );
}

on_backends!(concurrent_logout_all_but_one_keeps_exactly_that_session: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn concurrent_logout_all_but_one_keeps_exactly_that_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_sessions(&mut client, "alice").await;

    let (outcomes, newest_kept_token) = user_wide_race(&test, &started, &[2, 3, 4], Some(0)).await;

    assert_eq!(
        revoked_total(&outcomes),
        SESSIONS as u32 - 1,
        "each other session is revoked by exactly one Logout: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|outcome| !matches!(outcome, Outcome::Refresh(Err(_)))),
        "the kept session's refresh chain never fails: {outcomes:?}"
    );
    let mut tokens: BTreeMap<String, String> = started
        .iter()
        .map(|s| (id_of(s), s.session_token.clone()))
        .collect();
    tokens.insert(id_of(&started[0]), newest_kept_token);
    let states = assert_consistent(&test, &mut client, "alice", &tokens).await;
    for (id, state) in &states {
        let expected = if *id == id_of(&started[0]) {
            SessionState::Active
        } else {
            SessionState::Revoked
        };
        assert_eq!(*state, expected, "session {id}");
    }
}

on_backends!(sessions_started_during_logout_all_end_active_or_revoked_consistently: sled, cluster; flavor = "multi_thread", worker_threads = 4);
async fn sessions_started_during_logout_all_end_active_or_revoked_consistently() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let before = start_sessions(&mut client, "alice").await;
    let logout_target = id_of(&before[0]);

    let results = race(&test, |i, mut client| {
        let target = logout_target.clone();
        async move {
            // Every fourth racer logs the user out everywhere; the others log in.
            if i % 4 == 0 {
                logout(
                    &mut client,
                    LogoutRequest {
                        session_id: target,
                        all_for_user: true,
                        ..Default::default()
                    },
                )
                .await
                .map(|_| None)
            } else {
                client
                    .start(start_request("alice"))
                    .await
                    .map(|r| Some(r.into_inner()))
            }
        }
    })
    .await;

    let mut tokens: BTreeMap<String, String> = before
        .iter()
        .map(|s| (id_of(s), s.session_token.clone()))
        .collect();
    for result in results {
        if let Some(started) = result.expect("start and logout succeed") {
            tokens.insert(id_of(&started), started.session_token);
        }
    }
    let states = assert_consistent(&test, &mut client, "alice", &tokens).await;
    for session in &before {
        assert_eq!(states[&id_of(session)], SessionState::Revoked);
    }
}
