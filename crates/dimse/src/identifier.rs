//! The one identifier the driver writes itself: the **Failed SOP Instance UID List**
//! (0008,0058) of a final C-GET or C-MOVE response (PS3.4 C.4.2.1.3.1 and C.4.3.1.3.1),
//! encoded in the transfer syntax of the C-GET/C-MOVE presentation context.
//!
//! Identifiers are small data sets, so this is a hand-written encoder (and a decoder, for
//! SCUs and tests) rather than a dependency on a whole DICOM object library.

use crate::transfer_syntaxes::{self, Kind, EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use bytes::Bytes;

/// Group of Failed SOP Instance UID List.
pub const FAILED_SOP_INSTANCE_UID_LIST_GROUP: u16 = 0x0008;
/// Element of Failed SOP Instance UID List.
pub const FAILED_SOP_INSTANCE_UID_LIST_ELEMENT: u16 = 0x0058;

/// The largest value we write: what an explicit VR UI element can hold (16-bit length, even).
pub const MAX_LIST_LENGTH: usize = 0xFFFE;

/// How a data set is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    ImplicitLittle,
    ExplicitLittle,
    ExplicitBig,
}

fn encoding(transfer_syntax: &str) -> Option<Encoding> {
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN {
        return Some(Encoding::ImplicitLittle);
    }
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN {
        return Some(Encoding::ExplicitBig);
    }
    match transfer_syntaxes::get(transfer_syntax)?.kind {
        // Encapsulated syntaxes encode the data set itself as Explicit VR Little Endian.
        Kind::Native | Kind::Encapsulated | Kind::Video => Some(Encoding::ExplicitLittle),
        Kind::Deflated => None,
    }
}

/// Encode an identifier holding only the Failed SOP Instance UID List, in `transfer_syntax`.
///
/// Returns the encoded identifier and how many UIDs it holds: the value is capped at
/// [`MAX_LIST_LENGTH`] bytes (about a thousand UIDs), later UIDs are left out (the failed
/// count in the response still counts them). `None` when `uids` is empty or the transfer
/// syntax is one we do not encode (deflated, unknown).
pub fn failed_sop_instance_uid_list(
    uids: &[String],
    transfer_syntax: &str,
) -> Option<(Bytes, usize)> {
    let enc = encoding(transfer_syntax)?;
    let mut value = Vec::new();
    let mut included = 0;
    for uid in uids {
        let extra = uid.len() + usize::from(included > 0);
        if value.len() + extra > MAX_LIST_LENGTH {
            break;
        }
        if included > 0 {
            value.push(b'\\');
        }
        value.extend_from_slice(uid.as_bytes());
        included += 1;
    }
    if included == 0 {
        return None;
    }
    if value.len() % 2 == 1 {
        value.push(0); // UI pads with NUL
    }
    let mut out = Vec::with_capacity(12 + value.len());
    let (group, element) = (
        FAILED_SOP_INSTANCE_UID_LIST_GROUP,
        FAILED_SOP_INSTANCE_UID_LIST_ELEMENT,
    );
    match enc {
        Encoding::ImplicitLittle => {
            out.extend_from_slice(&group.to_le_bytes());
            out.extend_from_slice(&element.to_le_bytes());
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        Encoding::ExplicitLittle => {
            out.extend_from_slice(&group.to_le_bytes());
            out.extend_from_slice(&element.to_le_bytes());
            out.extend_from_slice(b"UI");
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        Encoding::ExplicitBig => {
            out.extend_from_slice(&group.to_be_bytes());
            out.extend_from_slice(&element.to_be_bytes());
            out.extend_from_slice(b"UI");
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&value);
    Some((Bytes::from(out), included))
}

/// Find the Failed SOP Instance UID List in an identifier encoded in `transfer_syntax`
/// (top-level elements with defined lengths are skipped over). `None` if absent or if the
/// identifier cannot be walked (undefined lengths, deflated, truncated).
pub fn parse_failed_sop_instance_uid_list(
    identifier: &[u8],
    transfer_syntax: &str,
) -> Option<Vec<String>> {
    let enc = encoding(transfer_syntax)?;
    let u16_at = |b: &[u8], i: usize| -> Option<u16> {
        let s: [u8; 2] = b.get(i..i + 2)?.try_into().ok()?;
        Some(if enc == Encoding::ExplicitBig {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    };
    let u32_at = |b: &[u8], i: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if enc == Encoding::ExplicitBig {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    };
    let mut pos = 0usize;
    while pos < identifier.len() {
        let group = u16_at(identifier, pos)?;
        let element = u16_at(identifier, pos + 2)?;
        let (header, length) = match enc {
            Encoding::ImplicitLittle => (8, u32_at(identifier, pos + 4)?),
            Encoding::ExplicitLittle | Encoding::ExplicitBig => {
                let vr = identifier.get(pos + 4..pos + 6)?;
                let long = matches!(
                    vr,
                    b"OB"
                        | b"OD"
                        | b"OF"
                        | b"OL"
                        | b"OV"
                        | b"OW"
                        | b"SQ"
                        | b"SV"
                        | b"UC"
                        | b"UN"
                        | b"UR"
                        | b"UT"
                        | b"UV"
                );
                if long {
                    (12, u32_at(identifier, pos + 8)?)
                } else {
                    (8, u32::from(u16_at(identifier, pos + 6)?))
                }
            }
        };
        if length == u32::MAX {
            return None;
        }
        let start = pos + header;
        let end = start.checked_add(length as usize)?;
        let value = identifier.get(start..end)?;
        if (group, element)
            == (
                FAILED_SOP_INSTANCE_UID_LIST_GROUP,
                FAILED_SOP_INSTANCE_UID_LIST_ELEMENT,
            )
        {
            let text = std::str::from_utf8(value).ok()?;
            let text = text.trim_end_matches(['\0', ' ']);
            if text.is_empty() {
                return Some(Vec::new());
            }
            return Some(text.split('\\').map(|s| s.trim().to_string()).collect());
        }
        pos = end;
    }
    None
}
