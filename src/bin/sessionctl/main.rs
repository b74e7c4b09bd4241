//! `sessionctl`: the operator CLI of sessiond. Parses the command line, sends one call
//! (or every page of a list) over gRPC, and prints the answer as a table or as JSON.
//! See `sessionctl --help`; the exit codes are in `error.rs`.
//!
//! Each command family (`sessions`, `users`, `admin`, `backup`, `watch`, `health`) is one
//! module with its flags, its calls and both printed forms of its answers; they share
//! only the leaf modules below them (`client`, `device`, `args`, `render`, `output`,
//! `table`, `time`, `error`), never each other.

// No unwrap/expect outside tests: request and storage data must never panic the server.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod args;
mod backup;
mod cli;
mod client;
mod device;
mod error;
mod health;
mod output;
mod render;
mod sessions;
mod table;
mod time;
mod users;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
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

/// Checks the address, then runs the command on a one-thread runtime.
fn run(cli: Cli) -> Result<(), CtlError> {
    let target = Target::new(&cli.addr, cli.api_key.as_deref(), cli.timeout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CtlError::Usage(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(cli.command.run(&target, cli.json))
}
