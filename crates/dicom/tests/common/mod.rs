//! Shared test support: stream builders, a reference layout parser, pydicom samples, the
//! dicom-object oracle, a seeded PRNG and feeding helpers.
#![allow(dead_code)]

pub mod build;
pub mod oracle;
pub mod prng;
pub mod pydicom;
pub mod reference;

use yilian_dicom::{DicomError, Limits, Metadata, Walker};

use prng::Prng;

/// Feeds `bytes` in chunks whose sizes come from `next_size`, then finishes.
pub fn walk_by(
    bytes: &[u8],
    limits: Limits,
    mut next_size: impl FnMut() -> usize,
) -> Result<Metadata, DicomError> {
    let mut w = Walker::new(limits);
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = next_size().clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        w.feed(chunk)?;
        assert_eq!(w.position(), (bytes.len() - tail.len()) as u64);
        rest = tail;
    }
    w.finish()
}

/// Feeds everything at once.
pub fn walk(bytes: &[u8]) -> Result<Metadata, DicomError> {
    walk_by(bytes, Limits::default(), || usize::MAX)
}

/// Feeds in chunks of `size`.
pub fn walk_chunked(bytes: &[u8], size: usize) -> Result<Metadata, DicomError> {
    walk_by(bytes, Limits::default(), || size)
}

/// Feeds in random chunk sizes (1..=max) from `seed`.
pub fn walk_random(bytes: &[u8], seed: u64, max: usize) -> Result<Metadata, DicomError> {
    let mut rng = Prng::new(seed);
    walk_by(bytes, Limits::default(), move || rng.range(1, max))
}

/// A comparable summary of a result, including the exposed patient values.
pub fn outcome(r: &Result<Metadata, DicomError>) -> String {
    match r {
        Ok(md) => format!(
            "Ok({md:?}, {:?}, {:?}, {:?})",
            md.patient.name.expose(),
            md.patient.id.expose(),
            md.patient.accession_number.expose()
        ),
        Err(e) => format!("Err({e})"),
    }
}

/// The metadata, or a panic naming the error.
pub fn ok(r: Result<Metadata, DicomError>, what: &str) -> Metadata {
    match r {
        Ok(md) => md,
        Err(e) => panic!("{what}: expected Ok, got {e}"),
    }
}
