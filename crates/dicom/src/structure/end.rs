//! End of stream: what was still open, in words a radiographer can act on.

use super::{FrameKind, Parser, State};
use crate::error::DicomError;
use crate::metadata::Metadata;
use crate::names::describe;

impl Parser {
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
