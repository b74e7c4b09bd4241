//! Where a session was last seen: the client context a call carries, and when a sighting
//! is worth a write (the touch interval passed, or the ip or user agent changed).

use crate::store::{ClientContext, SessionRecord};

/// Whether `client` shows the session somewhere new: an ip or user agent it gives that
/// differs from the last recorded one (a field it leaves empty changes nothing).
pub(super) fn moved(record: &SessionRecord, client: Option<&ClientContext>) -> bool {
    client.is_some_and(|client| {
        (!client.ip.is_empty() && client.ip != record.last_ip)
            || (!client.user_agent.is_empty() && client.user_agent != record.last_user_agent)
    })
}

/// Records a sighting of the session by `client` at `now_ms`: the ip and user agent it
/// gives replace the last ones, the ones it leaves empty stay.
pub(super) fn record_sighting(
    record: &mut SessionRecord,
    client: Option<&ClientContext>,
    now_ms: u64,
) {
    let Some(client) = client else {
        return;
    };
    if !client.ip.is_empty() {
        record.last_ip.clone_from(&client.ip);
    }
    if !client.user_agent.is_empty() {
        record.last_user_agent.clone_from(&client.user_agent);
    }
    record.last_seen_at_ms = now_ms;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(ip: &str, user_agent: &str) -> ClientContext {
        ClientContext {
            ip: ip.into(),
            user_agent: user_agent.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_new_ip_or_user_agent_is_a_move() {
        let mut record = SessionRecord::default();
        record_sighting(&mut record, Some(&client("10.0.0.1", "ua")), 5);
        assert_eq!(
            (record.last_ip.as_str(), record.last_seen_at_ms),
            ("10.0.0.1", 5)
        );
        assert!(!moved(&record, None));
        assert!(!moved(&record, Some(&client("10.0.0.1", ""))));
        assert!(!moved(&record, Some(&client("", ""))));
        assert!(moved(&record, Some(&client("10.0.0.2", "ua"))));
        assert!(moved(&record, Some(&client("", "other"))));
    }

    #[test]
    fn an_empty_field_keeps_the_last_value() {
        let mut record = SessionRecord::default();
        record_sighting(&mut record, Some(&client("::1", "ua")), 1);
        record_sighting(&mut record, Some(&client("", "ua2")), 2);
        assert_eq!(record.last_ip, "::1");
        assert_eq!(record.last_user_agent, "ua2");
    }
}
