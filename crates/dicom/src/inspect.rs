//! Reading files from disk: the sender's quick header check and the full validation.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::DicomError;
use crate::metadata::Metadata;
use crate::syntax::{DEFLATED_EXPLICIT_VR_LE, JPIP_REFERENCED_DEFLATE};
use crate::walker::{Limits, Walker};

/// Read size of [`inspect_file`]: small, so that little is read past the Pixel Data header.
const INSPECT_CHUNK: usize = 8 * 1024;
/// Read size of [`validate_file`].
const VALIDATE_CHUNK: usize = 64 * 1024;
/// [`inspect_file`] seeks over skipped values larger than this instead of reading them.
const SEEK_THRESHOLD: u64 = 64 * 1024;

/// Reads the header of a file (streaming, stops at Pixel Data: never reads pixel data) and
/// checks that a defined-length Pixel Data fits in the file; used by the sender before
/// uploading.
///
/// It reads 8 KiB at a time, so at most one such read goes past the Pixel Data header; large
/// values before Pixel Data that are not routing attributes are seeked over, not read. A file
/// without Pixel Data is walked to its end. A deflated dataset is walked to its end too: its
/// pixel data lies inside the compressed stream, so there is no shortcut.
pub fn inspect_file(path: &Path) -> Result<Metadata, DicomError> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut walker = Walker::new(Limits::default());
    let mut buf = vec![0u8; INSPECT_CHUNK];
    loop {
        if let Some(md) = walker.metadata() {
            if let Some(pixel) = md.pixel_data.filter(|_| !is_deflated(&md.transfer_syntax)) {
                if let Some(len) = pixel.length {
                    if pixel.value_offset.saturating_add(len) > file_len {
                        return Err(DicomError::Truncated {
                            offset: file_len,
                            inside: format!(
                                "inside Pixel Data (7FE0,0010), which declares {len} bytes"
                            ),
                        });
                    }
                }
                return Ok(md.clone());
            }
        }
        let skippable = walker
            .skippable()
            .min(file_len.saturating_sub(walker.position()));
        if skippable > SEEK_THRESHOLD {
            let offset = i64::try_from(skippable).unwrap_or(i64::MAX);
            file.seek(SeekFrom::Current(offset))?;
            walker.skip(u64::try_from(offset).unwrap_or(0))?;
            continue;
        }
        let n = read_some(&mut file, &mut buf)?;
        match buf.get(..n) {
            Some(chunk) if n > 0 => walker.feed(chunk)?,
            _ => return walker.finish(),
        }
    }
}

/// Walks a whole file (streaming, 64 KiB buffer): full structural validation + metadata.
pub fn validate_file(path: &Path) -> Result<Metadata, DicomError> {
    let mut file = File::open(path)?;
    let mut walker = Walker::new(Limits::default());
    let mut buf = vec![0u8; VALIDATE_CHUNK];
    loop {
        let n = read_some(&mut file, &mut buf)?;
        match buf.get(..n) {
            Some(chunk) if n > 0 => walker.feed(chunk)?,
            _ => return walker.finish(),
        }
    }
}

fn is_deflated(transfer_syntax: &str) -> bool {
    transfer_syntax == DEFLATED_EXPLICIT_VR_LE || transfer_syntax == JPIP_REFERENCED_DEFLATE
}

/// One `read`, retried on `Interrupted`.
fn read_some(file: &mut File, buf: &mut [u8]) -> Result<usize, DicomError> {
    loop {
        match file.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
