//! Smoke tests of the load generator (`sessiond-bench`), so it cannot rot: it runs for
//! about a second against a real in-process server and its JSON report must hold OK
//! calls. Speed is never asserted here; that is what the bench itself is for.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestServer;
use serde_json::Value;

/// Runs the bench binary with `args` off the async runtime (the server keeps serving
/// on it meanwhile) and returns what it printed and how it exited.
async fn run_bench(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sessiond-bench"))
            .args(&args)
            .env_remove("SESSIOND_BENCH_ADDR")
            .output()
            .expect("the bench binary runs")
    })
    .await
    .expect("the bench task finishes")
}

/// Runs the bench against `test` with the common small settings plus `extra`, expects
/// success and returns its JSON report.
async fn bench_json(test: &TestServer, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("report.json");
    let mut args: Vec<String> = [
        "--addr",
        &test.url(),
        "--concurrency",
        "4",
        "--connections",
        "1",
        "--sessions",
        "20",
        "--warmup",
        "200ms",
        "--json",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    args.push(json_path.display().to_string());
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));

    let output = run_bench(args).await;

    assert!(
        output.status.success(),
        "bench failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    read_json(&json_path)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the bench wrote its JSON");
    serde_json::from_str(&text).expect("the JSON report parses")
}

/// `count` and the OK count of a summary object.
fn count_and_ok(summary: &Value) -> (u64, u64) {
    let count = summary["count"].as_u64().expect("count is a number");
    let ok = summary["statusCodeDistribution"]["OK"]
        .as_u64()
        .unwrap_or(0);
    (count, ok)
}

/// Every status code of a summary other than OK, with its count.
fn failures(summary: &Value) -> Vec<(String, u64)> {
    summary["statusCodeDistribution"]
        .as_object()
        .expect("statusCodeDistribution is an object")
        .iter()
        .filter(|(code, _)| code.as_str() != "OK")
        .map(|(code, n)| (code.clone(), n.as_u64().unwrap_or(0)))
        .collect()
}

on_backends!(bench_whoami_reports_ok_calls_and_the_health_baseline: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_whoami_reports_ok_calls_and_the_health_baseline() {
    let test = TestServer::start().await;

    let report = bench_json(&test, &["--call", "whoami", "--duration", "1s"]).await;

    assert_eq!(report["call"], "whoami");
    let (count, ok) = count_and_ok(&report);
    assert!(count > 0 && ok > 0, "count {count}, OK {ok}");
    assert_eq!(failures(&report), vec![]);
    assert!(report["rps"].as_f64().is_some_and(|rps| rps > 0.0));
    let percentiles: Vec<u64> = report["latencyDistribution"]
        .as_array()
        .expect("latencyDistribution is a list")
        .iter()
        .map(|point| point["percentage"].as_u64().expect("whole percentage"))
        .collect();
    assert_eq!(percentiles, vec![10, 25, 50, 75, 90, 95, 99]);
    let (base_count, base_ok) = count_and_ok(&report["baseline"]);
    assert!(
        base_count > 0 && base_ok > 0,
        "baseline count {base_count}, OK {base_ok}"
    );
    assert!(report["ratio"]["rps"].as_f64().is_some_and(|rps| rps > 0.0));
    assert!(report["ratio"]["p99"].as_f64().is_some_and(|p99| p99 > 0.0));
}

on_backends!(bench_refresh_follows_its_token_chains_without_a_reuse: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_refresh_follows_its_token_chains_without_a_reuse() {
    let test = TestServer::start().await;

    let report = bench_json(
        &test,
        &["--call", "refresh", "--duration", "1s", "--no-baseline"],
    )
    .await;

    let (count, ok) = count_and_ok(&report);
    assert!(count > 0 && ok > 0, "count {count}, OK {ok}");
    // A refresh token presented twice would revoke its session: UNAUTHENTICATED.
    assert_eq!(failures(&report), vec![]);
    assert!(report.get("baseline").is_none());
}

on_backends!(bench_start_makes_exactly_the_calls_counted: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_start_makes_exactly_the_calls_counted() {
    let test = TestServer::start().await;

    let report = bench_json(
        &test,
        &[
            "--call",
            "start",
            "--count",
            "50",
            "--no-baseline",
            "--warmup",
            "0s",
        ],
    )
    .await;

    assert_eq!(count_and_ok(&report), (50, 50));
    assert_eq!(report["endReason"], "count");
}

on_backends!(bench_mix_drives_every_call: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_mix_drives_every_call() {
    let test = TestServer::start().await;

    let report = bench_json(
        &test,
        &[
            "--mix",
            "whoami=1,start=1,refresh=1,extend=1,refresh-all=1,health=1",
            "--users",
            "4",
            "--sessions-per-user",
            "2",
            "--count",
            "120",
            "--no-baseline",
        ],
    )
    .await;

    assert_eq!(report["call"], "mix");
    assert_eq!(count_and_ok(&report), (120, 120));
    for call in [
        "whoami",
        "start",
        "refresh",
        "extend",
        "refresh-all",
        "health",
    ] {
        let (count, ok) = count_and_ok(&report["calls"][call]);
        assert!(count > 0 && ok == count, "{call}: count {count}, OK {ok}");
    }
}

on_backends!(bench_without_a_server_fails_with_a_clear_message: sled);
async fn bench_without_a_server_fails_with_a_clear_message() {
    // A port that was just free: nothing listens on it once the listener is dropped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);

    let output = run_bench(vec![
        "--addr".into(),
        format!("http://{addr}"),
        "--call".into(),
        "health".into(),
        "--duration".into(),
        "1s".into(),
    ])
    .await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to"), "stderr: {stderr}");
}

/// A server that takes SessionService calls only with the API key `bench-key-5a1e`.
async fn server_with_api_key() -> TestServer {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(b"bench-key-5a1e")
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    TestServer::with_config(&format!(
        "[[callers]]\nname = \"bench\"\napi_key_sha256 = \"{hash}\"\ncalls = [\"*\"]\n"
    ))
    .await
}

on_backends!(bench_sends_its_api_key_on_every_call: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_sends_its_api_key_on_every_call() {
    let test = server_with_api_key().await;

    let report = bench_json(
        &test,
        &[
            "--call",
            "whoami",
            "--count",
            "40",
            "--no-baseline",
            "--api-key",
            "bench-key-5a1e",
        ],
    )
    .await;

    assert_eq!(count_and_ok(&report), (40, 40));
}

on_backends!(bench_without_the_api_key_stops_while_preparing: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_without_the_api_key_stops_while_preparing() {
    let test = server_with_api_key().await;

    let output = run_bench(vec![
        "--addr".into(),
        test.url(),
        "--call".into(),
        "whoami".into(),
        "--sessions".into(),
        "4".into(),
        "--concurrency".into(),
        "2".into(),
        "--count".into(),
        "10".into(),
    ])
    .await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Unauthenticated"), "stderr: {stderr}");
}

/// The bare tonic reference server, started on a free loopback port; killed on drop.
struct Reference {
    child: std::process::Child,
    url: String,
}

impl Reference {
    fn spawn() -> Reference {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_tonic-reference"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("tonic-reference runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("tonic-reference says where it serves");
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("an address")
            .to_owned();
        Reference {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// A Whoami run is also measured against the reference's canned Whoami.
on_backends!(bench_reports_ratios_to_the_bare_tonic_reference: sled; flavor = "multi_thread", worker_threads = 2);
async fn bench_reports_ratios_to_the_bare_tonic_reference() {
    let test = TestServer::start().await;
    let reference = Reference::spawn();

    let report = bench_json(
        &test,
        &[
            "--call",
            "whoami",
            "--duration",
            "500ms",
            "--reference",
            &reference.url,
        ],
    )
    .await;

    for phase in ["reference", "referenceWhoami"] {
        let (count, ok) = count_and_ok(&report[phase]);
        assert!(count > 0 && count == ok, "{phase} count {count}, OK {ok}");
    }
    for ratio in [
        "ratioToReference",
        "baselineToReference",
        "ratioToReferenceWhoami",
    ] {
        assert!(
            report[ratio]["rps"].as_f64().is_some_and(|rps| rps > 0.0),
            "{ratio}: {}",
            report[ratio]
        );
    }
}
