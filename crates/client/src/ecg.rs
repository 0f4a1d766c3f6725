//! `yilian ecg stream` and `yilian ecg watch`: a cart's live session, and a cardiologist's view.
//!
//! Streaming: blocks of samples are taken in real time from a [`Samples`] source, numbered and
//! kept in an [`Outbox`] until the relay says they are recorded; the link may drop or the relay
//! restart at any time: the cart reconnects with backoff and sends again from where the relay
//! stands, so the recording stays complete. Watching: the relay sends the session's header,
//! the last seconds, then every frame (or a count of what was missed when the viewer fell
//! behind).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use yilian_ecg::codec;
use yilian_ecg::model::Block;
use yilian_ecg::samples::Samples;
use yilian_ecg::source::Outbox;
use yilian_ecg::wire::{
    Frame, Header, LiveDatagram, PatientWire, SessionId, SessionSummary, SourceMsg, SourceReply,
    Start, WatchMsg, WatchReply,
};
use yilian_proto::{encode_frame, FrameDecoder, Request};

use crate::connect::{self, Backoff, ClientConfig};
use crate::{ClientError, Progress};

/// Frames before the newest that each live datagram also carries (when they fit): a lost
/// datagram is filled 40 ms later by the next one (`benches/ecg_transport.rs`, mode D).
const REDUNDANT: u64 = 2;

/// Frames that go as datagrams too: the newest second's (25 frames of 40 ms).
const LIVE_DATAGRAM_FRAMES: u64 = 25;

/// Bytes of ECG a viewer's stream may have in flight (about 10 s of 12 leads at 500 Hz,
/// compressed).
pub const LIVE_WINDOW: u64 = 64 * 1024;

/// What to stream.
#[derive(Clone)]
pub struct EcgStreamOptions {
    pub client: ClientConfig,
    /// Stop after this much ECG (None: until the source ends or `stop`).
    pub seconds: Option<f64>,
    pub urgent: bool,
    /// Samples per frame, as a duration (40 ms: 20 samples at 500 Hz).
    pub frame: Duration,
    pub patient: PatientWire,
    pub device: Option<String>,
    /// Longest backlog the cart holds while the relay cannot be reached.
    pub max_held: Duration,
}

/// How a session went.
#[derive(Clone, Debug)]
pub struct EcgStreamReport {
    pub session: SessionId,
    pub frames: u64,
    pub seconds: f64,
    pub objects: u32,
    pub complete: bool,
    pub reason: Option<String>,
    pub reconnections: u32,
    /// Frames the cart dropped unrecorded (its buffer was full during a long outage).
    pub dropped: u64,
}

/// A fresh random session id.
pub fn new_session_id() -> SessionId {
    let mut h = blake3::Hasher::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_be_bytes());
    h.update(&std::process::id().to_be_bytes());
    let mut urandom = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        if f.read_exact(&mut urandom).is_err() {
            tracing::debug!("no /dev/urandom: a session id from the clock and pid");
        }
    }
    h.update(&urandom);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    SessionId(id)
}

struct Shared {
    outbox: Mutex<Outbox>,
    more: Notify,
    /// The source is done (time up, source exhausted, or stopped).
    done: std::sync::atomic::AtomicBool,
}

/// Stream one session until `seconds`, the end of the source, or `stop`, then close it and wait
/// for the relay to record it.
pub async fn stream_ecg(
    opts: &EcgStreamOptions,
    mut samples: Box<dyn Samples>,
    stop: impl Future<Output = ()> + Send + 'static,
    progress: Arc<dyn Progress>,
) -> Result<EcgStreamReport, ClientError> {
    let session = new_session_id();
    let rate = samples.rate();
    let hz = u64::from(rate.hz());
    let per_lead = ((opts.frame.as_millis() as u64 * hz) / 1000).max(1) as usize;
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let start = Start {
        urgent: opts.urgent,
        patient: opts.patient.clone(),
        started_unix_ms,
        device: opts.device.clone(),
        ..Start::standard(session, rate, &samples.calibration())
    };
    let max_held = (opts.max_held.as_secs() * hz).max(per_lead as u64);
    let shared = Arc::new(Shared {
        outbox: Mutex::new(Outbox::new(start, max_held)),
        more: Notify::new(),
        done: std::sync::atomic::AtomicBool::new(false),
    });
    // The source, in real time.
    let limit = opts.seconds.map(|s| (s * hz as f64).round() as u64);
    let producer = {
        let shared = shared.clone();
        let frame = Duration::from_micros(per_lead as u64 * 1_000_000 / hz);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(frame);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let t0 = Instant::now();
            tokio::pin!(stop);
            let mut made = 0u64;
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tick.tick() => {}
                }
                let want = limit.map_or(per_lead as u64, |l| (l - made).min(per_lead as u64));
                if want == 0 {
                    break;
                }
                let Some(block) = samples.next_block(want as usize) else {
                    break;
                };
                let device_time = made * 1_000_000 / hz;
                made += block.per_lead() as u64;
                lock(&shared.outbox).push(&block, device_time);
                shared.more.notify_one();
                tracing::trace!(elapsed = ?t0.elapsed(), made, "block");
            }
            shared.done.store(true, std::sync::atomic::Ordering::SeqCst);
            shared.more.notify_one();
        })
    };
    let endpoint = connect::endpoint(&opts.client)?;
    let mut backoff = Backoff::default();
    let mut reconnections = 0u32;
    let outcome = loop {
        let conn = connect::connect(
            &endpoint,
            &opts.client,
            progress.as_ref(),
            connect::Handover::Confirmed,
        )
        .await?;
        match run_stream(&conn, &shared, progress.as_ref()).await {
            Ok(closed) => {
                connect::close(&endpoint, &conn, b"session recorded").await;
                break Ok(closed);
            }
            Err(StreamEnd::Refused(r)) => break Err(ClientError::Refused(r)),
            Err(StreamEnd::Link(e)) => {
                reconnections += 1;
                let d = backoff.next_delay();
                progress.status(&format!(
                    "link to the relay lost ({e}); the cart keeps the frames and reconnects in {:.1} s",
                    d.as_secs_f32()
                ));
                tokio::time::sleep(d).await;
            }
        }
    };
    producer.abort();
    let (complete, objects, reason) = outcome?;
    let o = lock(&shared.outbox);
    Ok(EcgStreamReport {
        session,
        frames: o.frames(),
        seconds: o.samples() as f64 / hz as f64,
        objects,
        complete: complete && o.dropped() == 0,
        reason,
        reconnections,
        dropped: o.dropped(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum StreamEnd {
    Refused(String),
    Link(String),
}

/// One stream of the session: `Ok((complete, objects, reason))` once the relay closed it.
async fn run_stream(
    conn: &quinn::Connection,
    shared: &Arc<Shared>,
    progress: &dyn Progress,
) -> Result<(bool, u32, Option<String>), StreamEnd> {
    let link = |e: &dyn std::fmt::Display| StreamEnd::Link(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| {
        if connect::refused_for_good(&e) {
            StreamEnd::Refused(yilian_transport::explain(&e))
        } else {
            link(&e)
        }
    })?;
    let start = lock(&shared.outbox).start();
    let session_id = start.session;
    let mut hello = bytes::BytesMut::new();
    hello.extend_from_slice(&encode_frame(&Request::EcgSource));
    hello.extend_from_slice(&encode_frame(&SourceMsg::Start(Box::new(start))));
    send.write_chunk(hello.freeze())
        .await
        .map_err(|e| link(&e))?;
    let mut dec = FrameDecoder::new();
    let mut accepted = false;
    let mut ended = false;
    loop {
        if accepted {
            // Everything ready goes out.
            let mut out = bytes::BytesMut::new();
            let mut live = Vec::new();
            {
                let mut o = lock(&shared.outbox);
                let newest = o.frames();
                while let Some(f) = o.next_to_send() {
                    out.extend_from_slice(&encode_frame(&SourceMsg::Frame(f.clone())));
                    // Only frames of the last second go as datagrams too (not a backlog).
                    if f.seq + LIVE_DATAGRAM_FRAMES >= newest {
                        live.push(f.seq);
                    }
                }
                if let Some(max) = conn.max_datagram_size() {
                    for seq in live {
                        let frames: Vec<&Frame> = (seq.saturating_sub(REDUNDANT)..=seq)
                            .filter_map(|s| o.frame(s))
                            .collect();
                        let Some(d) = LiveDatagram::fitting(session_id, &frames, max) else {
                            continue;
                        };
                        if let Err(e) = conn.send_datagram(d.into()) {
                            tracing::debug!("live datagram not sent: {e}");
                        }
                    }
                }
            }
            if !out.is_empty() {
                send.write_chunk(out.freeze()).await.map_err(|e| link(&e))?;
            }
            if !ended && shared.done.load(std::sync::atomic::Ordering::SeqCst) {
                let all_sent = lock(&shared.outbox).next_to_send().is_none();
                if all_sent {
                    send.write_chunk(encode_frame(&SourceMsg::End))
                        .await
                        .map_err(|e| link(&e))?;
                    ended = true;
                    progress.status("session ended; waiting for the relay to record it");
                }
            }
        }
        while let Some(reply) = dec
            .next_frame::<SourceReply>("ECG reply")
            .map_err(|e| link(&e))?
        {
            match reply {
                SourceReply::Accepted {
                    next_seq,
                    urgent,
                    destinations,
                } => {
                    lock(&shared.outbox).accepted(next_seq);
                    accepted = true;
                    progress.status(&format!(
                        "streaming to {} ({}) from frame {next_seq}",
                        destinations.join(", "),
                        if urgent { "urgent" } else { "routine" }
                    ));
                }
                SourceReply::Recorded { upto_seq, objects } => {
                    lock(&shared.outbox).recorded(upto_seq);
                    progress.status(&format!("{objects} recording(s) stored at the relay"));
                }
                SourceReply::Closed {
                    complete,
                    objects,
                    reason,
                } => return Ok((complete, objects, reason)),
                SourceReply::Refused(r) => return Err(StreamEnd::Refused(r.reason)),
            }
        }
        tokio::select! {
            _ = shared.more.notified(), if accepted && !ended => {}
            chunk = recv.read_chunk(64 * 1024, true) => match chunk {
                Ok(Some(c)) => dec.push(c.bytes),
                Ok(None) => return Err(link(&"the relay ended the session stream")),
                Err(quinn::ReadError::ConnectionLost(e)) if connect::refused_for_good(&e) => {
                    return Err(StreamEnd::Refused(yilian_transport::explain(&e)))
                }
                Err(e) => return Err(link(&e)),
            },
        }
    }
}

/// The live sessions this reader may watch.
pub async fn list_ecg(
    client: &ClientConfig,
    progress: Arc<dyn Progress>,
) -> Result<Vec<SessionSummary>, ClientError> {
    let (endpoint, conn) = connect_once(client, progress.as_ref()).await?;
    let mut dec = FrameDecoder::new();
    let (mut send, mut recv) = open_watch(&conn, WatchMsg::List).await?;
    let reply = next_reply(&mut recv, &mut dec).await?;
    if let Err(e) = send.finish() {
        tracing::debug!("list stream: {e}");
    }
    connect::close(&endpoint, &conn, b"listed").await;
    match reply {
        Some(WatchReply::Sessions(s)) => Ok(s),
        Some(WatchReply::Refused(r)) => Err(ClientError::Refused(r.reason)),
        _ => Err(ClientError::Connect(
            "the relay did not answer the list".into(),
        )),
    }
}

/// What a viewer sees.
#[derive(Debug)]
pub enum WatchEvent {
    Header(Box<Header>),
    /// A frame's samples (`first_sample` since the session began).
    Block {
        first_sample: u64,
        block: Block,
    },
    Missed(u64),
    Ended {
        complete: bool,
    },
}

/// Watch `session` until it ends or `on_event` answers `false`.
pub async fn watch_ecg(
    client: &ClientConfig,
    session: SessionId,
    progress: Arc<dyn Progress>,
    mut on_event: impl FnMut(WatchEvent) -> bool,
) -> Result<(), ClientError> {
    // A small receive window: a viewer that stops reading (a stalled link, a busy terminal)
    // soon blocks the relay's writes to it, and the relay then skips it to the newest frames
    // instead of queueing seconds of stale ECG.
    let mut client = client.clone();
    client.tuning.stream_receive_window = client.tuning.stream_receive_window.min(LIVE_WINDOW);
    let (endpoint, conn) = connect_once(&client, progress.as_ref()).await?;
    let (_send, mut recv) = open_watch(&conn, WatchMsg::Watch { session }).await?;
    let mut dec = FrameDecoder::new();
    loop {
        let Some(reply) = next_reply(&mut recv, &mut dec).await? else {
            return Err(ClientError::Connect(
                "the relay ended the session stream".into(),
            ));
        };
        let event = match reply {
            WatchReply::Header(h) => WatchEvent::Header(h),
            WatchReply::Frame(f) => match codec::decode(&f.data) {
                Ok(block) => WatchEvent::Block {
                    first_sample: f.first_sample,
                    block,
                },
                Err(e) => {
                    return Err(ClientError::Connect(format!(
                        "a frame cannot be decoded: {e}"
                    )))
                }
            },
            WatchReply::Missed { frames } => WatchEvent::Missed(frames),
            WatchReply::Ended { complete } => WatchEvent::Ended { complete },
            WatchReply::Refused(r) => return Err(ClientError::Refused(r.reason)),
            WatchReply::Sessions(_) => continue,
        };
        let last = matches!(event, WatchEvent::Ended { .. });
        if !on_event(event) || last {
            connect::close(&endpoint, &conn, b"watched").await;
            return Ok(());
        }
    }
}

/// A viewer's connection to the relay (retried as `read` does while it cannot be reached).
async fn connect_once(
    client: &ClientConfig,
    progress: &dyn Progress,
) -> Result<(quinn::Endpoint, quinn::Connection), ClientError> {
    let endpoint = connect::endpoint(client)?;
    let conn = connect::connect(&endpoint, client, progress, connect::Handover::Confirmed).await?;
    Ok((endpoint, conn))
}

async fn open_watch(
    conn: &quinn::Connection,
    msg: WatchMsg,
) -> Result<(quinn::SendStream, quinn::RecvStream), ClientError> {
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| ClientError::Connect(yilian_transport::explain(&e)))?;
    let mut hello = bytes::BytesMut::new();
    hello.extend_from_slice(&encode_frame(&Request::EcgWatch));
    hello.extend_from_slice(&encode_frame(&msg));
    send.write_chunk(hello.freeze())
        .await
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    Ok((send, recv))
}

async fn next_reply(
    recv: &mut quinn::RecvStream,
    dec: &mut FrameDecoder,
) -> Result<Option<WatchReply>, ClientError> {
    loop {
        if let Some(r) = dec.next_frame::<WatchReply>("ECG watch reply")? {
            return Ok(Some(r));
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => dec.push(c.bytes),
            Ok(None) => return Ok(None),
            Err(quinn::ReadError::ConnectionLost(e)) if connect::refused_for_good(&e) => {
                return Err(ClientError::Refused(yilian_transport::explain(&e)))
            }
            Err(e) => return Err(ClientError::Connect(e.to_string())),
        }
    }
}
