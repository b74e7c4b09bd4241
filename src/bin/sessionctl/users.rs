//! All the sessions of one user: `refresh-all`, `list` (every page on request) and
//! `revoke-user`; their flags, requests and printed answers.

use std::collections::HashSet;

use clap::{value_parser, Args, Subcommand};
use serde_json::json;
use sessiond::proto::session::v1 as pb;
use tonic::Status;

use crate::args::rfc3339_moment;
use crate::client::{Api, Target};
use crate::error::CtlError;
use crate::output::Output;
use crate::render::{revoked, session_json, session_table, sessions};
use crate::time::now_seconds;

/// The commands over a user's sessions (flattened into `sessionctl`'s own list).
#[derive(Subcommand)]
pub enum UserCommand {
    /// Extend every active session of a user, by the rules of extend.
    RefreshAll {
        /// The user whose active sessions to extend.
        user_id: String,
        /// New expiry: now plus this many seconds (default: the group's lifespan).
        #[arg(long, value_name = "SECONDS", value_parser = value_parser!(i64).range(1..))]
        keep_alive: Option<i64>,
    },
    /// List a user's sessions, newest first.
    List(ListArgs),
    /// End every session of a user authenticated before a moment (credentials changed).
    RevokeUser {
        /// The user (or, with --external, the user's external id).
        user_id: String,
        /// USER_ID is the external user id given to Start.
        #[arg(long)]
        external: bool,
        /// Sessions authenticated before this RFC 3339 moment end
        /// (e.g. 2026-01-01T12:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = rfc3339_moment)]
        not_before: prost_types::Timestamp,
    },
}

/// Flags of `list`.
#[derive(Args)]
pub struct ListArgs {
    /// The user whose sessions to list.
    user_id: String,
    /// Most sessions per page (server default 50, at most 500).
    #[arg(long, value_name = "N", value_parser = value_parser!(i32).range(1..))]
    page_size: Option<i32>,
    /// Start at this page (the "next page" token of an earlier list).
    #[arg(long, value_name = "TOKEN")]
    page_token: Option<String>,
    /// Follow the page tokens and print every page as one list.
    #[arg(long)]
    all_pages: bool,
    /// Also list revoked and expired sessions that are still stored.
    #[arg(long)]
    include_inactive: bool,
}

impl UserCommand {
    /// Makes the call (every page of it, for `list --all-pages`) and returns its answer.
    pub async fn run(self, target: &Target) -> Result<Output, CtlError> {
        match self {
            UserCommand::RefreshAll {
                user_id,
                keep_alive,
            } => {
                let message = pb::RefreshAllForUserRequest {
                    user_id,
                    keep_alive_seconds: keep_alive,
                    ..Default::default()
                };
                let response = target
                    .call(message, async |client, request| {
                        client.refresh_all_for_user(request).await
                    })
                    .await?;
                Ok(refreshed(&response, now_seconds()))
            }
            UserCommand::List(args) => {
                let first = pb::ListUserSessionsRequest {
                    user_id: args.user_id,
                    page_size: args.page_size.unwrap_or(0),
                    page_token: args.page_token.unwrap_or_default(),
                    include_inactive: args.include_inactive,
                };
                let mut api = target.connect().await?;
                let pages = list_pages(&mut api, first, args.all_pages).await?;
                Ok(listed(&pages, now_seconds()))
            }
            UserCommand::RevokeUser {
                user_id,
                external,
                not_before,
            } => {
                let (user_id, external_user_id) = match external {
                    true => (String::new(), user_id),
                    false => (user_id, String::new()),
                };
                let message = pb::RevokeUserSessionsRequest {
                    user_id,
                    external_user_id,
                    not_before: Some(not_before),
                };
                let response = target
                    .call(message, async |client, request| {
                        client.revoke_user_sessions(request).await
                    })
                    .await?;
                Ok(revoked(response.revoked_count))
            }
        }
    }
}

/// One page, or with `all_pages` every page from `first` on, merged into one.
async fn list_pages(
    api: &mut Api,
    first: pb::ListUserSessionsRequest,
    all_pages: bool,
) -> Result<pb::ListUserSessionsResponse, CtlError> {
    let mut message = first;
    let mut merged = pb::ListUserSessionsResponse::default();
    let mut seen_tokens = HashSet::from([message.page_token.clone()]);
    loop {
        let page = api
            .call(message.clone(), async |client, request| {
                client.list_user_sessions(request).await
            })
            .await?;
        merged.sessions.extend(page.sessions);
        merged.next_page_token = page.next_page_token;
        if !all_pages || merged.next_page_token.is_empty() {
            return Ok(merged);
        }
        // A token seen before would page in a circle forever.
        if !seen_tokens.insert(merged.next_page_token.clone()) {
            return Err(CtlError::Status(Status::internal(
                "the server repeated a next_page_token; paging stopped",
            )));
        }
        message.page_token.clone_from(&merged.next_page_token);
    }
}

/// The sessions `refresh-all` extended, counted and in a table.
fn refreshed(response: &pb::RefreshAllForUserResponse, now_seconds: i64) -> Output {
    Output {
        json: json!({
            "refreshed_count": response.refreshed_count,
            "sessions": response.sessions.iter().map(session_json).collect::<Vec<_>>(),
        }),
        text: format!(
            "extended {}\n{}",
            sessions(response.refreshed_count),
            session_table(&response.sessions, now_seconds)
        ),
    }
}

/// A user's sessions as a table, and how to get the next page when there is one.
fn listed(response: &pb::ListUserSessionsResponse, now_seconds: i64) -> Output {
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
    Output {
        json: json!({
            "sessions": response.sessions.iter().map(session_json).collect::<Vec<_>>(),
            "next_page_token": response.next_page_token,
        }),
        text,
    }
}

#[cfg(test)]
mod tests {
    use sessiond::proto::session::v1 as pb;

    use super::listed;

    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: i64 = 1_767_225_600;

    #[test]
    fn a_list_with_more_pages_says_how_to_get_them() {
        let session = pb::Session {
            session_id: "0194-id".to_owned(),
            state: pb::SessionState::Active as i32,
            ..Default::default()
        };
        let response = pb::ListUserSessionsResponse {
            sessions: vec![session],
            next_page_token: "abc".to_owned(),
        };
        let text = listed(&response, NEW_YEAR).text;
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

    #[test]
    fn an_empty_list_says_so() {
        let text = listed(&pb::ListUserSessionsResponse::default(), NEW_YEAR).text;
        assert_eq!(text, "no sessions\n");
    }
}
