//! Request validation, the one owner of request rules: sizes and shapes, each a pure
//! function whose error names the field. `fields.rs` holds the rules that need no
//! configured limit, `filter.rs` the session filter of the admin calls.

mod fields;
mod filter;

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::proto::session::v1 as pb;
use crate::session::manager::UserRef;
use crate::session::SessionError;
use crate::store::{ClientContext, SessionRecord};

pub use fields::{
    aal, encode_page_token, except_session_id, logout_by_user, moment, page_size, page_token,
    revoke_reason, seconds, session_id, session_target, token,
};

/// Size limits on request fields, from the `[limits]` table of the config file (which
/// also holds the call limits of `layers::limits`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RequestLimits {
    /// Longest `user_id`, in bytes of UTF-8.
    pub max_user_id_bytes: usize,
    /// Longest `group` name, in bytes.
    pub max_group_bytes: usize,
    /// Most entries in `metadata`, and in `attributes`.
    pub max_map_entries: usize,
    /// Longest key of `metadata` or `attributes`, in bytes.
    pub max_map_key_bytes: usize,
    /// Longest value of `metadata` or `attributes`, in bytes.
    pub max_map_value_bytes: usize,
    /// Longest `scope`, in bytes.
    pub max_scope_bytes: usize,
    /// Largest encoded request message; a bigger one is refused before decoding.
    pub max_request_bytes: usize,
    /// Longest `client.user_agent`, in bytes.
    pub max_user_agent_bytes: usize,
    /// Longest `client.device_id` and `client.device_label`, in bytes.
    pub max_device_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_user_id_bytes: 256,
            max_group_bytes: 64,
            max_map_entries: 32,
            max_map_key_bytes: 64,
            max_map_value_bytes: 1024,
            max_scope_bytes: 256,
            max_request_bytes: 64 * 1024,
            max_user_agent_bytes: 512,
            max_device_bytes: 128,
        }
    }
}

impl RequestLimits {
    /// What makes these limits unusable, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        (self.max_user_id_bytes == 0 || self.max_user_id_bytes > 4096)
            .then_some("limits.max_user_id_bytes must be between 1 and 4096")
    }

    /// A user id: not blank, no control characters, within the limit.
    pub fn user_id(&self, field: &'static str, value: String) -> Result<String, SessionError> {
        if value.trim().is_empty() {
            return Err(SessionError::invalid(field, "must not be empty"));
        }
        if value.len() > self.max_user_id_bytes {
            return Err(SessionError::invalid(
                field,
                format!("must be at most {} bytes", self.max_user_id_bytes),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(SessionError::invalid(
                field,
                "must not contain control characters",
            ));
        }
        Ok(value)
    }

    /// A user by exactly one of our id and the caller's external id.
    pub fn user_ref(&self, user_id: String, external: String) -> Result<UserRef, SessionError> {
        match (user_id.is_empty(), external.is_empty()) {
            (false, true) => Ok(UserRef::Id(self.user_id("user_id", user_id)?)),
            (true, false) => Ok(UserRef::External(
                self.user_id("external_user_id", external)?,
            )),
            (true, true) => Err(SessionError::invalid(
                "user_id",
                "must not be empty (or give external_user_id)",
            )),
            (false, false) => Err(SessionError::invalid(
                "user_id",
                "or external_user_id: give exactly one of the two",
            )),
        }
    }

    /// A group name: empty means the default group.
    pub fn group(&self, value: String) -> Result<Option<String>, SessionError> {
        if value.is_empty() {
            return Ok(None);
        }
        if value.len() > self.max_group_bytes {
            return Err(SessionError::invalid(
                "group",
                format!("must be at most {} bytes", self.max_group_bytes),
            ));
        }
        Ok(Some(value))
    }

    /// A scope: free-form, within the limit (empty: none).
    pub fn scope(&self, value: String) -> Result<String, SessionError> {
        if value.len() > self.max_scope_bytes {
            return Err(SessionError::invalid(
                "scope",
                format!("must be at most {} bytes", self.max_scope_bytes),
            ));
        }
        Ok(value)
    }

    /// A client context: the ip parsed (and kept in canonical form), the rest printable
    /// and within the limits. None when the request carries none.
    pub fn client(
        &self,
        value: Option<pb::ClientContext>,
    ) -> Result<Option<ClientContext>, SessionError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let ip = match value.ip.as_str() {
            "" => String::new(),
            text => text
                .parse::<std::net::IpAddr>()
                .map_err(|_| SessionError::invalid("client.ip", "is not an IPv4 or IPv6 address"))?
                .to_string(),
        };
        Ok(Some(ClientContext {
            ip,
            user_agent: printable(
                "client.user_agent",
                value.user_agent,
                self.max_user_agent_bytes,
            )?,
            device_id: printable("client.device_id", value.device_id, self.max_device_bytes)?,
            device_label: printable(
                "client.device_label",
                value.device_label,
                self.max_device_bytes,
            )?,
        }))
    }

    /// A session's maps, once changed, still fit the entry limit.
    pub fn attributes_fit(&self, record: &SessionRecord) -> Result<(), SessionError> {
        self.entries("set", record.attributes.len())?;
        self.entries("token_set", record.token_attributes.len())
    }

    /// A map of `len` entries fits the entry limit.
    fn entries(&self, field: &'static str, len: usize) -> Result<(), SessionError> {
        if len > self.max_map_entries {
            return Err(SessionError::invalid(
                field,
                format!(
                    "would leave {len} entries; at most {} are allowed",
                    self.max_map_entries
                ),
            ));
        }
        Ok(())
    }

    /// Keys to remove from a map: as many and as long as a map may hold.
    pub fn keys(
        &self,
        field: &'static str,
        keys: Vec<String>,
    ) -> Result<Vec<String>, SessionError> {
        if keys.len() > self.max_map_entries {
            return Err(SessionError::invalid(
                field,
                format!("has more than {} keys", self.max_map_entries),
            ));
        }
        if keys
            .iter()
            .any(|key| key.is_empty() || key.len() > self.max_map_key_bytes)
        {
            return Err(SessionError::invalid(
                field,
                format!(
                    "has an empty key or one over {} bytes",
                    self.max_map_key_bytes
                ),
            ));
        }
        Ok(keys)
    }

    /// A string map within the entry and size limits.
    pub fn map(
        &self,
        field: &'static str,
        value: HashMap<String, String>,
    ) -> Result<BTreeMap<String, String>, SessionError> {
        if value.len() > self.max_map_entries {
            return Err(SessionError::invalid(
                field,
                format!(
                    "has {} entries; at most {} are allowed",
                    value.len(),
                    self.max_map_entries
                ),
            ));
        }
        for (key, entry) in &value {
            if key.is_empty() {
                return Err(SessionError::invalid(field, "has an empty key"));
            }
            if key.len() > self.max_map_key_bytes {
                return Err(SessionError::invalid(
                    field,
                    format!("has a key over {} bytes", self.max_map_key_bytes),
                ));
            }
            if entry.len() > self.max_map_value_bytes {
                return Err(SessionError::invalid(
                    field,
                    format!(
                        "has a value over {} bytes (key {key:?})",
                        self.max_map_value_bytes
                    ),
                ));
            }
        }
        Ok(value.into_iter().collect())
    }
}

/// Free text of at most `max_bytes` without control characters.
fn printable(field: &'static str, value: String, max_bytes: usize) -> Result<String, SessionError> {
    if value.len() > max_bytes || value.chars().any(char::is_control) {
        return Err(SessionError::invalid(
            field,
            format!("must be at most {max_bytes} bytes without control characters"),
        ));
    }
    Ok(value)
}

