//! Transfer syntaxes: how the dataset after the file meta information is encoded.

use crate::error::DicomError;

/// Implicit VR Little Endian.
pub(crate) const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Big Endian (retired, still sent by old modalities).
pub(crate) const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
/// Deflated Explicit VR Little Endian.
pub(crate) const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
/// JPIP Referenced Deflate: also a deflated explicit VR little endian dataset.
pub(crate) const JPIP_REFERENCED_DEFLATE: &str = "1.2.840.10008.1.2.4.95";
/// Every standard transfer syntax UID starts with this.
const STANDARD_ROOT: &str = "1.2.840.10008.1.2.";

/// Byte order and VR form of element headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    ImplicitLittle,
    ExplicitLittle,
    ExplicitBig,
}

impl Encoding {
    pub(crate) fn is_explicit(self) -> bool {
        !matches!(self, Encoding::ImplicitLittle)
    }

    pub(crate) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Encoding::ExplicitBig => u16::from_be_bytes(b),
            _ => u16::from_le_bytes(b),
        }
    }

    pub(crate) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Encoding::ExplicitBig => u32::from_be_bytes(b),
            _ => u32::from_le_bytes(b),
        }
    }
}

/// How the dataset of a transfer syntax is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DatasetCoding {
    /// Read the bytes as they come, with this encoding.
    Plain(Encoding),
    /// Inflate (raw DEFLATE, RFC 1951) first; the result is Explicit VR Little Endian.
    Deflated,
}

/// Classifies a transfer syntax UID (already trimmed of padding).
///
/// All standard transfer syntaxes other than Implicit VR Little Endian, Explicit VR Big Endian
/// and the deflated ones encode the dataset in Explicit VR Little Endian; the compressed ones
/// (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE, MPEG, ...) only differ in that Pixel Data is
/// encapsulated, which the walker recognises by its undefined length.
pub(crate) fn classify(uid: &str) -> Result<DatasetCoding, DicomError> {
    match uid {
        IMPLICIT_VR_LE => Ok(DatasetCoding::Plain(Encoding::ImplicitLittle)),
        EXPLICIT_VR_BE => Ok(DatasetCoding::Plain(Encoding::ExplicitBig)),
        DEFLATED_EXPLICIT_VR_LE | JPIP_REFERENCED_DEFLATE => Ok(DatasetCoding::Deflated),
        _ if uid.starts_with(STANDARD_ROOT)
            && uid.len() > STANDARD_ROOT.len()
            && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
        {
            Ok(DatasetCoding::Plain(Encoding::ExplicitLittle))
        }
        _ => Err(DicomError::Unsupported {
            what: format!(
                "transfer syntax {} is not a standard DICOM transfer syntax, so yilian cannot \
                 check the file's structure; export it from the modality or PACS in a standard \
                 transfer syntax (e.g. Explicit VR Little Endian 1.2.840.10008.1.2.1)",
                printable(uid)
            ),
        }),
    }
}

/// A UID for a message: at most 64 characters, anything but digits and dots replaced.
pub(crate) fn printable(uid: &str) -> String {
    let shown: String = uid
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("\"{shown}\"")
}

#[cfg(test)]
mod tests {
    use super::{classify, DatasetCoding, Encoding};

    #[test]
    fn standard_syntaxes() {
        use DatasetCoding::*;
        use Encoding::*;
        let cases = [
            ("1.2.840.10008.1.2", Plain(ImplicitLittle)),
            ("1.2.840.10008.1.2.1", Plain(ExplicitLittle)),
            ("1.2.840.10008.1.2.2", Plain(ExplicitBig)),
            ("1.2.840.10008.1.2.4.50", Plain(ExplicitLittle)),
            ("1.2.840.10008.1.2.4.91", Plain(ExplicitLittle)),
            ("1.2.840.10008.1.2.5", Plain(ExplicitLittle)),
            ("1.2.840.10008.1.2.1.99", Deflated),
            ("1.2.840.10008.1.2.4.95", Deflated),
        ];
        for (uid, want) in cases {
            assert_eq!(classify(uid).ok(), Some(want), "{uid}");
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.840.10008.1.2.",
            "1.2.840.113619.5.2",
            "1.2.840.10008.1.2.x",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
    }
}
