//! One live session at the relay: its checks, its viewers' ring and its recording, together.

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
}

impl Live {
    pub fn new(accepted: Accepted, routing: Routing, config: &LiveConfig, now: Duration) -> Live {
        let hz = u64::from(accepted.rate.hz());
        let samples = |d: Duration| (d.as_millis() as u64 * hz / 1000).max(1);
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

    /// A frame from the cart: checked, fanned out, recorded. Answers the object to write when
    /// one is full. An error ends nothing by itself: the relay calls [`Live::end`].
    pub fn frame(&mut self, frame: Frame, now: Duration) -> Result<Option<Segment>, SessionError> {
        let block = match self.session.frame(&frame, now)? {
            FrameOutcome::Duplicate => return Ok(None),
            FrameOutcome::New(b) => b,
        };
        let samples = block.per_lead() as u64;
        let (seq, first_sample) = (frame.seq, frame.first_sample);
        let data = Bytes::copy_from_slice(&frame.data);
        self.fanout.push(
            seq,
            first_sample,
            samples,
            encode_frame(&WatchReply::Frame(frame)),
        );
        Ok(self.recorder.push(seq, first_sample, samples, data))
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
