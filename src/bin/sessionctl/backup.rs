//! `sessionctl backup --out FILE`: streams the server's online backup into a file, then
//! reads it back and verifies it before it takes its final name, so FILE is either a
//! whole, checked backup or not there at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sessiond::proto::session::v1 as pb;
use sessiond::store::backup_file::read_backup;
use tonic::Status;

use crate::client::Api;
use crate::error::CtlError;

/// A backup file written and verified.
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub sessions: usize,
    pub signing_keys: usize,
}

impl Api {
    /// Streams the backup into `out`; each chunk must arrive within the call timeout.
    pub async fn backup(&mut self, out: &Path) -> Result<Written, CtlError> {
        let partial = out.with_extension("partial");
        let mut file = std::fs::File::create(&partial).map_err(|error| io(&partial, error))?;
        let request = self.untimed_request(pb::BackupRequest {});
        let result = async {
            let mut chunks = self
                .client()
                .backup(request)
                .await
                .map_err(CtlError::Status)?
                .into_inner();
            let mut bytes = 0u64;
            while let Some(chunk) = next_chunk(self.timeout(), chunks.next()).await? {
                file.write_all(&chunk.data)
                    .map_err(|error| io(&partial, error))?;
                bytes += chunk.data.len() as u64;
            }
            file.sync_all().map_err(|error| io(&partial, error))?;
            let written = std::fs::read(&partial).map_err(|error| io(&partial, error))?;
            let backup = read_backup(&written).map_err(|error| {
                CtlError::Status(Status::data_loss(format!(
                    "the backup received does not verify: {error}"
                )))
            })?;
            std::fs::rename(&partial, out).map_err(|error| io(out, error))?;
            Ok(Written {
                path: out.to_owned(),
                bytes,
                sessions: backup.records.len(),
                signing_keys: backup.keys.len(),
            })
        }
        .await;
        if result.is_err() {
            // Nothing half-written stays behind.
            let _ = std::fs::remove_file(&partial);
        }
        result
    }
}

/// The next chunk, or None at the end of the stream.
async fn next_chunk(
    timeout: Duration,
    next: impl std::future::Future<Output = Option<Result<pb::BackupChunk, Status>>>,
) -> Result<Option<pb::BackupChunk>, CtlError> {
    match tokio::time::timeout(timeout, next).await {
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(Some(Err(status))) => Err(CtlError::Status(status)),
        Ok(None) => Ok(None),
        Err(_) => Err(CtlError::Status(Status::deadline_exceeded(format!(
            "no backup data for {}s",
            timeout.as_secs()
        )))),
    }
}

fn io(path: &Path, error: std::io::Error) -> CtlError {
    CtlError::Usage(format!("{}: {error}", path.display()))
}
