//! The contract every store keeps, as one suite that drives any `SessionStore` (in the
//! manner of Garage's `test_suite(db)`), run below on sled, standalone Redis and Redis
//! Cluster: the backend matrix of the store lives here. A new backend adds one test.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::redis::{RedisConfig, RedisStore};
use super::sled::SledStore;
use super::{
    Commit, Decision, Durability, EndReason, Event, EventKind, EventsAfter, SessionId,
    SessionRecord, SessionStore, StoreError, StoredEvent, StoredState,
};
use crate::clock::ManualClock;

/// 2026-01-01T00:00:00Z: the suite's now.
const NOW_MS: u64 = 1_767_225_600_000;
const HOUR_MS: u64 = 3_600_000;
/// When the short-lived session of the suite expires.
const SHORT_EXPIRY_MS: u64 = NOW_MS + 10_000;
/// When the session started to watch the feed expires.
const DAVE_EXPIRY_MS: u64 = NOW_MS + 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_keeps_the_store_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path(), Durability::Sync).expect("open sled");
    store_contract(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_the_store_contract() {
    if let Some(store) = redis_store("SESSIOND_TEST_REDIS_URL", false, false).await {
        store_contract(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_keeps_the_store_contract() {
    if let Some(store) = redis_store("SESSIOND_TEST_REDIS_CLUSTER_URLS", true, false).await {
        store_contract(store).await;
    }
}

/// With the near cache on, every read and write of the contract still agrees: what a
/// store call wrote, its next read sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_with_a_near_cache_keeps_the_store_contract() {
    if let Some(store) = redis_store("SESSIOND_TEST_REDIS_CLUSTER_URLS", true, true).await {
        store_contract(store).await;
    }
}

/// A store on the test Redis that `env` names, under a key prefix of its own, with a
/// near cache if `near_cache`; None (said loudly) when none is configured.
async fn redis_store(env: &str, cluster: bool, near_cache: bool) -> Option<Arc<RedisStore>> {
    let Some(urls) = std::env::var(env).ok().filter(|urls| !urls.is_empty()) else {
        eprintln!(
            "!!! SKIPPED: the store contract on Redis{} did not run: set {env} \
             (scripts/redis-test-env.sh start && eval \"$(scripts/redis-test-env.sh env)\")",
            if cluster { " Cluster" } else { "" }
        );
        return None;
    };
    let config = RedisConfig {
        urls: urls.split(',').map(str::to_owned).collect(),
        cluster,
        key_prefix: format!("contract{:016x}", getrandom::u64().expect("randomness")),
        near_cache,
        ..RedisConfig::default()
    };
    let clock = Arc::new(ManualClock::new(NOW_MS));
    Some(
        RedisStore::connect(&config, clock)
            .await
            .expect("connect to the test Redis"),
    )
}

/// Drives `store`, empty, through everything the session rules rely on.
async fn store_contract(store: Arc<dyn SessionStore>) {
    let store = &*store;
    let start_cursor = store.settled_head().await.expect("settled head");
    nothing_is_found_in_an_empty_store(store).await;

    let alice_old = started(store, "alice", NOW_MS + HOUR_MS, "ext-alice").await;
    let alice_new = started(store, "alice", NOW_MS + HOUR_MS, "").await;
    let bob = started(store, "bob", SHORT_EXPIRY_MS, "").await;
    records_are_read_listed_and_paged(store, &alice_old, &alice_new, &bob).await;
    updates_keep_put_and_touch(store, &alice_old).await;
    let alice_third = user_wide_changes_see_every_record_of_the_user(store, &alice_new).await;
    grace_windows_close_on_time(store, &alice_old).await;
    only_due_sessions_expire_with_the_given_event(store, &bob).await;

    let events = visible_events(store, start_cursor, 8).await;
    let logged: Vec<(SessionId, EventKind)> = events
        .iter()
        .map(|event| (id_from(&event.session_id), event.kind()))
        .collect();
    let of = |record: &SessionRecord| -> Vec<EventKind> {
        let id = id(record);
        logged
            .iter()
            .filter(|(logged, _)| *logged == id)
            .map(|(_, kind)| *kind)
            .collect()
    };
    use EventKind::{Expired, Refreshed, Revoked, Started};
    assert_eq!(of(&alice_old), [Started, Refreshed, Refreshed]);
    assert_eq!(of(&alice_new), [Started, Revoked]);
    assert_eq!(of(&alice_third), [Started]);
    assert_eq!(of(&bob), [Started, Expired]);
    assert_eq!(events.len(), 8, "{events:?}");
    let expired = events.iter().find(|event| event.kind() == Expired);
    assert_eq!(
        expired.map(|event| (event.at_ms, event.end_reason(), event.actor.as_str())),
        Some((SHORT_EXPIRY_MS, EndReason::AbsoluteCap, "contract-sweeper")),
        "the sweep logs the event it is given"
    );
    the_log_pages_and_its_feed_moves(store, start_cursor, &events).await;

    let report = store.check_consistency().await.expect("consistency check");
    assert_eq!(
        (
            report.sessions,
            report.user_index_entries,
            report.expiry_index_entries,
            report.orphans
        ),
        (3, 3, 3, 0),
        "{report:?}"
    );
    exports_page_in_id_order_where_supported(store).await;
    pruned_events_cannot_be_resumed(store, start_cursor, &events).await;
}

async fn nothing_is_found_in_an_empty_store(store: &dyn SessionStore) {
    let nobody = store.place_session_id(SessionId::now_v7(), "nobody");
    assert_eq!(store.get(nobody).await.expect("get"), None);
    let mut decided = false;
    let updated = store
        .update(nobody, Commit::Durable, &mut |_| {
            decided = true;
            Decision::Keep
        })
        .await
        .expect("update of a missing session");
    assert_eq!((updated, decided), (None, false));
    let listed = store.list_user("nobody", None, 10).await.expect("list");
    assert!(listed.is_empty());
    assert!(store
        .records_before(None, 10)
        .await
        .expect("page")
        .is_empty());
    assert_eq!(
        store.user_of_external("ext-nobody").await.expect("ext"),
        None
    );
    let swept = store
        .remove_expired(u64::MAX / 2, 10, &|_| panic!("nothing to expire"))
        .await
        .expect("sweep");
    assert_eq!(swept, 0);
}

async fn records_are_read_listed_and_paged(
    store: &dyn SessionStore,
    alice_old: &SessionRecord,
    alice_new: &SessionRecord,
    bob: &SessionRecord,
) {
    assert_eq!(
        store.get(id(alice_old)).await.expect("get").as_ref(),
        Some(alice_old)
    );
    assert_eq!(
        store
            .user_of_external("ext-alice")
            .await
            .expect("ext")
            .as_deref(),
        Some("alice")
    );
    let alices = newest_first([alice_old, alice_new]);
    assert_eq!(
        ids(&store.list_user("alice", None, 10).await.expect("list")),
        alices
    );
    let first = store.list_user("alice", None, 1).await.expect("page 1");
    assert_eq!(ids(&first), alices[..1]);
    let rest = store
        .list_user("alice", Some(alices[0]), 10)
        .await
        .expect("page 2");
    assert_eq!(ids(&rest), alices[1..]);
    let everyone = newest_first([alice_old, alice_new, bob]);
    assert_eq!(
        ids(&store.records_before(None, 10).await.expect("page")),
        everyone
    );
    let older = store
        .records_before(Some(everyone[0]), 1)
        .await
        .expect("page after the newest");
    assert_eq!(ids(&older), everyone[1..2]);
}

async fn updates_keep_put_and_touch(store: &dyn SessionStore, record: &SessionRecord) {
    let kept = store
        .update(id(record), Commit::Durable, &mut |_| Decision::Keep)
        .await
        .expect("keep");
    assert_eq!(kept.as_ref(), Some(record));
    let refreshed = store
        .update(id(record), Commit::Durable, &mut |current| {
            let mut next = current.clone();
            next.attributes.insert("round".to_owned(), "1".to_owned());
            Decision::Put(Box::new(next), Some(event(EventKind::Refreshed)))
        })
        .await
        .expect("put")
        .expect("the session exists");
    assert_eq!(
        refreshed.attributes.get("round").map(String::as_str),
        Some("1")
    );
    let touched = store
        .update(id(record), Commit::Lazy, &mut |current| {
            let mut next = current.clone();
            next.last_access_at_ms = NOW_MS + 1_000;
            Decision::Put(Box::new(next), None)
        })
        .await
        .expect("touch");
    let stored = store.get(id(record)).await.expect("get");
    assert_eq!(touched, stored);
    assert_eq!(stored.map(|r| r.last_access_at_ms), Some(NOW_MS + 1_000));
}

/// Revokes `revoked` and starts a third session of alice in one user-wide change;
/// returns the new record.
async fn user_wide_changes_see_every_record_of_the_user(
    store: &dyn SessionStore,
    revoked: &SessionRecord,
) -> SessionRecord {
    let added = record(store, "alice", NOW_MS + HOUR_MS, "");
    let mut seen = Vec::new();
    store
        .update_user("alice", &mut |current| {
            seen = ids(current);
            let mut next = current
                .iter()
                .find(|r| r.session_id == revoked.session_id)
                .cloned()
                .expect("the user's sessions include it");
            next.set_state(StoredState::Revoked);
            next.set_end_reason(EndReason::LogoutOthers);
            vec![
                (next, event(EventKind::Revoked)),
                (added.clone(), event(EventKind::Started)),
            ]
        })
        .await
        .expect("user-wide change");
    seen.sort();
    assert_eq!(seen.len(), 2, "both of alice's sessions are seen");
    let stored = store.get(id(revoked)).await.expect("get");
    assert_eq!(stored.map(|r| r.state()), Some(StoredState::Revoked));
    let listed = store.list_user("alice", None, 10).await.expect("list");
    assert_eq!(listed.len(), 3);
    added
}

async fn grace_windows_close_on_time(store: &dyn SessionStore, record: &SessionRecord) {
    let grace_until_ms = NOW_MS + 30_000;
    store
        .update(id(record), Commit::Durable, &mut |current| {
            let mut next = current.clone();
            next.grace_until_ms = grace_until_ms;
            Decision::Put(Box::new(next), Some(event(EventKind::Refreshed)))
        })
        .await
        .expect("open a grace window");
    let open = store
        .grace_closed(grace_until_ms - 1, 10)
        .await
        .expect("grace");
    assert!(open.is_empty(), "{open:?}");
    let closed = store.grace_closed(grace_until_ms, 10).await.expect("grace");
    assert_eq!(closed, [id(record)]);
}

async fn only_due_sessions_expire_with_the_given_event(
    store: &dyn SessionStore,
    bob: &SessionRecord,
) {
    let swept = Mutex::new(Vec::new());
    let sweeper_event = |record: Option<&SessionRecord>| {
        let mut swept = swept.lock().unwrap_or_else(|poison| poison.into_inner());
        swept.push(record.map(id));
        Event {
            kind: EventKind::Expired,
            at_ms: SHORT_EXPIRY_MS,
            reason: EndReason::AbsoluteCap,
            actor: "contract-sweeper".into(),
            note: "".into(),
        }
    };
    let early = store
        .remove_expired(SHORT_EXPIRY_MS - 1, 10, &sweeper_event)
        .await
        .expect("sweep");
    assert_eq!(early, 0);
    let removed = store
        .remove_expired(SHORT_EXPIRY_MS, 10, &sweeper_event)
        .await
        .expect("sweep");
    assert_eq!(removed, 1);
    let swept = swept
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    assert!(swept.iter().all(|seen| *seen == Some(id(bob))), "{swept:?}");
    assert_eq!(store.get(id(bob)).await.expect("get"), None);
    assert!(store
        .list_user("bob", None, 10)
        .await
        .expect("list")
        .is_empty());
}

/// The events after `cursor`, once `expected` of them are visible: a store may show
/// an event a moment after its write returns (Redis numbers events by its clock, and
/// shows one only once every shard's clock has passed it).
async fn visible_events(
    store: &dyn SessionStore,
    cursor: u64,
    expected: usize,
) -> Vec<StoredEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        store.settled_head().await.expect("settled head");
        let events = match store.events_after(cursor, 100).await.expect("events") {
            EventsAfter::Events(events) => events,
            EventsAfter::Pruned { pruned_through } => panic!("pruned through {pruned_through}"),
        };
        if events.len() >= expected || std::time::Instant::now() > deadline {
            assert_eq!(events.len(), expected, "{events:?}");
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn the_log_pages_and_its_feed_moves(
    store: &dyn SessionStore,
    cursor: u64,
    events: &[StoredEvent],
) {
    let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    let Some(last) = events.last() else {
        panic!("no events")
    };
    assert_eq!(store.head_seq(), last.seq, "the head is the newest event");
    let page = match store.events_after(cursor, 3).await.expect("page") {
        EventsAfter::Events(page) => page,
        EventsAfter::Pruned { .. } => panic!("pruned"),
    };
    assert_eq!(page, events[..3]);
    let rest = visible_events(store, page[2].seq, events.len() - 3).await;
    assert_eq!(rest, events[3..]);
    let mut feed = store.subscribe_events();
    feed.borrow_and_update();
    let dave = started(store, "dave", DAVE_EXPIRY_MS, "").await;
    let logged = visible_events(store, last.seq, 1).await;
    assert!(feed.has_changed().expect("the store lives"));
    assert_eq!(*feed.borrow_and_update(), store.head_seq());
    assert_eq!(
        logged
            .iter()
            .map(|event| (id_from(&event.session_id), event.kind(), event.seq))
            .collect::<Vec<_>>(),
        [(id(&dave), EventKind::Started, store.head_seq())]
    );
    // Dave's session leaves again, so the store holds what the report expects.
    let swept = store
        .remove_expired(DAVE_EXPIRY_MS, 10, &|_| event(EventKind::Expired))
        .await
        .expect("sweep");
    assert_eq!(swept, 1);
}

async fn exports_page_in_id_order_where_supported(store: &dyn SessionStore) {
    match store.export_records(None, 2).await {
        Ok(first) => {
            let rest = store
                .export_records(Some(id(&first[1])), 10)
                .await
                .expect("export");
            let exported: Vec<SessionId> = first.iter().chain(&rest).map(id).collect();
            let mut sorted = exported.clone();
            sorted.sort();
            assert_eq!((exported.len(), &exported), (3, &sorted));
        }
        Err(StoreError::Unsupported(_)) => {}
        Err(other) => panic!("export: {other}"),
    }
}

async fn pruned_events_cannot_be_resumed(
    store: &dyn SessionStore,
    cursor: u64,
    events: &[StoredEvent],
) {
    let pruned = store.prune_events(u64::MAX, 1_000).await.expect("prune");
    assert!(
        pruned >= events.len(),
        "pruned {pruned} of {}",
        events.len()
    );
    assert_eq!(store.prune_events(u64::MAX, 1_000).await.expect("prune"), 0);
    match store.events_after(cursor, 10).await.expect("events") {
        EventsAfter::Pruned { pruned_through } => {
            let newest = events.last().map_or(0, |event| event.seq);
            assert!(pruned_through >= newest, "{pruned_through} < {newest}");
            visible_events(store, pruned_through, 0).await;
        }
        EventsAfter::Events(events) => panic!("resumed past pruning: {events:?}"),
    }
}

/// A new session of `user_id`, stored with its STARTED event.
async fn started(
    store: &dyn SessionStore,
    user_id: &str,
    expires_at_ms: u64,
    external_user_id: &str,
) -> SessionRecord {
    let record = record(store, user_id, expires_at_ms, external_user_id);
    store
        .insert(record, event(EventKind::Started))
        .await
        .expect("insert")
}

fn record(
    store: &dyn SessionStore,
    user_id: &str,
    expires_at_ms: u64,
    external_user_id: &str,
) -> SessionRecord {
    SessionRecord {
        session_id: store
            .place_session_id(SessionId::now_v7(), user_id)
            .as_bytes()
            .to_vec(),
        user_id: user_id.to_owned(),
        group: "default".to_owned(),
        state: StoredState::Active as i32,
        created_at_ms: NOW_MS,
        authenticated_at_ms: NOW_MS,
        last_access_at_ms: NOW_MS,
        expires_at_ms,
        max_expires_at_ms: expires_at_ms,
        ttl_ms: HOUR_MS,
        metadata: BTreeMap::from([("device".to_owned(), "laptop".to_owned())]),
        external_user_id: external_user_id.to_owned(),
        started_by: "contract".to_owned(),
        ..SessionRecord::default()
    }
}

fn event(kind: EventKind) -> Event {
    Event {
        kind,
        at_ms: NOW_MS,
        reason: EndReason::Unspecified,
        actor: "contract".into(),
        note: "".into(),
    }
}

fn id(record: &SessionRecord) -> SessionId {
    id_from(&record.session_id)
}

fn id_from(bytes: &[u8]) -> SessionId {
    SessionId::from_slice(bytes).expect("a 16-byte session id")
}

fn ids(records: &[SessionRecord]) -> Vec<SessionId> {
    records.iter().map(id).collect()
}

fn newest_first<'a>(records: impl IntoIterator<Item = &'a SessionRecord>) -> Vec<SessionId> {
    let mut ids: Vec<SessionId> = records.into_iter().map(id).collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids
}
