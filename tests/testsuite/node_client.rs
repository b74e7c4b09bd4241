//! The TypeScript client (`clients/node`) as a user gets it, and the proto's checks that
//! run on its tools: `npm ci` installs the locked dependencies (buf among them), then
//! `scripts/test-packed.sh` packs the package (its `prepack` generates the stubs and
//! compiles), installs the tarball into an empty project outside the checkout and runs a
//! TypeScript program and the `node --test` suite there through the installed package,
//! with `SESSIOND_ADDR` naming an in-process server (configured by the suite's own
//! `clients/node/test/sessiond.toml`, its clock following the wall clock); and
//! `npm run proto:check` runs `buf lint` and `buf breaking` on `proto/`. Without node
//! and npm the tests are skipped, loudly, except under CI (`CI` set), where they fail.

use crate::common;

use std::process::Command;
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::foreign_client::{root, run_ok, run_ok_blocking, toolchain_available};
use common::TestServer;
use sessiond::clock::ManualClock;

/// The server config the suite expects, kept beside it so a server started by hand
/// (`cargo run -- --config clients/node/test/sessiond.toml`) is the same.
const SUITE_CONFIG: &str = include_str!("../../clients/node/test/sessiond.toml");

/// Keeps a server's clock at the wall clock's time until dropped. The suite runs for
/// minutes (pack, install, compile, then the tests) and checks the server's times
/// against real ones: jose checks an access token's `exp`, the server a proof's `iat`.
struct FollowingWallClock(tokio::task::JoinHandle<()>);

impl FollowingWallClock {
    fn start(clock: Arc<ManualClock>) -> FollowingWallClock {
        FollowingWallClock(tokio::spawn(async move {
            loop {
                let now = SystemTime::now().duration_since(UNIX_EPOCH);
                clock.set_ms(now.map_or(0, |since| since.as_millis() as u64));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

impl Drop for FollowingWallClock {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `npm` in the client's directory, quiet about audits, funding and its own updates.
fn npm(args: &[&str]) -> Command {
    let mut npm = Command::new("npm");
    npm.args(args)
        .args(["--no-audit", "--no-fund", "--no-update-notifier"])
        .current_dir(root().join("clients/node"));
    npm
}

/// Whether node and npm are there; then `npm ci`, once for both tests of this file
/// (it replaces node_modules, so two at once would trip over each other).
fn node_ready(suite: &str) -> bool {
    static NPM_CI: Once = Once::new();
    if !toolchain_available(
        suite,
        &["node", "npm"],
        "Install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm)",
    ) {
        return false;
    }
    // No install scripts: the one dependency that has one (buf) works without it.
    NPM_CI.call_once(|| {
        run_ok_blocking("npm ci (clients/node)", npm(&["ci", "--ignore-scripts"]));
    });
    true
}

on_backends!(node_package_installed_from_its_tarball_passes_the_suite: sled);
async fn node_package_installed_from_its_tarball_passes_the_suite() {
    if !node_ready("node_client") {
        return;
    }
    let test = TestServer::with_config(SUITE_CONFIG).await;
    let _wall_clock = FollowingWallClock::start(test.clock.clone());
    let addr = test.running().local_addr().to_string();

    let mut suite = Command::new("bash");
    suite
        .arg(root().join("clients/node/scripts/test-packed.sh"))
        .env("SESSIOND_ADDR", &addr);
    run_ok("clients/node/scripts/test-packed.sh", suite).await;
}

#[test]
fn proto_passes_buf_lint_and_breaking_against_its_baseline() {
    if !node_ready("node_client (buf)") {
        return;
    }
    run_ok_blocking(
        "npm run proto:check (buf lint, buf breaking)",
        npm(&["run", "proto:check"]),
    );
}
