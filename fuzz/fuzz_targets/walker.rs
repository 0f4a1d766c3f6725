//! Feeds arbitrary bytes to the DICOM walker in arbitrary chunk splits. It must never panic,
//! and the chunking must not change the outcome.
//!
//! The first 8 bytes of the input seed the chunk sizes and the limits; the rest is the stream.
//! Run: `cd fuzz && cargo fuzz run walker` (nightly, or `RUSTC_BOOTSTRAP=1`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use yilian_dicom::{DicomError, Limits, Metadata, Walker};

#[path = "shared/sizes.rs"]
mod sizes;
use sizes::Sizes;

fn walk(data: &[u8], limits: &Limits, sizes: Option<&mut Sizes>) -> Result<Metadata, DicomError> {
    let mut w = Walker::new(limits.clone());
    match sizes {
        None => w.feed(data)?,
        Some(sizes) => {
            let mut rest = data;
            while !rest.is_empty() {
                let n = sizes.next(97).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                w.feed(chunk)?;
                let _ = w.metadata();
                rest = tail;
            }
        }
    }
    assert_eq!(w.position(), data.len() as u64);
    w.finish()
}

fn summary(r: &Result<Metadata, DicomError>) -> String {
    match r {
        Ok(md) => format!("{md:?} {:?}", md.patient.name.expose()),
        Err(e) => e.to_string(),
    }
}

fuzz_target!(|input: &[u8]| {
    let (seed, data) = input.split_at(input.len().min(8));
    let mut seed_bytes = [0u8; 8];
    seed_bytes[..seed.len()].copy_from_slice(seed);
    let seed = u64::from_le_bytes(seed_bytes);
    let limits = if seed & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_header_len: 256 + (seed >> 8) % 4096,
            max_attribute_len: 8 + ((seed >> 24) % 64) as u32,
            max_depth: 1 + ((seed >> 32) % 4) as u32,
            meta_must_match: seed & 2 == 2,
        }
    };
    let whole = walk(data, &limits, None);
    let chunked = walk(data, &limits, Some(&mut Sizes(seed | 1)));
    let deflated = data
        .windows(22)
        .any(|w| w == b"1.2.840.10008.1.2.1.99" || w == b"1.2.840.10008.1.2.4.95");
    if deflated {
        // Inside a deflate stream, an inflate error and a structure error may surface in
        // either order depending on the chunking: only accept/refuse must agree.
        assert_eq!(whole.is_ok(), chunked.is_ok());
    } else {
        assert_eq!(summary(&whole), summary(&chunked));
    }
});
