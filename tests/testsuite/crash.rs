//! Crash safety: the real binary under concurrent Starts and Refreshes is killed with
//! SIGKILL at several points; on the same data dir every acknowledged call is still
//! there (newest tokens work, rotated ones do not), the indexes agree with the records,
//! and a restarted server stops gracefully with exit status 0.

use crate::support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond::proto::session::v1::session_service_client::SessionServiceClient;
use sessiond::store::sled::SledStore;
use sessiond::store::{Durability, EventKind, EventLog, EventsAfter, Maintenance, SessionRecords};
use support::*;
use tonic::transport::Channel;
use tonic::Code;

/// Concurrent callers while the server runs.
const WORKERS: usize = 8;

/// Refreshes per session before a worker starts its next session.
const REFRESHES_PER_SESSION: usize = 4;

/// Every write is on disk before it is acknowledged (the default, said explicitly).
const DURABLE: &[&str] = &["--durability", "sync"];

/// Acknowledged calls after which each round's kill comes: early, mid and late.
const KILL_AFTER_ACKS: [usize; 3] = [10, 80, 300];

/// Longest wait for acknowledgements and for the workers to notice the kill.
const PATIENCE: Duration = Daemon::PATIENCE;

/// What a chain of acknowledged calls on one session proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The newest acknowledged session token works.
    Valid,
    /// A Refresh was in flight at the kill: it may have landed (then the newest
    /// acknowledged session token is rotated away) or not.
    EitherWay,
    /// The newest acknowledged session token no longer works: its refresh landed
    /// unacknowledged, or the test presented a rotated refresh token (reuse).
    Dead,
}

/// One session as its worker saw it: only acknowledged answers count.
#[derive(Clone, Debug)]
struct Chain {
    session_id: String,
    session_token: String,
    refresh_token: String,
    rotated_session_tokens: Vec<String>,
    rotated_refresh_tokens: Vec<String>,
    expect: Expect,
}

/// Shared by the workers of a round.
#[derive(Default)]
struct Load {
    acknowledged: AtomicUsize,
    killed: AtomicBool,
}

/// Starts sessions and refreshes them until the server goes away; returns the chains
/// of acknowledged calls, and the failures seen before the kill (there must be none).
async fn worker(channel: Channel, user: String, load: Arc<Load>) -> (Vec<Chain>, Vec<String>) {
    let mut client = SessionServiceClient::new(channel);
    let mut chains = Vec::new();
    let mut failures = Vec::new();
    // A call that fails after the kill is the kill's doing; before it, a bug.
    let fail = |failures: &mut Vec<String>, what: &str, status: tonic::Status| {
        if !load.killed.load(Ordering::SeqCst) {
            failures.push(format!("{what}: {status:?}"));
        }
    };
    loop {
        let started = match client.start(start_request(&user)).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                fail(&mut failures, "start", status);
                break;
            }
        };
        load.acknowledged.fetch_add(1, Ordering::SeqCst);
        chains.push(Chain {
            session_id: session_of(&started.session).session_id.clone(),
            session_token: started.session_token,
            refresh_token: started.refresh_token,
            rotated_session_tokens: Vec::new(),
            rotated_refresh_tokens: Vec::new(),
            expect: Expect::Valid,
        });
        let chain = chains.last_mut().expect("just pushed");
        for _ in 0..REFRESHES_PER_SESSION {
            chain.expect = Expect::EitherWay;
            match refresh(&mut client, &chain.refresh_token).await {
                Ok(refreshed) => {
                    let old_session =
                        std::mem::replace(&mut chain.session_token, refreshed.session_token);
                    let old_refresh =
                        std::mem::replace(&mut chain.refresh_token, refreshed.refresh_token);
                    chain.rotated_session_tokens.push(old_session);
                    chain.rotated_refresh_tokens.push(old_refresh);
                    chain.expect = Expect::Valid;
                    load.acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                Err(status) => {
                    fail(&mut failures, "refresh", status);
                    return (chains, failures);
                }
            }
        }
    }
    (chains, failures)
}

/// Runs the workers until `kill_after` calls are acknowledged, then SIGKILLs the
/// server; returns every worker's chains.
async fn load_and_kill(mut daemon: Daemon, round: usize, kill_after: usize) -> Vec<Chain> {
    let channel = daemon.serving().await;
    let load = Arc::new(Load::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            tokio::spawn(worker(
                channel.clone(),
                format!("crash-r{round}-w{i}"),
                load.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while load.acknowledged.load(Ordering::SeqCst) < kill_after {
        assert!(
            Instant::now() < deadline,
            "only {} calls acknowledged within {PATIENCE:?}",
            load.acknowledged.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    load.killed.store(true, Ordering::SeqCst);
    daemon.kill();

    let mut chains = Vec::new();
    for worker in workers {
        let (worker_chains, failures) = tokio::time::timeout(PATIENCE, worker)
            .await
            .expect("workers notice the kill")
            .expect("worker task");
        assert!(
            failures.is_empty(),
            "calls failed before the kill: {failures:?}"
        );
        chains.extend(worker_chains);
    }
    assert!(
        !chains.is_empty(),
        "no session was acknowledged before the kill"
    );
    chains
}

/// Opens the data dir with the library and checks records and indexes agree, and that
/// every stored session has its STARTED event (a change on disk always has its event).
async fn assert_store_consistent(data_dir: &Path, acknowledged_sessions: usize) {
    let store = SledStore::open(data_dir, Durability::Sync).expect("open the killed store");
    let mut started = HashSet::new();
    let mut after = 0;
    while let EventsAfter::Events(events) = store.events_after(after, 1000).await.expect("events") {
        let Some(last) = events.last() else { break };
        after = last.seq;
        started.extend(
            events
                .into_iter()
                .filter(|event| event.kind == EventKind::Started as i32)
                .map(|event| event.session_id),
        );
    }
    let mut before = None;
    loop {
        let records = store.records_before(before, 1000).await.expect("records");
        let Some(last) = records.last() else { break };
        before = Some(uuid::Uuid::from_slice(&last.session_id).expect("session id"));
        for record in &records {
            assert!(
                started.contains(&record.session_id),
                "stored session of {} has no STARTED event",
                record.user_id
            );
        }
    }
    let report = store.check_consistency().await.expect("consistency check");
    assert_eq!(report.orphans, 0, "{report:?}");
    assert_eq!(report.sessions, report.user_index_entries, "{report:?}");
    assert_eq!(report.sessions, report.expiry_index_entries, "{report:?}");
    assert!(
        report.sessions >= acknowledged_sessions as u64,
        "{acknowledged_sessions} sessions acknowledged, {} stored",
        report.sessions
    );
}

/// Checks every chain against the restarted server and settles what in-flight calls
/// did. Then half of the live chains present a rotated refresh token, which must
/// revoke the session (and must still have, after the next kill); the other half
/// refresh with their newest refresh token, which must work.
async fn verify(client: &mut Client, chains: &mut [Chain]) {
    for (i, chain) in chains.iter_mut().enumerate() {
        // Whoami with the newest session token also uses the successor, which closes
        // any refresh grace window: a rotated refresh token is theft from here on.
        let newest = whoami(client, &chain.session_token).await;
        match chain.expect {
            Expect::Valid => {
                let who = newest.unwrap_or_else(|status| {
                    panic!("acknowledged session {} lost: {status:?}", chain.session_id)
                });
                assert_eq!(session_of(&who.session).session_id, chain.session_id);
            }
            Expect::Dead => {
                assert_code(newest, Code::Unauthenticated);
            }
            Expect::EitherWay => {
                chain.expect = match newest {
                    Ok(_) => Expect::Valid,
                    Err(status) => {
                        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                        Expect::Dead
                    }
                };
            }
        }
        for rotated in &chain.rotated_session_tokens {
            assert_code(whoami(client, rotated).await, Code::Unauthenticated);
        }
        if chain.expect != Expect::Valid {
            continue;
        }
        match chain.rotated_refresh_tokens.first() {
            Some(rotated) if i % 2 == 0 => {
                assert_code(refresh(client, rotated).await, Code::Unauthenticated);
                assert_code(
                    whoami(client, &chain.session_token).await,
                    Code::Unauthenticated,
                );
                chain.expect = Expect::Dead;
            }
            _ => {
                let refreshed =
                    refresh(client, &chain.refresh_token)
                        .await
                        .unwrap_or_else(|status| {
                            panic!(
                                "newest refresh token of {} refused: {status:?}",
                                chain.session_id
                            )
                        });
                let old_session =
                    std::mem::replace(&mut chain.session_token, refreshed.session_token);
                let old_refresh =
                    std::mem::replace(&mut chain.refresh_token, refreshed.refresh_token);
                chain.rotated_session_tokens.push(old_session);
                chain.rotated_refresh_tokens.push(old_refresh);
            }
        }
    }
}

on_backends!(acknowledged_calls_survive_sigkill_at_several_points: sled; flavor = "multi_thread", worker_threads = 4);
async fn acknowledged_calls_survive_sigkill_at_several_points() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("sessiond.log");
    let mut chains: Vec<Chain> = Vec::new();

    for (round, kill_after) in KILL_AFTER_ACKS.into_iter().enumerate() {
        let daemon = Daemon::spawn(data_dir.path(), &log, "warn", DURABLE);
        chains.extend(load_and_kill(daemon, round, kill_after).await);

        assert_store_consistent(data_dir.path(), chains.len()).await;

        let mut daemon = Daemon::spawn(data_dir.path(), &log, "warn", DURABLE);
        let mut client = SessionServiceClient::new(daemon.serving().await);
        verify(&mut client, &mut chains).await;
        drop(client);
        let status = daemon.terminate();
        assert!(status.success(), "graceful stop exited with {status}");
    }
}

/// A store closed in this process may hold the data dir's lock a moment longer (sled's
/// background threads let go of it last): opening the dir again waits for it.
#[test]
fn reopening_waits_for_the_lock_of_a_closing_store() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let first = SledStore::open(data_dir.path(), Durability::Sync).expect("first open");
    let closing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
    });
    SledStore::open(data_dir.path(), Durability::Sync).expect("second open waits, then opens");
    closing.join().expect("the closing thread ends");
}
