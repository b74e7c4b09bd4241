//! How sessions read, shared by every command that shows one: a `key: value` block or a
//! table for people, JSON for scripts; and the counts of sessions ended.

use std::collections::{BTreeMap, HashMap};

use prost_types::Timestamp;
use serde_json::{json, Value};
use sessiond::proto::session::v1 as pb;

use crate::output::Output;
use crate::table::{key_values, table, truncate};
use crate::time::{relative, rfc3339, span};

/// Widest metadata cell in a session table.
const METADATA_COLUMN_CHARS: usize = 40;

/// A session as JSON.
pub fn session_json(session: &pb::Session) -> Value {
    json!({
        "session_id": session.session_id,
        "user_id": session.user_id,
        "group": session.group,
        "state": state_name(session.state),
        "created_at": session.created_at.as_ref().map(|at| rfc3339(at, true)),
        "authenticated_at": session.authenticated_at.as_ref().map(|at| rfc3339(at, true)),
        "last_access_at": session.last_access_at.as_ref().map(|at| rfc3339(at, true)),
        "expires_at": session.expires_at.as_ref().map(|at| rfc3339(at, true)),
        "max_expires_at": session.max_expires_at.as_ref().map(|at| rfc3339(at, true)),
        "ttl_seconds": session.ttl_seconds,
        "metadata": sorted(&session.metadata),
        "attributes": sorted(&session.attributes),
        "aal": session.aal,
        "client": session.client.as_ref().map(|client| json!({
            "ip": client.ip,
            "user_agent": client.user_agent,
            "device_id": client.device_id,
            "device_label": client.device_label,
        })),
        "last_ip": session.last_ip,
        "last_user_agent": session.last_user_agent,
        "last_seen_at": session.last_seen_at.as_ref().map(|at| rfc3339(at, true)),
        "end_reason": end_reason_name(session.end_reason),
        "started_by": session.started_by,
        "device_key_thumbprint": session.device_key_thumbprint,
    })
}

/// The device a session runs on, for people: its label, else its id, else "-".
fn device(session: &pb::Session) -> String {
    session
        .client
        .as_ref()
        .map(|client| [&client.device_label, &client.device_id])
        .and_then(|names| names.into_iter().find(|name| !name.is_empty()).cloned())
        .unwrap_or_else(|| "-".to_owned())
}

/// Text of a field that may be empty: "-" when it is.
fn or_dash(text: &str) -> String {
    if text.is_empty() { "-" } else { text }.to_owned()
}

/// A session as `key: value` lines, every field in proto order, then the command's
/// own `extra` lines, all aligned together.
pub fn session_block(
    session: Option<&pb::Session>,
    now_seconds: i64,
    extra: Vec<(&'static str, String)>,
) -> String {
    let mut pairs = session_pairs(session, now_seconds);
    pairs.extend(extra);
    key_values(pairs)
}

/// A session as `key: value` pairs, every field, in proto order.
fn session_pairs(session: Option<&pb::Session>, now_seconds: i64) -> Vec<(&'static str, String)> {
    let Some(session) = session else {
        return vec![("session", "-".to_owned())];
    };
    vec![
        ("session_id", session.session_id.clone()),
        ("user_id", session.user_id.clone()),
        ("group", session.group.clone()),
        ("state", state_name(session.state)),
        ("created_at", moment(session.created_at.as_ref(), None)),
        (
            "authenticated_at",
            moment(session.authenticated_at.as_ref(), None),
        ),
        (
            "last_access_at",
            moment(session.last_access_at.as_ref(), None),
        ),
        (
            "expires_at",
            moment(session.expires_at.as_ref(), Some(now_seconds)),
        ),
        (
            "max_expires_at",
            moment(session.max_expires_at.as_ref(), Some(now_seconds)),
        ),
        ("ttl_seconds", seconds(session.ttl_seconds)),
        ("metadata", pairs_text(&session.metadata)),
        ("attributes", pairs_text(&session.attributes)),
        ("device", device(session)),
        (
            "client_ip",
            or_dash(session.client.as_ref().map_or("", |client| &client.ip)),
        ),
        ("last_ip", or_dash(&session.last_ip)),
        ("last_user_agent", or_dash(&session.last_user_agent)),
        ("last_seen_at", moment(session.last_seen_at.as_ref(), None)),
        ("end_reason", end_reason_name(session.end_reason)),
        ("started_by", or_dash(&session.started_by)),
        ("device_key", or_dash(&session.device_key_thumbprint)),
    ]
}

/// Sessions as a table, one row each; "EXPIRES IN" only for active ones.
pub fn session_table(sessions: &[pb::Session], now_seconds: i64) -> String {
    let rows = sessions
        .iter()
        .map(|session| {
            vec![
                session.session_id.clone(),
                state_name(session.state),
                session.group.clone(),
                moment(session.created_at.as_ref(), None),
                moment(session.last_access_at.as_ref(), None),
                moment(session.expires_at.as_ref(), None),
                // Only a live session counts down; an ended one would mislead.
                match (&session.expires_at, session.state()) {
                    (Some(at), pb::SessionState::Active) => {
                        relative(at.seconds.saturating_sub(now_seconds))
                    }
                    _ => "-".to_owned(),
                },
                device(session),
                or_dash(&session.last_ip),
                truncate(&pairs_text(&session.metadata), METADATA_COLUMN_CHARS),
            ]
        })
        .collect();
    table(
        &[
            "SESSION ID",
            "STATE",
            "GROUP",
            "CREATED",
            "LAST ACCESS",
            "EXPIRES",
            "EXPIRES IN",
            "DEVICE",
            "LAST IP",
            "METADATA",
        ],
        rows,
    )
}

/// "LOGOUT", "IDLE_TIMEOUT", ...; "-" while the session is active.
fn end_reason_name(reason: i32) -> String {
    match pb::EndReason::try_from(reason) {
        Ok(pb::EndReason::Unspecified) => "-".to_owned(),
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("END_REASON_")
            .to_owned(),
        Err(_) => format!("UNKNOWN({reason})"),
    }
}

/// "ACTIVE", "REVOKED", "EXPIRED"; "UNSPECIFIED" or "UNKNOWN(n)" for what the server
/// should never send.
fn state_name(state: i32) -> String {
    match pb::SessionState::try_from(state) {
        Ok(known) => known
            .as_str_name()
            .trim_start_matches("SESSION_STATE_")
            .to_owned(),
        Err(_) => format!("UNKNOWN({state})"),
    }
}

/// A timestamp to the second, with "(in 23h 59m)" when `now_seconds` is given.
pub fn moment(at: Option<&Timestamp>, now_seconds: Option<i64>) -> String {
    match (at, now_seconds) {
        (None, _) => "-".to_owned(),
        (Some(at), None) => rfc3339(at, false),
        (Some(at), Some(now)) => format!(
            "{} ({})",
            rfc3339(at, false),
            relative(at.seconds.saturating_sub(now))
        ),
    }
}

/// A number of seconds with its span: "86400 (1d 0h)".
pub fn seconds(count: i64) -> String {
    match u64::try_from(count) {
        Ok(positive) if positive > 0 => format!("{count} ({})", span(positive)),
        _ => count.to_string(),
    }
}

/// "1 session", "2 sessions".
pub fn sessions(count: u32) -> String {
    match count {
        1 => "1 session".to_owned(),
        count => format!("{count} sessions"),
    }
}

/// A map as "k=v, k=v" in key order, "-" when empty.
fn pairs_text(map: &HashMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    sorted(map)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A map in key order, so output is stable from run to run.
fn sorted(map: &HashMap<String, String>) -> BTreeMap<&str, &str> {
    map.iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

/// The answer of a call that ended sessions (`logout`, `revoke-user`).
pub fn revoked(revoked_count: u32) -> Output {
    Output {
        json: json!({ "revoked_count": revoked_count }),
        text: match revoked_count {
            0 => "revoked 0 sessions (already ended)\n".to_owned(),
            count => format!("revoked {}\n", sessions(count)),
        },
    }
}

/// The answer that is one session, as a one-row table.
pub fn one_session(session: Option<pb::Session>, now_seconds: i64) -> Output {
    let session = session.unwrap_or_default();
    Output {
        text: session_table(std::slice::from_ref(&session), now_seconds),
        json: json!({ "session": session_json(&session) }),
    }
}

#[cfg(test)]
mod tests {
    use super::{revoked, state_name};

    #[test]
    fn unknown_states_are_named_not_dropped() {
        assert_eq!(state_name(2), "REVOKED");
        assert_eq!(state_name(0), "UNSPECIFIED");
        assert_eq!(state_name(42), "UNKNOWN(42)");
    }

    #[test]
    fn ended_sessions_are_counted_in_words() {
        assert_eq!(revoked(0).text, "revoked 0 sessions (already ended)\n");
        assert_eq!(revoked(1).text, "revoked 1 session\n");
        assert_eq!(revoked(3).json["revoked_count"], 3);
    }
}
