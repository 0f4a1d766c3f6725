//! Uploads in progress: one file per (source site, SOP Instance UID), resumable.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

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
    pub(crate) path: PathBuf,
    pub(crate) sidecar: PathBuf,
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) durable: u64,
    written_back: u64,
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

    /// Bytes known to be fsync'ed.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Path of the partial file (readers of a live instance read its earlier bytes from here).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Append bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(bytes)
            .map_err(StoreError::io("write", &self.path))?;
        self.len += bytes.len() as u64;
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

    /// fsync the data written so far; returns the durable length.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
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
        let mut file = File::open(&self.path).map_err(StoreError::io("open", &self.path))?;
        let mut buf = vec![0u8; 1 << 20];
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
            .and_then(|_| self.file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(StoreError::io("truncate", &self.path))?;
        self.len = 0;
        self.durable = 0;
        self.written_back = 0;
        Ok(())
    }

    /// Throw the partial away (the upload was refused for good).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.sidecar);
    }
}

pub(crate) fn open(dir: &std::path::Path, info: PartialInfo) -> Result<Partial, StoreError> {
    let key = {
        let mut h = blake3::Hasher::new();
        h.update(info.source_site.as_bytes());
        h.update(&[0]);
        h.update(info.sop_uid.as_bytes());
        h.finalize().to_hex()
    };
    let path = dir.join(format!("{key}.part"));
    let sidecar = dir.join(format!("{key}.json"));
    let previous: Option<PartialInfo> = std::fs::read(&sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let resume = previous.as_ref() == Some(&info);
    if !resume {
        let json = serde_json::to_vec(&info).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        std::fs::write(&sidecar, json).map_err(StoreError::io("write", &sidecar))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(!resume)
        .open(&path)
        .map_err(StoreError::io("open", &path))?;
    let mut len = file
        .metadata()
        .map_err(StoreError::io("stat", &path))?
        .len();
    if len > info.size {
        file.set_len(0).map_err(StoreError::io("truncate", &path))?;
        len = 0;
    }
    file.seek(SeekFrom::Start(len))
        .map_err(StoreError::io("seek", &path))?;
    Ok(Partial {
        info,
        path,
        sidecar,
        file,
        len,
        durable: 0,
        written_back: len,
    })
}
