//! `sessiond restore FILE --data-dir DIR`: a backup file (see `store::backup_file`) into
//! a new, empty data dir, verified whole before anything is written.

use std::path::{Path, PathBuf};

use crate::signing::{KeyFiles, KeyVault, SigningError};
use crate::store::backup_file::{read_backup, BackupFormatError};
use crate::store::sled::SledStore;
use crate::store::{Durability, StoreError};

/// What a restore wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub sessions: usize,
    pub signing_keys: usize,
    /// The event seq the backup was taken at; the restored log continues after it.
    pub events_head: u64,
}

/// Why a restore did not happen (or, past verification, did not finish).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}; nothing was restored")]
    Format {
        path: PathBuf,
        source: BackupFormatError,
    },
    #[error("{0} is not empty: restore only into a new or empty data dir")]
    NotEmpty(PathBuf),
    #[error("cannot create data dir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the store: {0}")]
    Store(#[from] StoreError),
    #[error("writing the signing keys: {0}")]
    Signing(#[from] SigningError),
}

/// Restores `file` into `data_dir`, which must be missing or empty. The file is read
/// and its checksum verified before the dir is touched.
pub async fn restore(file: &Path, data_dir: &Path) -> Result<Restored, RestoreError> {
    let bytes = std::fs::read(file).map_err(|source| RestoreError::Read {
        path: file.to_owned(),
        source,
    })?;
    let backup = read_backup(&bytes).map_err(|source| RestoreError::Format {
        path: file.to_owned(),
        source,
    })?;
    let occupied = std::fs::read_dir(data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied {
        return Err(RestoreError::NotEmpty(data_dir.to_owned()));
    }
    std::fs::create_dir_all(data_dir).map_err(|source| RestoreError::CreateDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let store = SledStore::open(data_dir, Durability::Sync)?;
    store.import(&backup.records, backup.header.events_head)?;
    drop(store);
    let keys = KeyFiles::new(data_dir.join("keys"))?;
    for key in &backup.keys {
        keys.save(&key.kid, &key.pkcs8).await?;
    }
    Ok(Restored {
        sessions: backup.records.len(),
        signing_keys: backup.keys.len(),
        events_head: backup.header.events_head,
    })
}
