//! The fan-out hub: instances still arriving, and the readers connected right now.

use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use yilian_proto::{Hash, InstanceRef};

/// Capacity of a live instance's broadcast, in chunks (each ≤ 256 KiB): the memory a live
/// instance may pin for readers that are up to date. Readers behind it read from the file.
pub const LIVE_WINDOW_CHUNKS: usize = 32;

/// How a live instance ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveOutcome {
    Stored(Hash),
    Failed,
}

/// An instance being uploaded right now, routed, that connected readers may receive as it
/// arrives (cut-through).
#[derive(Debug)]
pub struct LiveInstance {
    pub instance: InstanceRef,
    pub size: u64,
    pub priority: u8,
    /// Readers it is routed to.
    pub readers: Vec<String>,
    /// The partial file, open for reading (stays valid after the rename into `objects/`).
    pub file: File,
    chunks: broadcast::Sender<(u64, Bytes)>,
    written: watch::Sender<u64>,
    outcome: watch::Sender<Option<LiveOutcome>>,
}

impl LiveInstance {
    pub fn new(
        instance: InstanceRef,
        size: u64,
        priority: u8,
        readers: Vec<String>,
        file: File,
        written: u64,
    ) -> Self {
        Self {
            instance,
            size,
            priority,
            readers,
            file,
            chunks: broadcast::channel(LIVE_WINDOW_CHUNKS).0,
            written: watch::channel(written).0,
            outcome: watch::channel(None).0,
        }
    }

    /// Bytes `[offset, offset + len)` were written to the partial file: publish them.
    ///
    /// Broadcast first, then advance `written`: a reader that finds nothing in its broadcast
    /// queue and `written` ahead of it really missed those bytes (it joined late or lagged)
    /// and reads them from the file; one that keeps up never touches the file.
    pub fn publish(&self, offset: u64, bytes: Bytes) {
        let end = offset + bytes.len() as u64;
        // No receiver is fine: nobody is watching live.
        let _ = self.chunks.send((offset, bytes));
        self.written.send_replace(end);
    }

    pub fn finish(&self, outcome: LiveOutcome) {
        self.outcome.send_replace(Some(outcome));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(u64, Bytes)> {
        self.chunks.subscribe()
    }

    pub fn written(&self) -> watch::Receiver<u64> {
        self.written.subscribe()
    }

    pub fn outcome(&self) -> watch::Receiver<Option<LiveOutcome>> {
        self.outcome.subscribe()
    }
}

/// Work for a reader session.
#[derive(Debug, Clone)]
pub enum Job {
    /// Deliver this instance while it arrives.
    Live(Arc<LiveInstance>),
    /// This instance was stored and routed to the reader.
    Stored(InstanceRef),
    /// This study may have become complete: check whether to tell the reader.
    Study(String),
}

#[derive(Default)]
struct Inner {
    /// By (study, SOP Instance UID): within a study, which belongs to one site, unique.
    live: HashMap<InstanceRef, Arc<LiveInstance>>,
    readers: HashMap<String, (u64, mpsc::UnboundedSender<Job>)>,
    next_session: u64,
}

/// Shared between ingest tasks and reader sessions.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Announce a routed live instance to the readers connected now.
    pub fn start_live(&self, live: Arc<LiveInstance>) {
        let mut g = self.lock();
        for r in &live.readers {
            if let Some((_, tx)) = g.readers.get(r) {
                let _ = tx.send(Job::Live(live.clone()));
            }
        }
        g.live.insert(live.instance.clone(), live);
    }

    /// The instance is no longer arriving.
    pub fn end_live(&self, instance: &InstanceRef) {
        self.lock().live.remove(instance);
    }

    /// Tell connected readers that an instance was stored for them.
    pub fn stored(&self, instance: &InstanceRef, readers: &[String]) {
        let g = self.lock();
        for r in readers {
            if let Some((_, tx)) = g.readers.get(r) {
                let _ = tx.send(Job::Stored(instance.clone()));
            }
        }
    }

    /// Ask every connected reader session to check whether `study_uid` is complete for it.
    pub fn study_progress(&self, study_uid: &str) {
        let g = self.lock();
        for (_, tx) in g.readers.values() {
            let _ = tx.send(Job::Study(study_uid.to_string()));
        }
    }

    /// Register a reader session; a newer session of the same reader replaces the older one
    /// (whose channel closes). Returns the session id, its job channel and the live instances
    /// routed to it right now.
    pub fn connect_reader(
        &self,
        reader: &str,
    ) -> (u64, mpsc::UnboundedReceiver<Job>, Vec<Arc<LiveInstance>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = self.lock();
        g.next_session += 1;
        let id = g.next_session;
        g.readers.insert(reader.to_string(), (id, tx));
        let live = g
            .live
            .values()
            .filter(|l| l.readers.iter().any(|r| r == reader))
            .cloned()
            .collect();
        (id, rx, live)
    }

    pub fn disconnect_reader(&self, reader: &str, session: u64) {
        let mut g = self.lock();
        if g.readers.get(reader).is_some_and(|(id, _)| *id == session) {
            g.readers.remove(reader);
        }
    }

    /// Readers connected now.
    pub fn connected_readers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().readers.keys().cloned().collect();
        v.sort();
        v
    }
}
