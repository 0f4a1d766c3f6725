//! The spool writer of one upload: everything blocking or CPU-bound per byte.
//!
//! It owns the partial file and, for each chunk the ingest task hands it, walks the DICOM
//! structure, updates the BLAKE3 hash, writes, starts write-back, publishes the chunk to live
//! readers and fsyncs a checkpoint when one is due. At the end it checks the sender's hash and
//! the structure and hands the verified partial back for commit.
//!
//! # Threads
//! The writer is an async task that borrows a thread of tokio's blocking pool
//! ([`spawn_blocking`](tokio::task::spawn_blocking)) while data flows, and gives it back after
//! [`LINGER`] without data. An upload that is accepted but waits for its data (a sender writes
//! its uploads one after the other; a routine upload is held while an urgent one has the link;
//! the link is down) holds no thread. A writer that kept a thread for the life of its upload
//! would, with sixteen uploads per device and a few dozen townships, exhaust the pool (512
//! threads by default), and the relay would stop accepting work behind uploads that wait.
//!
//! While data flows the thread stays, so a chunk costs what it cost a dedicated writer
//! thread: one wake-up at most, not a hop through the async scheduler and back per batch.
//! Loopback throughput is unchanged (upload, 1 reader and the CT series, old and new binaries
//! run alternately).
//!
//! An upload that cannot resume (C-STORE, STOW-RS: size or study unknown) has nothing to
//! re-validate and always starts at 0, so its partial is opened on the thread that takes its
//! first bytes, not on one of its own before them: one hand-off between threads fewer per
//! instance, for instances that are mostly a few hundred kilobytes.

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use yilian_dicom::{Catalog, DicomError, Metadata, Walker};
use yilian_proto::{Hash, InstanceRef, Refusal, RefuseCode};
use yilian_route::Topology;
use yilian_store::{NewInstance, Partial, PartialInfo};

use crate::hub::{LiveInstance, LiveOutcome};
use crate::principal::{Door, Principal};
use crate::refusal::{refusal, refusal_for, store_refusal};
use crate::routing::{route_instance, Routed};
use crate::sealed::{check_and_seal, Sealing};
use crate::spec::UploadSpec;

/// Start kernel write-back after this many unsynced bytes, so a checkpoint's fsync finds
/// little left to write and does not stall the stream.
const WRITEBACK_EVERY: u64 = 4 << 20;
/// Chunks in flight between the stream and the writer.
pub(crate) const WRITER_QUEUE: usize = 8;
/// A writer gives its pool thread back after this long without data.
const LINGER: Duration = Duration::from_millis(100);

pub(crate) enum WriterCmd {
    Data(Bytes),
    /// Pieces that follow each other, handed over at once.
    DataMany(Vec<Bytes>),
    /// The data ended; the sender's hash of the whole file, if it has one (yilian/1 does,
    /// C-STORE does not: TCP and the relay's own hash are all there is).
    Finish(Option<Hash>),
}

pub(crate) enum WriterEvent {
    /// The partial is open; resume from `offset`.
    Opened {
        offset: u64,
    },
    /// Routing metadata parsed and routed (its priority is final); connected readers may
    /// start on the live instance, if there is one (the size must be known up front).
    Routed {
        study_uid: String,
        priority: u8,
        live: Option<Arc<LiveInstance>>,
    },
    Checkpoint(u64),
    Verified(Box<Verified>),
    /// Verified, and the site already holds this very instance: nothing to commit.
    AlreadyStored(Hash),
    Failed(Refusal),
}

/// A complete upload whose hash and structure checked out, ready to commit.
pub(crate) struct Verified {
    pub hash: Hash,
    pub partial: Partial,
    /// Already sealed (durable): acknowledge now, commit after.
    pub sealed: bool,
    pub instance: NewInstance,
    pub readers: Vec<String>,
    pub live: Option<Arc<LiveInstance>>,
    /// Patient / study / series / instance attributes for queries (C-FIND, QIDO).
    pub catalog: Catalog,
}

/// What the writer of one upload needs to know; shared by its batches.
pub(crate) struct SpoolWriter {
    /// The store, free space, configuration and hub (is a routed reader connected now?).
    pub ingest: Arc<crate::Ingest>,
    /// The topology when the upload began (a reload does not change an upload's routing).
    pub topology: Arc<Topology>,
    pub principal: Arc<Principal>,
    pub spec: Arc<UploadSpec>,
    pub events: mpsc::UnboundedSender<WriterEvent>,
}

/// The state of one upload between batches.
struct Spool {
    partial: Partial,
    walker: Walker,
    hasher: blake3::Hasher,
    routed: Option<Routed>,
    live: Option<Arc<LiveInstance>>,
    since_sync: u64,
    last_sync: Instant,
    /// Whether a broken stream keeps the partial for a resumed upload.
    resumable: bool,
}

impl SpoolWriter {
    /// Run the writer until the upload is verified, refused, or its stream goes away. Its last
    /// event says how it ended; when this returns, the partial is closed.
    pub async fn run(self, mut cmds: mpsc::Receiver<WriterCmd>) {
        let writer = Arc::new(self);
        let runtime = tokio::runtime::Handle::current();
        // A resumable upload is opened (and what it holds re-validated) before its data; one
        // that cannot resume with its first bytes (see the module docs).
        let mut spool = None;
        if writer.spec.resumable() {
            let w = writer.clone();
            let Ok(Some(opened)) = tokio::task::spawn_blocking(move || w.open()).await else {
                return;
            };
            spool = Some(opened);
        }
        loop {
            // Waiting for data: no thread is held.
            let Some(first) = cmds.recv().await else {
                // The stream went away: keep what we have for the resumed upload (an upload
                // that sent nothing opened nothing).
                let Some(s) = spool else { return };
                if let Err(e) = tokio::task::spawn_blocking(move || s.stream_gone()).await {
                    tracing::warn!("closing a partial upload failed: {e}");
                }
                return;
            };
            let (w, rt) = (writer.clone(), runtime.clone());
            let streamed = tokio::task::spawn_blocking(move || {
                let s = match spool {
                    Some(s) => s,
                    None => w.open()?,
                };
                w.stream(s, first, cmds, &rt)
            });
            match streamed.await {
                Ok(Some((s, c))) => (spool, cmds) = (Some(s), c),
                // Ended (its last event is sent), or it panicked: the ingest task sees the
                // event channel close and reports that the writer stopped.
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// On a pool thread: process `first` and whatever follows until the upload ends (`None`)
    /// or no data came for [`LINGER`] (the spool and the queue are handed back).
    fn stream(
        &self,
        mut spool: Spool,
        first: WriterCmd,
        mut cmds: mpsc::Receiver<WriterCmd>,
        runtime: &tokio::runtime::Handle,
    ) -> Option<(Spool, mpsc::Receiver<WriterCmd>)> {
        let mut cmd = first;
        loop {
            spool = match cmd {
                WriterCmd::Data(bytes) => self.data(spool, bytes)?,
                WriterCmd::DataMany(pieces) => {
                    let mut s = spool;
                    for bytes in pieces {
                        s = self.data(s, bytes)?;
                    }
                    s
                }
                WriterCmd::Finish(claimed) => {
                    self.finish(spool, claimed);
                    return None;
                }
            };
            let next = match cmds.try_recv() {
                Ok(c) => Some(c),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match runtime.block_on(tokio::time::timeout(LINGER, cmds.recv())) {
                        Ok(c) => c,
                        Err(_idle) => return self.park(spool).map(|s| (s, cmds)),
                    }
                }
            };
            match next {
                Some(c) => cmd = c,
                None => {
                    spool.stream_gone();
                    return None;
                }
            }
        }
    }

    /// No data for a while: what was written goes into the file and the direct writer's
    /// buffer back to the store (waiting uploads hold none).
    fn park(&self, mut spool: Spool) -> Option<Spool> {
        if let Err(e) = spool.partial.park() {
            let r = store_refusal(&self.ingest.storage, &e);
            spool.stream_gone();
            return self.fail(r);
        }
        if let Some(l) = &spool.live {
            l.in_file(spool.partial.readable());
        }
        Some(spool)
    }

    /// Open (or reopen) the partial, re-validating what a resumed upload already holds.
    fn open(&self) -> Option<Spool> {
        let opened = match (&self.spec.study_uid, self.spec.size) {
            (Some(study_uid), Some(size)) => self.ingest.store.open_partial(PartialInfo {
                source_site: self.principal.site.clone(),
                study_uid: study_uid.clone(),
                sop_uid: self.spec.sop_uid.clone(),
                size,
            }),
            // Size or study unknown until the end (C-STORE): nothing to resume from.
            _ => self
                .ingest
                .store
                .open_scratch(&self.principal.site, &self.spec.sop_uid),
        };
        let mut partial = match opened {
            Ok(p) => p,
            Err(e) => return self.fail(store_refusal(&self.ingest.storage, &e)),
        };
        let mut walker = Walker::new(Default::default());
        let mut hasher = blake3::Hasher::new();
        // A resumed upload: re-validate and re-hash what is already there.
        let replayed = partial.replay(|b| -> Result<(), ReplayError> {
            walker.feed(b).map_err(ReplayError::Dicom)?;
            hasher.update(b);
            Ok(())
        });
        if replayed.is_err() {
            walker = Walker::new(Default::default());
            hasher = blake3::Hasher::new();
            if let Err(e) = partial.reset() {
                return self.fail(store_refusal(&self.ingest.storage, &e));
            }
        }
        let mut spool = Spool {
            partial,
            walker,
            hasher,
            routed: None,
            live: None,
            since_sync: 0,
            last_sync: Instant::now(),
            resumable: self.spec.resumable(),
        };
        // Bytes the front door made up in front of what it received (DIMSE: the file meta
        // synthesized from the association) go first, through the same walk and hash.
        if let (Some(prefix), true) = (&self.spec.prefix, spool.partial.is_empty()) {
            spool = self.data(spool, prefix.clone())?;
        }
        // A resumed upload whose header is already here is routed before it is accepted, so
        // that a routine one can be held before it sends anything.
        if spool.routed.is_none() && spool.walker.metadata().is_some() {
            spool = self.route(spool)?;
        }
        self.event(WriterEvent::Opened {
            offset: spool.partial.len(),
        });
        Some(spool)
    }

    fn data(&self, mut s: Spool, bytes: Bytes) -> Option<Spool> {
        if self.ingest.storage.is_full() {
            // Keep what is durable for the resumed upload; write nothing more.
            s.stream_gone();
            return self.fail(refusal(
                RefuseCode::StorageFull,
                self.ingest.storage.refusal_text(),
            ));
        }
        if let Err(e) = s.walker.feed(&bytes) {
            return self.fail_discard(refusal_for(&e), s.partial);
        }
        s.hasher.update(&bytes);
        // Routed once the header is parsed, before these bytes are written: the route decides
        // how they are written (through the page cache when a connected reader reads them).
        if s.routed.is_none() && s.walker.metadata().is_some() {
            s = self.route(s)?;
        }
        let offset = s.partial.len();
        if let Err(e) = s.partial.write(&bytes) {
            let r = store_refusal(&self.ingest.storage, &e);
            s.stream_gone();
            return self.fail(r);
        }
        s.since_sync += bytes.len() as u64;
        if s.partial.not_written_back() >= WRITEBACK_EVERY {
            s.partial.start_writeback();
        }
        if let Some(l) = &s.live {
            l.publish(offset, bytes, s.partial.readable());
        }
        let due = s.since_sync >= self.ingest.config.checkpoint_bytes
            || (s.since_sync > 0
                && s.last_sync.elapsed() >= self.ingest.config.checkpoint_interval);
        if due && self.spec.size.is_some_and(|size| s.partial.len() < size) {
            match s.partial.sync() {
                Ok(d) => self.event(WriterEvent::Checkpoint(d)),
                Err(e) => return self.fail(store_refusal(&self.ingest.storage, &e)),
            }
            if let Some(l) = &s.live {
                l.in_file(s.partial.readable());
            }
            s.since_sync = 0;
            s.last_sync = Instant::now();
        }
        Some(s)
    }

    fn finish(&self, s: Spool, claimed: Option<Hash>) {
        let computed = *s.hasher.finalize().as_bytes();
        if claimed.is_some_and(|c| c != computed) {
            self.fail_discard(
                refusal(
                    RefuseCode::HashMismatch,
                    "the bytes received do not match the sender's hash; the upload restarts from the beginning",
                ),
                s.partial,
            );
            return;
        }
        let meta = match s.walker.finish() {
            Ok(m) => m,
            Err(e) => {
                self.fail_discard(refusal_for(&e), s.partial);
                return;
            }
        };
        let routed = match s.routed {
            Some(r) => r,
            None => match self.decide(&meta) {
                Ok(r) => r,
                Err(r) => {
                    self.fail_discard(r, s.partial);
                    return;
                }
            },
        };
        // Text the device wrote without declaring its character set is read with the
        // AE's or the site's default (`charset` in the topology).
        let ae = match &self.principal.door {
            Door::Dimse { calling_ae } => Some(calling_ae.as_str()),
            Door::Quic | Door::Https { .. } => None,
        };
        let catalog =
            meta.catalog_with_default(self.topology.default_charset(&self.principal.site, ae));
        let mut partial = s.partial;
        // Of unknown size (C-STORE): checked and sealed right here, to be acknowledged at once
        // and committed after (`sealed.rs`).
        let sealed = partial.is_sealable();
        if sealed {
            match check_and_seal(
                &self.ingest.store,
                &self.principal,
                self.spec.priority,
                partial,
                computed,
                &routed.instance,
            ) {
                Ok(Sealing::Sealed(p)) => partial = p,
                Ok(Sealing::AlreadyStored) => {
                    self.event(WriterEvent::AlreadyStored(computed));
                    return;
                }
                Err(e) => {
                    self.fail(store_refusal(&self.ingest.storage, &e));
                    return;
                }
            }
        }
        self.event(WriterEvent::Verified(Box::new(Verified {
            hash: computed,
            partial,
            sealed,
            instance: routed.instance,
            readers: routed.readers,
            live: s.live,
            catalog,
        })));
    }

    /// Check the content against the offer and route it.
    fn decide(&self, meta: &Metadata) -> Result<Routed, Refusal> {
        route_instance(
            &self.topology,
            &self.principal,
            &self.spec.sop_uid,
            self.spec.study_uid.as_deref(),
            self.spec.priority,
            meta,
        )
    }

    /// Route the upload now that its header is parsed and make it live for connected readers.
    fn route(&self, mut s: Spool) -> Option<Spool> {
        let Some(meta) = s.walker.metadata() else {
            return Some(s);
        };
        let routed = match self.decide(meta) {
            Ok(r) => r,
            Err(r) => return self.fail_discard(r, s.partial),
        };
        // A connected reader reads this instance now (live, or right after its commit): its
        // bytes stay in the page cache for it rather than going straight to the disk, from
        // where it would read them back (a CT series to one reader ran 15 % slower so).
        if self.ingest.hub.any_connected(&routed.readers) {
            if let Err(e) = s.partial.write_through_cache() {
                let r = store_refusal(&self.ingest.storage, &e);
                s.stream_gone();
                return self.fail(r);
            }
        }
        // Cut-through needs the size up front (a reader is told it before the bytes): an
        // upload of unknown size (C-STORE) reaches readers once stored.
        let priority = routed.instance.priority;
        let Some(size) = self.spec.size else {
            self.event(WriterEvent::Routed {
                study_uid: routed.instance.study_uid.clone(),
                priority,
                live: None,
            });
            s.routed = Some(routed);
            return Some(s);
        };
        let file = match std::fs::File::open(s.partial.path()) {
            Ok(f) => f,
            Err(e) => return self.fail(refusal(RefuseCode::Internal, e.to_string())),
        };
        // The bytes so far: the file's, then those still in the direct writer's buffer.
        let live = Arc::new(LiveInstance::new(
            InstanceRef {
                study_uid: routed.instance.study_uid.clone(),
                sop_uid: routed.instance.sop_uid.clone(),
            },
            size,
            routed.instance.priority,
            routed.readers.clone(),
            file,
            s.partial.readable(),
            Bytes::from(s.partial.unwritten()),
        ));
        self.event(WriterEvent::Routed {
            study_uid: routed.instance.study_uid.clone(),
            priority,
            live: Some(live.clone()),
        });
        s.routed = Some(routed);
        s.live = Some(live);
        Some(s)
    }

    fn fail(&self, r: Refusal) -> Option<Spool> {
        self.event(WriterEvent::Failed(r));
        None
    }

    /// Tell the ingest task. If it is gone (its stream broke), nobody is left to tell: the
    /// writer stops at its next step, keeping what is durable.
    fn event(&self, ev: WriterEvent) {
        if self.events.send(ev).is_err() {
            tracing::debug!(sop_uid = %self.spec.sop_uid, "the upload's task is gone");
        }
    }

    fn fail_discard(&self, r: Refusal, partial: Partial) -> Option<Spool> {
        partial.discard();
        self.fail(r)
    }
}

impl Spool {
    /// The stream went away mid-upload: make what arrived durable for the resumed upload
    /// (an upload that sent nothing leaves nothing behind); an upload that cannot resume
    /// (a scratch partial) leaves nothing at all.
    fn stream_gone(self) {
        let sop_uid = self.partial.info().sop_uid.clone();
        if !self.resumable {
            self.partial.discard();
            if let Some(l) = self.live {
                l.finish(LiveOutcome::Failed);
            }
            return;
        }
        if let Err(e) = self.partial.close() {
            tracing::warn!(%sop_uid, "cannot keep the partial upload for resumption: {e}");
        }
        if let Some(l) = self.live {
            l.finish(LiveOutcome::Failed);
        }
    }
}

enum ReplayError {
    Dicom(#[allow(dead_code)] DicomError),
    Store(#[allow(dead_code)] yilian_store::StoreError),
}

impl From<yilian_store::StoreError> for ReplayError {
    fn from(e: yilian_store::StoreError) -> Self {
        ReplayError::Store(e)
    }
}
