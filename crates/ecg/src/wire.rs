//! The ECG sub-protocol's messages, framed like every yilian/1 control frame (`u32` big-endian
//! length + postcard, at most [`yilian_proto::MAX_FRAME_LEN`] bytes).
//!
//! A stream whose first request is `Request::EcgSource` carries one session from a cart:
//!
//! ```text
//! cart                                          relay
//! SourceMsg::Start{session, rate, leads, …}  →
//!                                            ← SourceReply::Accepted{next_seq} | Refused
//! SourceMsg::Frame{seq, device_time, data}   →  (data: one codec block)
//!                                            ← SourceReply::Recorded{upto_seq, …}  (any time)
//! SourceMsg::End                             →
//!                                            ← SourceReply::Closed{complete, objects}
//! ```
//!
//! The cart keeps every frame until a `Recorded` covers it: after a cut link or a relay
//! restart it opens a new stream with the same session and `first_seq`, and the relay answers
//! which sequence number it needs next. A stream whose first request is `Request::EcgWatch`
//! carries a viewer: `WatchMsg::List` is answered with the live sessions the viewer may see,
//! `WatchMsg::Watch` with the session's header, the last seconds of frames, then every new
//! frame (or a `Missed` count when the viewer fell behind), and `Ended` at the end.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::model::Calibration;
use yilian_dicom::Phi;

/// A session's identity, chosen by the cart (random), kept across reconnections.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// As 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// From 32 hex digits.
    pub fn from_hex(s: &str) -> Option<SessionId> {
        let s = s.trim();
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(SessionId(out))
    }

    /// As a number (for `2.25.` UIDs).
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.hex())
    }
}

/// Patient and study context a cart sends with a session. Patient data: held as
/// [`Phi`] everywhere (its `Debug` prints `[redacted]`), never logged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientWire {
    pub name: Phi<String>,
    pub id: Phi<String>,
    /// DICOM DA (YYYYMMDD), empty if unknown.
    pub birth_date: Phi<String>,
    /// `M`, `F`, `O` or empty.
    pub sex: String,
    pub accession: Phi<String>,
    /// The study this ECG belongs to, if the cart has one from a worklist; otherwise the relay
    /// makes one from the session.
    pub study_uid: Option<String>,
}

/// First frame of a session stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub session: SessionId,
    /// Samples per second per lead (500 or 1000).
    pub rate_hz: u32,
    /// Lead labels, in the order of every block: exactly the 12 standard leads.
    pub leads: Vec<String>,
    /// One per lead.
    pub calibration: Vec<Calibration>,
    /// Suspected STEMI or another emergency: the relay's rules may raise, never lower, it.
    pub urgent: bool,
    pub patient: PatientWire,
    /// When the first sample was taken (cart clock, Unix milliseconds).
    pub started_unix_ms: u64,
    /// The first frame this stream will carry (0 for a new session; after a reconnection, the
    /// oldest frame the cart still holds).
    pub first_seq: u64,
    /// The cart's make and model, if it says.
    pub device: Option<String>,
}

impl Start {
    /// A new session's `Start`: the 12 standard leads at `rate` with `calibration`, routine,
    /// no patient context yet, from frame 0.
    pub fn standard(
        session: SessionId,
        rate: crate::model::SampleRate,
        calibration: &[Calibration; crate::model::LEAD_COUNT],
    ) -> Start {
        Start {
            session,
            rate_hz: rate.hz(),
            leads: crate::model::Lead::ALL
                .iter()
                .map(|l| l.label().to_string())
                .collect(),
            calibration: calibration.to_vec(),
            urgent: false,
            patient: PatientWire::default(),
            started_unix_ms: 0,
            first_seq: 0,
            device: None,
        }
    }
}

/// One block of samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// 0, 1, 2 … with no gaps within a session.
    pub seq: u64,
    /// Sample index of the block's first sample since the session's first sample.
    pub first_sample: u64,
    /// The cart's clock when the block's first sample was taken, µs since the session started.
    pub device_time_us: u64,
    /// The block, encoded by [`crate::codec`].
    pub data: Vec<u8>,
}

/// A QUIC datagram of a cart's live frames (postcard, no length prefix): the newest frame and,
/// space allowing, the ones just before it. The stream carries every frame reliably for the
/// recording; datagrams carry them for viewers without head-of-line blocking, and the copies
/// of earlier frames fill a lost datagram 40 ms later instead of a round trip later
/// (`benches/ecg_transport.rs`, mode D).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDatagram {
    pub session: SessionId,
    /// Oldest first.
    pub frames: Vec<Frame>,
}

impl LiveDatagram {
    /// The datagram of `frames` (oldest first) that fits in `max` bytes, dropping the oldest
    /// ones as needed; `None` if not even the newest fits.
    pub fn fitting(session: SessionId, frames: &[&Frame], max: usize) -> Option<Vec<u8>> {
        for skip in 0..frames.len() {
            let d = LiveDatagram {
                session,
                frames: frames[skip..].iter().map(|f| (*f).clone()).collect(),
            };
            if let Ok(bytes) = postcard::to_stdvec(&d) {
                if bytes.len() <= max {
                    return Some(bytes);
                }
            }
        }
        None
    }
}

/// Cart → relay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceMsg {
    Start(Box<Start>),
    Frame(Frame),
    /// The session ends normally (Ctrl-C, the time asked for).
    End,
}

/// Relay → cart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SourceReply {
    /// Send frames from `next_seq` on (frames before it are already held).
    Accepted {
        next_seq: u64,
        /// As routed (a rule may have raised it).
        urgent: bool,
        /// Who it is routed to (site/department).
        destinations: Vec<String>,
    },
    /// Frames before `upto_seq` are durable in DICOM objects: the cart may forget them.
    Recorded {
        upto_seq: u64,
        objects: u32,
    },
    /// The session is over; `complete`: the recording has every sample.
    Closed {
        complete: bool,
        objects: u32,
        reason: Option<String>,
    },
    Refused(yilian_proto::Refusal),
}

/// Viewer → relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchMsg {
    /// The live sessions this viewer may watch.
    List,
    /// Watch one (by id).
    Watch { session: SessionId },
}

/// One line of the list of live sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session: SessionId,
    /// The cart's site.
    pub site: String,
    pub device: String,
    pub urgent: bool,
    pub rate_hz: u32,
    pub started_unix_ms: u64,
    /// Seconds of ECG received so far.
    pub seconds: f64,
    pub watchers: u32,
}

/// What a viewer needs before the frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub summary: SessionSummary,
    pub leads: Vec<String>,
    pub calibration: Vec<Calibration>,
    /// For a viewer the session is routed to (patient data: never logged).
    pub patient: PatientWire,
}

/// Relay → viewer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WatchReply {
    Sessions(Vec<SessionSummary>),
    Header(Box<Header>),
    Frame(Frame),
    /// The viewer fell behind: this many frames were skipped; the next frame is live.
    Missed {
        frames: u64,
    },
    /// The session is over.
    Ended {
        complete: bool,
    },
    Refused(yilian_proto::Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use yilian_proto::{encode_frame, FrameDecoder};

    #[test]
    fn session_ids_print_and_parse() {
        let id = SessionId([0xab; 16]);
        assert_eq!(SessionId::from_hex(&id.hex()), Some(id));
        assert_eq!(SessionId::from_hex("xyz"), None);
        assert_eq!(SessionId::from_hex(&"é".repeat(16)), None);
    }

    #[test]
    fn messages_round_trip_through_frames() {
        let msgs = vec![
            SourceMsg::Start(Box::new(Start {
                session: SessionId([7; 16]),
                rate_hz: 500,
                leads: crate::Lead::ALL.iter().map(|l| l.label().into()).collect(),
                calibration: vec![Calibration::default(); 12],
                urgent: true,
                patient: PatientWire {
                    name: Phi::new("王^小东".into()),
                    ..Default::default()
                },
                started_unix_ms: 1,
                first_seq: 0,
                device: None,
            })),
            SourceMsg::Frame(Frame {
                seq: 3,
                first_sample: 60,
                device_time_us: 120_000,
                data: vec![1, 2, 3],
            }),
            SourceMsg::End,
        ];
        let mut dec = FrameDecoder::new();
        for m in &msgs {
            dec.push(encode_frame(m));
        }
        for m in &msgs {
            assert_eq!(&dec.next_frame::<SourceMsg>("ecg").unwrap().unwrap(), m);
        }
        dec.push(Bytes::from_static(&[0, 0, 0, 1, 0xff]));
        assert!(dec.next_frame::<SourceMsg>("ecg").is_err());
    }

    #[test]
    fn a_live_datagram_keeps_the_newest_frames_that_fit() {
        let f = |seq| Frame {
            seq,
            first_sample: seq * 20,
            device_time_us: 0,
            data: vec![7; 100],
        };
        let (a, b, c) = (f(1), f(2), f(3));
        let id = SessionId([2; 16]);
        let all = LiveDatagram::fitting(id, &[&a, &b, &c], 1200).unwrap();
        let d: LiveDatagram = postcard::from_bytes(&all).unwrap();
        assert_eq!(
            d.frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let two = LiveDatagram::fitting(id, &[&a, &b, &c], 260).unwrap();
        let d: LiveDatagram = postcard::from_bytes(&two).unwrap();
        assert_eq!(
            d.frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(LiveDatagram::fitting(id, &[&a], 50).is_none());
    }

    #[test]
    fn patient_context_is_not_in_debug_output() {
        let p = PatientWire {
            name: Phi::new("王^小东".into()),
            id: Phi::new("P123".into()),
            ..Default::default()
        };
        let s = format!("{p:?}");
        assert!(!s.contains("小东") && !s.contains("P123"), "{s}");
    }
}
