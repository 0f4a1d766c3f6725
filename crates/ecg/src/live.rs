//! One live session at the relay: its checks, its viewers' ring and its recording, together.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use yilian_proto::encode_frame;

use crate::fanout::{Cursor, Fanout, Next};
use crate::recorder::{Recorder, Segment};
use crate::session::{Accepted, FrameOutcome, Limits, Session, SessionError};
use crate::wire::{Frame, Header, SessionId, SessionSummary, WatchReply};

/// Who a session belongs to and where it goes (from the cart's certificate and the topology).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// The cart's site and identity.
    pub site: String,
    pub device: String,
    /// Destinations (`site/department`) and the reader identities that may watch.
    pub destinations: Vec<String>,
    pub readers: Vec<String>,
    /// As routed.
    pub urgent: bool,
}

/// How long the ring and a viewer's lag are, and how long a recording may be.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub limits: Limits,
    /// What a late joiner gets first.
    pub keep: Duration,
    /// How far a live viewer may trail before it skips ahead.
    pub max_lag: Duration,
    /// Longest recording object (the IOD's limit at the session's rate), in seconds.
    pub max_object: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            limits: Limits::default(),
            keep: Duration::from_secs(10),
            max_lag: Duration::from_secs(1),
            max_object: Duration::from_secs(16),
        }
    }
}

/// A live session.
pub struct Live {
    session: Session,
    fanout: Fanout,
    recorder: Recorder,
    routing: Routing,
    watchers: u32,
    /// Set when something was lost (a gap, an error, the cart vanished).
    incomplete: Option<String>,
    ended: bool,
    /// The live path (what viewers get), fed by whichever copy of a frame comes first: the
    /// stream's (checked by the session) or a datagram's.
    live: LivePath,
}

/// Frames ahead of the newest one fanned out, held until the ones before them come.
const MAX_AHEAD: u64 = 64;

/// Frames fanned out from a datagram are kept (by a digest) until the stream's checked copy
/// confirms them.
#[derive(Debug, Default)]
struct LivePath {
    /// The next frame viewers get, and its first sample (once known).
    next: u64,
    sample: Option<u64>,
    ahead: BTreeMap<u64, (Frame, u64)>,
    unconfirmed: VecDeque<(u64, blake3::Hash)>,
}

/// What identifies a frame's content (its datagram copy against its stream copy).
fn digest_of(frame: &Frame) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(&frame.seq.to_be_bytes());
    h.update(&frame.first_sample.to_be_bytes());
    h.update(&frame.data);
    h.finalize()
}

impl Live {
    pub fn new(accepted: Accepted, routing: Routing, config: &LiveConfig, now: Duration) -> Live {
        let hz = u64::from(accepted.rate.hz());
        let samples = |d: Duration| (d.as_millis() as u64 * hz / 1000).max(1);
        let accepted_first_seq = accepted.start.first_seq;
        Live {
            fanout: Fanout::new(samples(config.keep), samples(config.max_lag)),
            recorder: Recorder::new(
                samples(config.max_object)
                    .min(yilian_dicom::waveform::TWELVE_LEAD_MAX_SAMPLES as u64),
            ),
            session: Session::new(accepted, config.limits.clone(), now),
            routing,
            watchers: 0,
            incomplete: None,
            ended: false,
            live: LivePath {
                next: accepted_first_seq,
                sample: (accepted_first_seq == 0).then_some(0),
                ..LivePath::default()
            },
        }
    }

    pub fn id(&self) -> SessionId {
        self.session.id()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Whether `reader` (an identity name) may watch.
    pub fn may_watch(&self, reader: &str) -> bool {
        self.routing.readers.iter().any(|r| r == reader)
    }

    /// A frame from the cart's stream: checked, fanned out (unless a datagram's copy already
    /// was, which must then be the same), recorded. Answers the object to write when one is
    /// full. An error ends nothing by itself: the relay calls [`Live::end`].
    pub fn frame(&mut self, frame: Frame, now: Duration) -> Result<Option<Segment>, SessionError> {
        let block = match self.session.frame(&frame, now)? {
            FrameOutcome::Duplicate => return Ok(None),
            FrameOutcome::New(b) => b,
        };
        let samples = block.per_lead() as u64;
        let (seq, first_sample) = (frame.seq, frame.first_sample);
        let data = Bytes::copy_from_slice(&frame.data);
        while self.live.unconfirmed.front().is_some_and(|(s, _)| *s < seq) {
            self.live.unconfirmed.pop_front();
        }
        if let Some((s, digest)) = self.live.unconfirmed.front() {
            if *s == seq {
                if *digest != digest_of(&frame) {
                    return Err(SessionError::Copies { seq });
                }
                self.live.unconfirmed.pop_front();
            }
        }
        if self.live.sample.is_none() && seq == self.live.next {
            self.live.sample = Some(first_sample);
        }
        self.offer_live(frame, samples, false);
        Ok(self.recorder.push(seq, first_sample, samples, data))
    }

    /// A frame from a datagram (the live path only: the recording takes the stream's). Fanned
    /// out at once if it is the next one viewers need, held a moment if it is ahead of a
    /// missing one, ignored if viewers already have it or it does not fit. Answers whether
    /// anything new reached the viewers.
    pub fn datagram(&mut self, frame: Frame) -> bool {
        let next = self.live.next;
        if self.ended || frame.seq < next || frame.seq >= next.saturating_add(MAX_AHEAD) {
            return false;
        }
        if self.live.ahead.contains_key(&frame.seq) {
            return false;
        }
        let Ok(block) = crate::codec::decode(&frame.data) else {
            return false;
        };
        let samples = block.per_lead() as u64;
        if samples == 0 || samples > self.session.max_frame_samples() as u64 {
            return false;
        }
        let before = self.live.next;
        self.offer_live(frame, samples, true);
        self.live.next > before
    }

    /// Fan out `frame` if it is the next one (then any held behind it), or hold it.
    fn offer_live(&mut self, frame: Frame, samples: u64, from_datagram: bool) {
        if frame.seq < self.live.next {
            return;
        }
        if frame.seq > self.live.next {
            if from_datagram {
                self.live.ahead.insert(frame.seq, (frame, samples));
            }
            return;
        }
        self.push_live(frame, samples, from_datagram);
        while let Some((frame, samples)) = self.live.ahead.remove(&self.live.next) {
            // A held datagram's first sample is checked against the frames before it now.
            if self.live.sample != Some(frame.first_sample) {
                self.live.ahead.clear();
                break;
            }
            self.push_live(frame, samples, true);
        }
        while self
            .live
            .ahead
            .first_key_value()
            .is_some_and(|(s, _)| *s < self.live.next)
        {
            self.live.ahead.pop_first();
        }
    }

    fn push_live(&mut self, frame: Frame, samples: u64, from_datagram: bool) {
        if from_datagram {
            // Only where the frames before it end (the stream's copy is checked by the
            // session; a datagram's only here).
            if self.live.sample != Some(frame.first_sample) {
                return;
            }
            self.live
                .unconfirmed
                .push_back((frame.seq, digest_of(&frame)));
        }
        let (seq, first_sample) = (frame.seq, frame.first_sample);
        self.fanout.push(
            seq,
            first_sample,
            samples,
            encode_frame(&WatchReply::Frame(frame)),
        );
        self.live.next = seq + 1;
        self.live.sample = Some(first_sample + samples);
    }

    /// Something was lost: the recording will say it is incomplete.
    pub fn mark_incomplete(&mut self, why: impl Into<String>) {
        self.incomplete.get_or_insert_with(|| why.into());
    }

    /// Why the recording is incomplete, if it is.
    pub fn incomplete(&self) -> Option<&str> {
        self.incomplete.as_deref()
    }

    /// The session is over: viewers are told, and the last object comes out.
    pub fn end(&mut self) -> Option<Segment> {
        self.ended = true;
        self.fanout.end(self.incomplete.is_none());
        self.recorder.finish()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The first frame not yet in a written object (what the cart must still hold).
    pub fn unrecorded_from(&self) -> u64 {
        self.recorder
            .pending_from()
            .unwrap_or(self.session.next_seq())
    }

    /// A viewer joins.
    pub fn join(&mut self) -> Cursor {
        self.watchers += 1;
        self.fanout.join()
    }

    /// A viewer leaves.
    pub fn leave(&mut self) {
        self.watchers = self.watchers.saturating_sub(1);
    }

    /// What a viewer gets next.
    pub fn next(&self, cursor: &mut Cursor) -> Next {
        self.fanout.next(cursor)
    }

    /// Bytes held for viewers (shared).
    pub fn held_bytes(&self) -> usize {
        self.fanout.held_bytes()
    }

    pub fn summary(&self) -> SessionSummary {
        let a = self.session.accepted();
        SessionSummary {
            session: self.id(),
            site: self.routing.site.clone(),
            device: self.routing.device.clone(),
            urgent: self.routing.urgent,
            rate_hz: a.rate.hz(),
            started_unix_ms: a.start.started_unix_ms,
            seconds: self.session.samples() as f64 / f64::from(a.rate.hz()),
            watchers: self.watchers,
        }
    }

    /// What a viewer gets first (patient context included: only for a viewer who may watch).
    pub fn header(&self) -> Header {
        let a = self.session.accepted();
        Header {
            summary: self.summary(),
            leads: a.start.leads.clone(),
            calibration: a.start.calibration.clone(),
            patient: a.start.patient.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::Next;
    use crate::model::{Block, Calibration, LEAD_COUNT};
    use crate::session::check_start;
    use crate::wire::Start;

    fn live() -> Live {
        let start = Start::standard(
            SessionId([5; 16]),
            crate::model::SampleRate::Hz500,
            &[Calibration::default(); LEAD_COUNT],
        );
        let routing = Routing {
            site: "township-a".into(),
            device: "cart".into(),
            destinations: vec![],
            readers: vec!["county-cardiology".into()],
            urgent: false,
        };
        Live::new(
            check_start(&start).unwrap(),
            routing,
            &LiveConfig::default(),
            Duration::ZERO,
        )
    }

    fn frame(seq: u64) -> Frame {
        let block = Block::from_lead_major(vec![seq as i16; 20 * LEAD_COUNT]).unwrap();
        let mut data = Vec::new();
        crate::codec::encode(&block, &mut data);
        Frame {
            seq,
            first_sample: seq * 20,
            device_time_us: seq * 40_000,
            data,
        }
    }

    fn seqs(l: &Live, c: &mut crate::fanout::Cursor) -> Vec<u64> {
        let mut out = Vec::new();
        while let Next::Frame(b) = l.next(c) {
            let Ok(crate::wire::WatchReply::Frame(f)) =
                postcard::from_bytes::<crate::wire::WatchReply>(&b[4..])
            else {
                panic!("not a frame")
            };
            out.push(f.seq);
        }
        out
    }

    #[test]
    fn a_datagram_reaches_viewers_before_the_stream_and_is_not_sent_twice() {
        let mut l = live();
        let mut c = l.join();
        assert!(l.datagram(frame(0)));
        assert_eq!(seqs(&l, &mut c), vec![0]);
        // The stream's copy: recorded, not fanned out again.
        l.frame(frame(0), Duration::from_millis(40)).unwrap();
        assert!(seqs(&l, &mut c).is_empty());
        assert_eq!(l.unrecorded_from(), 0);
    }

    #[test]
    fn a_lost_datagram_is_filled_by_the_next_ones_copy_or_by_the_stream() {
        let mut l = live();
        let mut c = l.join();
        // 1 is lost; 2 comes first and waits; the copy of 1 in the next datagram fills it.
        assert!(l.datagram(frame(0)));
        assert!(!l.datagram(frame(2)));
        assert_eq!(seqs(&l, &mut c), vec![0]);
        assert!(l.datagram(frame(1)));
        assert_eq!(seqs(&l, &mut c), vec![1, 2]);
        // 4 waits for 3, which only the stream brings.
        assert!(!l.datagram(frame(4)));
        for s in 0..4 {
            l.frame(frame(s), Duration::from_millis(40 * s)).unwrap();
        }
        assert_eq!(seqs(&l, &mut c), vec![3, 4]);
        l.frame(frame(4), Duration::from_millis(160)).unwrap();
        assert!(seqs(&l, &mut c).is_empty());
    }

    #[test]
    fn a_datagram_that_does_not_fit_is_ignored_and_a_different_stream_copy_is_an_error() {
        let mut l = live();
        let mut c = l.join();
        let mut wrong = frame(0);
        wrong.first_sample = 7;
        assert!(!l.datagram(wrong));
        let mut garbage = frame(0);
        garbage.data = vec![1, 2, 3];
        assert!(!l.datagram(garbage));
        assert!(!l.datagram(frame(MAX_AHEAD + 5)));
        assert!(seqs(&l, &mut c).is_empty());
        // A datagram copy that the stream then contradicts.
        let mut other = frame(0);
        let block = Block::from_lead_major(vec![99; 20 * LEAD_COUNT]).unwrap();
        other.data.clear();
        crate::codec::encode(&block, &mut other.data);
        assert!(l.datagram(other));
        assert_eq!(
            l.frame(frame(0), Duration::ZERO),
            Err(SessionError::Copies { seq: 0 })
        );
    }
}
