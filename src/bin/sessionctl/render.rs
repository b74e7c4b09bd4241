//! Answers as text: a key/value block or a table for people, JSON for scripts.

use std::collections::{BTreeMap, HashMap};

use prost_types::Timestamp;
use serde_json::{json, Value};
use sessiond::proto::session::v1 as pb;

use crate::table::{key_values, table, truncate};
use crate::time::{relative, rfc3339, span};

/// What a call answered (no `Debug`: it may hold tokens).
pub enum Answer {
    /// `start`.
    Start(pb::StartResponse),
    /// `whoami`.
    Whoami(pb::WhoamiResponse),
    /// `refresh`.
    Refresh(pb::RefreshResponse),
    /// `extend`.
    Extend(pb::ExtendResponse),
    /// `logout`.
    Logout(pb::LogoutResponse),
    /// `refresh-all`.
    RefreshAll(pb::RefreshAllForUserResponse),
    /// `list` (all pages merged, with `--all-pages`).
    List(pb::ListUserSessionsResponse),
    /// `backup`: the file written and verified.
    Backup(crate::backup::Written),
    /// An admin command's answer, already in both forms.
    Admin(crate::admin::AdminAnswer),
}

/// Widest metadata cell in a session table.
const METADATA_COLUMN_CHARS: usize = 40;

impl Answer {
    /// The answer as JSON: the response message with its proto field names, timestamps
    /// in RFC 3339, states as "ACTIVE" / "REVOKED" / "EXPIRED", every field present.
    pub fn json(&self) -> Value {
        match self {
            Answer::Start(pb::StartResponse {
                session,
                session_token,
                refresh_token,
                expires_in_seconds,
                ..
            })
            | Answer::Refresh(pb::RefreshResponse {
                session,
                session_token,
                refresh_token,
                expires_in_seconds,
                ..
            }) => json!({
                "session": session.as_ref().map(session_json),
                "session_token": session_token,
                "refresh_token": refresh_token,
                "expires_in_seconds": expires_in_seconds,
            }),
            Answer::Whoami(response) => json!({
                "session": response.session.as_ref().map(session_json),
                "expires_in_seconds": response.expires_in_seconds,
                "cache_until": response.cache_until.as_ref().map(|at| rfc3339(at, true)),
            }),
            Answer::Extend(response) => json!({
                "session": response.session.as_ref().map(session_json),
                "extended": response.extended,
            }),
            Answer::Logout(response) => json!({ "revoked_count": response.revoked_count }),
            Answer::RefreshAll(response) => json!({
                "refreshed_count": response.refreshed_count,
                "sessions": response.sessions.iter().map(session_json).collect::<Vec<_>>(),
            }),
            Answer::List(response) => json!({
                "sessions": response.sessions.iter().map(session_json).collect::<Vec<_>>(),
                "next_page_token": response.next_page_token,
            }),
            Answer::Backup(written) => json!({
                "file": written.path.display().to_string(),
                "bytes": written.bytes,
                "sessions": written.sessions,
                "signing_keys": written.signing_keys,
            }),
            Answer::Admin(answer) => answer.json.clone(),
        }
    }

    /// The answer for people; relative times ("in 23h 59m") count from `now_seconds`.
    pub fn human(&self, now_seconds: i64) -> String {
        match self {
            Answer::Start(pb::StartResponse {
                session,
                session_token,
                refresh_token,
                expires_in_seconds,
                ..
            })
            | Answer::Refresh(pb::RefreshResponse {
                session,
                session_token,
                refresh_token,
                expires_in_seconds,
                ..
            }) => {
                let mut pairs = session_pairs(session.as_ref(), now_seconds);
                pairs.push(("expires_in_seconds", seconds(*expires_in_seconds)));
                pairs.push(("session_token", session_token.clone()));
                pairs.push(("refresh_token", refresh_token.clone()));
                key_values(pairs)
            }
            Answer::Whoami(response) => {
                let mut pairs = session_pairs(response.session.as_ref(), now_seconds);
                pairs.push(("expires_in_seconds", seconds(response.expires_in_seconds)));
                pairs.push(("cache_until", moment(response.cache_until.as_ref(), None)));
                key_values(pairs)
            }
            Answer::Extend(response) => {
                let mut pairs = session_pairs(response.session.as_ref(), now_seconds);
                let extended = if response.extended {
                    "yes".to_owned()
                } else {
                    "no (outside the group's extend window, or at max_expires_at)".to_owned()
                };
                pairs.push(("extended", extended));
                key_values(pairs)
            }
            Answer::Logout(response) => match response.revoked_count {
                0 => "revoked 0 sessions (already ended)\n".to_owned(),
                count => format!("revoked {}\n", sessions(count)),
            },
            Answer::RefreshAll(response) => format!(
                "extended {}\n{}",
                sessions(response.refreshed_count),
                session_table(&response.sessions, now_seconds)
            ),
            Answer::List(response) => {
                let mut text = if response.sessions.is_empty() {
                    "no sessions\n".to_owned()
                } else {
                    session_table(&response.sessions, now_seconds)
                };
                if !response.next_page_token.is_empty() {
                    text.push_str(&format!(
                        "more: --page-token {} (or --all-pages)\n",
                        response.next_page_token
                    ));
                }
                text
            }
            Answer::Backup(written) => format!(
                "backed up {} and {} signing keys to {} ({} bytes, checksum verified)\n",
                sessions(u32::try_from(written.sessions).unwrap_or(u32::MAX)),
                written.signing_keys,
                written.path.display(),
                written.bytes
            ),
            Answer::Admin(answer) => answer.human.clone(),
        }
    }
}

/// A session as JSON.
pub(crate) fn session_json(session: &pb::Session) -> Value {
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
    ]
}

/// Sessions as a table, one row each; "EXPIRES IN" only for active ones.
pub(crate) fn session_table(sessions: &[pb::Session], now_seconds: i64) -> String {
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
fn moment(at: Option<&Timestamp>, now_seconds: Option<i64>) -> String {
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
fn seconds(count: i64) -> String {
    match u64::try_from(count) {
        Ok(positive) if positive > 0 => format!("{count} ({})", span(positive)),
        _ => count.to_string(),
    }
}

/// "1 session", "2 sessions".
fn sessions(count: u32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: i64 = 1_767_225_600;

    fn session() -> pb::Session {
        let at = |seconds| Some(Timestamp { seconds, nanos: 0 });
        pb::Session {
            session_id: "0194-id".to_owned(),
            user_id: "alice".to_owned(),
            group: "default".to_owned(),
            state: pb::SessionState::Active as i32,
            created_at: at(NEW_YEAR),
            authenticated_at: at(NEW_YEAR),
            last_access_at: at(NEW_YEAR),
            expires_at: at(NEW_YEAR + 86_400),
            max_expires_at: at(NEW_YEAR + 30 * 86_400),
            ttl_seconds: 86_400,
            metadata: HashMap::from([("device".to_owned(), "laptop".to_owned())]),
            ..Default::default()
        }
    }

    #[test]
    fn json_uses_proto_names_state_names_and_rfc3339() {
        let answer = Answer::Whoami(pb::WhoamiResponse {
            session: Some(session()),
            expires_in_seconds: 86_400,
            cache_until: Some(Timestamp {
                seconds: NEW_YEAR + 60,
                nanos: 0,
            }),
        });
        let value = answer.json();
        assert_eq!(value["session"]["state"], "ACTIVE");
        assert_eq!(value["session"]["expires_at"], "2026-01-02T00:00:00Z");
        assert_eq!(value["session"]["metadata"]["device"], "laptop");
        assert_eq!(value["expires_in_seconds"], 86_400);
        assert_eq!(value["cache_until"], "2026-01-01T00:01:00Z");
    }

    #[test]
    fn human_output_shows_expiry_relative_to_now() {
        let answer = Answer::Extend(pb::ExtendResponse {
            session: Some(session()),
            extended: true,
        });
        let text = answer.human(NEW_YEAR + 60);
        let line = |key: &str| {
            text.lines()
                .find(|line| line.starts_with(key))
                .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        assert_eq!(
            line("expires_at:").as_deref(),
            Some("expires_at: 2026-01-02T00:00:00Z (in 23h 59m)")
        );
        assert_eq!(line("extended:").as_deref(), Some("extended: yes"));
    }

    #[test]
    fn unknown_states_are_named_not_dropped() {
        assert_eq!(state_name(2), "REVOKED");
        assert_eq!(state_name(0), "UNSPECIFIED");
        assert_eq!(state_name(42), "UNKNOWN(42)");
    }

    #[test]
    fn a_list_with_more_pages_says_how_to_get_them() {
        let answer = Answer::List(pb::ListUserSessionsResponse {
            sessions: vec![session()],
            next_page_token: "abc".to_owned(),
        });
        let text = answer.human(NEW_YEAR);
        assert!(text.starts_with("SESSION ID"), "{text}");
        let row: Vec<&str> = text
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(row.get(..2), Some(&["0194-id", "ACTIVE"][..]), "{text}");
        assert!(
            text.ends_with("more: --page-token abc (or --all-pages)\n"),
            "{text}"
        );
    }
}
