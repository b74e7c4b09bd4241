//! The command line: the flags every command shares, the list of command families,
//! and the one place that hands a command to its family and prints the answer.

use clap::{value_parser, Parser, Subcommand};

use crate::admin::AdminCommand;
use crate::backup::BackupArgs;
use crate::client::Target;
use crate::error::CtlError;
use crate::health::HealthArgs;
use crate::sessions::SessionCommand;
use crate::users::UserCommand;
use crate::watch::WatchArgs;

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

/// A command, by family: each family's module holds its flags, its calls and how its
/// answers print. The order here is the order of `--help`.
#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Sessions(SessionCommand),
    #[command(flatten)]
    Users(UserCommand),
    Backup(BackupArgs),
    #[command(flatten)]
    Admin(AdminCommand),
    Watch(WatchArgs),
    Health(HealthArgs),
}

impl Command {
    /// Runs the command against `target` and prints its answer, as JSON or as text.
    pub async fn run(self, target: &Target, as_json: bool) -> Result<(), CtlError> {
        let output = match self {
            Command::Sessions(command) => command.run(target).await?,
            Command::Users(command) => command.run(target).await?,
            Command::Backup(args) => args.run(target).await?,
            Command::Admin(command) => command.run(target).await?,
            Command::Health(args) => args.run(target).await?,
            // Prints each event as it comes.
            Command::Watch(args) => return args.run(target, as_json).await,
        };
        output.print(as_json)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
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
