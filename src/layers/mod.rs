//! Cross-cutting tower layers around the gRPC services, one per file.

pub mod call_log;

pub use call_log::CallLogLayer;
