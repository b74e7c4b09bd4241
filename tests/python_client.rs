//! The Python client (`clients/python`) against the real server: `setup_env.sh` makes its
//! venv and stubs, then its pytest suite runs with `SESSIOND_ADDR` naming an in-process
//! server. Without `python3` the test is skipped, loudly, except under CI (`CI` set),
//! where it fails.

mod common;

use std::process::Command;

use common::foreign_client::{root, run_ok, server_with_access_tokens, toolchain_available};

#[tokio::test]
async fn python_client_runs_the_whole_lifecycle() {
    if !toolchain_available("python_client", &["python3"], "Install python3 (with venv)") {
        return;
    }
    let test = server_with_access_tokens().await;
    let addr = test.running().local_addr().to_string();
    let python_dir = root().join("clients/python");

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
