//! The Python client (`clients/python`) as a user gets it: its
//! `scripts/test-installed.sh` builds the wheel in a fresh venv outside the checkout,
//! installs it, checks the committed stubs against `proto/` and that the package imports
//! from the venv, then runs a copy of the pytest suite (sync and asyncio) there with
//! `SESSIOND_ADDR` naming an in-process server. Without `python3` the test is skipped,
//! loudly, except under CI (`CI` set), where it fails.
//!
//! The server has the groups [`CLIENT_GROUPS`] names, so the suites of both this client
//! and the Go one (`go_client.rs`) can bind sessions to device keys (docs/binding.md).

use crate::common;

use std::process::Command;

use common::foreign_client::{root, run_ok, toolchain_available};
use common::TestServer;

/// The groups a client suite calls: `default` issues access tokens (5 min), which carry
/// `cnf.jkt` when the session is bound; `every` asks a proof on Whoami too; `nonce`
/// wants server nonces in proofs. `max_skew` is wide because the server's clock shows
/// the real time at boot and then stands still, while the suite signs proofs at the
/// real time (its JWT library also checks `exp` against it).
pub const CLIENT_GROUPS: &str = r#"
[groups.default]
access_token_ttl = "5m"

[groups.every]
proof_on_use = "every_call"

[groups.nonce]
require_nonce = true

[proofs]
max_skew = "30m"
"#;

/// A server for a client suite: [`CLIENT_GROUPS`], its clock set to the real time.
pub async fn server_for_client_suite() -> TestServer {
    let test = TestServer::with_config(CLIENT_GROUPS).await;
    test.clock.set_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64),
    );
    test
}

on_backends!(python_package_installed_from_its_wheel_passes_the_suite: sled);
async fn python_package_installed_from_its_wheel_passes_the_suite() {
    if !toolchain_available("python_client", &["python3"], "Install python3 (with venv)") {
        return;
    }
    let test = server_for_client_suite().await;
    let addr = test.running().local_addr().to_string();

    let mut suite = Command::new("bash");
    suite
        .arg(root().join("clients/python/scripts/test-installed.sh"))
        .env("SESSIOND_ADDR", &addr);
    run_ok("clients/python/scripts/test-installed.sh", suite).await;
}
