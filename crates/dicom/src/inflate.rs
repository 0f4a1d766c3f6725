//! Streaming inflate of a Deflated Explicit VR Little Endian dataset: the compressed bytes go
//! through `flate2` (raw DEFLATE, RFC 1951) into a 16 KiB stack buffer, and the inflated bytes
//! into the structure parser. Nothing is kept between chunks but the inflater's own state (its
//! 32 KiB window).
//!
//! Some writers (pydicom's `image_dfl.dcm` is one) append a gzip-style trailer after the
//! deflate stream: CRC-32 and the inflated size, 8 bytes. Such a trailer is accepted when its
//! size field matches; any other byte after the end of the stream is refused.

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{malformed, DicomError};
use crate::structure::Parser;

const OUT_LEN: usize = 16 * 1024;
/// A gzip-style trailer: CRC-32, then the inflated size modulo 2^32, little endian.
const TRAILER_LEN: usize = 8;

pub(crate) struct Inflater {
    z: Decompress,
    /// The compressed stream has ended.
    ended: bool,
    /// Offset in the file of the first compressed byte.
    start: u64,
    /// Bytes after the end of the compressed stream.
    trailer: [u8; TRAILER_LEN],
    trailer_len: usize,
}

impl Inflater {
    pub(crate) fn new(start: u64) -> Self {
        Inflater {
            z: Decompress::new(false),
            ended: false,
            start,
            trailer: [0; TRAILER_LEN],
            trailer_len: 0,
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// At end of stream: refuses bytes after the compressed stream unless they are a gzip-style
    /// trailer whose size field matches.
    pub(crate) fn check_trailer(&self) -> Result<(), DicomError> {
        let size = self
            .trailer
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok());
        let matches = size.is_some_and(|b| u32::from_le_bytes(b) == self.z.total_out() as u32);
        if self.trailer_len == 0 || (self.trailer_len == TRAILER_LEN && matches) {
            return Ok(());
        }
        Err(self.trailing_data())
    }

    fn trailing_data(&self) -> DicomError {
        malformed(
            self.start + self.z.total_in(),
            "data follows the end of the deflated dataset",
        )
    }

    /// Inflates `input` and pushes the result into `parser`.
    pub(crate) fn push(&mut self, mut input: &[u8], parser: &mut Parser) -> Result<(), DicomError> {
        let mut out = [0u8; OUT_LEN];
        loop {
            if self.ended {
                let free = self.trailer.get_mut(self.trailer_len..).unwrap_or_default();
                if input.len() > free.len() {
                    return Err(self.trailing_data());
                }
                if let Some(dst) = free.get_mut(..input.len()) {
                    dst.copy_from_slice(input);
                }
                self.trailer_len += input.len();
                return Ok(());
            }
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(input, &mut out, FlushDecompress::None)
                .map_err(|e| {
                    malformed(
                        self.start,
                        format!(
                            "the deflated dataset that starts here cannot be inflated ({e}); \
                             the file is damaged"
                        ),
                    )
                })?;
            let used = usize::try_from(self.z.total_in() - in_before).unwrap_or(input.len());
            let produced = usize::try_from(self.z.total_out() - out_before).unwrap_or(0);
            input = input.get(used..).unwrap_or_default();
            parser.push(out.get(..produced).unwrap_or_default())?;
            match status {
                Status::StreamEnd => self.ended = true,
                Status::Ok | Status::BufError => {
                    let drained = produced < OUT_LEN;
                    if (used == 0 && produced == 0) || (input.is_empty() && drained) {
                        return Ok(());
                    }
                }
            }
        }
    }
}
