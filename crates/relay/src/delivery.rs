//! Reader sessions: deliver a reader's outbox (backlog first, urgent first) and the live
//! instances routed to it, a few in parallel, each on its own stream opened by the relay.
//!
//! A delivery that fails while the reader stays connected (the reader refused it: its disk is
//! full, a folder is in the way; the relay could not read its copy) is tried again in the same
//! session with capped backoff (`retry.rs`). A backlog instance that failed
//! [`NotDelivered::ATTEMPTS`] times counts as "not delivered this session": the backlog notice
//! names it with the last reason (so `read --once` can leave and say what it is missing), and
//! the relay goes on retrying it while the reader stays. The outbox entry stays until a
//! delivery succeeds.

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use yilian_proto::{
    encode_frame, Hash, InstanceRef, NotDelivered, Notice, Offer, Sender, SenderEvent, Subscribe,
};
use yilian_store::{AuditAction, OutboxItem};
use yilian_transport::{priority, PeerIdentity};

use crate::audit::record as audit;
use crate::budget::FILE_READS_PER_READER;
use crate::ctx::Ctx;
use crate::quic_upload::CHUNK;
use crate::retry::{backoff, RetryQueue};
use yilian_ingest::hub::{Held, Job, LiveInstance, LiveOutcome};
use yilian_ingest::{Gauge, Metrics};

/// Where the bytes of a delivery in progress come from.
enum Source {
    Live(Arc<LiveInstance>),
    Stored { file: Arc<File>, hash: Hash },
}

/// Where the bytes of a queued delivery will come from.
#[derive(Clone)]
enum Pending {
    Live(Arc<LiveInstance>),
    Stored(Hash),
}

#[derive(Clone)]
struct Queued {
    priority: u8,
    order: u64,
    instance: InstanceRef,
    size: u64,
    source: Pending,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // Max-heap: higher priority first, then lower order (older) first.
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.order.cmp(&self.order))
    }
}

/// Why one delivery did not complete.
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("{0}")]
    Proto(#[from] yilian_proto::ProtoError),
    #[error("the upload of this instance failed; it will be delivered once stored")]
    UpstreamFailed,
    #[error("reader refused: {0}")]
    Refused(yilian_proto::Refusal),
    #[error("reading the spool: {0}")]
    Io(#[from] std::io::Error),
}

impl DeliveryError {
    /// Why, in words for the people at the reader (the backlog notice carries it).
    fn reason(&self) -> String {
        match self {
            DeliveryError::Refused(r) => r.reason.clone(),
            DeliveryError::Io(e) => format!("its stored copy cannot be read: {e}"),
            DeliveryError::Write(quinn::WriteError::Stopped(_)) => {
                "the reader stopped the transfer without saying why".into()
            }
            e => e.to_string(),
        }
    }
}

/// Serve a subscribed reader until it leaves.
pub(crate) async fn reader_session(
    ctx: Arc<Ctx>,
    conn: Connection,
    peer: Arc<PeerIdentity>,
    mut ctl_send: SendStream,
    mut ctl_recv: RecvStream,
    sub: Subscribe,
) {
    let reader = peer.name.clone();
    let (session, mut jobs, live_now) = ctx.ingest.hub.connect_reader(&reader);
    // This connection's part of the relay-wide delivery buffer budget, while the session lasts.
    let _share = ctx.budget.join(conn.clone());
    let reads = Arc::new(Semaphore::new(FILE_READS_PER_READER));
    let store = ctx.ingest.store.clone();
    let r = reader.clone();
    let backlog = match tokio::task::spawn_blocking(move || store.pending_for(&r)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            warn!(reader = %reader, "cannot read outbox: {e}");
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    audit(
        &ctx,
        &peer,
        AuditAction::Subscribe,
        None,
        None,
        "ok",
        Some(format!("{} waiting", backlog.len())),
    )
    .await;
    info!(reader = %reader, remote = %conn.remote_address(), backlog = backlog.len(), once = sub.once, "reader subscribed");

    let mut order = 0u64;
    let mut queue = BinaryHeap::new();
    // Instances are keyed by (study, SOP Instance UID): within a study, which belongs to one
    // site, a UID is unique (UIDs are scoped by site, so two studies may share one).
    let mut known: HashSet<Key> = HashSet::new();
    let mut backlog_left: HashSet<Key> = HashSet::new();
    for item in backlog {
        order += 1;
        let k = (
            item.instance.study_uid.clone(),
            item.instance.sop_uid.clone(),
        );
        backlog_left.insert(k.clone());
        known.insert(k);
        queue.push(queued_from_outbox(item, order));
    }
    for l in live_now {
        if known.insert(key(&l.instance)) {
            order += 1;
            backlog_left.insert(key(&l.instance));
            queue.push(queued_live(l, order));
        }
    }
    let mut backlog_told = false;
    let mut backlog_delivered = 0u64;
    // Backlog instances that failed `NotDelivered::ATTEMPTS` times in this session, by SOP UID.
    let mut not_delivered: BTreeMap<Key, NotDelivered> = BTreeMap::new();
    // Consecutive failures of each delivery that failed, and the deliveries waiting to retry.
    let mut failures: HashMap<Key, u32> = HashMap::new();
    let mut retry: RetryQueue<Queued> = RetryQueue::default();
    let mut in_flight: JoinSet<(Queued, Result<(), DeliveryError>)> = JoinSet::new();
    let mut ctl_buf = [0u8; 256];
    loop {
        if !backlog_told && backlog_left.is_empty() {
            backlog_told = true;
            let n = backlog_notice(backlog_delivered, &not_delivered);
            if ctl_send.write_chunk(encode_frame(&n)).await.is_err() {
                break;
            }
            if not_delivered.is_empty() {
                debug!(reader = %reader, backlog_delivered, "backlog delivered");
            } else {
                warn!(
                    reader = %reader, backlog_delivered, not_delivered = not_delivered.len(),
                    "backlog dealt with, but some instances could not be delivered in this session (they stay in the outbox)"
                );
            }
        }
        while in_flight.len() < ctx.config.concurrent_per_reader {
            let Some(q) = queue.pop() else { break };
            let conn = conn.clone();
            let ctx2 = ctx.clone();
            let reads = reads.clone();
            in_flight.spawn(async move {
                let r = deliver(&ctx2, &conn, &reads, &q).await;
                (q, r)
            });
        }
        // A far-away instant stands in when nothing waits (the branch is disabled then).
        let next_retry = retry
            .next_due()
            .unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else {
                    info!(reader = %reader, "a newer connection of this reader took over");
                    break;
                };
                match job {
                    Job::Live(l) => {
                        if known.insert(key(&l.instance)) {
                            order += 1;
                            queue.push(queued_live(l, order));
                        }
                    }
                    Job::Stored(instance) => {
                        if !known.contains(&key(&instance)) {
                            if let Some(item) = pending_item(&ctx, &reader, &instance).await {
                                known.insert(key(&instance));
                                order += 1;
                                queue.push(queued_from_outbox(item, order));
                            }
                        }
                    }
                    Job::Study(study) => {
                        if !notify_study(&ctx, &reader, &study, &mut ctl_send).await {
                            break;
                        }
                    }
                }
            }
            done = in_flight.join_next(), if !in_flight.is_empty() => {
                let Some(Ok((q, r))) = done else { continue };
                let inst = q.instance.clone();
                match r {
                    Ok(()) => {
                        Metrics::add(&ctx.ingest.metrics.instances_delivered, 1);
                        let store = ctx.ingest.store.clone();
                        let (rd, study, sop) = (reader.clone(), inst.study_uid.clone(), inst.sop_uid.clone());
                        let marked = tokio::task::spawn_blocking(move || store.mark_delivered(&rd, &study, &sop))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()));
                        if let Err(e) = marked {
                            // The reader holds it; the next session's offer is answered `Have`.
                            warn!(reader = %reader, sop_uid = %inst.sop_uid, "delivered, but cannot record it in the outbox: {e}");
                        }
                        if backlog_left.remove(&key(&inst)) {
                            backlog_delivered += 1;
                        }
                        if failures.remove(&key(&inst)).is_some() {
                            info!(reader = %reader, sop_uid = %inst.sop_uid, "delivered after failed attempts");
                        }
                        if not_delivered.remove(&key(&inst)).is_some() && !backlog_told {
                            backlog_delivered += 1;
                        }
                        debug!(reader = %reader, sop_uid = %inst.sop_uid, "delivered");
                        if !notify_study(&ctx, &reader, &inst.study_uid, &mut ctl_send).await {
                            break;
                        }
                    }
                    Err(DeliveryError::UpstreamFailed) => {
                        // Stays routed: delivered from the outbox once a retried upload stores it.
                        known.remove(&key(&inst));
                        backlog_left.remove(&key(&inst));
                        failures.remove(&key(&inst));
                        not_delivered.remove(&key(&inst));
                    }
                    Err(e) => {
                        if conn.close_reason().is_some() {
                            break;
                        }
                        // Stays known (and in the outbox): tried again after a backoff.
                        let n = failures.entry(key(&inst)).or_insert(0);
                        *n += 1;
                        let (attempts, wait) = (*n, backoff(*n));
                        if attempts == 1 {
                            warn!(reader = %reader, sop_uid = %inst.sop_uid, "delivery failed, trying again in {wait:?} (it stays in the outbox): {e}");
                        } else {
                            debug!(reader = %reader, sop_uid = %inst.sop_uid, attempts, "delivery failed again, next attempt in {wait:?}: {e}");
                        }
                        if attempts >= NotDelivered::ATTEMPTS && backlog_left.remove(&key(&inst)) {
                            warn!(reader = %reader, sop_uid = %inst.sop_uid, attempts, "not delivered in this session; retried every {wait:?} at most while the reader stays: {e}");
                            not_delivered.insert(
                                key(&inst),
                                NotDelivered::new(inst.clone(), attempts, &e.reason()),
                            );
                        } else if let Some(nd) = not_delivered.get_mut(&key(&inst)) {
                            *nd = NotDelivered::new(inst.clone(), attempts, &e.reason());
                        }
                        retry.push(tokio::time::Instant::now() + wait, q);
                    }
                }
            }
            _ = tokio::time::sleep_until(next_retry), if !retry.is_empty() => {
                let now = tokio::time::Instant::now();
                while let Some(q) = retry.pop_due(now) {
                    queue.push(q);
                }
            }
            r = ctl_recv.read(&mut ctl_buf) => {
                // The reader sends nothing more on the control stream; its end means it left.
                if !matches!(r, Ok(Some(_))) {
                    break;
                }
            }
            _ = conn.closed() => break,
        }
    }
    in_flight.abort_all();
    ctx.ingest.hub.disconnect_reader(&reader, session);
    info!(reader = %reader, "reader left");
}

/// The backlog notice: what was delivered, and the instances not delivered this session (the
/// first [`NotDelivered::MAX_LISTED`], in SOP UID order, and their count).
fn backlog_notice(delivered: u64, not_delivered: &BTreeMap<Key, NotDelivered>) -> Notice {
    Notice::BacklogDelivered {
        instances: delivered,
        not_delivered: not_delivered
            .values()
            .take(NotDelivered::MAX_LISTED)
            .cloned()
            .collect(),
        not_delivered_total: not_delivered.len() as u64,
    }
}

fn queued_from_outbox(item: OutboxItem, order: u64) -> Queued {
    Queued {
        priority: item.priority,
        order,
        instance: InstanceRef {
            study_uid: item.instance.study_uid,
            sop_uid: item.instance.sop_uid,
        },
        size: item.instance.size,
        source: Pending::Stored(item.instance.hash),
    }
}

fn queued_live(l: Arc<LiveInstance>, order: u64) -> Queued {
    Queued {
        priority: l.priority,
        order,
        instance: l.instance.clone(),
        size: l.size,
        source: Pending::Live(l),
    }
}

/// An instance as a reader session keys it: (study, SOP Instance UID).
type Key = (String, String);

fn key(i: &InstanceRef) -> Key {
    (i.study_uid.clone(), i.sop_uid.clone())
}

async fn pending_item(ctx: &Arc<Ctx>, reader: &str, instance: &InstanceRef) -> Option<OutboxItem> {
    let store = ctx.ingest.store.clone();
    let (r, i) = (reader.to_string(), instance.clone());
    let item = tokio::task::spawn_blocking(move || store.pending_one(&r, &i.study_uid, &i.sop_uid))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    item.unwrap_or_else(|e| {
        warn!(reader, sop_uid = %instance.sop_uid, "cannot read the outbox: {e} (delivered with the next session's backlog)");
        None
    })
}

/// Send `StudyComplete` if the study became complete for this reader. False if the control
/// stream is gone.
async fn notify_study(ctx: &Arc<Ctx>, reader: &str, study: &str, ctl: &mut SendStream) -> bool {
    let store = ctx.ingest.store.clone();
    let (r, s) = (reader.to_string(), study.to_string());
    let n = tokio::task::spawn_blocking(move || store.take_study_notice(&r, &s))
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten();
    if let Some(instances) = n {
        info!(reader = %reader, study_uid = %study, instances, "study complete for reader");
        let notice = Notice::StudyComplete {
            study_uid: study.to_string(),
            instances,
        };
        return ctl.write_chunk(encode_frame(&notice)).await.is_ok();
    }
    true
}

/// Deliver one instance on a new stream. `reads`: the file reads this reader connection may
/// hold at once (`budget.rs`).
async fn deliver(
    ctx: &Arc<Ctx>,
    conn: &Connection,
    reads: &Semaphore,
    q: &Queued,
) -> Result<(), DeliveryError> {
    let _active = Gauge::up(&ctx.ingest.metrics.deliveries_active);
    let source = match &q.source {
        &Pending::Stored(hash) => {
            let path = ctx.ingest.store.object_path(&hash);
            let file = tokio::task::spawn_blocking(move || File::open(path))
                .await
                .map_err(|e| DeliveryError::Io(std::io::Error::other(e)))??;
            Source::Stored {
                file: Arc::new(file),
                hash,
            }
        }
        Pending::Live(l) => Source::Live(l.clone()),
    };
    let known_hash = match &source {
        Source::Stored { hash, .. } => Some(*hash),
        Source::Live(_) => None,
    };
    let (mut send, mut recv) = conn.open_bi().await?;
    // The offer overtakes other deliveries' data; then in queue order (urgent first).
    let _ = send.set_priority(priority::OFFER);
    let mut sender = Sender::new(Offer {
        instance: q.instance.clone(),
        size: q.size,
        priority: q.priority,
        hash: known_hash,
        facts: None,
    });
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(b) = sender.poll_transmit() {
            send.write_chunk(b).await?;
        }
        if let Some(ev) = sender.poll_event() {
            match ev {
                SenderEvent::Accepted { offset } => {
                    let _ = send.set_priority(priority::data(q.priority, q.order));
                    let mut out = Out {
                        ctx,
                        send: &mut send,
                        sender: &mut sender,
                        reads,
                    };
                    let sent = match &source {
                        Source::Stored { file, hash } => {
                            out.file_range(file, offset, q.size).await.map(|()| *hash)
                        }
                        Source::Live(l) => out.live(l, offset).await,
                    };
                    let hash = match sent {
                        Ok(h) => h,
                        Err(e @ DeliveryError::Write(quinn::WriteError::Stopped(_))) => {
                            // The reader gave up mid-transfer; it says why before it stops.
                            return Err(refusal_after_stop(&mut recv, &mut sender)
                                .await
                                .map_or(e, DeliveryError::Refused));
                        }
                        Err(e) => return Err(e),
                    };
                    sender.finish(hash)?;
                }
                // Readers do not hold deliveries (yet): nothing to do.
                SenderEvent::Checkpoint { .. } | SenderEvent::Held | SenderEvent::Resumed => {}
                SenderEvent::Have { .. } | SenderEvent::Stored { .. } => {
                    let _ = send.finish();
                    return Ok(());
                }
                SenderEvent::Refused(r) => return Err(DeliveryError::Refused(r)),
            }
            continue;
        }
        match recv.read(&mut buf).await? {
            Some(n) => sender.handle_input(Bytes::copy_from_slice(&buf[..n]))?,
            None => {
                sender.handle_end()?;
                return Ok(());
            }
        }
    }
}

/// The refusal a reader sent before it stopped a transfer mid-data, if it arrives soon.
async fn refusal_after_stop(
    recv: &mut RecvStream,
    sender: &mut Sender,
) -> Option<yilian_proto::Refusal> {
    let read = async {
        let mut buf = vec![0u8; 4096];
        while let Ok(Some(n)) = recv.read(&mut buf).await {
            sender
                .handle_input(Bytes::copy_from_slice(&buf[..n]))
                .ok()?;
            while let Some(ev) = sender.poll_event() {
                if let SenderEvent::Refused(r) = ev {
                    return Some(r);
                }
            }
        }
        None
    };
    tokio::time::timeout(REFUSAL_WAIT, read)
        .await
        .ok()
        .flatten()
}

/// How long a stopped delivery waits for the reader's reason.
const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn read_at(file: Arc<File>, pos: u64, len: usize) -> Result<Bytes, DeliveryError> {
    let b = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, pos).map(|_| buf)
    })
    .await
    .map_err(|e| DeliveryError::Io(std::io::Error::other(e)))??;
    Ok(Bytes::from(b))
}

/// The data half of one delivery: its stream, its transfer state and its reader's read slots.
struct Out<'a> {
    ctx: &'a Ctx,
    send: &'a mut SendStream,
    sender: &'a mut Sender,
    reads: &'a Semaphore,
}

impl Out<'_> {
    async fn write(&mut self, b: Bytes) -> Result<(), DeliveryError> {
        let n = b.len() as u64;
        self.send.write_chunk(b).await?;
        self.sender.data_sent(n)?;
        Metrics::add(&self.ctx.ingest.metrics.bytes_out, n);
        Ok(())
    }

    /// Published bytes `[pos, end)` of a live instance this reader missed: from the file as
    /// far as it holds them, the rest from the chunks it does not hold yet (direct writes
    /// gather up to a buffer's worth before they write; `LiveInstance::held`).
    async fn missed_range(
        &mut self,
        live: &LiveInstance,
        file: &Arc<File>,
        mut pos: u64,
        end: u64,
    ) -> Result<(), DeliveryError> {
        while pos < end {
            match live.held(pos, end) {
                Held::File { until } => {
                    self.file_range(file, pos, until).await?;
                    pos = until;
                }
                Held::Memory(pieces) => {
                    if pieces.is_empty() {
                        return Err(DeliveryError::Io(std::io::Error::other(
                            "bytes of a live instance are neither in its file nor in memory",
                        )));
                    }
                    for piece in pieces {
                        pos += piece.len() as u64;
                        self.write(piece).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Bytes `[pos, end)` from the file. Each chunk is read holding one of the reader's read
    /// slots, kept until QUIC has taken the chunk into the connection's (budgeted) window.
    async fn file_range(
        &mut self,
        file: &Arc<File>,
        mut pos: u64,
        end: u64,
    ) -> Result<(), DeliveryError> {
        while pos < end {
            let n = ((end - pos) as usize).min(CHUNK);
            let _slot = self
                .reads
                .acquire()
                .await
                .map_err(|e| DeliveryError::Io(std::io::Error::other(e)))?;
            let b = read_at(file.clone(), pos, n).await?;
            self.write(b).await?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Cut-through: shared chunks from the broadcast while keeping up; the partial file only
    /// for ranges the broadcast does not hold for this reader (it joined late, or fell more
    /// than the broadcast window behind). Returns the hash once the upload is stored.
    async fn live(
        &mut self,
        live: &Arc<LiveInstance>,
        mut pos: u64,
    ) -> Result<Hash, DeliveryError> {
        let mut chunks = live.subscribe();
        let written = live.written();
        let mut outcome = live.outcome();
        let file = Arc::new(live.file.try_clone()?);
        let mut next: Option<(u64, Bytes)> = None;
        loop {
            // 1. The next shared chunk, if one is queued for us.
            if next.is_none() {
                match chunks.try_recv() {
                    Ok(c) => next = Some(c),
                    Err(TryRecvError::Lagged(_)) => continue,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => {}
                }
            }
            if let Some((off, bytes)) = next.take() {
                let end = off + bytes.len() as u64;
                if end <= pos {
                    continue; // already sent (from the file)
                }
                if off > pos {
                    // A gap the broadcast no longer holds for us: the file (or the bytes not
                    // in it yet) has it.
                    self.missed_range(live, &file, pos, off).await?;
                    pos = off;
                }
                let shared = bytes.slice((pos - off) as usize..);
                Metrics::add(
                    &self.ctx.ingest.metrics.bytes_out_shared,
                    shared.len() as u64,
                );
                self.write(shared).await?;
                pos = end;
                continue;
            }
            // 2. Nothing queued: finished upstream?
            let done = outcome.borrow_and_update().clone();
            match done {
                Some(LiveOutcome::Failed) => return Err(DeliveryError::UpstreamFailed),
                Some(LiveOutcome::Stored(h)) => {
                    if pos < live.size {
                        self.file_range(&file, pos, live.size).await?;
                    }
                    return Ok(h);
                }
                None => {}
            }
            // 3. Bytes published before we subscribed (or dropped while we lagged): the file,
            // or the bytes not in it yet.
            let w = *written.borrow();
            if pos < w {
                self.missed_range(live, &file, pos, w).await?;
                pos = w;
                continue;
            }
            // 4. Wait for more.
            tokio::select! {
                r = chunks.recv() => match r {
                    Ok(c) => next = Some(c),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => {
                        if outcome.changed().await.is_err() {
                            return Err(DeliveryError::UpstreamFailed);
                        }
                    }
                },
                r = outcome.changed() => {
                    if r.is_err() {
                        return Err(DeliveryError::UpstreamFailed);
                    }
                }
            }
        }
    }
}
