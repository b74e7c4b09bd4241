//! Online backup: streams the backup file (store records and signing keys) while the
//! server serves, page by page, so memory stays bounded whatever the store's size.

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{SessionError, SessionManager};
use crate::store::backup_file::{BackupHeader, BackupWriter, SigningKeyEntry};
use crate::store::{SessionId, StoreError};

/// Records read from the store per page (and sent per chunk).
const PAGE: usize = 512;
/// Chunks buffered ahead of a slow reader.
const BUFFER: usize = 4;

impl SessionManager {
    /// The backup file as a stream of chunks. Every session acknowledged before the
    /// call is in it (in its state as of its page's read); a store failure ends the
    /// stream with the error, so a partial file has no checksum and restores nothing.
    pub async fn backup(
        &self,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, SessionError>> + Send + 'static, SessionError>
    {
        // Fails at once, before any byte, where the store has no online backup.
        let first_page = self.store.export_records(None, PAGE).await?;
        let keys = match &self.signer {
            Some(signer) => signer.keys.export().await?,
            None => Vec::new(),
        };
        let header = BackupHeader {
            started_at_ms: self.clock.now_ms(),
            events_head: self.store.head_seq(),
        };
        let (sender, receiver) = mpsc::channel(BUFFER);
        let store = self.store.clone();
        tokio::spawn(async move {
            let (mut writer, mut chunk) = BackupWriter::start(&header);
            for (kid, pkcs8) in keys {
                writer.key(&mut chunk, &SigningKeyEntry { kid, pkcs8 });
            }
            let mut page = first_page;
            loop {
                for record in &page {
                    writer.record(&mut chunk, record);
                }
                if sender.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                    return; // the caller went away
                }
                let Some(last) = page.last() else { break };
                let Ok(after) = SessionId::from_slice(&last.session_id) else {
                    // Never an incomplete file that looks whole: no checksum follows.
                    let malformed = StoreError::MalformedKey("session record");
                    let _ = sender.send(Err(malformed.into())).await;
                    return;
                };
                if page.len() < PAGE {
                    break;
                }
                page = match store.export_records(Some(after), PAGE).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
            }
            let _ = sender.send(Ok(writer.finish())).await;
        });
        Ok(ReceiverStream::new(receiver))
    }
}
