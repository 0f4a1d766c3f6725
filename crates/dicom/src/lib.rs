//! # DICOM for yilian: a push-based structure walker
//!
//! The relay receives DICOM Part 10 files as a byte stream over QUIC, in chunks of arbitrary
//! size. Before it acknowledges an upload it must know that the file is whole and well formed,
//! and to route it (and start forwarding it to readers while it still arrives) it needs a few
//! attributes from the header — all without ever buffering pixel data or loading the file.
//!
//! ## The model
//! [`Walker`] is a *sans-IO*, push-based state machine: the caller pushes each chunk with
//! [`Walker::feed`], as it arrives; the walker never asks for bytes and never blocks.
//!
//! ```text
//!  chunk ─▶ [inflate, only for a Deflated syntax] ─▶ structure parser ─▶ routing metadata
//!                                                     │
//!                                                     └─ header buffer (≤ 12 bytes), stack of
//!                                                        open sequences/items/fragments
//! ```
//!
//! * An element header split across chunks is staged in a 12-byte buffer; every value the relay
//!   does not need is skipped by counting its length down, so a chunk inside Pixel Data costs
//!   O(1) whatever its size, and nothing of it is kept.
//! * The routing attributes (see [`Metadata`]) are captured only at the top level of the
//!   dataset, each capped by [`Limits::max_attribute_len`]. As soon as the walker reaches a
//!   top-level element past (0028,FFFF) — normally Pixel Data — every one of them has been
//!   passed (elements are in ascending tag order) and [`Walker::metadata`] returns them, so the
//!   relay can route while the pixel data is still arriving.
//! * [`Walker::finish`] accepts the stream only if it ended at a top-level element boundary
//!   with nothing left open.
//!
//! dicom-rs's parsers are pull-based over `std::io::Read`: they would need a blocking reader on
//! the async receive path, or buffering of whole instances. The walker instead fits the relay's
//! receive loop directly. dicom-rs (`dicom-object`) serves as the oracle in this crate's tests.
//!
//! ## Catalog and character sets
//! Besides routing, the walker captures what C-FIND and QIDO search on ([`Catalog`]: patient,
//! study, series and instance attributes), all before Pixel Data. Text is decoded per the
//! Specific Character Set by [`charset`] (every DICOM defined term, ISO 2022 code extensions
//! such as `\ISO 2022 IR 58`, GB18030, GBK); [`Metadata::catalog_with_default`] decodes again
//! with a site's default for consoles that write GBK without declaring it. A catalog value
//! longer than [`Limits::max_attribute_len`] is cut, never a reason to refuse a file.
//!
//! ## What is validated
//! * The 128-byte preamble and the `DICM` marker; the file meta information (explicit VR little
//!   endian, bounded by its group length (0002,0000) when present, otherwise by the first
//!   element outside group 0002).
//! * The dataset in its transfer syntax: Implicit VR Little Endian, Explicit VR Little Endian
//!   (also every encapsulated syntax: JPEG, JPEG-LS, JPEG 2000, RLE, ...), Explicit VR Big
//!   Endian, and Deflated Explicit VR Little Endian (inflated on the fly with `flate2`).
//!   Non-standard transfer syntaxes are refused as [`DicomError::Unsupported`].
//! * Every element header: known VR (explicit syntaxes), even length, inside the declared end
//!   of its enclosing item/sequence; ascending tag order at the top level.
//! * Sequences and items of defined and undefined length, nested up to [`Limits::max_depth`]:
//!   defined-length ones must end exactly at their declared end, undefined-length ones with the
//!   right delimiter. A UN element of undefined length is a sequence in implicit VR LE
//!   (CP-246). Encapsulated Pixel Data (at any depth, e.g. in an Icon Image Sequence): fragments
//!   of defined length, then a sequence delimiter.
//! * The SOP Class/Instance UIDs of the dataset agree with those of the file meta.
//!
//! In implicit VR, a *defined-length* sequence cannot be told from any other value without a
//! dictionary; its bytes are skipped as a whole (their length is still checked against the
//! enclosing containers). Values are not checked against their VR, except the routing ones the
//! walker decodes.
//!
//! ## Cut streams
//! A stream cut exactly after a complete top-level element is itself a valid DICOM file: the
//! walker cannot tell, and `finish` accepts it if the routing attributes came before the cut
//! (with `pixel_data` `None` when the cut came before Pixel Data). Truncation in transit is
//! caught by the size and hash that yilian/1 carries; a file truncated on disk before Pixel Data
//! is caught by nothing short of the original. [`inspect_file`] catches a file whose declared
//! Pixel Data runs past its end.
//!
//! ## Patient data
//! Names, patient IDs, birth dates, accession numbers, study IDs and referring physicians are
//! wrapped in [`Phi`], whose `Debug` and `Display` print `[redacted]`. Error messages never
//! contain values read from the file (except transfer syntax UIDs and malformed frame counts).
//!
//! ## Waveforms
//! [`waveform`] writes and reads whole waveform objects with dicom-rs (they are small: a 10 s
//! 12-lead ECG at 500 Hz is 120 kB). [`write_twelve_lead_ecg`] records a live ECG session as a
//! 12-Lead ECG Waveform object (Modality `ECG`, leads coded from CID 3001, sensitivities in µV),
//! refusing what the IOD forbids (more than 5 multiplex groups or 13 channels, more than 16,384
//! samples per channel, a frequency outside 200–1000 Hz: [`max_seconds_per_object`] says when
//! to start the next object of the series), and marks a session that ended abnormally with a
//! Waveform Annotation. [`read_waveforms`] decodes the multiplex groups of any waveform object
//! that arrives (12-lead, General ECG, Holter, …) into [`MultiplexGroup`]s a console can draw.

mod catalog;
pub mod charset;
mod error;
pub mod identifier;
mod inflate;
mod inspect;
mod metadata;
mod names;
mod phi;
mod structure;
mod syntax;
mod transcode;
mod vr;
mod walker;
pub mod waveform;

pub use catalog::{Catalog, CatalogInstance, CatalogPatient, CatalogSeries, CatalogStudy};
pub use charset::{Charset, CharsetError, SpecificCharacterSet, TextDecoder, TextVr};
pub use dicom_core::Tag;
pub use error::DicomError;
pub use inspect::{inspect_file, validate_file};
pub use metadata::{Metadata, Patient, PixelDataInfo};
pub use phi::Phi;
pub use transcode::ToImplicit;
pub use walker::{Limits, Walker};
pub use waveform::{
    lead_code, max_seconds_per_object, read_waveforms, read_waveforms_file, write_twelve_lead_ecg,
    Channel, EcgRecording, LeadCode, MultiplexGroup, WaveformError,
};

/// yilian's Implementation Class UID (0002,0012), in the file meta of every file yilian writes
/// (a UUID-derived 2.25 UID; `yilian_dimse` re-exports it).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.224629973064683841085022527841020077656";

/// yilian's Implementation Version Name (0002,0013), at most 16 characters.
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("YILIAN_", env!("CARGO_PKG_VERSION"));
