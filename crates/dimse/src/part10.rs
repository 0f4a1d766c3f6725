//! The Part 10 file framing (PS3.10 §7.1): a 128-byte preamble, "DICM", and the File Meta
//! Information (group 0002, always Explicit VR Little Endian), then the data set.
//!
//! [`parse_file_meta`] finds what a sender needs (SOP class and instance, transfer syntax,
//! where the data set starts); [`file_meta`] writes the group for a data set received over
//! DIMSE, which arrives without one. Written by hand: no DICOM object model needed.

use crate::IMPLEMENTATION_CLASS_UID;
use crate::IMPLEMENTATION_VERSION_NAME;
use std::io::Read;
use std::path::Path;

/// What the File Meta Information says, and where the data set begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Media Storage SOP Class UID (0002,0002).
    pub sop_class: String,
    /// Media Storage SOP Instance UID (0002,0003).
    pub sop_instance: String,
    /// Transfer Syntax UID (0002,0010).
    pub transfer_syntax: String,
    /// Implementation Class UID (0002,0012).
    pub implementation_class_uid: Option<String>,
    /// Implementation Version Name (0002,0013).
    pub implementation_version_name: Option<String>,
    /// Source Application Entity Title (0002,0016).
    pub source_ae: Option<String>,
    /// Byte offset of the data set in the file.
    pub data_set_offset: u64,
}

/// Why a file's framing could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Part10Error {
    /// More bytes are needed (the prefix given ends inside the meta group).
    #[error("file meta information incomplete")]
    Incomplete,
    /// No "DICM" after the preamble.
    #[error("not a DICOM Part 10 file (no DICM prefix)")]
    NotPart10,
    /// A required element is missing.
    #[error("file meta information lacks {0}")]
    Missing(&'static str),
    /// The meta group is malformed.
    #[error("malformed file meta information: {0}")]
    Malformed(&'static str),
    /// Reading the file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

const PREAMBLE: usize = 128;
/// Largest meta group we read (real ones are a few hundred bytes).
const MAX_META: usize = 64 * 1024;

/// Parse the framing at the start of `prefix` (a file's first bytes; if the prefix ends right
/// after an element of a meta group that has no group length, that is the end of the file).
pub fn parse_file_meta(prefix: &[u8]) -> Result<FileMeta, Part10Error> {
    parse_file_meta_of(prefix, true)
}

/// [`parse_file_meta`] of the first bytes of a file that is still arriving: `whole` says
/// whether they are all of it. While more may follow, a prefix that ends right after an
/// element of a meta group without a group length is [`Part10Error::Incomplete`] (the next
/// bytes may be more of the group), not a file that ends there.
pub fn parse_file_meta_of(prefix: &[u8], whole: bool) -> Result<FileMeta, Part10Error> {
    if prefix.len() < PREAMBLE + 4 {
        return Err(Part10Error::Incomplete);
    }
    if &prefix[PREAMBLE..PREAMBLE + 4] != b"DICM" {
        return Err(Part10Error::NotPart10);
    }
    let mut pos = PREAMBLE + 4;
    let mut meta = FileMeta {
        sop_class: String::new(),
        sop_instance: String::new(),
        transfer_syntax: String::new(),
        implementation_class_uid: None,
        implementation_version_name: None,
        source_ae: None,
        data_set_offset: 0,
    };
    let mut end: Option<usize> = None;
    loop {
        if end == Some(pos) {
            break;
        }
        if pos + 8 > prefix.len() {
            if end.is_none() && pos == prefix.len() && whole {
                break; // a file with nothing after its meta group
            }
            return Err(Part10Error::Incomplete);
        }
        let group = u16::from_le_bytes([prefix[pos], prefix[pos + 1]]);
        let element = u16::from_le_bytes([prefix[pos + 2], prefix[pos + 3]]);
        if group != 0x0002 {
            if end.is_some() {
                return Err(Part10Error::Malformed(
                    "group length disagrees with elements",
                ));
            }
            break;
        }
        let vr = [prefix[pos + 4], prefix[pos + 5]];
        let long = matches!(
            &vr,
            b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN" | b"OD" | b"OL" | b"OV" | b"UC" | b"UR"
        );
        let (length, header) = if long {
            if pos + 12 > prefix.len() {
                return Err(Part10Error::Incomplete);
            }
            let l = u32::from_le_bytes([
                prefix[pos + 8],
                prefix[pos + 9],
                prefix[pos + 10],
                prefix[pos + 11],
            ]);
            (l as usize, 12)
        } else {
            (
                u16::from_le_bytes([prefix[pos + 6], prefix[pos + 7]]) as usize,
                8,
            )
        };
        if length > MAX_META {
            return Err(Part10Error::Malformed(
                "element longer than a meta group can be",
            ));
        }
        let value_at = pos + header;
        if value_at + length > prefix.len() {
            return Err(Part10Error::Incomplete);
        }
        let value = &prefix[value_at..value_at + length];
        let text = || {
            String::from_utf8_lossy(value)
                .trim_matches(|c: char| c == '\0' || c == ' ')
                .to_string()
        };
        match element {
            0x0000 if length == 4 => {
                let l = u32::from_le_bytes([value[0], value[1], value[2], value[3]]) as usize;
                if l > MAX_META {
                    return Err(Part10Error::Malformed("group length too large"));
                }
                end = Some(value_at + length + l);
            }
            0x0002 => meta.sop_class = text(),
            0x0003 => meta.sop_instance = text(),
            0x0010 => meta.transfer_syntax = text(),
            0x0012 => meta.implementation_class_uid = Some(text()),
            0x0013 => meta.implementation_version_name = Some(text()),
            0x0016 => meta.source_ae = Some(text()),
            _ => {}
        }
        pos = value_at + length;
        if end.is_some_and(|e| pos > e) {
            return Err(Part10Error::Malformed(
                "group length disagrees with elements",
            ));
        }
    }
    if meta.transfer_syntax.is_empty() {
        return Err(Part10Error::Missing("Transfer Syntax UID (0002,0010)"));
    }
    if meta.sop_class.is_empty() {
        return Err(Part10Error::Missing(
            "Media Storage SOP Class UID (0002,0002)",
        ));
    }
    if meta.sop_instance.is_empty() {
        return Err(Part10Error::Missing(
            "Media Storage SOP Instance UID (0002,0003)",
        ));
    }
    meta.data_set_offset = pos as u64;
    Ok(meta)
}

/// Read the framing of a file (only its first bytes are read).
pub fn read_file_meta(path: &Path) -> Result<FileMeta, Part10Error> {
    let file = std::fs::File::open(path)?;
    let mut prefix = Vec::new();
    file.take((PREAMBLE + 4 + MAX_META) as u64)
        .read_to_end(&mut prefix)?;
    parse_file_meta(&prefix)
}

/// The preamble, "DICM" and a File Meta Information group for a data set received over the
/// network: version 00\01, the SOP class and instance, the transfer syntax, yilian's
/// implementation class UID and version name, and the sender's AE title when known.
pub fn file_meta(
    sop_class: &str,
    sop_instance: &str,
    transfer_syntax: &str,
    source_ae: Option<&str>,
) -> Vec<u8> {
    let mut group = Vec::with_capacity(256);
    // (0002,0001) File Meta Information Version, OB: 00\01.
    group.extend_from_slice(&[0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0]);
    group.extend_from_slice(&2u32.to_le_bytes());
    group.extend_from_slice(&[0x00, 0x01]);
    short(&mut group, 0x0002, b"UI", sop_class, 0);
    short(&mut group, 0x0003, b"UI", sop_instance, 0);
    short(&mut group, 0x0010, b"UI", transfer_syntax, 0);
    short(&mut group, 0x0012, b"UI", IMPLEMENTATION_CLASS_UID, 0);
    short(&mut group, 0x0013, b"SH", IMPLEMENTATION_VERSION_NAME, b' ');
    if let Some(ae) = source_ae {
        short(&mut group, 0x0016, b"AE", ae, b' ');
    }
    let mut out = Vec::with_capacity(PREAMBLE + 4 + 12 + group.len());
    out.resize(PREAMBLE, 0);
    out.extend_from_slice(b"DICM");
    out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    out.extend_from_slice(&(group.len() as u32).to_le_bytes());
    out.extend_from_slice(&group);
    out
}

fn short(out: &mut Vec<u8>, element: u16, vr: &[u8; 2], value: &str, pad: u8) {
    let mut v = value.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(&v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meta group without its group length element (some writers leave it out), and a
    /// data set's first element after it.
    fn without_group_length() -> (Vec<u8>, usize) {
        let with = file_meta(
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4",
            "1.2.840.10008.1.2.1",
            None,
        );
        let mut v = with[..PREAMBLE + 4].to_vec();
        v.extend_from_slice(&with[PREAMBLE + 4 + 12..]);
        let meta_end = v.len();
        // (0008,0016) SOP Class UID, UI, "1.2\0".
        v.extend_from_slice(&[
            0x08, 0x00, 0x16, 0x00, b'U', b'I', 4, 0, b'1', b'.', b'2', 0,
        ]);
        (v, meta_end)
    }

    /// While a file is still arriving, no cut of its meta group is taken for the whole group
    /// (STOW-RS parts arrive in pieces that may end right after any element).
    #[test]
    fn a_prefix_cut_inside_the_meta_group_waits_for_more_while_more_may_come() {
        let (file, meta_end) = without_group_length();
        for cut in 0..meta_end {
            assert!(
                matches!(
                    parse_file_meta_of(&file[..cut], false),
                    Err(Part10Error::Incomplete)
                ),
                "cut at {cut}"
            );
        }
        for cut in meta_end + 8..=file.len() {
            let meta = parse_file_meta_of(&file[..cut], false).expect("the group is complete");
            assert_eq!(meta.transfer_syntax, "1.2.840.10008.1.2.1");
            assert_eq!(meta.data_set_offset, meta_end as u64);
        }
        // A whole file that is only its meta group still reads.
        let meta = parse_file_meta(&file[..meta_end]).expect("a file of its meta group alone");
        assert_eq!(meta.sop_instance, "1.2.3.4");
    }
}
