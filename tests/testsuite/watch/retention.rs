//! Retention and restarts: pruned cursors are OUT_OF_RANGE, kept events survive the
//! sweep, and the log and its sequence outlive a restart.

use super::*;

on_backends!(a_cursor_older_than_the_retention_is_out_of_range: sled, redis, cluster);
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

on_backends!(cursor_zero_is_out_of_range_once_the_log_was_pruned: sled, redis, cluster);
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

on_backends!(the_cursor_of_the_last_pruned_event_still_resumes: sled, redis, cluster);
async fn the_cursor_of_the_last_pruned_event_still_resumes() {
    let test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    start_session(&mut client, "a").await;
    let last_old = head_cursor(&mut client).await;
    test.advance(secs(2 * HOUR));
    let kept = start_session(&mut client, "b").await;
    test.running().sweep_now().await.expect("sweep");

    assert_replays_only_the_start_of(&mut client, last_old, &kept).await;
}

on_backends!(events_inside_the_retention_survive_the_sweep: sled, redis, cluster);
async fn events_inside_the_retention_survive_the_sweep() {
    let test = TestServer::with_config(ONE_HOUR_RETENTION).await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "a").await;
    test.advance(secs(30 * MINUTE));
    test.running().sweep_now().await.expect("sweep");

    let log = event_log(&mut client).await;

    assert_eq!(kinds_and_ids(&log), vec![(Kind::Started, id_of(&started))]);
}

on_backends!(the_default_retention_is_a_day: sled, redis, cluster);
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

on_backends!(restart_keeps_the_log: sled, redis, cluster);
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

on_backends!(restart_continues_the_sequence: sled, redis, cluster);
async fn restart_continues_the_sequence() {
    let mut test = TestServer::start().await;
    let mut client = test.client().await;
    start_session(&mut client, "alice").await;
    start_session(&mut client, "bob").await;
    let head = head_cursor(&mut client).await;

    test.restart().await;
    let mut client = test.client().await;
    let mut events = watch_ok(&mut client, None, "").await;
    assert_eq!(expect_caught_up(&mut events).await, head);
    start_session(&mut client, "carol").await;

    let next = next_session_events(&mut events, 1).await.remove(0);
    assert!(next.cursor > head, "{} after {head}", next.cursor);
}

on_backends!(restart_after_pruning_the_whole_log_continues_the_sequence: sled, redis, cluster);
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

    let replayed = assert_replays_only_the_start_of(&mut client, old[1].cursor, &fresh).await;
    assert!(replayed[0].cursor > old[1].cursor);
    let status = watch_error(&mut client, Some(old[0].cursor), "").await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}
