//! WatchSessions (the session event log: kinds and order, resume by cursor, user filter,
//! retention, stalled watchers, restarts) and Whoami's `cache_until` hint.

mod common;
mod support;

use std::collections::HashSet;
use std::time::Duration;

use common::{TestServer, START_MS};
use sessiond::proto::session::v1::{SessionEvent, SessionEventKind as Kind};
use support::*;
use tonic::Code;

/// Events older than an hour are pruned by the sweeper.
const ONE_HOUR_RETENTION: &str = "event_retention = \"1h\"";

/// (kind, session id) of each event, for comparing sequences.
fn kinds_and_ids(events: &[SessionEvent]) -> Vec<(Kind, String)> {
    events
        .iter()
        .map(|event| (kind_of(event), event.session_id.clone()))
        .collect()
}

/// The cursors of a run of events.
fn cursors(events: &[SessionEvent]) -> Vec<u64> {
    events.iter().map(|event| event.cursor).collect()
}

#[track_caller]
fn assert_strictly_increasing(cursors: &[u64]) {
    assert!(
        cursors.windows(2).all(|pair| pair[0] < pair[1]),
        "cursors must strictly increase: {cursors:?}"
    );
}

fn id_of(response: &sessiond::proto::session::v1::StartResponse) -> String {
    session_of(&response.session).session_id.clone()
}

// --- event kinds and order -------------------------------------------------------------

#[tokio::test]
async fn watch_delivers_every_kind_of_event_in_order() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;

    let first = start_session(&mut client, "alice").await;
    let first_id = id_of(&first);
    let refreshed = refresh_ok(&mut client, &first.refresh_token).await;
    test.advance(secs(1));
    assert!(extend_ok(&mut client, &first_id).await.extended);
    assert_eq!(logout_token(&mut client, &refreshed.session_token).await, 1);
    let short = start_session_with_ttl(&mut client, "alice", MINUTE).await;
    test.advance(secs(MINUTE + 1));
    test.running().sweep_now().await.expect("sweep");
    let stolen = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &stolen.refresh_token).await;
    test.advance(secs(MINUTE)); // past the default 30 s grace window
    assert_code(
        refresh(&mut client, &stolen.refresh_token).await,
        Code::Unauthenticated,
    );

    let seen = next_session_events(&mut events, 9).await;
    assert_eq!(
        kinds_and_ids(&seen),
        vec![
            (Kind::Started, first_id.clone()),
            (Kind::Refreshed, first_id.clone()),
            (Kind::Extended, first_id.clone()),
            (Kind::Revoked, first_id),
            (Kind::Started, id_of(&short)),
            (Kind::Expired, id_of(&short)),
            (Kind::Started, id_of(&stolen)),
            (Kind::Refreshed, id_of(&stolen)),
            (Kind::ReuseDetected, id_of(&stolen)),
        ]
    );
    assert_strictly_increasing(&cursors(&seen));
    assert!(
        seen.iter().all(|event| event.user_id == "alice"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn event_times_come_from_the_server_clock() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;

    let started = start_session(&mut client, "alice").await;
    test.advance(secs(90));
    logout_token(&mut client, &started.session_token).await;

    let seen = next_session_events(&mut events, 2).await;
    assert_eq!(ms_of(seen[0].at.as_ref()), START_MS as i64);
    assert_eq!(ms_of(seen[1].at.as_ref()), START_MS as i64 + 90_000);
}

#[tokio::test]
async fn eviction_by_the_session_limit_is_a_revoked_event() {
    let test = TestServer::with_config("[groups.default]\nmax_sessions_per_user = 1").await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;

    let oldest = start_session(&mut client, "alice").await;
    test.advance(secs(1));
    let newest = start_session(&mut client, "alice").await;

    let seen = next_session_events(&mut events, 3).await;
    assert_eq!(
        kinds_and_ids(&seen),
        vec![
            (Kind::Started, id_of(&oldest)),
            (Kind::Revoked, id_of(&oldest)),
            (Kind::Started, id_of(&newest)),
        ]
    );
}

#[tokio::test]
async fn refresh_all_for_user_is_one_extended_event_per_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;
    let one = start_session(&mut client, "alice").await;
    let two = start_session(&mut client, "alice").await;
    next_session_events(&mut events, 2).await;

    test.advance(secs(1));
    let response = refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");
    assert_eq!(response.refreshed_count, 2);

    let seen = next_session_events(&mut events, 2).await;
    assert!(seen.iter().all(|event| kind_of(event) == Kind::Extended));
    let mut ids: Vec<String> = seen.iter().map(|e| e.session_id.clone()).collect();
    ids.sort();
    let mut expected = vec![id_of(&one), id_of(&two)];
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn an_event_is_in_the_log_when_its_call_returns() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;

    let log = event_log(&mut client).await;
    assert_eq!(kinds_and_ids(&log), vec![(Kind::Started, id_of(&started))]);
}

#[tokio::test]
async fn calls_that_change_nothing_log_no_event() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    whoami_ok(&mut client, &started.session_token).await;
    assert!(!extend_ok(&mut client, &id_of(&started)).await.extended);
    assert_eq!(logout_id(&mut client, &id_of(&started)).await, 1);
    assert_eq!(logout_id(&mut client, &id_of(&started)).await, 0);

    let kinds: Vec<Kind> = event_log(&mut client).await.iter().map(kind_of).collect();
    assert_eq!(kinds, vec![Kind::Started, Kind::Revoked]);
}

// --- CAUGHT_UP and cursors -------------------------------------------------------------

#[tokio::test]
async fn a_watch_without_cursor_starts_with_caught_up_at_the_head() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    let head = event_log(&mut client)
        .await
        .last()
        .expect("two events")
        .cursor;

    let mut events = watch_ok(&mut client, None, "").await;

    assert_eq!(expect_caught_up(&mut events).await, head);
}

#[tokio::test]
async fn a_watch_without_cursor_gets_only_later_events() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    let head = expect_caught_up(&mut events).await;

    let later = start_session(&mut client, "bob").await;

    let event = next_event(&mut events).await;
    assert_eq!(
        (kind_of(&event), event.session_id),
        (Kind::Started, id_of(&later))
    );
    assert!(event.cursor > head);
}

#[tokio::test]
async fn a_watch_with_cursor_replays_then_sends_caught_up_at_the_last_event() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let ids: Vec<String> = [
        start_session(&mut client, "a").await,
        start_session(&mut client, "b").await,
        start_session(&mut client, "c").await,
    ]
    .iter()
    .map(id_of)
    .collect();
    let log = event_log(&mut client).await;

    let mut events = watch_ok(&mut client, Some(log[0].cursor), "").await;

    let (replayed, caught_up) = events_until_caught_up(&mut events).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![
            (Kind::Started, ids[1].clone()),
            (Kind::Started, ids[2].clone())
        ]
    );
    assert_eq!(caught_up, log[2].cursor);
}

#[tokio::test]
async fn live_events_follow_the_replay() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    let mut events = watch_ok(&mut test.client().await, Some(0), "").await;
    let (replayed, _) = events_until_caught_up(&mut events).await;
    assert_eq!(replayed.len(), 1);

    let live = start_session(&mut client, "b").await;

    let event = next_session_events(&mut events, 1).await.remove(0);
    assert_eq!(
        (kind_of(&event), event.session_id),
        (Kind::Started, id_of(&live))
    );
}

/// The items of a stream up to and including the event of session `id` (CAUGHT_UP
/// markers included).
async fn items_through(events: &mut Events, id: &str) -> Vec<SessionEvent> {
    let collect = async {
        let mut items = Vec::new();
        loop {
            let event = next_event(events).await;
            let done = event.session_id == id;
            items.push(event);
            if done {
                return items;
            }
        }
    };
    tokio::time::timeout(COLLECT_WAIT, collect)
        .await
        .expect("the session's event within the collect wait")
}

#[tokio::test]
async fn caught_up_is_never_sent_twice_for_one_cursor() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    let mut items = vec![next_event(&mut events).await];

    for user in ["a", "b", "c"] {
        let started = start_session(&mut client, user).await;
        // A Whoami that touches last_access_at writes the record but logs no event.
        test.advance(secs(2 * MINUTE));
        whoami_ok(&mut client, &started.session_token).await;
    }
    let last = start_session(&mut client, "d").await;
    items.extend(items_through(&mut events, &id_of(&last)).await);

    let markers: Vec<u64> = items
        .iter()
        .filter(|event| is_caught_up(event))
        .map(|event| event.cursor)
        .collect();
    assert_strictly_increasing(&markers);
}

#[tokio::test]
async fn a_cursor_ahead_of_the_log_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let head = event_log(&mut client)
        .await
        .last()
        .expect("one event")
        .cursor;

    let status = watch_error(&mut client, Some(head + 1), "").await;

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn a_cursor_at_the_head_is_accepted() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let head = event_log(&mut client)
        .await
        .last()
        .expect("one event")
        .cursor;

    let mut events = watch_ok(&mut client, Some(head), "").await;

    assert_eq!(expect_caught_up(&mut events).await, head);
}

// --- resume ------------------------------------------------------------------------------

#[tokio::test]
async fn resume_after_disconnect_misses_nothing_and_repeats_nothing() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;
    start_session(&mut client, "a").await;
    start_session(&mut client, "b").await;
    let before = next_session_events(&mut events, 2).await;
    drop(events);

    let mut missed = Vec::new();
    for user in ["c", "d", "e"] {
        missed.push((
            Kind::Started,
            id_of(&start_session(&mut client, user).await),
        ));
    }
    let mut resumed = watch_ok(
        &mut test.client().await,
        Some(before.last().expect("two events").cursor),
        "",
    )
    .await;

    let (replayed, _) = events_until_caught_up(&mut resumed).await;
    assert_eq!(kinds_and_ids(&replayed), missed);
    let mut all = before.clone();
    all.extend(replayed);
    assert_strictly_increasing(&cursors(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_watcher_under_concurrent_writes_misses_nothing() {
    let test = TestServer::start().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;
    let reading = tokio::spawn(async move { next_session_events(&mut events, 200).await });

    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut client = test.client().await;
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..50 {
                ids.push(id_of(
                    &start_session(&mut client, &format!("w{writer}")).await,
                ));
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer task"));
    }
    let seen = reading.await.expect("reader task");

    assert_strictly_increasing(&cursors(&seen));
    let seen_ids: HashSet<String> = seen.iter().map(|e| e.session_id.clone()).collect();
    assert_eq!(seen_ids, written);
}

#[tokio::test]
async fn resume_after_a_restart_misses_nothing() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;
    start_session(&mut client, "a").await;
    let last = next_session_events(&mut events, 1).await.remove(0).cursor;

    test.restart().await;
    let mut client = test.client().await;
    let after_restart = start_session(&mut client, "b").await;
    let mut resumed = watch_ok(&mut client, Some(last), "").await;

    let (replayed, _) = events_until_caught_up(&mut resumed).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![(Kind::Started, id_of(&after_restart))]
    );
}

#[tokio::test]
async fn watchers_get_unavailable_when_the_server_stops() {
    let mut test = TestServer::start().await;
    let mut events = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut events).await;

    let (stopped, end) = tokio::join!(
        tokio::time::timeout(STREAM_WAIT, test.stop()),
        next_item(&mut events)
    );

    stopped.expect("the server stops although a watcher is connected");
    assert_code(end, Code::Unavailable);
}

// --- filter by user ----------------------------------------------------------------------

#[tokio::test]
async fn a_user_filter_passes_only_that_users_events() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut test.client().await, None, "alice").await;
    expect_caught_up(&mut events).await;

    start_session(&mut client, "bob").await;
    let first = start_session(&mut client, "alice").await;
    let bobs = start_session(&mut client, "bob").await;
    logout_token(&mut client, &bobs.session_token).await;
    logout_token(&mut client, &first.session_token).await;

    let seen = next_session_events(&mut events, 2).await;
    assert_eq!(
        kinds_and_ids(&seen),
        vec![
            (Kind::Started, id_of(&first)),
            (Kind::Revoked, id_of(&first))
        ]
    );
    assert!(seen.iter().all(|event| event.user_id == "alice"));
}

#[tokio::test]
async fn a_user_filter_replay_ends_with_caught_up_at_the_log_head() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let alices = start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    let head = event_log(&mut client)
        .await
        .last()
        .expect("two events")
        .cursor;

    let mut events = watch_ok(&mut client, Some(0), "alice").await;

    let (replayed, caught_up) = events_until_caught_up(&mut events).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![(Kind::Started, id_of(&alices))]
    );
    assert_eq!(caught_up, head);
}

// --- retention ---------------------------------------------------------------------------

#[tokio::test]
async fn a_cursor_older_than_the_retention_is_out_of_range() {
    let test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    start_session(&mut client, "b").await;
    let old = event_log(&mut client).await;
    test.advance(secs(2 * HOUR));
    start_session(&mut client, "c").await;
    test.running().sweep_now().await.expect("sweep");

    let status = watch_error(&mut client, Some(old[0].cursor), "").await;

    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

#[tokio::test]
async fn cursor_zero_is_out_of_range_once_the_log_was_pruned() {
    let test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    test.advance(secs(2 * HOUR));
    start_session(&mut client, "b").await;
    test.running().sweep_now().await.expect("sweep");

    let status = watch_error(&mut client, Some(0), "").await;

    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

#[tokio::test]
async fn the_cursor_of_the_last_pruned_event_still_resumes() {
    let test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    let last_old = event_log(&mut client)
        .await
        .last()
        .expect("one event")
        .cursor;
    test.advance(secs(2 * HOUR));
    let kept = start_session(&mut client, "b").await;
    test.running().sweep_now().await.expect("sweep");

    let mut events = watch_ok(&mut client, Some(last_old), "").await;

    let (replayed, _) = events_until_caught_up(&mut events).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![(Kind::Started, id_of(&kept))]
    );
}

#[tokio::test]
async fn events_inside_the_retention_survive_the_sweep() {
    let test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "a").await;
    test.advance(secs(30 * MINUTE));
    test.running().sweep_now().await.expect("sweep");

    let log = event_log(&mut client).await;

    assert_eq!(kinds_and_ids(&log), vec![(Kind::Started, id_of(&started))]);
}

#[tokio::test]
async fn the_default_retention_is_a_day() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    let first = event_log(&mut client).await[0].cursor;

    test.advance(secs(DAY - MINUTE));
    test.running().sweep_now().await.expect("sweep");
    assert_eq!(event_log(&mut client).await.len(), 1, "kept inside a day");

    test.advance(secs(2 * MINUTE));
    start_session(&mut client, "b").await;
    test.running().sweep_now().await.expect("sweep");
    let status = watch_error(&mut client, Some(first - 1), "").await; // before the first
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

// --- restart -----------------------------------------------------------------------------

#[tokio::test]
async fn restart_keeps_the_log() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    logout_token(&mut client, &started.session_token).await;
    let before = event_log(&mut client).await;

    test.restart().await;

    let after = event_log(&mut test.client().await).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn restart_continues_the_sequence() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    let head = event_log(&mut client)
        .await
        .last()
        .expect("two events")
        .cursor;

    test.restart().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut client, None, "").await;
    assert_eq!(expect_caught_up(&mut events).await, head);
    start_session(&mut client, "carol").await;

    let next = next_session_events(&mut events, 1).await.remove(0);
    assert!(next.cursor > head, "{} after {head}", next.cursor);
}

#[tokio::test]
async fn restart_after_pruning_the_whole_log_continues_the_sequence() {
    let mut test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    start_session(&mut client, "b").await;
    let old = event_log(&mut client).await;
    test.advance(secs(2 * HOUR));
    test.running().sweep_now().await.expect("sweep");
    let status = watch_error(&mut client, Some(old[0].cursor), "").await;
    assert_eq!(status.code(), Code::OutOfRange, "pruned before the restart");

    test.restart().await;
    let mut client = test.client().await;
    let fresh = start_session(&mut client, "c").await;

    let mut events = watch_ok(&mut client, Some(old[1].cursor), "").await;
    let (replayed, _) = events_until_caught_up(&mut events).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![(Kind::Started, id_of(&fresh))]
    );
    assert!(replayed[0].cursor > old[1].cursor);
    let status = watch_error(&mut client, Some(old[0].cursor), "").await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

// --- slow watchers -----------------------------------------------------------------------

/// Starts `per_writer` sessions on each of `writers` connections at once, each with a
/// long user id (so that few events fill a watcher's buffers); returns their ids.
async fn start_many(test: &TestServer, writers: usize, per_writer: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let mut client = test.client().await;
        let user = format!("writer-{writer}-{}", "x".repeat(3000));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_writer);
            for _ in 0..per_writer {
                ids.push(id_of(&start_session(&mut client, &user).await));
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("writer task"));
    }
    ids
}

/// Every item of a stream until it ends, and how it ended.
async fn read_to_end(
    events: &mut Events,
) -> (
    Vec<SessionEvent>,
    Result<Option<SessionEvent>, tonic::Status>,
) {
    let collect = async {
        let mut items = Vec::new();
        loop {
            match next_item(events).await {
                Ok(Some(event)) => items.push(event),
                end => return (items, end),
            }
        }
    };
    tokio::time::timeout(COLLECT_WAIT, collect)
        .await
        .expect("the stream ends within the collect wait")
}

/// A stall timeout of 200 ms, and user ids long enough to make events large.
const STALL: &str = "watch_stall_timeout = \"200ms\"\n[limits]\nmax_user_id_bytes = 4096";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_watcher_neither_blocks_writes_nor_buffers_without_bound() {
    let test = TestServer::with_config(STALL).await;
    let mut stalled = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut stalled).await;

    // The watcher reads nothing while 2000 events (about 6 MB) are written.
    let written = tokio::time::timeout(Duration::from_secs(60), start_many(&test, 4, 500))
        .await
        .expect("writes finish while a watcher is stalled");
    assert_eq!(written.len(), 2000);
    // Leave the stalled stream alone well past its stall timeout.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (received, end) = read_to_end(&mut stalled).await;
    assert_code(end, Code::ResourceExhausted);
    let sessions = received.iter().filter(|e| !is_caught_up(e)).count();
    assert!(
        sessions < written.len(),
        "a cut-off watcher got only what its bounded buffers held, not all {} events",
        written.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_watcher_resumes_without_gaps_or_duplicates() {
    let test = TestServer::with_config(STALL).await;
    let mut stalled = watch_ok(&mut test.client().await, None, "").await;
    let first = expect_caught_up(&mut stalled).await;
    let written = tokio::time::timeout(Duration::from_secs(60), start_many(&test, 4, 500))
        .await
        .expect("writes finish while a watcher is stalled");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (items, end) = read_to_end(&mut stalled).await;
    assert_code(end, Code::ResourceExhausted);
    let last = items.last().map_or(first, |event| event.cursor);
    let mut received: Vec<SessionEvent> = items.into_iter().filter(|e| !is_caught_up(e)).collect();

    let mut resumed = watch_ok(&mut test.client().await, Some(last), "").await;
    let (rest, _) = events_until_caught_up(&mut resumed).await;

    received.extend(rest);
    assert_strictly_increasing(&cursors(&received));
    assert!(received.iter().all(|e| kind_of(e) == Kind::Started));
    let ids: Vec<String> = received.iter().map(|e| e.session_id.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event twice");
    let expected: HashSet<&String> = written.iter().collect();
    assert_eq!(unique, expected, "every written event, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_watcher_does_not_hold_up_the_server_stop() {
    let mut test = TestServer::with_config(STALL).await;
    let mut stalled = watch_ok(&mut test.client().await, None, "").await;
    expect_caught_up(&mut stalled).await;
    tokio::time::timeout(Duration::from_secs(60), start_many(&test, 4, 500))
        .await
        .expect("writes finish while a watcher is stalled");

    let stopped = tokio::time::timeout(STREAM_WAIT, test.stop()).await;

    assert!(
        stopped.is_ok(),
        "the server stops although a watcher reads nothing"
    );
    drop(stalled);
}

// --- Whoami cache_until ------------------------------------------------------------------

#[tokio::test]
async fn whoami_cache_until_is_at_most_whoami_cache_max_past_now() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(10 * MINUTE));

    let who = whoami_ok(&mut client, &started.session_token).await;

    let now = START_MS as i64 + 10 * MINUTE * 1000;
    let cache_until = ms_of(who.cache_until.as_ref());
    assert!(
        cache_until > now,
        "a hint in the past is useless: {cache_until}"
    );
    assert!(cache_until <= now + 5 * MINUTE * 1000, "{cache_until}");
}

#[tokio::test]
async fn whoami_cache_until_is_never_after_expiry() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", MINUTE).await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    let expires_at = ms_of(session_of(&who.session).expires_at.as_ref());
    assert!(ms_of(who.cache_until.as_ref()) <= expires_at);
}

#[tokio::test]
async fn whoami_cache_until_is_never_after_the_idle_deadline() {
    let test = TestServer::with_config("[groups.default]\nidle_timeout = \"2m\"").await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert!(ms_of(who.cache_until.as_ref()) <= START_MS as i64 + 2 * MINUTE * 1000);
}

#[tokio::test]
async fn whoami_cache_until_follows_the_configured_cap() {
    let test = TestServer::with_config("whoami_cache_max = \"1m\"").await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    let cache_until = ms_of(who.cache_until.as_ref());
    assert!(cache_until > START_MS as i64);
    assert!(
        cache_until <= START_MS as i64 + MINUTE * 1000,
        "{cache_until}"
    );
}
