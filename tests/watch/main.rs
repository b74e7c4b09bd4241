//! WatchSessions (the session event log: kinds and order, resume by cursor, user filter,
//! retention, stalled watchers, restarts) and Whoami's `cache_until` hint.

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/mod.rs"]
mod support;

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
