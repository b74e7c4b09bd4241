//! The session filter of ListSessions and RevokeSessions: each field within its limit,
//! moments and IP blocks parsed, bounds in order.

use super::fields::{moment, MAX_AAL_BYTES};
use super::{printable, RequestLimits};
use crate::proto::session::v1 as pb;
use crate::session::filter::{IpBlock, SessionFilter};
use crate::session::policy::SessionState;
use crate::session::SessionError;

impl RequestLimits {
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

