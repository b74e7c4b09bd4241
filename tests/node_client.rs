//! The TypeScript client (`clients/node`) against the real server: `npm ci` installs its
//! locked dependencies, then `npm test` generates its stubs from `proto/` (buf with
//! protoc-gen-es), compiles it with tsc and runs its `node --test` suite with
//! `SESSIOND_ADDR` naming an in-process server. Without node and npm the test is
//! skipped, loudly, except under CI (`CI` set), where it fails.

mod common;

use std::process::Command;

use common::foreign_client::{root, run_ok, server_with_access_tokens, toolchain_available};

/// `npm` in the client's directory, quiet about audits, funding and its own updates.
fn npm(args: &[&str]) -> Command {
    let mut npm = Command::new("npm");
    npm.args(args)
        .args(["--no-audit", "--no-fund", "--no-update-notifier"])
        .current_dir(root().join("clients/node"));
    npm
}

#[tokio::test]
async fn node_client_suite_passes() {
    if !toolchain_available(
        "node_client",
        &["node", "npm"],
        "Install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm)",
    ) {
        return;
    }
    let test = server_with_access_tokens().await;
    let addr = test.running().local_addr().to_string();

    // No install scripts: the one dependency that has one (buf) works without it.
    run_ok("npm ci (clients/node)", npm(&["ci", "--ignore-scripts"])).await;
    let mut suite = npm(&["test"]);
    suite.env("SESSIOND_ADDR", &addr);
    run_ok("npm test (clients/node)", suite).await;
}
