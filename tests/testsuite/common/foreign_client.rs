//! Client suites in other languages (Python, TypeScript, Go) run against an in-process
//! server: is their toolchain there, the server they call, and running their commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root: commands run from here unless they say otherwise.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether every one of `programs` is on PATH. When one is missing the suite is skipped,
/// loudly, except under CI (`CI` set), where it fails: `.ci/run` installs them.
pub fn toolchain_available(suite: &str, programs: &[&str], install: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|program| !on_path(program))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing} not on PATH: CI needs them for {suite} ({install})"
    );
    // Straight to stderr, past the test harness's capture (which eprintln! goes through),
    // so a plain `cargo test` shows it.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {suite}: {missing} not on PATH, so this client was NOT tested. \
         {install} to run it. ***\n"
    );
    false
}

/// Whether an executable file named `program` is in one of PATH's directories.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .any(|file: PathBuf| {
            file.metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `command` to completion on a blocking thread (the server keeps serving on the
/// runtime meanwhile); see [`run_ok_blocking`].
pub async fn run_ok(what: &str, command: Command) -> Output {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || run_ok_blocking(&what, command))
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// Runs `command` to completion, from the repository root unless it names a directory,
/// and panics with its output unless it succeeds.
pub fn run_ok_blocking(what: &str, mut command: Command) -> Output {
    if command.get_current_dir().is_none() {
        command.current_dir(root());
    }
    let started = std::time::Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: cannot run: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    eprintln!(
        "{what}: ok in {:.1}s\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    output
}
