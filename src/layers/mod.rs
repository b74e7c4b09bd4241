//! Cross-cutting tower layers around the gRPC services, one per file.

pub mod auth;
pub mod call_log;
pub mod client_faults;
pub mod connections;
pub mod limits;
pub mod request_id;
pub mod trace_context;
pub mod version;

pub use auth::CallerAuthLayer;
pub use call_log::CallLogLayer;
pub use client_faults::ClientFaultsLayer;
pub use connections::{BoundedIncoming, CallTrackingLayer};
pub use limits::{CallLimitSettings, CallLimitsLayer};
pub use version::WithVersion;
