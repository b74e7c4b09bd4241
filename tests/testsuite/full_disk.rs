//! A full disk, for real: the binary's data dir is a small tmpfs (CI runs as root), filled
//! by Starts. The failing write answers UNAVAILABLE (retryable, never INTERNAL), the
//! store's fault is logged once, and the server stops with a non-zero exit so that a
//! supervisor restarts it; once the disk has room, a restarted server holds every
//! session that was acknowledged.

use crate::support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sessiond::proto::session::v1::StartRequest;
use support::*;
use tonic::Code;

/// A tmpfs mounted on a temp dir for the test's life.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "6m"); None where this process may not mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives the disk room again.
    fn grow(&self, size: &str) {
        let grown = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("run mount");
        assert!(grown.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

/// A Start whose attributes make its record about 8 KiB, to fill the disk fast.
fn bulky_start(n: usize) -> StartRequest {
    let attributes: HashMap<String, String> = (0..8)
        .map(|i| (format!("padding-{i}"), format!("{n:0>1000}")))
        .collect();
    StartRequest {
        user_id: format!("user-{n}"),
        attributes,
        ..Default::default()
    }
}

/// A server whose data dir filled up and which stopped on its own.
struct Filled {
    disk: Tmpfs,
    data_dir: PathBuf,
    log: PathBuf,
    _logs: tempfile::TempDir,
    /// Tokens of the Starts acknowledged before the disk was full.
    acknowledged: Vec<String>,
}

/// Runs the server with `args` on a 6 MB tmpfs and Starts sessions until one is refused,
/// which must be UNAVAILABLE; then waits for the server to stop on its own, say why once
/// and exit non-zero for its supervisor. None where no tmpfs can be mounted.
async fn fill_until_stopped(args: &[&str]) -> Option<Filled> {
    let Some(disk) = Tmpfs::mount("6m") else {
        eprintln!("\n*** SKIPPED full_disk: cannot mount a tmpfs here (needs root) ***\n");
        return None;
    };
    let data_dir: PathBuf = disk.path().join("data");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("sessiond.log");
    let mut daemon = Daemon::spawn(&data_dir, &log, "info", args);
    daemon.serving().await;
    let mut client = daemon.client().await;

    let mut acknowledged = Vec::new();
    let failure = loop {
        assert!(acknowledged.len() < 5_000, "a 6 MB disk never filled");
        match client.start(bulky_start(acknowledged.len())).await {
            Ok(response) => acknowledged.push(response.into_inner().session_token),
            Err(status) => break status,
        }
    };
    assert_eq!(
        failure.code(),
        Code::Unavailable,
        "a full disk is retryable: {failure:?}"
    );
    assert!(!acknowledged.is_empty(), "some sessions fit first");

    let deadline = Instant::now() + Daemon::PATIENCE;
    let status = loop {
        if let Some(status) = daemon.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "exits non-zero for its supervisor");
    let text = daemon.log_text();
    assert_eq!(
        text.matches("cannot write to disk").count(),
        1,
        "one line per episode:\n{text}"
    );
    Some(Filled {
        disk,
        data_dir,
        log,
        _logs: logs,
        acknowledged,
    })
}

on_backends!(a_full_disk_answers_unavailable_stops_the_server_and_loses_nothing_acknowledged: sled; flavor = "multi_thread", worker_threads = 2);
async fn a_full_disk_answers_unavailable_stops_the_server_and_loses_nothing_acknowledged() {
    let Some(filled) = fill_until_stopped(&[]).await else {
        return;
    };
    filled.disk.grow("64m");
    let mut restarted = Daemon::spawn(&filled.data_dir, &filled.log, "info", Vec::<&str>::new());
    restarted.serving().await;
    let mut client = restarted.client().await;
    for token in &filled.acknowledged {
        whoami_ok(&mut client, token).await;
    }
    start_session(&mut client, "after the disk grew").await;
}

on_backends!(with_periodic_durability_a_full_disk_still_stops_the_server: sled; flavor = "multi_thread", worker_threads = 2);
/// With `periodic` durability sled's own flusher usually meets the full disk first, and
/// the next write fails on a read inside its batch: that too is the disk's fault, so the
/// server still stops rather than answering UNAVAILABLE for ever.
async fn with_periodic_durability_a_full_disk_still_stops_the_server() {
    fill_until_stopped(&["--durability", "periodic"]).await;
}
