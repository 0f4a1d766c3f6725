use std::path::PathBuf;

/// Failures of the spool. Messages say what an administrator should check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot {action} {path}: {source} (check that the data directory exists, is writable and the disk is not full)")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("index database holds a corrupt record: {0}")]
    Corrupt(String),
    #[error("SOP Instance UID {sop_uid} is already stored with different content")]
    Conflict { sop_uid: String },
    /// A failure shared by every commit of one group-commit batch.
    #[error("{0}")]
    Batch(std::sync::Arc<StoreError>),
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}
