//! Last-access touches of the sled store, kept apart from the records: a touch that
//! changes nothing but `last_access_at_ms` / `last_seen_at_ms` goes to memory and, with
//! thousands of others, to one page of the `touches` tree, instead of rewriting its
//! record. Reads merge the newest touch into the record; a record written with a touch
//! in it makes the touch redundant. Touches are lazy writes (`Commit::Lazy`): a crash may
//! lose the ones not yet flushed, never anything else.
//!
//! ```text
//! touches   [page number: u64 BE]  ->  n × ([session_id: 16][last_access_at_ms: u64 BE][last_seen_at_ms: u64 BE])
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use prost::Message;

use super::{keys, SessionId, SessionRecord, StoreError};

/// The tree of touch pages.
pub(super) const TOUCHES_TREE: &str = "touches";

/// Touches per page written while serving.
const PAGE_TOUCHES: usize = 4096;

/// Pending touches older than this are written with the next touch or write.
const PAGE_AGE: Duration = Duration::from_secs(1);

/// Bytes of one touch in a page.
const ENTRY_LEN: usize = 32;

/// The two times a touch moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Touch {
    pub(super) last_access_at_ms: u64,
    pub(super) last_seen_at_ms: u64,
}

/// The touch fields of a stored `SessionRecord`, decoded alone at open.
#[derive(Clone, PartialEq, prost::Message)]
struct StoredTouch {
    #[prost(uint64, tag = "7")]
    last_access_at_ms: u64,
    #[prost(uint64, tag = "25")]
    last_seen_at_ms: u64,
}

impl Touch {
    pub(super) fn of(record: &SessionRecord) -> Touch {
        Touch {
            last_access_at_ms: record.last_access_at_ms,
            last_seen_at_ms: record.last_seen_at_ms,
        }
    }

    /// Whether `next` is `current` touched and nothing else.
    pub(super) fn only_difference(current: &SessionRecord, next: &SessionRecord) -> bool {
        let mut untouched = next.clone();
        untouched.last_access_at_ms = current.last_access_at_ms;
        untouched.last_seen_at_ms = current.last_seen_at_ms;
        untouched == *current
    }

    fn newest(self, other: Touch) -> Touch {
        Touch {
            last_access_at_ms: self.last_access_at_ms.max(other.last_access_at_ms),
            last_seen_at_ms: self.last_seen_at_ms.max(other.last_seen_at_ms),
        }
    }

    /// Whether a record at `stored` already holds this touch.
    fn covered_by(self, stored: Touch) -> bool {
        stored.newest(self) == stored
    }

    fn apply(self, record: &mut SessionRecord) {
        let newest = Touch::of(record).newest(self);
        record.last_access_at_ms = newest.last_access_at_ms;
        record.last_seen_at_ms = newest.last_seen_at_ms;
    }
}

#[derive(Default)]
struct Pending {
    touches: Vec<(SessionId, Touch)>,
    since: Option<Instant>,
}

/// The touches not yet in their records.
pub(super) struct Touches {
    /// The current generation's tree (see `switch_to`); held for reading while a page
    /// is written.
    tree: RwLock<sled::Tree>,
    /// The newest touch of each session whose record does not hold it.
    newest: RwLock<HashMap<SessionId, Touch>>,
    /// Touches not yet in a page.
    pending: Mutex<Pending>,
    next_page: AtomicU64,
    /// Touches written to pages since the tree was last rewritten.
    written: AtomicU64,
}

impl Touches {
    /// Reads every page of `tree`, newest touch per session.
    pub(super) fn open(tree: sled::Tree) -> Result<Touches, StoreError> {
        let mut newest: HashMap<SessionId, Touch> = HashMap::new();
        let mut next_page = 0;
        let mut written = 0;
        for entry in tree.iter() {
            let (key, page) = entry?;
            next_page = keys::decode_u64(&key, "touch page")? + 1;
            for entry in page.chunks_exact(ENTRY_LEN) {
                let id = keys::id_from(&entry[..16], "touch")?;
                let touch = Touch {
                    last_access_at_ms: keys::decode_u64(&entry[16..24], "touch")?,
                    last_seen_at_ms: keys::decode_u64(&entry[24..], "touch")?,
                };
                written += 1;
                newest
                    .entry(id)
                    .and_modify(|known| *known = known.newest(touch))
                    .or_insert(touch);
            }
        }
        Ok(Touches {
            tree: RwLock::new(tree),
            newest: RwLock::new(newest),
            pending: Mutex::default(),
            next_page: AtomicU64::new(next_page),
            written: AtomicU64::new(written),
        })
    }

    /// After open, given each stored record: keeps only the touches that a record exists
    /// for and does not hold yet, and writes them anew if pages hold many more. Runs
    /// beside the store's calls (once the rebuild at open is done), so the lock is held
    /// per touch and never while a record is read: a record's touch only grows, and a
    /// deleted record never comes back, so what was read stays a safe reason to drop.
    pub(super) fn settle_stored(
        &self,
        mut stored: impl FnMut(SessionId) -> Result<Option<Touch>, StoreError>,
    ) -> Result<(), StoreError> {
        let ids: Vec<SessionId> = self.newest.read().keys().copied().collect();
        for id in ids {
            let at = stored(id)?;
            let mut newest = self.newest.write();
            if newest
                .get(&id)
                .is_some_and(|touch| at.is_none_or(|at| touch.covered_by(at)))
            {
                newest.remove(&id);
            }
        }
        self.rewrite_if_outgrown(&self.tree.read())
    }

    /// The touch fields of a stored record's bytes.
    pub(super) fn stored_touch(bytes: &[u8]) -> Result<Touch, prost::DecodeError> {
        let stored = StoredTouch::decode(bytes)?;
        Ok(Touch {
            last_access_at_ms: stored.last_access_at_ms,
            last_seen_at_ms: stored.last_seen_at_ms,
        })
    }

    /// `record` with its newest touch, if it has one its record does not hold.
    pub(super) fn merged(&self, id: SessionId, record: &SessionRecord) -> Option<SessionRecord> {
        let touch = *self.newest.read().get(&id)?;
        if touch.covered_by(Touch::of(record)) {
            return None;
        }
        let mut merged = record.clone();
        touch.apply(&mut merged);
        Some(merged)
    }

    /// Merges the newest touch into `record` in place.
    pub(super) fn merge(&self, id: SessionId, record: &mut SessionRecord) {
        if let Some(touch) = self.newest.read().get(&id) {
            touch.apply(record);
        }
    }

    /// Keeps a touch; writes a page once enough are pending, or old enough. The first
    /// touch pending also schedules a write after [`PAGE_AGE`], so that a quiet server
    /// keeps none for longer.
    pub(super) fn touch(self: &Arc<Self>, id: SessionId, touch: Touch) -> Result<(), StoreError> {
        self.newest
            .write()
            .entry(id)
            .and_modify(|known| *known = known.newest(touch))
            .or_insert(touch);
        let (first, due) = {
            let mut pending = self.pending.lock();
            let first = pending.touches.is_empty();
            pending.touches.push((id, touch));
            let since = *pending.since.get_or_insert_with(Instant::now);
            (
                first,
                pending.touches.len() >= PAGE_TOUCHES || since.elapsed() >= PAGE_AGE,
            )
        };
        if due {
            self.write_pending()?;
        } else if first {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // Weak: a closed store lets go of its data dir (and sled's lock) at once.
                let touches = Arc::downgrade(self);
                runtime.spawn(async move {
                    tokio::time::sleep(PAGE_AGE).await;
                    if let Some(touches) = touches.upgrade() {
                        // A failure here is the disk's, and the next write reports it.
                        let _ = touches.write_pending();
                    }
                });
            }
        }
        Ok(())
    }

    /// Committed records: a record that holds its session's newest touch makes it
    /// redundant; a deleted record takes its touch along.
    pub(super) fn settle<'a>(
        &self,
        written: impl IntoIterator<Item = (SessionId, Option<&'a SessionRecord>)>,
    ) {
        if self.newest.read().is_empty() {
            return;
        }
        let mut newest = self.newest.write();
        for (id, record) in written {
            let redundant = match (newest.get(&id), record) {
                (Some(touch), Some(record)) => touch.covered_by(Touch::of(record)),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if redundant {
                newest.remove(&id);
            }
        }
    }

    /// Writes the pending touches as one page (flushed with the next flush). A page that
    /// could not be written goes back ahead of the touches queued meanwhile, so the next
    /// write carries it.
    pub(super) fn write_pending(&self) -> Result<(), StoreError> {
        let tree = self.tree.read();
        let touches = std::mem::take(&mut *self.pending.lock()).touches;
        if touches.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.write_page(&tree, &touches) {
            let mut pending = self.pending.lock();
            pending.touches.splice(0..0, touches);
            pending.since.get_or_insert_with(Instant::now);
            return Err(error);
        }
        self.rewrite_if_outgrown(&tree)
    }

    /// Moves the touches to `tree` (a compaction's new generation): the ones still
    /// needed are written there, and every page written after this goes there. A touch
    /// made meanwhile is in `newest` (kept first) or pending (written after), so none is
    /// left behind in the old tree.
    pub(super) fn switch_to(&self, tree: sled::Tree) -> Result<(), StoreError> {
        let mut current = self.tree.write();
        let needed: Vec<(SessionId, Touch)> = self
            .newest
            .read()
            .iter()
            .map(|(id, touch)| (*id, *touch))
            .collect();
        for chunk in needed.chunks(PAGE_TOUCHES) {
            self.write_page(&tree, chunk)?;
        }
        self.written.store(needed.len() as u64, Ordering::Relaxed);
        *current = tree;
        Ok(())
    }

    /// Bytes of the touches not yet in their records, as pages hold them.
    pub(super) fn bytes(&self) -> u64 {
        (self.newest.read().len() * ENTRY_LEN) as u64
    }

    fn write_page(
        &self,
        tree: &sled::Tree,
        touches: &[(SessionId, Touch)],
    ) -> Result<(), StoreError> {
        let mut page = Vec::with_capacity(touches.len() * ENTRY_LEN);
        for (id, touch) in touches {
            page.extend_from_slice(id.as_bytes());
            page.extend_from_slice(&touch.last_access_at_ms.to_be_bytes());
            page.extend_from_slice(&touch.last_seen_at_ms.to_be_bytes());
        }
        let number = self.next_page.fetch_add(1, Ordering::Relaxed);
        tree.insert(number.to_be_bytes(), page)?;
        self.written
            .fetch_add(touches.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Once pages hold far more touches than are still needed (most were superseded or
    /// made redundant by their records), writes the needed ones anew and drops the
    /// older pages: written first, dropped after, so a crash in between keeps them all.
    fn rewrite_if_outgrown(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let needed: Vec<(SessionId, Touch)> = {
            let newest = self.newest.read();
            let limit = 2 * newest.len() as u64 + 65_536;
            if self.written.load(Ordering::Relaxed) <= limit {
                return Ok(());
            }
            newest.iter().map(|(id, touch)| (*id, *touch)).collect()
        };
        let first_new = self.next_page.load(Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        for chunk in needed.chunks(PAGE_TOUCHES) {
            self.write_page(tree, chunk)?;
        }
        for entry in tree.range(..first_new.to_be_bytes()) {
            tree.remove(entry?.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(access: u64, seen: u64) -> Touch {
        Touch {
            last_access_at_ms: access,
            last_seen_at_ms: seen,
        }
    }

    #[test]
    fn a_touch_is_the_only_difference_or_not() {
        let current = SessionRecord {
            user_id: "alice".into(),
            last_access_at_ms: 1,
            ..Default::default()
        };
        let mut next = current.clone();
        next.last_access_at_ms = 9;
        next.last_seen_at_ms = 9;
        assert!(Touch::only_difference(&current, &next));
        next.last_ip = "10.0.0.1".into();
        assert!(!Touch::only_difference(&current, &next));
    }

    #[test]
    fn touches_survive_reopening_and_the_newest_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        let id = SessionId::from_u128(7);
        {
            let touches =
                Arc::new(Touches::open(db.open_tree(TOUCHES_TREE).expect("tree")).expect("open"));
            touches.touch(id, touch(5, 0)).expect("touch");
            touches.touch(id, touch(3, 8)).expect("touch");
            touches.write_pending().expect("write");
        }
        let touches = Touches::open(db.open_tree(TOUCHES_TREE).expect("tree")).expect("open");
        let mut record = SessionRecord {
            last_access_at_ms: 4,
            ..Default::default()
        };
        touches.merge(id, &mut record);
        assert_eq!(Touch::of(&record), touch(5, 8));
        // A record written with the touch in it makes the touch redundant.
        touches.settle([(id, Some(&record))]);
        assert!(touches.merged(id, &SessionRecord::default()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_touch_is_written_within_a_second() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree(TOUCHES_TREE).expect("tree");
        let touches = Arc::new(Touches::open(tree.clone()).expect("open"));
        touches
            .touch(SessionId::from_u128(1), touch(5, 0))
            .expect("touch");
        assert!(tree.is_empty());
        tokio::time::sleep(PAGE_AGE * 2).await;
        assert_eq!(tree.len(), 1);
    }
}
