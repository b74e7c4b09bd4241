//! A compaction killed at each of its steps (the real binary, paused there by the
//! `compact_pause_at` test hook, then SIGKILLed) under concurrent Starts and Refreshes:
//! restarted on the same data dir, exactly one generation is left, and every
//! acknowledged session answers with its newest tokens.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

/// Concurrent callers while the server runs.
const WORKERS: usize = 4;

/// What one worker saw acknowledged: session ids with their newest session tokens; a
/// call unanswered at the kill may or may not have landed, so its session is left out.
type Acknowledged = Vec<(String, String)>;

/// Starts a session and refreshes it, again and again, until `stop`.
async fn worker(mut client: Client, user: String, stop: Arc<AtomicBool>) -> Acknowledged {
    let mut acknowledged = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(started) = client.start(start_request(&user)).await else {
            break;
        };
        let started = started.into_inner();
        let id = session_of(&started.session).session_id.clone();
        let Ok(refreshed) = refresh(&mut client, &started.refresh_token).await else {
            // The Refresh may have landed: the started token may be dead, so not kept.
            break;
        };
        acknowledged.push((id, refreshed.session_token));
    }
    acknowledged
}

/// The config file of a server that compacts 2 s after it opens and stops at `step`.
fn config(dir: &std::path::Path, step: &str) -> std::path::PathBuf {
    let path = dir.join(format!("compact-{step}.toml"));
    std::fs::write(
        &path,
        format!(
            "[sled]\ncompact_above = 1.0\ncompact_min_mib = 0\ncompact_interval = \"2s\"\n\
             compact_pause_at = \"{step}\"\n"
        ),
    )
    .expect("write the config");
    path
}

/// sled generations in the data dir: the root's files and every `sled-gen-N`.
fn generations(data_dir: &std::path::Path) -> usize {
    let numbered = std::fs::read_dir(data_dir)
        .expect("list the data dir")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("sled-gen-"))
        })
        .count();
    numbered + usize::from(data_dir.join("db").exists())
}

/// Kills a compaction at `step`; `current` is the generation left: the data dir
/// itself (the old one) or `sled-gen-1` (the new one).
async fn killed_at(step: &str, current: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let log = dir.path().join("sessiond.log");
    let config = config(dir.path(), step);
    let mut daemon = Daemon::spawn(
        &data_dir,
        &log,
        "info",
        ["--config".as_ref(), config.as_os_str()],
    );
    daemon.serving().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        workers.push(tokio::spawn(worker(
            daemon.client().await,
            format!("user-{n}"),
            stop.clone(),
        )));
    }
    let deadline = Instant::now() + Daemon::SERVE_PATIENCE;
    while !daemon.log_text().contains("compaction paused") {
        daemon.assert_running("before the compaction paused");
        assert!(
            Instant::now() < deadline,
            "no compaction paused at {step}:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Writes go on meanwhile (or wait on the writer lock, at the switch).
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    daemon.kill();
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.expect("worker"));
    }
    assert!(
        !acknowledged.is_empty(),
        "the workers got answers before the kill"
    );

    let mut restarted = Daemon::spawn(&data_dir, &log, "info", std::iter::empty::<&str>());
    restarted.serving().await;
    assert_eq!(generations(&data_dir), 1, "exactly one generation is left");
    assert!(data_dir.join(current).exists(), "{current} is the one left");
    let mut client = restarted.client().await;
    for (id, token) in &acknowledged {
        let answer = whoami(&mut client, token).await;
        assert!(
            answer.is_ok(),
            "session {id} acknowledged before the kill at {step}: {answer:?}"
        );
    }
    assert!(restarted.terminate().success());
}

on_backends!(killed_after_the_copy_the_old_generation_serves: sled; flavor = "multi_thread");
async fn killed_after_the_copy_the_old_generation_serves() {
    killed_at("copied", "db").await;
}

on_backends!(killed_at_the_switch_the_old_generation_serves: sled; flavor = "multi_thread");
async fn killed_at_the_switch_the_old_generation_serves() {
    killed_at("switching", "db").await;
}

on_backends!(killed_after_the_switch_the_new_generation_serves: sled; flavor = "multi_thread");
async fn killed_after_the_switch_the_new_generation_serves() {
    killed_at("switched", "sled-gen-1").await;
}
