//! `sessionctl` against a live server: the built binary, run as a process, talking gRPC
//! to a real `sessiond` on a loopback port.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::TestServer;
use serde_json::Value;

/// The environment variables sessionctl reads; cleared so the caller's shell cannot leak in.
const ENV: [&str; 4] = [
    "SESSIOND_ADDR",
    "SESSIOND_API_KEY",
    "SESSIOND_SESSION_TOKEN",
    "SESSIOND_REFRESH_TOKEN",
];

/// A finished sessionctl run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as JSON, after checking the run succeeded.
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).expect("stdout is JSON")
    }

    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        &self.stdout
    }
}

/// Runs sessionctl with `args`, `env` and `stdin`, off the async runtime (the server
/// under test runs on it).
async fn sessionctl_with(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        for name in ENV {
            command.env_remove(name);
        }
        let mut child = command
            .args(&args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sessionctl");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("sessionctl runs");
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
        }
    })
    .await
    .expect("sessionctl task")
}

/// Runs `sessionctl --addr <test server> args...`.
async fn sessionctl(test: &TestServer, args: &[&str]) -> Run {
    let url = test.url();
    let mut all = vec!["--addr", url.as_str()];
    all.extend_from_slice(args);
    sessionctl_with(&all, &[], "").await
}

/// `start user --json`, parsed.
async fn start(test: &TestServer, user: &str) -> Value {
    sessionctl(test, &["start", user, "--json"]).await.json()
}

/// A string field of a JSON value.
fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is a string in {value}"))
}

on_backends!(start_json_returns_tokens_and_an_active_session: sled);
async fn start_json_returns_tokens_and_an_active_session() {
    let test = TestServer::start().await;

    let started = sessionctl(
        &test,
        &[
            "--json",
            "start",
            "alice",
            "--meta",
            "device=laptop",
            "--attr",
            "role=admin",
        ],
    )
    .await
    .json();

    assert!(text(&started, "/session_token").starts_with("st_"));
    assert!(text(&started, "/refresh_token").starts_with("rt_"));
    assert_eq!(started["expires_in_seconds"], 86_400);
    assert_eq!(text(&started, "/session/user_id"), "alice");
    assert_eq!(text(&started, "/session/state"), "ACTIVE");
    assert_eq!(
        text(&started, "/session/created_at"),
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(
        text(&started, "/session/expires_at"),
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(text(&started, "/session/metadata/device"), "laptop");
    assert_eq!(text(&started, "/session/attributes/role"), "admin");
}

on_backends!(whoami_shows_the_session_of_a_token: sled);
async fn whoami_shows_the_session_of_a_token() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;

    let run = sessionctl(&test, &["whoami", text(&started, "/session_token")]).await;

    let out = run.ok();
    assert!(out.contains(text(&started, "/session/session_id")), "{out}");
    assert!(out.contains("user_id:"), "{out}");
    assert!(out.contains("alice"), "{out}");
    assert!(out.contains("ACTIVE"), "{out}");
}

on_backends!(whoami_reads_the_token_from_the_environment: sled);
async fn whoami_reads_the_token_from_the_environment() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;
    let token = text(&started, "/session_token");

    let url = test.url();
    let run = sessionctl_with(
        &["--addr", &url, "--json", "whoami"],
        &[("SESSIOND_SESSION_TOKEN", token)],
        "",
    )
    .await;

    assert_eq!(text(&run.json(), "/session/user_id"), "alice");
}

on_backends!(whoami_reads_the_token_from_stdin_for_a_dash: sled);
async fn whoami_reads_the_token_from_stdin_for_a_dash() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;
    let token = text(&started, "/session_token");

    let url = test.url();
    let run = sessionctl_with(
        &["--addr", &url, "--json", "whoami", "-"],
        &[],
        &format!("{token}\n"),
    )
    .await;

    assert_eq!(text(&run.json(), "/session/user_id"), "alice");
}

on_backends!(refresh_returns_a_new_working_token_pair: sled);
async fn refresh_returns_a_new_working_token_pair() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;

    let refreshed = sessionctl(
        &test,
        &["refresh", "--json", text(&started, "/refresh_token")],
    )
    .await
    .json();

    let new_token = text(&refreshed, "/session_token");
    assert_ne!(new_token, text(&started, "/session_token"));
    assert_ne!(
        text(&refreshed, "/refresh_token"),
        text(&started, "/refresh_token")
    );
    let whoami = sessionctl(&test, &["whoami", "--json", new_token])
        .await
        .json();
    assert_eq!(
        text(&whoami, "/session/session_id"),
        text(&started, "/session/session_id")
    );
}

on_backends!(extend_moves_the_expiry_to_now_plus_the_keep_alive: sled);
async fn extend_moves_the_expiry_to_now_plus_the_keep_alive() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;
    test.advance(std::time::Duration::from_secs(3600));

    let extended = sessionctl(
        &test,
        &[
            "extend",
            text(&started, "/session/session_id"),
            "--keep-alive",
            "86400",
            "--json",
        ],
    )
    .await
    .json();

    assert_eq!(extended["extended"], true);
    assert_eq!(
        text(&extended, "/session/expires_at"),
        "2026-01-02T01:00:00Z"
    );
}

on_backends!(list_table_shows_the_session: sled);
async fn list_table_shows_the_session() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;

    let run = sessionctl(&test, &["list", "alice"]).await;

    let out = run.ok();
    assert!(out.starts_with("SESSION ID"), "{out}");
    assert!(out.contains(text(&started, "/session/session_id")), "{out}");
    assert!(out.contains("2026-01-02T00:00:00Z"), "{out}");
}

on_backends!(list_json_holds_the_sessions_newest_first: sled);
async fn list_json_holds_the_sessions_newest_first() {
    let test = TestServer::start().await;
    let first = start(&test, "alice").await;
    test.advance(std::time::Duration::from_secs(1));
    let second = start(&test, "alice").await;

    let listed = sessionctl(&test, &["list", "alice", "--json"]).await.json();

    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .expect("sessions array")
        .iter()
        .map(|session| text(session, "/session_id"))
        .collect();
    assert_eq!(
        ids,
        [
            text(&second, "/session/session_id"),
            text(&first, "/session/session_id")
        ]
    );
    assert_eq!(listed["next_page_token"], "");
}

on_backends!(list_all_pages_follows_the_page_tokens: sled);
async fn list_all_pages_follows_the_page_tokens() {
    let test = TestServer::start().await;
    for _ in 0..3 {
        start(&test, "alice").await;
        test.advance(std::time::Duration::from_secs(1));
    }

    let listed = sessionctl(
        &test,
        &["list", "alice", "--page-size", "1", "--all-pages", "--json"],
    )
    .await
    .json();

    assert_eq!(listed["sessions"].as_array().map(Vec::len), Some(3));
    assert_eq!(listed["next_page_token"], "");
}

on_backends!(logout_by_token_revokes_the_session: sled);
async fn logout_by_token_revokes_the_session() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;

    let run = sessionctl(
        &test,
        &["logout", "--token", text(&started, "/session_token")],
    )
    .await;

    assert_eq!(run.ok(), "revoked 1 session\n");
}

on_backends!(logout_all_except_keeps_only_that_session: sled);
async fn logout_all_except_keeps_only_that_session() {
    let test = TestServer::start().await;
    let kept = start(&test, "alice").await;
    start(&test, "alice").await;
    start(&test, "alice").await;
    let kept_id = text(&kept, "/session/session_id");

    let logout = sessionctl(
        &test,
        &[
            "logout",
            "--session-id",
            kept_id,
            "--all",
            "--except",
            kept_id,
            "--json",
        ],
    )
    .await
    .json();

    assert_eq!(logout["revoked_count"], 2);
    let listed = sessionctl(&test, &["list", "alice", "--json"]).await.json();
    assert_eq!(listed["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(text(&listed, "/sessions/0/session_id"), kept_id);
}

on_backends!(refresh_all_extends_every_active_session_of_the_user: sled);
async fn refresh_all_extends_every_active_session_of_the_user() {
    let test = TestServer::start().await;
    start(&test, "alice").await;
    start(&test, "alice").await;

    let refreshed = sessionctl(
        &test,
        &["refresh-all", "alice", "--keep-alive", "172800", "--json"],
    )
    .await
    .json();

    assert_eq!(refreshed["refreshed_count"], 2);
    assert_eq!(
        text(&refreshed, "/sessions/1/expires_at"),
        "2026-01-03T00:00:00Z"
    );
}

on_backends!(whoami_after_logout_fails_unauthenticated_with_exit_1: sled);
async fn whoami_after_logout_fails_unauthenticated_with_exit_1() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;
    let token = text(&started, "/session_token");
    sessionctl(&test, &["logout", "--token", token]).await.ok();

    let run = sessionctl(&test, &["whoami", token]).await;

    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.starts_with("error: UNAUTHENTICATED: "),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

on_backends!(a_request_the_server_refuses_prints_its_status_and_exits_1: sled);
async fn a_request_the_server_refuses_prints_its_status_and_exits_1() {
    let test = TestServer::start().await;

    let run = sessionctl(&test, &["extend", "not-a-uuid"]).await;

    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("session_id"), "{}", run.stderr);
}

on_backends!(an_unreachable_server_is_a_connection_error_with_exit_2: sled);
async fn an_unreachable_server_is_a_connection_error_with_exit_2() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");

    let run = sessionctl_with(&["--addr", &addr, "list", "alice"], &[], "").await;

    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with(&format!("error: cannot connect to http://{addr}: ")),
        "{}",
        run.stderr
    );
}

on_backends!(a_server_that_does_not_answer_fails_deadline_exceeded_after_the_timeout: sled);
async fn a_server_that_does_not_answer_fails_deadline_exceeded_after_the_timeout() {
    // The kernel completes the connection into the backlog; nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = silent.local_addr().expect("local addr").to_string();

    let run = sessionctl_with(
        &["--addr", &addr, "--timeout", "1", "list", "alice"],
        &[],
        "",
    )
    .await;

    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "error: DEADLINE_EXCEEDED: no answer within 1s\n"
    );
    drop(silent);
}

on_backends!(a_malformed_address_is_a_usage_error_with_exit_2: sled);
async fn a_malformed_address_is_a_usage_error_with_exit_2() {
    let run = sessionctl_with(&["--addr", "http://exa mple:1", "list", "alice"], &[], "").await;

    assert_eq!(run.code, Some(2));
    assert!(run.stderr.starts_with("error: --addr "), "{}", run.stderr);
}

on_backends!(help_never_shows_the_api_key_or_a_token_from_the_environment: sled);
async fn help_never_shows_the_api_key_or_a_token_from_the_environment() {
    let env = [
        ("SESSIOND_API_KEY", "k3y-from-env"),
        ("SESSIOND_SESSION_TOKEN", "st_t0ken-from-env"),
    ];
    for args in [&["--help"][..], &["whoami", "--help"][..]] {
        let run = sessionctl_with(args, &env, "").await;

        let out = run.ok();
        assert!(out.contains("SESSIOND_API_KEY") || out.contains("SESSIOND_SESSION_TOKEN"));
        assert!(!out.contains("from-env"), "{out}");
    }
}

on_backends!(backup_writes_a_verified_file: sled);
async fn backup_writes_a_verified_file() {
    let test = TestServer::start().await;
    start(&test, "alice").await;
    start(&test, "bob").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("sessions.backup");

    let report = sessionctl(
        &test,
        &["backup", "--out", out.to_str().expect("UTF-8"), "--json"],
    )
    .await
    .json();

    assert_eq!(report["sessions"], 2);
    assert_eq!(report["signing_keys"], 1);
    let file = std::fs::read(&out).expect("the backup file");
    let backup = sessiond::store::backup_file::read_backup(&file).expect("it verifies");
    assert_eq!(backup.records.len(), 2);
    assert!(
        !out.with_extension("partial").exists(),
        "no partial file left"
    );
}

on_backends!(start_with_a_client_shows_it_in_whoami_and_list: sled);
async fn start_with_a_client_shows_it_in_whoami_and_list() {
    let test = TestServer::start().await;
    let started = sessionctl(
        &test,
        &[
            "start",
            "alice",
            "--ip",
            "192.0.2.1",
            "--user-agent",
            "Firefox/140",
            "--device-label",
            "laptop",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(text(&started, "/session/client/ip"), "192.0.2.1");
    let token = text(&started, "/session_token");

    let whoami = sessionctl(&test, &["whoami", token, "--ip", "192.0.2.9", "--json"])
        .await
        .json();
    assert_eq!(text(&whoami, "/session/last_ip"), "192.0.2.9");
    assert_eq!(text(&whoami, "/session/last_user_agent"), "Firefox/140");

    let run = sessionctl(&test, &["list", "alice"]).await;
    let out = run.ok();
    assert!(
        out.contains("LAST IP") && out.contains("192.0.2.9"),
        "{out}"
    );
    assert!(out.contains("laptop"), "{out}");
}

on_backends!(revoke_user_ends_the_sessions_authenticated_before_not_before: sled);
async fn revoke_user_ends_the_sessions_authenticated_before_not_before() {
    let test = TestServer::start().await;
    let started = start(&test, "alice").await;
    let run = sessionctl(
        &test,
        &[
            "revoke-user",
            "alice",
            "--not-before",
            "2026-01-01T00:00:01Z",
        ],
    )
    .await;
    assert!(run.ok().contains("revoked 1"), "{}", run.stdout);
    let token = text(&started, "/session_token");
    let whoami = sessionctl(&test, &["whoami", token]).await;
    assert_eq!(whoami.code, Some(1));
    let bad = sessionctl(
        &test,
        &["revoke-user", "alice", "--not-before", "yesterday"],
    )
    .await;
    assert_eq!(bad.code, Some(2));
}
