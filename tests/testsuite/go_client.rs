//! The Go client (`clients/go`, a module) against the real server: its
//! `test-gopath.sh` checks the committed stubs against `proto/`, then, in a temp GOPATH
//! outside the checkout with a copy of the module at its module path, vets and tests it
//! and builds and runs an external program that imports it by that path, in GOPATH mode
//! against Debian's gRPC and protobuf (no module proxy here), with `SESSIOND_ADDR`
//! naming an in-process server. Without the toolchain the test is skipped, loudly,
//! except under CI (`CI` set), where it fails.

use crate::common;

use std::process::Command;

use common::foreign_client::{root, run_ok, toolchain_available};
// The Python suite's server: the same groups (device binding, nonces, proofs on Whoami).
use crate::python_client::server_for_client_suite;

on_backends!(go_module_suite_and_an_importing_program_pass: sled);
async fn go_module_suite_and_an_importing_program_pass() {
    if !toolchain_available(
        "go_client",
        &["go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"],
        "Install Go with Debian's gRPC and protobuf packages (the list is in \
         clients/go/README.md and .ci/run)",
    ) {
        return;
    }
    let test = server_for_client_suite().await;
    let addr = test.running().local_addr().to_string();

    let mut suite = Command::new("bash");
    suite
        .arg(root().join("clients/go/test-gopath.sh"))
        .env("SESSIOND_ADDR", &addr);
    run_ok("clients/go/test-gopath.sh", suite).await;
}
