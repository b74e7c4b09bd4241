//! A Redis outage under load: with its Redis gone, a real `sessiond` answers every call
//! UNAVAILABLE (and answers, rather than hanging), lets no gateway request pass (ext_authz
//! fails UNAVAILABLE, forward-auth answers 503), keeps serving health, and works again
//! once Redis is back, without a restart. Redis hung rather than gone (frozen with
//! SIGSTOP: connections stay open, nothing answers), standalone or a Cluster: the
//! gateways answer UNAVAILABLE / 503 within the call timeout, then pass again once it
//! answers. Each test runs Redis servers of its own (in memory, on free loopback ports)
//! so it can kill or freeze them.

use crate::plain_http;
use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use support::*;
use tokio::task::JoinSet;
use tonic::{Code, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Concurrent callers of the load.
const CALLERS: usize = 4;
/// Start+Whoami rounds each caller completes before Redis is killed.
const ROUNDS_BEFORE: usize = 25;
/// Calls each caller makes once Redis is gone (every one must be UNAVAILABLE).
const CALLS_DURING: usize = 10;
/// Attempts (200 ms apart) for sessiond to work again once Redis is back.
const RECOVERY_ATTEMPTS: usize = 100;

/// One Start then one Whoami of the new session.
async fn start_and_whoami(client: &mut Client, user: &str) -> Result<(), Status> {
    let started = client.start(start_request(user)).await?.into_inner();
    whoami(client, &started.session_token).await.map(drop)
}

/// A call's outcome as text, for failure messages.
fn outcome(result: &Result<(), Status>) -> String {
    match result {
        Ok(()) => "OK".to_owned(),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    }
}

on_backends!(a_redis_outage_fails_calls_unavailable_and_sessiond_recovers_without_restart: redis; flavor = "multi_thread", worker_threads = 2);
async fn a_redis_outage_fails_calls_unavailable_and_sessiond_recovers_without_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis_dir = dir.path().join("redis");
    let port = free_port();
    let redis = RedisServer::start(port, &redis_dir);
    let (mut sessiond, admin) = sessiond_on(dir.path(), &[redis.url()], false);
    sessiond.serving().await;
    let pid = sessiond.pid();
    let mut client = sessiond.client().await;
    let lost = start_session(&mut client, "lost").await;

    // Load: callers run Start+Whoami rounds; once Redis is gone, each makes
    // CALLS_DURING more calls and reports how every call begun after the kill ended.
    // `killing` is set before the SIGKILL, `killed` once redis-server is reaped.
    let killing = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let (warm_tx, mut warm_rx) = tokio::sync::mpsc::channel::<()>(CALLERS);
    let mut callers = JoinSet::new();
    for caller in 0..CALLERS {
        let mut client = sessiond.client().await;
        let killing = killing.clone();
        let killed = killed.clone();
        let warm_tx = warm_tx.clone();
        callers.spawn(async move {
            let user = format!("user-{caller}");
            let mut ok_before = 0;
            let mut before_kill_failures = Vec::new();
            let mut after_kill = Vec::new();
            let mut warm = false;
            let mut round = 0;
            while after_kill.len() < CALLS_DURING {
                round += 1;
                assert!(round < 100_000, "the load loop is bounded");
                let begun_after_kill = killed.load(Ordering::SeqCst);
                let result = start_and_whoami(&mut client, &user).await;
                if begun_after_kill {
                    after_kill.push(result);
                    continue;
                }
                match &result {
                    Ok(()) => ok_before += 1,
                    // A call that was under way when Redis died may fail either way.
                    Err(_) if killing.load(Ordering::SeqCst) => {}
                    Err(_) => before_kill_failures.push(outcome(&result)),
                }
                if ok_before >= ROUNDS_BEFORE {
                    if !warm {
                        warm = true;
                        let _ = warm_tx.send(()).await;
                    }
                    // Warm: keep calling until the kill, without hammering.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (ok_before, before_kill_failures, after_kill)
        });
    }
    drop(warm_tx);
    for _ in 0..CALLERS {
        tokio::time::timeout(Duration::from_secs(60), warm_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the load warms up:\n{}", sessiond.log_text()))
            .expect("a caller warmed up");
    }

    killing.store(true, Ordering::SeqCst);
    redis.kill();
    killed.store(true, Ordering::SeqCst);

    let mut during = Vec::new();
    while let Some(report) = callers.join_next().await {
        let (ok_before, before_kill_failures, after_kill) = report.expect("caller task");
        assert!(ok_before >= ROUNDS_BEFORE);
        assert!(
            before_kill_failures.is_empty(),
            "calls fail while Redis is up: {before_kill_failures:?}\n{}",
            sessiond.log_text()
        );
        during.extend(after_kill);
    }
    let not_unavailable: Vec<String> = during
        .iter()
        .filter(|result| !matches!(result, Err(status) if status.code() == Code::Unavailable))
        .map(outcome)
        .collect();
    assert!(
        not_unavailable.is_empty(),
        "with Redis gone every call fails UNAVAILABLE (a hung call ends after {:?} with \
         DEADLINE_EXCEEDED or CANCELLED); {} of {} did not: {not_unavailable:?}\n{}",
        Daemon::CALL_TIMEOUT,
        not_unavailable.len(),
        during.len(),
        sessiond.log_text()
    );

    // Still alive and answering health while Redis is down.
    sessiond.assert_running("during the Redis outage");
    let mut health = HealthClient::new(sessiond.channel().await);
    let check = tokio::time::timeout(
        Daemon::CALL_TIMEOUT,
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("health answers during the outage");
    check.unwrap_or_else(|s| panic!("health check during the outage: {s:?}"));

    // Gateways: sessiond cannot decide, so nothing passes; Envoy's failure_mode_allow
    // and status_on_error decide what its client sees.
    let bearer = format!("Bearer {}", lost.session_token);
    let mut envoy = AuthorizationClient::new(sessiond.channel().await);
    let checked = tokio::time::timeout(
        Daemon::CALL_TIMEOUT,
        envoy.check(check_request(&[("authorization", &bearer)])),
    )
    .await
    .expect("ext_authz answers during the outage");
    assert_code(checked, Code::Unavailable);
    let forward = plain_http::get(admin, "/auth", &[("authorization", &bearer)]).await;
    assert_eq!(forward.status, 503, "{forward:?}");

    // Redis back (empty: it kept nothing), on the same port: sessiond works again.
    let _redis = RedisServer::start(port, &redis_dir);
    let mut attempts = Vec::new();
    let recovered = loop {
        let result = start_and_whoami(&mut client, "after").await;
        let ok = result.is_ok();
        attempts.push(outcome(&result));
        if ok {
            break true;
        }
        if attempts.len() >= RECOVERY_ATTEMPTS {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        recovered,
        "sessiond works again within {RECOVERY_ATTEMPTS} attempts once Redis is back; last \
         outcomes: {:?}\n{}",
        &attempts[attempts.len().saturating_sub(5)..],
        sessiond.log_text()
    );
    for round in 0..20 {
        start_and_whoami(&mut client, "after")
            .await
            .unwrap_or_else(|s| panic!("round {round} after recovery: {s:?}"));
    }
    let fresh = start_session(&mut client, "after").await;
    refresh_ok(&mut client, &fresh.refresh_token).await;
    // Sessions from before the outage went with Redis's memory: a plain refusal.
    assert_code(
        whoami(&mut client, &lost.session_token).await,
        Code::Unauthenticated,
    );
    sessiond.assert_running("after Redis came back");
    assert_eq!(
        sessiond.pid(),
        pid,
        "the same sessiond process served throughout"
    );
}

/// A real sessiond on Redis at `urls`, with its admin port for `GET /auth`, whose Redis
/// commands give up after one second.
fn sessiond_on(
    dir: &std::path::Path,
    urls: &[String],
    cluster: bool,
) -> (Daemon, std::net::SocketAddr) {
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = dir.join("sessiond.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"redis\"\nmetrics_listen = \"{admin}\"\n\n[redis]\nurls = {urls:?}\n\
             cluster = {cluster}\nkey_prefix = \"outage\"\nconnect_timeout = \"1s\"\n\
             response_timeout = \"1s\"\n"
        ),
    )
    .expect("write config");
    let sessiond = Daemon::spawn(
        &dir.join("data"),
        &dir.join("sessiond.log"),
        "info",
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
    );
    (sessiond, admin)
}

/// ext_authz's Check and forward-auth's `GET /auth` for one session: the gRPC outcome
/// of Check (its CheckResponse status code when it answers) and the HTTP status.
async fn gateways(
    sessiond: &Daemon,
    admin: std::net::SocketAddr,
    bearer: &str,
) -> (Result<i32, Code>, u16) {
    let mut envoy = AuthorizationClient::new(sessiond.channel().await);
    let checked = tokio::time::timeout(
        Daemon::CALL_TIMEOUT,
        envoy.check(check_request(&[("authorization", bearer)])),
    )
    .await
    .expect("ext_authz answers within the client's timeout")
    .map(|answer| answer.into_inner().status.map_or(0, |status| status.code))
    .map_err(|status| status.code());
    let forward = tokio::time::timeout(
        Daemon::CALL_TIMEOUT,
        plain_http::get(admin, "/auth", &[("authorization", bearer)]),
    )
    .await
    .expect("GET /auth answers within the client's timeout");
    (checked, forward.status)
}

/// While `freeze` holds Redis still, both gateways refuse with UNAVAILABLE / 503 well
/// within the server's call timeout (10 s by default; Redis commands give up after 1 s);
/// after `thaw`, the same session passes again, with no restart.
async fn gateways_refuse_while_redis_hangs_then_pass(
    mut sessiond: Daemon,
    admin: std::net::SocketAddr,
    freeze: impl Fn(),
    thaw: impl Fn(),
) {
    sessiond.serving().await;
    let mut client = sessiond.client().await;
    let started = start_session(&mut client, "gate").await;
    let bearer = format!("Bearer {}", started.session_token);
    assert_eq!(gateways(&sessiond, admin, &bearer).await, (Ok(0), 200));

    freeze();
    let begun = Instant::now();
    let during = gateways(&sessiond, admin, &bearer).await;
    let took = begun.elapsed();
    thaw();
    assert_eq!(
        during,
        (Err(Code::Unavailable), 503),
        "Redis hung: nothing passes, and the answer says retry\n{}",
        sessiond.log_text()
    );
    assert!(
        took < Duration::from_secs(10),
        "both answered within the call timeout, not after it ({took:?})"
    );

    let mut attempts = Vec::new();
    while attempts.len() < RECOVERY_ATTEMPTS {
        let outcome = gateways(&sessiond, admin, &bearer).await;
        attempts.push(outcome);
        if outcome == (Ok(0), 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        attempts.last(),
        Some(&(Ok(0), 200)),
        "the gateways pass again once Redis answers: {attempts:?}\n{}",
        sessiond.log_text()
    );
    sessiond.assert_running("after Redis answered again");
}

on_backends!(gateways_answer_unavailable_while_a_standalone_redis_hangs_then_recover: redis; flavor = "multi_thread", worker_threads = 2);
async fn gateways_answer_unavailable_while_a_standalone_redis_hangs_then_recover() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start(free_port(), &dir.path().join("redis"));
    let (sessiond, admin) = sessiond_on(dir.path(), &[redis.url()], false);
    gateways_refuse_while_redis_hangs_then_pass(
        sessiond,
        admin,
        || redis.freeze(),
        || redis.thaw(),
    )
    .await;
}

on_backends!(gateways_answer_unavailable_while_a_redis_cluster_hangs_then_recover: cluster; flavor = "multi_thread", worker_threads = 2);
async fn gateways_answer_unavailable_while_a_redis_cluster_hangs_then_recover() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = RedisCluster::start(&dir.path().join("cluster"));
    let (sessiond, admin) = sessiond_on(dir.path(), &cluster.urls(), true);
    let every_node = |act: fn(&RedisServer)| cluster.nodes.iter().for_each(act);
    gateways_refuse_while_redis_hangs_then_pass(
        sessiond,
        admin,
        || every_node(RedisServer::freeze),
        || every_node(RedisServer::thaw),
    )
    .await;
}
