//! Compaction of the sled store: sled 0.34 does not give back the space of rewritten
//! and deleted keys under endless churn, so once the data dir passes `compact_above`
//! times the live data, the live data is written into a fresh generation (see
//! `generations`) while the store serves: the records, the event pages still kept, the
//! metadata and external ids; then the records changed meanwhile are copied again,
//! once while the store still serves and once more under the writer lock, with the
//! touches still needed; the new generation is flushed and made current, and the old
//! one is deleted. Readers never wait: they load whichever generation is current.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::generations;
use super::tx::off_runtime;
use super::{disk_usage, io_error, keys, Engine, SledStore};
use crate::store::record::decode_record;
use crate::store::{Durability, SessionId, StoreError};

/// Steps of a compaction where a crash test may stop it (`compact_pause_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompactStep {
    /// The new generation holds a copy of everything, flushed; the store still serves
    /// from the old one.
    Copied,
    /// Writes are paused, the new generation is complete and flushed; the pointer still
    /// names the old one.
    Switching,
    /// The pointer names the new generation; the old one is not deleted yet.
    Switched,
}

/// What a compaction did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compacted {
    /// The data dir before and after, bytes on disk.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// The generation now current.
    pub generation: u64,
    /// How long it took, and how long of it writes waited for the switch.
    pub took: Duration,
    pub writes_paused: Duration,
}

/// The data dir against the live data, as last measured.
#[derive(Clone, Copy, Debug)]
pub(super) struct Amplification {
    data_dir_bytes: u64,
    live_bytes: u64,
}

/// When compactions ran, and the records changed while one copies.
pub(super) struct Compaction {
    /// Whether a copy runs: commits then note the ids they wrote in `changed`.
    copying: AtomicBool,
    changed: parking_lot::Mutex<HashSet<SessionId>>,
    /// One compaction at a time.
    running: parking_lot::Mutex<()>,
    last_run: parking_lot::Mutex<Instant>,
    /// The threshold is passed and no compaction brought the data dir back under it
    /// yet: one warning per episode.
    over: AtomicBool,
}

impl Compaction {
    /// Counts the interval from `opened`, as if a compaction ran then: a restarted
    /// server does not compact at once (an offline `sessiond compact` does).
    pub(super) fn new(opened: Instant) -> Compaction {
        Compaction {
            copying: AtomicBool::new(false),
            changed: parking_lot::Mutex::default(),
            running: parking_lot::Mutex::default(),
            last_run: parking_lot::Mutex::new(opened),
            over: AtomicBool::new(false),
        }
    }

    /// Called by every commit, under the writer lock, after its records are in sled.
    pub(super) fn note_changed(&self, ids: impl Iterator<Item = SessionId>) {
        if self.copying.load(Ordering::SeqCst) {
            self.changed.lock().extend(ids);
        }
    }

    fn take_changed(&self) -> HashSet<SessionId> {
        std::mem::take(&mut *self.changed.lock())
    }

    fn stop_copying(&self) {
        self.copying.store(false, Ordering::SeqCst);
        self.changed.lock().clear();
    }
}

/// Keys copied between two engines, a flush's worth at a time.
const COPY_FLUSH_EVERY: usize = 65_536;

/// A tree is copied in this many ordered passes, each over a third of its keys. One
/// ordered pass leaves sled with nodes rewritten at each split and half-empty log
/// segments: its file came out at 1.9× the bytes copied, against 1.4–1.5× for three
/// passes (80,000 and 250,000 records of 250–550 B, with and without two busy cores).
const COPY_PASSES: u8 = 3;

/// How long the old generation may stay in use by readers before it is deleted anyway
/// (its files then go when the last reader lets go).
const RETIRE_WAIT: Duration = Duration::from_secs(5);

impl SledStore {
    /// The data dir and the live data now, also set as gauges.
    fn amplification(&self) -> Amplification {
        let live_bytes = self.live.total() + self.touches.bytes();
        let data_dir_bytes = disk_usage(&self.data_dir).unwrap_or(0);
        metrics::gauge!(crate::metrics::STORE_DATA_DIR_BYTES).set(data_dir_bytes as f64);
        metrics::gauge!(crate::metrics::STORE_LIVE_BYTES).set(live_bytes as f64);
        metrics::gauge!(crate::metrics::STORE_SPACE_AMPLIFICATION)
            .set(data_dir_bytes as f64 / live_bytes.max(1) as f64);
        Amplification {
            data_dir_bytes,
            live_bytes,
        }
    }

    /// Compacts if the data dir is past the threshold and the last compaction is at least
    /// `compact_interval` ago; called after each sweep. A failed compaction is logged and
    /// leaves the store as it was.
    pub(super) async fn compact_if_due(&self) {
        // Until the rebuild at open is done, the live data is not all counted.
        if !self.rebuilt() {
            return;
        }
        let measured = self.amplification();
        let Some(past) = self.config.compact_past(measured.live_bytes) else {
            return;
        };
        if measured.data_dir_bytes <= past {
            self.compaction.over.store(false, Ordering::Relaxed);
            return;
        }
        if !self.compaction.over.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                data_dir_bytes = measured.data_dir_bytes,
                live_bytes = measured.live_bytes,
                threshold = self.config.compact_above,
                "the data dir passed the compaction threshold; compacting"
            );
        }
        let waited = self.compaction.last_run.lock().elapsed() >= self.config.compact_interval;
        if waited {
            if let Err(error) = off_runtime(|| self.compact()) {
                tracing::error!(%error, "compaction failed; the store goes on as it was");
            }
        }
    }

    /// Writes the live data into a fresh generation and switches to it (see the module
    /// doc). Also run offline by `sessiond compact`.
    pub fn compact(&self) -> Result<Compacted, StoreError> {
        let _running = self.compaction.running.lock();
        let started = Instant::now();
        *self.compaction.last_run.lock() = started;
        let bytes_before = disk_usage(&self.data_dir).map_err(io_error)?;
        let old = self.engine.load_full();
        let next = generations::prepare_next(&self.data_dir, &old.generation).map_err(io_error)?;
        let fresh = Engine::open(next.clone(), &self.config)?;
        self.compaction.copying.store(true, Ordering::SeqCst);
        let switched = self.copy_and_switch(&old, fresh);
        self.compaction.stop_copying();
        let (writes_paused, keep_old) = match switched {
            Ok(switched) => switched,
            Err(error) => {
                // Nothing names the new generation: it goes now, or at the next open.
                let _ = generations::remove(&next);
                return Err(error);
            }
        };
        if !keep_old {
            self.retire(old);
        }
        let bytes_after = disk_usage(&self.data_dir).map_err(io_error)?;
        let took = started.elapsed();
        metrics::counter!(crate::metrics::STORE_COMPACTIONS).increment(1);
        metrics::histogram!(crate::metrics::STORE_COMPACTION_SECONDS).record(took.as_secs_f64());
        metrics::histogram!(crate::metrics::STORE_COMPACTION_PAUSE_SECONDS)
            .record(writes_paused.as_secs_f64());
        metrics::counter!(crate::metrics::STORE_COMPACTION_RECLAIMED_BYTES)
            .increment(bytes_before.saturating_sub(bytes_after));
        self.compaction.over.store(false, Ordering::Relaxed);
        let live_bytes = self.amplification().live_bytes;
        tracing::info!(
            bytes_before,
            bytes_after,
            live_bytes,
            generation = next.number,
            took_ms = took.as_millis() as u64,
            writes_paused_ms = writes_paused.as_millis() as u64,
            "compacted the data dir"
        );
        Ok(Compacted {
            bytes_before,
            bytes_after,
            generation: next.number,
            took,
            writes_paused,
        })
    }

    /// Copies `old` into `fresh` and makes `fresh` current; how long writes waited, and
    /// whether `old` must stay on disk (see below).
    fn copy_and_switch(&self, old: &Engine, fresh: Engine) -> Result<(Duration, bool), StoreError> {
        let (from, to) = (&old.trees, &fresh.trees);
        // Everything, while the store serves: commits from now on note what they change.
        copy_tree(&from.sessions, &to.sessions, &fresh.db)?;
        copy_tree(&from.by_external, &to.by_external, &fresh.db)?;
        let mut last_page = copy_all_pages(&from.events, &to.events, &fresh.db)?;
        fresh.db.flush()?;
        self.pause_at(CompactStep::Copied);
        // What changed meanwhile, still serving.
        copy_records(old, &fresh, self.compaction.take_changed())?;
        last_page = copy_pages(&from.events, &to.events, last_page)?;
        // The rest, with writes paused.
        let writer = self.writer();
        let paused = Instant::now();
        copy_records(old, &fresh, self.compaction.take_changed())?;
        copy_pages(&from.events, &to.events, last_page)?;
        drop_pruned_pages(&from.events, &to.events)?;
        copy_tree(&from.meta, &to.meta, &fresh.db)?;
        self.touches.switch_to(to.touches.clone())?;
        let made_current = fresh.db.flush().map_err(StoreError::from).and_then(|_| {
            self.pause_at(CompactStep::Switching);
            generations::make_current(&self.data_dir, &fresh.generation).map_err(io_error)
        });
        let mut keep_old = false;
        if let Err(error) = made_current {
            // Only the dir's fsync after the rename may have failed: then the pointer
            // names the new generation, and it must serve from now on.
            if generations::current(&self.data_dir).ok().as_ref() != Some(&fresh.generation) {
                // Touches go on in the generation still current.
                self.touches.switch_to(from.touches.clone())?;
                return Err(error);
            }
            tracing::error!(%error, "the new generation is current, its pointer maybe not on disk yet; the old one is kept until the next open");
            keep_old = true;
        }
        self.pause_at(CompactStep::Switched);
        self.engine.store(Arc::new(fresh));
        drop(writer);
        Ok((paused.elapsed(), keep_old))
    }

    /// Deletes a replaced generation once its readers are done with it (bounded wait).
    fn retire(&self, old: Arc<Engine>) {
        let deadline = Instant::now() + RETIRE_WAIT;
        while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let generation = old.generation.clone();
        drop(old);
        if let Err(error) = generations::remove(&generation) {
            tracing::warn!(%error, dir = %generation.dir.display(), "cannot delete the replaced generation; the next open deletes it");
        }
    }

    /// The crash tests' hook (`compact_pause_at`): stops here for good, so the test can
    /// kill the process at this step.
    fn pause_at(&self, step: CompactStep) {
        if self.config.compact_pause_at == Some(step) {
            tracing::warn!(?step, "compaction paused for a crash test");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

/// Inserts every entry of `from` into `to`.
fn copy_tree(from: &sled::Tree, to: &sled::Tree, db: &sled::Db) -> Result<(), StoreError> {
    copy_in_passes(|| from.iter(), to, db)
}

/// Inserts every entry that `entries` yields into `to` (plain inserts: sled's batches
/// take the process-wide lock that reads of the serving generation wait for), in
/// `COPY_PASSES` ordered passes over disjoint sets of keys (see there).
fn copy_in_passes(
    entries: impl Fn() -> sled::Iter,
    to: &sled::Tree,
    db: &sled::Db,
) -> Result<(), StoreError> {
    let mut copied = 0usize;
    for pass in 0..COPY_PASSES {
        for entry in entries() {
            let (key, value) = entry?;
            if copy_pass(&key) != pass {
                continue;
            }
            to.insert(key, value)?;
            copied += 1;
            if copied.is_multiple_of(COPY_FLUSH_EVERY) {
                db.flush()?;
            }
        }
    }
    Ok(())
}

/// The pass that copies `key`: by its last byte (random in session ids), so a key
/// the serving store keeps unchanged is copied exactly once however the tree moves.
fn copy_pass(key: &[u8]) -> u8 {
    key.last().map_or(0, |last| last % COPY_PASSES)
}

/// Copies every event page there is now; the key of the last one.
fn copy_all_pages(
    from: &sled::Tree,
    to: &sled::Tree,
    db: &sled::Db,
) -> Result<Option<sled::IVec>, StoreError> {
    let last = from.last()?.map(|(key, _)| key);
    if let Some(last) = &last {
        copy_in_passes(|| from.range::<&[u8], _>(..=&last[..]), to, db)?;
    }
    Ok(last)
}

/// Copies event pages after `after`, those written since it was copied (pages are
/// never changed once written); the key of the last one copied.
fn copy_pages(
    from: &sled::Tree,
    to: &sled::Tree,
    after: Option<sled::IVec>,
) -> Result<Option<sled::IVec>, StoreError> {
    let range = match &after {
        Some(key) => from.range::<&[u8], _>((Bound::Excluded(&key[..]), Bound::Unbounded)),
        None => from.iter(),
    };
    let mut last = None;
    for entry in range {
        let (key, value) = entry?;
        to.insert(&key, value)?;
        last = Some(key);
    }
    Ok(last.or(after))
}

/// Removes from `to` the oldest pages that retention pruned from `from` since the copy.
fn drop_pruned_pages(from: &sled::Tree, to: &sled::Tree) -> Result<(), StoreError> {
    let first_kept = from.first()?.map(|(key, _)| key);
    for entry in to.iter() {
        let (key, _) = entry?;
        if first_kept.as_ref().is_some_and(|first| key >= *first) {
            break;
        }
        to.remove(key)?;
    }
    Ok(())
}

/// Copies the records `changed` since the copy began as they are now (deleted ones
/// deleted), with their external ids.
fn copy_records(
    old: &Engine,
    fresh: &Engine,
    changed: HashSet<SessionId>,
) -> Result<(), StoreError> {
    for id in changed {
        let key = keys::session_key(id);
        match old.trees.sessions.get(key)? {
            Some(bytes) => {
                let record = decode_record(id, &bytes)?;
                fresh.trees.sessions.insert(key, bytes)?;
                let external = record.external_user_id.as_bytes();
                if !external.is_empty() {
                    if let Some(user) = old.trees.by_external.get(external)? {
                        fresh.trees.by_external.insert(external, user)?;
                    }
                }
            }
            None => {
                fresh.trees.sessions.remove(key)?;
            }
        }
    }
    Ok(())
}

/// `sessiond compact`: compacts the sled store of a stopped server's `data_dir`.
pub fn compact_data_dir(data_dir: &Path) -> Result<Compacted, StoreError> {
    if !data_dir.is_dir() {
        return Err(StoreError::Io(format!(
            "{}: no such data dir",
            data_dir.display()
        )));
    }
    SledStore::open(data_dir, Durability::Sync)?.compact()
}
