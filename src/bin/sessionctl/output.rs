//! What a command hands back to print: its answer for people and for scripts, both
//! made at once so the two never drift apart; `--json` picks which is written.

use std::io::Write;

use serde_json::Value;

use crate::error::CtlError;

/// One answer in both printed forms (no `Debug`: it may hold tokens).
pub struct Output {
    /// For scripts: proto field names, RFC 3339 timestamps, every field present.
    pub json: Value,
    /// For people: a table or `key: value` lines, ending in a newline.
    pub text: String,
}

impl Output {
    /// Writes the JSON form (pretty, with a newline) or the text form to stdout.
    pub fn print(&self, as_json: bool) -> Result<(), CtlError> {
        if as_json {
            // A `Value` always serializes; the fallback is never used.
            let mut json = serde_json::to_string_pretty(&self.json).unwrap_or_default();
            json.push('\n');
            write_stdout(&json)
        } else {
            write_stdout(&self.text)
        }
    }
}

/// Writes `text` to stdout and flushes it, so a pipe sees each piece at once.
pub fn write_stdout(text: &str) -> Result<(), CtlError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CtlError::Output)
}
