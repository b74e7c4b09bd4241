//! The command line: clap definitions, and their resolution into one ready request
//! (tokens taken from the environment or stdin, `KEY=VALUE` pairs checked).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use clap::{value_parser, ArgGroup, Args, Parser, Subcommand};
use sessiond::proto::session::v1 as pb;

use crate::error::CtlError;

/// Where a session token is taken from when the command line has none.
const SESSION_TOKEN_ENV: &str = "SESSIOND_SESSION_TOKEN";

/// The one-line summary atop `--help`.
const ABOUT: &str = "Operator CLI of sessiond: start, inspect, refresh, extend, end and list \
                     sessions over gRPC.";

/// Closing notes of `--help`: secrets and exit codes.
const AFTER_HELP: &str = "\
Tokens are secrets; keep them out of shell history: every token argument also takes \"-\"
(read the first line of stdin), and a session token or refresh token that is not given
comes from SESSIOND_SESSION_TOKEN or SESSIOND_REFRESH_TOKEN. Prefer SESSIOND_API_KEY to
--api-key for the same reason. Help never shows these variables' values.

Exit status: 0 success; 1 the call failed (the server's error status, or a timeout);
2 nothing was sent (bad usage, unreachable server). Errors go to stderr as
\"error: CODE: message\".";

/// Help heading of the flags every subcommand takes.
const GLOBAL: &str = "Global options";

/// `sessionctl`: the flags every subcommand shares, and the subcommand.
#[derive(Parser)]
#[command(name = "sessionctl", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Server address: http://HOST:PORT, or HOST:PORT.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SESSIOND_ADDR",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub addr: String,

    /// API key, sent as "authorization: Bearer KEY" on every call; never printed.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "SESSIOND_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// Print the answer as JSON (proto field names, RFC 3339 timestamps), for scripts.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Seconds to wait for the connection, and for each call.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        default_value_t = 10,
        value_name = "SECONDS",
        value_parser = value_parser!(u64).range(1..=86_400)
    )]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// One call of the session service.
#[derive(Subcommand)]
pub enum Command {
    /// Open a session for a user; prints its tokens (shown only this once).
    Start(StartArgs),
    /// Validate a session token and show its session.
    Whoami {
        /// The session token ("-": read it from stdin).
        #[arg(
            env = "SESSIOND_SESSION_TOKEN",
            hide_env_values = true,
            value_name = "SESSION_TOKEN"
        )]
        session_token: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Trade a refresh token for a new token pair; the old pair stops working.
    Refresh {
        /// The latest refresh token of the session ("-": read it from stdin).
        #[arg(
            env = "SESSIOND_REFRESH_TOKEN",
            hide_env_values = true,
            value_name = "REFRESH_TOKEN"
        )]
        refresh_token: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Push one session's expiry out (keep-alive).
    Extend {
        /// The session's id (a UUID).
        session_id: String,
        /// New expiry: now plus this many seconds (default: the group's lifespan).
        #[arg(long, value_name = "SECONDS", value_parser = value_parser!(i64).range(1..))]
        keep_alive: Option<i64>,
    },
    /// End a session by token or id, or (--all) every session of its user.
    Logout(LogoutArgs),
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
    /// Take an online backup of the whole store (sled) into a file, verified before it
    /// gets its name; restore it with `sessiond restore FILE --data-dir DIR`.
    Backup {
        /// The file to write (replaced if it exists, only once the backup verified).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    #[command(flatten)]
    Admin(crate::admin::AdminCommand),
    /// Follow session events as they happen (WatchSessions): one line each, or one JSON
    /// object per line with --json; resume with --after CURSOR.
    Watch(crate::watch::WatchArgs),
    /// Ask grpc.health.v1 whether the server serves: prints SERVING and exits 0, else
    /// names the status and exits 1 (2: no answer). For container health checks.
    Health(crate::health::HealthArgs),
}

/// Flags of `start`.
#[derive(Args)]
pub struct StartArgs {
    /// The user to open a session for.
    user_id: String,
    /// Policy group (default: "default").
    #[arg(long)]
    group: Option<String>,
    /// Lifespan in seconds (default: the group's lifespan).
    #[arg(long, value_name = "SECONDS", value_parser = value_parser!(i64).range(1..))]
    ttl: Option<i64>,
    /// Login context, e.g. device=laptop (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Enrichment data, e.g. role=admin (repeatable).
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = key_value)]
    attributes: Vec<(String, String)>,
    #[command(flatten)]
    client: ClientArgs,
}

/// The end user's client, as `start`, `whoami` and `refresh` pass it on.
#[derive(Args)]
pub struct ClientArgs {
    /// The end user's IP address (IPv4 or IPv6).
    #[arg(long, value_name = "IP")]
    ip: Option<String>,
    /// The end user's User-Agent.
    #[arg(long, value_name = "TEXT")]
    user_agent: Option<String>,
    /// A stable id of the device (start only).
    #[arg(long, value_name = "ID")]
    device_id: Option<String>,
    /// A readable name of the device (start only).
    #[arg(long, value_name = "TEXT")]
    device_label: Option<String>,
}

impl ClientArgs {
    /// The client context, or None when no flag of it was given.
    fn into_context(self) -> Option<pb::ClientContext> {
        let given = self.ip.is_some()
            || self.user_agent.is_some()
            || self.device_id.is_some()
            || self.device_label.is_some();
        given.then(|| pb::ClientContext {
            ip: self.ip.unwrap_or_default(),
            user_agent: self.user_agent.unwrap_or_default(),
            device_id: self.device_id.unwrap_or_default(),
            device_label: self.device_label.unwrap_or_default(),
        })
    }
}

/// Flags of `logout`: at most one of the token and the id (neither: the token from the
/// environment).
#[derive(Args)]
#[command(group(ArgGroup::new("target").args(["token", "session_id"])))]
pub struct LogoutArgs {
    /// The session token of the session to end ("-": read it from stdin; with neither
    /// this nor --session-id: $SESSIOND_SESSION_TOKEN).
    // Not clap's `env`: clap would count the variable as a given --token and refuse
    // --session-id whenever it is exported.
    #[arg(long, value_name = "SESSION_TOKEN")]
    token: Option<String>,
    /// The id of the session to end (admin form).
    #[arg(long, value_name = "ID")]
    session_id: Option<String>,
    /// End every active session of that session's user.
    #[arg(long)]
    all: bool,
    /// With --all: keep this session, end all the others.
    #[arg(long, requires = "all", value_name = "SESSION_ID")]
    except: Option<String>,
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

/// A request ready to send: what the command line asked for, fully resolved. No
/// `Debug`, like every type here that holds a token: nothing can print one by accident.
pub enum Call {
    /// `start` (boxed: the largest request by far).
    Start(Box<pb::StartRequest>),
    /// `whoami`.
    Whoami(pb::WhoamiRequest),
    /// `refresh`.
    Refresh(pb::RefreshRequest),
    /// `extend`.
    Extend(pb::ExtendRequest),
    /// `logout`.
    Logout(pb::LogoutRequest),
    /// `refresh-all`.
    RefreshAll(pb::RefreshAllForUserRequest),
    /// `list`; with `all_pages`, follow `next_page_token` to the end.
    List {
        /// The first page's request.
        request: pb::ListUserSessionsRequest,
        /// Whether to fetch the pages after it too.
        all_pages: bool,
    },
    /// `backup`: where to write the file.
    Backup { out: PathBuf },
    /// `revoke-user`.
    RevokeUser(pb::RevokeUserSessionsRequest),
    /// `search`, `revoke`, `reauth`, `attrs`, `keys`, `jwks`.
    Admin(crate::admin::AdminCall),
}

impl Command {
    /// The request this command sends. Reads stdin for a "-" token; fails on bad input.
    pub fn into_call(self) -> Result<Call, CtlError> {
        Ok(match self {
            Command::Start(args) => Call::Start(Box::new(pb::StartRequest {
                user_id: args.user_id,
                group: args.group.unwrap_or_default(),
                ttl_seconds: args.ttl,
                metadata: into_map("--meta", args.metadata)?,
                attributes: into_map("--attr", args.attributes)?,
                client: args.client.into_context(),
                ..Default::default()
            })),
            Command::Whoami {
                session_token,
                client,
            } => Call::Whoami(pb::WhoamiRequest {
                session_token: secret(session_token, "session token")?,
                client: client.into_context(),
            }),
            Command::Refresh {
                refresh_token,
                client,
            } => Call::Refresh(pb::RefreshRequest {
                refresh_token: secret(refresh_token, "refresh token")?,
                client: client.into_context(),
                ..Default::default()
            }),
            Command::Extend {
                session_id,
                keep_alive,
            } => Call::Extend(pb::ExtendRequest {
                session_id,
                keep_alive_seconds: keep_alive,
            }),
            Command::Logout(args) => Call::Logout(pb::LogoutRequest {
                session_token: match (args.token, &args.session_id) {
                    (Some(token), _) => secret(token, "session token")?,
                    (None, Some(_)) => String::new(),
                    (None, None) => std::env::var(SESSION_TOKEN_ENV).map_err(|_| {
                        CtlError::Usage(format!(
                            "logout needs --token or --session-id (or {SESSION_TOKEN_ENV})"
                        ))
                    })?,
                },
                session_id: args.session_id.unwrap_or_default(),
                all_for_user: args.all,
                except_session_id: args.except.unwrap_or_default(),
                ..Default::default()
            }),
            Command::RefreshAll {
                user_id,
                keep_alive,
            } => Call::RefreshAll(pb::RefreshAllForUserRequest {
                user_id,
                keep_alive_seconds: keep_alive,
                ..Default::default()
            }),
            Command::List(args) => Call::List {
                request: pb::ListUserSessionsRequest {
                    user_id: args.user_id,
                    page_size: args.page_size.unwrap_or(0),
                    page_token: args.page_token.unwrap_or_default(),
                    include_inactive: args.include_inactive,
                },
                all_pages: args.all_pages,
            },
            Command::Backup { out } => Call::Backup { out },
            Command::Admin(command) => Call::Admin(command.into_call()?),
            // Not a session call: main runs them (see `watch.rs`, `health.rs`).
            Command::Watch(_) | Command::Health(_) => {
                return Err(CtlError::Usage(
                    "watch and health are not session calls".into(),
                ))
            }
            Command::RevokeUser {
                user_id,
                external,
                not_before,
            } => Call::RevokeUser(pb::RevokeUserSessionsRequest {
                user_id: if external {
                    String::new()
                } else {
                    user_id.clone()
                },
                external_user_id: if external { user_id } else { String::new() },
                not_before: Some(not_before),
            }),
        })
    }
}

/// A `KEY=VALUE` argument split at its first "=" (the value may hold more of them).
/// An RFC 3339 moment as a protobuf timestamp.
pub fn rfc3339_moment(arg: &str) -> Result<prost_types::Timestamp, String> {
    let at = humantime_serde::re::humantime::parse_rfc3339_weak(arg)
        .map_err(|error| format!("not an RFC 3339 time ({error})"))?;
    Ok(prost_types::Timestamp::from(at))
}

pub fn key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some(("", _)) => Err("the key before \"=\" is empty".to_owned()),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err("expected KEY=VALUE".to_owned()),
    }
}

/// The pairs of a repeatable `KEY=VALUE` flag as a map; a key given twice is an error
/// rather than a silent overwrite.
pub fn into_map(
    flag: &str,
    pairs: Vec<(String, String)>,
) -> Result<HashMap<String, String>, CtlError> {
    let mut map = HashMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        if map.contains_key(&key) {
            return Err(CtlError::Usage(format!(
                "{flag}: key {key:?} is given twice"
            )));
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// A token as given, or the first line of stdin for "-" (surrounding blanks trimmed).
fn secret(value: String, what: &str) -> Result<String, CtlError> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CtlError::Usage(format!("cannot read the {what} from stdin: {error}")))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(CtlError::Usage(format!("no {what} on stdin")));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(key_value("a="), Ok(("a".into(), String::new())));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let pairs = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert!(matches!(into_map("--meta", pairs), Err(CtlError::Usage(_))));
    }

    #[test]
    fn logout_takes_at_most_one_target() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["sessionctl", "logout"]).is_ok());
        assert!(parse(&["sessionctl", "logout", "--token", "t", "--session-id", "i"]).is_err());
        assert!(parse(&["sessionctl", "logout", "--session-id", "i", "--except", "j"]).is_err());
        assert!(parse(&[
            "sessionctl",
            "logout",
            "--session-id",
            "i",
            "--all",
            "--except",
            "j"
        ])
        .is_ok());
    }
}
