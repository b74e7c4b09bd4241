//! Whoami's `cache_until`: capped by `whoami_cache_max`, the expiry and the idle
//! deadline.

use super::*;

on_backends!(whoami_cache_until_is_at_most_whoami_cache_max_past_now: sled, redis, cluster);
async fn whoami_cache_until_is_at_most_whoami_cache_max_past_now() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    test.advance(secs(10 * MINUTE));

    let who = whoami_ok(&mut client, &started.session_token).await;

    let now = START_MS as i64 + 10 * MINUTE * 1000;
    let cache_until = ms_of(who.cache_until.as_ref());
    assert!(
        cache_until > now,
        "a hint in the past is useless: {cache_until}"
    );
    assert!(cache_until <= now + 5 * MINUTE * 1000, "{cache_until}");
}

on_backends!(whoami_cache_until_is_never_after_expiry: sled, redis, cluster);
async fn whoami_cache_until_is_never_after_expiry() {
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session_with_ttl(&mut client, "alice", MINUTE).await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    let expires_at = ms_of(session_of(&who.session).expires_at.as_ref());
    assert!(ms_of(who.cache_until.as_ref()) <= expires_at);
}

on_backends!(whoami_cache_until_is_never_after_the_idle_deadline: sled, redis, cluster);
async fn whoami_cache_until_is_never_after_the_idle_deadline() {
    let test = TestServer::with_config("[groups.default]\nidle_timeout = \"2m\"").await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    assert!(ms_of(who.cache_until.as_ref()) <= START_MS as i64 + 2 * MINUTE * 1000);
}

on_backends!(whoami_cache_until_follows_the_configured_cap: sled, redis, cluster);
async fn whoami_cache_until_follows_the_configured_cap() {
    let test = TestServer::with_config("whoami_cache_max = \"1m\"").await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;

    let who = whoami_ok(&mut client, &started.session_token).await;

    let cache_until = ms_of(who.cache_until.as_ref());
    assert!(cache_until > START_MS as i64);
    assert!(
        cache_until <= START_MS as i64 + MINUTE * 1000,
        "{cache_until}"
    );
}
