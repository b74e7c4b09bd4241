//! The Python client (`clients/python`) as a user gets it: its
//! `scripts/test-installed.sh` builds the wheel in a fresh venv outside the checkout,
//! installs it, checks the committed stubs against `proto/` and that the package imports
//! from the venv, then runs a copy of the pytest suite (sync and asyncio) there with
//! `SESSIOND_ADDR` naming an in-process server. Without `python3` the test is skipped,
//! loudly, except under CI (`CI` set), where it fails.

use crate::common;

use std::process::Command;

use common::foreign_client::{root, run_ok, server_with_access_tokens, toolchain_available};

on_backends!(python_package_installed_from_its_wheel_passes_the_suite: sled);
async fn python_package_installed_from_its_wheel_passes_the_suite() {
    if !toolchain_available("python_client", &["python3"], "Install python3 (with venv)") {
        return;
    }
    let test = server_with_access_tokens().await;
    let addr = test.running().local_addr().to_string();

    let mut suite = Command::new("bash");
    suite
        .arg(root().join("clients/python/scripts/test-installed.sh"))
        .env("SESSIOND_ADDR", &addr);
    run_ok("clients/python/scripts/test-installed.sh", suite).await;
}
