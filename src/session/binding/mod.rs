//! Device-bound sessions (DPoP, RFC 9449), the pure rules: a session bound to a device's
//! public key accepts a call only with a fresh proof signed by that key, and optionally
//! only from the network it started from. No I/O, no clock, no store: time comes in as
//! `now_ms`, and replay and nonce stores are the caller's.
//!
//! - `dbsc`: Chrome's DBSC responses, taken as the proof of a Refresh.
//! - `failure`: why a bound call is refused, and which refusals prove theft.
//! - `jwk`: the device's public key and its RFC 7638 thumbprint (the session's `jkt`).
//! - `proof`: verifying one proof against one call.
//! - `signer`: the device's half, making proofs (CLI, Rust clients, tests).
//! - `target`: whether a proof's `htu` names the call.
//! - `network`: the ip rule.
//! - `policy`: a group's binding policy and the `[proofs]` settings.

pub mod dbsc;
pub mod failure;
pub mod jwk;
pub mod network;
pub mod policy;
pub mod proof;
pub mod signer;
pub mod target;

pub use dbsc::{is_dbsc, verify_dbsc_response, DbscResponse, DBSC_TYPE};
pub use failure::BindingFailure;
pub use jwk::{DeviceKey, KeyAlgorithm, KeyProblem, MAX_JWK_BYTES};
pub use network::{network_check, NetworkBinding};
pub use policy::{BindingPolicy, DeviceBinding, OnBindingFailure, ProofOnUse, ProofSettings};
pub use proof::{
    token_hash, verify_proof, ProofExpectations, VerifiedProof, MAX_JTI_BYTES, MAX_PROOF_BYTES,
    PROOF_TYPE,
};
pub use signer::{DeviceSigner, SignerError};
