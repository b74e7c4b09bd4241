//! `sessionctl backup --out FILE`: streams the server's online backup into a file, then
//! reads it back and verifies it before it takes its final name, so FILE is either a
//! whole, checked backup or not there at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use serde_json::json;
use sessiond::proto::session::v1 as pb;
use sessiond::store::backup_file::read_backup;
use tonic::Status;

use crate::client::{Api, Target};
use crate::error::CtlError;
use crate::output::Output;
use crate::render::sessions;

/// Take an online backup of the whole store (sled) into a file, verified before it
/// gets its name; restore it with `sessiond restore FILE --data-dir DIR`.
#[derive(Args)]
pub struct BackupArgs {
    /// The file to write (replaced if it exists, only once the backup verified).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// A backup file written and verified.
struct Written {
    path: PathBuf,
    bytes: u64,
    sessions: usize,
    signing_keys: usize,
}

impl BackupArgs {
    /// Writes the backup and says what it holds.
    pub async fn run(self, target: &Target) -> Result<Output, CtlError> {
        let mut api = target.connect().await?;
        let written = backup(&mut api, &self.out).await?;
        Ok(Output {
            json: json!({
                "file": written.path.display().to_string(),
                "bytes": written.bytes,
                "sessions": written.sessions,
                "signing_keys": written.signing_keys,
            }),
            text: format!(
                "backed up {} and {} signing keys to {} ({} bytes, checksum verified)\n",
                sessions(u32::try_from(written.sessions).unwrap_or(u32::MAX)),
                written.signing_keys,
                written.path.display(),
                written.bytes
            ),
        })
    }
}

/// Streams the backup into `out`; each chunk must arrive within the call timeout.
async fn backup(api: &mut Api, out: &Path) -> Result<Written, CtlError> {
    let partial = out.with_extension("partial");
    let mut file = std::fs::File::create(&partial).map_err(|error| io(&partial, error))?;
    let request = api.untimed_request(pb::BackupRequest {});
    let result = async {
        let mut chunks = api
            .client()
            .backup(request)
            .await
            .map_err(CtlError::Status)?
            .into_inner();
        let mut bytes = 0u64;
        while let Some(chunk) = next_chunk(api.timeout(), chunks.next()).await? {
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

/// A file that could not be written or read, named.
fn io(path: &Path, error: std::io::Error) -> CtlError {
    CtlError::Usage(format!("{}: {error}", path.display()))
}
