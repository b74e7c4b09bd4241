//! Stalled watchers: cut off without blocking writes, buffering without bound or
//! holding up the server's stop, and able to resume without gaps.

use super::*;

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

on_backends!(a_stalled_watcher_neither_blocks_writes_nor_buffers_without_bound: sled, redis, cluster; flavor = "multi_thread", worker_threads = 4);
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

on_backends!(a_cut_off_watcher_resumes_without_gaps_or_duplicates: sled, redis, cluster; flavor = "multi_thread", worker_threads = 4);
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

on_backends!(a_stalled_watcher_does_not_hold_up_the_server_stop: sled, redis, cluster; flavor = "multi_thread", worker_threads = 4);
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
