//! sessiond: a gRPC session backend on sled. `main.rs` is a thin shell over this library;
//! tests, benches and tools use it too.

pub mod admin;
pub mod api;
pub mod config;
pub mod layers;
pub mod metrics;
pub mod proto;
pub mod server;
pub mod session;
pub mod signing;
pub mod store;
