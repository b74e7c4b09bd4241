//! The sled store's storage layout, on a real sled data dir: one key per record, the
//! indexes (by user, expiry and grace window) rebuilt from the records at open (a large
//! store's while it serves), events
//! stored in pages that a cursor can resume inside of, and a data dir of the earlier
//! layout (one event per key, index trees on disk) opened with nothing lost.

use crate::stored;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sessiond::session::policy::{expired_event, started_event};
use sessiond::store::sled::SledStore;
use sessiond::store::{
    Commit, Decision, Durability, EventKind, EventLog, EventsAfter, Expiry, Maintenance,
    Persistence, SessionId, SessionRecord, SessionRecords, StoredEvent,
};
use stored::{id_of, record, NOW_MS};

fn ids(records: &[SessionRecord]) -> Vec<SessionId> {
    records.iter().map(id_of).collect()
}

fn open(dir: &Path) -> Arc<SledStore> {
    SledStore::open(dir, Durability::Sync).expect("open the store")
}

async fn events(store: &SledStore, after: u64, limit: usize) -> Vec<u64> {
    match store.events_after(after, limit).await.expect("read events") {
        EventsAfter::Events(events) => events.iter().map(|event| event.seq).collect(),
        EventsAfter::Pruned { pruned_through } => panic!("pruned through {pruned_through}"),
    }
}

/// Opens the data dir with sled itself once the store that had it has let go.
fn open_raw(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("open sled: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_indexes_are_rebuilt_from_the_records_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (alice_old, alice_new, bob) = (
        record("alice", NOW_MS + 1_000),
        record("alice", NOW_MS + 60_000),
        record("bob", NOW_MS + 60_000),
    );
    {
        let store = open(dir.path());
        for record in [&alice_old, &alice_new, &bob] {
            store
                .insert(record.clone(), started_event(record))
                .await
                .expect("insert");
        }
        // A grace window opened on bob's session, as a Refresh does.
        store
            .update(id_of(&bob), Commit::Durable, &mut |current| {
                let mut next = current.clone();
                next.grace_until_ms = NOW_MS + 30_000;
                Decision::Put(Box::new(next), None)
            })
            .await
            .expect("update")
            .expect("bob's session exists");
    }

    let store = open(dir.path());
    let listed = store.list_user("alice", None, 10).await.expect("list");
    assert_eq!(ids(&listed), vec![id_of(&alice_new), id_of(&alice_old)]);
    let after_cursor = store
        .list_user("alice", Some(id_of(&alice_new)), 10)
        .await
        .expect("list");
    assert_eq!(ids(&after_cursor), vec![id_of(&alice_old)]);
    assert_eq!(
        store
            .grace_closed(NOW_MS + 30_000, 10)
            .await
            .expect("grace"),
        vec![id_of(&bob)]
    );
    assert_eq!(
        store
            .remove_expired(NOW_MS + 1_000, 10, &|record| {
                expired_event(record, NOW_MS + 1_000)
            })
            .await
            .expect("sweep"),
        1
    );
    let report = store.check_consistency().await.expect("check");
    assert_eq!((report.sessions, report.orphans), (2, 0), "{report:?}");
    // The log goes on after the events from before the restart: 3 STARTED, 1 EXPIRED.
    assert_eq!(events(&store, 0, 100).await, vec![1, 2, 3, 4]);
}

/// More records than open indexes itself (65,536), so most are indexed on the rebuild's
/// thread while the store already takes calls.
const LARGE_STORE: u64 = 150_000;

#[tokio::test(flavor = "multi_thread")]
async fn writes_during_the_rebuild_at_open_all_reach_the_indexes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sessions: Vec<SessionRecord> = (0..LARGE_STORE)
        .map(|n| record(&format!("user{}", n % 1_000), NOW_MS + 60_000 + n))
        .collect();
    {
        let db = sled::open(dir.path()).expect("open sled");
        let records = db.open_tree("sessionid_session").expect("tree");
        for record in &sessions {
            records
                .insert(record.session_id.as_slice(), record.encode_to_vec())
                .expect("insert record");
        }
        db.flush().expect("flush");
    }

    let store = open(dir.path());
    // At once, while the rebuild reads: moves of records it has read and of records
    // it has not (the newest ids come last), new records, and a sweep.
    let moved: Vec<&SessionRecord> = sessions.iter().rev().step_by(997).collect();
    for record in &moved {
        store
            .update(id_of(record), Commit::Durable, &mut |current| {
                let mut next = current.clone();
                next.expires_at_ms = NOW_MS + 1_000;
                next.grace_until_ms = NOW_MS + 500;
                Decision::Put(Box::new(next), None)
            })
            .await
            .expect("update")
            .expect("exists");
    }
    let fresh = record("user0", NOW_MS + 90_000);
    store
        .insert(fresh.clone(), started_event(&fresh))
        .await
        .expect("insert");
    let listed = store.list_user("user0", None, 1_000).await.expect("list");
    assert_eq!(listed.len(), 151, "user0's 150 sessions and the new one");
    let report = store.check_consistency().await.expect("check");
    assert_eq!(
        (report.sessions, report.expiry_index_entries, report.orphans),
        (LARGE_STORE + 1, LARGE_STORE + 1, 0),
        "{report:?}"
    );
    assert_eq!(
        store
            .grace_closed(NOW_MS + 500, 1_000)
            .await
            .expect("grace")
            .len(),
        moved.len()
    );
    let swept = store
        .remove_expired(NOW_MS + 1_000, 1_000, &|record| {
            expired_event(record, NOW_MS + 1_000)
        })
        .await
        .expect("sweep");
    assert_eq!(swept, moved.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_inside_a_page_of_events_resumes_at_the_next_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(dir.path());
    // One user-wide change logs ten events in one transaction: one page, seqs 1-10.
    let batch: Vec<SessionRecord> = (0..10).map(|_| record("alice", NOW_MS + 60_000)).collect();
    store
        .update_user("alice", &mut |_| {
            batch
                .iter()
                .map(|record| (record.clone(), started_event(record)))
                .collect()
        })
        .await
        .expect("user-wide change");
    for _ in 0..3 {
        let fresh = record("bob", NOW_MS + 60_000);
        store
            .insert(fresh.clone(), started_event(&fresh))
            .await
            .expect("insert");
    }
    let all: Vec<u64> = (1..=13).collect();
    for after in 0..13 {
        assert_eq!(
            events(&store, after, 1000).await,
            all[after as usize..],
            "after {after}"
        );
        let three: Vec<u64> = (after + 1..=(after + 3).min(13)).collect();
        assert_eq!(events(&store, after, 3).await, three, "after {after}, 3");
    }
    // Pruning takes whole pages: asked for one event, it prunes the first page's ten,
    // and a cursor inside it can no longer resume.
    assert_eq!(store.prune_events(NOW_MS + 1, 1).await.expect("prune"), 10);
    assert!(matches!(
        store.events_after(5, 10).await.expect("read"),
        EventsAfter::Pruned { pruned_through: 10 }
    ));
    assert_eq!(events(&store, 10, 1000).await, all[10..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_of_the_one_event_per_key_layout_opens_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sessions: Vec<SessionRecord> = (0..300)
        .map(|n| record(&format!("user{}", n % 7), NOW_MS + 60_000 + n))
        .collect();
    {
        // The earlier layout: records, one event per key, and index trees on disk.
        let db = sled::open(dir.path()).expect("open sled");
        let records = db.open_tree("sessionid_session").expect("tree");
        let single_events = db.open_tree("seq_event").expect("tree");
        let by_user = db.open_tree("userid_sessionids").expect("tree");
        for (seq, record) in (1u64..).zip(&sessions) {
            records
                .insert(record.session_id.as_slice(), record.encode_to_vec())
                .expect("insert record");
            let event = StoredEvent {
                seq,
                kind: EventKind::Started as i32,
                session_id: record.session_id.clone(),
                user_id: record.user_id.clone(),
                at_ms: NOW_MS,
                actor: "test".to_owned(),
                ..Default::default()
            };
            single_events
                .insert(seq.to_be_bytes(), event.encode_to_vec())
                .expect("insert event");
            by_user
                .insert(record.session_id.as_slice(), &b"stale"[..])
                .expect("insert index entry");
        }
        db.flush().expect("flush");
    }

    {
        let store = open(dir.path());
        let all: Vec<u64> = (1..=300).collect();
        assert_eq!(store.head_seq(), 300);
        assert_eq!(events(&store, 0, 1000).await, all);
        assert_eq!(events(&store, 150, 1000).await, all[150..]);
        let user0: Vec<SessionId> = sessions
            .iter()
            .filter(|record| record.user_id == "user0")
            .rev()
            .map(id_of)
            .collect();
        assert_eq!(
            ids(&store.list_user("user0", None, 1000).await.expect("list")),
            user0
        );
        let report = store.check_consistency().await.expect("check");
        assert_eq!((report.sessions, report.orphans), (300, 0), "{report:?}");
        // New events follow the moved ones.
        let fresh = record("user0", NOW_MS + 60_000);
        store
            .insert(fresh.clone(), started_event(&fresh))
            .await
            .expect("insert");
        assert_eq!(events(&store, 299, 10).await, vec![300, 301]);
    }

    // Moved once: the old trees are gone, and opening again reads the same log.
    let db = open_raw(dir.path());
    let names: Vec<String> = db
        .tree_names()
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|name| name == "seq_event" || name == "userid_sessionids"),
        "{names:?}"
    );
    drop(db);
    let store = open(dir.path());
    assert_eq!(
        events(&store, 0, 1000).await,
        (1..=301).collect::<Vec<u64>>()
    );
}

/// A Whoami-like touch: only the last access moves, lazily.
async fn touch(store: &SledStore, id: SessionId, at_ms: u64) -> SessionRecord {
    store
        .update(id, Commit::Lazy, &mut |current| {
            let mut next = current.clone();
            next.last_access_at_ms = at_ms;
            Decision::Put(Box::new(next), None)
        })
        .await
        .expect("touch")
        .expect("session exists")
}

#[tokio::test(flavor = "multi_thread")]
async fn touches_kept_apart_from_their_records_survive_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (kept_apart, rewritten) = (
        record("alice", NOW_MS + 60_000),
        record("bob", NOW_MS + 60_000),
    );
    {
        let store = open(dir.path());
        for record in [&kept_apart, &rewritten] {
            store
                .insert(record.clone(), started_event(record))
                .await
                .expect("insert");
        }
        // Enough touches of one session to write many pages and then rewrite them.
        for n in 1..=70_000 {
            touch(&store, id_of(&kept_apart), NOW_MS + n).await;
        }
        touch(&store, id_of(&rewritten), NOW_MS + 5).await;
        // A durable change of the touched record carries the touch into it.
        store
            .update(id_of(&rewritten), Commit::Durable, &mut |current| {
                let mut next = current.clone();
                next.scope = "admin".to_owned();
                Decision::Put(Box::new(next), None)
            })
            .await
            .expect("update")
            .expect("exists");
        let listed = store.list_user("alice", None, 10).await.expect("list");
        assert_eq!(listed[0].last_access_at_ms, NOW_MS + 70_000);
        store.flush().await.expect("flush, as at shutdown");
    }
    for _ in 0..2 {
        let store = open(dir.path());
        let get = |id| {
            let store = &store;
            async move { store.get(id).await.expect("get").expect("exists") }
        };
        assert_eq!(
            get(id_of(&kept_apart)).await.last_access_at_ms,
            NOW_MS + 70_000
        );
        let bob = get(id_of(&rewritten)).await;
        assert_eq!(
            (bob.last_access_at_ms, bob.scope.as_str()),
            (NOW_MS + 5, "admin")
        );
        let backup = store.export_records(None, 10).await.expect("export");
        assert!(backup
            .iter()
            .any(|record| record.last_access_at_ms == NOW_MS + 70_000));
    }
    // 70,000 touches came to 18 pages of 4,096; once they outgrew what is still needed
    // (one touch), the pages were written anew and the old ones dropped.
    let pages = open_raw(dir.path())
        .open_tree("touches")
        .expect("tree")
        .len();
    assert!(pages <= 3, "{pages} touch pages");
}
