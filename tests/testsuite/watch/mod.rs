//! WatchSessions (the session event log: kinds and order, resume by cursor, user filter,
//! retention, stalled watchers, restarts) and Whoami's `cache_until` hint.

use crate::common;
use crate::support;

mod cache_hint;
mod cursors;
mod kinds;
mod retention;
mod stalls;

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

/// The cursor of the newest event in the log.
async fn head_cursor(client: &mut Client) -> u64 {
    event_log(client).await.last().expect("an event").cursor
}

/// The events a watch from `after_cursor` replays before CAUGHT_UP, checked to be the
/// STARTED event of `started` alone.
async fn assert_replays_only_the_start_of(
    client: &mut Client,
    after_cursor: u64,
    started: &sessiond::proto::session::v1::StartResponse,
) -> Vec<SessionEvent> {
    let mut events = watch_ok(client, Some(after_cursor), "").await;
    let (replayed, _) = events_until_caught_up(&mut events).await;
    assert_eq!(
        kinds_and_ids(&replayed),
        vec![(Kind::Started, id_of(started))]
    );
    replayed
}

/// A watch of `user_id`'s events (all with ""), on a connection of its own, read past
/// its first CAUGHT_UP: what it gets next is live.
async fn live_watch(test: &TestServer, user_id: &str) -> Events {
    let mut events = watch_ok(&mut test.client().await, None, user_id).await;
    expect_caught_up(&mut events).await;
    events
}
