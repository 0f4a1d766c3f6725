//! Live ECG at the relay: carts' sessions in, viewers out, recordings into the ingest path.
//!
//! A thin driver of `yilian-ecg`'s sans-IO pieces. A cart's stream (`Request::EcgSource`)
//! feeds its session's [`Live`] (checks, the viewers' ring, the recorder); each full recording
//! object is written as DICOM and stored through the one ingest path (`Ingest::store_whole`,
//! the same checks, routing, durability and audit as any upload), then the cart is told it may
//! forget those frames. A viewer's stream (`Request::EcgWatch`) is a reader the session is
//! routed to: it gets the header, the last seconds, then every frame, or a count of what it
//! missed when it cannot keep up; a slow viewer only ever blocks its own task.
//!
//! A cart whose stream breaks has [`EcgSettings::grace`] to come back and go on where the
//! relay stands; after that the session is closed, its recording kept and marked incomplete.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};
use yilian_ecg::fanout::Next;
use yilian_ecg::live::{Live, LiveConfig, Routing};
use yilian_ecg::recorder::Segment;
use yilian_ecg::session::{check_start, SessionError};
use yilian_ecg::wire::{SessionId, SourceMsg, SourceReply, Start, WatchMsg, WatchReply};
use yilian_ingest::UploadSpec;
use yilian_proto::{encode_frame, FrameDecoder, InstanceFacts, Refusal, RefuseCode};
use yilian_route::{Priority, RouteInput};
use yilian_store::AuditAction;
use yilian_transport::{PeerIdentity, Role};

use crate::audit::record as audit;
use crate::ctx::Ctx;

/// Timing of live sessions.
#[derive(Clone, Debug)]
pub struct EcgSettings {
    pub live: LiveConfig,
    /// A cart that sends nothing for this long has gone (its stream is dropped).
    pub idle: Duration,
    /// How long a cart that went away may come back before its session is closed.
    pub grace: Duration,
}

impl Default for EcgSettings {
    fn default() -> Self {
        EcgSettings {
            live: LiveConfig::default(),
            idle: Duration::from_secs(15),
            grace: Duration::from_secs(60),
        }
    }
}

/// One session at the relay.
struct Entry {
    live: Mutex<Live>,
    changed: Notify,
    /// The cart (identity name) it belongs to.
    owner: String,
    /// Which stream of the cart is attached (0: none).
    attached: AtomicU64,
    /// Where to tell the attached stream's cart what was recorded.
    replies: Mutex<Option<mpsc::UnboundedSender<SourceReply>>>,
    /// Recordings are written one after the other, in order.
    recording: tokio::sync::Mutex<Recorded>,
    /// An urgent session keeps its site's uploads yielding the uplink until it closes.
    urgent_live: Mutex<Option<crate::uplink::UrgentLive>>,
}

#[derive(Default)]
struct Recorded {
    objects: u32,
    upto_seq: u64,
    failed: Option<String>,
}

/// The live sessions of a relay.
pub(crate) struct EcgSessions {
    sessions: Mutex<HashMap<SessionId, Arc<Entry>>>,
    settings: EcgSettings,
    epoch: Instant,
    streams: AtomicU64,
}

impl EcgSessions {
    pub(crate) fn new(settings: EcgSettings) -> EcgSessions {
        EcgSessions {
            sessions: Mutex::default(),
            settings,
            epoch: Instant::now(),
            streams: AtomicU64::new(1),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn get(&self, id: &SessionId) -> Option<Arc<Entry>> {
        lock(&self.sessions).get(id).cloned()
    }

    fn remove(&self, id: &SessionId) {
        lock(&self.sessions).remove(id);
    }

    /// Live sessions, for a gauge.
    pub(crate) fn count(&self) -> usize {
        lock(&self.sessions).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why reading a message failed.
enum ReadFail {
    /// The peer sent something that is not a valid frame (too large, undecodable).
    Proto(yilian_proto::ProtoError),
    /// The stream broke (reset, connection lost).
    Stream(String),
}

impl std::fmt::Display for ReadFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFail::Proto(e) => write!(f, "{e}"),
            ReadFail::Stream(e) => f.write_str(e),
        }
    }
}

/// Read the next message of type `T`; `Ok(None)` at the end of the stream.
async fn next_msg<T: serde::de::DeserializeOwned>(
    recv: &mut RecvStream,
    dec: &mut FrameDecoder,
    what: &'static str,
) -> Result<Option<T>, ReadFail> {
    loop {
        if let Some(m) = dec.next_frame::<T>(what).map_err(ReadFail::Proto)? {
            return Ok(Some(m));
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(chunk)) => dec.push(chunk.bytes),
            Ok(None) => return Ok(None),
            Err(e) => return Err(ReadFail::Stream(e.to_string())),
        }
    }
}

async fn refuse_source(ctx: &Arc<Ctx>, peer: &PeerIdentity, send: &mut SendStream, r: Refusal) {
    warn!(peer = %peer.name, code = %r.code, "ECG session refused: {}", r.reason);
    audit(
        ctx,
        peer,
        AuditAction::EcgStream,
        None,
        None,
        "refused",
        Some(r.reason.clone()),
    )
    .await;
    tell(send, &SourceReply::Refused(r)).await;
}

async fn tell<T: serde::Serialize>(send: &mut SendStream, msg: &T) {
    let r = send.write_chunk(encode_frame(msg)).await;
    if let Err(e) = r
        .map_err(|e| e.to_string())
        .and_then(|_| send.finish().map_err(|e| e.to_string()))
    {
        debug!("could not tell the peer: {e}");
    }
}

/// A cart's session stream.
pub(crate) async fn serve_source(
    ctx: Arc<Ctx>,
    peer: Arc<PeerIdentity>,
    mut send: SendStream,
    mut recv: RecvStream,
    mut dec: FrameDecoder,
) {
    if peer.role != Role::Device {
        let r = Refusal {
            code: RefuseCode::Unauthorized,
            reason: format!(
                "{} is a {} identity; only an ECG cart's (device) certificate may stream ECG",
                peer.name, peer.role
            ),
        };
        return refuse_source(&ctx, &peer, &mut send, r).await;
    }
    let start = match tokio::time::timeout(
        Duration::from_secs(30),
        next_msg::<SourceMsg>(&mut recv, &mut dec, "ECG start"),
    )
    .await
    {
        Ok(Ok(Some(SourceMsg::Start(s)))) => *s,
        Ok(Ok(Some(_))) => {
            let r = Refusal {
                code: RefuseCode::Malformed,
                reason: "an ECG session must begin with its Start".into(),
            };
            return refuse_source(&ctx, &peer, &mut send, r).await;
        }
        Ok(Err(e)) => {
            let r = Refusal {
                code: RefuseCode::Malformed,
                reason: format!("unreadable ECG start: {e}"),
            };
            return refuse_source(&ctx, &peer, &mut send, r).await;
        }
        Ok(Ok(None)) | Err(_) => return,
    };
    let entry = match attach(&ctx, &peer, &start).await {
        Ok(e) => e,
        Err(r) => return refuse_source(&ctx, &peer, &mut send, r).await,
    };
    let id = start.session;
    let gen = ctx.ecg.streams.fetch_add(1, Ordering::Relaxed);
    entry.attached.store(gen, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::unbounded_channel::<SourceReply>();
    *lock(&entry.replies) = Some(tx.clone());
    // The writer: replies in order, whoever sends them.
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let last = matches!(reply, SourceReply::Closed { .. } | SourceReply::Refused(_));
            if send.write_chunk(encode_frame(&reply)).await.is_err() {
                return;
            }
            if last {
                if let Err(e) = send.finish() {
                    debug!("ECG stream already closed: {e}");
                }
                return;
            }
        }
    });
    let resumed = {
        let mut live = lock(&entry.live);
        let next = live.session_mut().resume(&start);
        next.map(|n| (n, live.routing().clone()))
    };
    let outcome = match resumed {
        Ok((next_seq, routing)) => {
            let accepted = SourceReply::Accepted {
                next_seq,
                urgent: routing.urgent,
                destinations: routing.destinations.clone(),
            };
            // What was recorded before a reconnection: the cart may forget it.
            let (objects, upto_seq) = {
                let r = entry.recording.lock().await;
                (r.objects, r.upto_seq)
            };
            let mut told = tx.send(accepted).is_ok();
            if objects > 0 {
                told &= tx.send(SourceReply::Recorded { upto_seq, objects }).is_ok();
            }
            if !told {
                return;
            }
            stream_frames(&ctx, &entry, &mut recv, &mut dec).await
        }
        Err(e) => Outcome::Failed(e),
    };
    match outcome {
        Outcome::Ended => {
            info!(session = %id, peer = %peer.name, "ECG session ended by the cart");
            close(&ctx, &peer, &entry, None).await;
        }
        Outcome::Failed(e) => {
            warn!(session = %id, peer = %peer.name, "ECG session closed: {e}");
            close(&ctx, &peer, &entry, Some(e.to_string())).await;
        }
        Outcome::Gone(why) => {
            debug!(session = %id, peer = %peer.name, "ECG stream lost: {why}");
            // Unless the cart is already back on a newer stream (whose replies these are).
            {
                let mut replies = lock(&entry.replies);
                if entry.attached.load(Ordering::SeqCst) == gen {
                    *replies = None;
                }
            }
            let (ctx, peer, entry) = (ctx.clone(), peer.clone(), entry.clone());
            let grace = ctx.ecg.settings.grace;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if entry.attached.load(Ordering::SeqCst) == gen && !lock(&entry.live).is_ended() {
                    let why = format!(
                        "the cart stopped sending and did not come back within {} s",
                        grace.as_secs()
                    );
                    warn!(session = %entry.id(), peer = %peer.name, "ECG session closed: {why}");
                    close(&ctx, &peer, &entry, Some(why)).await;
                }
            });
        }
    }
    drop(tx);
    if let Err(e) = writer.await {
        debug!("ECG reply writer: {e}");
    }
}

impl Entry {
    fn id(&self) -> SessionId {
        lock(&self.live).id()
    }
}

/// Find or make the session `start` names, for `peer`.
async fn attach(ctx: &Arc<Ctx>, peer: &PeerIdentity, start: &Start) -> Result<Arc<Entry>, Refusal> {
    let malformed = |e: SessionError| Refusal {
        code: RefuseCode::Malformed,
        reason: e.to_string(),
    };
    let accepted = check_start(start).map_err(malformed)?;
    if let Some(entry) = ctx.ecg.get(&start.session) {
        if entry.owner != peer.name {
            return Err(Refusal {
                code: RefuseCode::Unauthorized,
                reason: format!("session {} belongs to another cart", start.session),
            });
        }
        if lock(&entry.live).is_ended() {
            return Err(Refusal {
                code: RefuseCode::Superseded,
                reason: format!(
                    "session {} is already closed; start a new session",
                    start.session
                ),
            });
        }
        return Ok(entry);
    }
    let topology = ctx.topology();
    let requested = if start.urgent {
        Priority::Urgent
    } else {
        Priority::Routine
    };
    let decision = topology
        .route(&RouteInput {
            source_site: &peer.site,
            modality: Some("ECG"),
            sop_class_uid: Some(yilian_ecg::record::TWELVE_LEAD_ECG),
            body_part: None,
            requested_priority: requested,
        })
        .map_err(|e| Refusal {
            code: RefuseCode::Unroutable,
            reason: e.to_string(),
        })?;
    let mut readers: Vec<String> = decision
        .destinations
        .iter()
        .flat_map(|d| topology.readers_for(d))
        .map(|i| i.name.clone())
        .collect();
    readers.sort();
    readers.dedup();
    let routing = Routing {
        site: peer.site.clone(),
        device: peer.name.clone(),
        destinations: decision
            .destinations
            .iter()
            .map(|d| d.to_string())
            .collect(),
        readers,
        urgent: decision.priority >= Priority::Urgent,
    };
    info!(
        session = %start.session, peer = %peer.name, rate_hz = start.rate_hz,
        urgent = routing.urgent, to = ?routing.destinations,
        "ECG session started"
    );
    let live = Live::new(accepted, routing, &ctx.ecg.settings.live, ctx.ecg.now());
    let entry = Arc::new(Entry {
        live: Mutex::new(live),
        changed: Notify::new(),
        owner: peer.name.clone(),
        attached: AtomicU64::new(0),
        replies: Mutex::new(None),
        recording: tokio::sync::Mutex::default(),
        urgent_live: Mutex::new(None),
    });
    let (entry, new) = {
        let mut sessions = lock(&ctx.ecg.sessions);
        let e = sessions.entry(start.session);
        let new = matches!(e, std::collections::hash_map::Entry::Vacant(_));
        (e.or_insert(entry).clone(), new)
    };
    if new && lock(&entry.live).routing().urgent {
        *lock(&entry.urgent_live) = Some(ctx.uplinks.urgent_live(&peer.site));
    }
    audit(
        ctx,
        peer,
        AuditAction::EcgStream,
        None,
        None,
        "ok",
        Some(format!("session {}", start.session)),
    )
    .await;
    Ok(entry)
}

enum Outcome {
    /// The cart said End.
    Ended,
    /// The session broke a rule: closed, recorded, incomplete.
    Failed(SessionError),
    /// The stream broke or went silent: the cart may come back.
    Gone(String),
}

async fn stream_frames(
    ctx: &Arc<Ctx>,
    entry: &Arc<Entry>,
    recv: &mut RecvStream,
    dec: &mut FrameDecoder,
) -> Outcome {
    let idle = ctx.ecg.settings.idle;
    loop {
        let msg =
            match tokio::time::timeout(idle, next_msg::<SourceMsg>(recv, dec, "ECG frame")).await {
                Err(_) => return Outcome::Gone(format!("nothing for {} s", idle.as_secs())),
                Ok(Err(ReadFail::Proto(e))) => {
                    return Outcome::Failed(SessionError::Malformed {
                        seq: lock(&entry.live).session().next_seq(),
                        reason: e.to_string(),
                    })
                }
                Ok(Err(ReadFail::Stream(e))) => return Outcome::Gone(e),
                Ok(Ok(None)) => return Outcome::Gone("the stream ended without End".into()),
                Ok(Ok(Some(m))) => m,
            };
        match msg {
            SourceMsg::Frame(frame) => {
                let now = ctx.ecg.now();
                let done = lock(&entry.live).frame(frame, now);
                entry.changed.notify_waiters();
                match done {
                    Ok(Some(segment)) => spawn_record(ctx, entry, segment, false),
                    Ok(None) => {}
                    Err(e) => return Outcome::Failed(e),
                }
            }
            SourceMsg::End => return Outcome::Ended,
            SourceMsg::Start(s) => {
                let a = lock(&entry.live).session().accepted().start.clone();
                return Outcome::Failed(SessionError::Changed {
                    what: "settings (a second Start)",
                    from: format!("{} Hz", a.rate_hz),
                    to: format!("{} Hz", s.rate_hz),
                });
            }
        }
    }
}

/// Write one recording object in the background (in order with the others).
fn spawn_record(ctx: &Arc<Ctx>, entry: &Arc<Entry>, segment: Segment, last: bool) {
    let (ctx, entry) = (ctx.clone(), entry.clone());
    tokio::spawn(async move { record(&ctx, &entry, segment, last).await });
}

/// Write `segment` as a DICOM 12-lead ECG and store it; tell the cart.
async fn record(ctx: &Arc<Ctx>, entry: &Arc<Entry>, segment: Segment, last: bool) {
    let mut recorded = entry.recording.lock().await;
    // Two recordings at a time across the relay: a burst of sessions filling their objects
    // together (a relay restart, carts started together) must not take every core from the
    // live frames (unbounded, 250 at once delayed live frames by 200-300 ms on 2 cores; see
    // benches/ecg_live.rs). Two overlap one object's fsync with the next one's encoding:
    // 5,000 sessions need about 312 objects/s.
    static WRITING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _turn = WRITING.acquire().await;
    let (start, routing, complete) = {
        let live = lock(&entry.live);
        // Only the last object can stop short: the others hold every sample of their span.
        let complete = !last || live.incomplete().is_none();
        (
            live.session().accepted().start.clone(),
            live.routing().clone(),
            complete,
        )
    };
    let principal = yilian_ingest::Principal {
        name: routing.device.clone(),
        site: routing.site.clone(),
        role: yilian_route::Role::Device,
        department: None,
        door: yilian_ingest::Door::Quic,
    };
    // Decoding 16 s of samples and writing the DICOM object takes milliseconds of CPU: on the
    // blocking pool and outside the session's lock (which the cart's frames need), not on an
    // async worker that every live stream shares.
    let end_seq = segment.end_seq;
    let made = tokio::task::spawn_blocking(move || {
        yilian_ecg::record::dicom(&start, &routing, &segment, complete)
    })
    .await;
    let made = match made {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the recording task failed: {e}")),
    };
    let made = match made {
        Ok(m) => m,
        Err(e) => {
            warn!(session = %entry.id(), "an ECG recording cannot be written: {e}");
            recorded.failed.get_or_insert(e.to_string());
            return;
        }
    };
    let spec = UploadSpec {
        sop_uid: made.sop_uid.clone(),
        study_uid: Some(made.study_uid.clone()),
        priority: if made.urgent {
            Priority::Urgent
        } else {
            Priority::Routine
        },
        facts: Some(InstanceFacts {
            modality: Some("ECG".into()),
            sop_class_uid: Some(yilian_ecg::record::TWELVE_LEAD_ECG.into()),
            body_part: None,
        }),
        ..Default::default()
    };
    match ctx
        .ingest
        .store_whole(Arc::new(principal), spec, Bytes::from(made.bytes))
        .await
    {
        Ok(_) => {
            recorded.objects += 1;
            recorded.upto_seq = recorded.upto_seq.max(end_seq);
            let reply = SourceReply::Recorded {
                upto_seq: recorded.upto_seq,
                objects: recorded.objects,
            };
            // A cart that went away learns it when it comes back (after its Accepted).
            let told = lock(&entry.replies)
                .as_ref()
                .is_some_and(|tx| tx.send(reply).is_ok());
            if !told {
                debug!(session = %entry.id(), "recorded while the cart is away");
            }
        }
        Err(r) => {
            warn!(session = %entry.id(), code = %r.code, "an ECG recording was refused: {}", r.reason);
            recorded.failed.get_or_insert(r.reason);
        }
    }
}

/// End the session: viewers told, the last object recorded, the cart told, audited.
async fn close(ctx: &Arc<Ctx>, peer: &PeerIdentity, entry: &Arc<Entry>, error: Option<String>) {
    let last = {
        let mut live = lock(&entry.live);
        if let Some(e) = &error {
            live.mark_incomplete(e.clone());
        }
        live.end()
    };
    entry.changed.notify_waiters();
    if let Some(segment) = last {
        record(ctx, entry, segment, true).await;
    }
    let recorded = entry.recording.lock().await;
    let (complete, why) = {
        let live = lock(&entry.live);
        (
            live.incomplete().is_none() && recorded.failed.is_none(),
            live.incomplete()
                .map(str::to_string)
                .or(recorded.failed.clone()),
        )
    };
    let id = entry.id();
    let closed = SourceReply::Closed {
        complete,
        objects: recorded.objects,
        reason: why.clone(),
    };
    let told = lock(&entry.replies)
        .take()
        .is_some_and(|tx| tx.send(closed).is_ok());
    if !told {
        debug!(session = %id, "the cart is away: it is not told the session closed");
    }
    info!(session = %id, objects = recorded.objects, complete, "ECG session recorded");
    audit(
        ctx,
        peer,
        AuditAction::EcgStream,
        None,
        None,
        if complete {
            "recorded"
        } else {
            "recorded-incomplete"
        },
        Some(format!(
            "session {id}: {} object(s){}",
            recorded.objects,
            why.map(|w| format!("; {w}")).unwrap_or_default()
        )),
    )
    .await;
    drop(recorded);
    ctx.ecg.remove(&id);
    // The site's uploads may take the uplink back (unless another urgent session is live).
    drop(lock(&entry.urgent_live).take());
}

/// The live datagrams of a cart's connection (`LiveDatagram`): each frame copy goes to its
/// session's viewers if they do not have it yet. Only for sessions of this cart; anything
/// that does not decode or fit is dropped (the stream brings every frame anyway).
pub(crate) async fn serve_datagrams(
    ctx: Arc<Ctx>,
    conn: quinn::Connection,
    peer: Arc<PeerIdentity>,
) {
    let mut dropped = 0u64;
    while let Ok(bytes) = conn.read_datagram().await {
        let Ok(d) = postcard::from_bytes::<yilian_ecg::wire::LiveDatagram>(&bytes) else {
            dropped += 1;
            continue;
        };
        let Some(entry) = ctx.ecg.get(&d.session).filter(|e| e.owner == peer.name) else {
            dropped += 1;
            continue;
        };
        let mut fresh = false;
        {
            let mut live = lock(&entry.live);
            for f in d.frames {
                fresh |= live.datagram(f);
            }
        }
        if fresh {
            entry.changed.notify_waiters();
        }
    }
    if dropped > 0 {
        debug!(peer = %peer.name, dropped, "live ECG datagrams that matched no session of this cart");
    }
}

/// A viewer's stream.
pub(crate) async fn serve_watch(
    ctx: Arc<Ctx>,
    peer: Arc<PeerIdentity>,
    mut send: SendStream,
    mut recv: RecvStream,
    mut dec: FrameDecoder,
) {
    let refuse = |reason: String| {
        WatchReply::Refused(Refusal {
            code: RefuseCode::Unauthorized,
            reason,
        })
    };
    if peer.role != Role::Reader {
        let msg = format!(
            "{} is not a reader identity and cannot watch ECG",
            peer.name
        );
        warn!(peer = %peer.name, "ECG watch refused: {msg}");
        return tell(&mut send, &refuse(msg)).await;
    }
    let msg = match tokio::time::timeout(
        Duration::from_secs(30),
        next_msg::<WatchMsg>(&mut recv, &mut dec, "ECG watch request"),
    )
    .await
    {
        Ok(Ok(Some(m))) => m,
        _ => return,
    };
    match msg {
        WatchMsg::List => {
            let entries: Vec<Arc<Entry>> = lock(&ctx.ecg.sessions).values().cloned().collect();
            let mut list: Vec<_> = entries
                .iter()
                .filter_map(|e| {
                    let live = lock(&e.live);
                    (live.may_watch(&peer.name) && !live.is_ended()).then(|| live.summary())
                })
                .collect();
            list.sort_by(|a, b| {
                b.urgent
                    .cmp(&a.urgent)
                    .then(a.started_unix_ms.cmp(&b.started_unix_ms))
            });
            tell(&mut send, &WatchReply::Sessions(list)).await;
        }
        WatchMsg::Watch { session } => {
            let entry = ctx
                .ecg
                .get(&session)
                .filter(|e| lock(&e.live).may_watch(&peer.name));
            let Some(entry) = entry else {
                let msg = format!(
                    "no live ECG session {session} routed to {}; `yilian ecg watch` without --session lists the ones you may watch",
                    peer.name
                );
                audit(
                    &ctx,
                    &peer,
                    AuditAction::EcgWatch,
                    None,
                    None,
                    "refused",
                    Some(format!("session {session}")),
                )
                .await;
                return tell(&mut send, &refuse(msg)).await;
            };
            audit(
                &ctx,
                &peer,
                AuditAction::EcgWatch,
                None,
                None,
                "ok",
                Some(format!("session {session}")),
            )
            .await;
            watch(&entry, &mut send).await;
        }
    }
}

async fn watch(entry: &Arc<Entry>, send: &mut SendStream) {
    let (header, mut cursor) = {
        let mut live = lock(&entry.live);
        (live.header(), live.join())
    };
    let mut ok = send
        .write_chunk(encode_frame(&WatchReply::Header(Box::new(header))))
        .await
        .is_ok();
    while ok {
        let notified = entry.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = lock(&entry.live).next(&mut cursor);
        ok = match next {
            Next::Frame(bytes) => send.write_chunk(bytes).await.is_ok(),
            Next::Missed(frames) => send
                .write_chunk(encode_frame(&WatchReply::Missed { frames }))
                .await
                .is_ok(),
            Next::Wait => {
                notified.await;
                true
            }
            Next::Ended(complete) => {
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&encode_frame(&WatchReply::Ended { complete }));
                if send.write_chunk(buf.freeze()).await.is_ok() {
                    if let Err(e) = send.finish() {
                        debug!("ECG watch stream already closed: {e}");
                    }
                }
                false
            }
        };
    }
    lock(&entry.live).leave();
}
