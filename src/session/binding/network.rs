//! Network binding: whether a call comes from the network its session started from,
//! by the client ip that the caller reports, at the strictness the group asks for.

use std::net::IpAddr;

use serde::Deserialize;

use super::failure::BindingFailure;

/// How closely a call's ip must match the ip the session started from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkBinding {
    /// Any network.
    #[default]
    Off,
    /// The same /24 (IPv4) or /64 (IPv6): a device may move within its network.
    Subnet,
    /// The same address.
    Exact,
}

/// Whether a call from `now_from` may use a session started from `started_from`.
///
/// A session started without an ip (its caller reported none) has nothing to compare
/// against, so it passes; a call without an ip cannot be checked, so it fails with
/// `NetworkUnknown`, which does not prove theft. An ip that does not parse matches
/// nothing. IPv4-mapped IPv6 addresses count as the IPv4 address they map.
pub fn network_check(
    mode: NetworkBinding,
    started_from: &str,
    now_from: Option<&str>,
) -> Result<(), BindingFailure> {
    if mode == NetworkBinding::Off || started_from.is_empty() {
        return Ok(());
    }
    let now_from = now_from
        .filter(|ip| !ip.is_empty())
        .ok_or(BindingFailure::NetworkUnknown)?;
    let parse = |ip: &str| ip.parse::<IpAddr>().map(|ip| ip.to_canonical()).ok();
    let (Some(started), Some(now)) = (parse(started_from), parse(now_from)) else {
        return Err(BindingFailure::NetworkMismatch);
    };
    let same = match (mode, started, now) {
        (NetworkBinding::Exact, started, now) => started == now,
        (NetworkBinding::Subnet, IpAddr::V4(started), IpAddr::V4(now)) => {
            started.octets()[..3] == now.octets()[..3]
        }
        (NetworkBinding::Subnet, IpAddr::V6(started), IpAddr::V6(now)) => {
            started.segments()[..4] == now.segments()[..4]
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(BindingFailure::NetworkMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_outcomes() {
        use BindingFailure::{NetworkMismatch, NetworkUnknown};
        use NetworkBinding::{Exact, Off, Subnet};
        // (case, mode, started from, now from, outcome)
        #[rustfmt::skip]
        let cases = [
            ("off: anything goes", Off, "10.0.0.1", Some("192.0.2.1"), Ok(())),
            ("off: no ip now", Off, "10.0.0.1", None, Ok(())),
            ("started without an ip", Exact, "", Some("192.0.2.1"), Ok(())),
            ("started without an ip, none now", Subnet, "", None, Ok(())),
            ("no ip now", Exact, "10.0.0.1", None, Err(NetworkUnknown)),
            ("an empty ip now", Subnet, "10.0.0.1", Some(""), Err(NetworkUnknown)),
            ("exact: same v4", Exact, "10.0.0.1", Some("10.0.0.1"), Ok(())),
            ("exact: next v4", Exact, "10.0.0.1", Some("10.0.0.2"), Err(NetworkMismatch)),
            ("exact: v4-mapped v6 is the v4", Exact, "10.0.0.1", Some("::ffff:10.0.0.1"), Ok(())),
            ("exact: v6 spelled two ways", Exact, "2001:db8::1", Some("2001:DB8:0:0::1"), Ok(())),
            ("exact: another v6", Exact, "2001:db8::1", Some("2001:db8::2"), Err(NetworkMismatch)),
            ("subnet: same /24", Subnet, "10.0.0.1", Some("10.0.0.254"), Ok(())),
            ("subnet: next /24", Subnet, "10.0.0.1", Some("10.0.1.1"), Err(NetworkMismatch)),
            ("subnet: v4-mapped in the /24", Subnet, "::ffff:10.0.0.1", Some("10.0.0.9"), Ok(())),
            ("subnet: same /64", Subnet, "2001:db8:1:2::1", Some("2001:db8:1:2:ffff::9"), Ok(())),
            ("subnet: next /64", Subnet, "2001:db8:1:2::1", Some("2001:db8:1:3::1"), Err(NetworkMismatch)),
            ("subnet: v4 then v6", Subnet, "10.0.0.1", Some("2001:db8::1"), Err(NetworkMismatch)),
            ("unparsable now", Exact, "10.0.0.1", Some("10.0.0.1:443"), Err(NetworkMismatch)),
            ("unparsable at start", Subnet, "host.example", Some("10.0.0.1"), Err(NetworkMismatch)),
        ];
        for (case, mode, started_from, now_from, outcome) in cases {
            assert_eq!(
                network_check(mode, started_from, now_from),
                outcome,
                "{case}"
            );
        }
    }

    #[test]
    fn modes_read_as_snake_case_and_default_to_off() {
        #[derive(Deserialize)]
        struct Group {
            #[serde(default)]
            network_binding: NetworkBinding,
        }
        let read = |text: &str| {
            toml::from_str::<Group>(text)
                .map(|g| g.network_binding)
                .ok()
        };
        assert_eq!(read(""), Some(NetworkBinding::Off));
        assert_eq!(
            read("network_binding = \"subnet\""),
            Some(NetworkBinding::Subnet)
        );
        assert_eq!(
            read("network_binding = \"exact\""),
            Some(NetworkBinding::Exact)
        );
        assert_eq!(read("network_binding = \"Exact\""), None);
    }
}
