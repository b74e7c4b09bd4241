//! The Go client (`clients/go`) against the real server: `clients/go/go.sh` generates its
//! stubs from `proto/` with Debian's protoc, protoc-gen-go and protoc-gen-go-grpc, then
//! runs `go test` in GOPATH mode against Debian's gRPC and protobuf sources, with
//! `SESSIOND_ADDR` naming an in-process server. Without the toolchain the test is
//! skipped, loudly, except under CI (`CI` set), where it fails.

mod common;

use std::process::Command;

use common::foreign_client::{root, run_ok, server_with_access_tokens, toolchain_available};

#[tokio::test]
async fn go_client_suite_passes() {
    if !toolchain_available(
        "go_client",
        &["go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc"],
        "Install Go with Debian's gRPC and protobuf packages (the list is in \
         clients/go/README.md and .ci/run)",
    ) {
        return;
    }
    let test = server_with_access_tokens().await;
    let addr = test.running().local_addr().to_string();

    let mut suite = Command::new("bash");
    suite
        .arg(root().join("clients/go/go.sh"))
        .args(["test", "-count=1", "-v", "-timeout=120s", "sessiond"])
        .env("SESSIOND_ADDR", &addr);
    run_ok("go test sessiond (clients/go)", suite).await;
}
