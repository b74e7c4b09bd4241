//! sessiond: a gRPC session backend on sled. `main.rs` is a thin shell over this library;
//! tests, benches and tools use it too.

// No unwrap/expect outside tests: request and storage data must never panic the server.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod admin;
pub mod api;
pub mod caller;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod keyword;
pub mod layers;
pub mod log_lines;
pub mod metrics;
pub mod proto;
pub mod restore;
pub mod server;
pub mod session;
pub mod signing;
pub mod store;
pub mod telemetry;
