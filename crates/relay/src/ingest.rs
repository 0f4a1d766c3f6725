//! Upload ingest: one task per upload stream, plus its spool writer.
//!
//! The async task moves bytes between QUIC and the sans-IO [`Receiver`]; the spool writer
//! (`spool_writer.rs`) owns the partial file and does everything blocking or CPU-bound per
//! byte on tokio's blocking pool: DICOM structure walk, BLAKE3, write, fsync checkpoints,
//! publishing to live readers. They talk over a bounded channel, which is what bounds memory
//! per upload (QUIC flow control does the rest).

use bytes::BytesMut;
use quinn::{RecvStream, SendStream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use yilian_dicom::DicomError;
use yilian_proto::{
    encode_frame, valid_uid, FrameDecoder, Hash, Offer, Receiver, ReceiverEvent, Refusal,
    RefuseCode, Reply,
};
use yilian_route::{Priority, RouteInput};
use yilian_store::{AuditAction, AuditEvent, NewInstance, Partial, Stored};
use yilian_transport::{PeerIdentity, Role};

use crate::hub::{LiveInstance, LiveOutcome};
use crate::metrics::{Gauge, Metrics};
use crate::server::Ctx;
use crate::spool_writer::{SpoolWriter, Verified, WriterCmd, WriterEvent, WRITER_QUEUE};

/// Read buffer granularity: chunks handed to the writer and to live readers.
pub const CHUNK: usize = 256 * 1024;
/// Exclusive right to write one partial; a newer upload of the same instance takes it over.
#[derive(Default)]
pub struct Leases {
    map: Mutex<HashMap<(String, String), LeaseEntry>>,
}

struct LeaseEntry {
    generation: u64,
    lock: Arc<tokio::sync::Mutex<()>>,
    current: watch::Sender<u64>,
}

struct Lease {
    generation: u64,
    superseded: watch::Receiver<u64>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Leases {
    async fn acquire(&self, site: &str, sop: &str) -> Lease {
        let (generation, lock, superseded) = {
            let mut g = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let e = g
                .entry((site.to_string(), sop.to_string()))
                .or_insert_with(|| LeaseEntry {
                    generation: 0,
                    lock: Arc::new(tokio::sync::Mutex::new(())),
                    current: watch::channel(0).0,
                });
            e.generation += 1;
            e.current.send_replace(e.generation);
            (e.generation, e.lock.clone(), e.current.subscribe())
        };
        let guard = lock.lock_owned().await;
        Lease {
            generation,
            superseded,
            _guard: guard,
        }
    }

    fn release(&self, site: &str, sop: &str, generation: u64) {
        let mut g = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (site.to_string(), sop.to_string());
        if g.get(&key).is_some_and(|e| e.generation == generation) {
            g.remove(&key);
        }
    }
}

impl Lease {
    async fn superseded(&mut self) {
        loop {
            if *self.superseded.borrow_and_update() != self.generation {
                return;
            }
            if self.superseded.changed().await.is_err() {
                // The entry was released: nobody can supersede us any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Map a DICOM validation error to what the sender is told.
pub fn refusal_for(e: &DicomError) -> Refusal {
    let code = match e {
        DicomError::NotDicom { .. } => RefuseCode::NotDicom,
        DicomError::Truncated { .. } => RefuseCode::Truncated,
        DicomError::TooLarge { .. } => RefuseCode::TooLarge,
        DicomError::Io(_) => RefuseCode::Internal,
        _ => RefuseCode::Malformed,
    };
    Refusal {
        code,
        reason: e.to_string(),
    }
}

pub(crate) fn refusal(code: RefuseCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
    }
}

/// Refuse before any transfer state exists.
async fn refuse_now(send: &mut SendStream, r: Refusal) -> Result<Option<Refusal>, String> {
    let frame = encode_frame(&Reply::Refused(r.clone()));
    send.write_chunk(frame).await.map_err(|e| e.to_string())?;
    Ok(Some(r))
}

/// Serve one upload stream whose first frame was `offer`.
pub(crate) async fn upload(
    ctx: Arc<Ctx>,
    peer: Arc<PeerIdentity>,
    mut send: SendStream,
    recv: RecvStream,
    offer: Offer,
    decoder: FrameDecoder,
) {
    let sop = offer.instance.sop_uid.clone();
    let _active = Gauge::up(&ctx.metrics.uploads_active);
    let outcome = run_upload(&ctx, &peer, &mut send, recv, offer, decoder).await;
    match outcome {
        Ok(Some(r)) => {
            Metrics::add(&ctx.metrics.instances_refused, 1);
            warn!(peer = %peer.name, sop_uid = %sop, code = %r.code, "upload refused: {}", r.reason);
            let store = ctx.store.clone();
            let ev = AuditEvent {
                actor: peer.name.clone(),
                site: Some(peer.site.clone()),
                action: AuditAction::Receive,
                study_uid: None,
                sop_uid: Some(sop),
                outcome: r.code.to_string(),
                detail: Some(r.reason),
            };
            let _ = tokio::task::spawn_blocking(move || store.audit(&ev)).await;
        }
        Ok(None) => {}
        Err(e) => debug!(peer = %peer.name, sop_uid = %sop, "upload stream ended: {e}"),
    }
    let _ = send.finish();
}

/// Ok(Some(refusal)) if refused, Ok(None) if stored, Err on a broken stream.
async fn run_upload(
    ctx: &Arc<Ctx>,
    peer: &Arc<PeerIdentity>,
    send: &mut SendStream,
    mut recv: RecvStream,
    offer: Offer,
    decoder: FrameDecoder,
) -> Result<Option<Refusal>, String> {
    if !matches!(peer.role, Role::Device | Role::Relay) {
        return refuse_now(
            send,
            refusal(
                RefuseCode::Unauthorized,
                format!(
                    "{} is a {} identity and may not upload; use a device certificate",
                    peer.name, peer.role
                ),
            ),
        )
        .await;
    }
    if offer.size > ctx.config.max_instance_bytes {
        return refuse_now(send, refusal(
            RefuseCode::TooLarge,
            format!(
                "instance of {} bytes exceeds this relay's limit of {} bytes (limits.max_instance_bytes)",
                offer.size, ctx.config.max_instance_bytes
            ),
        ))
        .await;
    }
    if !valid_uid(&offer.instance.sop_uid) || !valid_uid(&offer.instance.study_uid) {
        return refuse_now(send, refusal(
            RefuseCode::Malformed,
            "the offer's UIDs are not valid DICOM UIDs (digits and dots, at most 64 characters)",
        ))
        .await;
    }
    let mut receiver = match Receiver::new(offer.clone(), decoder, ctx.config.max_instance_bytes) {
        Ok(r) => r,
        Err(e) => return refuse_now(send, refusal(RefuseCode::TooLarge, e.to_string())).await,
    };

    // Already stored: a no-op for the sender.
    let store = ctx.store.clone();
    let sop = offer.instance.sop_uid.clone();
    let existing = tokio::task::spawn_blocking(move || store.instance(&sop))
        .await
        .map_err(|e| e.to_string())?;
    match existing {
        Ok(Some(rec)) if offer.hash.is_none_or(|h| h == rec.hash) => {
            Metrics::add(&ctx.metrics.instances_deduplicated, 1);
            receiver.have(rec.hash).map_err(|e| e.to_string())?;
            flush(&mut receiver, send).await?;
            return Ok(None);
        }
        Ok(Some(_)) => {
            return refuse_now(
                send,
                refusal(
                    RefuseCode::Conflict,
                    "the relay already holds a different instance with this SOP Instance UID",
                ),
            )
            .await
        }
        Ok(None) => {}
        Err(e) => return refuse_now(send, refusal(RefuseCode::Internal, e.to_string())).await,
    }

    let mut lease = ctx
        .leases
        .acquire(&peer.site, &offer.instance.sop_uid)
        .await;
    let generation = lease.generation;
    let (cmd_tx, cmd_rx) = mpsc::channel(WRITER_QUEUE);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let writer = SpoolWriter {
        store: ctx.store.clone(),
        topology: ctx.topology(),
        peer: peer.clone(),
        offer: offer.clone(),
        checkpoint_bytes: ctx.config.checkpoint_bytes,
        checkpoint_interval: ctx.config.checkpoint_interval,
        events: ev_tx,
    };
    let writer_task = tokio::spawn(writer.run(cmd_rx));

    let result = drive(
        ctx,
        &peer.site,
        &mut receiver,
        send,
        &mut recv,
        cmd_tx,
        &mut ev_rx,
        &mut lease,
    )
    .await;
    // Make sure the writer is gone (partial closed) before another attempt may open it.
    let _ = writer_task.await;
    ctx.hub.end_live(&offer.instance.sop_uid);
    ctx.leases
        .release(&peer.site, &offer.instance.sop_uid, generation);
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    ctx: &Arc<Ctx>,
    site: &str,
    receiver: &mut Receiver,
    send: &mut SendStream,
    recv: &mut RecvStream,
    cmd_tx: mpsc::Sender<WriterCmd>,
    ev_rx: &mut mpsc::UnboundedReceiver<WriterEvent>,
    lease: &mut Lease,
) -> Result<Option<Refusal>, String> {
    let mut cmd_tx = Some(cmd_tx);
    let mut live: Option<Arc<LiveInstance>> = None;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut opened = false;
    let fail_live = |live: &Option<Arc<LiveInstance>>| {
        if let Some(l) = live {
            l.finish(LiveOutcome::Failed);
        }
    };
    // Urgent first (urgency.rs): an urgent upload holds the routine ones from its site. Whether
    // an upload is urgent (a stroke CT is, by a rule on its content) is first judged from the
    // header facts declared with the offer, so that it takes or yields the link before any of
    // its data crosses it; the header itself, once routed, has the last word. Without declared
    // facts an upload is not held until routed.
    let mut urgent_rx = ctx.urgent.watch(site);
    let declared = declared_priority(ctx, site, receiver.offer());
    let mut urgent = (declared >= Some(Priority::Urgent)).then(|| ctx.urgent.begin(site));
    let mut routine = declared.is_some() && urgent.is_none();
    if routine {
        hold(receiver, *urgent_rx.borrow_and_update() > 0);
    }
    loop {
        let reading = opened && cmd_tx.is_some();
        tokio::select! {
            biased;
            ev = ev_rx.recv() => {
                let Some(ev) = ev else {
                    fail_live(&live);
                    return Err("spool writer stopped".into());
                };
                match ev {
                    WriterEvent::Opened { offset } => {
                        if offset > 0 {
                            info!(sop_uid = %receiver.offer().instance.sop_uid, offset, "resuming upload");
                        }
                        receiver.accept(offset).map_err(|e| e.to_string())?;
                        debug!(sop_uid = %receiver.offer().instance.sop_uid, offset, "accepted");
                        opened = true;
                        // Input that arrived with the offer.
                        forward_events(receiver, &mut cmd_tx).await?;
                    }
                    WriterEvent::Routed(l) => {
                        match (l.priority >= Priority::Urgent.as_u8(), urgent.is_some()) {
                            // Urgent by a routing rule (a stroke CT): it takes the link now.
                            (true, false) => {
                                urgent = Some(ctx.urgent.begin(site));
                                routine = false;
                                hold(receiver, false);
                            }
                            // Routine after all (the declared facts said otherwise).
                            (false, true) => {
                                urgent = None;
                                routine = true;
                                hold(receiver, *urgent_rx.borrow_and_update() > 0);
                            }
                            (false, false) => {
                                routine = true;
                                hold(receiver, *urgent_rx.borrow_and_update() > 0);
                            }
                            (true, true) => {}
                        }
                        ctx.hub.start_live(l.clone());
                        live = Some(l);
                    }
                    WriterEvent::Checkpoint(d) => receiver.checkpoint(d),
                    WriterEvent::Verified(v) => {
                        let Verified { hash, partial, instance, readers, live: l } = *v;
                        let r = commit(ctx, partial, hash, instance, readers).await;
                        let l = l.or(live.take());
                        match r {
                            Ok(()) => {
                                if let Some(l) = &l { l.finish(LiveOutcome::Stored(hash)); }
                                receiver.stored(hash).map_err(|e| e.to_string())?;
                                flush(receiver, send).await?;
                                return Ok(None);
                            }
                            Err(refused) => {
                                fail_live(&l);
                                receiver.refuse(refused.clone());
                                flush(receiver, send).await?;
                                return Ok(Some(refused));
                            }
                        }
                    }
                    WriterEvent::Failed(r) => {
                        fail_live(&live);
                        receiver.refuse(r.clone());
                        flush(receiver, send).await?;
                        return Ok(Some(r));
                    }
                }
                flush(receiver, send).await?;
            }
            changed = urgent_rx.changed(), if routine => {
                if changed.is_ok() {
                    let busy = *urgent_rx.borrow_and_update() > 0;
                    hold(receiver, busy);
                    flush(receiver, send).await?;
                }
            }
            _ = lease.superseded() => {
                fail_live(&live);
                let r = refusal(RefuseCode::Superseded, "a newer upload of this instance took over");
                receiver.refuse(r.clone());
                let _ = flush(receiver, send).await;
                return Ok(Some(r));
            }
            n = recv.read_buf(&mut buf), if reading => {
                let n = n.map_err(|e| { fail_live(&live); e.to_string() })?;
                tracing::trace!(sop_uid = %receiver.offer().instance.sop_uid, n, next = ?receiver.next_offset(), "read");
                if n == 0 {
                    if let Err(e) = receiver.handle_end() {
                        fail_live(&live);
                        return Err(e.to_string());
                    }
                    continue;
                }
                Metrics::add(&ctx.metrics.bytes_in, n as u64);
                let chunk = buf.split().freeze();
                if buf.capacity() < CHUNK / 4 {
                    buf.reserve(CHUNK);
                }
                if let Err(e) = receiver.handle_input(chunk) {
                    fail_live(&live);
                    let r = refusal(RefuseCode::Malformed, e.to_string());
                    receiver.refuse(r.clone());
                    let _ = flush(receiver, send).await;
                    return Ok(Some(r));
                }
                forward_events(receiver, &mut cmd_tx).await?;
            }
        }
    }
}

/// The priority the offer's declared header facts route to (with the requested priority), or
/// the requested priority alone when it is urgent; `None` when nothing tells yet.
fn declared_priority(ctx: &Ctx, site: &str, offer: &Offer) -> Option<Priority> {
    let requested = Priority::from_u8(offer.priority).unwrap_or_default();
    let from_facts = offer.facts.as_ref().and_then(|f| {
        ctx.topology()
            .route(&RouteInput {
                source_site: site,
                modality: &f.modality,
                sop_class_uid: &f.sop_class_uid,
                body_part: f.body_part.as_deref(),
                requested_priority: requested,
            })
            .ok()
            .map(|d| d.priority)
    });
    from_facts.or((requested >= Priority::Urgent).then_some(requested))
}

/// Ask the sender to pause or continue, and say so in the log.
fn hold(receiver: &mut Receiver, on: bool) {
    if receiver.is_holding() != on {
        let sop_uid = &receiver.offer().instance.sop_uid;
        if on {
            info!(%sop_uid, "routine upload paused: an urgent upload from the same site has the link");
        } else {
            info!(%sop_uid, "upload continues");
        }
        receiver.hold(on);
    }
}

async fn forward_events(
    receiver: &mut Receiver,
    cmd_tx: &mut Option<mpsc::Sender<WriterCmd>>,
) -> Result<(), String> {
    while let Some(ev) = receiver.poll_event() {
        let Some(tx) = cmd_tx.as_ref() else {
            return Err("data after Finish".into());
        };
        let cmd = match ev {
            ReceiverEvent::Data { bytes, .. } => WriterCmd::Data(bytes),
            ReceiverEvent::Finish(h) => WriterCmd::Finish(h),
        };
        let finish = matches!(cmd, WriterCmd::Finish(_));
        if tx.send(cmd).await.is_err() || finish {
            // Finished, or the writer stopped (it refused the upload): its last event, already
            // queued, says how it ended. Stop reading and let the caller take that event.
            *cmd_tx = None;
            return Ok(());
        }
    }
    Ok(())
}

async fn flush(receiver: &mut Receiver, send: &mut SendStream) -> Result<(), String> {
    while let Some(b) = receiver.poll_transmit() {
        send.write_chunk(b).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn commit(
    ctx: &Arc<Ctx>,
    partial: Partial,
    hash: Hash,
    instance: NewInstance,
    readers: Vec<String>,
) -> Result<(), Refusal> {
    let store = ctx.store.clone();
    let inst = instance.clone();
    let rs = readers.clone();
    let r = tokio::task::spawn_blocking(move || store.commit(partial, hash, &inst, &rs))
        .await
        .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?;
    match r {
        Ok(Stored::New { record, readers }) => {
            Metrics::add(&ctx.metrics.instances_stored, 1);
            info!(
                sop_uid = %record.sop_uid, study_uid = %record.study_uid, modality = %record.modality,
                bytes = record.size, from = %record.source_identity, readers = ?readers,
                "instance stored"
            );
            ctx.hub.stored(&record.sop_uid, &readers);
            crate::server::study_progress(ctx, &record.study_uid).await;
            Ok(())
        }
        Ok(Stored::AlreadyStored(_)) => {
            Metrics::add(&ctx.metrics.instances_deduplicated, 1);
            Ok(())
        }
        Err(yilian_store::StoreError::Conflict { .. }) => Err(refusal(
            RefuseCode::Conflict,
            "the relay already holds a different instance with this SOP Instance UID",
        )),
        Err(e) => Err(refusal(RefuseCode::Internal, e.to_string())),
    }
}
