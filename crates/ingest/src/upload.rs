//! One upload through the ingest path, whatever its front door.
//!
//! ```text
//! Ingest::begin ──▶ Upload::lease ──▶ Upload::open ──▶ data … data ──▶ finish ──▶ Event::Stored
//!   (checks)         (gate: one per      (partial open,   (walk, hash,              (hash checked,
//!                     site + UID)         resume offset)    write, fsync)             fsync, commit)
//! ```
//!
//! The front door moves bytes; everything else happens here: the gate's lease and holds, the
//! spool writer on the blocking pool, routing as soon as the header is read, cut-through to
//! connected readers, and the commit. [`Event::Stored`] comes only after the instance's bytes
//! were hash-verified, fsync'ed and committed: that is when a front door may acknowledge.
//!
//! [`Upload::next_event`] and [`Upload::lease`] are cancel-safe: a front door may `select!`
//! on them together with its own input.

use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use yilian_dicom::Catalog;
use yilian_proto::{valid_uid, Hash, Refusal, RefuseCode};
use yilian_route::{Priority, RouteInput};
use yilian_store::{NewInstance, Partial};

use crate::gate::{Action, ConnId, Urgency};
use crate::gate_handle::Ticket;
use crate::hub::{LiveInstance, LiveOutcome};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::principal::Principal;
use crate::refusal::{conflict, refusal};
use crate::sealed::{commit_after_seal, CommitJob};
use crate::spec::UploadSpec;
use crate::spool_writer::{SpoolWriter, Verified, WriterCmd, WriterEvent, WRITER_QUEUE};

/// Where an opened upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Write from this offset (non-zero: a resumed upload).
    At(u64),
    /// The site already stored this instance with this content: nothing to send.
    AlreadyStored(Hash),
}

/// What happened to an upload (see [`Upload::next_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Ask the sender to pause (`true`: an urgent upload of its site has the link) or continue.
    Hold(bool),
    /// Everything up to this offset is durable (a resumed upload may start here).
    Checkpoint(u64),
    /// Verified, durable and committed: acknowledge now. Final.
    Stored(Hash),
    /// Refused (the reason says what to do). Final.
    Refused(Refusal),
}

struct Writer {
    cmds: Option<mpsc::Sender<WriterCmd>>,
    events: mpsc::UnboundedReceiver<WriterEvent>,
    task: JoinHandle<()>,
}

/// An upload in progress. End it with [`Upload::close`] (or drop it: the lease then passes on
/// once its writer has stopped).
pub struct Upload {
    ingest: Arc<Ingest>,
    principal: Arc<Principal>,
    spec: Arc<UploadSpec>,
    ticket: Option<Ticket>,
    writer: Option<Writer>,
    live: Option<Arc<LiveInstance>>,
    /// The commit's answer, for an upload committed before it is acknowledged (a sealed
    /// upload is acknowledged at once and committed after: `sealed.rs`).
    committing: Option<oneshot::Receiver<Result<Hash, Refusal>>>,
    holding: bool,
    granted: bool,
    /// Verified and handed to the commit, which sets the live instance's outcome.
    committed: bool,
    /// The Study Instance UID read from the header.
    study_uid: Option<String>,
}

impl Upload {
    pub(crate) fn new(
        ingest: Arc<Ingest>,
        principal: Arc<Principal>,
        spec: UploadSpec,
        ticket: Ticket,
    ) -> Upload {
        Upload {
            ingest,
            principal,
            spec: Arc::new(spec),
            ticket: Some(ticket),
            writer: None,
            live: None,
            committing: None,
            holding: false,
            granted: false,
            committed: false,
            study_uid: None,
        }
    }

    /// What the front door declared.
    pub fn spec(&self) -> &UploadSpec {
        &self.spec
    }

    /// The Study Instance UID, once the header was read (declared or not).
    pub fn study_uid(&self) -> Option<&str> {
        self.study_uid.as_deref().or(self.spec.study_uid.as_deref())
    }

    /// Whether the sender is asked to pause now.
    pub fn is_held(&self) -> bool {
        self.holding
    }

    /// Wait for the lease of (site, SOP Instance UID): one upload of an instance at a time.
    /// Cancel-safe. When it returns, [`Upload::is_held`] already says whether an urgent upload
    /// of the site has the link (tell the sender before it writes anything).
    pub async fn lease(&mut self) -> Result<(), Refusal> {
        let Some(ticket) = self.ticket.as_mut() else {
            return Err(gate_closed());
        };
        while !self.granted {
            match ticket.actions.recv().await {
                Some(Action::Grant(_)) => self.granted = true,
                Some(Action::Hold(_)) => self.holding = true,
                Some(Action::Resume(_)) => self.holding = false,
                // Waiting holds no data: nothing to expire or take over yet.
                Some(Action::Expire(_) | Action::Supersede(_)) => {}
                None => return Err(gate_closed()),
            }
        }
        // A hold decided together with the grant.
        while let Ok(a) = ticket.actions.try_recv() {
            match a {
                Action::Hold(_) => self.holding = true,
                Action::Resume(_) => self.holding = false,
                _ => {}
            }
        }
        if self.holding {
            info!(sop_uid = %self.spec.sop_uid, "routine upload paused: an urgent upload from the same site has the link");
        }
        Ok(())
    }

    /// Open the upload's partial (after [`Upload::lease`]). A resumable upload of an instance
    /// the site already stored with the same content (or without a declared hash) is
    /// [`Opened::AlreadyStored`]; with other content it is refused as a conflict.
    ///
    /// An upload that cannot resume (size or study unknown: C-STORE, STOW-RS) starts at 0
    /// whatever happens, so it is answered at once: its writer opens the partial together
    /// with its first bytes, on one blocking thread (`spool_writer.rs`), and a failure to
    /// open is the upload's refusal ([`Upload::data`] turns `false`, [`Upload::next_event`]
    /// says why), as a failure while writing is.
    pub async fn open(&mut self) -> Result<Opened, Refusal> {
        if self.spec.resumable() {
            let store = self.ingest.store.clone();
            let (site, sop) = (self.principal.site.clone(), self.spec.sop_uid.clone());
            let existing = tokio::task::spawn_blocking(move || store.instance(&site, &sop))
                .await
                .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?;
            match existing {
                Ok(Some(rec)) if self.spec.hash.is_none_or(|h| h == rec.hash) => {
                    Metrics::add(&self.ingest.metrics.instances_deduplicated, 1);
                    return Ok(Opened::AlreadyStored(rec.hash));
                }
                Ok(Some(_)) => return Err(conflict()),
                Ok(None) => {}
                Err(e) => return Err(self.ingest.store_refusal(&e)),
            }
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(WRITER_QUEUE);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let topology = self.ingest.topology();
        let writer = SpoolWriter {
            ingest: self.ingest.clone(),
            topology,
            principal: self.principal.clone(),
            spec: self.spec.clone(),
            events: ev_tx,
        };
        self.writer = Some(Writer {
            cmds: Some(cmd_tx),
            events: ev_rx,
            task: tokio::spawn(writer.run(cmd_rx)),
        });
        if !self.spec.resumable() {
            return Ok(Opened::At(0));
        }
        loop {
            let Some(ev) = self.writer_event().await else {
                return Err(refusal(RefuseCode::Internal, "the spool writer stopped"));
            };
            match ev {
                WriterEvent::Opened { offset } => {
                    if offset > 0 && self.spec.resumable() {
                        info!(sop_uid = %self.spec.sop_uid, offset, "resuming upload");
                    }
                    return Ok(Opened::At(offset));
                }
                WriterEvent::Routed {
                    study_uid,
                    priority,
                    live,
                } => self.routed(study_uid, priority, live),
                WriterEvent::Failed(r) => return Err(r),
                WriterEvent::Checkpoint(_)
                | WriterEvent::Verified(_)
                | WriterEvent::AlreadyStored(_) => {}
            }
        }
    }

    /// Hand the writer the next bytes (bounded: waits while the writer is behind). `false`
    /// when the writer takes no more data (it refused the upload): stop reading and take the
    /// refusal from [`Upload::next_event`].
    pub async fn data(&mut self, bytes: Bytes) -> bool {
        let n = bytes.len() as u64;
        self.send_data(n, WriterCmd::Data(bytes)).await
    }

    /// [`Upload::data`] for several pieces that follow each other: one hand-off to the
    /// writer for all of them.
    pub async fn data_many(&mut self, pieces: Vec<Bytes>) -> bool {
        let n = pieces.iter().map(|b| b.len() as u64).sum();
        self.send_data(n, WriterCmd::DataMany(pieces)).await
    }

    async fn send_data(&mut self, n: u64, cmd: WriterCmd) -> bool {
        let Some(tx) = self.writer.as_mut().and_then(|w| w.cmds.as_ref()) else {
            return false;
        };
        Metrics::add(&self.ingest.metrics.bytes_in, n);
        if let Some(t) = &self.ticket {
            self.ingest.gate.data(t.id);
        }
        if tx.send(cmd).await.is_err() {
            self.stop_writing();
            return false;
        }
        true
    }

    /// Whether the writer still takes data.
    pub fn wants_data(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| w.cmds.is_some())
    }

    /// The data ended; `claimed` is the sender's hash of the whole file, if it has one. The
    /// outcome follows as [`Event::Stored`] or [`Event::Refused`].
    pub async fn finish(&mut self, claimed: Option<Hash>) {
        if let Some(tx) = self.writer.as_ref().and_then(|w| w.cmds.as_ref()) {
            // A writer that stopped already sent its last event.
            if tx.send(WriterCmd::Finish(claimed)).await.is_err() {
                debug!(sop_uid = %self.spec.sop_uid, "the spool writer stopped before the end");
            }
        }
        self.stop_writing();
    }

    /// The next thing to tell the sender. Cancel-safe.
    pub async fn next_event(&mut self) -> Event {
        loop {
            if let Some(commit) = self.committing.as_mut() {
                let r = commit.await;
                self.committing = None;
                return match r {
                    Ok(Ok(hash)) => Event::Stored(hash),
                    Ok(Err(r)) => Event::Refused(r),
                    Err(_) => {
                        Event::Refused(refusal(RefuseCode::Internal, "the commit task failed"))
                    }
                };
            }
            let (Some(ticket), Some(writer)) = (self.ticket.as_mut(), self.writer.as_mut()) else {
                return Event::Refused(refusal(RefuseCode::Internal, "the upload was not opened"));
            };
            tokio::select! {
                biased;
                ev = writer.events.recv() => match ev {
                    None => {
                        self.fail_live();
                        return Event::Refused(refusal(RefuseCode::Internal, "the spool writer stopped"));
                    }
                    Some(WriterEvent::Routed { study_uid, priority, live }) => self.routed(study_uid, priority, live),
                    Some(WriterEvent::Checkpoint(d)) => return Event::Checkpoint(d),
                    Some(WriterEvent::Verified(v)) => {
                        if let Some(acknowledge) = self.commit(*v) {
                            return acknowledge;
                        }
                    }
                    Some(WriterEvent::AlreadyStored(hash)) => {
                        self.committed = true;
                        Metrics::add(&self.ingest.metrics.instances_deduplicated, 1);
                        return Event::Stored(hash);
                    }
                    Some(WriterEvent::Failed(r)) => {
                        self.fail_live();
                        return Event::Refused(r);
                    }
                    Some(WriterEvent::Opened { .. }) => {}
                },
                a = ticket.actions.recv() => match a {
                    Some(Action::Hold(_)) if !self.holding => {
                        self.holding = true;
                        info!(sop_uid = %self.spec.sop_uid, "routine upload paused: an urgent upload from the same site has the link");
                        return Event::Hold(true);
                    }
                    Some(Action::Resume(_)) if self.holding => {
                        self.holding = false;
                        info!(sop_uid = %self.spec.sop_uid, "upload continues");
                        return Event::Hold(false);
                    }
                    Some(Action::Expire(_)) => {
                        self.fail_live();
                        let idle = self.ingest.gate.config().idle_timeout;
                        return Event::Refused(refusal(RefuseCode::TimedOut, format!(
                            "no data for {} s (limits.upload_idle_timeout): the upload was dropped; what arrived is kept and the upload resumes when offered again",
                            idle.as_secs()
                        )));
                    }
                    Some(Action::Supersede(_)) => {
                        self.fail_live();
                        return Event::Refused(refusal(RefuseCode::Superseded,
                            "another upload of this instance from your site took over while this one's connection was silent; the newer upload resumes where this one stood"));
                    }
                    Some(_) => {}
                    None => {
                        self.fail_live();
                        return Event::Refused(gate_closed());
                    }
                },
            }
        }
    }

    /// End the upload: its writer stops (what arrived of a resumable upload stays durable),
    /// it leaves the hub, and its lease passes on.
    pub async fn close(mut self) {
        self.stop_writing();
        let unanswered = match self.writer.take() {
            Some(w) => w.stopped(&self.spec.sop_uid).await,
            None => None,
        };
        if let Some(c) = self.committing.take() {
            // A commit under way finishes (it is durable or not); nobody is left to tell.
            if c.await.is_err() {
                warn!(sop_uid = %self.spec.sop_uid, "commit task failed");
            }
        }
        self.leave_hub();
        let ticket = self.ticket.take();
        if let Some(v) = unanswered {
            commit_after_seal(CommitJob::of(
                self.ingest.clone(),
                self.principal.clone(),
                v,
                ticket,
            ));
        }
    }

    fn stop_writing(&mut self) {
        if let Some(w) = self.writer.as_mut() {
            w.cmds = None;
        }
    }

    async fn writer_event(&mut self) -> Option<WriterEvent> {
        self.writer.as_mut()?.events.recv().await
    }

    /// The header is read and routed: its priority is final (declared facts only steer the
    /// link until then), and connected readers may start on the live instance.
    fn routed(&mut self, study_uid: String, priority: u8, live: Option<Arc<LiveInstance>>) {
        self.study_uid = Some(study_uid);
        if let Some(t) = &self.ticket {
            let p = Priority::from_u8(priority).unwrap_or_default();
            self.ingest.gate.classify(t.id, urgency_of(Some(p)));
        }
        if let Some(l) = live {
            self.ingest.hub.start_live(l.clone());
            self.live = Some(l);
        }
    }

    fn fail_live(&mut self) {
        if let Some(l) = &self.live {
            l.finish(LiveOutcome::Failed);
        }
    }

    /// Leave the hub; readers of a live instance that was not stored learn that it failed.
    fn leave_hub(&mut self) {
        if !self.committed {
            self.fail_live();
        }
        if let Some(l) = self.live.take() {
            self.ingest.hub.end_live(&l.instance);
        }
    }

    /// Commit a verified upload. A sealed one is durable already: the answer is `Stored` at
    /// once, and its commit follows with the lease held. Otherwise the answer comes from
    /// the commit ([`Upload::next_event`]).
    fn commit(&mut self, v: Verified) -> Option<Event> {
        self.committed = true;
        if v.sealed {
            let hash = v.hash;
            let job = CommitJob::of(
                self.ingest.clone(),
                self.principal.clone(),
                v,
                self.ticket.take(),
            );
            commit_after_seal(job);
            return Some(Event::Stored(hash));
        }
        let Verified {
            hash,
            partial,
            instance,
            readers,
            live,
            catalog,
            ..
        } = v;
        let live = live.or(self.live.clone());
        let ingest = self.ingest.clone();
        let (reply, answer) = oneshot::channel();
        self.committing = Some(answer);
        let quiet = self.spec.study_uid.is_none();
        tokio::spawn(async move {
            let r = commit(&ingest, partial, hash, instance, readers, catalog, quiet).await;
            if let Some(l) = &live {
                l.finish(match &r {
                    Ok(()) => LiveOutcome::Stored(hash),
                    Err(_) => LiveOutcome::Failed,
                });
            }
            if reply.send(r.map(|()| hash)).is_err() {
                debug!("the front door no longer waits for this upload's outcome");
            }
        });
        None
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Not closed: the lease passes on only once the writer has let go of the partial.
        self.stop_writing();
        self.leave_hub();
        let writer = self.writer.take();
        let ticket = self.ticket.take();
        let (Some(w), Ok(rt)) = (writer, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (ingest, principal, sop_uid) = (
            self.ingest.clone(),
            self.principal.clone(),
            self.spec.sop_uid.clone(),
        );
        rt.spawn(async move {
            match w.stopped(&sop_uid).await {
                // Sealed as the front door let go: durable, so committed (lease held until
                // then) rather than left for the next start.
                Some(v) => commit_after_seal(CommitJob::of(ingest, principal, v, ticket)),
                None => drop(ticket),
            }
        });
    }
}

impl Writer {
    /// Wait for the writer to stop; a sealed upload among its unread events is returned (it
    /// is durable and must be committed), anything else is dropped.
    async fn stopped(mut self, sop_uid: &str) -> Option<Verified> {
        if let Err(e) = (&mut self.task).await {
            warn!(%sop_uid, "spool writer failed: {e}");
        }
        while let Ok(ev) = self.events.try_recv() {
            if let WriterEvent::Verified(v) = ev {
                if v.sealed {
                    return Some(*v);
                }
            }
        }
        None
    }
}

fn gate_closed() -> Refusal {
    refusal(RefuseCode::Internal, "the relay's upload gate closed")
}

/// Commit a verified partial; tell connected readers.
async fn commit(
    ingest: &Arc<Ingest>,
    partial: Partial,
    hash: Hash,
    instance: NewInstance,
    readers: Vec<String>,
    catalog: Catalog,
    quiet: bool,
) -> Result<(), Refusal> {
    let store = ingest.store.clone();
    let inst = instance.clone();
    let r = tokio::task::spawn_blocking(move || {
        store.commit_with_catalog(partial, hash, &inst, &readers, &catalog)
    })
    .await
    .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?;
    match r {
        Ok(stored) => {
            crate::sealed::announce(ingest, &instance, stored, quiet);
            Ok(())
        }
        Err(e) => Err(ingest.store_refusal(&e)),
    }
}

/// A connection id for the gate, unique in this process.
pub fn next_conn() -> ConnId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// How an upload starts, whatever its front door.
impl Ingest {
    /// Start an upload: check who uploads and what, then enter the gate. The upload still
    /// waits for its lease ([`Upload::lease`]).
    ///
    /// `conn` identifies the principal's connection (the gate lets a waiting upload take a
    /// lease over from an upload whose connection has gone silent).
    pub async fn begin(
        self: &Arc<Self>,
        principal: Arc<Principal>,
        spec: UploadSpec,
        conn: ConnId,
    ) -> Result<Upload, Refusal> {
        let max = self.config.max_instance_bytes;
        if !principal.may_upload() {
            return Err(refusal(
                RefuseCode::Unauthorized,
                format!(
                    "{} is a {} identity and may not upload; use a device certificate",
                    principal.name, principal.role
                ),
            ));
        }
        if let Some(size) = spec.size.filter(|&s| s > max) {
            return Err(refusal(
                RefuseCode::TooLarge,
                format!(
                    "instance of {size} bytes exceeds this relay's limit of {max} bytes (limits.max_instance_bytes)"
                ),
            ));
        }
        if !valid_uid(&spec.sop_uid) || spec.study_uid.as_deref().is_some_and(|s| !valid_uid(s)) {
            return Err(refusal(
                RefuseCode::Malformed,
                "the instance's UIDs are not valid DICOM UIDs (digits and dots, at most 64 characters)",
            ));
        }
        if self.storage.is_full() {
            return Err(refusal(
                RefuseCode::StorageFull,
                self.storage.refusal_text(),
            ));
        }
        if let Some(study) = &spec.study_uid {
            self.check_study_owner(&principal.site, study).await?;
        }
        let urgency = urgency_of(self.declared_priority(&principal.site, &spec));
        let ticket = self
            .gate
            .offer(
                conn,
                &principal.name,
                &principal.site,
                &spec.sop_uid,
                urgency,
            )
            .map_err(|e| refusal(RefuseCode::Busy, e.to_string()))?;
        Ok(Upload::new(self.clone(), principal, spec, ticket))
    }

    /// The priority the declared header facts route to (with the requested priority), or the
    /// requested priority alone when it is urgent; `None` when nothing tells yet.
    fn declared_priority(&self, site: &str, spec: &UploadSpec) -> Option<Priority> {
        let requested = spec.priority;
        let from_facts = spec.facts.as_ref().and_then(|f| {
            self.topology()
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
}

pub(crate) fn urgency_of(p: Option<Priority>) -> Urgency {
    match p {
        None => Urgency::Unknown,
        Some(p) if p >= Priority::Urgent => Urgency::Urgent,
        Some(_) => Urgency::Routine,
    }
}
