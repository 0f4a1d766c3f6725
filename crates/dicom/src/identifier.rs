//! Query identifiers: the small, flat data sets of C-FIND / C-MOVE / C-GET requests and their
//! answers (PS3.4 C.4), in Implicit or Explicit VR Little Endian.
//!
//! A request's identifier is parsed into its top-level elements (tag, VR, raw value); nested
//! sequences are skipped whole (a query by sequence matching is answered as if the key were
//! absent, which PS3.4 C.2.2.2.6 allows an SCP to do). An answer is encoded from elements the
//! caller builds, sorted by tag, each value padded to even length as its VR requires.
//!
//! Values are patient data: nothing here logs them, and errors name tags and offsets only.

/// One top-level element of an identifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Element {
    /// (group, element).
    pub tag: (u16, u16),
    /// The VR: as encoded (explicit), or from the caller's dictionary (implicit); `None` when
    /// an implicit-VR element's VR is unknown.
    pub vr: Option<[u8; 2]>,
    /// The raw value.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value may be a patient's name: never printed.
        write!(
            f,
            "({:04X},{:04X}) {} [{} bytes]",
            self.tag.0,
            self.tag.1,
            self.vr
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_else(|| "??".into()),
            self.value.len()
        )
    }
}

/// Why an identifier cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The data set ends inside an element.
    #[error("the identifier ends inside element ({0:04X},{1:04X}) at byte {2}")]
    Truncated(u16, u16, usize),
    /// An explicit VR that is not a DICOM VR.
    #[error("element ({0:04X},{1:04X}) has an unknown VR")]
    BadVr(u16, u16),
    /// A sequence nested deeper than any query needs.
    #[error("sequences nested too deep in the identifier")]
    TooDeep,
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const SEQ_END: (u16, u16) = (0xFFFE, 0xE0DD);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);

/// Parse an identifier's top-level elements. `explicit`: Explicit VR Little Endian (else
/// Implicit); `vr_of` gives the VR of a tag for implicit data (and to recognise sequences).
pub fn parse(
    bytes: &[u8],
    explicit: bool,
    vr_of: impl Fn((u16, u16)) -> Option<[u8; 2]>,
) -> Result<Vec<Element>, IdentifierError> {
    let mut r = Reader { b: bytes, pos: 0 };
    let mut out = Vec::new();
    while r.pos < bytes.len() {
        let (tag, vr, len) = r.header(explicit, &vr_of)?;
        if vr == Some(*b"SQ")
            || (len == UNDEFINED && !explicit)
            || (len == UNDEFINED && vr == Some(*b"UN"))
        {
            r.skip_sequence(tag, len, explicit, &vr_of, 0)?;
            continue;
        }
        let value = r.take(tag, len)?;
        if tag.0 == 0x0002 || tag.1 == 0x0000 {
            continue; // file meta or group length: not query keys
        }
        out.push(Element {
            tag,
            vr,
            value: value.to_vec(),
        });
    }
    Ok(out)
}

/// An element header: tag, VR (if known), value length.
type Header = ((u16, u16), Option<[u8; 2]>, u32);

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u16(&mut self, tag: (u16, u16)) -> Result<u16, IdentifierError> {
        let s = self
            .b
            .get(self.pos..self.pos + 2)
            .ok_or(IdentifierError::Truncated(tag.0, tag.1, self.pos))?;
        self.pos += 2;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self, tag: (u16, u16)) -> Result<u32, IdentifierError> {
        let s = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or(IdentifierError::Truncated(tag.0, tag.1, self.pos))?;
        self.pos += 4;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn header(
        &mut self,
        explicit: bool,
        vr_of: &impl Fn((u16, u16)) -> Option<[u8; 2]>,
    ) -> Result<Header, IdentifierError> {
        let g = self.u16((0, 0))?;
        let e = self.u16((g, 0))?;
        let tag = (g, e);
        if g == 0xFFFE || !explicit {
            let len = self.u32(tag)?;
            return Ok((tag, vr_of(tag), len));
        }
        let s = self
            .b
            .get(self.pos..self.pos + 2)
            .ok_or(IdentifierError::Truncated(g, e, self.pos))?;
        let vr = [s[0], s[1]];
        self.pos += 2;
        let class = crate::vr::classify(vr).ok_or(IdentifierError::BadVr(g, e))?;
        let len = if class.has_long_length() {
            self.pos += 2;
            self.u32(tag)?
        } else {
            u32::from(self.u16(tag)?)
        };
        Ok((tag, Some(vr), len))
    }

    fn take(&mut self, tag: (u16, u16), len: u32) -> Result<&[u8], IdentifierError> {
        let end = self
            .pos
            .checked_add(len as usize)
            .filter(|&e| e <= self.b.len() && len != UNDEFINED)
            .ok_or(IdentifierError::Truncated(tag.0, tag.1, self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Skip a sequence value (defined or undefined length), items and all.
    fn skip_sequence(
        &mut self,
        tag: (u16, u16),
        len: u32,
        explicit: bool,
        vr_of: &impl Fn((u16, u16)) -> Option<[u8; 2]>,
        depth: usize,
    ) -> Result<(), IdentifierError> {
        if depth > 16 {
            return Err(IdentifierError::TooDeep);
        }
        if len != UNDEFINED {
            self.take(tag, len)?;
            return Ok(());
        }
        loop {
            let (t, _, l) = self.header(explicit, vr_of)?;
            match t {
                SEQ_END => return Ok(()),
                ITEM if l != UNDEFINED => {
                    self.take(t, l)?;
                }
                ITEM => loop {
                    // An item of undefined length: elements until the item delimiter.
                    let (it, ivr, il) = self.header(explicit, vr_of)?;
                    if it == ITEM_END {
                        break;
                    }
                    if ivr == Some(*b"SQ") || il == UNDEFINED {
                        self.skip_sequence(it, il, explicit, vr_of, depth + 1)?;
                    } else {
                        self.take(it, il)?;
                    }
                },
                _ => return Err(IdentifierError::Truncated(tag.0, tag.1, self.pos)),
            }
        }
    }
}

/// Encode `elements` (sorted here by tag) as a data set in Explicit (`explicit`) or Implicit
/// VR Little Endian. Values of odd length are padded: with a NUL for UI (and binary VRs),
/// with a space for text.
pub fn encode(elements: &[Element], explicit: bool) -> Vec<u8> {
    let mut sorted: Vec<&Element> = elements.iter().collect();
    sorted.sort_by_key(|e| e.tag);
    let mut out = Vec::new();
    for el in sorted {
        let vr = el.vr.unwrap_or(*b"UN");
        let mut value = el.value.clone();
        if value.len() % 2 == 1 {
            value.push(match &vr {
                b"UI" | b"OB" | b"UN" => 0,
                _ => b' ',
            });
        }
        out.extend_from_slice(&el.tag.0.to_le_bytes());
        out.extend_from_slice(&el.tag.1.to_le_bytes());
        let long = crate::vr::classify(vr).is_none_or(|c| c.has_long_length());
        if explicit {
            out.extend_from_slice(&vr);
            if long {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            } else {
                out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            }
        } else {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(&value);
    }
    out
}

/// A text value without its padding (trailing spaces and NULs; leading spaces too, which
/// are not significant in the VRs a query uses).
pub fn text(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    let start = value[..end].iter().position(|&b| b != b' ').unwrap_or(end);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vr_of(tag: (u16, u16)) -> Option<[u8; 2]> {
        match tag {
            (0x0010, 0x0010) => Some(*b"PN"),
            (0x0020, 0x000D) => Some(*b"UI"),
            (0x0008, 0x0052) => Some(*b"CS"),
            (0x0008, 0x1110) => Some(*b"SQ"),
            _ => None,
        }
    }

    fn elements() -> Vec<Element> {
        vec![
            Element {
                tag: (0x0020, 0x000D),
                vr: Some(*b"UI"),
                value: b"1.2.3".to_vec(),
            },
            Element {
                tag: (0x0008, 0x0052),
                vr: Some(*b"CS"),
                value: b"STUDY".to_vec(),
            },
            Element {
                tag: (0x0010, 0x0010),
                vr: Some(*b"PN"),
                value: "王^小东".as_bytes().to_vec(),
            },
        ]
    }

    #[test]
    fn round_trips_in_both_syntaxes_with_padding() {
        for explicit in [true, false] {
            let bytes = encode(&elements(), explicit);
            let back = parse(&bytes, explicit, vr_of).unwrap();
            assert_eq!(back.len(), 3);
            assert_eq!(back[0].tag, (0x0008, 0x0052));
            assert_eq!(text(&back[0].value), b"STUDY");
            assert_eq!(text(&back[1].value), "王^小东".as_bytes());
            assert_eq!(back[2].value, b"1.2.3\0");
            assert_eq!(text(&back[2].value), b"1.2.3");
        }
    }

    #[test]
    fn sequences_are_skipped_whole() {
        // (0008,1110) SQ of undefined length with one item of undefined length holding a UI,
        // then Patient's Name: implicit VR.
        let mut b = Vec::new();
        b.extend_from_slice(&[0x08, 0x00, 0x10, 0x11, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(&[0x08, 0x00, 0x50, 0x11, 0x02, 0x00, 0x00, 0x00, b'1', 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, b'A', b' ']);
        let els = parse(&b, false, vr_of).unwrap();
        assert_eq!(els.len(), 1);
        assert_eq!(els[0].tag, (0x0010, 0x0010));
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_never_a_panic() {
        let good = encode(&elements(), true);
        for cut in 0..good.len() {
            // Either an error or fewer elements, never a panic.
            if let Ok(els) = parse(&good[..cut], true, vr_of) {
                assert!(els.len() < 3);
            }
        }
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let n = (x % 64) as usize;
            let mut b = Vec::with_capacity(n);
            for _ in 0..n {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b.push((x >> 16) as u8);
            }
            if let Ok(els) = parse(&b, x.is_multiple_of(2), vr_of) {
                assert!(els.iter().all(|e| e.value.len() <= b.len()));
            }
        }
        assert!(parse(&good[..good.len() - 1], true, vr_of).is_err());
    }
}
