//! What the log holds: every kind of event in order, with the server's times, one per
//! change and none for a call that changes nothing, there when its call returns.

use super::*;

on_backends!(watch_delivers_every_kind_of_event_in_order: sled, redis, cluster);
async fn watch_delivers_every_kind_of_event_in_order() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "").await;

    let first = start_session(&mut client, "alice").await;
    let first_id = id_of(&first);
    let refreshed = refresh_ok(&mut client, &first.refresh_token).await;
    test.advance(secs(1));
    assert!(extend_ok(&mut client, &first_id).await.extended);
    assert_eq!(logout_token(&mut client, &refreshed.session_token).await, 1);
    let short = start_session_with_ttl(&mut client, "alice", MINUTE).await;
    test.advance(secs(MINUTE + 1));
    test.running().sweep_now().await.expect("sweep");
    let stolen = start_session(&mut client, "alice").await;
    refresh_ok(&mut client, &stolen.refresh_token).await;
    test.advance(secs(MINUTE)); // past the default 30 s grace window
    assert_code(
        refresh(&mut client, &stolen.refresh_token).await,
        Code::Unauthenticated,
    );

    let seen = next_session_events(&mut events, 9).await;
    assert_eq!(
        kinds_and_ids(&seen),
        vec![
            (Kind::Started, first_id.clone()),
            (Kind::Refreshed, first_id.clone()),
            (Kind::Extended, first_id.clone()),
            (Kind::Revoked, first_id),
            (Kind::Started, id_of(&short)),
            (Kind::Expired, id_of(&short)),
            (Kind::Started, id_of(&stolen)),
            (Kind::Refreshed, id_of(&stolen)),
            (Kind::ReuseDetected, id_of(&stolen)),
        ]
    );
    assert_strictly_increasing(&cursors(&seen));
    assert!(
        seen.iter().all(|event| event.user_id == "alice"),
        "{seen:?}"
    );
}

on_backends!(event_times_come_from_the_server_clock: sled, redis, cluster);
async fn event_times_come_from_the_server_clock() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "").await;

    let started = start_session(&mut client, "alice").await;
    test.advance(secs(90));
    logout_token(&mut client, &started.session_token).await;

    let seen = next_session_events(&mut events, 2).await;
    assert_eq!(ms_of(seen[0].at.as_ref()), START_MS as i64);
    assert_eq!(ms_of(seen[1].at.as_ref()), START_MS as i64 + 90_000);
}

on_backends!(eviction_by_the_session_limit_is_a_revoked_event: sled, redis, cluster);
async fn eviction_by_the_session_limit_is_a_revoked_event() {
    let test = TestServer::with_config("[groups.default]\nmax_sessions_per_user = 1").await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "").await;

    let oldest = start_session(&mut client, "alice").await;
    test.advance(secs(1));
    let newest = start_session(&mut client, "alice").await;

    let seen = next_session_events(&mut events, 3).await;
    assert_eq!(
        kinds_and_ids(&seen),
        vec![
            (Kind::Started, id_of(&oldest)),
            (Kind::Revoked, id_of(&oldest)),
            (Kind::Started, id_of(&newest)),
        ]
    );
}

on_backends!(refresh_all_for_user_is_one_extended_event_per_session: sled, redis, cluster);
async fn refresh_all_for_user_is_one_extended_event_per_session() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let mut events = live_watch(&test, "").await;
    let one = start_session(&mut client, "alice").await;
    let two = start_session(&mut client, "alice").await;
    next_session_events(&mut events, 2).await;

    test.advance(secs(1));
    let response = refresh_all(&mut client, "alice", None)
        .await
        .expect("refresh all succeeds");
    assert_eq!(response.refreshed_count, 2);

    let seen = next_session_events(&mut events, 2).await;
    assert!(seen.iter().all(|event| kind_of(event) == Kind::Extended));
    let mut ids: Vec<String> = seen.iter().map(|e| e.session_id.clone()).collect();
    ids.sort();
    let mut expected = vec![id_of(&one), id_of(&two)];
    expected.sort();
    assert_eq!(ids, expected);
}

on_backends!(an_event_is_in_the_log_when_its_call_returns: sled, redis, cluster);
async fn an_event_is_in_the_log_when_its_call_returns() {
    let test = TestServer::start().await;
    let mut client = test.client().await;

    let started = start_session(&mut client, "alice").await;

    let log = event_log(&mut client).await;
    assert_eq!(kinds_and_ids(&log), vec![(Kind::Started, id_of(&started))]);
}

on_backends!(calls_that_change_nothing_log_no_event: sled, redis, cluster);
async fn calls_that_change_nothing_log_no_event() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    whoami_ok(&mut client, &started.session_token).await;
    assert!(!extend_ok(&mut client, &id_of(&started)).await.extended);
    assert_eq!(logout_id(&mut client, &id_of(&started)).await, 1);
    assert_eq!(logout_id(&mut client, &id_of(&started)).await, 0);

    let kinds: Vec<Kind> = event_log(&mut client).await.iter().map(kind_of).collect();
    assert_eq!(kinds, vec![Kind::Started, Kind::Revoked]);
}
