//! Where a data dir's sled database lives, one generation at a time. Generation 0 is the
//! data dir itself (every data dir before its first compaction); a compaction writes
//! generation N+1 into `sled-gen-<N+1>/` beside the current one and makes it current by
//! renaming the pointer file `sled-generation` over the old one, both fsynced. So a
//! crash at any point leaves exactly one valid generation, the one the pointer names;
//! at open, every other one is an unfinished compaction's or a replaced one's leftover,
//! and is deleted.
//!
//! ```text
//! <data_dir>/sled-generation      "3\n": the current generation (missing: 0)
//! <data_dir>/sled-gen-3/          its sled files (conf, db, blobs/, snap.*)
//! <data_dir>/{conf,db,blobs,snap.*}  generation 0's sled files
//! <data_dir>/keys/                signing keys, not part of any generation
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The pointer file: the number of the current generation.
const POINTER: &str = "sled-generation";
/// The pointer being replaced: written and fsynced, then renamed over `POINTER`.
const POINTER_NEXT: &str = "sled-generation.next";
/// A generation's dir, followed by its number.
const DIR_PREFIX: &str = "sled-gen-";
/// sled's own files of a dir besides its `snap.<lsn>` snapshots.
const SLED_FILES: [&str; 2] = ["conf", "db"];
const SLED_DIRS: [&str; 1] = ["blobs"];
const SNAPSHOT_PREFIX: &str = "snap.";

/// One generation of a data dir: its number and the dir sled opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Generation {
    pub(super) number: u64,
    pub(super) dir: PathBuf,
}

impl Generation {
    fn numbered(data_dir: &Path, number: u64) -> Generation {
        Generation {
            number,
            dir: if number == 0 {
                data_dir.to_owned()
            } else {
                data_dir.join(format!("{DIR_PREFIX}{number}"))
            },
        }
    }
}

/// The generation the pointer names (0 without a pointer).
pub(super) fn current(data_dir: &Path) -> io::Result<Generation> {
    match std::fs::read_to_string(data_dir.join(POINTER)) {
        Ok(text) => {
            let number = text.trim().parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a generation number",
                        data_dir.join(POINTER).display()
                    ),
                )
            })?;
            Ok(Generation::numbered(data_dir, number))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Ok(Generation::numbered(data_dir, 0))
        }
        Err(error) => Err(error),
    }
}

/// Deletes every generation but `current` (and a pointer never renamed into place).
/// Call with `current` open: sled's lock on it means no other process is compacting.
pub(super) fn discard_others(data_dir: &Path, current: &Generation) -> io::Result<()> {
    remove_if_present(&data_dir.join(POINTER_NEXT))?;
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(DIR_PREFIX)
            && entry.path() != current.dir
        {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    if current.number > 0 {
        remove_sled_files(data_dir)?;
    }
    Ok(())
}

/// An empty dir for the generation after `current`.
pub(super) fn prepare_next(data_dir: &Path, current: &Generation) -> io::Result<Generation> {
    let next = Generation::numbered(data_dir, current.number + 1);
    if next.dir.exists() {
        std::fs::remove_dir_all(&next.dir)?;
    }
    std::fs::create_dir_all(&next.dir)?;
    Ok(next)
}

/// Makes `next` (written and flushed) the current generation: its dir entry and the
/// new pointer reach the disk before the rename, and the rename before this returns.
pub(super) fn make_current(data_dir: &Path, next: &Generation) -> io::Result<()> {
    std::fs::File::open(&next.dir)?.sync_all()?;
    let staged = data_dir.join(POINTER_NEXT);
    let mut file = std::fs::File::create(&staged)?;
    writeln!(file, "{}", next.number)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&staged, data_dir.join(POINTER))?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// Deletes a replaced generation's files.
pub(super) fn remove(generation: &Generation) -> io::Result<()> {
    if generation.number == 0 {
        remove_sled_files(&generation.dir)
    } else {
        std::fs::remove_dir_all(&generation.dir)
    }
}

/// Deletes sled's files from `dir` (generation 0), leaving everything else.
fn remove_sled_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if SLED_DIRS.contains(&&*name) {
            std::fs::remove_dir_all(entry.path())?;
        } else if SLED_FILES.contains(&&*name) || name.starts_with(SNAPSHOT_PREFIX) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Bytes allocated on disk by every file under `dir` (what fills a disk: blocks, not
/// lengths). A file or dir removed while it is walked counts as empty.
pub fn disk_usage(dir: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let Ok(metadata) = entry.and_then(|entry| {
            let metadata = entry.metadata()?;
            Ok(if metadata.is_dir() {
                disk_usage(&entry.path()).unwrap_or(0)
            } else {
                metadata.blocks() * 512
            })
        }) else {
            continue;
        };
        total += metadata;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_names_the_one_generation_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path();
        std::fs::write(data_dir.join("db"), b"generation 0").expect("write");
        std::fs::create_dir(data_dir.join("keys")).expect("keys");
        let zero = current(data_dir).expect("current");
        assert_eq!(zero.number, 0);
        let one = prepare_next(data_dir, &zero).expect("prepare");
        // An unfinished compaction: discarded at open, generation 0 kept.
        discard_others(data_dir, &zero).expect("discard");
        assert!(!one.dir.exists() && data_dir.join("db").exists());
        let one = prepare_next(data_dir, &zero).expect("prepare");
        make_current(data_dir, &one).expect("switch");
        assert_eq!(current(data_dir).expect("current"), one);
        discard_others(data_dir, &one).expect("discard");
        assert!(!data_dir.join("db").exists(), "generation 0 deleted");
        assert!(data_dir.join("keys").exists() && one.dir.exists());
    }
}
