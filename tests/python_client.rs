//! The Python client (`clients/python`) against the real server: `setup_env.sh` makes its
//! venv and stubs, then its pytest suite runs with `SESSIOND_ADDR` naming an in-process
//! server. Without `python3` the test is skipped, loudly, except under CI (`CI` set),
//! where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestServer;

/// The repository root: commands run from here, paths are relative to it.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a working `python3` is on PATH.
fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs `command` to completion on a blocking thread (the server keeps serving on the
/// runtime meanwhile) and panics with its output unless it succeeds.
async fn run_ok(what: &'static str, mut command: Command) -> Output {
    command.current_dir(root());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("blocking task ends")
        .unwrap_or_else(|error| panic!("{what}: cannot run: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    eprintln!("{what}: ok\n{stdout}{stderr}");
    output
}

#[tokio::test]
async fn python_client_runs_the_whole_lifecycle() {
    if !python3_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is not on PATH: CI needs it for the Python client test"
        );
        eprintln!(
            "\n*** SKIPPED python_client: python3 is not on PATH, so the Python client \
             (clients/python) was NOT tested. Install python3 (with venv) to run it. ***\n"
        );
        return;
    }
    // Access tokens on, so the client's tests can verify them with PyJWT.
    let test = TestServer::with_config("[groups.default]\naccess_token_ttl = \"5m\"").await;
    // PyJWT checks `exp` against the real clock: the server's clock must show it too.
    test.clock.set_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64),
    );
    let addr = test.running().local_addr().to_string();
    let python_dir: PathBuf = root().join("clients/python");

    let mut setup = Command::new("bash");
    setup.arg(python_dir.join("setup_env.sh"));
    run_ok("clients/python/setup_env.sh", setup).await;

    let mut pytest = Command::new(python_dir.join(".venv/bin/python"));
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(python_dir.join("tests"))
        .env("SESSIOND_ADDR", &addr);
    run_ok("pytest clients/python/tests", pytest).await;
}
