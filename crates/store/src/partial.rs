//! Uploads in progress: one file per (source site, SOP Instance UID), resumable.
//!
//! A partial is `partial/<key>.part` (the bytes so far) and `partial/<key>.json` (what it is:
//! a resumed upload must offer the same). The sidecar is written (whole, to a temporary file
//! renamed over it) and made durable (sidecar fsync, folder fsync) at the partial's first
//! [`sync`](Partial::sync), i.e. before any checkpoint is acknowledged. An instance committed
//! before its first checkpoint (most CT slices) never creates one, so it pays neither the two
//! fsyncs nor the file churn, and a crash before a checkpoint loses nothing anyone was told: a
//! part without a sidecar only means the upload starts again from zero. Both files are 0600.
//!
//! A new partial is written directly (`direct.rs`): its last bytes, up to a buffer's worth, are
//! in no file until the buffer is full, a [`sync`](Partial::sync) flushes it or the upload is
//! [parked](Partial::park) while it waits for data; [`Partial::readable`] says how much of it
//! the file holds, [`Partial::unwritten`] hands out a copy of the rest.
//!
//! Every partial is registered in the store's [`PartialRegistry`](crate::partials), which
//! enforces the per-site byte cap and lets the retention sweep remove abandoned partials; a
//! partial is "in use" from [`open`] until its [`Partial`] is dropped.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::direct::{Buffers, DirectError, DirectWriter};
use crate::fsmode::{private_options, sync_dir, write_replace};
use crate::partials::PartialRegistry;
use crate::StoreError;

/// What a partial file is: a resumed upload must offer the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialInfo {
    pub source_site: String,
    pub study_uid: String,
    pub sop_uid: String,
    pub size: u64,
}

/// An upload in progress, open for appending.
#[derive(Debug)]
pub struct Partial {
    pub(crate) info: PartialInfo,
    pub(crate) key: String,
    pub(crate) path: PathBuf,
    pub(crate) sidecar: PathBuf,
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) durable: u64,
    written_back: u64,
    /// Whether the sidecar and the folder entries are durable (see the module docs).
    entries_durable: bool,
    /// A pooled scratch file: it can be sealed (`sealed.rs`).
    pub(crate) sealable: bool,
    /// Writes that skip the page cache (a sealable upload, where the filesystem allows them).
    pub(crate) direct: Option<Box<DirectWriter>>,
    registry: Arc<PartialRegistry>,
}

impl Partial {
    pub fn info(&self) -> &PartialInfo {
        &self.info
    }

    /// Bytes written so far (where the upload resumes).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in the file now, readable by others (the upload's first bytes): direct writes
    /// keep the last ones in their buffer until it is full, flushed or parked (`direct.rs`).
    pub fn readable(&self) -> u64 {
        self.len - self.direct.as_ref().map_or(0, |d| d.unwritten() as u64)
    }

    /// A copy of the bytes written and not in the file yet (after [`readable`](Self::readable)),
    /// at most a direct-write buffer's worth: what a reader of a live upload cannot read from
    /// the file.
    pub fn unwritten(&self) -> Vec<u8> {
        self.direct
            .as_ref()
            .map_or(Vec::new(), |d| d.unwritten_bytes().to_vec())
    }

    /// Bytes known to be fsync'ed.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Whether every byte written is known to be fsync'ed (a sealed upload's are).
    pub(crate) fn is_durable(&self) -> bool {
        self.durable == self.len
    }

    /// Path of the partial file (readers of a live instance read its earlier bytes from here).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Append bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some(d) = &mut self.direct {
            match d.write(&self.file, bytes) {
                Ok(()) => {
                    self.len += bytes.len() as u64;
                    // Nothing for the kernel to write back: direct writes skip the page cache.
                    self.written_back = self.len;
                    return Ok(());
                }
                Err(DirectError::Refused { taken }) => {
                    tracing::debug!(path = %self.path.display(), "direct writes refused here: through the page cache");
                    if let Some(d) = self.direct.take() {
                        d.fall_back(&self.file, &bytes[taken..])
                            .map_err(StoreError::io("write", &self.path))?;
                    }
                    self.len += bytes.len() as u64;
                    return Ok(());
                }
                Err(DirectError::Io(e)) => {
                    self.abandon_direct();
                    return Err(StoreError::io("write", &self.path)(e));
                }
            }
        }
        if let Err(e) = self.file.write_all_at(bytes, self.len) {
            // A short write may have appended part of `bytes`: keep the file at what we count.
            // (If even that fails, nothing is lost: a resumed upload starts from the file's
            // length and the final hash check refuses anything wrong.)
            if let Err(k) = self.file.set_len(self.len) {
                tracing::warn!(path = %self.path.display(), "cannot cut a failed write back: {k}");
            }
            return Err(StoreError::io("write", &self.path)(e));
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Put every byte written into the file and go on writing directly (a checkpoint).
    fn flush_writes(&mut self) -> Result<(), StoreError> {
        self.direct_step(DirectWriter::flush)
    }

    /// The upload waits for its data: every byte written goes into the file and the direct
    /// writer's buffer back to the store (`direct.rs`). Nothing to do for buffered writes.
    pub fn park(&mut self) -> Result<(), StoreError> {
        self.direct_step(DirectWriter::park)
    }

    fn direct_step(
        &mut self,
        step: impl FnOnce(&mut DirectWriter, &File) -> Result<(), DirectError>,
    ) -> Result<(), StoreError> {
        let Some(d) = &mut self.direct else {
            return Ok(());
        };
        match step(d, &self.file) {
            Ok(()) => Ok(()),
            Err(DirectError::Refused { .. }) => {
                tracing::debug!(path = %self.path.display(), "direct writes refused here: through the page cache");
                match self.direct.take() {
                    Some(d) => d
                        .fall_back(&self.file, &[])
                        .map_err(StoreError::io("write", &self.path)),
                    None => Ok(()),
                }
            }
            Err(DirectError::Io(e)) => {
                self.abandon_direct();
                Err(StoreError::io("write", &self.path)(e))
            }
        }
    }

    /// A direct write failed (a full disk): from now on the partial is what its file holds.
    /// The gathered bytes are dropped, none of them acknowledged (a checkpoint flushes
    /// first), so that closing the upload does not write them into a disk that just ran full,
    /// taking the room the relay freed for its index and deliveries (the ballast,
    /// `yilian-ingest`'s `storage.rs`). A resumed upload starts at the file's length.
    fn abandon_direct(&mut self) {
        if let Some(d) = self.direct.take() {
            self.cut_back(d.in_file());
        }
    }

    /// The partial is its file's first `kept` bytes, no more.
    fn cut_back(&mut self, kept: u64) {
        if let Err(e) = self.file.set_len(kept) {
            tracing::warn!(path = %self.path.display(), "cannot cut a failed write back: {e}");
        }
        self.len = kept;
        self.durable = self.durable.min(kept);
        self.written_back = self.written_back.min(kept);
    }

    /// From now on, write through the page cache (someone reads this upload soon: its bytes
    /// are then in memory for them, not only on the disk). What a direct writer gathered goes
    /// into the file first.
    pub fn write_through_cache(&mut self) -> Result<(), StoreError> {
        let Some(kept) = self.direct.as_ref().map(|d| d.in_file()) else {
            return Ok(());
        };
        let r = self.complete_writes();
        if r.is_err() {
            self.cut_back(kept);
        }
        r
    }

    /// Put every byte written into the file (a direct writer keeps up to a buffer's worth;
    /// `direct.rs`) and leave direct mode. Before the file is sealed or committed.
    pub(crate) fn complete_writes(&mut self) -> Result<(), StoreError> {
        if let Some(d) = self.direct.take() {
            d.finish(&self.file)
                .map_err(StoreError::io("write", &self.path))?;
        }
        Ok(())
    }

    /// Ask the kernel to start writing back what was written since the last call, without
    /// waiting: the next [`sync`](Self::sync) then has little left to wait for.
    pub fn start_writeback(&mut self) {
        if self.len > self.written_back {
            crate::group::start_writeback_range(
                &self.file,
                self.written_back,
                self.len - self.written_back,
            );
            self.written_back = self.len;
        }
    }

    /// Bytes written since write-back was last started (or the file fsync'ed).
    pub fn not_written_back(&self) -> u64 {
        self.len - self.written_back
    }

    /// Whether [`Partial::seal`] can make this upload durable before its commit.
    pub fn is_sealable(&self) -> bool {
        self.sealable
    }

    /// Make the complete upload durable with one fsync, `tag` (what committing it again after
    /// a crash needs) attached; it is committed later, or after a restart from
    /// [`Store::sealed_leftovers`](crate::Store::sealed_leftovers). Only for a sealable partial.
    pub fn seal(&mut self, tag: &[u8]) -> Result<(), StoreError> {
        if !self.sealable {
            return Err(StoreError::Corrupt(
                "only a pooled scratch upload can be sealed".into(),
            ));
        }
        self.complete_writes()?;
        crate::sealed::seal(&self.file, &self.path, tag)?;
        self.durable = self.len;
        self.written_back = self.len;
        Ok(())
    }

    /// fsync the data written so far; returns the durable length. The first call also makes
    /// the sidecar and the folder entries durable.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        self.flush_writes()?;
        if !self.entries_durable {
            // The sidecar (what a resumed upload must offer) is written here, at the first
            // sync, not at creation: an upload committed before its first checkpoint never
            // creates nor removes one.
            let json =
                serde_json::to_vec(&self.info).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            write_replace(&self.sidecar, &json)?;
            File::open(&self.sidecar)
                .and_then(|f| f.sync_all())
                .map_err(StoreError::io("fsync", &self.sidecar))?;
            if let Some(d) = self.path.parent() {
                sync_dir(d)?;
            }
            self.entries_durable = true;
        }
        self.file
            .sync_data()
            .map_err(StoreError::io("fsync", &self.path))?;
        self.durable = self.len;
        self.written_back = self.len;
        Ok(self.durable)
    }

    /// Stream the bytes already in the file (a resumed upload re-hashes and re-validates them).
    pub fn replay<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.len == 0 {
            return Ok(());
        }
        // Replayed only right after it was opened: a partial with bytes writes through the
        // page cache.
        debug_assert!(self.direct.is_none());
        let mut file = File::open(&self.path).map_err(StoreError::io("open", &self.path))?;
        let mut buf = vec![0u8; self.len.min(1 << 20) as usize];
        let mut left = self.len;
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = file
                .read(&mut buf[..want])
                .map_err(StoreError::io("read", &self.path))?;
            if n == 0 {
                break;
            }
            f(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Start over from zero (after a hash mismatch).
    pub fn reset(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .map_err(StoreError::io("truncate", &self.path))?;
        if let Some(d) = &mut self.direct {
            d.reset();
        }
        self.len = 0;
        self.durable = 0;
        self.written_back = 0;
        Ok(())
    }

    /// The upload stopped (its stream went away): keep what arrived, durable, for a resumed
    /// upload, or remove the partial if nothing arrived (an offer that never sent data leaves
    /// nothing behind).
    pub fn close(mut self) -> Result<(), StoreError> {
        if self.len == 0 {
            self.discard();
            return Ok(());
        }
        self.sync().map(|_| ())
    }

    /// Throw the partial away (the upload was refused for good).
    pub fn discard(self) {
        remove_files(&self.path, &self.sidecar);
        self.registry.forget(&self.key);
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        self.registry.release(&self.key);
    }
}

/// Remove a partial's files; a file already gone is fine, anything else is logged.
pub(crate) fn remove_files(part: &std::path::Path, sidecar: &std::path::Path) {
    remove_file(part);
    remove_file(sidecar);
}

/// Remove one file of a partial; a file already gone is fine, anything else is logged.
pub(crate) fn remove_file(p: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(p) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %p.display(), "cannot remove a partial upload: {e}");
        }
    }
}

/// The file names of the partial for `(site, sop_uid)`.
pub(crate) fn key(source_site: &str, sop_uid: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(source_site.as_bytes());
    h.update(&[0]);
    h.update(sop_uid.as_bytes());
    h.finalize().to_hex().to_string()
}

/// A partial that is never resumed (its size or study is unknown until the end, as for a
/// C-STORE): `scratch/<key>-<n>.part`, no sidecar, not counted against the site's cap (its
/// upload is bounded by `max_instance_bytes`), and every one left over is removed when the
/// store opens.
pub(crate) fn open_scratch(
    dir: &std::path::Path,
    pool: &crate::sealed::Pool,
    source_site: &str,
    sop_uid: &str,
    n: u64,
    registry: &Arc<PartialRegistry>,
    buffers: &Arc<Buffers>,
) -> Result<Partial, StoreError> {
    let key = format!("{}-{n}", key(source_site, sop_uid));
    let (path, file, sealable) = match pool.take()? {
        Some((path, file)) => (path, file, true),
        None => {
            let path = dir.join(format!("{key}.part"));
            let file = private_options()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(StoreError::io("create", &path))?;
            (path, file, false)
        }
    };
    let direct = if sealable {
        DirectWriter::start(&file, buffers).map(Box::new)
    } else {
        None
    };
    let mut p = scratch_partial(path, file, key, source_site, sop_uid, 0, sealable, registry)?;
    p.direct = direct;
    Ok(p)
}

/// A sealed upload left by a crash, to be committed again (`sealed.rs`).
pub(crate) fn adopt_sealed(
    path: &std::path::Path,
    source_site: &str,
    sop_uid: &str,
    registry: &Arc<PartialRegistry>,
) -> Result<Partial, StoreError> {
    let file = private_options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(StoreError::io("open", path))?;
    let len = file.metadata().map_err(StoreError::io("stat", path))?.len();
    let key = format!("{}-sealed", key(source_site, sop_uid));
    // Not counted as durable: a crash between its tag and its fsync leaves a tagged file whose
    // bytes may not have reached the disk, so the commit fsyncs it (at no cost if they have).
    scratch_partial(
        path.to_path_buf(),
        file,
        key,
        source_site,
        sop_uid,
        len,
        true,
        registry,
    )
}

#[allow(clippy::too_many_arguments)]
fn scratch_partial(
    path: PathBuf,
    file: File,
    key: String,
    source_site: &str,
    sop_uid: &str,
    len: u64,
    sealable: bool,
    registry: &Arc<PartialRegistry>,
) -> Result<Partial, StoreError> {
    Ok(Partial {
        info: PartialInfo {
            source_site: source_site.to_string(),
            study_uid: String::new(),
            sop_uid: sop_uid.to_string(),
            size: 0,
        },
        key,
        sidecar: path.with_extension("none"),
        path,
        file,
        len,
        durable: 0,
        written_back: len,
        // Never resumed: its folder entry need not survive a crash (commit renames it and
        // makes the objects folder durable; a pooled file's entry is durable already).
        entries_durable: true,
        sealable,
        direct: None,
        registry: registry.clone(),
    })
}

/// Remove every unpooled scratch file (at open: none of them can be resumed).
pub(crate) fn clear_scratch(dir: &std::path::Path) -> Result<usize, StoreError> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).map_err(StoreError::io("list", dir))? {
        let path = entry.map_err(StoreError::io("list", dir))?.path();
        if path.is_dir() {
            continue; // the pool (`sealed.rs`)
        }
        std::fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
        n += 1;
    }
    if n > 0 {
        sync_dir(dir)?;
    }
    Ok(n)
}

pub(crate) fn open(
    dir: &std::path::Path,
    info: PartialInfo,
    registry: &Arc<PartialRegistry>,
    buffers: &Arc<Buffers>,
) -> Result<Partial, StoreError> {
    let key = key(&info.source_site, &info.sop_uid);
    let path = dir.join(format!("{key}.part"));
    let sidecar = dir.join(format!("{key}.json"));
    registry.claim(dir, &key, &info)?;
    let opened = open_files(&path, &sidecar, &info);
    let (file, len, entries_durable) = match opened {
        Ok(v) => v,
        Err(e) => {
            registry.release(&key);
            return Err(e);
        }
    };
    // A new upload writes directly (`direct.rs`); one resumed with bytes already in its file
    // goes on through the page cache (its last block is not aligned).
    let direct = if len == 0 {
        DirectWriter::start(&file, buffers).map(Box::new)
    } else {
        None
    };
    Ok(Partial {
        info,
        key,
        path,
        sidecar,
        file,
        len,
        durable: 0,
        written_back: len,
        entries_durable,
        sealable: false,
        direct,
        registry: registry.clone(),
    })
}

/// Open (creating or resuming) the partial's files: the file, its length, and whether its
/// entries are already durable (a resumed partial's are).
fn open_files(
    path: &std::path::Path,
    sidecar: &std::path::Path,
    info: &PartialInfo,
) -> Result<(File, u64, bool), StoreError> {
    let previous: Option<PartialInfo> = std::fs::read(sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let resume = previous.as_ref() == Some(info);
    let mut file = private_options()
        .create(true)
        .read(true)
        .write(true)
        .truncate(!resume)
        .open(path)
        .map_err(StoreError::io("open", path))?;
    if !resume && previous.is_some() {
        // Another upload's description: gone before this one's bytes replace that one's (the
        // new sidecar is written at the first sync; see the module docs).
        remove_file(sidecar);
    }
    let mut len = file.metadata().map_err(StoreError::io("stat", path))?.len();
    if len > info.size {
        file.set_len(0).map_err(StoreError::io("truncate", path))?;
        len = 0;
    }
    file.seek(SeekFrom::Start(len))
        .map_err(StoreError::io("seek", path))?;
    if resume && len == 0 {
        // Nothing to trust about a partial that is empty on disk: its folder entry may not be
        // durable yet if the relay crashed right after creating it.
        if let Some(d) = path.parent() {
            sync_dir(d)?;
        }
    }
    Ok((file, len, resume))
}
