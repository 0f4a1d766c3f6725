//! Streaming inflate of a Deflated Explicit VR Little Endian dataset: the compressed bytes go
//! through `flate2` (raw DEFLATE, RFC 1951) into a 16 KiB stack buffer, and the inflated bytes
//! into the structure parser. Nothing is kept between chunks but the inflater's own state (its
//! 32 KiB window).

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{malformed, DicomError};
use crate::structure::Parser;

const OUT_LEN: usize = 16 * 1024;

pub(crate) struct Inflater {
    z: Decompress,
    /// The compressed stream has ended.
    ended: bool,
    /// Offset in the file of the first compressed byte.
    start: u64,
}

impl Inflater {
    pub(crate) fn new(start: u64) -> Self {
        Inflater {
            z: Decompress::new(false),
            ended: false,
            start,
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Inflates `input` and pushes the result into `parser`.
    pub(crate) fn push(&mut self, mut input: &[u8], parser: &mut Parser) -> Result<(), DicomError> {
        let mut out = [0u8; OUT_LEN];
        loop {
            if self.ended {
                if input.is_empty() {
                    return Ok(());
                }
                return Err(malformed(
                    self.start + self.z.total_in(),
                    "data follows the end of the deflated dataset",
                ));
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
