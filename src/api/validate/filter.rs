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

#[cfg(test)]
mod tests {
    use super::super::tests::invalid_field;
    use super::*;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn filter(value: pb::SessionFilter) -> Result<SessionFilter, SessionError> {
        let limits = RequestLimits {
            max_user_id_bytes: 8,
            max_group_bytes: 4,
            max_device_bytes: 4,
            ..RequestLimits::default()
        };
        limits.filter(Some(value))
    }

    #[test]
    fn an_empty_or_absent_filter_matches_anything() {
        let empty = RequestLimits::default().filter(None).expect("valid");
        assert!(empty.is_empty());
        assert!(filter(pb::SessionFilter::default())
            .expect("valid")
            .is_empty());
    }

    #[test]
    fn every_field_is_parsed_into_the_filter() {
        let parsed = filter(pb::SessionFilter {
            user_id: "alice".into(),
            group: "web".into(),
            state: pb::SessionState::Revoked.into(),
            created_after: at(1),
            created_before: at(2),
            last_seen_after: at(3),
            last_seen_before: at(3),
            ip: "10.0.0.0/8".into(),
            device_id: "d1".into(),
            aal: "aal2".into(),
            started_by: "edge".into(),
        })
        .expect("valid");
        assert_eq!(parsed.user_id.as_deref(), Some("alice"));
        assert_eq!(parsed.group.as_deref(), Some("web"));
        assert_eq!(parsed.state, Some(SessionState::Revoked));
        assert_eq!(
            (parsed.created_after_ms, parsed.created_before_ms),
            (Some(1000), Some(2000))
        );
        assert_eq!(parsed.last_seen_after_ms, parsed.last_seen_before_ms);
        let block = IpBlock::new("10.0.0.0".parse().expect("ip"), 8);
        assert_eq!(parsed.ip, block);
        assert_eq!(parsed.device_id.as_deref(), Some("d1"));
        assert_eq!(parsed.aal.as_deref(), Some("aal2"));
        assert_eq!(parsed.started_by.as_deref(), Some("edge"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                pb::SessionFilter {
                    user_id: "u".repeat(9),
                    ..Default::default()
                },
                "filter.user_id",
            ),
            (
                pb::SessionFilter {
                    user_id: "  ".into(),
                    ..Default::default()
                },
                "filter.user_id",
            ),
            (
                pb::SessionFilter {
                    group: "g".repeat(5),
                    ..Default::default()
                },
                "filter.group",
            ),
            (
                pb::SessionFilter {
                    state: 99,
                    ..Default::default()
                },
                "filter.state",
            ),
            (
                pb::SessionFilter {
                    created_after: Some(prost_types::Timestamp {
                        seconds: -1,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
                "filter.created_after",
            ),
            (
                pb::SessionFilter {
                    last_seen_before: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: -5,
                    }),
                    ..Default::default()
                },
                "filter.last_seen_before",
            ),
            (
                pb::SessionFilter {
                    created_after: at(2),
                    created_before: at(1),
                    ..Default::default()
                },
                "filter.created_after",
            ),
            (
                pb::SessionFilter {
                    last_seen_after: at(2),
                    last_seen_before: at(1),
                    ..Default::default()
                },
                "filter.last_seen_after",
            ),
            (
                pb::SessionFilter {
                    device_id: "d\n".into(),
                    ..Default::default()
                },
                "filter.device_id",
            ),
            (
                pb::SessionFilter {
                    aal: "a".repeat(MAX_AAL_BYTES + 1),
                    ..Default::default()
                },
                "filter.aal",
            ),
            (
                pb::SessionFilter {
                    started_by: "s".repeat(9),
                    ..Default::default()
                },
                "filter.started_by",
            ),
        ];
        for (value, field) in cases {
            assert_eq!(invalid_field(filter(value.clone())), field, "{value:?}");
        }
    }

    #[test]
    fn ip_filters_are_addresses_or_cidr_blocks() {
        let cases = [
            ("192.0.2.7", Some(("192.0.2.7", 32))),
            ("2001:db8::/32", Some(("2001:db8::", 32))),
            ("10.0.0.0/0", Some(("10.0.0.0", 0))),
            ("10.0.0.0/33", None),
            ("2001:db8::/129", None),
            ("10.0.0.0/x", None),
            ("10.0.0/8", None),
            ("host.example", None),
            ("/8", None),
        ];
        for (text, expected) in cases {
            match expected {
                Some((address, prefix_len)) => assert_eq!(
                    ip_block(text).ok(),
                    IpBlock::new(address.parse().expect("ip"), prefix_len),
                    "{text:?}"
                ),
                None => assert_eq!(invalid_field(ip_block(text)), "filter.ip", "{text:?}"),
            }
        }
    }
}
