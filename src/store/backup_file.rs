//! The backup file format: a versioned header, framed entries (signing keys, session
//! records) and a closing SHA-256 of everything before it, so a truncated or altered
//! file is refused before anything is restored.
//!
//! ```text
//! "SESSIOND-BACKUP\n" (16 bytes) ‖ version u32 BE
//! frame*: kind u8 ‖ length u32 BE ‖ payload
//!   kind 1 header   BackupHeader (prost)
//!   kind 2 key      SigningKeyEntry (prost)
//!   kind 3 record   SessionRecord (prost)
//! end:    kind 0xFF ‖ length 32 ‖ SHA-256 of every byte before this frame
//! ```

use prost::Message;
use sha2::{Digest, Sha256};

use super::SessionRecord;

/// The file's first bytes.
const MAGIC: &[u8; 16] = b"SESSIOND-BACKUP\n";
/// The format version this build writes and reads.
const VERSION: u32 = 1;
const KIND_HEADER: u8 = 1;
const KIND_KEY: u8 = 2;
const KIND_RECORD: u8 = 3;
const KIND_END: u8 = 0xFF;
/// Largest frame payload read back: far above any record the limits allow.
const MAX_FRAME: usize = 16 << 20;

/// What the backup was taken of.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BackupHeader {
    /// When the backup began (server clock, ms since the epoch).
    #[prost(uint64, tag = "1")]
    pub started_at_ms: u64,
    /// The newest event seq when the backup began: a restored store continues after it.
    #[prost(uint64, tag = "2")]
    pub events_head: u64,
}

/// A signing key: its id and PKCS#8 document.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SigningKeyEntry {
    #[prost(string, tag = "1")]
    pub kid: String,
    #[prost(bytes = "vec", tag = "2")]
    pub pkcs8: Vec<u8>,
}

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupFormatError {
    #[error("not a sessiond backup (wrong magic bytes)")]
    NotABackup,
    #[error("backup format version {0} is not supported (this build reads version {VERSION})")]
    Version(u32),
    #[error("the backup is truncated: it ends before its checksum")]
    Truncated,
    #[error("the backup's checksum does not match its content: the file was altered or damaged")]
    Checksum,
    #[error("the backup holds an unknown entry kind {0}")]
    UnknownKind(u8),
    #[error("the backup holds an entry of {0} bytes, more than any valid entry")]
    Oversized(usize),
    #[error("the backup holds an undecodable {what}: {detail}")]
    Undecodable { what: &'static str, detail: String },
    #[error("the backup has no header entry")]
    NoHeader,
    #[error("the backup holds bytes after its checksum")]
    TrailingBytes,
}

/// Writes a backup as a sequence of byte chunks, hashing as it goes.
pub struct BackupWriter {
    hasher: Sha256,
}

impl BackupWriter {
    /// The writer and the file's first chunk: magic, version and the header entry.
    pub fn start(header: &BackupHeader) -> (BackupWriter, Vec<u8>) {
        let mut writer = BackupWriter {
            hasher: Sha256::new(),
        };
        let mut chunk = Vec::with_capacity(64);
        chunk.extend_from_slice(MAGIC);
        chunk.extend_from_slice(&VERSION.to_be_bytes());
        writer.hasher.update(&chunk);
        writer.frame_into(&mut chunk, KIND_HEADER, &header.encode_to_vec());
        (writer, chunk)
    }

    /// Appends a signing key entry to `chunk`.
    pub fn key(&mut self, chunk: &mut Vec<u8>, key: &SigningKeyEntry) {
        self.frame_into(chunk, KIND_KEY, &key.encode_to_vec());
    }

    /// Appends a session record entry to `chunk`.
    pub fn record(&mut self, chunk: &mut Vec<u8>, record: &SessionRecord) {
        self.frame_into(chunk, KIND_RECORD, &record.encode_to_vec());
    }

    /// The last chunk: the checksum of everything written before it.
    pub fn finish(self) -> Vec<u8> {
        let digest = self.hasher.finalize();
        let mut chunk = Vec::with_capacity(5 + digest.len());
        chunk.push(KIND_END);
        chunk.extend_from_slice(&(digest.len() as u32).to_be_bytes());
        chunk.extend_from_slice(&digest);
        chunk
    }

    fn frame_into(&mut self, chunk: &mut Vec<u8>, kind: u8, payload: &[u8]) {
        let start = chunk.len();
        chunk.push(kind);
        // Payloads are records and keys, far below 4 GiB.
        chunk.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        chunk.extend_from_slice(payload);
        self.hasher.update(&chunk[start..]);
    }
}

/// A backup read back and verified.
#[derive(Debug, Default)]
pub struct Backup {
    pub header: BackupHeader,
    pub keys: Vec<SigningKeyEntry>,
    pub records: Vec<SessionRecord>,
}

/// Reads and verifies a whole backup: the checksum is checked before any entry is
/// decoded, so a damaged file yields an error and nothing else.
pub fn read_backup(bytes: &[u8]) -> Result<Backup, BackupFormatError> {
    let body = verified_body(bytes)?;
    let mut backup = Backup::default();
    let mut header = None;
    let mut rest = body.get(MAGIC.len() + 4..).unwrap_or_default();
    while !rest.is_empty() {
        let (kind, payload, after) = next_frame(rest)?;
        rest = after;
        match kind {
            KIND_HEADER => header = Some(decode::<BackupHeader>(payload, "header")?),
            KIND_KEY => backup.keys.push(decode(payload, "signing key")?),
            KIND_RECORD => backup.records.push(decode(payload, "session record")?),
            other => return Err(BackupFormatError::UnknownKind(other)),
        }
    }
    backup.header = header.ok_or(BackupFormatError::NoHeader)?;
    Ok(backup)
}

/// The bytes before the end frame, once magic, version and checksum are right.
fn verified_body(bytes: &[u8]) -> Result<&[u8], BackupFormatError> {
    let prefix = bytes
        .get(..MAGIC.len() + 4)
        .ok_or(BackupFormatError::NotABackup)?;
    if &prefix[..MAGIC.len()] != MAGIC {
        return Err(BackupFormatError::NotABackup);
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&prefix[MAGIC.len()..]);
    let version = u32::from_be_bytes(version);
    if version != VERSION {
        return Err(BackupFormatError::Version(version));
    }
    // Walk the frames to find the end frame; a file cut anywhere has none.
    let mut at = MAGIC.len() + 4;
    loop {
        let rest = bytes.get(at..).ok_or(BackupFormatError::Truncated)?;
        if rest.is_empty() {
            return Err(BackupFormatError::Truncated);
        }
        let (kind, payload, after) = next_frame(rest)?;
        if kind == KIND_END {
            if !after.is_empty() {
                return Err(BackupFormatError::TrailingBytes);
            }
            let body = &bytes[..at];
            return if Sha256::digest(body).as_slice() == payload {
                Ok(body)
            } else {
                Err(BackupFormatError::Checksum)
            };
        }
        at = bytes.len() - after.len();
    }
}

/// One frame off the front of `bytes`: kind, payload and what follows.
fn next_frame(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), BackupFormatError> {
    let (&kind, rest) = bytes.split_first().ok_or(BackupFormatError::Truncated)?;
    let length_bytes = rest.get(..4).ok_or(BackupFormatError::Truncated)?;
    let mut length = [0u8; 4];
    length.copy_from_slice(length_bytes);
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(BackupFormatError::Oversized(length));
    }
    let payload = rest
        .get(4..4 + length)
        .ok_or(BackupFormatError::Truncated)?;
    Ok((kind, payload, &rest[4 + length..]))
}

fn decode<M: Message + Default>(
    payload: &[u8],
    what: &'static str,
) -> Result<M, BackupFormatError> {
    M::decode(payload).map_err(|error| BackupFormatError::Undecodable {
        what,
        detail: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let (mut writer, mut file) = BackupWriter::start(&BackupHeader {
            started_at_ms: 7,
            events_head: 42,
        });
        writer.key(
            &mut file,
            &SigningKeyEntry {
                kid: "k1".into(),
                pkcs8: vec![1, 2, 3],
            },
        );
        for user in ["alice", "bob"] {
            writer.record(
                &mut file,
                &SessionRecord {
                    user_id: user.into(),
                    ..Default::default()
                },
            );
        }
        file.extend(writer.finish());
        file
    }

    #[test]
    fn a_backup_reads_back_whole() {
        let backup = read_backup(&sample()).expect("valid");
        assert_eq!(backup.header.events_head, 42);
        assert_eq!(backup.keys[0].kid, "k1");
        let users: Vec<_> = backup.records.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let file = sample();
        for len in 0..file.len() {
            assert!(read_backup(&file[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let file = sample();
        for at in 0..file.len() {
            let mut altered = file.clone();
            altered[at] ^= 0x01;
            assert!(read_backup(&altered).is_err(), "flipped byte {at}");
        }
    }
}
