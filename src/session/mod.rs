//! The session rules: lifetimes, rotation, extension and revocation over a
//! `SessionStore`. No I/O of its own, and nothing of gRPC or sled.

pub mod access;
pub mod backup;
pub mod binding;
pub mod error;
pub mod filter;
pub mod ids;
pub mod jwt;
pub mod manager;
pub mod policy;
pub mod revocations;
pub mod token;
pub mod watch;

pub use access::{Acting, GroupAccess};
pub use error::SessionError;
pub use manager::SessionManager;
