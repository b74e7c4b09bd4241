//! sled's errors as store errors: a failed disk read or write is `Io` (the store's
//! write fault); anything else of sled's is an engine failure.

use crate::store::StoreError;

/// An error of sled's other than I/O; shown as before the store named no engine.
#[derive(Debug, thiserror::Error)]
#[error("storage engine: {0}")]
struct SledFailure(sled::Error);

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> StoreError {
        match error {
            sled::Error::Io(error) => StoreError::Io(error.to_string()),
            other => StoreError::Engine(Box::new(SledFailure(other))),
        }
    }
}
