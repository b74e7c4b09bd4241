//! A group's binding policy as written in the config file: whether its sessions bind to
//! a device key, when a proof is due, what a failed check does (docs/binding.md).

use std::time::Duration;

use serde::Deserialize;

use super::network::NetworkBinding;

/// Whether Start binds the group's sessions to a device key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceBinding {
    /// A Start with a key is refused: the group's callers do not send proofs.
    Off,
    /// Bound when Start gives a key, a bearer session when it does not.
    #[default]
    Optional,
    /// A Start without a key is refused.
    Required,
}

/// What a failed binding check does to the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBindingFailure {
    /// The call is refused; the session stays as it was.
    #[default]
    Refuse,
    /// A failure only a token away from its device produces also ends the session
    /// (`BINDING_VIOLATION`); drifting clocks, proxies and nonce round trips only refuse.
    Revoke,
}

/// Which calls of a bound session need a proof.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofOnUse {
    /// Refresh only: a stolen session token works until the session token rotates.
    #[default]
    Refresh,
    /// Refresh and Whoami: the calling service forwards the client's proof.
    EveryCall,
}

/// The binding part of a group's policy, flattened into `GroupPolicy` (which refuses
/// unknown keys for both).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BindingPolicy {
    #[serde(default)]
    pub device_binding: DeviceBinding,
    #[serde(default)]
    pub on_binding_failure: OnBindingFailure,
    #[serde(default)]
    pub proof_on_use: ProofOnUse,
    /// Proofs must carry a nonce this server handed out (DPoP's `use_dpop_nonce`).
    #[serde(default)]
    pub require_nonce: bool,
    #[serde(default)]
    pub network_binding: NetworkBinding,
}

/// How every group checks proofs: the `[proofs]` section of the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProofSettings {
    /// How far a proof's `iat` may be from the server's clock, either way. A proof's
    /// `jti` is remembered twice this long, so a replay is refused by one check or the
    /// other.
    #[serde(with = "humantime_serde")]
    pub max_skew: Duration,
    /// How long a nonce handed out in a `NONCE_REQUIRED` answer stays good.
    #[serde(with = "humantime_serde")]
    pub nonce_lifetime: Duration,
}

impl Default for ProofSettings {
    fn default() -> Self {
        ProofSettings {
            max_skew: Duration::from_secs(60),
            nonce_lifetime: Duration::from_secs(300),
        }
    }
}

impl ProofSettings {
    /// Why these settings cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.max_skew.is_zero() || self.max_skew > Duration::from_secs(3600) {
            Some("[proofs] max_skew must be more than 0s and at most 1h")
        } else if self.nonce_lifetime.is_zero() {
            Some("[proofs] nonce_lifetime must be more than 0s")
        } else {
            None
        }
    }
}
