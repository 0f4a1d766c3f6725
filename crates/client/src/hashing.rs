//! BLAKE3 of (a prefix of) a local file: what a resumed transfer already holds, or a whole
//! file to compare with the relay's copy. Blocking; call from `spawn_blocking`.

use std::io::Read;
use std::path::Path;

/// A hasher fed with the first `len` bytes of `path` (the whole file for `u64::MAX`); an error
/// if the file is shorter than a finite `len`.
pub(crate) fn hash_prefix(path: &Path, len: u64) -> std::io::Result<blake3::Hasher> {
    let mut h = blake3::Hasher::new();
    let file = std::fs::File::open(path)?;
    let n = std::io::copy(&mut file.take(len), &mut h)?;
    if len != u64::MAX && n < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than the part already transferred",
        ));
    }
    Ok(h)
}
