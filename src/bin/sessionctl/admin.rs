//! The admin commands beyond one session's life: search and bulk revoke over a filter,
//! reauth, attributes, signing keys; their flags, requests and printed answers.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use sessiond::proto::session::v1 as pb;

use crate::cli::{into_map, key_value, rfc3339_moment};
use crate::client::{answer, Api};
use crate::error::CtlError;
use crate::render::{session_json, session_table};

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

/// An admin request, ready to send.
pub enum AdminCall {
    Search(pb::ListSessionsRequest),
    Revoke(pb::RevokeSessionsRequest),
    Reauth(pb::ReauthenticateRequest),
    Attrs(pb::UpdateAttributesRequest),
    RotateKey,
    Jwks,
}

/// What an admin call answered, in both printed forms.
pub struct AdminAnswer {
    pub json: Value,
    pub human: String,
}

impl AdminCommand {
    /// The request this command sends.
    pub fn into_call(self) -> Result<AdminCall, CtlError> {
        Ok(match self {
            AdminCommand::Search {
                filter,
                page_size,
                page_token,
            } => AdminCall::Search(pb::ListSessionsRequest {
                filter: Some(filter.into_filter()),
                page_size: page_size.unwrap_or(0),
                page_token: page_token.unwrap_or_default(),
            }),
            AdminCommand::Revoke {
                filter,
                reason,
                dry_run,
                all,
                max_sessions,
            } => AdminCall::Revoke(pb::RevokeSessionsRequest {
                filter: Some(filter.into_filter()),
                all,
                dry_run,
                reason,
                max_sessions: max_sessions.unwrap_or(0),
            }),
            AdminCommand::Reauth { session_id, aal } => {
                AdminCall::Reauth(pb::ReauthenticateRequest {
                    session_id,
                    aal: aal.unwrap_or_default(),
                    ..Default::default()
                })
            }
            AdminCommand::Attrs(AttrsCommand::Set { session_id, pairs }) => {
                AdminCall::Attrs(pb::UpdateAttributesRequest {
                    session_id,
                    set: into_map("KEY=VALUE", pairs)?,
                    ..Default::default()
                })
            }
            AdminCommand::Attrs(AttrsCommand::Rm { session_id, keys }) => {
                AdminCall::Attrs(pb::UpdateAttributesRequest {
                    session_id,
                    remove: keys,
                    ..Default::default()
                })
            }
            AdminCommand::Keys(KeysCommand::Rotate) => AdminCall::RotateKey,
            AdminCommand::Jwks => AdminCall::Jwks,
        })
    }
}

impl Api {
    /// Sends an admin call; `now_seconds` dates the human form.
    pub async fn send_admin(
        &mut self,
        call: AdminCall,
        now_seconds: i64,
    ) -> Result<AdminAnswer, CtlError> {
        let timeout = self.timeout();
        Ok(match call {
            AdminCall::Search(message) => {
                let request = self.request(message);
                let page = answer(timeout, self.client().list_sessions(request)).await?;
                let mut human = session_table(&page.sessions, now_seconds);
                if !page.next_page_token.is_empty() {
                    human.push_str(&format!("more: --page-token {}\n", page.next_page_token));
                }
                AdminAnswer {
                    json: json!({
                        "sessions": page.sessions.iter().map(session_json).collect::<Vec<_>>(),
                        "next_page_token": page.next_page_token,
                    }),
                    human,
                }
            }
            AdminCall::Revoke(message) => {
                let dry_run = message.dry_run;
                let request = self.request(message);
                let done = answer(timeout, self.client().revoke_sessions(request)).await?;
                let human = match dry_run {
                    true => format!(
                        "{} sessions match (dry run: none ended)\n",
                        done.matched_count
                    ),
                    false => format!(
                        "{} sessions matched, {} ended\n",
                        done.matched_count, done.revoked_count
                    ),
                } + &done
                    .session_ids
                    .iter()
                    .map(|id| format!("{id}\n"))
                    .collect::<String>();
                AdminAnswer {
                    json: json!({
                        "matched_count": done.matched_count,
                        "revoked_count": done.revoked_count,
                        "session_ids": done.session_ids,
                        "dry_run": dry_run,
                    }),
                    human,
                }
            }
            AdminCall::Reauth(message) => {
                let request = self.request(message);
                let done = answer(timeout, self.client().reauthenticate(request)).await?;
                one_session(done.session, now_seconds)
            }
            AdminCall::Attrs(message) => {
                let request = self.request(message);
                let done = answer(timeout, self.client().update_attributes(request)).await?;
                one_session(done.session, now_seconds)
            }
            AdminCall::RotateKey => {
                let request = self.request(pb::RotateSigningKeyRequest {});
                let done = answer(timeout, self.client().rotate_signing_key(request)).await?;
                AdminAnswer {
                    human: format!("new signing key: {}\n", done.kid),
                    json: json!({ "kid": done.kid }),
                }
            }
            AdminCall::Jwks => {
                let request = self.request(pb::GetJwksRequest {});
                let done = answer(timeout, self.client().get_jwks(request)).await?;
                let jwks: Value = serde_json::from_str(&done.jwks_json).unwrap_or(Value::Null);
                AdminAnswer {
                    human: format!(
                        "{}\n",
                        serde_json::to_string_pretty(&jwks).unwrap_or_default()
                    ),
                    json: jwks,
                }
            }
        })
    }
}

/// The answer that is one session.
fn one_session(session: Option<pb::Session>, now_seconds: i64) -> AdminAnswer {
    let session = session.unwrap_or_default();
    AdminAnswer {
        human: session_table(std::slice::from_ref(&session), now_seconds),
        json: json!({ "session": session_json(&session) }),
    }
}
