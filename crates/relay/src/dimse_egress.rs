//! DIMSE egress: the relay delivers to DICOM peers (a county PACS, a workstation that only
//! listens) by C-STORE.
//!
//! A peer is an `[[ae]]` of the topology with `push = true`, `host` and `port`, acting as a
//! **reader identity**. Routing does not change: what is routed to that reader lands in its
//! persistent outbox like for any reader. One **worker** per push AE (started and stopped by
//! [`run`] as reloads add, change or remove push AEs) drains that outbox:
//!
//! * **Order**: urgent first, then arrival order (the outbox's). New instances are picked up
//!   at once: the worker registers in the hub as the reader (`Hub::connect_reader`) and gets
//!   `Job::Stored` when an instance routed to it is committed; it also looks at the outbox
//!   again every [`RESCAN`] while idle (entries put back by an administrator).
//! * **Associations**: up to `[dimse] egress_associations` in parallel (lanes), calling AE =
//!   `[dimse] ae_title`, called AE = the peer's title. A lane keeps its association while it has
//!   work and releases it after [`IDLE_RELEASE`]; it proposes the (SOP class, transfer syntax)
//!   pairs it has needed so far and associates again when a new pair comes.
//! * **What is sent**: each stored object is a Part 10 file; its data set (after the file meta)
//!   streams from disk in the **stored transfer syntax**, never whole in memory. Uncompressed
//!   little endian data sets propose their syntax alone and, in a second context, both Explicit
//!   and Implicit VR LE; one stored in Explicit VR LE goes to a peer that accepted only Implicit
//!   VR LE transcoded on the fly (the syntax every peer must accept). A peer that accepts
//!   neither (or a compressed syntax it did not take, or not the class at all) gets nothing,
//!   and the instance is reported as not deliverable (compressed data is never decompressed).
//! * **Outcomes** ([`classify`]): success or warning in the C-STORE-RSP marks the entry
//!   delivered (audited `deliver`/`ok` like a QUIC delivery). A permanent refusal (0xA9xx,
//!   0xCxxx, 0x0111, 0x0117–0x0119, 0x0122, 0x0124; a syntax or class the peer does not accept;
//!   a stored copy that is not Part 10) is recorded on the entry, which leaves the pending
//!   queue (`Store::record_failure`; audited `deliver`/`refused`), and logged once with AE
//!   title, SOP Instance UID, status in hex and the peer's comment. Transient refusals (0xA7xx,
//!   0xFExx, 0x0213) are recorded (`deliver`/`retry`) and tried again after a capped backoff
//!   (1 s, 2 s … 60 s, `retry.rs`); other failure statuses too, but at most
//!   [`UNCLASSIFIED_LIMIT`] times, then they count as permanent.
//! * **The peer** (connection refused, timeouts, an association rejected or aborted) is backed
//!   off as a whole with the same policy: while it fails, one lane probes it; the first success
//!   opens the others. Nothing in the outbox changes for a peer problem — also not for a
//!   *permanent* association rejection (calling AE not recognized…): that is about the AE
//!   configuration, not about any instance, and the outbox must be intact once the
//!   administrator fixes it. It is logged as an error and audited at each change of the peer's
//!   state, not at every retry.
//! * A QUIC subscription of a push reader is refused (`server.rs`): one outbox, one deliverer.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use yilian_dimse::scu::{storage_contexts, ScuConfig, StoreScu};
use yilian_dimse::transfer_syntaxes::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use yilian_dimse::{part10, DimseError, RejectResult, Status};
use yilian_ingest::hub::Job;
use yilian_ingest::{Gauge, Metrics};
use yilian_proto::Hash;
use yilian_route::AeTitle;
use yilian_store::{AuditAction, AuditEvent, DeliveryFailure, OutboxItem};

use crate::ctx::Ctx;
use crate::retry::{backoff, RetryQueue};

/// How often the supervisor looks for a new topology.
const TOPOLOGY_POLL: Duration = Duration::from_secs(1);
/// An idle worker reads its outbox again this often (entries put back by an administrator).
pub const RESCAN: Duration = Duration::from_secs(30);
/// A lane releases its association after this long without work.
pub const IDLE_RELEASE: Duration = Duration::from_secs(5);
/// Bound on a TCP connect to the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Failure statuses this function does not know are tried this many times, then count as
/// permanent.
pub const UNCLASSIFIED_LIMIT: u32 = 5;
/// (SOP class, transfer syntax) pairs one association proposes at most (each takes up to two
/// of the 128 presentation contexts).
const MAX_PAIRS: usize = 48;
/// Bytes read from the spool at a time (the data set leaves in PDU-sized pieces of this).
const READ_BUFFER: usize = 256 * 1024;

/// What a C-STORE-RSP status means for the outbox entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Success or warning: the peer holds it.
    Delivered,
    /// The peer cannot take it now (out of resources, cancelled, resource limitation).
    Transient,
    /// The peer will never take it as it is.
    Permanent,
    /// A failure status not classified here: retried at most [`UNCLASSIFIED_LIMIT`] times.
    Unclassified,
}

/// What a C-STORE-RSP status means (PS3.4 B.2.3, PS3.7 C).
pub fn classify(status: Status) -> Verdict {
    if status.is_done() {
        return Verdict::Delivered;
    }
    match status.0 {
        // Refused: out of resources; cancelled; resource limitation.
        0xA700..=0xA7FF | 0xFE00..=0xFEFF | 0x0213 => Verdict::Transient,
        // Error: data set does not match SOP class; cannot understand; duplicate SOP
        // instance; invalid object instance; no such SOP class; class-instance conflict; SOP
        // class not supported; not authorized.
        0xA900..=0xA9FF | 0xC000..=0xCFFF | 0x0111 | 0x0117 | 0x0118 | 0x0119 | 0x0122 | 0x0124 => {
            Verdict::Permanent
        }
        _ => Verdict::Unclassified,
    }
}

/// Whether an association failure is worth retrying: everything is, but a permanent
/// rejection is reported as a configuration problem (see the module docs).
pub fn rejection_is_permanent(e: &DimseError) -> bool {
    matches!(e, DimseError::Rejected(r) if r.result == RejectResult::Permanent)
}

/// A push AE as the worker needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Peer {
    title: String,
    reader: String,
    host: String,
    port: u16,
}

impl Peer {
    fn from_ae(ae: &AeTitle) -> Option<Peer> {
        let (host, port) = ae.endpoint()?;
        Some(Peer {
            title: ae.title.trim().to_string(),
            reader: ae.identity.clone(),
            host: host.to_string(),
            port,
        })
    }
}

/// Run one worker per push AE of the topology in force, until dropped.
pub(crate) async fn run(ctx: Arc<Ctx>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut workers: HashMap<String, (Peer, tokio::task::AbortHandle)> = HashMap::new();
    let mut seen: Option<Arc<yilian_route::Topology>> = None;
    let mut tick = tokio::time::interval(TOPOLOGY_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        while let Some(done) = tasks.try_join_next_with_id() {
            let id = match &done {
                Ok((id, ())) => *id,
                Err(e) => e.id(),
            };
            if let Err(e) = &done {
                if e.is_panic() {
                    error!("a DIMSE egress worker panicked; it is started again");
                }
            }
            workers.retain(|_, (_, h)| h.id() != id);
            seen = None; // start it again
        }
        let topology = ctx.topology();
        if seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &topology)) {
            continue;
        }
        let wanted: HashMap<String, Peer> = topology
            .push_aes()
            .filter_map(Peer::from_ae)
            .map(|p| (p.title.clone(), p))
            .collect();
        workers.retain(|title, (peer, handle)| {
            if wanted.get(title) == Some(peer) {
                return true;
            }
            info!(ae = %title, reader = %peer.reader, "DIMSE egress stopped (the topology changed)");
            handle.abort();
            false
        });
        for (title, peer) in wanted {
            workers.entry(title).or_insert_with(|| {
                let handle = tasks.spawn(worker(ctx.clone(), peer.clone()));
                (peer, handle)
            });
        }
        seen = Some(topology);
    }
}

/// An outbox entry on its way to the peer.
#[derive(Clone, Debug)]
struct Item {
    priority: u8,
    seq: i64,
    study: String,
    sop: String,
    sop_class: String,
    hash: Hash,
    size: u64,
}

type Key = (String, String);

impl Item {
    fn from_outbox(o: OutboxItem) -> Item {
        Item {
            priority: o.priority,
            seq: o.seq,
            study: o.instance.study_uid,
            sop: o.instance.sop_uid,
            sop_class: o.instance.sop_class_uid,
            hash: o.instance.hash,
            size: o.instance.size,
        }
    }

    fn key(&self) -> Key {
        (self.study.clone(), self.sop.clone())
    }
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    // Max-heap: urgent first, then the oldest outbox entry.
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

/// How one attempt ended.
#[derive(Debug)]
enum Outcome {
    /// C-STORE-RSP success or warning.
    Stored {
        status: Status,
        comment: Option<String>,
    },
    /// C-STORE-RSP failure.
    Refused {
        status: Status,
        comment: Option<String>,
    },
    /// Never deliverable as stored (syntax or class not accepted, not a Part 10 file).
    Unsendable(String),
    /// The relay could not read its copy (tried again).
    SpoolUnreadable(String),
    /// The peer could not be reached or the association failed; `attempted`: during this
    /// instance's C-STORE (the instance waits its own backoff, so the next probe takes
    /// another one).
    PeerFailed {
        error: String,
        permanent_rejection: bool,
        attempted: bool,
    },
}

/// Unregisters the worker from the hub however it ends (aborted by a reload included).
struct HubSession {
    ctx: Arc<Ctx>,
    reader: String,
    session: u64,
}

impl Drop for HubSession {
    fn drop(&mut self) {
        self.ctx
            .ingest
            .hub
            .disconnect_reader(&self.reader, self.session);
    }
}

/// The peer's health, as the worker sees it.
#[derive(Default)]
struct PeerHealth {
    /// Consecutive failures (0: fine).
    failures: u32,
    /// No dispatch before this.
    retry_at: Option<Instant>,
}

/// Drain one push AE's reader outbox, forever.
async fn worker(ctx: Arc<Ctx>, peer: Peer) {
    let lanes_n = ctx.config.dimse.egress_associations.max(1);
    let (session, mut jobs, _live) = ctx.ingest.hub.connect_reader(&peer.reader);
    let mut hub = HubSession {
        ctx: ctx.clone(),
        reader: peer.reader.clone(),
        session,
    };
    info!(
        ae = %peer.title, reader = %peer.reader, host = %peer.host, port = peer.port,
        associations = lanes_n, calling_ae = %ctx.config.dimse.ae_title,
        "DIMSE egress started"
    );
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Item, Outcome)>();
    let mut lane_tasks: JoinSet<()> = JoinSet::new();
    let mut lanes: Vec<(mpsc::Sender<Item>, bool)> = Vec::with_capacity(lanes_n);
    for i in 0..lanes_n {
        let (tx, rx) = mpsc::channel::<Item>(1);
        lane_tasks.spawn(lane(ctx.clone(), peer.clone(), i, rx, done_tx.clone()));
        lanes.push((tx, false));
    }
    drop(done_tx);

    let mut queue: BinaryHeap<Item> = BinaryHeap::new();
    let mut known: HashSet<Key> = HashSet::new();
    let mut failures: HashMap<Key, u32> = HashMap::new();
    let mut retry: RetryQueue<Item> = RetryQueue::default();
    let mut health = PeerHealth::default();
    rescan(&ctx, &peer, &mut queue, &mut known).await;
    let mut last_scan = Instant::now();
    loop {
        // Hand work to idle lanes: all of them while the peer is fine, one while it is not.
        let now = Instant::now();
        if health.retry_at.is_none_or(|t| t <= now) {
            let cap = if health.failures == 0 { lanes.len() } else { 1 };
            let mut busy = lanes.iter().filter(|(_, b)| *b).count();
            for (tx, b) in lanes.iter_mut() {
                if busy >= cap {
                    break;
                }
                if *b {
                    continue;
                }
                let Some(item) = queue.pop() else { break };
                match tx.try_send(item) {
                    Ok(()) => {
                        *b = true;
                        busy += 1;
                    }
                    Err(e) => {
                        queue.push(e.into_inner());
                        break;
                    }
                }
            }
        }
        let idle = queue.is_empty() && retry.is_empty() && lanes.iter().all(|(_, b)| !*b);
        let far = now + Duration::from_secs(3600);
        let wake = [
            retry.next_due(),
            // Only a future instant: when lanes are busy, a past one would spin.
            health.retry_at.filter(|t| *t > now && !queue.is_empty()),
            idle.then_some(last_scan + RESCAN),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far);
        tokio::select! {
            job = jobs.recv() => match job {
                Some(Job::Stored(instance)) => {
                    let key = (instance.study_uid.clone(), instance.sop_uid.clone());
                    if !known.contains(&key) {
                        if let Some(item) = pending_one(&ctx, &peer.reader, &key).await {
                            known.insert(key);
                            queue.push(item);
                        }
                    }
                }
                Some(Job::Live(_)) | Some(Job::Study(_)) => {}
                None => {
                    // Replaced in the hub (a reload made this reader a push AE while it was
                    // connected over QUIC, and it reconnected): take it back.
                    warn!(ae = %peer.title, reader = %peer.reader, "DIMSE egress: registering again as the reader's deliverer");
                    let (s, j, _) = ctx.ingest.hub.connect_reader(&peer.reader);
                    hub.session = s;
                    jobs = j;
                    rescan(&ctx, &peer, &mut queue, &mut known).await;
                    last_scan = Instant::now();
                }
            },
            done = done_rx.recv() => {
                let Some((lane_id, item, outcome)) = done else {
                    error!(ae = %peer.title, "DIMSE egress: every lane ended; stopping this worker");
                    return;
                };
                if let Some(l) = lanes.get_mut(lane_id) {
                    l.1 = false;
                }
                handle(
                    &ctx, &peer, item, outcome, &mut known, &mut failures, &mut retry,
                    &mut queue, &mut health,
                )
                .await;
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                while let Some(item) = retry.pop_due(now) {
                    queue.push(item);
                }
                if idle && now >= last_scan + RESCAN {
                    rescan(&ctx, &peer, &mut queue, &mut known).await;
                    last_scan = now;
                }
            }
        }
    }
}

/// Queue every pending entry of the reader not known yet.
async fn rescan(
    ctx: &Arc<Ctx>,
    peer: &Peer,
    queue: &mut BinaryHeap<Item>,
    known: &mut HashSet<Key>,
) {
    let store = ctx.ingest.store.clone();
    let reader = peer.reader.clone();
    let pending = match tokio::task::spawn_blocking(move || store.pending_for(&reader)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            warn!(ae = %peer.title, "DIMSE egress: cannot read the outbox of {}: {e}", peer.reader);
            return;
        }
        Err(_) => return,
    };
    let mut added = 0usize;
    for o in pending {
        let item = Item::from_outbox(o);
        if known.insert(item.key()) {
            queue.push(item);
            added += 1;
        }
    }
    if added > 0 {
        info!(ae = %peer.title, reader = %peer.reader, instances = added, "DIMSE egress: instances waiting");
    }
}

async fn pending_one(ctx: &Arc<Ctx>, reader: &str, key: &Key) -> Option<Item> {
    let store = ctx.ingest.store.clone();
    let (r, (study, sop)) = (reader.to_string(), key.clone());
    match tokio::task::spawn_blocking(move || store.pending_one(&r, &study, &sop)).await {
        Ok(Ok(o)) => o.map(Item::from_outbox),
        Ok(Err(e)) => {
            warn!(reader, sop_uid = %key.1, "DIMSE egress: cannot read the outbox: {e} (picked up at the next scan)");
            None
        }
        Err(_) => None,
    }
}

/// Record one attempt's outcome: outbox, audit, log, and what happens next.
#[allow(clippy::too_many_arguments)]
async fn handle(
    ctx: &Arc<Ctx>,
    peer: &Peer,
    item: Item,
    outcome: Outcome,
    known: &mut HashSet<Key>,
    failures: &mut HashMap<Key, u32>,
    retry: &mut RetryQueue<Item>,
    queue: &mut BinaryHeap<Item>,
    health: &mut PeerHealth,
) {
    let key = item.key();
    let ae = peer.title.as_str();
    if !matches!(outcome, Outcome::PeerFailed { .. }) && health.failures > 0 {
        info!(ae, host = %peer.host, port = peer.port, failures = health.failures, "DIMSE peer reachable again; delivering");
        audit_peer(
            ctx,
            peer,
            "peer-reachable",
            format!("AE {ae} at {}:{}", peer.host, peer.port),
        )
        .await;
        *health = PeerHealth::default();
    }
    // (status, comment, permanent?) of a refusal to record; None when done otherwise.
    let refusal: Option<(Option<Status>, String, bool)> = match outcome {
        Outcome::Stored { status, comment } => {
            let store = ctx.ingest.store.clone();
            let (r, s, u) = (peer.reader.clone(), item.study.clone(), item.sop.clone());
            let marked = tokio::task::spawn_blocking(move || store.mark_delivered(&r, &s, &u))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            Metrics::add(&ctx.ingest.metrics.instances_delivered, 1);
            Metrics::add(&ctx.ingest.metrics.bytes_out, item.size);
            if let Err(e) = marked {
                // The peer holds it; it may get it once more later.
                warn!(ae, sop_uid = %item.sop, "stored by the DIMSE peer, but cannot record the delivery: {e}");
            }
            if status == Status::SUCCESS {
                debug!(ae, sop_uid = %item.sop, "C-STORE delivered");
            } else {
                info!(ae, sop_uid = %item.sop, status = %format_args!("0x{:04X}", status.0), comment = comment.as_deref().unwrap_or(""), "C-STORE delivered with a warning");
            }
            if failures.remove(&key).is_some() {
                info!(ae, sop_uid = %item.sop, "delivered after failed attempts");
            }
            known.remove(&key);
            None
        }
        Outcome::Refused { status, comment } => {
            let n = failures.get(&key).copied().unwrap_or(0) + 1;
            let verdict = match classify(status) {
                Verdict::Unclassified if n >= UNCLASSIFIED_LIMIT => Verdict::Permanent,
                v => v,
            };
            let comment = comment.unwrap_or_default();
            let reason = format!(
                "AE {ae} refused it with status 0x{:04X}{}",
                status.0,
                if comment.is_empty() {
                    String::new()
                } else {
                    format!(": {comment:?}")
                }
            );
            Some((Some(status), reason, verdict == Verdict::Permanent))
        }
        Outcome::Unsendable(why) => {
            Some((None, format!("not deliverable to AE {ae}: {why}"), true))
        }
        Outcome::SpoolUnreadable(why) => Some((
            None,
            format!("its stored copy cannot be read: {why}"),
            false,
        )),
        Outcome::PeerFailed {
            error: e,
            permanent_rejection,
            attempted,
        } => {
            health.failures += 1;
            let wait = backoff(health.failures);
            health.retry_at = Some(Instant::now() + wait);
            let where_ = format!("AE {ae} at {}:{}", peer.host, peer.port);
            if health.failures == 1 {
                if permanent_rejection {
                    error!(ae, host = %peer.host, port = peer.port, calling_ae = %ctx.config.dimse.ae_title,
                        "the DIMSE peer rejects the relay's association for good: {e}; fix the peer's AE configuration (it must accept calling AE {} for called AE {ae}); nothing is lost: the outbox is tried again every {:?} at most",
                        ctx.config.dimse.ae_title, crate::retry::MAX);
                } else {
                    warn!(ae, host = %peer.host, port = peer.port, "DIMSE peer unavailable, trying again in {wait:?} (instances wait in the outbox): {e}");
                }
                let outcome = if permanent_rejection {
                    "association-rejected"
                } else {
                    "peer-unreachable"
                };
                audit_peer(ctx, peer, outcome, format!("{where_}: {e}")).await;
            } else if health.failures.is_multiple_of(10) {
                warn!(
                    ae,
                    failures = health.failures,
                    "DIMSE peer still unavailable, next attempt in {wait:?}: {e}"
                );
            } else {
                debug!(
                    ae,
                    failures = health.failures,
                    "DIMSE peer still unavailable, next attempt in {wait:?}: {e}"
                );
            }
            if attempted {
                // Died during this instance's C-STORE: recorded, and it waits its own backoff
                // so that the next probe of the peer takes another instance.
                let reason =
                    format!("the association with {where_} failed during the C-STORE: {e}");
                record(ctx, peer, &item, None, &reason, false).await;
                let n = failures.entry(key).or_insert(0);
                *n += 1;
                retry.push(Instant::now() + backoff(*n), item);
            } else {
                queue.push(item);
            }
            return;
        }
    };
    let Some((status, reason, permanent)) = refusal else {
        return;
    };
    record(ctx, peer, &item, status, &reason, permanent).await;
    if permanent {
        warn!(
            ae, sop_uid = %item.sop, study_uid = %item.study,
            status = %status.map(|s| format!("0x{:04X}", s.0)).unwrap_or_else(|| "none".into()),
            "DIMSE peer refused an instance for good: {reason}; it leaves the outbox of {} (kept as failed, not retried)",
            peer.reader
        );
        failures.remove(&key);
        known.remove(&key);
    } else {
        let n = failures.entry(key).or_insert(0);
        *n += 1;
        let wait = backoff(*n);
        if *n == 1 {
            warn!(ae, sop_uid = %item.sop, "C-STORE failed, trying again in {wait:?}: {reason}");
        } else {
            debug!(ae, sop_uid = %item.sop, attempts = *n, "C-STORE failed again, next attempt in {wait:?}: {reason}");
        }
        retry.push(Instant::now() + wait, item);
    }
}

/// Record an attempt on the outbox entry and in the audit log (one transaction).
async fn record(
    ctx: &Arc<Ctx>,
    peer: &Peer,
    item: &Item,
    status: Option<Status>,
    reason: &str,
    permanent: bool,
) {
    let store = ctx.ingest.store.clone();
    let (r, s, u) = (peer.reader.clone(), item.study.clone(), item.sop.clone());
    let failure = DeliveryFailure {
        status: status.map(|s| s.0),
        reason: reason.to_string(),
        permanent,
    };
    let done = tokio::task::spawn_blocking(move || store.record_failure(&r, &s, &u, &failure))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = done {
        Metrics::add(&ctx.ingest.metrics.audit_failures, 1);
        error!(ae = %peer.title, sop_uid = %item.sop, "cannot record a failed C-STORE ({reason}): {e}");
    }
}

/// Audit a change of the peer's state (not tied to an instance).
async fn audit_peer(ctx: &Arc<Ctx>, peer: &Peer, outcome: &str, detail: String) {
    ctx.ingest
        .audit(AuditEvent {
            actor: peer.reader.clone(),
            site: None,
            action: AuditAction::Deliver,
            study_uid: None,
            sop_uid: None,
            outcome: outcome.to_string(),
            detail: Some(detail),
        })
        .await;
}

/// One association's worth of work: C-STORE what the worker hands over, one at a time.
async fn lane(
    ctx: Arc<Ctx>,
    peer: Peer,
    id: usize,
    mut rx: mpsc::Receiver<Item>,
    done: mpsc::UnboundedSender<(usize, Item, Outcome)>,
) {
    let mut assoc: Option<Assoc> = None;
    loop {
        let item = if assoc.is_some() {
            match tokio::time::timeout(IDLE_RELEASE, rx.recv()).await {
                Ok(Some(i)) => i,
                Ok(None) => break,
                Err(_) => {
                    if let Some(a) = assoc.take() {
                        a.release(&peer).await;
                    }
                    continue;
                }
            }
        } else {
            match rx.recv().await {
                Some(i) => i,
                None => break,
            }
        };
        let outcome = {
            let _active = Gauge::up(&ctx.ingest.metrics.deliveries_active);
            send_one(&ctx, &peer, &mut assoc, &item).await
        };
        if done.send((id, item, outcome)).is_err() {
            break;
        }
    }
    if let Some(a) = assoc.take() {
        a.release(&peer).await;
    }
}

/// An open association and the (SOP class, transfer syntax) pairs it proposed.
struct Assoc {
    scu: StoreScu<TcpStream>,
    pairs: Vec<(String, String)>,
}

impl Assoc {
    async fn release(self, peer: &Peer) {
        if let Err(e) = self.scu.release().await {
            debug!(ae = %peer.title, "releasing the association: {e}");
        }
    }
}

/// The contexts to propose for `pairs`: Verification; per pair its own syntax alone; and for
/// uncompressed little endian, Explicit and Implicit VR LE as alternatives in one more context
/// (a peer that accepts only the other one then says so, and the instance is reported).
fn contexts_for(pairs: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    let mut out = Vec::new();
    for (class, syntaxes) in storage_contexts(&refs) {
        if syntaxes.len() > 1 && class != yilian_dimse::sop_classes::VERIFICATION {
            out.push((class.clone(), vec![syntaxes[0].clone()]));
        }
        out.push((class, syntaxes));
    }
    out
}

async fn connect(
    ctx: &Ctx,
    peer: &Peer,
    pairs: &[(String, String)],
) -> Result<StoreScu<TcpStream>, DimseError> {
    let addr = (peer.host.as_str(), peer.port);
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, yilian_dimse::tcp::connect(addr)).await
    {
        Ok(s) => s?,
        Err(_) => {
            return Err(DimseError::Timeout {
                waiting_for: "the TCP connection",
                after: CONNECT_TIMEOUT,
            })
        }
    };
    let mut config = ScuConfig::new(&ctx.config.dimse.ae_title, &peer.title);
    config.timeout = ctx.config.dimse.idle_timeout;
    StoreScu::connect(stream, &config, contexts_for(pairs)).await
}

/// C-STORE one instance, associating first if needed.
async fn send_one(ctx: &Arc<Ctx>, peer: &Peer, assoc: &mut Option<Assoc>, item: &Item) -> Outcome {
    let path = ctx.ingest.store.object_path(&item.hash);
    let p = path.clone();
    let meta = match tokio::task::spawn_blocking(move || part10::read_file_meta(&p)).await {
        Ok(Ok(m)) => m,
        Ok(Err(part10::Part10Error::Io(e))) => return Outcome::SpoolUnreadable(e.to_string()),
        Ok(Err(e)) => {
            return Outcome::Unsendable(format!(
                "its stored copy has no usable DICOM file meta ({e}), so its transfer syntax is unknown"
            ))
        }
        Err(e) => return Outcome::SpoolUnreadable(e.to_string()),
    };
    let class = if item.sop_class.is_empty() {
        meta.sop_class.clone()
    } else {
        item.sop_class.clone()
    };
    let ts = meta.transfer_syntax.clone();
    let pair = (class.clone(), ts.clone());
    if !assoc.as_ref().is_some_and(|a| a.pairs.contains(&pair)) {
        let mut pairs = match assoc.take() {
            Some(a) => {
                let pairs = a.pairs.clone();
                a.release(peer).await;
                pairs
            }
            None => Vec::new(),
        };
        if pairs.len() >= MAX_PAIRS {
            pairs.clear();
        }
        pairs.push(pair);
        match connect(ctx, peer, &pairs).await {
            Ok(scu) => *assoc = Some(Assoc { scu, pairs }),
            Err(e) => {
                return Outcome::PeerFailed {
                    permanent_rejection: rejection_is_permanent(&e),
                    error: e.to_string(),
                    attempted: false,
                }
            }
        }
    }
    let Some(a) = assoc.as_mut() else {
        return Outcome::PeerFailed {
            error: "no association".into(),
            permanent_rejection: false,
            attempted: false,
        };
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return Outcome::SpoolUnreadable(format!("{}: {e}", path.display())),
    };
    if let Err(e) = file
        .seek(std::io::SeekFrom::Start(meta.data_set_offset))
        .await
    {
        return Outcome::SpoolUnreadable(format!("{}: {e}", path.display()));
    }
    let read_failed = Arc::new(AtomicBool::new(false));
    let data = Watched {
        inner: tokio::io::BufReader::with_capacity(READ_BUFFER, file),
        failed: read_failed.clone(),
    };
    match a.scu.store(&class, &item.sop, &ts, data).await {
        Ok(r) if r.status.is_done() => Outcome::Stored {
            status: r.status,
            comment: r.comment,
        },
        Ok(r) => Outcome::Refused {
            status: r.status,
            comment: r.comment,
        },
        Err(DimseError::TransferSyntaxNotAccepted { accepted, .. }) => Outcome::Unsendable(format!(
            "it is stored in transfer syntax {ts} ({}), and the peer accepts SOP class {class} only in {}; the relay sends instances as stored (only Explicit VR LE is transcoded, to Implicit VR LE)",
            ts_name(&ts),
            accepted.iter().map(|t| format!("{t} ({})", ts_name(t))).collect::<Vec<_>>().join(", ")
        )),
        Err(DimseError::NoContext { .. }) => Outcome::Unsendable(format!(
            "the peer accepts no presentation context for SOP class {class} in transfer syntax {ts} ({}); the relay sends instances as stored (only Explicit VR LE is transcoded, to Implicit VR LE)",
            ts_name(&ts)
        )),
        Err(e) => {
            // The association is unusable after a failure in the middle of a C-STORE.
            if let Some(a) = assoc.take() {
                a.scu.abort().await;
            }
            if read_failed.load(AtomicOrdering::Relaxed) {
                Outcome::SpoolUnreadable(e.to_string())
            } else {
                Outcome::PeerFailed {
                    permanent_rejection: false,
                    error: e.to_string(),
                    attempted: true,
                }
            }
        }
    }
}

/// A transfer syntax's name, for people.
fn ts_name(uid: &str) -> &'static str {
    match uid {
        IMPLICIT_VR_LITTLE_ENDIAN => "Implicit VR Little Endian",
        EXPLICIT_VR_LITTLE_ENDIAN => "Explicit VR Little Endian",
        _ => yilian_dimse::transfer_syntaxes::get(uid)
            .map(|t| t.name)
            .unwrap_or("unknown"),
    }
}

/// Notes whether reading the spool failed (the SCU reports read and socket errors alike).
struct Watched<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Watched<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(_)) = &r {
            self.failed.store(true, AtomicOrdering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yilian_dimse::{Reject, RejectReason};

    #[test]
    fn success_and_warnings_are_delivered() {
        for s in [0x0000, 0x0001, 0x0107, 0x0116, 0xB000, 0xB006, 0xB007] {
            assert_eq!(classify(Status(s)), Verdict::Delivered, "{s:#06x}");
        }
    }

    #[test]
    fn resource_shortages_and_cancels_are_transient() {
        for s in [0xA700, 0xA701, 0xA7FF, 0xFE00, 0x0213] {
            assert_eq!(classify(Status(s)), Verdict::Transient, "{s:#06x}");
        }
    }

    #[test]
    fn refusals_of_the_instance_itself_are_permanent() {
        for s in [
            0xA900, 0xA9FF, 0xC000, 0xC001, 0xCFFF, 0x0111, 0x0117, 0x0118, 0x0119, 0x0122, 0x0124,
        ] {
            assert_eq!(classify(Status(s)), Verdict::Permanent, "{s:#06x}");
        }
    }

    #[test]
    fn other_failures_are_bounded_retries() {
        for s in [0x0110, 0x0210, 0x0212, 0xA800, 0xFF00, 0x1234] {
            assert_eq!(classify(Status(s)), Verdict::Unclassified, "{s:#06x}");
        }
    }

    #[test]
    fn only_a_permanent_association_rejection_is_reported_as_such() {
        let permanent = DimseError::Rejected(Reject::calling_ae_not_recognized());
        assert!(rejection_is_permanent(&permanent));
        let busy = DimseError::Rejected(Reject::busy());
        assert!(!rejection_is_permanent(&busy));
        let other = DimseError::Rejected(Reject {
            result: RejectResult::Transient,
            reason: RejectReason::LocalLimitExceeded,
        });
        assert!(!rejection_is_permanent(&other));
        assert!(!rejection_is_permanent(&DimseError::ConnectionClosed));
    }

    #[test]
    fn uncompressed_data_sets_propose_their_syntax_alone_then_both() {
        let ct = "1.2.840.10008.5.1.4.1.1.2".to_string();
        let jpeg = "1.2.840.10008.1.2.4.50".to_string();
        let us = "1.2.840.10008.5.1.4.1.1.3.1".to_string();
        let c = contexts_for(&[
            (ct.clone(), IMPLICIT_VR_LITTLE_ENDIAN.to_string()),
            (us.clone(), jpeg.clone()),
        ]);
        assert_eq!(c[0].0, yilian_dimse::sop_classes::VERIFICATION);
        let names: Vec<(String, Vec<String>)> = c.into_iter().skip(1).collect();
        assert_eq!(
            names,
            [
                (ct.clone(), vec![IMPLICIT_VR_LITTLE_ENDIAN.to_string()]),
                (
                    ct,
                    vec![
                        IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
                        EXPLICIT_VR_LITTLE_ENDIAN.to_string()
                    ]
                ),
                (us, vec![jpeg]),
            ]
        );
    }

    #[test]
    fn urgent_first_then_oldest() {
        let item = |priority, seq| Item {
            priority,
            seq,
            study: "1".into(),
            sop: seq.to_string(),
            sop_class: String::new(),
            hash: [0; 32],
            size: 0,
        };
        let mut q = BinaryHeap::new();
        q.push(item(0, 1));
        q.push(item(1, 3));
        q.push(item(0, 2));
        q.push(item(1, 4));
        let order: Vec<i64> = std::iter::from_fn(|| q.pop()).map(|i| i.seq).collect();
        assert_eq!(order, [3, 4, 1, 2]);
    }
}
