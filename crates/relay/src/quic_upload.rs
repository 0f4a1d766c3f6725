//! yilian/1 uploads over QUIC: one adapter of the ingest path ([`yilian_ingest`]).
//!
//! One task per upload stream moves bytes between QUIC and the sans-IO [`Receiver`] (framing,
//! offsets, hold/continue, the reply) and hands the data to an [`Upload`]; the ingest path
//! does the rest (gate, spool writer, routing, cut-through, commit). `Stored` is sent only
//! after the ingest path says the instance is durable.
//!
//! While the upload waits for its lease the stream is still read: a sender that goes away
//! leaves the queue at once, and one that sends data before it was accepted is refused
//! (nothing unaccepted piles up in the relay's memory).

use bytes::BytesMut;
use quinn::{RecvStream, SendStream};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tracing::debug;
use yilian_ingest::{ConnId, Door, Event, Gauge, Opened, Principal, Upload, UploadSpec};
use yilian_proto::{
    encode_frame, FrameDecoder, Offer, Receiver, ReceiverEvent, Refusal, RefuseCode, Reply,
};
use yilian_route::Priority;
use yilian_transport::PeerIdentity;

use crate::ctx::Ctx;

/// Read buffer granularity: chunks handed to the writer and to live readers.
pub const CHUNK: usize = 256 * 1024;

/// The ingest principal of a certificate holder.
pub(crate) fn principal(peer: &PeerIdentity) -> Principal {
    Principal {
        name: peer.name.clone(),
        site: peer.site.clone(),
        role: peer.role,
        department: peer.department.clone(),
        door: Door::Quic,
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
    let _active = Gauge::up(&ctx.ingest.metrics.uploads_active);
    let principal = Arc::new(principal(&peer));
    let outcome = run_upload(&ctx, conn, &principal, &mut send, recv, offer, decoder).await;
    match outcome {
        Ok(Some(r)) => {
            ctx.ingest
                .refused(&principal, Some(study), Some(sop), &r)
                .await
        }
        Ok(None) => {}
        Err(e) => debug!(peer = %peer.name, sop_uid = %sop, "upload stream ended: {e}"),
    }
    // The stream may already be reset or finished by the peer: nothing left to tell it.
    if let Err(e) = send.finish() {
        debug!(peer = %peer.name, "upload stream already closed: {e}");
    }
}

/// Ok(Some(refusal)) if refused, Ok(None) if stored, Err on a broken stream.
async fn run_upload(
    ctx: &Arc<Ctx>,
    conn: ConnId,
    principal: &Arc<Principal>,
    send: &mut SendStream,
    mut recv: RecvStream,
    offer: Offer,
    decoder: FrameDecoder,
) -> Result<Option<Refusal>, String> {
    let max = ctx.ingest.config.max_instance_bytes;
    let spec = UploadSpec {
        sop_uid: offer.instance.sop_uid.clone(),
        study_uid: Some(offer.instance.study_uid.clone()),
        size: Some(offer.size),
        priority: Priority::from_u8(offer.priority).unwrap_or_default(),
        facts: offer.facts.clone(),
        hash: offer.hash,
        prefix: None,
    };
    let mut up = match ctx.ingest.begin(principal.clone(), spec, conn).await {
        Ok(u) => u,
        Err(r) => return refuse_now(send, r).await,
    };
    let mut receiver = match Receiver::new(offer, decoder, max) {
        Ok(r) => r,
        Err(e) => return refuse_now(send, refusal(RefuseCode::TooLarge, e.to_string())).await,
    };
    let result = serve(&mut up, &mut receiver, send, &mut recv).await;
    up.close().await;
    result
}

async fn serve(
    up: &mut Upload,
    receiver: &mut Receiver,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Result<Option<Refusal>, String> {
    let mut buf = BytesMut::with_capacity(CHUNK);
    // Wait for the lease, watching the stream: a sender that leaves leaves the queue. Bytes
    // that come early stay in the receiver (bounded: it refuses more than two frames' worth).
    loop {
        tokio::select! {
            granted = up.lease() => match granted {
                Ok(()) => break,
                Err(r) => return refuse(receiver, send, r).await,
            },
            n = recv.read_buf(&mut buf) => {
                let n = n.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("the sender finished the stream before it was accepted".into());
                }
                let chunk = buf.split().freeze();
                if let Err(e) = receiver.handle_input(chunk) {
                    let r = refusal(RefuseCode::Malformed, format!("{e} (data sent before the relay accepted the upload)"));
                    return refuse(receiver, send, r).await;
                }
            }
        }
    }
    // A hold decided together with the grant goes out before the Accept, so that the sender
    // never starts writing data it must drop.
    hold(receiver, up.is_held());
    match up.open().await {
        Ok(Opened::AlreadyStored(hash)) => {
            receiver.have(hash).map_err(|e| e.to_string())?;
            flush(receiver, send).await?;
            return Ok(None);
        }
        Ok(Opened::At(offset)) => {
            receiver.accept(offset).map_err(|e| e.to_string())?;
            debug!(sop_uid = %receiver.offer().instance.sop_uid, offset, "accepted");
        }
        Err(r) => return refuse(receiver, send, r).await,
    }
    // Input that arrived with the offer.
    forward(up, receiver).await;
    flush(receiver, send).await?;
    loop {
        tokio::select! {
            biased;
            ev = up.next_event() => match ev {
                Event::Hold(on) => hold(receiver, on),
                Event::Checkpoint(d) => receiver.checkpoint(d),
                Event::Stored(hash) => {
                    receiver.stored(hash).map_err(|e| e.to_string())?;
                    flush(receiver, send).await?;
                    return Ok(None);
                }
                Event::Refused(r) => return refuse(receiver, send, r).await,
            },
            n = recv.read_buf(&mut buf), if up.wants_data() => {
                let n = n.map_err(|e| e.to_string())?;
                tracing::trace!(sop_uid = %receiver.offer().instance.sop_uid, n, next = ?receiver.next_offset(), "read");
                if n == 0 {
                    receiver.handle_end().map_err(|e| e.to_string())?;
                    continue;
                }
                let chunk = buf.split().freeze();
                if buf.capacity() < CHUNK / 4 {
                    buf.reserve(CHUNK);
                }
                if let Err(e) = receiver.handle_input(chunk) {
                    return refuse(receiver, send, refusal(RefuseCode::Malformed, e.to_string())).await;
                }
                forward(up, receiver).await;
            }
        }
        flush(receiver, send).await?;
    }
}

/// Hand what the receiver decoded to the upload. When the writer stops taking data (it
/// refused the upload), reading stops and its refusal comes as the next event.
async fn forward(up: &mut Upload, receiver: &mut Receiver) {
    while let Some(ev) = receiver.poll_event() {
        match ev {
            ReceiverEvent::Data { bytes, .. } => {
                if !up.data(bytes).await {
                    return;
                }
            }
            ReceiverEvent::Finish(h) => {
                up.finish(Some(h)).await;
                return;
            }
        }
    }
}

/// Ask the sender to pause or continue.
fn hold(receiver: &mut Receiver, on: bool) {
    if receiver.is_holding() != on {
        receiver.hold(on);
    }
}

fn refusal(code: RefuseCode, reason: impl Into<String>) -> Refusal {
    yilian_ingest::refusal(code, reason)
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
