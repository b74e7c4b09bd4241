//! `sessionctl health` (what the container image's HEALTHCHECK runs) and `--version`,
//! as the built binary against a real server on a loopback port: the exit code is the
//! answer.

use crate::common;

use std::process::{Command, Output};

use common::TestServer;
use serde_json::Value;

/// Runs sessionctl with `args` off the async runtime (the server under test runs on
/// it), without the caller's SESSIOND_* settings.
async fn sessionctl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sessionctl"))
            .env_remove("SESSIOND_ADDR")
            .env_remove("SESSIOND_API_KEY")
            .args(&args)
            .output()
            .expect("run sessionctl")
    })
    .await
    .expect("sessionctl task")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

on_backends!(health_prints_serving_and_exits_0: sled);
async fn health_prints_serving_and_exits_0() {
    let test = TestServer::start().await;

    let run = sessionctl(&["--addr", &test.url(), "health"]).await;

    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "SERVING\n");
}

on_backends!(health_json_names_the_service_asked_about: sled);
async fn health_json_names_the_service_asked_about() {
    let test = TestServer::start().await;

    let default = sessionctl(&["--addr", &test.url(), "--json", "health"]).await;
    let whole = sessionctl(&["--addr", &test.url(), "--json", "health", "--service", ""]).await;

    let default: Value = serde_json::from_slice(&default.stdout).expect("JSON");
    assert_eq!(default["service"], "session.v1.SessionService");
    assert_eq!(default["status"], "SERVING");
    let whole: Value = serde_json::from_slice(&whole.stdout).expect("JSON");
    assert_eq!(whole["service"], "");
    assert_eq!(whole["status"], "SERVING");
}

on_backends!(health_needs_no_api_key_even_where_callers_are_configured: sled);
async fn health_needs_no_api_key_even_where_callers_are_configured() {
    let key_hash = "0".repeat(64);
    let test = TestServer::with_config(&format!(
        "[[callers]]\nname = \"app\"\napi_key_sha256 = \"{key_hash}\"\ncalls = [\"*\"]"
    ))
    .await;

    let bare = sessionctl(&["--addr", &test.url(), "health"]).await;
    let with_key = sessionctl(&["--addr", &test.url(), "--api-key", "other", "health"]).await;

    assert_eq!(bare.status.code(), Some(0), "{}", text(&bare.stderr));
    assert_eq!(
        with_key.status.code(),
        Some(0),
        "{}",
        text(&with_key.stderr)
    );
}

on_backends!(health_of_an_unknown_service_fails_with_its_status_and_exit_1: sled);
async fn health_of_an_unknown_service_fails_with_its_status_and_exit_1() {
    let test = TestServer::start().await;

    let run = sessionctl(&["--addr", &test.url(), "health", "--service", "no.Such"]).await;

    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        text(&run.stderr),
        "error: NOT_FOUND: service not registered\n"
    );
}

on_backends!(health_without_a_server_is_a_connection_error_with_exit_2: sled);
async fn health_without_a_server_is_a_connection_error_with_exit_2() {
    let mut test = TestServer::start().await;
    let url = test.url();
    test.stop().await;

    let run = sessionctl(&["--addr", &url, "--timeout", "2", "health"]).await;

    assert_eq!(run.status.code(), Some(2));
    assert!(
        text(&run.stderr).starts_with(&format!("error: cannot connect to {url}: ")),
        "{}",
        text(&run.stderr)
    );
}

on_backends!(version_prints_the_crate_version: sled);
async fn version_prints_the_crate_version() {
    let run = sessionctl(&["--version"]).await;

    assert_eq!(run.status.code(), Some(0));
    assert_eq!(
        text(&run.stdout),
        format!("sessionctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}
