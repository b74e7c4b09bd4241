//! WatchSessions helpers: opening a watch, reading items, events and CAUGHT_UP with
//! bounded waits.

use super::*;

/// How long a test waits for one item of a stream before it fails (instead of hanging).
pub const STREAM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The stream WatchSessions answers with.
pub type Events = tonic::Streaming<sessiond::proto::session::v1::SessionEvent>;

/// A WatchSessions request; `user_id` "" means every user.
pub fn watch_request(
    after_cursor: Option<u64>,
    user_id: &str,
) -> sessiond::proto::session::v1::WatchSessionsRequest {
    sessiond::proto::session::v1::WatchSessionsRequest {
        after_cursor,
        user_id: user_id.to_owned(),
    }
}

/// Opens a WatchSessions stream (the call itself may fail).
pub async fn watch_sessions(
    client: &mut Client,
    after_cursor: Option<u64>,
    user_id: &str,
) -> Result<Events, Status> {
    tokio::time::timeout(
        STREAM_WAIT,
        client.watch_sessions(watch_request(after_cursor, user_id)),
    )
    .await
    .expect("WatchSessions answers within the stream wait")
    .map(tonic::Response::into_inner)
}

/// Opens a WatchSessions stream, expecting the call to succeed.
pub async fn watch_ok(client: &mut Client, after_cursor: Option<u64>, user_id: &str) -> Events {
    watch_sessions(client, after_cursor, user_id)
        .await
        .expect("WatchSessions succeeds")
}

/// The next item of a stream: an event, its end (None) or its error status. Panics if
/// nothing comes within `STREAM_WAIT`.
pub async fn next_item(
    events: &mut Events,
) -> Result<Option<sessiond::proto::session::v1::SessionEvent>, Status> {
    tokio::time::timeout(STREAM_WAIT, events.message())
        .await
        .expect("the watch stream yields an item within the stream wait")
}

/// The next event of a stream (CAUGHT_UP markers included), expecting one.
pub async fn next_event(events: &mut Events) -> sessiond::proto::session::v1::SessionEvent {
    match next_item(events).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the watch stream ended; expected an event"),
        Err(status) => panic!(
            "the watch stream failed with {:?} ({}); expected an event",
            status.code(),
            status.message()
        ),
    }
}

/// The kind of an event (UNSPECIFIED for an unknown number).
pub fn kind_of(
    event: &sessiond::proto::session::v1::SessionEvent,
) -> sessiond::proto::session::v1::SessionEventKind {
    sessiond::proto::session::v1::SessionEventKind::try_from(event.kind).unwrap_or_default()
}

/// Whether an event is a CAUGHT_UP marker.
pub fn is_caught_up(event: &sessiond::proto::session::v1::SessionEvent) -> bool {
    kind_of(event) == sessiond::proto::session::v1::SessionEventKind::CaughtUp
}

/// The next item, expecting a CAUGHT_UP marker; returns its cursor.
pub async fn expect_caught_up(events: &mut Events) -> u64 {
    let event = next_event(events).await;
    assert!(
        is_caught_up(&event),
        "expected a CAUGHT_UP marker, got {event:?}"
    );
    event.cursor
}

/// How long a test collects a run of stream items before it fails (so an endless stream
/// of unexpected items fails too, instead of hanging).
pub const COLLECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The next `n` session events, skipping CAUGHT_UP markers.
pub async fn next_session_events(
    events: &mut Events,
    n: usize,
) -> Vec<sessiond::proto::session::v1::SessionEvent> {
    let collect = async {
        let mut found = Vec::with_capacity(n);
        while found.len() < n {
            let event = next_event(events).await;
            if !is_caught_up(&event) {
                found.push(event);
            }
        }
        found
    };
    tokio::time::timeout(COLLECT_WAIT, collect)
        .await
        .unwrap_or_else(|_| panic!("{n} session events within the collect wait"))
}

/// The session events up to the next CAUGHT_UP marker, and that marker's cursor.
pub async fn events_until_caught_up(
    events: &mut Events,
) -> (Vec<sessiond::proto::session::v1::SessionEvent>, u64) {
    let collect = async {
        let mut found = Vec::new();
        loop {
            let event = next_event(events).await;
            if is_caught_up(&event) {
                return (found, event.cursor);
            }
            found.push(event);
        }
    };
    tokio::time::timeout(COLLECT_WAIT, collect)
        .await
        .expect("a CAUGHT_UP marker within the collect wait")
}

/// Every event still in the log (a watch from cursor 0 up to its CAUGHT_UP marker).
pub async fn event_log(client: &mut Client) -> Vec<sessiond::proto::session::v1::SessionEvent> {
    let mut events = watch_ok(client, Some(0), "").await;
    events_until_caught_up(&mut events).await.0
}

/// The status a watch fails with: the call's own, or the first item's. Panics if the
/// stream yields an event or ends cleanly instead.
pub async fn watch_error(client: &mut Client, after_cursor: Option<u64>, user_id: &str) -> Status {
    match watch_sessions(client, after_cursor, user_id).await {
        Err(status) => status,
        Ok(mut events) => match next_item(&mut events).await {
            Err(status) => status,
            Ok(item) => panic!("expected the watch to fail, got {item:?}"),
        },
    }
}

/// A timestamp in milliseconds since the epoch.
pub fn ms_of(ts: Option<&prost_types::Timestamp>) -> i64 {
    let ts = ts.expect("timestamp is set");
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}
