//! Gateways in front of other services ask sessiond about each request they proxy: Envoy
//! through ext_authz (gRPC, `ext_authz.rs`), nginx, Caddy and Traefik through HTTP
//! forward-auth (`forward_auth.rs`). Both ask the same [`Gatekeeper`], which reads the
//! session token from the request's headers and decides as Whoami does; a device-bound
//! session's `DPoP` proof is checked against the client's request (`proof.rs`), and a
//! refusal answers as RFC 6750 or RFC 9449 say (`refusal.rs`).

pub mod credentials;
pub mod ext_authz;
pub mod forward_auth;
pub mod gatekeeper;
pub mod proof;
pub mod refusal;
pub mod settings;

pub use credentials::RequestHeaders;
pub use gatekeeper::{Gatekeeper, Grant};
pub use refusal::Refusal;
pub use settings::GatewaySettings;
