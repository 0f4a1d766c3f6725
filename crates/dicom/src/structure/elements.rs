//! What a header means where it stands: in the file meta information, at the top level, in
//! an item, in a sequence or among the fragments of encapsulated pixel data.

use dicom_core::Tag;

use super::{
    check_even, length_text, out_of_order, FrameKind, Header, Parser, ITEM, ITEM_DELIMITER,
    LAST_ROUTING_GROUP_END, PIXEL_DATA, SEQUENCE_DELIMITER, UNDEFINED,
};
use crate::error::{malformed, DicomError};
use crate::metadata::{Captured, Field, PixelDataInfo};
use crate::names::describe;
use crate::syntax::Encoding;
use crate::vr::{self, VrClass};

impl Parser {
    pub(super) fn on_header(
        &mut self,
        h: Header,
        offset: u64,
        encoding: Encoding,
    ) -> Result<(), DicomError> {
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
    pub(super) fn container_text(&self) -> String {
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
}
