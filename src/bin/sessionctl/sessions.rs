//! One session's life: `start`, `whoami`, `refresh`, `extend` and `logout`; their flags,
//! requests and printed answers.

use clap::{value_parser, ArgGroup, Args, Subcommand};
use serde_json::json;
use sessiond::proto::session::v1 as pb;
use sessiond::session::binding::DeviceSigner;

use crate::args::{into_map, key_value, secret};
use crate::client::Target;
use crate::device::{call_with_proof, DeviceKeyArgs};
use crate::error::CtlError;
use crate::output::Output;
use crate::render::{moment, revoked, seconds, session_block, session_json};
use crate::time::{now_seconds, rfc3339};

/// The paths of the calls a device proof names (docs/binding.md).
const REFRESH_PATH: &str = "/session.v1.SessionService/Refresh";
const WHOAMI_PATH: &str = "/session.v1.SessionService/Whoami";

/// Where a session token is taken from when the command line has none.
const SESSION_TOKEN_ENV: &str = "SESSIOND_SESSION_TOKEN";

/// The commands of one session (flattened into `sessionctl`'s own list).
#[derive(Subcommand)]
pub enum SessionCommand {
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
        #[command(flatten)]
        device: DeviceKeyArgs,
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
        #[command(flatten)]
        device: DeviceKeyArgs,
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
    #[command(flatten)]
    device: DeviceKeyArgs,
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

impl SessionCommand {
    /// Resolves the request (a "-" token is read from stdin, bad input refused before
    /// anything is sent), makes the call and returns its answer.
    pub async fn run(self, target: &Target) -> Result<Output, CtlError> {
        match self {
            SessionCommand::Start(args) => {
                let device = args.device.signer(true)?;
                let message = pb::StartRequest {
                    user_id: args.user_id,
                    group: args.group.unwrap_or_default(),
                    ttl_seconds: args.ttl,
                    metadata: into_map("--meta", args.metadata)?,
                    attributes: into_map("--attr", args.attributes)?,
                    client: args.client.into_context(),
                    device_key: device
                        .as_ref()
                        .map(DeviceSigner::public_jwk_json)
                        .unwrap_or_default(),
                    ..Default::default()
                };
                let response = target
                    .call(message, async |client, request| client.start(request).await)
                    .await?;
                Ok(token_pair(
                    response.session,
                    response.session_token,
                    response.refresh_token,
                    response.expires_in_seconds,
                ))
            }
            SessionCommand::Whoami {
                session_token,
                client,
                device,
            } => {
                let signer = device.signer(false)?;
                let token = secret(session_token, "session token")?;
                let message = pb::WhoamiRequest {
                    session_token: token.clone(),
                    client: client.into_context(),
                };
                let url = target.method_url(WHOAMI_PATH);
                let proof = (signer.as_ref(), url.as_str(), token.as_str());
                let response = call_with_proof(target, message, proof, async |client, request| {
                    client.whoami(request).await
                })
                .await?;
                Ok(whoami(&response, now_seconds()))
            }
            SessionCommand::Refresh {
                refresh_token,
                client,
                device,
            } => {
                let signer = device.signer(false)?;
                let token = secret(refresh_token, "refresh token")?;
                let message = pb::RefreshRequest {
                    refresh_token: token.clone(),
                    client: client.into_context(),
                    ..Default::default()
                };
                let url = target.method_url(REFRESH_PATH);
                let proof = (signer.as_ref(), url.as_str(), token.as_str());
                let response = call_with_proof(target, message, proof, async |client, request| {
                    client.refresh(request).await
                })
                .await?;
                Ok(token_pair(
                    response.session,
                    response.session_token,
                    response.refresh_token,
                    response.expires_in_seconds,
                ))
            }
            SessionCommand::Extend {
                session_id,
                keep_alive,
            } => {
                let message = pb::ExtendRequest {
                    session_id,
                    keep_alive_seconds: keep_alive,
                };
                let response = target
                    .call(message, async |client, request| {
                        client.extend(request).await
                    })
                    .await?;
                Ok(extend(&response, now_seconds()))
            }
            SessionCommand::Logout(args) => {
                let message = args.into_request()?;
                let response = target
                    .call(message, async |client, request| {
                        client.logout(request).await
                    })
                    .await?;
                Ok(revoked(response.revoked_count))
            }
        }
    }
}

impl LogoutArgs {
    /// The request: the token given (or from the environment when neither target is).
    fn into_request(self) -> Result<pb::LogoutRequest, CtlError> {
        Ok(pb::LogoutRequest {
            session_token: match (self.token, &self.session_id) {
                (Some(token), _) => secret(token, "session token")?,
                (None, Some(_)) => String::new(),
                (None, None) => std::env::var(SESSION_TOKEN_ENV).map_err(|_| {
                    CtlError::Usage(format!(
                        "logout needs --token or --session-id (or {SESSION_TOKEN_ENV})"
                    ))
                })?,
            },
            session_id: self.session_id.unwrap_or_default(),
            all_for_user: self.all,
            except_session_id: self.except.unwrap_or_default(),
            ..Default::default()
        })
    }
}

/// What `start` and `refresh` both answer: a session and its new token pair (shown in
/// both forms, and only this once).
fn token_pair(
    session: Option<pb::Session>,
    session_token: String,
    refresh_token: String,
    expires_in_seconds: i64,
) -> Output {
    let json = json!({
        "session": session.as_ref().map(session_json),
        "session_token": session_token,
        "refresh_token": refresh_token,
        "expires_in_seconds": expires_in_seconds,
    });
    let text = session_block(
        session.as_ref(),
        now_seconds(),
        vec![
            ("expires_in_seconds", seconds(expires_in_seconds)),
            ("session_token", session_token),
            ("refresh_token", refresh_token),
        ],
    );
    Output { json, text }
}

/// The session a token names; relative times count from `now_seconds`.
fn whoami(response: &pb::WhoamiResponse, now_seconds: i64) -> Output {
    Output {
        json: json!({
            "session": response.session.as_ref().map(session_json),
            "expires_in_seconds": response.expires_in_seconds,
            "cache_until": response.cache_until.as_ref().map(|at| rfc3339(at, true)),
        }),
        text: session_block(
            response.session.as_ref(),
            now_seconds,
            vec![
                ("expires_in_seconds", seconds(response.expires_in_seconds)),
                ("cache_until", moment(response.cache_until.as_ref(), None)),
            ],
        ),
    }
}

/// The session after `extend`, and whether its expiry moved.
fn extend(response: &pb::ExtendResponse, now_seconds: i64) -> Output {
    let extended = if response.extended {
        "yes".to_owned()
    } else {
        "no (outside the group's extend window, or at max_expires_at)".to_owned()
    };
    Output {
        json: json!({
            "session": response.session.as_ref().map(session_json),
            "extended": response.extended,
        }),
        text: session_block(
            response.session.as_ref(),
            now_seconds,
            vec![("extended", extended)],
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost_types::Timestamp;
    use sessiond::proto::session::v1 as pb;

    use super::{extend, whoami};

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
        let response = pb::WhoamiResponse {
            session: Some(session()),
            expires_in_seconds: 86_400,
            cache_until: Some(Timestamp {
                seconds: NEW_YEAR + 60,
                nanos: 0,
            }),
        };
        let value = whoami(&response, NEW_YEAR).json;
        assert_eq!(value["session"]["state"], "ACTIVE");
        assert_eq!(value["session"]["expires_at"], "2026-01-02T00:00:00Z");
        assert_eq!(value["session"]["metadata"]["device"], "laptop");
        assert_eq!(value["expires_in_seconds"], 86_400);
        assert_eq!(value["cache_until"], "2026-01-01T00:01:00Z");
    }

    #[test]
    fn human_output_shows_expiry_relative_to_now() {
        let response = pb::ExtendResponse {
            session: Some(session()),
            extended: true,
        };
        let text = extend(&response, NEW_YEAR + 60).text;
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
}
