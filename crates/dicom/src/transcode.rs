//! Explicit VR Little Endian → Implicit VR Little Endian, streaming (sans-IO).
//!
//! Implicit VR Little Endian is the one transfer syntax every DICOM peer must accept (PS3.5
//! §10.1), so a data set stored in Explicit VR Little Endian can always be delivered to a peer
//! that accepts no other: the relay's C-STORE egress and C-GET/C-MOVE sub-operations use this
//! when the peer chose Implicit VR LE for the class. Values are little endian in both syntaxes;
//! only element headers change:
//!
//! ```text
//! explicit  tag(4) VR(2) len(2)            → implicit  tag(4) len(4)
//! explicit  tag(4) VR(2) 00 00 len(4)      → implicit  tag(4) len(4)
//! ```
//!
//! * Sequences and items are written with **undefined length** and closed by their delimiters
//!   (a defined length would be wrong: the long-VR headers inside them shrink by 4 bytes).
//!   The end of a defined-length sequence or item is tracked by its offset in the input.
//! * A UN element of undefined length holds a sequence already encoded in Implicit VR LE
//!   (PS3.5 §6.2.2): its content is copied as is, following its items and delimiters.
//! * Group length elements (gggg,0000) are dropped: their values would no longer be right,
//!   and they are optional in a data set.
//! * Values stream through: memory is one element header, whatever the value sizes (a 1 GiB
//!   multi-frame goes through in the caller's pieces).
//!
//! Encapsulated pixel data (an OB/OW of undefined length) does not occur in a native syntax
//! and is refused, as is anything that is not well-formed Explicit VR LE.

use crate::error::{malformed, DicomError};
use crate::vr::{classify, describe, VrClass};

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
/// Deepest nesting of sequences and items accepted.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sequence,
    Item,
}

/// An open sequence or item.
#[derive(Clone, Copy, Debug)]
struct Open {
    kind: Kind,
    /// Input offset of its end, when its length is defined (a delimiter is written there).
    end: Option<u64>,
    /// Its content is Implicit VR LE already (inside a UN of undefined length).
    implicit: bool,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading an element header (`have` bytes of it staged).
    Header,
    /// Copying `left` bytes of a value.
    Value { left: u64 },
    /// Dropping `left` bytes (a group length's value).
    Skip { left: u64 },
}

/// Explicit VR LE data set in, Implicit VR LE data set out. Feed the data set (the bytes after
/// the file meta) in pieces of any size with [`ToImplicit::feed`], then call
/// [`ToImplicit::finish`].
#[derive(Debug)]
pub struct ToImplicit {
    state: State,
    header: [u8; 12],
    have: usize,
    /// Input bytes consumed.
    offset: u64,
    stack: Vec<Open>,
}

impl Default for ToImplicit {
    fn default() -> Self {
        Self::new()
    }
}

impl ToImplicit {
    pub fn new() -> ToImplicit {
        ToImplicit {
            state: State::Header,
            header: [0; 12],
            have: 0,
            offset: 0,
            stack: Vec::new(),
        }
    }

    /// Transcode `input`, appending to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DicomError> {
        while !input.is_empty() {
            match self.state {
                State::Value { left } | State::Skip { left } => {
                    let n = (left.min(input.len() as u64)) as usize;
                    if matches!(self.state, State::Value { .. }) {
                        out.extend_from_slice(&input[..n]);
                    }
                    input = &input[n..];
                    self.offset += n as u64;
                    let left = left - n as u64;
                    self.state = match self.state {
                        State::Value { .. } if left > 0 => State::Value { left },
                        State::Skip { .. } if left > 0 => State::Skip { left },
                        _ => State::Header,
                    };
                    if left == 0 {
                        self.close_ended(out)?;
                    }
                }
                State::Header => {
                    let want = self.header_len();
                    let n = (want - self.have).min(input.len());
                    self.header[self.have..self.have + n].copy_from_slice(&input[..n]);
                    self.have += n;
                    input = &input[n..];
                    if self.have == want {
                        // A short explicit header may turn out to be a long one: look again.
                        if self.header_len() == want {
                            self.element(out)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The data set ended: it must have ended between elements with nothing left open.
    pub fn finish(&self) -> Result<(), DicomError> {
        if self.have > 0 || !matches!(self.state, State::Header) {
            return Err(DicomError::Truncated {
                offset: self.offset + self.have as u64,
                inside: "an element".into(),
            });
        }
        if let Some(open) = self.stack.last() {
            return Err(DicomError::Truncated {
                offset: self.offset,
                inside: format!("a {:?} not closed", open.kind).to_lowercase(),
            });
        }
        Ok(())
    }

    /// Bytes of the element header being read, as far as the staged bytes tell.
    fn header_len(&self) -> usize {
        if self.have < 6 {
            return if self.have < 4 { 4 } else { 6 };
        }
        let (group, _) = self.tag();
        if group == 0xFFFE || self.implicit_here() {
            return 8;
        }
        match classify([self.header[4], self.header[5]]) {
            Some(c) if c.has_long_length() => 12,
            _ => 8,
        }
    }

    fn implicit_here(&self) -> bool {
        self.stack.last().is_some_and(|o| o.implicit)
    }

    fn tag(&self) -> (u16, u16) {
        (
            u16::from_le_bytes([self.header[0], self.header[1]]),
            u16::from_le_bytes([self.header[2], self.header[3]]),
        )
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.header[at],
            self.header[at + 1],
            self.header[at + 2],
            self.header[at + 3],
        ])
    }

    /// A whole header is staged: write its implicit form and decide what follows.
    fn element(&mut self, out: &mut Vec<u8>) -> Result<(), DicomError> {
        let at = self.offset;
        let len = self.have as u64;
        self.offset += len;
        self.have = 0;
        let (group, element) = self.tag();
        let tag = &self.header[..4];
        let tag = [tag[0], tag[1], tag[2], tag[3]];
        if group == 0xFFFE || self.implicit_here() {
            let length = self.u32_at(4);
            return self.implicit_element(at, (group, element), tag, length, out);
        }
        if matches!(self.stack.last(), Some(o) if o.kind == Kind::Sequence) {
            return Err(malformed(
                at,
                format!("({group:04X},{element:04X}) directly in a sequence, outside any item"),
            ));
        }
        let vr = [self.header[4], self.header[5]];
        let Some(class) = classify(vr) else {
            return Err(malformed(
                at,
                format!(
                    "({group:04X},{element:04X}) has VR {}: not Explicit VR Little Endian",
                    describe(vr)
                ),
            ));
        };
        let length = if class.has_long_length() {
            self.u32_at(8)
        } else {
            u32::from(u16::from_le_bytes([self.header[6], self.header[7]]))
        };
        if element == 0x0000 && length != UNDEFINED {
            // A group length: dropped (its value would be wrong now).
            self.state = State::Skip {
                left: u64::from(length),
            };
            if length == 0 {
                self.state = State::Header;
                self.close_ended(out)?;
            }
            return Ok(());
        }
        match (class, length) {
            (VrClass::Sequence, _) => {
                put(out, tag, UNDEFINED);
                self.open(at, Kind::Sequence, length, false, out)
            }
            (VrClass::Unknown, UNDEFINED) => {
                put(out, tag, UNDEFINED);
                self.open(at, Kind::Sequence, length, true, out)
            }
            (_, UNDEFINED) => Err(malformed(
                at,
                format!(
                    "({group:04X},{element:04X}) {} has an undefined length: encapsulated data in a native transfer syntax",
                    describe(vr)
                ),
            )),
            (_, length) => {
                put(out, tag, length);
                self.value(length, out)
            }
        }
    }

    /// An item, a delimiter, or an element inside a UN sequence (already implicit).
    fn implicit_element(
        &mut self,
        at: u64,
        (group, element): (u16, u16),
        tag: [u8; 4],
        length: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), DicomError> {
        let implicit = self.implicit_here();
        match (group, element) {
            ITEM => {
                if !matches!(self.stack.last(), Some(o) if o.kind == Kind::Sequence) {
                    return Err(malformed(at, "an item outside a sequence"));
                }
                if implicit && length != UNDEFINED {
                    // Already implicit: copied whole, its length stays right.
                    put(out, tag, length);
                    return self.value(length, out);
                }
                put(out, tag, UNDEFINED);
                self.open(at, Kind::Item, length, implicit, out)
            }
            ITEM_END | SEQUENCE_END => {
                let kind = if (group, element) == ITEM_END {
                    Kind::Item
                } else {
                    Kind::Sequence
                };
                match self.stack.last() {
                    Some(o) if o.kind == kind && o.end.is_none() => {
                        self.stack.pop();
                        put(out, tag, 0);
                        self.close_ended(out)
                    }
                    _ => Err(malformed(
                        at,
                        format!("({group:04X},{element:04X}) delimits nothing open here"),
                    )),
                }
            }
            _ if group == 0xFFFE => Err(malformed(
                at,
                format!("({group:04X},{element:04X}) is not an item or a delimiter"),
            )),
            _ if matches!(self.stack.last(), Some(o) if o.kind == Kind::Sequence) => {
                Err(malformed(
                    at,
                    format!("({group:04X},{element:04X}) directly in a sequence, outside any item"),
                ))
            }
            // Inside a UN sequence: an undefined length opens a nested sequence.
            _ if length == UNDEFINED => {
                put(out, tag, UNDEFINED);
                self.open(at, Kind::Sequence, length, true, out)
            }
            _ => {
                put(out, tag, length);
                self.value(length, out)
            }
        }
    }

    fn value(&mut self, length: u32, out: &mut Vec<u8>) -> Result<(), DicomError> {
        if length == 0 {
            self.state = State::Header;
            return self.close_ended(out);
        }
        self.state = State::Value {
            left: u64::from(length),
        };
        Ok(())
    }

    fn open(
        &mut self,
        at: u64,
        kind: Kind,
        length: u32,
        implicit: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DicomError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(malformed(
                at,
                format!("sequences nested deeper than {MAX_DEPTH}"),
            ));
        }
        let end = (length != UNDEFINED).then(|| self.offset + u64::from(length));
        if let (Some(end), Some(outer)) = (end, self.stack.iter().rev().find_map(|o| o.end)) {
            if end > outer {
                return Err(malformed(
                    at,
                    "a sequence or item runs past the end of the one it is in",
                ));
            }
        }
        self.stack.push(Open {
            kind,
            end,
            implicit,
        });
        self.state = State::Header;
        self.close_ended(out)
    }

    /// Close every defined-length sequence or item that ends here, writing its delimiter.
    fn close_ended(&mut self, out: &mut Vec<u8>) -> Result<(), DicomError> {
        while let Some(open) = self.stack.last().copied() {
            let Some(end) = open.end else {
                return Ok(());
            };
            if self.offset < end {
                return Ok(());
            }
            if self.offset > end {
                return Err(malformed(
                    self.offset,
                    "an element runs past the end of its sequence or item",
                ));
            }
            self.stack.pop();
            let (group, element) = match open.kind {
                Kind::Item => ITEM_END,
                Kind::Sequence => SEQUENCE_END,
            };
            let mut tag = [0u8; 4];
            tag[..2].copy_from_slice(&group.to_le_bytes());
            tag[2..].copy_from_slice(&element.to_le_bytes());
            put(out, tag, 0);
        }
        Ok(())
    }
}

/// An implicit VR LE header: tag, then a 4-byte length.
fn put(out: &mut Vec<u8>, tag: [u8; 4], length: u32) {
    out.extend_from_slice(&tag);
    out.extend_from_slice(&length.to_le_bytes());
}
