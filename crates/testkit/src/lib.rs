//! Test support for yilian: generated DICOM fixtures, and a measured QUIC transfer over the
//! link emulator ([`quic_transfer`]).
//!
//! # Model
//!
//! No binary fixture is checked in: tests and benches **generate** the DICOM files they need,
//! deterministically, with code in this crate. A [`StudySpec`] describes a synthetic patient and
//! study (Chinese patient name in UTF-8, UIDs under [`TEST_UID_ROOT`]); generators write
//! instances of that study and return a [`Generated`] per file (path, UIDs, size, BLAKE3).
//!
//! | generator | SOP class | shape |
//! |---|---|---|
//! | [`ct_series`] | CT Image Storage | `n` slices, 16-bit signed, rescale −1024 |
//! | [`dx_image`] | Digital X-Ray For Presentation | one image, 16-bit, 12 bits stored |
//! | [`us_multiframe`] | Ultrasound Multi-frame | RGB 8-bit cine, `frames` frames |
//! | [`large_instance`] | Multi-frame Grayscale Word SC | ≥ `pixel_bytes` (up to ≈ 4 GiB), flat memory |
//! | [`not_dicom`], [`truncated_copy`], [`corrupt_length`] | — | bad inputs for rejection tests |
//!
//! Every file is DICOM Part 10, Explicit VR Little Endian, readable by dicom-rs, pydicom and
//! DCMTK. The same arguments (spec, sizes, seed) always give byte-identical files; another
//! seed gives other UIDs and pixels.
//!
//! # How files are written
//!
//! The data set without Pixel Data is built as a dicom-object [`InMemDicomObject`] and encoded
//! (preamble, file meta, data set) into memory. Pixel Data (7FE0,0010) follows with an explicit
//! 4-byte length, generated and written in pieces through a 1 MiB buffer that is hashed with
//! BLAKE3 as it is flushed. Memory use is therefore flat whatever the size, and pixels are cheap:
//! one PRNG row per slice/frame (xorshift), copied row after row with a shift — no per-pixel
//! arithmetic — so 300 CT slices of 512×512 take a fraction of a second in release.
//!
//! # QUIC transfers
//!
//! [`quic_transfer`] runs one quinn connection and one stream between real yilian endpoints,
//! over loopback or through the seeded UDP link emulator (`yilian-linkem`), and reports
//! goodput, QUIC-declared loss, the emulator's counters and the `bdp` controller's state: the
//! congestion tests of `yilian-transport` and `benches/congestion.rs` share it.
//!
//! [`InMemDicomObject`]: dicom_object::InMemDicomObject

mod bad;
mod ct;
mod dx;
mod fs;
mod generated;
mod hash;
mod header;
mod large;
pub mod quic_transfer;
mod rng;
mod spec;
mod us;
mod writer;

pub use bad::{corrupt_length, not_dicom, truncated_copy};
pub use ct::ct_series;
pub use dx::{dx_image, DX_BITS_STORED};
pub use fs::takes_direct_writes;
pub use generated::Generated;
pub use hash::blake3_file;
pub use large::{large_instance, LARGE_FRAME_BYTES, LARGE_FRAME_SIDE, LARGE_MAX_PIXEL_BYTES};
pub use rng::Rng;
pub use spec::{StudySpec, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, TEST_UID_ROOT};
pub use us::{us_multiframe, US_CINE_RATE};

/// Rejects empty images.
pub(crate) fn check_dimensions(rows: u16, cols: u16) -> std::io::Result<()> {
    if rows == 0 || cols == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("image size {rows}x{cols}: rows and columns must be at least 1"),
        ));
    }
    Ok(())
}
