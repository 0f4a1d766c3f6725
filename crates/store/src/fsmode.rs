//! Files and folders only the relay's user may read: the spool holds patient data.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::StoreError;

/// Mode of every file the store writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the store makes.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` (and missing parents) as 0700; an existing folder is narrowed to 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(StoreError::io("create directory", dir))?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
        .map_err(StoreError::io("restrict permissions of", dir))
}

/// Make sure `path` exists as a 0600 file (created empty if absent, narrowed if present).
pub(crate) fn create_private_file(path: &Path) -> Result<(), StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(StoreError::io("create", path))?;
    std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
        .map_err(StoreError::io("restrict permissions of", path))
}

/// Options that create files as 0600.
pub(crate) fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Write `bytes` to `path` whole: a 0600 temporary file in the same folder renamed over
/// `path`, without fsync. After a crash `path` holds the old content, the new, or (a new file
/// never synced) nothing or a torn file: only for what a reader can re-derive (a partial's
/// sidecar before its first checkpoint).
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = private_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(StoreError::io("create", &tmp))?;
    f.write_all(bytes).map_err(StoreError::io("write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(StoreError::io("rename", path))
}

/// fsync a directory so a rename or a new entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}
