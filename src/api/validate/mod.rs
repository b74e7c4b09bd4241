//! Request validation, the one owner of request rules: sizes and shapes, each a pure
//! function whose error names the field. `fields.rs` holds the rules that need no
//! configured limit, `filter.rs` the session filter of the admin calls, `requests.rs`
//! the requests whose fields are checked together.

mod fields;
mod filter;
mod requests;

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::proto::session::v1 as pb;
use crate::session::manager::UserRef;
use crate::session::SessionError;
use crate::store::ClientContext;

pub use fields::{
    aal, device_key, encode_page_token, except_session_id, logout_by_user, moment, page_size,
    page_token, revoke_reason, seconds, session_id, session_target, token,
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

    /// A map of `len` entries fits the entry limit.
    pub(super) fn entries(&self, field: &'static str, len: usize) -> Result<(), SessionError> {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The field an INVALID_ARGUMENT names; panics on an accepted value or another error.
    #[track_caller]
    pub fn invalid_field<T: std::fmt::Debug>(result: Result<T, SessionError>) -> &'static str {
        match result {
            Err(SessionError::InvalidArgument { field, reason }) => {
                // The message the client reads starts with the field.
                let message = SessionError::invalid(field, reason).to_string();
                assert!(message.starts_with(field), "{message}");
                field
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    /// Tight limits, so the cases cross them with small values.
    pub fn tight() -> RequestLimits {
        RequestLimits {
            max_user_id_bytes: 16,
            max_group_bytes: 8,
            max_map_entries: 2,
            max_map_key_bytes: 4,
            max_map_value_bytes: 8,
            max_scope_bytes: 8,
            max_user_agent_bytes: 8,
            max_device_bytes: 4,
            ..RequestLimits::default()
        }
    }

    pub fn map(entries: &[(&str, &str)]) -> HashMap<String, String> {
        entries
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn user_ids_are_not_blank_within_the_limit_in_bytes_and_printable() {
        let cases = [
            ("alice", None),
            (&*"u".repeat(16), None),
            ("", Some("user_id")),
            ("   ", Some("user_id")),
            (&*"u".repeat(17), Some("user_id")),
            // 9 characters, 18 bytes: the limit counts bytes.
            (&*"é".repeat(9), Some("user_id")),
            ("al\nice", Some("user_id")),
            ("al\u{7f}ice", Some("user_id")),
        ];
        for (value, refused) in cases {
            let result = tight().user_id("user_id", value.to_owned());
            match refused {
                None => assert_eq!(result.ok().as_deref(), Some(value), "{value:?}"),
                Some(field) => assert_eq!(invalid_field(result), field, "{value:?}"),
            }
        }
    }

    #[test]
    fn a_user_is_named_by_exactly_one_of_its_ids() {
        let cases = [
            ("alice", "", Ok("id alice")),
            ("", "ext-1", Ok("external ext-1")),
            ("", "", Err("user_id")),
            ("alice", "ext-1", Err("user_id")),
            (&*"u".repeat(17), "", Err("user_id")),
            ("", &*"u".repeat(17), Err("external_user_id")),
            ("", "ext\t1", Err("external_user_id")),
        ];
        for (user_id, external, expected) in cases {
            let result = tight().user_ref(user_id.into(), external.into());
            match expected {
                Ok(user) => {
                    let found = match result {
                        Ok(UserRef::Id(id)) => format!("id {id}"),
                        Ok(UserRef::External(id)) => format!("external {id}"),
                        Err(error) => panic!("{user_id:?} {external:?}: {error}"),
                    };
                    assert_eq!(found, user);
                }
                Err(field) => assert_eq!(invalid_field(result), field, "{user_id:?} {external:?}"),
            }
        }
    }

    #[test]
    fn groups_and_scopes_stay_within_their_limits() {
        let limits = tight();
        assert_eq!(limits.group(String::new()).ok(), Some(None));
        assert_eq!(limits.group("g".repeat(8)).ok(), Some(Some("g".repeat(8))));
        assert_eq!(invalid_field(limits.group("g".repeat(9))), "group");
        assert_eq!(limits.scope(String::new()).ok().as_deref(), Some(""));
        assert_eq!(limits.scope("s".repeat(8)).ok(), Some("s".repeat(8)));
        assert_eq!(invalid_field(limits.scope("s".repeat(9))), "scope");
    }

    #[test]
    fn client_contexts_are_parsed_and_bounded_field_by_field() {
        let limits = tight();
        assert_eq!(limits.client(None).ok(), Some(None));
        let canonical = limits.client(Some(pb::ClientContext {
            ip: "2001:DB8:0:0::1".into(),
            user_agent: "curl/8".into(),
            device_id: "d1".into(),
            device_label: "tab".into(),
        }));
        let context = canonical.ok().flatten().expect("valid");
        assert_eq!(context.ip, "2001:db8::1", "kept in canonical form");
        let cases = [
            (
                pb::ClientContext {
                    ip: "300.1.1.1".into(),
                    ..Default::default()
                },
                "client.ip",
            ),
            (
                pb::ClientContext {
                    user_agent: "u".repeat(9),
                    ..Default::default()
                },
                "client.user_agent",
            ),
            (
                pb::ClientContext {
                    user_agent: "a\u{0}b".into(),
                    ..Default::default()
                },
                "client.user_agent",
            ),
            (
                pb::ClientContext {
                    device_id: "d".repeat(5),
                    ..Default::default()
                },
                "client.device_id",
            ),
            (
                pb::ClientContext {
                    device_label: "l\rl".into(),
                    ..Default::default()
                },
                "client.device_label",
            ),
        ];
        for (client, field) in cases {
            assert_eq!(
                invalid_field(limits.client(Some(client.clone()))),
                field,
                "{client:?}"
            );
        }
    }

    #[test]
    fn maps_are_bounded_in_entries_keys_and_values() {
        let cases = [
            (map(&[]), None),
            (map(&[("k1", "v"), ("k2", "12345678")]), None),
            (
                map(&[("k1", "v"), ("k2", "v"), ("k3", "v")]),
                Some("has 3 entries"),
            ),
            (map(&[("", "v")]), Some("has an empty key")),
            (map(&[("kkkkk", "v")]), Some("has a key over 4 bytes")),
            (map(&[("k", "123456789")]), Some("has a value over 8 bytes")),
        ];
        for (value, refused) in cases {
            let result = tight().map("metadata", value.clone());
            match refused {
                None => assert_eq!(result.ok(), Some(value.into_iter().collect())),
                Some(reason) => {
                    let message = result.expect_err("refused").to_string();
                    assert!(message.starts_with("metadata "), "{message}");
                    assert!(message.contains(reason), "{message} lacks {reason:?}");
                }
            }
        }
    }

    #[test]
    fn keys_to_remove_are_bounded_like_a_map() {
        let keys = |keys: &[&str]| keys.iter().map(|key| key.to_string()).collect::<Vec<_>>();
        let limits = tight();
        assert!(limits.keys("remove", keys(&["a", "bcde"])).is_ok());
        assert_eq!(
            invalid_field(limits.keys("remove", keys(&["a", "b", "c"]))),
            "remove"
        );
        assert_eq!(
            invalid_field(limits.keys("token_remove", keys(&[""]))),
            "token_remove"
        );
        assert_eq!(
            invalid_field(limits.keys("remove", keys(&["abcde"]))),
            "remove"
        );
    }

    #[test]
    fn only_a_usable_user_id_limit_is_accepted() {
        for (max, usable) in [(0, false), (1, true), (4096, true), (4097, false)] {
            let limits = RequestLimits {
                max_user_id_bytes: max,
                ..RequestLimits::default()
            };
            assert_eq!(limits.problem().is_none(), usable, "{max}");
        }
    }
}
