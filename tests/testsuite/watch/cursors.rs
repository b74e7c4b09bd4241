//! Where a watch starts and how it resumes: without a cursor, from a cursor (replay,
//! then caught up, then live), after a disconnect or a restart, with a user filter.

use super::*;

on_backends!(a_watch_without_cursor_starts_with_caught_up_at_the_head: sled, redis, cluster);
async fn a_watch_without_cursor_starts_with_caught_up_at_the_head() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    let head = head_cursor(&mut client).await;

    let mut events = watch_ok(&mut client, None, "").await;

    assert_eq!(expect_caught_up(&mut events).await, head);
}

on_backends!(a_watch_without_cursor_gets_only_later_events: sled, redis, cluster);
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

on_backends!(a_watch_with_cursor_replays_then_sends_caught_up_at_the_last_event: sled, redis, cluster);
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

on_backends!(live_events_follow_the_replay: sled, redis, cluster);
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

on_backends!(caught_up_is_never_sent_twice_for_one_cursor: sled, redis, cluster);
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

on_backends!(a_cursor_ahead_of_the_log_is_invalid_argument: sled, redis, cluster);
async fn a_cursor_ahead_of_the_log_is_invalid_argument() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let head = head_cursor(&mut client).await;

    let status = watch_error(&mut client, Some(head + 1), "").await;

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

on_backends!(a_cursor_at_the_head_is_accepted: sled, redis, cluster);
async fn a_cursor_at_the_head_is_accepted() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    let head = head_cursor(&mut client).await;

    let mut events = watch_ok(&mut client, Some(head), "").await;

    assert_eq!(expect_caught_up(&mut events).await, head);
}

// --- resume ------------------------------------------------------------------------------

on_backends!(resume_after_disconnect_misses_nothing_and_repeats_nothing: sled, redis, cluster);
async fn resume_after_disconnect_misses_nothing_and_repeats_nothing() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "").await;
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

on_backends!(a_live_watcher_under_concurrent_writes_misses_nothing: sled, redis, cluster; flavor = "multi_thread", worker_threads = 4);
async fn a_live_watcher_under_concurrent_writes_misses_nothing() {
    let test = TestServer::start().await;
    let mut events = live_watch(&test, "").await;
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

on_backends!(resume_after_a_restart_misses_nothing: sled, redis, cluster);
async fn resume_after_a_restart_misses_nothing() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "").await;
    start_session(&mut client, "a").await;
    let last = next_session_events(&mut events, 1).await.remove(0).cursor;

    test.restart().await;
    let mut client = test.client().await;
    let after_restart = start_session(&mut client, "b").await;

    assert_replays_only_the_start_of(&mut client, last, &after_restart).await;
}

on_backends!(watchers_get_unavailable_when_the_server_stops: sled, redis, cluster);
async fn watchers_get_unavailable_when_the_server_stops() {
    let mut test = TestServer::start().await;
    let mut events = live_watch(&test, "").await;

    let (stopped, end) = tokio::join!(
        tokio::time::timeout(STREAM_WAIT, test.stop()),
        next_item(&mut events)
    );

    stopped.expect("the server stops although a watcher is connected");
    assert_code(end, Code::Unavailable);
}

// --- filter by user ----------------------------------------------------------------------

on_backends!(a_user_filter_passes_only_that_users_events: sled, redis, cluster);
async fn a_user_filter_passes_only_that_users_events() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "alice").await;

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

on_backends!(a_user_filter_replay_ends_with_caught_up_at_the_log_head: sled, redis, cluster);
async fn a_user_filter_replay_ends_with_caught_up_at_the_log_head() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let alices = start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    let head = head_cursor(&mut client).await;

    let mut events = watch_ok(&mut client, Some(0), "alice").await;

    let (replayed, caught_up) = events_until_caught_up(&mut events).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![(Kind::Started, id_of(&alices))]
    );
    assert_eq!(caught_up, head);
}
