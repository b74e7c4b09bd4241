//! Refresh-token reuse after the grace window is logged, naming the session, without the
//! token. A test binary of its own, apart from tests/testsuite: it installs a process-wide
//! log subscriber at trace level, which in the one suite binary would capture (and slow)
//! the servers of every other test.

// The suite's helpers, of which this binary uses a few.
#[macro_use]
#[allow(dead_code, unused_imports)]
#[path = "testsuite/common/mod.rs"]
mod common;
#[allow(dead_code, unused_imports)]
#[path = "testsuite/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::TestServer;
use support::*;

/// The default grace window, in seconds.
const GRACE_S: i64 = 30;

/// Log lines of every server in this test binary (both cases), from its first use on.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("sessiond=trace"))
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only log subscriber");
        logs
    })
}

/// Appends log output to the shared buffer.
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

on_backends!(reuse_after_the_window_is_logged_without_the_token: sled, cluster);
async fn reuse_after_the_window_is_logged_without_the_token() {
    let logs = captured_logs();
    let test = TestServer::start().await;
    let mut client = test.client().await;
    let started = start_session(&mut client, "alice").await;
    let session_id = session_of(&started.session).session_id.clone();
    let successor = refresh_ok(&mut client, &started.refresh_token).await;
    test.advance(secs(GRACE_S + 1));

    let _ = refresh(&mut client, &started.refresh_token).await;

    let text = String::from_utf8_lossy(&logs.lock().expect("log buffer")).into_owned();
    assert!(
        text.lines()
            .any(|line| line.contains(&session_id) && line.to_lowercase().contains("reuse")),
        "a log line names the session and the reuse:\n{text}"
    );
    for token in [
        &started.refresh_token,
        &started.session_token,
        &successor.refresh_token,
        &successor.session_token,
    ] {
        let body = &token[3..];
        assert!(!text.contains(body), "a token reached the log:\n{text}");
    }
}
