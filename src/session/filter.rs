//! Which sessions an admin search or bulk revoke means: every field set must match
//! (AND), and the bounds that let a walk start and stop early instead of reading all.

use std::net::IpAddr;

use super::policy::SessionState;
use crate::store::{SessionId, SessionRecord};

/// A filter over sessions; `None` fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub user_id: Option<String>,
    pub group: Option<String>,
    pub state: Option<SessionState>,
    pub created_after_ms: Option<u64>,
    pub created_before_ms: Option<u64>,
    pub last_seen_after_ms: Option<u64>,
    pub last_seen_before_ms: Option<u64>,
    pub ip: Option<IpBlock>,
    pub device_id: Option<String>,
    pub aal: Option<String>,
    pub started_by: Option<String>,
}

/// One address (a full-length prefix) or a CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix_len: u8,
}

impl IpBlock {
    /// The block of `prefix_len` leading bits of `address`; None past the address's
    /// length (32 or 128).
    pub fn new(address: IpAddr, prefix_len: u8) -> Option<IpBlock> {
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix_len <= bits).then_some(IpBlock {
            network: address,
            prefix_len,
        })
    }

    /// Whether `address` (text, as stored) lies in the block.
    pub fn contains(&self, address: &str) -> bool {
        let Ok(address) = address.parse::<IpAddr>() else {
            return false;
        };
        let (network, address, bits) = match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => (
                u128::from(network.to_bits()),
                u128::from(address.to_bits()),
                32,
            ),
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                (network.to_bits(), address.to_bits(), 128)
            }
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix_len);
        network.checked_shr(host_bits).unwrap_or(0) == address.checked_shr(host_bits).unwrap_or(0)
    }
}

impl SessionFilter {
    /// Whether no field is set: the filter matches every session.
    pub fn is_empty(&self) -> bool {
        *self == SessionFilter::default()
    }

    /// Whether `record`, in `state` as of now, matches every field set.
    pub fn matches(&self, record: &SessionRecord, state: SessionState) -> bool {
        let client = record.client.as_ref();
        let last_seen_ms = record.last_seen_at_ms.max(record.last_access_at_ms);
        let same =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        same(&self.user_id, &record.user_id)
            && same(&self.group, &record.group)
            && self.state.is_none_or(|wanted| wanted == state)
            && self
                .created_after_ms
                .is_none_or(|ms| record.created_at_ms >= ms)
            && self
                .created_before_ms
                .is_none_or(|ms| record.created_at_ms < ms)
            && self.last_seen_after_ms.is_none_or(|ms| last_seen_ms >= ms)
            && self.last_seen_before_ms.is_none_or(|ms| last_seen_ms < ms)
            && self.ip.is_none_or(|block| {
                block.contains(&record.last_ip)
                    || client.is_some_and(|client| block.contains(&client.ip))
            })
            && same(
                &self.device_id,
                client.map_or("", |client| &client.device_id),
            )
            && same(&self.aal, &record.aal)
            && same(&self.started_by, &record.started_by)
    }

    /// The id a newest-first walk starts before: sessions created at or after
    /// `created_before` have ids at or above it (UUID v7 ids begin with their time).
    pub fn upper_id(&self) -> Option<SessionId> {
        self.created_before_ms.map(first_id_at)
    }

    /// The id a newest-first walk stops below: older ids were created before
    /// `created_after`.
    pub fn lower_id(&self) -> Option<SessionId> {
        self.created_after_ms.map(first_id_at)
    }
}

/// The lowest UUID v7 of millisecond `ms`.
fn first_id_at(ms: u64) -> SessionId {
    let mut bytes = [0; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    SessionId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str, prefix_len: u8) -> IpBlock {
        IpBlock::new(text.parse().unwrap(), prefix_len).unwrap()
    }

    #[test]
    fn a_block_holds_the_addresses_under_its_prefix_only() {
        assert!(block("10.0.0.0", 8).contains("10.200.3.4"));
        assert!(!block("10.0.0.0", 8).contains("11.0.0.1"));
        assert!(block("192.0.2.7", 32).contains("192.0.2.7"));
        assert!(!block("192.0.2.7", 32).contains("192.0.2.8"));
        assert!(block("0.0.0.0", 0).contains("203.0.113.1"));
        assert!(block("2001:db8::", 32).contains("2001:db8:1::5"));
        assert!(!block("2001:db8::", 32).contains("10.0.0.1"));
        assert!(!block("10.0.0.0", 8).contains(""));
        assert!(IpBlock::new("10.0.0.0".parse().unwrap(), 33).is_none());
    }

    #[test]
    fn the_id_bounds_order_like_session_ids_of_that_time() {
        let id = SessionId::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_700_000_000,
            5_000_000,
        ));
        assert!(first_id_at(1_700_000_000_005) <= id);
        assert!(first_id_at(1_700_000_000_006) > id);
    }
}
