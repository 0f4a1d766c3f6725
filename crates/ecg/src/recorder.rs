//! Cutting a session into recordings: every frame, whatever viewers do, goes into one DICOM
//! object after another, each at most [`Recorder::max_samples`] samples per lead long (the
//! 12-lead ECG IOD's limit), the last one when the session ends.
//!
//! The recorder keeps the frames' encoded blocks (a third of the raw samples' size) until their
//! object is cut; the relay decodes them then. Cuts depend only on the frames and where the
//! recording started, so after a relay restart the cart, which sends again every frame it holds
//! that was not yet recorded, gets the same objects made again (the same SOP Instance UIDs,
//! see [`crate::uids`]): nothing is recorded twice.

use bytes::Bytes;

use crate::codec::{self, CodecError};
use crate::model::Block;

/// The frames of one object to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its first frame, and the frame after its last.
    pub first_seq: u64,
    pub end_seq: u64,
    /// Sample index of its first sample in the session.
    pub first_sample: u64,
    /// Samples per lead.
    pub samples: u64,
    blocks: Vec<Bytes>,
}

impl Segment {
    /// The samples, decoded and joined.
    pub fn decode(&self) -> Result<Block, CodecError> {
        let mut out = Block::default();
        for b in &self.blocks {
            let block = codec::decode(b)?;
            if out.is_empty() {
                out = block;
            } else {
                out.extend(&block);
            }
        }
        Ok(out)
    }
}

/// One session's recording in progress.
#[derive(Debug)]
pub struct Recorder {
    max_samples: u64,
    open: Option<Segment>,
}

impl Recorder {
    /// Objects of at most `max_samples` samples per lead.
    pub fn new(max_samples: u64) -> Recorder {
        Recorder {
            max_samples: max_samples.max(1),
            open: None,
        }
    }

    /// Samples per lead per object at most.
    pub fn max_samples(&self) -> u64 {
        self.max_samples
    }

    /// Samples per lead waiting for their object.
    pub fn pending_samples(&self) -> u64 {
        self.open.as_ref().map_or(0, |s| s.samples)
    }

    /// The first frame not yet in a cut object.
    pub fn pending_from(&self) -> Option<u64> {
        self.open.as_ref().map(|s| s.first_seq)
    }

    /// Add a frame (in order, checked by the session). Returns the object to write when this
    /// frame would overflow the open one (the frame then starts the next).
    pub fn push(
        &mut self,
        seq: u64,
        first_sample: u64,
        samples: u64,
        block: Bytes,
    ) -> Option<Segment> {
        let cut = match &self.open {
            Some(open) if open.samples + samples > self.max_samples => self.open.take(),
            _ => None,
        };
        let open = self.open.get_or_insert_with(|| Segment {
            first_seq: seq,
            end_seq: seq,
            first_sample,
            samples: 0,
            blocks: Vec::new(),
        });
        open.end_seq = seq + 1;
        open.samples += samples;
        open.blocks.push(block);
        cut
    }

    /// The session ended: the last object, if any samples wait.
    pub fn finish(&mut self) -> Option<Segment> {
        self.open.take().filter(|s| s.samples > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LEAD_COUNT;

    fn block(first: i16, n: usize) -> Bytes {
        let samples: Vec<i16> = (0..n * LEAD_COUNT).map(|i| first + i as i16).collect();
        let mut out = Vec::new();
        codec::encode(&Block::from_lead_major(samples).unwrap(), &mut out);
        Bytes::from(out)
    }

    #[test]
    fn frames_are_cut_into_objects_of_at_most_max_samples() {
        let mut r = Recorder::new(50);
        let mut cut = Vec::new();
        for seq in 0..7u64 {
            if let Some(s) = r.push(seq, seq * 20, 20, block(seq as i16, 20)) {
                cut.push(s);
            }
        }
        cut.extend(r.finish());
        let spans: Vec<_> = cut
            .iter()
            .map(|s| (s.first_seq, s.end_seq, s.first_sample, s.samples))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 2, 0, 40),
                (2, 4, 40, 40),
                (4, 6, 80, 40),
                (6, 7, 120, 20)
            ]
        );
        let b = cut[0].decode().unwrap();
        assert_eq!(b.per_lead(), 40);
        assert!(r.finish().is_none());
    }
}
