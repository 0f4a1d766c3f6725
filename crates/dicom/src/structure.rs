//! The structure state machine: element headers, sequences, items and fragments, over the
//! *logical* byte stream (preamble, file meta information, then the dataset as read, or as
//! inflated for a Deflated transfer syntax).
//!
//! It keeps a 12-byte buffer for an element header split across chunks, a stack of open
//! containers (at most `2 * max_depth + 1` entries) and the captured routing values; every other
//! value is skipped by counting down its length, whatever the chunk sizes.

use dicom_core::Tag;

use crate::error::{malformed, DicomError};
use crate::metadata::{Captured, Field, Metadata, PixelDataInfo};
use crate::names::describe;
use crate::syntax::{self, DatasetCoding, Encoding};
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

    /// Reads (the rest of) an element header and acts on it; false if the input ran out.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<bool, DicomError> {
        if self.in_meta && self.hdr_len == 0 && self.meta_end == Some(self.pos) {
            self.start_dataset()?;
            return Ok(true);
        }
        if !self.fill_header(input, 4) {
            return Ok(false);
        }
        let offset = self.pos - self.hdr_len as u64;
        if self.in_meta && u16::from_le_bytes([self.hdr[0], self.hdr[1]]) != 0x0002 {
            // Without a group length, the meta information ends at the first other group.
            if self.meta_end.is_none() && self.last_meta_tag.is_some() {
                self.start_dataset()?;
                return Ok(true);
            }
            let tag = Tag(
                u16::from_le_bytes([self.hdr[0], self.hdr[1]]),
                u16::from_le_bytes([self.hdr[2], self.hdr[3]]),
            );
            return Err(match self.last_meta_tag {
                None => malformed(
                    offset,
                    format!(
                        "the \"DICM\" marker is followed by {tag}, not by the file meta \
                         information group (0002,xxxx)"
                    ),
                ),
                Some(_) => malformed(
                    offset,
                    format!(
                        "{tag} lies inside the file meta information, whose group length says it \
                         ends at byte {}; only (0002,xxxx) elements may be there",
                        self.meta_end.unwrap_or_default()
                    ),
                ),
            });
        }
        let encoding = self.encoding();
        let tag = Tag(
            encoding.u16([self.hdr[0], self.hdr[1]]),
            encoding.u16([self.hdr[2], self.hdr[3]]),
        );
        let explicit_vr = encoding.is_explicit() && tag.0 != 0xFFFE;
        let need = if explicit_vr {
            if !self.fill_header(input, 6) {
                return Ok(false);
            }
            let vr = [self.hdr[4], self.hdr[5]];
            match vr::classify(vr) {
                Some(class) if class.has_long_length() => 12,
                Some(_) => 8,
                None => {
                    return Err(malformed(
                        offset,
                        format!(
                            "{} has the value representation {}, which does not exist (is the \
                             file really in the transfer syntax it declares?)",
                            describe(tag),
                            vr::describe(vr)
                        ),
                    ))
                }
            }
        } else {
            8
        };
        if !self.fill_header(input, need) {
            return Ok(false);
        }
        let h = &self.hdr;
        let header = match (explicit_vr, need) {
            (false, _) => Header {
                tag,
                vr: None,
                len: encoding.u32([h[4], h[5], h[6], h[7]]),
            },
            (true, 8) => Header {
                tag,
                vr: Some([h[4], h[5]]),
                len: u32::from(encoding.u16([h[6], h[7]])),
            },
            (true, _) => Header {
                tag,
                vr: Some([h[4], h[5]]),
                len: encoding.u32([h[8], h[9], h[10], h[11]]),
            },
        };
        self.hdr_len = 0;
        self.on_header(header, offset, encoding)?;
        Ok(true)
    }

    /// Switches from the file meta information to the dataset.
    fn start_dataset(&mut self) -> Result<(), DicomError> {
        let ts = self
            .captured
            .transfer_syntax()
            .ok_or(DicomError::MissingAttribute {
                name: "Transfer Syntax UID",
                tag: Tag(0x0002, 0x0010),
            })?;
        self.in_meta = false;
        match syntax::classify(&ts)? {
            DatasetCoding::Plain(encoding) => {
                self.dataset_encoding = encoding;
                self.state = State::Header;
            }
            DatasetCoding::Deflated => {
                self.dataset_encoding = Encoding::ExplicitLittle;
                self.state = State::AwaitInflate;
            }
        }
        Ok(())
    }

    fn on_header(&mut self, h: Header, offset: u64, encoding: Encoding) -> Result<(), DicomError> {
        let value_offset = self.pos;
        let defined = (h.len != UNDEFINED).then_some(u64::from(h.len));
        let limit = if self.in_meta {
            self.meta_end
        } else {
            self.frames.last().and_then(|f| f.limit)
        };
        if let Some(limit) = limit {
            let end = value_offset + defined.unwrap_or(0);
            if end > limit {
                return Err(malformed(
                    offset,
                    format!(
                        "{} (length {}) runs past the end of {} at byte {limit}",
                        describe(h.tag),
                        length_text(h.len),
                        self.container_text()
                    ),
                ));
            }
        }
        if self.in_meta {
            return self.on_meta_element(h, offset);
        }
        match self.frames.last().map(|f| f.kind) {
            Some(FrameKind::Fragments) => self.on_fragment(h, offset),
            Some(FrameKind::Sequence) => self.on_sequence_child(h, offset),
            Some(FrameKind::Item) | None => self.on_element(h, offset, encoding),
        }
    }

    /// "the file meta information", "the item of Referenced Image Sequence (0008,1140) begun at
    /// byte 700", ...
    fn container_text(&self) -> String {
        if self.in_meta {
            return "the file meta information".into();
        }
        match self.frames.last() {
            None => "the dataset".into(),
            Some(f) => match f.kind {
                FrameKind::Sequence => format!("{} begun at byte {}", describe(f.tag), f.offset),
                FrameKind::Item => format!(
                    "the enclosing item of {} (begun at byte {})",
                    describe(f.tag),
                    f.offset
                ),
                FrameKind::Fragments => {
                    format!(
                        "encapsulated {} begun at byte {}",
                        describe(f.tag),
                        f.offset
                    )
                }
            },
        }
    }

    fn on_meta_element(&mut self, h: Header, offset: u64) -> Result<(), DicomError> {
        if let Some(prev) = self.last_meta_tag {
            if h.tag <= prev {
                return Err(out_of_order(offset, h.tag, prev));
            }
        }
        if h.tag == Tag(0x0002, 0x0000) && (self.last_meta_tag.is_some() || h.len != 4) {
            return Err(malformed(
                offset,
                "the File Meta Information Group Length (0002,0000) must be the first element \
                 and 4 bytes long",
            ));
        }
        self.last_meta_tag = Some(h.tag);
        if h.len == UNDEFINED {
            return Err(malformed(
                offset,
                format!(
                    "{} has an undefined length, which the file meta information does not allow",
                    describe(h.tag)
                ),
            ));
        }
        self.check_header_limit(h, offset)?;
        self.begin_value(h, offset, Field::in_meta(h.tag), false)
    }

    /// An element at the top level of the dataset or inside an item.
    fn on_element(&mut self, h: Header, offset: u64, encoding: Encoding) -> Result<(), DicomError> {
        let top = self.frames.is_empty();
        if h.tag.0 == 0xFFFE {
            if h.tag == ITEM_DELIMITER && !top {
                let defined_item = self.frames.last().and_then(|f| f.end).is_some();
                if h.len != 0 || defined_item {
                    return Err(malformed(
                        offset,
                        if defined_item {
                            "an Item Delimitation Item (FFFE,E00D) closes an item of defined \
                             length"
                                .to_owned()
                        } else {
                            format!(
                                "an Item Delimitation Item (FFFE,E00D) has length {}, not 0",
                                length_text(h.len)
                            )
                        },
                    ));
                }
                self.pop_frame();
                return self.element_done();
            }
            return Err(malformed(
                offset,
                format!(
                    "{} where a data element was expected ({})",
                    describe(h.tag),
                    if top {
                        "at the top level of the dataset".to_owned()
                    } else {
                        format!("in {}", self.container_text())
                    }
                ),
            ));
        }
        if top {
            if let Some(prev) = self.last_top_tag {
                if h.tag <= prev {
                    return Err(out_of_order(offset, h.tag, prev));
                }
            }
            self.last_top_tag = Some(h.tag);
            if self.metadata.is_none() && h.tag > LAST_ROUTING_GROUP_END {
                self.metadata = Some(self.captured.build()?);
                // The raw values (patient data among them) are no longer needed.
                self.captured = Captured::default();
            }
        }
        if self.metadata.is_none() {
            self.check_header_limit(h, offset)?;
        }
        let class = h.vr_class();
        if top && h.tag == PIXEL_DATA {
            if let Some(md) = self.metadata.as_mut() {
                md.pixel_data = Some(PixelDataInfo {
                    value_offset: self.pos,
                    length: (h.len != UNDEFINED).then_some(u64::from(h.len)),
                });
            }
        }
        if h.len == UNDEFINED {
            let (kind, inner) = match class {
                _ if h.tag == PIXEL_DATA
                    && matches!(class, None | Some(VrClass::Binary | VrClass::Unknown)) =>
                {
                    (FrameKind::Fragments, encoding)
                }
                Some(VrClass::Sequence) => (FrameKind::Sequence, encoding),
                Some(VrClass::Unknown) | None => (FrameKind::Sequence, Encoding::ImplicitLittle),
                Some(_) => {
                    return Err(malformed(
                        offset,
                        format!(
                            "{} ({}) has an undefined length, which only sequences and \
                             encapsulated Pixel Data may have",
                            describe(h.tag),
                            h.vr.map(vr::describe).unwrap_or_default()
                        ),
                    ))
                }
            };
            return self.push_frame(kind, h.tag, offset, None, inner);
        }
        if class == Some(VrClass::Sequence) {
            check_even(h, offset)?;
            let end = self.pos + u64::from(h.len);
            self.push_frame(FrameKind::Sequence, h.tag, offset, Some(end), encoding)?;
            return self.element_done();
        }
        let capture = if top { Field::in_dataset(h.tag) } else { None };
        self.begin_value(h, offset, capture, false)
    }

    /// A header directly inside a sequence: an item or the sequence delimiter.
    fn on_sequence_child(&mut self, h: Header, offset: u64) -> Result<(), DicomError> {
        let Some(&seq) = self.frames.last() else {
            return Ok(());
        };
        match h.tag {
            ITEM => {
                if h.len == UNDEFINED {
                    return self.push_frame(FrameKind::Item, seq.tag, offset, None, seq.encoding);
                }
                check_even(h, offset)?;
                let end = self.pos + u64::from(h.len);
                self.push_frame(FrameKind::Item, seq.tag, offset, Some(end), seq.encoding)?;
                self.element_done()
            }
            SEQUENCE_DELIMITER => {
                if seq.end.is_some() || h.len != 0 {
                    return Err(malformed(
                        offset,
                        format!(
                            "a Sequence Delimitation Item (FFFE,E0DD) of length {} closes {}, \
                             which {}",
                            length_text(h.len),
                            self.container_text(),
                            if seq.end.is_some() {
                                "has a defined length"
                            } else {
                                "needs a delimiter of length 0"
                            }
                        ),
                    ));
                }
                self.pop_frame();
                self.element_done()
            }
            _ => Err(malformed(
                offset,
                format!(
                    "{} inside {}, where only items (FFFE,E000) may be",
                    describe(h.tag),
                    self.container_text()
                ),
            )),
        }
    }

    /// A header inside encapsulated pixel data: a fragment or the sequence delimiter.
    fn on_fragment(&mut self, h: Header, offset: u64) -> Result<(), DicomError> {
        match h.tag {
            ITEM if h.len != UNDEFINED => self.begin_value(h, offset, None, true),
            SEQUENCE_DELIMITER if h.len == 0 => {
                self.pop_frame();
                self.element_done()
            }
            _ => Err(malformed(
                offset,
                format!(
                    "{} of length {} inside {}, where only fragments (FFFE,E000) of defined \
                     length and a Sequence Delimitation Item (FFFE,E0DD) of length 0 may be",
                    describe(h.tag),
                    length_text(h.len),
                    self.container_text()
                ),
            )),
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
                if h.len > limit {
                    return Err(DicomError::TooLarge {
                        offset,
                        what: format!("{} declares {len} bytes", field.describe()),
                        limit: u64::from(limit),
                    });
                }
                self.captured
                    .begin(field, offset, usize::try_from(len).unwrap_or(0));
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
                _ => self.captured.check_against_meta(field)?,
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

    /// End of stream: refuses a stream that stopped inside anything.
    pub(crate) fn check_closed(&mut self) -> Result<(), DicomError> {
        let at = self.pos;
        let truncated = |inside: String| DicomError::Truncated { offset: at, inside };
        match self.state {
            State::Preamble | State::Magic => Err(DicomError::NotDicom {
                reason: format!(
                    "the stream is only {at} bytes long; a DICOM file starts with a 128-byte \
                     preamble and the \"DICM\" marker"
                ),
            }),
            State::Skip { .. } | State::Capture { .. } => {
                let inside = match self.open_value {
                    Some(v) if v.in_fragments => format!(
                        "inside a fragment of encapsulated Pixel Data (7FE0,0010), which \
                         declares {} bytes",
                        v.len
                    ),
                    Some(v) => {
                        format!("inside {}, which declares {} bytes", describe(v.tag), v.len)
                    }
                    None => "inside a value".to_owned(),
                };
                Err(truncated(inside))
            }
            State::Header if self.hdr_len > 0 => Err(truncated(format!(
                "inside the header of an element that starts at byte {} (in {})",
                at - self.hdr_len as u64,
                self.container_text()
            ))),
            State::Header if self.in_meta => match self.meta_end {
                Some(end) if end > at => Err(truncated(format!(
                    "inside the file meta information, which declares that it ends at byte {end}"
                ))),
                _ if self.last_meta_tag.is_none() => Err(truncated(
                    "right after the \"DICM\" marker, before the file meta information".into(),
                )),
                // The meta information is complete and the dataset is empty.
                _ => self.start_dataset(),
            },
            State::Header | State::AwaitInflate => match self.frames.last() {
                None => Ok(()),
                Some(f) => Err(truncated(match (f.kind, f.end) {
                    (FrameKind::Fragments, _) => format!(
                        "inside encapsulated Pixel Data (7FE0,0010) begun at byte {}: the last \
                         fragment is complete but the Sequence Delimitation Item that must \
                         follow the fragments is missing",
                        f.offset
                    ),
                    (FrameKind::Sequence, Some(end)) => format!(
                        "inside {} begun at byte {}, which declares that it ends at byte {end}",
                        describe(f.tag),
                        f.offset
                    ),
                    (FrameKind::Sequence, None) => format!(
                        "inside {} begun at byte {}, before its Sequence Delimitation Item",
                        describe(f.tag),
                        f.offset
                    ),
                    (FrameKind::Item, Some(end)) => format!(
                        "inside an item of {} begun at byte {}, which declares that it ends at \
                         byte {end}",
                        describe(f.tag),
                        f.offset
                    ),
                    (FrameKind::Item, None) => format!(
                        "inside an item of {} begun at byte {}, before its Item Delimitation Item",
                        describe(f.tag),
                        f.offset
                    ),
                })),
            },
        }
    }

    /// The metadata at a clean end of stream (after [`Parser::check_closed`]).
    pub(crate) fn into_metadata(self) -> Result<Metadata, DicomError> {
        match self.metadata {
            Some(md) => Ok(md),
            None => self.captured.build(),
        }
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
