//! A live session as the relay sees it: the checks on what a cart sends.
//!
//! [`Session`] is fed the cart's `Start` and frames, with the time (`now`, any monotonic
//! origin) passed in, and answers what to do with each frame. Everything it refuses is a
//! [`SessionError`] whose message tells the cart's operator (or an admin) what went wrong; the
//! relay then closes the session and records what it had, marked incomplete.

use std::time::Duration;

use crate::codec;
use crate::model::{Block, Calibration, Lead, SampleRate, LEAD_COUNT};
use crate::wire::{Frame, SessionId, Start};

/// Largest frame or sample number a session may reach (2⁴⁰: years of ECG at 1000 Hz), so that
/// no count a cart sends can overflow.
pub const MAX_COUNT: u64 = 1 << 40;

/// Per-session limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest block one frame may carry.
    pub max_frame: Duration,
    /// How far the cart may run ahead of the relay's clock: the backlog it sends after an
    /// outage. Beyond it the cart floods and the session is closed.
    pub max_backlog: Duration,
    /// How far the cart's clock may drift from the sample count before its rate is not the one
    /// it declared (a fraction of the elapsed time, plus `clock_slack`).
    pub clock_drift: f64,
    pub clock_slack: Duration,
    /// Longest session.
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: Duration::from_secs(1),
            max_backlog: Duration::from_secs(600),
            clock_drift: 0.02,
            clock_slack: Duration::from_millis(500),
            max_duration: Duration::from_secs(4 * 3600),
        }
    }
}

/// Why a session is refused or closed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("the sampling rate {0} Hz is not supported (500 or 1000)")]
    Rate(u32),
    #[error("a 12-lead session needs the leads I, II, III, aVR, aVL, aVF, V1–V6 in that order; the cart sent {got} lead(s): {labels}")]
    Leads { got: usize, labels: String },
    #[error("{got} calibration(s) for 12 leads")]
    CalibrationCount { got: usize },
    #[error("lead {lead}'s calibration is not usable (sensitivity {sensitivity} µV, baseline {baseline} µV)")]
    Calibration {
        lead: &'static str,
        sensitivity: f64,
        baseline: f64,
    },
    #[error("the session changed its {what} mid-session ({from} → {to}); a new setting needs a new session")]
    Changed {
        what: &'static str,
        from: String,
        to: String,
    },
    #[error("frame {got} came when frame {expected} was due: frames were lost on the cart")]
    Gap { expected: u64, got: u64 },
    #[error("frame {seq} starts at sample {got}, but sample {expected} was due")]
    Samples { seq: u64, expected: u64, got: u64 },
    #[error("frame {seq} cannot be decoded: {reason}")]
    Malformed { seq: u64, reason: String },
    #[error(
        "frame {seq} carries {samples} samples per lead; at most {max} are allowed in one frame"
    )]
    FrameTooLong {
        seq: u64,
        samples: usize,
        max: usize,
    },
    #[error("the cart's clock says {clock_ms} ms but {samples} samples at {rate_hz} Hz make {sampled_ms} ms: its rate is not the one it declared")]
    Clock {
        clock_ms: u64,
        samples: u64,
        rate_hz: u32,
        sampled_ms: u64,
    },
    #[error("the cart sends faster than real time: {ahead_s:.0} s ahead of the relay's clock (limit {limit_s:.0} s)")]
    Flood { ahead_s: f64, limit_s: f64 },
    #[error("the session is longer than the limit of {limit_s:.0} s")]
    TooLong { limit_s: f64 },
    #[error("frame {seq}'s datagram and stream copies differ")]
    Copies { seq: u64 },
    #[error("the {what} {value} is beyond any session's length")]
    Counter { what: &'static str, value: u64 },
}

/// A `Start` that passed the checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub start: Start,
    pub rate: SampleRate,
    pub calibration: [Calibration; LEAD_COUNT],
}

/// Check a cart's `Start`.
pub fn check_start(start: &Start) -> Result<Accepted, SessionError> {
    let rate = SampleRate::from_hz(start.rate_hz).ok_or(SessionError::Rate(start.rate_hz))?;
    if start.first_seq > MAX_COUNT {
        return Err(SessionError::Counter {
            what: "first frame number",
            value: start.first_seq,
        });
    }
    let standard = start.leads.len() == LEAD_COUNT
        && start
            .leads
            .iter()
            .zip(Lead::ALL)
            .all(|(l, lead)| Lead::from_label(l) == Some(lead));
    if !standard {
        return Err(SessionError::Leads {
            got: start.leads.len(),
            labels: start
                .leads
                .iter()
                .take(16)
                .map(|l| l.chars().take(16).collect::<String>())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if start.calibration.len() != LEAD_COUNT {
        return Err(SessionError::CalibrationCount {
            got: start.calibration.len(),
        });
    }
    let mut calibration = [Calibration::default(); LEAD_COUNT];
    for (i, c) in start.calibration.iter().enumerate() {
        let usable = c.sensitivity_uv.is_finite()
            && c.sensitivity_uv > 0.0
            && c.sensitivity_uv < 1e6
            && c.baseline_uv.is_finite()
            && c.baseline_uv.abs() < 1e9;
        if !usable {
            return Err(SessionError::Calibration {
                lead: Lead::ALL[i].label(),
                sensitivity: c.sensitivity_uv,
                baseline: c.baseline_uv,
            });
        }
        calibration[i] = *c;
    }
    Ok(Accepted {
        start: start.clone(),
        rate,
        calibration,
    })
}

/// What to do with a frame.
#[derive(Debug, PartialEq)]
pub enum FrameOutcome {
    /// New: fan it out and record it.
    New(Block),
    /// Already held (a cart re-sending after a reconnection): nothing to do.
    Duplicate,
}

/// One session's checks and counters.
#[derive(Debug)]
pub struct Session {
    accepted: Accepted,
    limits: Limits,
    /// The relay's clock when the session (first) started here, and the cart's position then.
    origin: Duration,
    origin_sample: u64,
    next_seq: u64,
    next_sample: u64,
}

impl Session {
    /// A session starting at `now`, from the `Start`'s `first_seq` (a relay that restarted
    /// takes a session up where the cart's held frames begin).
    pub fn new(accepted: Accepted, limits: Limits, now: Duration) -> Session {
        let next_seq = accepted.start.first_seq;
        Session {
            accepted,
            limits,
            origin: now,
            origin_sample: u64::MAX,
            next_seq,
            next_sample: u64::MAX,
        }
    }

    pub fn id(&self) -> SessionId {
        self.accepted.start.session
    }

    pub fn accepted(&self) -> &Accepted {
        &self.accepted
    }

    pub fn rate(&self) -> SampleRate {
        self.accepted.rate
    }

    /// Most samples per lead one frame may carry.
    pub fn max_frame_samples(&self) -> usize {
        let hz = u64::from(self.accepted.rate.hz());
        (self.limits.max_frame.as_millis() as u64 * hz / 1000).max(1) as usize
    }

    /// The next frame the relay needs.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Samples per lead received so far (from the session's first sample).
    pub fn samples(&self) -> u64 {
        if self.next_sample == u64::MAX {
            0
        } else {
            self.next_sample
        }
    }

    /// The cart reconnected with `start`: the same settings, or an error. Answers the next
    /// frame needed. A cart whose held frames begin after the next one lost frames.
    pub fn resume(&mut self, start: &Start) -> Result<u64, SessionError> {
        let a = &self.accepted.start;
        let changed = |what, from: String, to: String| SessionError::Changed { what, from, to };
        if start.rate_hz != a.rate_hz {
            return Err(changed(
                "sampling rate",
                format!("{} Hz", a.rate_hz),
                format!("{} Hz", start.rate_hz),
            ));
        }
        if start.leads != a.leads {
            return Err(changed("leads", a.leads.join(","), start.leads.join(",")));
        }
        if start.calibration != a.calibration {
            return Err(changed(
                "calibration",
                "as started".into(),
                "different".into(),
            ));
        }
        if start.first_seq > self.next_seq {
            return Err(SessionError::Gap {
                expected: self.next_seq,
                got: start.first_seq,
            });
        }
        Ok(self.next_seq)
    }

    /// Check one frame received at `now`.
    pub fn frame(&mut self, frame: &Frame, now: Duration) -> Result<FrameOutcome, SessionError> {
        if frame.seq < self.next_seq {
            return Ok(FrameOutcome::Duplicate);
        }
        if frame.seq > self.next_seq {
            return Err(SessionError::Gap {
                expected: self.next_seq,
                got: frame.seq,
            });
        }
        if frame.first_sample > MAX_COUNT || frame.seq >= MAX_COUNT {
            return Err(SessionError::Counter {
                what: "frame or sample number",
                value: frame.first_sample.max(frame.seq),
            });
        }
        let block = codec::decode(&frame.data).map_err(|e| SessionError::Malformed {
            seq: frame.seq,
            reason: e.to_string(),
        })?;
        let hz = u64::from(self.accepted.rate.hz());
        let max = self.max_frame_samples();
        if block.per_lead() > max {
            return Err(SessionError::FrameTooLong {
                seq: frame.seq,
                samples: block.per_lead(),
                max,
            });
        }
        if self.next_sample == u64::MAX {
            // The first frame this relay sees of the session sets where it stands.
            self.next_sample = frame.first_sample;
            self.origin_sample = frame.first_sample;
        } else if frame.first_sample != self.next_sample {
            return Err(SessionError::Samples {
                seq: frame.seq,
                expected: self.next_sample,
                got: frame.first_sample,
            });
        }
        // The cart's clock against its sample count (a rate change shows here).
        let sampled_us = frame.first_sample.saturating_mul(1_000_000) / hz;
        let allowed = (sampled_us as f64 * self.limits.clock_drift) as u64
            + self.limits.clock_slack.as_micros() as u64;
        if frame.device_time_us.abs_diff(sampled_us) > allowed {
            return Err(SessionError::Clock {
                clock_ms: frame.device_time_us / 1000,
                samples: frame.first_sample,
                rate_hz: self.accepted.rate.hz(),
                sampled_ms: sampled_us / 1000,
            });
        }
        let end = frame.first_sample + block.per_lead() as u64;
        // Flood: how far the received samples run ahead of the relay's clock.
        let received_s = (end - self.origin_sample) as f64 / hz as f64;
        let elapsed_s = now.saturating_sub(self.origin).as_secs_f64();
        let ahead_s = received_s - elapsed_s;
        if ahead_s > self.limits.max_backlog.as_secs_f64() {
            return Err(SessionError::Flood {
                ahead_s,
                limit_s: self.limits.max_backlog.as_secs_f64(),
            });
        }
        if end as f64 / hz as f64 > self.limits.max_duration.as_secs_f64() {
            return Err(SessionError::TooLong {
                limit_s: self.limits.max_duration.as_secs_f64(),
            });
        }
        self.next_seq += 1;
        self.next_sample = end;
        Ok(FrameOutcome::New(block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Start {
        Start::standard(
            SessionId([9; 16]),
            SampleRate::Hz500,
            &[Calibration::default(); LEAD_COUNT],
        )
    }

    /// Frame `seq` of 20 samples per lead at 500 Hz (40 ms), on time.
    fn frame(seq: u64) -> Frame {
        frame_n(seq, seq * 20, 20)
    }

    fn frame_n(seq: u64, first_sample: u64, n: usize) -> Frame {
        let block = Block::from_lead_major(vec![seq as i16; n * LEAD_COUNT]).unwrap();
        let mut data = Vec::new();
        codec::encode(&block, &mut data);
        Frame {
            seq,
            first_sample,
            device_time_us: first_sample * 2000,
            data,
        }
    }

    fn session() -> Session {
        Session::new(
            check_start(&start()).unwrap(),
            Limits::default(),
            Duration::ZERO,
        )
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn starts_are_checked() {
        assert!(check_start(&start()).is_ok());
        let mut s = start();
        s.rate_hz = 250;
        assert_eq!(check_start(&s), Err(SessionError::Rate(250)));
        let mut s = start();
        s.leads.pop();
        let e = check_start(&s).unwrap_err();
        assert!(matches!(e, SessionError::Leads { got: 11, .. }), "{e}");
        assert!(e.to_string().contains("11 lead(s)"), "{e}");
        let mut s = start();
        s.leads.swap(0, 1);
        assert!(matches!(check_start(&s), Err(SessionError::Leads { .. })));
        let mut s = start();
        s.calibration.truncate(3);
        assert_eq!(
            check_start(&s),
            Err(SessionError::CalibrationCount { got: 3 })
        );
        let mut s = start();
        s.calibration[4].sensitivity_uv = f64::NAN;
        assert!(matches!(
            check_start(&s),
            Err(SessionError::Calibration { lead: "aVL", .. })
        ));
        let mut s = start();
        s.calibration[0].sensitivity_uv = 0.0;
        assert!(check_start(&s).is_err());
        let mut s = start();
        s.first_seq = u64::MAX;
        assert!(matches!(check_start(&s), Err(SessionError::Counter { .. })));
    }

    #[test]
    fn frames_in_order_are_new_and_resent_ones_are_duplicates() {
        let mut s = session();
        for seq in 0..5 {
            assert!(matches!(
                s.frame(&frame(seq), at(seq * 40)).unwrap(),
                FrameOutcome::New(b) if b.per_lead() == 20
            ));
        }
        assert_eq!(s.next_seq(), 5);
        assert_eq!(s.samples(), 100);
        assert_eq!(
            s.frame(&frame(3), at(200)).unwrap(),
            FrameOutcome::Duplicate
        );
    }

    #[test]
    fn a_gap_in_sequence_or_samples_is_an_error() {
        let mut s = session();
        s.frame(&frame(0), at(0)).unwrap();
        assert_eq!(
            s.frame(&frame(2), at(80)),
            Err(SessionError::Gap {
                expected: 1,
                got: 2
            })
        );
        let e = s.frame(&frame_n(1, 25, 20), at(40)).unwrap_err();
        assert_eq!(
            e,
            SessionError::Samples {
                seq: 1,
                expected: 20,
                got: 25
            }
        );
    }

    #[test]
    fn malformed_and_oversized_frames_are_errors() {
        let mut s = session();
        let mut f = frame(0);
        f.data = vec![0xff, 1, 2];
        assert!(matches!(
            s.frame(&f, at(0)),
            Err(SessionError::Malformed { seq: 0, .. })
        ));
        // 2 s in one frame: more than the 1 s allowed.
        let e = s.frame(&frame_n(0, 0, 1000), at(0)).unwrap_err();
        assert_eq!(
            e,
            SessionError::FrameTooLong {
                seq: 0,
                samples: 1000,
                max: 500
            }
        );
    }

    #[test]
    fn a_clock_that_disagrees_with_the_rate_is_a_rate_change() {
        let mut s = session();
        for seq in 0..100 {
            s.frame(&frame(seq), at(seq * 40)).unwrap();
        }
        // The cart now samples at 1000 Hz but still says 500: its 20 samples per frame take
        // 20 ms of its clock, so its clock falls behind the sample count.
        let mut t = 100 * 40_000 / 2;
        let mut err = None;
        for seq in 100..2000 {
            let mut f = frame(seq);
            f.device_time_us = t;
            t += 20_000;
            if let Err(e) = s.frame(&f, at(seq * 20)) {
                err = Some(e);
                break;
            }
        }
        assert!(
            matches!(err, Some(SessionError::Clock { rate_hz: 500, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_flood_is_an_error_but_a_backlog_after_an_outage_is_not() {
        let mut s = session();
        // 5 minutes of backlog at once (an outage): fine.
        let mut seq = 0;
        while seq < 300 * 25 {
            s.frame(&frame(seq), at(0)).unwrap();
            seq += 1;
        }
        // Beyond 10 minutes ahead of the relay's clock: a flood.
        let mut err = None;
        while seq < 700 * 25 {
            if let Err(e) = s.frame(&frame(seq), at(0)) {
                err = Some(e);
                break;
            }
            seq += 1;
        }
        assert!(matches!(err, Some(SessionError::Flood { .. })), "{err:?}");
        assert_eq!(s.next_seq(), 600 * 25);
    }

    #[test]
    fn a_reconnection_resumes_with_the_same_settings_only() {
        let mut s = session();
        for seq in 0..3 {
            s.frame(&frame(seq), at(seq * 40)).unwrap();
        }
        let mut again = start();
        again.first_seq = 1;
        assert_eq!(s.resume(&again), Ok(3));
        again.first_seq = 4;
        assert_eq!(
            s.resume(&again),
            Err(SessionError::Gap {
                expected: 3,
                got: 4
            })
        );
        let mut faster = start();
        faster.rate_hz = 1000;
        let e = s.resume(&faster).unwrap_err();
        assert!(e.to_string().contains("500 Hz → 1000 Hz"), "{e}");
    }
}
