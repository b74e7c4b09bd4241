//! The embedded default backend: sled trees (see `keys` for their layouts); every change
//! writes a page of its events and its records (see `batch` and `tx`); the indexes live
//! in memory. Here: the store, opening it and its read path. Each store concern is
//! implemented in its own file: `records`, `events`, `sweep` (expiry), `durability`
//! (flushes, disk faults) and `maintenance` (consistency check, backup, restore);
//! beside them `batch` (queued single-record changes), `tx` (transactions), `cache`
//! (the read cache), `index` (the indexes) with `rebuild` (theirs at open), `touches`,
//! and `compact` with `generations` (compaction, sled's alone).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{watch, Notify};

mod batch;
mod cache;
mod compact;
mod durability;
mod error;
mod events;
mod generations;
mod index;
mod keys;
mod live;
mod maintenance;
mod marks;
mod rebuild;
mod records;
mod settings;
mod sweep;
mod touches;
mod tx;

use batch::Queued;
use cache::{CachedRecord, SledCache};
use compact::Compaction;
pub use compact::{compact_data_dir, CompactStep, Compacted};
use durability::GroupCommit;
use events::{last_seq, move_single_events, PAGES_TREE};
pub use generations::disk_usage;
use generations::Generation;
use index::Indexes;
use live::LiveBytes;
pub use settings::{SledConfig, DEFAULT_CACHE_MIB};
use touches::{Touches, TOUCHES_TREE};

use crate::store::marks::MemoryMarks;

use super::record::decode_record;
use super::{Durability, SessionId, SessionRecord, StoreError};

/// Sessions in a sled database on local disk.
pub struct SledStore {
    /// The current generation's database; a compaction replaces it whole (see
    /// `compact`), so every use loads it anew and none keeps it across an await.
    engine: ArcSwap<Engine>,
    data_dir: PathBuf,
    config: SledConfig,
    durability: Durability,
    group_commit: GroupCommit,
    /// Held across every writing transaction: it hands out event sequence numbers in
    /// commit order (so a watcher never sees seq 7 before seq 6 exists), and, since sled
    /// transactions cannot scan, keeps a user's index from changing between the scan
    /// and the transaction of `update_user`. Transactions take microseconds; flushes
    /// happen outside it.
    writer: Mutex<Writer>,
    /// Fired whenever the writer lock is released: queued changes may need a leader.
    writer_released: Notify,
    /// Single-record changes waiting for the next batched transaction.
    queue: Mutex<Vec<Queued>>,
    /// The newest event seq that watchers may read.
    head: watch::Sender<u64>,
    /// Bytes of the live data (records and event pages), kept in step by every commit
    /// (records: those the rebuild at open has read).
    live: LiveBytes,
    /// Recently used records, kept in step with every commit (see `cache`).
    cache: SledCache,
    /// Sessions by user, expiry and grace window, kept in step with every commit.
    indexes: Indexes,
    /// How the indexes' rebuild at open goes (see `rebuild`).
    rebuild: watch::Sender<rebuild::Progress>,
    /// Last-access touches not yet in their records.
    touches: Arc<Touches>,
    /// When compactions ran, and what changed while one copies.
    compaction: Compaction,
    /// The first failed disk write: sled stays failed after one (see `write_fault`).
    fault: watch::Sender<Option<String>>,
    /// Used proof ids and issued nonces (see `ProofMarks`).
    marks: MemoryMarks,
}

/// One generation's sled database and its trees.
struct Engine {
    db: sled::Db,
    trees: Trees,
    generation: Generation,
}

struct Trees {
    sessions: sled::Tree,
    events: sled::Tree,
    meta: sled::Tree,
    by_external: sled::Tree,
    touches: sled::Tree,
}

/// Trees of the index entries that earlier versions kept on disk; the indexes are
/// built from the records now, so they are dropped at open.
const DROPPED_INDEX_TREES: [&str; 3] = [
    "userid_sessionids",
    "expiresat_sessionid",
    "graceuntil_sessionid",
];

struct Writer {
    next_seq: u64,
}

impl Engine {
    /// Opens generation `generation` of a data dir, moving an earlier layout's trees.
    fn open(generation: Generation, config: &SledConfig) -> Result<Engine, StoreError> {
        let db = open_db(&generation.dir, config.cache_mib.saturating_mul(1 << 20))?;
        let trees = Trees {
            sessions: db.open_tree("sessionid_session")?,
            events: db.open_tree(PAGES_TREE)?,
            meta: db.open_tree("meta")?,
            by_external: db.open_tree("extuserid_userid")?,
            touches: db.open_tree(TOUCHES_TREE)?,
        };
        move_single_events(&db, &trees.events)?;
        for name in DROPPED_INDEX_TREES {
            db.drop_tree(name)?;
        }
        Ok(Engine {
            db,
            trees,
            generation,
        })
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir`, with the default settings.
    pub fn open(dir: &Path, durability: Durability) -> Result<Arc<SledStore>, StoreError> {
        SledStore::open_with(dir, durability, &SledConfig::default())
    }

    /// Opens (or creates) the database in `data_dir` with `config`: its current
    /// generation, after deleting any other (see `generations`). A large store's
    /// indexes are still being rebuilt when this returns (see `rebuild`).
    pub fn open_with(
        data_dir: &Path,
        durability: Durability,
        config: &SledConfig,
    ) -> Result<Arc<SledStore>, StoreError> {
        let started = std::time::Instant::now();
        let generation = generations::current(data_dir).map_err(io_error)?;
        let engine = Engine::open(generation, config)?;
        let sled_opened = started.elapsed();
        // Only now: sled's lock on the current generation says no other process uses
        // this data dir, so the other generations are leftovers.
        generations::discard_others(data_dir, &engine.generation).map_err(io_error)?;
        let trees = &engine.trees;
        let pruned_through = match trees.meta.get(keys::EVENTS_PRUNED_THROUGH)? {
            Some(value) => keys::decode_u64(&value, "meta")?,
            None => 0,
        };
        let head = last_seq(&trees.events)?.max(pruned_through);
        let touches = Arc::new(Touches::open(trees.touches.clone())?);
        let store = Arc::new(SledStore {
            live: LiveBytes::default(),
            engine: ArcSwap::from_pointee(engine),
            data_dir: data_dir.to_owned(),
            config: config.clone(),
            durability,
            group_commit: GroupCommit::default(),
            writer: Mutex::new(Writer { next_seq: head + 1 }),
            writer_released: Notify::new(),
            queue: Mutex::new(Vec::new()),
            head: watch::Sender::new(head),
            cache: SledCache::new(READ_CACHE_RECORDS),
            indexes: Indexes::new(),
            rebuild: watch::Sender::new(rebuild::Progress::Running),
            touches,
            compaction: Compaction::new(std::time::Instant::now()),
            fault: watch::Sender::new(None),
            marks: MemoryMarks::default(),
        });
        store.rebuild_indexes(head)?;
        tracing::info!(
            sled_ms = sled_opened.as_millis() as u64,
            took_ms = started.elapsed().as_millis() as u64,
            "opened the data dir"
        );
        Ok(store)
    }

    /// The current generation's database.
    fn engine(&self) -> arc_swap::Guard<Arc<Engine>> {
        self.engine.load()
    }

    /// A session's record as stored (from the cache or else from sled, then cached),
    /// with its newest touch merged in.
    fn read_record(&self, id: SessionId) -> Result<Option<CachedRecord>, StoreError> {
        let Some(mut cached) = self.read_stored(id)? else {
            return Ok(None);
        };
        if let Some(merged) = self.touches.merged(id, &cached.record) {
            cached.record = Arc::new(merged);
        }
        Ok(Some(cached))
    }

    fn read_stored(&self, id: SessionId) -> Result<Option<CachedRecord>, StoreError> {
        if let Some(cached) = self.cache.get(&id) {
            return Ok(Some(cached));
        }
        let version = self.cache.version();
        let Some(bytes) = self.engine().trees.sessions.get(keys::session_key(id))? else {
            return Ok(None);
        };
        let cached = CachedRecord {
            record: Arc::new(decode_record(id, &bytes)?),
            bytes,
        };
        self.cache.fill(id, cached.clone(), version);
        Ok(Some(cached))
    }

    /// Decodes a record read from the sessions tree, with its newest touch merged in.
    fn decode_entry(
        &self,
        entry: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<SessionRecord, StoreError> {
        let (key, bytes) = entry?;
        let id = keys::id_from(&key, "session record")?;
        let mut record = decode_record(id, &bytes)?;
        self.touches.merge(id, &mut record);
        Ok(record)
    }
}

/// Records the read cache keeps per generation (at most twice this many in all): room
/// for the sessions validated most often, while a store of 1 M sessions stays within
/// 1 GiB of memory.
const READ_CACHE_RECORDS: usize = 8_192;

/// How long `open_db` waits for the data dir's lock.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Opens the sled database in `dir`, waiting a moment if its lock is still held: a
/// store closed in this process lets go of it only once sled's background threads
/// have dropped their handles, which a busy machine can delay.
fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .open()
        {
            Err(sled::Error::Io(error))
                if error.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => return opened,
        }
    }
}

/// A filesystem error of the data dir, as the store reports disk faults.
fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Io(error.to_string())
}
