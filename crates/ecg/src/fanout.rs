//! Fan-out of one session's frames to its viewers, sharing bytes.
//!
//! The relay encodes each frame once, as the `WatchReply::Frame` control frame every viewer
//! receives, and keeps it here as [`Bytes`]: a viewer's write is a reference count, never a
//! copy. The ring keeps the last [`Fanout::keep`] samples (10 s by default) so that a viewer who
//! joins late gets them first.
//!
//! Each viewer has a [`Cursor`]. A viewer that cannot keep up (a slow link, a stalled reader)
//! never slows the cart or the other viewers: its writes only block its own task. When it
//! comes back to [`Fanout::next`] it is told how many frames it [missed](Next::Missed), and it
//! goes on from the newest frame: live viewing, not a replay. A viewer is behind when, past the
//! backlog it got on joining, it trails the newest frame by more than [`Fanout::max_lag`]
//! samples, or when the frames it needs have left the ring.

use std::collections::VecDeque;

use bytes::Bytes;

struct Held {
    seq: u64,
    /// Sample index of the frame's first sample, and its length.
    first_sample: u64,
    samples: u64,
    bytes: Bytes,
}

/// One session's recent frames.
pub struct Fanout {
    frames: VecDeque<Held>,
    keep: u64,
    max_lag: u64,
    ended: Option<bool>,
    /// Frames ever pushed (the next seq expected), for cursors that start at the live edge.
    next_seq: u64,
}

/// Where one viewer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    next: u64,
    /// Frames before this seq are the backlog the viewer got when it joined.
    backlog_until: u64,
}

/// What a viewer gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write these bytes (one encoded `WatchReply::Frame`).
    Frame(Bytes),
    /// It fell behind: this many frames were skipped; it goes on at the newest one.
    Missed(u64),
    /// Nothing new yet: wait for the next push.
    Wait,
    /// The session is over (`true`: complete).
    Ended(bool),
}

impl Fanout {
    /// `keep`: samples per lead held for late joiners (e.g. 10 s × rate); `max_lag`: how far a
    /// live viewer may trail the newest frame before it skips ahead.
    pub fn new(keep: u64, max_lag: u64) -> Fanout {
        Fanout {
            frames: VecDeque::new(),
            keep,
            max_lag,
            ended: None,
            next_seq: 0,
        }
    }

    /// Samples per lead kept for late joiners.
    pub fn keep(&self) -> u64 {
        self.keep
    }

    /// How far a live viewer may trail.
    pub fn max_lag(&self) -> u64 {
        self.max_lag
    }

    /// Add a frame (`seq` in order; `bytes`: its encoded `WatchReply::Frame`).
    pub fn push(&mut self, seq: u64, first_sample: u64, samples: u64, bytes: Bytes) {
        self.frames.push_back(Held {
            seq,
            first_sample,
            samples,
            bytes,
        });
        self.next_seq = seq + 1;
        let newest_end = first_sample + samples;
        while let Some(f) = self.frames.front() {
            if newest_end - (f.first_sample + f.samples).min(newest_end) >= self.keep
                && self.frames.len() > 1
            {
                self.frames.pop_front();
            } else {
                break;
            }
        }
    }

    /// The session ended (`complete`: nothing is missing from its recording).
    pub fn end(&mut self, complete: bool) {
        self.ended = Some(complete);
    }

    /// A new viewer: it gets the frames held (the last seconds) first.
    pub fn join(&self) -> Cursor {
        let first = self.frames.front().map_or(self.next_seq, |f| f.seq);
        Cursor {
            next: first,
            backlog_until: self.next_seq,
        }
    }

    /// Frames held now.
    pub fn held(&self) -> usize {
        self.frames.len()
    }

    /// Bytes held now (shared with the viewers writing them).
    pub fn held_bytes(&self) -> usize {
        self.frames.iter().map(|f| f.bytes.len()).sum()
    }

    /// What the viewer at `cursor` gets next; advances the cursor.
    pub fn next(&self, cursor: &mut Cursor) -> Next {
        let Some(front) = self.frames.front() else {
            return self.end_or_wait(cursor);
        };
        if cursor.next >= self.next_seq {
            return self.end_or_wait(cursor);
        }
        let newest = self.frames.back().map_or(front, |b| b);
        let newest_end = newest.first_sample + newest.samples;
        let behind = if cursor.next < front.seq {
            true
        } else if cursor.next >= cursor.backlog_until {
            let at = &self.frames[(cursor.next - front.seq) as usize];
            newest_end - at.first_sample > self.max_lag + newest.samples
        } else {
            false
        };
        if behind {
            let missed = newest.seq - cursor.next;
            cursor.next = newest.seq;
            cursor.backlog_until = cursor.backlog_until.min(newest.seq);
            return Next::Missed(missed);
        }
        let f = &self.frames[(cursor.next - front.seq) as usize];
        cursor.next += 1;
        Next::Frame(f.bytes.clone())
    }

    fn end_or_wait(&self, cursor: &Cursor) -> Next {
        match self.ended {
            Some(complete) if cursor.next >= self.next_seq => Next::Ended(complete),
            _ => Next::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Bytes {
        Bytes::from(seq.to_be_bytes().to_vec())
    }

    fn seq_of(b: &Bytes) -> u64 {
        u64::from_be_bytes(b[..8].try_into().unwrap())
    }

    /// 20 samples per frame; keep 100 samples (5 frames); lag 40 samples.
    fn fanout(frames: u64) -> Fanout {
        let mut f = Fanout::new(100, 40);
        for s in 0..frames {
            f.push(s, s * 20, 20, frame(s));
        }
        f
    }

    #[test]
    fn a_late_joiner_gets_the_last_seconds_first_then_live_frames() {
        let mut f = fanout(12);
        assert_eq!(f.held(), 5);
        let mut c = f.join();
        let got: Vec<u64> = std::iter::from_fn(|| match f.next(&mut c) {
            Next::Frame(b) => Some(seq_of(&b)),
            _ => None,
        })
        .collect();
        assert_eq!(got, vec![7, 8, 9, 10, 11]);
        assert_eq!(f.next(&mut c), Next::Wait);
        f.push(12, 240, 20, frame(12));
        assert_eq!(f.next(&mut c), Next::Frame(frame(12)));
        f.end(true);
        assert_eq!(f.next(&mut c), Next::Ended(true));
    }

    #[test]
    fn a_viewer_that_falls_behind_is_told_and_skips_to_the_newest_frame() {
        let mut f = fanout(1);
        let mut slow = f.join();
        let mut fast = f.join();
        assert_eq!(f.next(&mut slow), Next::Frame(frame(0)));
        assert_eq!(f.next(&mut fast), Next::Frame(frame(0)));
        for s in 1..10 {
            f.push(s, s * 20, 20, frame(s));
            // The fast viewer takes every frame as it comes.
            assert_eq!(f.next(&mut fast), Next::Frame(frame(s)));
        }
        // The slow one comes back: frames 1..9 are past the lag; it skips to 9.
        assert_eq!(f.next(&mut slow), Next::Missed(8));
        assert_eq!(f.next(&mut slow), Next::Frame(frame(9)));
        assert_eq!(f.next(&mut slow), Next::Wait);
    }

    #[test]
    fn within_the_lag_a_viewer_gets_every_frame() {
        let mut f = fanout(1);
        let mut c = f.join();
        assert_eq!(f.next(&mut c), Next::Frame(frame(0)));
        f.push(1, 20, 20, frame(1));
        f.push(2, 40, 20, frame(2));
        assert_eq!(f.next(&mut c), Next::Frame(frame(1)));
        assert_eq!(f.next(&mut c), Next::Frame(frame(2)));
    }

    #[test]
    fn an_empty_session_waits_then_ends() {
        let mut f = Fanout::new(100, 40);
        let mut c = f.join();
        assert_eq!(f.next(&mut c), Next::Wait);
        f.end(false);
        assert_eq!(f.next(&mut c), Next::Ended(false));
    }
}
