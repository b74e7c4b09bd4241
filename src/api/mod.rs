//! The gRPC edge: decode and validate requests, call the session rules, encode answers.

pub mod codec;
pub mod convert;
pub mod deadline;
pub mod error;
pub mod proof;
pub mod quotas;
pub mod revocations;
pub mod search;
pub mod service;
pub mod validate;

pub use service::SessionApi;
