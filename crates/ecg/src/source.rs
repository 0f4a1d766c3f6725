//! The cart's side of a session: frames numbered and kept until recorded.
//!
//! [`Outbox`] turns blocks of samples into frames and keeps every frame until the relay says
//! it is recorded (durable in a DICOM object). A cut link or a relay restart loses nothing: the
//! cart opens a new stream with [`Outbox::start`] (its `first_seq` is the oldest frame held),
//! the relay answers the next frame it needs, and [`Outbox::next_to_send`] goes on from there.
//! What the cart holds is capped ([`Outbox::new`]'s `max_held_samples`): past it, the oldest
//! frames are dropped and the recording will be incomplete ([`Outbox::dropped`]).

use std::collections::VecDeque;

use crate::codec;
use crate::model::Block;
use crate::wire::{Frame, Start};

/// Frames of one session not yet recorded by the relay.
#[derive(Debug)]
pub struct Outbox {
    start: Start,
    held: VecDeque<Frame>,
    held_samples: VecDeque<u64>,
    held_total: u64,
    max_held_samples: u64,
    next_seq: u64,
    next_sample: u64,
    /// The next frame to send on the current stream.
    cursor: u64,
    dropped: u64,
}

impl Outbox {
    /// A session described by `start` (its `first_seq` is ignored: the outbox keeps it).
    pub fn new(start: Start, max_held_samples: u64) -> Outbox {
        Outbox {
            start,
            held: VecDeque::new(),
            held_samples: VecDeque::new(),
            held_total: 0,
            max_held_samples,
            next_seq: 0,
            next_sample: 0,
            cursor: 0,
            dropped: 0,
        }
    }

    /// Add a block taken at `device_time_us` (µs since the session's first sample).
    pub fn push(&mut self, block: &Block, device_time_us: u64) -> u64 {
        let mut data = Vec::new();
        codec::encode(block, &mut data);
        let seq = self.next_seq;
        let samples = block.per_lead() as u64;
        self.held.push_back(Frame {
            seq,
            first_sample: self.next_sample,
            device_time_us,
            data,
        });
        self.held_samples.push_back(samples);
        self.held_total += samples;
        self.next_seq += 1;
        self.next_sample += samples;
        while self.held_total > self.max_held_samples && self.held.len() > 1 {
            self.held.pop_front();
            if let Some(s) = self.held_samples.pop_front() {
                self.held_total -= s;
            }
            self.dropped += 1;
        }
        seq
    }

    /// The `Start` of a new stream: the oldest frame held comes first.
    pub fn start(&self) -> Start {
        let mut s = self.start.clone();
        s.first_seq = self.held.front().map_or(self.next_seq, |f| f.seq);
        s
    }

    /// The relay wants frames from `next_seq` on.
    pub fn accepted(&mut self, next_seq: u64) {
        self.cursor = next_seq;
    }

    /// The next frame to send on this stream, if any.
    pub fn next_to_send(&mut self) -> Option<&Frame> {
        let front = self.held.front()?.seq;
        let at = self.cursor.max(front);
        let f = self.held.get((at - front) as usize)?;
        self.cursor = at + 1;
        Some(f)
    }

    /// Frames before `upto_seq` are recorded: forget them.
    pub fn recorded(&mut self, upto_seq: u64) {
        while self.held.front().is_some_and(|f| f.seq < upto_seq) {
            self.held.pop_front();
            if let Some(s) = self.held_samples.pop_front() {
                self.held_total -= s;
            }
        }
    }

    /// A frame still held, by seq.
    pub fn frame(&self, seq: u64) -> Option<&Frame> {
        let front = self.held.front()?.seq;
        self.held
            .get(usize::try_from(seq.checked_sub(front)?).ok()?)
    }

    /// Frames held (not yet recorded).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Frames made so far.
    pub fn frames(&self) -> u64 {
        self.next_seq
    }

    /// Samples per lead made so far.
    pub fn samples(&self) -> u64 {
        self.next_sample
    }

    /// Frames dropped unrecorded because the cart's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Calibration, LEAD_COUNT};
    use crate::wire::SessionId;

    fn start() -> Start {
        Start::standard(
            SessionId([1; 16]),
            crate::model::SampleRate::Hz500,
            &[Calibration::default(); LEAD_COUNT],
        )
    }

    fn block() -> Block {
        Block::from_lead_major(vec![1; 20 * LEAD_COUNT]).unwrap()
    }

    #[test]
    fn frames_are_sent_again_from_where_the_relay_stands_after_a_reconnection() {
        let mut o = Outbox::new(start(), 10_000);
        for i in 0..5 {
            o.push(&block(), i * 40_000);
        }
        o.accepted(0);
        let sent: Vec<u64> = std::iter::from_fn(|| o.next_to_send().map(|f| f.seq)).collect();
        assert_eq!(sent, vec![0, 1, 2, 3, 4]);
        o.recorded(2);
        assert_eq!(o.start().first_seq, 2);
        // The relay had received up to 3 before the cut.
        o.accepted(4);
        assert_eq!(
            o.next_to_send().map(|f| (f.seq, f.first_sample)),
            Some((4, 80))
        );
        assert!(o.next_to_send().is_none());
        o.push(&block(), 200_000);
        assert_eq!(o.next_to_send().map(|f| f.seq), Some(5));
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_frames_and_counts_them() {
        let mut o = Outbox::new(start(), 60);
        for i in 0..5 {
            o.push(&block(), i * 40_000);
        }
        assert_eq!(o.held(), 3);
        assert_eq!(o.dropped(), 2);
        assert_eq!(o.start().first_seq, 2);
    }
}
