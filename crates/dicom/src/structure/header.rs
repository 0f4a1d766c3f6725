//! Reading element headers (staged across chunks) and the switch from the file meta
//! information to the dataset.

use dicom_core::Tag;

use super::{Header, Parser, State};
use crate::error::{malformed, DicomError};
use crate::names::describe;
use crate::syntax::{self, DatasetCoding, Encoding};
use crate::vr;

impl Parser {
    /// Reads (the rest of) an element header and acts on it; false if the input ran out.
    pub(super) fn read_header(&mut self, input: &mut &[u8]) -> Result<bool, DicomError> {
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
    pub(super) fn start_dataset(&mut self) -> Result<(), DicomError> {
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
                self.captured.big_endian = encoding == Encoding::ExplicitBig;
                self.state = State::Header;
            }
            DatasetCoding::Deflated => {
                self.dataset_encoding = Encoding::ExplicitLittle;
                self.state = State::AwaitInflate;
            }
        }
        Ok(())
    }
}
