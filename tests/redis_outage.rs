//! A Redis outage under load: with its Redis gone, a real `sessiond` answers every call
//! UNAVAILABLE (and answers, rather than hanging), lets no gateway request pass (ext_authz
//! fails UNAVAILABLE, forward-auth answers 503), keeps serving health, and works again
//! once Redis is back, without a restart. The test runs a Redis server of its own
//! (standalone, in memory, on a free loopback port) so it can kill it.
#![cfg(redis_tests)]

mod common;
mod plain_http;
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// A `redis-server` child of the test (in memory, loopback only), SIGKILLed on drop.
struct RedisServer {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts redis-server on `port` with its files in `dir`, and waits until it answers.
    fn start(port: u16, dir: &Path) -> RedisServer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("redis.log"))
            .expect("open redis log");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it on PATH? see scripts/redis-test-env.sh)");
        let mut server = RedisServer {
            child,
            port,
            dir: dir.to_owned(),
        };
        server.wait_answering();
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Whether it answers PING with PONG.
    fn pong(&self) -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn wait_answering(&mut self) {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("poll redis-server") {
                panic!("redis-server exited ({status}):\n{}", self.log_text());
            }
            if self.pong() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server does not answer:\n{}", self.log_text());
    }

    /// SIGKILL, and wait until the process is gone.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL redis-server");
        self.child.wait().expect("reap redis-server");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_calls_unavailable_and_sessiond_recovers_without_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir).expect("redis dir");
    let port = free_port();
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let redis = RedisServer::start(port, &redis_dir);

    let config = dir.path().join("sessiond.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"redis\"\nmetrics_listen = \"{admin}\"\n\n[redis]\nurls = [\"redis://127.0.0.1:{port}\"]\n\
             key_prefix = \"outage\"\nconnect_timeout = \"1s\"\nresponse_timeout = \"1s\"\n"
        ),
    )
    .expect("write config");
    let mut sessiond = Daemon::spawn(
        &dir.path().join("data"),
        &dir.path().join("sessiond.log"),
        "info",
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
    );
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
