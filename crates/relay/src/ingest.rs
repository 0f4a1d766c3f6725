//! Upload ingest: one task per upload stream, plus its spool writer.
//!
//! The async task moves bytes between QUIC and the sans-IO [`Receiver`]; the spool writer
//! (`spool_writer.rs`) owns the partial file and does everything blocking or CPU-bound per
//! byte on tokio's blocking pool: DICOM structure walk, BLAKE3, write, fsync checkpoints,
//! publishing to live readers. They talk over a bounded channel, which is what bounds memory
//! per upload (QUIC flow control does the rest).
//!
//! Before anything is opened, an upload passes the relay's [gate](crate::gate): it waits there
//! for the lease of its (site, SOP Instance UID), the gate holds it while an urgent upload of
//! its site has the link, and expires it when it stays idle. While it waits, the stream is
//! still read: a sender that goes away leaves the queue at once, and one that sends data
//! before it was accepted is refused (nothing unaccepted piles up in the relay's memory).

use bytes::BytesMut;
use quinn::{RecvStream, SendStream};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use yilian_dicom::DicomError;
use yilian_proto::{
    encode_frame, valid_uid, FrameDecoder, Hash, Offer, Receiver, ReceiverEvent, Refusal,
    RefuseCode, Reply,
};
use yilian_route::{Priority, RouteInput};
use yilian_store::{AuditAction, NewInstance, Partial, StoreError, Stored};
use yilian_transport::{PeerIdentity, Role};

use crate::gate::{Action, ConnId, Urgency};
use crate::gate_handle::Ticket;
use crate::hub::{LiveInstance, LiveOutcome};
use crate::metrics::{Gauge, Metrics};
use crate::server::Ctx;
use crate::spool_writer::{SpoolWriter, Verified, WriterCmd, WriterEvent, WRITER_QUEUE};
use crate::storage::Storage;

/// Read buffer granularity: chunks handed to the writer and to live readers.
pub const CHUNK: usize = 256 * 1024;

/// Map a DICOM validation error to what the sender is told.
pub fn refusal_for(e: &DicomError) -> Refusal {
    let code = match e {
        DicomError::NotDicom { .. } | DicomError::MediaDirectory => RefuseCode::NotDicom,
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

/// What a store failure means for the sender: a full disk is "storage full" (retryable, and
/// ingest stops until space returns); another site's study is "unauthorized"; a site's
/// unfinished uploads at their cap is "busy"; anything else is an internal error worth
/// retrying. The one mapping for every caller (ingest, spool writer, manifests).
pub(crate) fn store_refusal(storage: &Storage, e: &StoreError) -> Refusal {
    if storage.notice(e) {
        return refusal(RefuseCode::StorageFull, storage.refusal_text());
    }
    match e {
        StoreError::StudyOwned { .. } => refusal(RefuseCode::Unauthorized, e.to_string()),
        StoreError::PartialQuota { .. } => refusal(RefuseCode::Busy, e.to_string()),
        StoreError::Conflict { .. } => refusal(
            RefuseCode::Conflict,
            "the relay already holds a different instance with this SOP Instance UID from your site",
        ),
        _ => refusal(RefuseCode::Internal, e.to_string()),
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
    conn: ConnId,
    peer: Arc<PeerIdentity>,
    mut send: SendStream,
    recv: RecvStream,
    offer: Offer,
    decoder: FrameDecoder,
) {
    let study = offer.instance.study_uid.clone();
    let sop = offer.instance.sop_uid.clone();
    let _active = Gauge::up(&ctx.metrics.uploads_active);
    let outcome = run_upload(&ctx, conn, &peer, &mut send, recv, offer, decoder).await;
    match outcome {
        Ok(Some(r)) => {
            Metrics::add(&ctx.metrics.instances_refused, 1);
            warn!(peer = %peer.name, sop_uid = %sop, code = %r.code, "upload refused: {}", r.reason);
            crate::audit::record(
                &ctx,
                &peer,
                AuditAction::Receive,
                Some(study),
                Some(sop),
                &r.code.to_string(),
                Some(r.reason),
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => debug!(peer = %peer.name, sop_uid = %sop, "upload stream ended: {e}"),
    }
    // The stream may already be reset or finished by the peer: nothing left to tell it.
    let _ = send.finish();
}

/// Ok(Some(refusal)) if refused, Ok(None) if stored, Err on a broken stream.
async fn run_upload(
    ctx: &Arc<Ctx>,
    conn: ConnId,
    peer: &Arc<PeerIdentity>,
    send: &mut SendStream,
    mut recv: RecvStream,
    offer: Offer,
    decoder: FrameDecoder,
) -> Result<Option<Refusal>, String> {
    let max = ctx.config.limits.max_instance_bytes;
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
    if offer.size > max {
        return refuse_now(send, refusal(
            RefuseCode::TooLarge,
            format!(
                "instance of {} bytes exceeds this relay's limit of {max} bytes (limits.max_instance_bytes)",
                offer.size
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
    if ctx.storage.is_full() {
        return refuse_now(
            send,
            refusal(RefuseCode::StorageFull, ctx.storage.refusal_text()),
        )
        .await;
    }
    if let Some(r) = study_refusal(ctx, &peer.site, &offer.instance.study_uid).await? {
        return refuse_now(send, r).await;
    }
    let mut receiver = match Receiver::new(offer.clone(), decoder, max) {
        Ok(r) => r,
        Err(e) => return refuse_now(send, refusal(RefuseCode::TooLarge, e.to_string())).await,
    };

    let urgency = urgency_of(declared_priority(ctx, &peer.site, &offer));
    let mut ticket = match ctx.gate.offer(
        conn,
        &peer.name,
        &peer.site,
        &offer.instance.sop_uid,
        urgency,
    ) {
        Ok(t) => t,
        Err(e) => return refuse_now(send, refusal(RefuseCode::Busy, e.to_string())).await,
    };
    let mut buf = BytesMut::with_capacity(CHUNK);
    // Wait for the lease, watching the stream: a sender that leaves leaves the queue. Bytes
    // that come early stay in the receiver (bounded: it refuses more than two frames' worth).
    loop {
        tokio::select! {
            a = ticket.actions.recv() => match a {
                Some(Action::Grant(_)) => break,
                Some(_) => continue,
                None => return Err("the gate closed".into()),
            },
            n = recv.read_buf(&mut buf) => {
                let n = n.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the sender finished the stream before it was accepted".into());
                }
                let chunk = buf.split().freeze();
                if let Err(e) = receiver.handle_input(chunk) {
                    let r = refusal(RefuseCode::Malformed, format!("{e} (data sent before the relay accepted the upload)"));
                    return refuse(&mut receiver, send, r).await;
                }
            }
        }
    }

    // A hold decided together with the grant (an urgent upload of the site has the link)
    // goes out before the Accept, so that the sender never starts writing data it must drop.
    while let Ok(a) = ticket.actions.try_recv() {
        match a {
            Action::Hold(_) => hold(&mut receiver, true),
            Action::Resume(_) => hold(&mut receiver, false),
            Action::Grant(_) | Action::Expire(_) | Action::Supersede(_) => {}
        }
    }

    // Already stored by this site: a no-op for the sender (another site's instance with the
    // same UID is not this site's business).
    let store = ctx.store.clone();
    let (site, sop) = (peer.site.clone(), offer.instance.sop_uid.clone());
    let existing = tokio::task::spawn_blocking(move || store.instance(&site, &sop))
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
            let r = refusal(
                RefuseCode::Conflict,
                "the relay already holds a different instance with this SOP Instance UID from your site (PS3.4: one UID, one object); give the new image a new UID",
            );
            return refuse(&mut receiver, send, r).await;
        }
        Ok(None) => {}
        Err(e) => return refuse(&mut receiver, send, store_refusal(&ctx.storage, &e)).await,
    }

    let (cmd_tx, cmd_rx) = mpsc::channel(WRITER_QUEUE);
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let writer = SpoolWriter {
        store: ctx.store.clone(),
        topology: ctx.topology(),
        storage: ctx.storage.clone(),
        peer: peer.clone(),
        offer: offer.clone(),
        checkpoint_bytes: ctx.config.checkpoint_bytes,
        checkpoint_interval: ctx.config.checkpoint_interval,
        events: ev_tx,
    };
    let writer_task = tokio::spawn(writer.run(cmd_rx));

    let result = drive(
        ctx,
        &mut receiver,
        send,
        &mut recv,
        buf,
        cmd_tx,
        &mut ev_rx,
        &mut ticket,
    )
    .await;
    // Make sure the writer is gone (partial closed) before the lease passes on.
    if let Err(e) = writer_task.await {
        warn!(sop_uid = %offer.instance.sop_uid, "spool writer failed: {e}");
    }
    ctx.hub.end_live(&offer.instance);
    drop(ticket);
    result
}

/// Whether `site` may add to `study_uid`: refused with a clear reason if another site sent
/// that study first.
async fn study_refusal(
    ctx: &Arc<Ctx>,
    site: &str,
    study_uid: &str,
) -> Result<Option<Refusal>, String> {
    let store = ctx.store.clone();
    let s = study_uid.to_string();
    let owner = tokio::task::spawn_blocking(move || store.study_owner(&s))
        .await
        .map_err(|e| e.to_string())?;
    Ok(match owner {
        Ok(Some(owner)) if owner != site => Some(store_refusal(
            &ctx.storage,
            &StoreError::StudyOwned {
                study_uid: study_uid.to_string(),
                owner,
            },
        )),
        Ok(_) => None,
        Err(e) => Some(store_refusal(&ctx.storage, &e)),
    })
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    ctx: &Arc<Ctx>,
    receiver: &mut Receiver,
    send: &mut SendStream,
    recv: &mut RecvStream,
    mut buf: BytesMut,
    cmd_tx: mpsc::Sender<WriterCmd>,
    ev_rx: &mut mpsc::UnboundedReceiver<WriterEvent>,
    ticket: &mut Ticket<'_>,
) -> Result<Option<Refusal>, String> {
    let mut cmd_tx = Some(cmd_tx);
    let mut live: Option<Arc<LiveInstance>> = None;
    let mut opened = false;
    let fail_live = |live: &Option<Arc<LiveInstance>>| {
        if let Some(l) = live {
            l.finish(LiveOutcome::Failed);
        }
    };
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
                        // The header has the last word on urgency (declared facts only steer
                        // the link until it is read).
                        ctx.gate.classify(ticket.id, urgency_of(Some(
                            Priority::from_u8(l.priority).unwrap_or_default(),
                        )));
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
                                return refuse(receiver, send, refused).await;
                            }
                        }
                    }
                    WriterEvent::Failed(r) => {
                        fail_live(&live);
                        return refuse(receiver, send, r).await;
                    }
                }
                flush(receiver, send).await?;
            }
            a = ticket.actions.recv() => {
                match a {
                    Some(Action::Hold(_)) => hold(receiver, true),
                    Some(Action::Resume(_)) => hold(receiver, false),
                    Some(Action::Expire(_)) => {
                        fail_live(&live);
                        let idle = ctx.gate.config().idle_timeout;
                        let r = refusal(RefuseCode::TimedOut, format!(
                            "no data for {} s (limits.upload_idle_timeout): the upload was dropped; what arrived is kept and the upload resumes when offered again",
                            idle.as_secs()
                        ));
                        return refuse(receiver, send, r).await;
                    }
                    Some(Action::Supersede(_)) => {
                        fail_live(&live);
                        let r = refusal(RefuseCode::Superseded,
                            "another upload of this instance from your site took over while this one's connection was silent; the newer upload resumes where this one stood");
                        return refuse(receiver, send, r).await;
                    }
                    Some(Action::Grant(_)) => {}
                    None => {
                        fail_live(&live);
                        return Err("the gate closed".into());
                    }
                }
                flush(receiver, send).await?;
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
                ctx.gate.data(ticket.id);
                let chunk = buf.split().freeze();
                if buf.capacity() < CHUNK / 4 {
                    buf.reserve(CHUNK);
                }
                if let Err(e) = receiver.handle_input(chunk) {
                    fail_live(&live);
                    return refuse(receiver, send, refusal(RefuseCode::Malformed, e.to_string())).await;
                }
                forward_events(receiver, &mut cmd_tx).await?;
            }
        }
    }
}

fn urgency_of(p: Option<Priority>) -> Urgency {
    match p {
        None => Urgency::Unknown,
        Some(p) if p >= Priority::Urgent => Urgency::Urgent,
        Some(_) => Urgency::Routine,
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
                modality: f.modality.as_deref(),
                sop_class_uid: f.sop_class_uid.as_deref(),
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

/// Refuse the transfer: tell the sender why, if it still listens (an idle, superseded or
/// misbehaving one may not), and hand the refusal back for the log and the audit.
async fn refuse(
    receiver: &mut Receiver,
    send: &mut SendStream,
    r: Refusal,
) -> Result<Option<Refusal>, String> {
    receiver.refuse(r.clone());
    if let Err(e) = flush(receiver, send).await {
        debug!(sop_uid = %receiver.offer().instance.sop_uid, "the sender did not hear the refusal: {e}");
    }
    Ok(Some(r))
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
        Ok(Stored::New {
            record,
            readers,
            study_complete,
        }) => {
            Metrics::add(&ctx.metrics.instances_stored, 1);
            info!(
                sop_uid = %record.sop_uid, study_uid = %record.study_uid, modality = %record.modality,
                bytes = record.size, from = %record.source_identity, readers = ?readers,
                "instance stored"
            );
            ctx.hub.stored(
                &yilian_proto::InstanceRef {
                    study_uid: record.study_uid.clone(),
                    sop_uid: record.sop_uid.clone(),
                },
                &readers,
            );
            if let Some(instances) = study_complete {
                info!(study_uid = %record.study_uid, instances, "study complete");
                ctx.hub.study_progress(&record.study_uid);
            }
            Ok(())
        }
        Ok(Stored::AlreadyStored(_)) => {
            Metrics::add(&ctx.metrics.instances_deduplicated, 1);
            Ok(())
        }
        Err(e) => Err(store_refusal(&ctx.storage, &e)),
    }
}
