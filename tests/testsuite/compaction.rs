//! Compaction of the sled store, on a real sled data dir: under churn many times its live
//! size (starts, refreshes, touches, expiries) the data dir ends under the bound; an
//! emptied store gives its space back; a compaction keeps every record, event, touch and
//! external id; `sessiond compact` does the same offline. (Killed compactions:
//! `compaction_crash.rs`.)

use crate::stored;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sessiond::session::policy::{expired_event, started_event};
use sessiond::store::sled::{disk_usage, SledConfig, SledStore};
use sessiond::store::{
    Commit, Decision, Durability, EventLog, EventsAfter, Expiry, Maintenance, SessionId,
    SessionRecord, SessionRecords,
};
use stored::{id_of, record, NOW_MS};

/// Live sessions the churn keeps.
const LIVE: usize = 2_000;

/// Rounds of churn: each starts, refreshes, touches and expires `LIVE / 4` sessions.
const ROUNDS: usize = 200;

/// Compaction at 3× the live data, past 2 MiB, whenever due.
fn compacting() -> SledConfig {
    SledConfig {
        compact_above: 3.0,
        compact_min_mib: 2,
        compact_interval: Duration::ZERO,
        ..SledConfig::default()
    }
}

fn open(dir: &Path, config: &SledConfig) -> Arc<SledStore> {
    SledStore::open_with(dir, Durability::Periodic, config).expect("open the store")
}

/// A Refresh's change: new token hashes, a later expiry.
async fn refresh(store: &SledStore, id: SessionId, round: usize) {
    store
        .update(id, Commit::Durable, &mut |current| {
            let mut next = current.clone();
            next.session_token_hash = vec![round as u8; 32];
            next.expires_at_ms += 1;
            Decision::Put(Box::new(next), None)
        })
        .await
        .expect("refresh")
        .expect("the session exists");
}

/// A Whoami's touch: the last access alone (kept in touch pages).
async fn touch(store: &SledStore, id: SessionId, at_ms: u64) {
    store
        .update(id, Commit::Lazy, &mut |current| {
            let mut next = current.clone();
            next.last_access_at_ms = at_ms;
            Decision::Put(Box::new(next), None)
        })
        .await
        .expect("touch");
}

/// The end of a sweep, where the store looks at its size and compacts when due.
async fn sweep(store: &SledStore, now_ms: u64) -> usize {
    let mut removed = 0;
    loop {
        let batch = store
            .remove_expired(now_ms, 1_000, &|record| expired_event(record, now_ms))
            .await
            .expect("sweep");
        removed += batch;
        if batch < 1_000 {
            return removed;
        }
    }
}

/// Bytes of the records stored (what a compaction must keep, besides sled's overhead).
async fn record_bytes(store: &SledStore) -> u64 {
    let mut total = 0;
    let mut after = None;
    loop {
        let page = store.export_records(after, 1_000).await.expect("export");
        let Some(last) = page.last() else {
            return total;
        };
        after = Some(id_of(last));
        total += page.iter().map(|r| r.encoded_len() as u64).sum::<u64>();
    }
}

/// Starts, refreshes, touches and expires `LIVE / 4` sessions per round, each session
/// living four rounds; returns the clock after the last round.
async fn churn(store: &SledStore) -> u64 {
    let cohort = LIVE / 4;
    let mut now_ms = NOW_MS;
    let mut written = 0u64;
    for round in 0..ROUNDS {
        now_ms += 1_000;
        for n in 0..cohort {
            let record = record(&format!("user-{}", n % 97), now_ms + 3_500);
            written += record.encoded_len() as u64;
            store
                .insert(record.clone(), started_event(&record))
                .await
                .expect("start");
            let id = id_of(&record);
            refresh(store, id, round).await;
            touch(store, id, now_ms + 1).await;
        }
        store
            .prune_events(now_ms - 2_000, 10_000)
            .await
            .expect("prune");
        sweep(store, now_ms).await;
    }
    assert!(
        written > 20 * record_bytes(store).await,
        "the churn wrote many times the live data"
    );
    now_ms
}

#[tokio::test(flavor = "multi_thread")]
async fn under_churn_the_data_dir_stays_under_the_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = compacting();
    let store = open(dir.path(), &config);
    let now_ms = churn(&store).await;
    sweep(&store, now_ms).await;
    let live = record_bytes(&store).await;
    let on_disk = disk_usage(dir.path()).expect("du");
    // Live: the records, plus event pages and touches of about as many bytes.
    let bound = (config.compact_above * 2.0 * live as f64) as u64;
    let bound = bound.max(config.compact_min_mib << 20);
    assert!(
        on_disk <= bound,
        "data dir {on_disk} bytes, live records {live} bytes: past the bound of {bound}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emptied_store_gives_its_space_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = compacting();
    let store = open(dir.path(), &config);
    let now_ms = churn(&store).await;
    // Every session expires, and the sweep deletes them and compacts.
    sweep(&store, now_ms + 60_000).await;
    store
        .prune_events(now_ms + 60_000, 100_000)
        .await
        .expect("prune");
    sweep(&store, now_ms + 60_000).await;
    assert_eq!(record_bytes(&store).await, 0);
    let on_disk = disk_usage(dir.path()).expect("du");
    assert!(
        on_disk <= config.compact_min_mib << 20,
        "an emptied store keeps {on_disk} bytes on disk"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compaction_keeps_records_events_touches_and_external_ids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kept = Vec::new();
    let events_before;
    {
        let store = open(dir.path(), &SledConfig::default());
        for n in 0..300 {
            let mut record = record(&format!("user-{}", n % 7), NOW_MS + 60_000);
            record.external_user_id = format!("ext-{}", n % 7);
            store
                .insert(record.clone(), started_event(&record))
                .await
                .expect("start");
            refresh(&store, id_of(&record), n).await;
            kept.push(id_of(&record));
        }
        touch(&store, kept[0], NOW_MS + 5).await;
        let ended = record("leaver", NOW_MS + 10);
        store
            .insert(ended.clone(), started_event(&ended))
            .await
            .expect("start");
        assert_eq!(sweep(&store, NOW_MS + 10).await, 1);
        events_before = events(&store).await;
        let before: Vec<SessionRecord> = records(&store, &kept).await;
        let compacted = store.compact().expect("compact");
        assert_eq!(compacted.generation, 1);
        assert_eq!(
            records(&store, &kept).await,
            before,
            "served the same records"
        );
        assert_eq!(events(&store).await, events_before);
        assert_eq!(
            store
                .get(kept[0])
                .await
                .expect("get")
                .expect("kept")
                .last_access_at_ms,
            NOW_MS + 5,
            "the touch is kept"
        );
        // Writes go on in the new generation.
        let fresh = record("after", NOW_MS + 60_000);
        store
            .insert(fresh.clone(), started_event(&fresh))
            .await
            .expect("start after compacting");
    }
    assert!(dir.path().join("sled-gen-1").is_dir());
    assert!(!dir.path().join("db").exists(), "generation 0 deleted");
    let store = open(dir.path(), &SledConfig::default());
    let reopened = records(&store, &kept).await;
    assert_eq!(reopened.len(), kept.len());
    assert_eq!(reopened[0].last_access_at_ms, NOW_MS + 5);
    assert_eq!(
        store.user_of_external("ext-3").await.expect("external"),
        Some("user-3".to_owned())
    );
    let mut after = events_before.clone();
    after.push(after.last().copied().unwrap_or(0) + 1);
    assert_eq!(
        events(&store).await,
        after,
        "the log goes on after the copy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessiond_compact_compacts_a_stopped_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kept = record("alice", NOW_MS + 60_000);
    {
        let store = open(dir.path(), &SledConfig::default());
        store
            .insert(kept.clone(), started_event(&kept))
            .await
            .expect("start");
        for round in 0..2_000 {
            refresh(&store, id_of(&kept), round).await;
        }
    }
    let before = disk_usage(dir.path()).expect("du");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["compact", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run sessiond compact");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("compacted"));
    assert!(disk_usage(dir.path()).expect("du") < before);
    let store = open(dir.path(), &SledConfig::default());
    assert!(store.get(id_of(&kept)).await.expect("get").is_some());
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["compact", "--data-dir"])
        .arg(dir.path().join("missing"))
        .output()
        .expect("run sessiond compact");
    assert!(!missing.status.success(), "a missing data dir is refused");
}

async fn records(store: &SledStore, ids: &[SessionId]) -> Vec<SessionRecord> {
    let mut found = Vec::new();
    for id in ids {
        found.push(store.get(*id).await.expect("get").expect("kept"));
    }
    found
}

async fn events(store: &SledStore) -> Vec<u64> {
    match store.events_after(0, 100_000).await.expect("read events") {
        EventsAfter::Events(events) => events.iter().map(|event| event.seq).collect(),
        EventsAfter::Pruned { pruned_through } => panic!("pruned through {pruned_through}"),
    }
}
