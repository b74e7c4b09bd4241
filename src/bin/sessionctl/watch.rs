//! `sessionctl watch`: follows WatchSessions and prints one line per event as it comes
//! (`--json`: one JSON object per line, for pipes), resumable with `--after CURSOR`.

use clap::Args;
use futures::StreamExt;
use serde_json::json;
use sessiond::proto::session::v1 as pb;

use crate::client::Target;
use crate::error::CtlError;
use crate::output::write_stdout;
use crate::time::rfc3339;

/// Follow session events as they happen (WatchSessions): one line each, or one JSON
/// object per line with --json; resume with --after CURSOR.
#[derive(Args)]
pub struct WatchArgs {
    /// Resume after this cursor (the `cursor` of the last event seen); default: from now.
    #[arg(long, value_name = "CURSOR")]
    after: Option<u64>,
    /// Only this user's sessions.
    #[arg(long, value_name = "USER_ID")]
    user: Option<String>,
    /// Stop after this many events (CAUGHT_UP markers included); default: until Ctrl-C.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

impl WatchArgs {
    /// Prints events of the stream to stdout until `count`, Ctrl-C or the stream's end:
    /// each line as its event comes, so no `Output` is handed back at the end.
    pub async fn run(self, target: &Target, as_json: bool) -> Result<(), CtlError> {
        let mut api = target.connect().await?;
        let request = api.untimed_request(pb::WatchSessionsRequest {
            after_cursor: self.after,
            user_id: self.user.unwrap_or_default(),
        });
        let mut events = api
            .client()
            .watch_sessions(request)
            .await
            .map_err(CtlError::Status)?
            .into_inner();
        let mut printed = 0u64;
        while self.count.is_none_or(|count| printed < count) {
            let next = tokio::select! {
                next = events.next() => next,
                _ = tokio::signal::ctrl_c() => None,
            };
            let Some(event) = next else { break };
            let line = event_line(&event.map_err(CtlError::Status)?, as_json);
            write_stdout(&format!("{line}\n"))?;
            printed += 1;
        }
        Ok(())
    }
}

/// One event as a line: JSON (proto field names) or words for people.
fn event_line(event: &pb::SessionEvent, as_json: bool) -> String {
    let kind = pb::SessionEventKind::try_from(event.kind)
        .map_or("UNKNOWN", |kind| kind.as_str_name())
        .trim_start_matches("SESSION_EVENT_KIND_");
    let end_reason = pb::EndReason::try_from(event.end_reason)
        .map_or("", |reason| reason.as_str_name())
        .trim_start_matches("END_REASON_");
    let at = event
        .at
        .as_ref()
        .map(|at| rfc3339(at, true))
        .unwrap_or_default();
    if as_json {
        return json!({
            "cursor": event.cursor,
            "kind": kind,
            "session_id": event.session_id,
            "user_id": event.user_id,
            "at": at,
            "end_reason": end_reason,
            "actor": event.actor,
            "reason": event.reason,
        })
        .to_string();
    }
    let mut line = format!(
        "{} {kind} {} {} {at}",
        event.cursor, event.session_id, event.user_id
    );
    for (name, value) in [
        ("reason", end_reason),
        ("actor", &event.actor),
        ("note", &event.reason),
    ] {
        if !value.is_empty() && value != "UNSPECIFIED" {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    line
}
