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
    /// The study was first sent by another site: only that site's devices may add to it.
    #[error("study {study_uid} belongs to {owner}, which sent it first; only its devices may add instances or declare its manifest")]
    StudyOwned { study_uid: String, owner: String },
    /// The site's unfinished uploads already take the space the relay allows per site.
    #[error("{site} has {used} bytes of unfinished uploads at the relay; with this one ({wanted} bytes) that would pass the limit of {cap} bytes per site (limits.partial_bytes_per_site): let the uploads in progress finish first")]
    PartialQuota {
        site: String,
        used: u64,
        wanted: u64,
        cap: u64,
    },
    /// A catalog query matched more than its limit (`Query::limit`).
    #[error("the query matches more than {limit} entries: narrow it (by date, patient ID, accession number or modality)")]
    TooManyMatches { limit: usize },
    /// A catalog query with a value that cannot match (the message names the key, never the
    /// value).
    #[error("invalid query: {0}")]
    BadQuery(String),
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

    /// Whether the disk (or the user's quota) is full: the failure heals once space returns.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => io_out_of_space(source),
            StoreError::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Batch(inner) => inner.is_out_of_space(),
            _ => false,
        }
    }
}

/// Whether an I/O error means "no space left" (ENOSPC, or EDQUOT for a quota).
pub fn io_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == std::io::ErrorKind::StorageFull
}
