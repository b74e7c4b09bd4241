//! Gateways in front of other services ask sessiond about each request they proxy: Envoy
//! through ext_authz (gRPC, `ext_authz.rs`), nginx, Caddy and Traefik through HTTP
//! forward-auth (`forward_auth.rs`). Both ask the same [`Gatekeeper`], which reads the
//! session token from the request's headers and decides as Whoami does.

pub mod credentials;
pub mod ext_authz;
pub mod forward_auth;
pub mod gatekeeper;
pub mod settings;

pub use credentials::RequestHeaders;
pub use gatekeeper::{Gatekeeper, Grant, Refusal};
pub use settings::GatewaySettings;
