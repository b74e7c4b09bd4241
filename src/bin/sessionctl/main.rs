//! `sessionctl`: the operator CLI of sessiond. Parses the command line, sends one call
//! (or every page of a list) over gRPC, and prints the answer as a table or as JSON.
//! See `sessionctl --help`; the exit codes are in `error.rs`.

// No unwrap/expect outside tests: request and storage data must never panic the server.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod backup;
mod cli;
mod client;
mod error;
mod health;
mod render;
mod table;
mod time;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sessiond::clock::{Clock, SystemClock};

use crate::cli::{Cli, Command};
use crate::client::Target;
use crate::error::CtlError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing more can be done when stderr is gone too.
            let _ = writeln!(std::io::stderr(), "error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Resolves the input, makes the call and writes the answer to stdout.
fn run(cli: Cli) -> Result<(), CtlError> {
    let target = Target::new(&cli.addr, cli.api_key.as_deref(), cli.timeout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CtlError::Usage(format!("cannot start the async runtime: {error}")))?;
    let call = match cli.command {
        Command::Watch(args) => {
            return runtime.block_on(async { target.connect().await?.watch(args, cli.json).await })
        }
        Command::Health(args) => {
            let checked = runtime.block_on(health::check(&target, args))?;
            let text = if cli.json {
                json_text(&checked.json())
            } else {
                checked.human()
            };
            return print(&text);
        }
        command => command.into_call()?,
    };
    let answer = runtime.block_on(async { target.connect().await?.send(call).await })?;
    let text = if cli.json {
        json_text(&answer.json())
    } else {
        let now_seconds = i64::try_from(SystemClock.now_ms() / 1000).unwrap_or(i64::MAX);
        answer.human(now_seconds)
    };
    print(&text)
}

/// `value` as pretty JSON and a newline.
fn json_text(value: &serde_json::Value) -> String {
    // A `Value` always serializes; the fallback is never used.
    let mut json = serde_json::to_string_pretty(value).unwrap_or_default();
    json.push('\n');
    json
}

/// Writes `text` to stdout.
fn print(text: &str) -> Result<(), CtlError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CtlError::Output)
}
