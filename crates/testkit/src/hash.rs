//! Hashing files the way the spool does (BLAKE3), streaming.

use std::fs::File;
use std::io;
use std::path::Path;

/// BLAKE3 of a whole file, read in a streaming fashion (flat memory whatever the size).
pub fn blake3_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?)?;
    Ok(*hasher.finalize().as_bytes())
}
