//! Why a stream or file was refused.
//!
//! Messages are read by radiographers and administrators: each one says what is wrong and at which
//! byte, and none ever contains patient data (names, IDs, accession numbers) or any other value
//! read from the file, except transfer syntax UIDs and numbers the walker itself computed.

use dicom_core::Tag;

/// Why a DICOM stream or file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DicomError {
    /// The bytes are not a DICOM Part 10 file at all (no preamble and `DICM` marker).
    #[error("not a DICOM file: {reason}")]
    NotDicom {
        /// What was found instead.
        reason: String,
    },
    /// The stream ended in the middle of something: the copy is incomplete.
    #[error("truncated: the file ends at byte {offset} {inside} — the copy is incomplete; send the original again")]
    Truncated {
        /// Where the stream ended (bytes consumed).
        offset: u64,
        /// What was still open, e.g. `inside Pixel Data (7FE0,0010), which declares 524288 bytes`.
        inside: String,
    },
    /// The structure is broken: lengths, tags or delimiters that cannot be right.
    #[error("malformed DICOM at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the element (or byte) at fault. For a Deflated transfer syntax, offsets
        /// after the file meta information count the *inflated* bytes.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A routing attribute that every instance must have is absent.
    #[error("missing attribute: the file has no {name} {tag}, which identifies the instance: yilian cannot store a file without it (export it again from the modality or PACS)")]
    MissingAttribute {
        /// The attribute's name, e.g. `Study Instance UID`.
        name: &'static str,
        /// The attribute's tag.
        tag: Tag,
    },
    /// A DICOMDIR (Media Storage Directory): the index of a CD or DVD export, not an instance.
    #[error("a DICOMDIR (the index of a CD or DVD export), not an image: the images it lists are separate files")]
    MediaDirectory,
    /// Two places in the file disagree (e.g. the file meta and the dataset).
    #[error("inconsistent DICOM at byte {offset}: {what}")]
    Inconsistent {
        /// Offset of the second of the two elements.
        offset: u64,
        /// What disagrees (no values, which may identify a study).
        what: String,
    },
    /// A limit of [`crate::Limits`] was exceeded.
    #[error("too large at byte {offset}: {what} (the limit is {limit})")]
    TooLarge {
        /// Where the limit was crossed.
        offset: u64,
        /// What is too large.
        what: String,
        /// The limit in force.
        limit: u64,
    },
    /// Well-formed as far as it goes, but something yilian does not handle.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported, and what to do about it.
        what: String,
    },
    /// Reading a file failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

impl DicomError {
    /// A copy of this error, for a walker that is asked again after it refused a stream.
    /// (`std::io::Error` is not `Clone`; an I/O error is copied by kind and message.)
    pub(crate) fn replay(&self) -> DicomError {
        match self {
            DicomError::NotDicom { reason } => DicomError::NotDicom {
                reason: reason.clone(),
            },
            DicomError::Truncated { offset, inside } => DicomError::Truncated {
                offset: *offset,
                inside: inside.clone(),
            },
            DicomError::Malformed { offset, reason } => DicomError::Malformed {
                offset: *offset,
                reason: reason.clone(),
            },
            DicomError::MissingAttribute { name, tag } => {
                DicomError::MissingAttribute { name, tag: *tag }
            }
            DicomError::MediaDirectory => DicomError::MediaDirectory,
            DicomError::Inconsistent { offset, what } => DicomError::Inconsistent {
                offset: *offset,
                what: what.clone(),
            },
            DicomError::TooLarge {
                offset,
                what,
                limit,
            } => DicomError::TooLarge {
                offset: *offset,
                what: what.clone(),
                limit: *limit,
            },
            DicomError::Unsupported { what } => DicomError::Unsupported { what: what.clone() },
            DicomError::Io(e) => DicomError::Io(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// Shorthand for the most common error.
pub(crate) fn malformed(offset: u64, reason: impl Into<String>) -> DicomError {
    DicomError::Malformed {
        offset,
        reason: reason.into(),
    }
}
