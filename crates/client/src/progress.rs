use std::path::Path;

/// What a client reports while it works. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// Work found: `files` instances, `bytes` in all.
    fn begin(&self, _files: u64, _bytes: u64) {}
    /// The relay acknowledged `delta` more bytes as durable.
    fn acknowledged(&self, _delta: u64) {}
    /// A file is finished (stored, already there, or failed with a reason).
    fn file_done(&self, _path: &Path, _ok: bool, _message: &str) {}
    /// A line of status ("link down, retrying in 8 s").
    fn status(&self, _message: &str) {}
    /// An upload paused (`true`) for an urgent one from the same site, or continued (`false`).
    fn paused(&self, _on: bool) {}
    /// A reader received an instance.
    fn received(&self, _study_uid: &str, _sop_uid: &str, _bytes: u64) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
