//! The admin commands beyond one session's life: search and bulk revoke over a filter,
//! reauth, attributes, signing keys; their flags, requests and printed answers.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use sessiond::proto::session::v1 as pb;

use crate::args::{into_map, key_value, rfc3339_moment};
use crate::client::Target;
use crate::error::CtlError;
use crate::output::Output;
use crate::render::{one_session, session_json, session_table};
use crate::time::now_seconds;

/// Admin commands (flattened into `sessionctl`'s own list).
#[derive(Subcommand)]
pub enum AdminCommand {
    /// List sessions of every user that match a filter, newest first (one page).
    Search {
        #[command(flatten)]
        filter: FilterArgs,
        /// Most sessions in the page (default 50, at most 500).
        #[arg(long)]
        page_size: Option<i32>,
        /// The next_page_token of the previous page.
        #[arg(long)]
        page_token: Option<String>,
    },
    /// End every active session that matches a filter (BULK_REVOKE).
    Revoke {
        #[command(flatten)]
        filter: FilterArgs,
        /// Why: kept in each REVOKED event.
        #[arg(long)]
        reason: String,
        /// Only count the matching sessions and show the first ids.
        #[arg(long)]
        dry_run: bool,
        /// End sessions of every user when no filter flag is given.
        #[arg(long)]
        all: bool,
        /// Refuse when more sessions than this match (default 1000).
        #[arg(long)]
        max_sessions: Option<u32>,
    },
    /// Record that the user proved themselves again (admin form, by session id).
    Reauth {
        /// The session's id (a UUID).
        session_id: String,
        /// Authenticator assurance level to record, e.g. aal2.
        #[arg(long)]
        aal: Option<String>,
    },
    /// Change a session's attributes.
    #[command(subcommand)]
    Attrs(AttrsCommand),
    /// Signing keys of access and ID tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the public keys (JWKS) that verify access and ID tokens.
    Jwks,
}

/// `attrs set` / `attrs rm`.
#[derive(Subcommand)]
pub enum AttrsCommand {
    /// Add or overwrite attributes.
    Set {
        /// The session's id (a UUID).
        session_id: String,
        /// KEY=VALUE pairs.
        #[arg(required = true, value_parser = key_value)]
        pairs: Vec<(String, String)>,
    },
    /// Delete attributes.
    Rm {
        /// The session's id (a UUID).
        session_id: String,
        /// Keys to delete.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// `keys rotate`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Sign new tokens with a new key from now on; prints its key id.
    Rotate,
}

/// The session filter of `search` and `revoke` (every flag given must match).
#[derive(Args)]
pub struct FilterArgs {
    /// Only this user's sessions.
    #[arg(long)]
    user_id: Option<String>,
    /// Only sessions of this group.
    #[arg(long)]
    group: Option<String>,
    /// Only sessions in this state: active, revoked or expired.
    #[arg(long, value_parser = ["active", "revoked", "expired"])]
    state: Option<String>,
    /// Only sessions created at or after this RFC 3339 moment.
    #[arg(long, value_parser = rfc3339_moment)]
    created_after: Option<prost_types::Timestamp>,
    /// Only sessions created before this RFC 3339 moment.
    #[arg(long, value_parser = rfc3339_moment)]
    created_before: Option<prost_types::Timestamp>,
    /// Only sessions last seen at or after this RFC 3339 moment.
    #[arg(long, value_parser = rfc3339_moment)]
    last_seen_after: Option<prost_types::Timestamp>,
    /// Only sessions last seen before this RFC 3339 moment.
    #[arg(long, value_parser = rfc3339_moment)]
    last_seen_before: Option<prost_types::Timestamp>,
    /// Only sessions from this IP address or CIDR block (e.g. 10.0.0.0/8).
    #[arg(long)]
    ip: Option<String>,
    /// Only sessions started with this device id.
    #[arg(long)]
    device_id: Option<String>,
    /// Only sessions with this assurance level.
    #[arg(long)]
    aal: Option<String>,
    /// Only sessions started by this caller.
    #[arg(long)]
    started_by: Option<String>,
}

impl FilterArgs {
    fn into_filter(self) -> pb::SessionFilter {
        let state = match self.state.as_deref() {
            Some("active") => pb::SessionState::Active,
            Some("revoked") => pb::SessionState::Revoked,
            Some("expired") => pb::SessionState::Expired,
            _ => pb::SessionState::Unspecified,
        };
        pb::SessionFilter {
            user_id: self.user_id.unwrap_or_default(),
            group: self.group.unwrap_or_default(),
            state: state as i32,
            created_after: self.created_after,
            created_before: self.created_before,
            last_seen_after: self.last_seen_after,
            last_seen_before: self.last_seen_before,
            ip: self.ip.unwrap_or_default(),
            device_id: self.device_id.unwrap_or_default(),
            aal: self.aal.unwrap_or_default(),
            started_by: self.started_by.unwrap_or_default(),
        }
    }
}

impl AdminCommand {
    /// Makes the call and returns its answer.
    pub async fn run(self, target: &Target) -> Result<Output, CtlError> {
        match self {
            AdminCommand::Search {
                filter,
                page_size,
                page_token,
            } => {
                let message = pb::ListSessionsRequest {
                    filter: Some(filter.into_filter()),
                    page_size: page_size.unwrap_or(0),
                    page_token: page_token.unwrap_or_default(),
                };
                let page = target
                    .call(message, async |client, request| {
                        client.list_sessions(request).await
                    })
                    .await?;
                Ok(search_page(&page, now_seconds()))
            }
            AdminCommand::Revoke {
                filter,
                reason,
                dry_run,
                all,
                max_sessions,
            } => {
                let message = pb::RevokeSessionsRequest {
                    filter: Some(filter.into_filter()),
                    all,
                    dry_run,
                    reason,
                    max_sessions: max_sessions.unwrap_or(0),
                };
                let done = target
                    .call(message, async |client, request| {
                        client.revoke_sessions(request).await
                    })
                    .await?;
                Ok(bulk_revoked(&done, dry_run))
            }
            AdminCommand::Reauth { session_id, aal } => {
                let message = pb::ReauthenticateRequest {
                    session_id,
                    aal: aal.unwrap_or_default(),
                    ..Default::default()
                };
                let done = target
                    .call(message, async |client, request| {
                        client.reauthenticate(request).await
                    })
                    .await?;
                Ok(one_session(done.session, now_seconds()))
            }
            AdminCommand::Attrs(command) => {
                let message = command.into_request()?;
                let done = target
                    .call(message, async |client, request| {
                        client.update_attributes(request).await
                    })
                    .await?;
                Ok(one_session(done.session, now_seconds()))
            }
            AdminCommand::Keys(KeysCommand::Rotate) => {
                let message = pb::RotateSigningKeyRequest {};
                let done = target
                    .call(message, async |client, request| {
                        client.rotate_signing_key(request).await
                    })
                    .await?;
                Ok(Output {
                    text: format!("new signing key: {}\n", done.kid),
                    json: json!({ "kid": done.kid }),
                })
            }
            AdminCommand::Jwks => {
                let message = pb::GetJwksRequest {};
                let done = target
                    .call(message, async |client, request| {
                        client.get_jwks(request).await
                    })
                    .await?;
                let jwks: Value = serde_json::from_str(&done.jwks_json).unwrap_or(Value::Null);
                Ok(Output {
                    text: format!(
                        "{}\n",
                        serde_json::to_string_pretty(&jwks).unwrap_or_default()
                    ),
                    json: jwks,
                })
            }
        }
    }
}

impl AttrsCommand {
    /// The request: pairs to set (a key given twice is refused) or keys to delete.
    fn into_request(self) -> Result<pb::UpdateAttributesRequest, CtlError> {
        Ok(match self {
            AttrsCommand::Set { session_id, pairs } => pb::UpdateAttributesRequest {
                session_id,
                set: into_map("KEY=VALUE", pairs)?,
                ..Default::default()
            },
            AttrsCommand::Rm { session_id, keys } => pb::UpdateAttributesRequest {
                session_id,
                remove: keys,
                ..Default::default()
            },
        })
    }
}

/// One page of `search`, and how to get the next one when there is one.
fn search_page(page: &pb::ListSessionsResponse, now_seconds: i64) -> Output {
    let mut text = session_table(&page.sessions, now_seconds);
    if !page.next_page_token.is_empty() {
        text.push_str(&format!("more: --page-token {}\n", page.next_page_token));
    }
    Output {
        json: json!({
            "sessions": page.sessions.iter().map(session_json).collect::<Vec<_>>(),
            "next_page_token": page.next_page_token,
        }),
        text,
    }
}

/// What a bulk `revoke` matched and ended (a dry run ends none), and the ids.
fn bulk_revoked(done: &pb::RevokeSessionsResponse, dry_run: bool) -> Output {
    let counts = match dry_run {
        true => format!(
            "{} sessions match (dry run: none ended)\n",
            done.matched_count
        ),
        false => format!(
            "{} sessions matched, {} ended\n",
            done.matched_count, done.revoked_count
        ),
    };
    let ids: String = done
        .session_ids
        .iter()
        .map(|id| format!("{id}\n"))
        .collect();
    Output {
        json: json!({
            "matched_count": done.matched_count,
            "revoked_count": done.revoked_count,
            "session_ids": done.session_ids,
            "dry_run": dry_run,
        }),
        text: counts + &ids,
    }
}
