//! The structure state machine: element headers, sequences, items and fragments, over the
//! *logical* byte stream (preamble, file meta information, then the dataset as read, or as
//! inflated for a Deflated transfer syntax).
//!
//! It keeps a 12-byte buffer for an element header split across chunks, a stack of open
//! containers (at most `2 * max_depth + 1` entries) and the captured routing values; every other
//! value is skipped by counting down its length, whatever the chunk sizes.

mod elements;
mod end;
mod header;

use dicom_core::Tag;

use crate::error::{malformed, DicomError};
use crate::metadata::{Captured, Field, Metadata};
use crate::names::describe;
use crate::syntax::Encoding;
use crate::vr::{self, VrClass};
use crate::Limits;

/// Length of the preamble before `DICM`.
const PREAMBLE_LEN: u64 = 128;
/// The undefined length.
const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
/// Every routing attribute has a smaller tag than this.
const LAST_ROUTING_GROUP_END: Tag = Tag(0x0028, 0xFFFF);

/// What the parser does with the next bytes.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Skipping the 128-byte preamble.
    Preamble,
    /// Reading the `DICM` marker into the header buffer.
    Magic,
    /// Reading an element header into the header buffer.
    Header,
    /// Counting down the bytes of a value nobody needs.
    Skip { remaining: u64 },
    /// Copying the bytes of a routing value.
    Capture { field: Field, remaining: u64 },
    /// The file meta information is over and the dataset is deflated: the walker must inflate
    /// the rest of the stream and push the inflated bytes.
    AwaitInflate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    Sequence,
    Item,
    /// Encapsulated pixel data: fragment items, then a sequence delimiter.
    Fragments,
}

/// An open container.
#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: FrameKind,
    /// The sequence's (or pixel data's) tag; for an item, its sequence's tag.
    tag: Tag,
    /// Offset of the container's header.
    offset: u64,
    /// Where a defined-length container ends.
    end: Option<u64>,
    /// The nearest defined end of this container or of any enclosing one.
    limit: Option<u64>,
    /// Encoding of the headers inside (a UN sequence of undefined length holds implicit VR LE).
    encoding: Encoding,
}

/// A decoded element header.
#[derive(Clone, Copy, Debug)]
struct Header {
    tag: Tag,
    /// Explicit VR bytes; `None` for implicit VR and for items/delimiters.
    vr: Option<[u8; 2]>,
    len: u32,
}

impl Header {
    fn vr_class(&self) -> Option<VrClass> {
        self.vr.and_then(vr::classify)
    }
}

/// The value being skipped or captured, for a message if the stream ends inside it.
#[derive(Clone, Copy, Debug)]
struct OpenValue {
    tag: Tag,
    len: u32,
    in_fragments: bool,
}

pub(crate) struct Parser {
    limits: Limits,
    /// Logical offset of the next byte.
    pos: u64,
    state: State,
    /// A header (or the `DICM` marker) split across chunks.
    hdr: [u8; 12],
    hdr_len: usize,
    /// Reading the file meta information group (explicit VR little endian).
    in_meta: bool,
    /// End of the file meta information, from its group length.
    meta_end: Option<u64>,
    last_meta_tag: Option<Tag>,
    dataset_encoding: Encoding,
    frames: Vec<Frame>,
    sequence_depth: u32,
    last_top_tag: Option<Tag>,
    open_value: Option<OpenValue>,
    captured: Captured,
    metadata: Option<Metadata>,
}

impl Parser {
    pub(crate) fn new(limits: Limits) -> Self {
        Parser {
            limits,
            pos: 0,
            state: State::Preamble,
            hdr: [0; 12],
            hdr_len: 0,
            in_meta: false,
            meta_end: None,
            last_meta_tag: None,
            dataset_encoding: Encoding::ExplicitLittle,
            frames: Vec::new(),
            sequence_depth: 0,
            last_top_tag: None,
            open_value: None,
            captured: Captured::default(),
            metadata: None,
        }
    }

    pub(crate) fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// Whether the parser stopped at the start of a deflated dataset.
    pub(crate) fn awaits_inflate(&self) -> bool {
        matches!(self.state, State::AwaitInflate)
    }

    /// Bytes of a value that can be dropped without being pushed (the caller seeks past them):
    /// non-zero only while an uninteresting value is being skipped.
    pub(crate) fn skippable(&self) -> u64 {
        match self.state {
            State::Skip { remaining } => remaining,
            _ => 0,
        }
    }

    /// Accounts for `n <= skippable()` bytes the caller dropped.
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), DicomError> {
        let n = n.min(self.skippable());
        if let State::Skip { remaining } = self.state {
            self.pos += n;
            if remaining == n {
                self.value_done()?;
            } else {
                self.state = State::Skip {
                    remaining: remaining - n,
                };
            }
        }
        Ok(())
    }

    /// Hands over to inflation: returns the bytes already taken as the start of a header (they
    /// are the first compressed bytes) and forgets them.
    pub(crate) fn begin_inflated(&mut self) -> ([u8; 12], usize) {
        let staged = (self.hdr, self.hdr_len);
        self.pos -= self.hdr_len as u64;
        self.hdr_len = 0;
        self.state = State::Header;
        staged
    }

    /// Consumes bytes; returns how many were consumed: all of them, unless the parser reached a
    /// deflated dataset (see [`Parser::awaits_inflate`]).
    pub(crate) fn push(&mut self, mut input: &[u8]) -> Result<usize, DicomError> {
        let total = input.len();
        loop {
            match self.state {
                State::Preamble => {
                    let n = take(PREAMBLE_LEN - self.pos, input.len());
                    if n == 0 {
                        break;
                    }
                    input = advance(input, n);
                    self.pos += n as u64;
                    if self.pos == PREAMBLE_LEN {
                        self.state = State::Magic;
                    }
                }
                State::Magic => {
                    if !self.fill_header(&mut input, 4) {
                        break;
                    }
                    if self.hdr[..4] != *b"DICM" {
                        return Err(DicomError::NotDicom {
                            reason: format!(
                                "no \"DICM\" marker at byte {PREAMBLE_LEN} (is this a raw dataset \
                                 without file meta information, or not DICOM at all?)"
                            ),
                        });
                    }
                    self.hdr_len = 0;
                    self.in_meta = true;
                    self.state = State::Header;
                }
                State::Header => {
                    if !self.read_header(&mut input)? {
                        break;
                    }
                }
                State::Skip { remaining } => {
                    let n = take(remaining, input.len());
                    if n == 0 {
                        break;
                    }
                    input = advance(input, n);
                    self.pos += n as u64;
                    if remaining == n as u64 {
                        self.value_done()?;
                    } else {
                        self.state = State::Skip {
                            remaining: remaining - n as u64,
                        };
                    }
                }
                State::Capture { field, remaining } => {
                    let n = take(remaining, input.len());
                    if n == 0 {
                        break;
                    }
                    let (bytes, rest) = input.split_at_checked(n).unwrap_or((input, &[]));
                    self.captured.extend(field, bytes);
                    input = rest;
                    self.pos += n as u64;
                    if remaining == n as u64 {
                        self.value_done()?;
                    } else {
                        self.state = State::Capture {
                            field,
                            remaining: remaining - n as u64,
                        };
                    }
                }
                State::AwaitInflate => break,
            }
        }
        Ok(total - input.len())
    }

    /// Copies header bytes until `need` are staged; false if the input ran out first.
    fn fill_header(&mut self, input: &mut &[u8], need: usize) -> bool {
        let missing = need.saturating_sub(self.hdr_len);
        let n = missing.min(input.len());
        if let (Some(dst), Some(src)) = (
            self.hdr.get_mut(self.hdr_len..self.hdr_len + n),
            input.get(..n),
        ) {
            dst.copy_from_slice(src);
            self.hdr_len += n;
            self.pos += n as u64;
            *input = advance(input, n);
        }
        self.hdr_len >= need
    }

    /// Encoding of the next header.
    fn encoding(&self) -> Encoding {
        if self.in_meta {
            Encoding::ExplicitLittle
        } else {
            self.frames
                .last()
                .map_or(self.dataset_encoding, |f| f.encoding)
        }
    }

    /// Starts reading a defined-length value: captured if it is a routing attribute.
    fn begin_value(
        &mut self,
        h: Header,
        offset: u64,
        capture: Option<Field>,
        in_fragments: bool,
    ) -> Result<(), DicomError> {
        check_even(h, offset)?;
        let len = u64::from(h.len);
        self.state = match capture {
            Some(field) => {
                let limit = self.limits.max_attribute_len;
                // A catalog attribute that is too long is cut, not refused: routing does not
                // need it and the file is stored as received.
                if h.len > limit && !field.is_catalog_only() {
                    return Err(DicomError::TooLarge {
                        offset,
                        what: format!("{} declares {len} bytes", field.describe()),
                        limit: u64::from(limit),
                    });
                }
                self.captured.begin(
                    field,
                    offset,
                    usize::try_from(len.min(u64::from(limit))).unwrap_or(0),
                );
                State::Capture {
                    field,
                    remaining: len,
                }
            }
            None => State::Skip { remaining: len },
        };
        self.open_value = Some(OpenValue {
            tag: h.tag,
            len: h.len,
            in_fragments,
        });
        if len == 0 {
            self.value_done()?;
        }
        Ok(())
    }

    /// The value being skipped or captured is complete.
    fn value_done(&mut self) -> Result<(), DicomError> {
        if let State::Capture { field, .. } = self.state {
            match field {
                Field::MetaGroupLength => {
                    self.meta_end = self
                        .captured
                        .meta_group_length()
                        .map(|len| self.pos + u64::from(len));
                }
                _ if self.limits.meta_must_match => self.captured.check_against_meta(field)?,
                _ => {}
            }
        }
        self.open_value = None;
        self.state = State::Header;
        self.element_done()
    }

    /// An element is complete: close every defined-length container that ends here.
    fn element_done(&mut self) -> Result<(), DicomError> {
        while let Some(f) = self.frames.last() {
            if f.end != Some(self.pos) {
                break;
            }
            self.pop_frame();
        }
        Ok(())
    }

    fn push_frame(
        &mut self,
        kind: FrameKind,
        tag: Tag,
        offset: u64,
        end: Option<u64>,
        encoding: Encoding,
    ) -> Result<(), DicomError> {
        if kind == FrameKind::Sequence {
            if self.sequence_depth >= self.limits.max_depth {
                return Err(DicomError::TooLarge {
                    offset,
                    what: format!(
                        "{} opens sequence level {}",
                        describe(tag),
                        u64::from(self.sequence_depth) + 1
                    ),
                    limit: u64::from(self.limits.max_depth),
                });
            }
            self.sequence_depth += 1;
        }
        let limit = end.or_else(|| self.frames.last().and_then(|f| f.limit));
        self.frames.push(Frame {
            kind,
            tag,
            offset,
            end,
            limit,
            encoding,
        });
        Ok(())
    }

    fn pop_frame(&mut self) {
        if let Some(f) = self.frames.pop() {
            if f.kind == FrameKind::Sequence {
                self.sequence_depth = self.sequence_depth.saturating_sub(1);
            }
        }
    }

    /// Refuses an element that would make the part before the routing metadata exceed
    /// `max_header_len`.
    fn check_header_limit(&self, h: Header, offset: u64) -> Result<(), DicomError> {
        let max = self.limits.max_header_len;
        let end = self.pos
            + if h.len == UNDEFINED {
                0
            } else {
                u64::from(h.len)
            };
        if end > max {
            return Err(DicomError::TooLarge {
                offset,
                what: format!(
                    "the routing attributes must all come within the first {max} bytes \
                     (before Pixel Data), but {} at byte {offset} ends at byte {end} and they \
                     are not all there yet",
                    describe(h.tag)
                ),
                limit: max,
            });
        }
        Ok(())
    }
}

/// `min(remaining, available)` as a slice length.
fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// The input after its first `n` bytes (`n <= input.len()` by construction).
fn advance(input: &[u8], n: usize) -> &[u8] {
    input.get(n..).unwrap_or_default()
}

fn length_text(len: u32) -> String {
    if len == UNDEFINED {
        "undefined".to_owned()
    } else {
        format!("{len} bytes")
    }
}

fn check_even(h: Header, offset: u64) -> Result<(), DicomError> {
    if h.len % 2 == 1 {
        return Err(malformed(
            offset,
            format!(
                "{} has an odd length ({} bytes); DICOM values always have an even length",
                describe(h.tag),
                h.len
            ),
        ));
    }
    Ok(())
}

fn out_of_order(offset: u64, tag: Tag, prev: Tag) -> DicomError {
    malformed(
        offset,
        format!(
            "{} comes after {}: elements must be in ascending tag order (the file is damaged \
             or was edited badly)",
            describe(tag),
            describe(prev)
        ),
    )
}
