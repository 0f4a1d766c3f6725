//! The public push-based walker: feeds chunks to the structure parser, through the inflater
//! for a deflated dataset, and remembers a refusal.

use std::fmt;

use crate::error::DicomError;
use crate::inflate::Inflater;
use crate::metadata::Metadata;
use crate::structure::Parser;

/// Limits that bound what a hostile or broken stream can make the walker do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes within which every routing attribute must have been passed, i.e. the size of the
    /// header before Pixel Data (or before the first top-level element past (0028,FFFF)).
    /// Default 64 MiB.
    pub max_header_len: u64,
    /// Largest value of a captured routing attribute, in bytes. Default 4096.
    pub max_attribute_len: u32,
    /// Deepest nesting of sequences. Default 16.
    pub max_depth: u32,
    /// Refuse a file whose dataset SOP Class/Instance UID differs from its file meta's
    /// (0002,0002)/(0002,0003). PS3.10 requires them to agree, but anonymisers and editors often
    /// change the dataset without the file meta; the dataset's UIDs are what the instance *is*,
    /// so the relay accepts such files and routes by the dataset (default `false`).
    pub meta_must_match: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_len: 64 * 1024 * 1024,
            max_attribute_len: 4096,
            max_depth: 16,
            meta_must_match: false,
        }
    }
}

/// Push-based structural walker for a DICOM Part 10 stream.
///
/// Feed it the bytes as they arrive, in chunks of any size; it validates the structure on the
/// way, exposes the routing [`Metadata`] as soon as every routing attribute has been passed, and
/// [`Walker::finish`] tells whether the stream ended cleanly. Once it has refused a stream,
/// every later call returns the same error.
pub struct Walker {
    parser: Parser,
    inflater: Option<Inflater>,
    position: u64,
    failure: Option<DicomError>,
}

impl Walker {
    /// A walker at the start of a stream.
    pub fn new(limits: Limits) -> Self {
        Walker {
            parser: Parser::new(limits),
            inflater: None,
            position: 0,
            failure: None,
        }
    }

    /// Consumes the next chunk. Never keeps more than a few hundred bytes internally plus the
    /// values of the routing attributes it captures (each capped by
    /// [`Limits::max_attribute_len`]); a Deflated dataset adds the inflater's 32 KiB window.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), DicomError> {
        if let Some(e) = &self.failure {
            return Err(e.replay());
        }
        let result = self.feed_inner(chunk);
        self.position += chunk.len() as u64;
        if let Err(e) = &result {
            self.failure = Some(e.replay());
        }
        result
    }

    fn feed_inner(&mut self, chunk: &[u8]) -> Result<(), DicomError> {
        let mut rest = chunk;
        if self.inflater.is_none() {
            let used = self.parser.push(chunk)?;
            if !self.parser.awaits_inflate() {
                return Ok(());
            }
            rest = chunk.get(used..).unwrap_or_default();
            let (staged, staged_len) = self.parser.begin_inflated();
            let start = (self.position + used as u64).saturating_sub(staged_len as u64);
            let mut inflater = Inflater::new(start);
            inflater.push(
                staged.get(..staged_len).unwrap_or_default(),
                &mut self.parser,
            )?;
            self.inflater = Some(inflater);
        }
        match self.inflater.as_mut() {
            Some(inflater) => inflater.push(rest, &mut self.parser),
            None => Ok(()),
        }
    }

    /// The routing metadata, once every routing attribute has been passed: i.e. once the walker
    /// has reached a top-level element with tag > (0028,FFFF) (e.g. Pixel Data) — `None`
    /// before. Its `pixel_data` is filled in when the Pixel Data header has been read.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.parser.metadata()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes of an uninteresting value (e.g. pixel data) that follow the bytes fed so far and
    /// that a reader of a seekable source may skip with [`Walker::skip`] instead of feeding.
    /// Always 0 inside a deflated dataset.
    pub(crate) fn skippable(&self) -> u64 {
        if self.inflater.is_some() || self.failure.is_some() {
            0
        } else {
            self.parser.skippable()
        }
    }

    /// Accounts for `n <= skippable()` bytes that were skipped rather than fed.
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), DicomError> {
        let n = n.min(self.skippable());
        self.parser.skip(n)?;
        self.position += n;
        Ok(())
    }

    /// End of stream: Ok only if the stream ended exactly on an element boundary at the top
    /// level (no open sequence, item or fragment sequence, nor an unfinished deflate stream)
    /// and the metadata is complete.
    ///
    /// A stream cut exactly after a complete top-level element is structurally a valid file:
    /// if every routing attribute came before the cut, `finish` accepts it (with `pixel_data`
    /// `None` if the cut came before Pixel Data). Only the sender's size and hash (yilian/1
    /// carries both) or [`crate::inspect_file`] on the original can tell it was cut.
    pub fn finish(mut self) -> Result<Metadata, DicomError> {
        if let Some(e) = self.failure.take() {
            return Err(e);
        }
        let position = self.position;
        let at_end = |e: DicomError| match e {
            // Report where the *file* ends, also for a deflated dataset.
            DicomError::Truncated { inside, .. } => DicomError::Truncated {
                offset: position,
                inside,
            },
            other => other,
        };
        self.parser.check_closed().map_err(at_end)?;
        if let Some(inflater) = &self.inflater {
            if !inflater.ended() {
                return Err(DicomError::Truncated {
                    offset: position,
                    inside: "inside the deflated dataset, whose compressed stream does not end"
                        .into(),
                });
            }
            inflater.check_trailer()?;
        }
        self.parser.into_metadata()
    }
}

impl fmt::Debug for Walker {
    /// Shows where the walker is, never the captured values (patient data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Walker")
            .field("position", &self.position)
            .field("deflated", &self.inflater.is_some())
            .field("metadata", &self.parser.metadata())
            .field("failed", &self.failure.is_some())
            .finish()
    }
}
