//! `tonic-reference`: a bare tonic server that serves `grpc.health.v1` and a canned
//! Whoami, the ceilings sessiond's figures are measured against (`sessiond-bench
//! --reference`, BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release --bin tonic-reference -- --listen 127.0.0.1:50090
//! ```

// No unwrap/expect outside tests, as in the other binaries.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod whoami;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

/// The service name sessiond-bench's health Check asks about.
const SESSION_SERVICE: &str = "session.v1.SessionService";

/// Serves `grpc.health.v1` (SERVING) and the canned Whoami, with tonic's defaults.
#[derive(Debug, Parser)]
#[command(name = "tonic-reference", version)]
struct Cli {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:50090")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let listener = match TcpListener::bind(cli.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("tonic-reference: cannot listen on {}: {error}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let (reporter, health) = tonic_health::server::health_reporter();
    // The Check sessiond-bench sends names sessiond's service: answer that same request.
    reporter
        .set_service_status(SESSION_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    // The bound address, so `--listen 127.0.0.1:0` tells its port.
    let addr = listener.local_addr().unwrap_or(cli.listen);
    println!("tonic-reference: grpc.health.v1 and a canned Whoami on {addr}");
    let served = Server::builder()
        .add_service(health)
        .add_service(whoami::CannedWhoami::new())
        .serve_with_incoming_shutdown(
            // The same socket option sessiond sets, so only the stack above differs.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tonic-reference: {error}");
            ExitCode::FAILURE
        }
    }
}
