//! Request validation: sizes and shapes, with messages that name the field.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::proto::session::v1 as pb;
use crate::session::filter::{IpBlock, SessionFilter};
use crate::session::manager::{LogoutTarget, UserRef};
use crate::session::policy::SessionState;
use crate::session::token::{Token, TokenError, TokenKind};
use crate::session::SessionError;
use crate::store::{ClientContext, SessionId};

/// Size limits on request fields, from the `[limits]` table of the config file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
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
    /// Calls running at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Longest a call may run before it answers DEADLINE_EXCEEDED.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Longest `client.user_agent`, in bytes.
    pub max_user_agent_bytes: usize,
    /// Longest `client.device_id` and `client.device_label`, in bytes.
    pub max_device_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_user_id_bytes: 256,
            max_group_bytes: 64,
            max_map_entries: 32,
            max_map_key_bytes: 64,
            max_map_value_bytes: 1024,
            max_scope_bytes: 256,
            max_request_bytes: 64 * 1024,
            max_in_flight: 4096,
            call_timeout: Duration::from_secs(10),
            max_user_agent_bytes: 512,
            max_device_bytes: 128,
        }
    }
}

/// Longest keep-alive or TTL a request may carry before it is checked against the
/// group's policy: a hundred years, so the arithmetic cannot overflow.
const MAX_SECONDS: i64 = 100 * 365 * 24 * 3600;

impl Limits {
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

    /// A session filter of ListSessions / RevokeSessions: empty fields match anything.
    pub fn filter(&self, value: Option<pb::SessionFilter>) -> Result<SessionFilter, SessionError> {
        let value = value.unwrap_or_default();
        let text = |field: &'static str, value: String, max: usize| {
            printable(field, value, max).map(|value| Some(value).filter(|v| !v.is_empty()))
        };
        let state = match pb::SessionState::try_from(value.state) {
            Ok(pb::SessionState::Unspecified) => None,
            Ok(pb::SessionState::Active) => Some(SessionState::Active),
            Ok(pb::SessionState::Revoked) => Some(SessionState::Revoked),
            Ok(pb::SessionState::Expired) => Some(SessionState::Expired),
            Err(_) => {
                return Err(SessionError::invalid(
                    "filter.state",
                    "is not a SessionState",
                ))
            }
        };
        let filter = SessionFilter {
            user_id: match value.user_id.as_str() {
                "" => None,
                _ => Some(self.user_id("filter.user_id", value.user_id)?),
            },
            group: text("filter.group", value.group, self.max_group_bytes)?,
            state,
            created_after_ms: optional_moment("filter.created_after", value.created_after)?,
            created_before_ms: optional_moment("filter.created_before", value.created_before)?,
            last_seen_after_ms: optional_moment("filter.last_seen_after", value.last_seen_after)?,
            last_seen_before_ms: optional_moment(
                "filter.last_seen_before",
                value.last_seen_before,
            )?,
            ip: match value.ip.as_str() {
                "" => None,
                text => Some(ip_block(text)?),
            },
            device_id: text("filter.device_id", value.device_id, self.max_device_bytes)?,
            aal: text("filter.aal", value.aal, MAX_AAL_BYTES)?,
            started_by: text(
                "filter.started_by",
                value.started_by,
                self.max_user_id_bytes,
            )?,
        };
        ordered(
            "filter.created_after",
            filter.created_after_ms,
            filter.created_before_ms,
        )?;
        ordered(
            "filter.last_seen_after",
            filter.last_seen_after_ms,
            filter.last_seen_before_ms,
        )?;
        Ok(filter)
    }

    /// A map of `len` entries fits the entry limit.
    pub fn entries(&self, field: &'static str, len: usize) -> Result<(), SessionError> {
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

/// A required moment, as milliseconds since the epoch (before 1970: refused).
pub fn moment(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<u64, SessionError> {
    let value = value.ok_or_else(|| SessionError::invalid(field, "must be set"))?;
    let seconds = u64::try_from(value.seconds)
        .map_err(|_| SessionError::invalid(field, "must not be before 1970"))?;
    let nanos = u64::try_from(value.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or_else(|| SessionError::invalid(field, "has nanos outside 0..1e9"))?;
    Ok(seconds
        .saturating_mul(1000)
        .saturating_add(nanos / 1_000_000))
}

/// An optional moment (unset: none).
fn optional_moment(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<u64>, SessionError> {
    value.map(|value| moment(field, Some(value))).transpose()
}

/// An "after" bound must not be later than its "before" bound.
fn ordered(
    field: &'static str,
    after: Option<u64>,
    before: Option<u64>,
) -> Result<(), SessionError> {
    match (after, before) {
        (Some(after), Some(before)) if after > before => Err(SessionError::invalid(
            field,
            "must not be after its _before bound",
        )),
        _ => Ok(()),
    }
}

/// An IP address, or a CIDR block ("10.0.0.0/8").
fn ip_block(text: &str) -> Result<IpBlock, SessionError> {
    let (address, prefix_len) = match text.split_once('/') {
        Some((address, prefix_len)) => (address, Some(prefix_len)),
        None => (text, None),
    };
    let invalid = || SessionError::invalid("filter.ip", "is not an IP address or CIDR block");
    let address = address.parse::<std::net::IpAddr>().map_err(|_| invalid())?;
    let full = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix_len {
        Some(prefix_len) => prefix_len.parse::<u8>().map_err(|_| invalid())?,
        None => full,
    };
    IpBlock::new(address, prefix_len).ok_or_else(invalid)
}

/// The reason text of a RevokeSessions: required, printable, 1..256 bytes.
pub fn revoke_reason(value: String) -> Result<String, SessionError> {
    if value.trim().is_empty() {
        return Err(SessionError::invalid("reason", "must not be empty"));
    }
    printable("reason", value, MAX_REASON_BYTES)
}

/// Longest reason text of a RevokeSessions, in bytes.
const MAX_REASON_BYTES: usize = 256;

/// An optional positive number of seconds.
pub fn seconds(field: &'static str, value: Option<i64>) -> Result<Option<Duration>, SessionError> {
    match value {
        None => Ok(None),
        Some(seconds) if (1..=MAX_SECONDS).contains(&seconds) => {
            Ok(Some(Duration::from_secs(seconds.unsigned_abs())))
        }
        Some(_) => Err(SessionError::invalid(
            field,
            "must be a positive number of seconds",
        )),
    }
}

/// A session id in UUID text form.
pub fn session_id(field: &'static str, value: &str) -> Result<SessionId, SessionError> {
    if value.is_empty() {
        return Err(SessionError::invalid(field, "must not be empty"));
    }
    SessionId::try_parse(value)
        .map_err(|_| SessionError::invalid(field, "is not a session id (a UUID)"))
}

/// Default and greatest page size of a list call.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;

/// A page size: 0 means the default, above the maximum means the maximum.
pub fn page_size(value: i32) -> Result<usize, SessionError> {
    match usize::try_from(value) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(SessionError::invalid("page_size", "must not be negative")),
    }
}

/// A page token: where the previous page ended (empty: the first page).
pub fn page_token(value: &str) -> Result<Option<SessionId>, SessionError> {
    if value.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|bytes| SessionId::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| SessionError::invalid("page_token", "is not a next_page_token of this call"))
}

/// The page token that continues after `last`.
pub fn encode_page_token(last: SessionId) -> String {
    URL_SAFE_NO_PAD.encode(last.as_bytes())
}

/// Longest authenticator assurance level, in bytes.
const MAX_AAL_BYTES: usize = 32;

/// An authenticator assurance level such as "aal2" (empty: none).
pub fn aal(value: String) -> Result<String, SessionError> {
    if value.len() > MAX_AAL_BYTES || value.chars().any(char::is_control) {
        return Err(SessionError::invalid(
            "aal",
            format!("must be at most {MAX_AAL_BYTES} printable bytes"),
        ));
    }
    Ok(value)
}

/// The session a call names: exactly one of its token and its id.
pub fn session_target(session_token: &str, session_id: &str) -> Result<LogoutTarget, SessionError> {
    match (session_token.is_empty(), session_id.is_empty()) {
        (false, true) => Ok(LogoutTarget::Token(token(
            "session_token",
            TokenKind::Session,
            session_token,
        )?)),
        (true, false) => Ok(LogoutTarget::Id(self::session_id(
            "session_id",
            session_id,
        )?)),
        _ => Err(SessionError::invalid(
            "session_token",
            "or session_id: give exactly one of the two",
        )),
    }
}

/// A token of the given kind, taken apart (not yet checked against the store).
pub fn token(field: &'static str, kind: TokenKind, value: &str) -> Result<Token, SessionError> {
    Token::parse(kind, value).map_err(|error| match error {
        TokenError::Empty => SessionError::invalid(field, "must not be empty"),
        TokenError::Malformed => SessionError::invalid(
            field,
            match kind {
                TokenKind::Session => "is not a session token (st_…)",
                TokenKind::Refresh => "is not a refresh token (rt_…)",
            },
        ),
    })
}
