//! Explicit → Implicit VR Little Endian (`yilian_dicom::ToImplicit`) fed arbitrary bytes as an
//! Explicit VR LE data set, whole and in seeded chunk splits.
//!
//! Properties: nothing panics; both runs give the same answer (the same bytes, or both an
//! error); output is only ever produced from input (at most 12 bytes of headers and delimiters
//! per 8 input bytes: a header never grows, each sequence or item adds one 8-byte delimiter).
//!
//! The first 8 bytes of the input seed the chunk sizes; the rest is the data set.
//! Run: `cd fuzz && cargo fuzz run transcode` (nightly, or `RUSTC_BOOTSTRAP=1`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use yilian_dicom::{DicomError, ToImplicit};

#[path = "shared/sizes.rs"]
mod sizes;
use sizes::Sizes;

fn transcode(data: &[u8], sizes: Option<&mut Sizes>) -> Result<Vec<u8>, DicomError> {
    let mut t = ToImplicit::new();
    let mut out = Vec::new();
    match sizes {
        None => t.feed(data, &mut out)?,
        Some(sizes) => {
            let mut rest = data;
            while !rest.is_empty() {
                let n = sizes.next(64).min(rest.len());
                t.feed(&rest[..n], &mut out)?;
                rest = &rest[n..];
            }
        }
    }
    t.finish()?;
    Ok(out)
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 8 {
        return;
    }
    let (seed, data) = input.split_at(8);
    let seed = u64::from_le_bytes(seed.try_into().unwrap_or([1; 8])) | 1;
    let whole = transcode(data, None);
    let chunked = transcode(data, Some(&mut Sizes(seed)));
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "chunking changed the output");
            assert!(
                a.len() <= data.len() / 8 * 12 + 16,
                "output out of proportion"
            );
        }
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} but chunked {chunked:?}"),
    }
});
