//! The async side of the [`Gate`]: one per relay, shared by every upload task.
//!
//! It owns the sans-IO gate behind a mutex and a channel per upload; whatever the gate decides
//! ([`Action`]) is handed to the upload's task through its channel. An upload enters with
//! [`GateHandle::offer`] and leaves when its [`Ticket`] is dropped, however its task ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

use crate::gate::{Action, ConnId, Gate, GateConfig, GateRefusal, UploadId, Urgency};

struct Inner {
    gate: Gate,
    tasks: HashMap<UploadId, mpsc::UnboundedSender<Action>>,
}

/// See the module docs.
pub(crate) struct GateHandle {
    inner: Mutex<Inner>,
    next: AtomicU64,
}

/// One upload's place in the gate; dropping it ends the upload there (its lease passes on,
/// its urgency ends).
pub(crate) struct Ticket {
    gate: Arc<GateHandle>,
    pub id: UploadId,
    pub actions: mpsc::UnboundedReceiver<Action>,
}

impl GateHandle {
    pub(crate) fn new(config: GateConfig) -> Self {
        GateHandle {
            inner: Mutex::new(Inner {
                gate: Gate::new(config),
                tasks: HashMap::new(),
            }),
            next: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn config(&self) -> GateConfig {
        self.lock().gate.config()
    }

    /// Enter the gate: granted at once, or later through the ticket's actions.
    pub(crate) fn offer(
        self: &Arc<Self>,
        conn: ConnId,
        identity: &str,
        site: &str,
        sop: &str,
        urgency: Urgency,
    ) -> Result<Ticket, GateRefusal> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = self.lock();
        g.tasks.insert(id, tx);
        if let Err(e) = g
            .gate
            .offer(id, conn, identity, site, sop, urgency, Instant::now())
        {
            g.tasks.remove(&id);
            return Err(e);
        }
        dispatch(&mut g);
        Ok(Ticket {
            gate: self.clone(),
            id,
            actions: rx,
        })
    }

    pub(crate) fn classify(&self, id: UploadId, urgency: Urgency) {
        let mut g = self.lock();
        g.gate.classify(id, urgency, Instant::now());
        dispatch(&mut g);
    }

    /// Data of `id` arrived (called per chunk read).
    pub(crate) fn data(&self, id: UploadId) {
        let mut g = self.lock();
        g.gate.data(id, Instant::now());
        dispatch(&mut g);
    }

    pub(crate) fn tick(&self) {
        let mut g = self.lock();
        g.gate.tick(Instant::now());
        dispatch(&mut g);
    }

    /// Uploads in the gate now.
    pub(crate) fn len(&self) -> usize {
        self.lock().gate.len()
    }

    fn end(&self, id: UploadId) {
        let mut g = self.lock();
        g.tasks.remove(&id);
        g.gate.end(id, Instant::now());
        dispatch(&mut g);
    }
}

fn dispatch(g: &mut Inner) {
    while let Some(a) = g.gate.poll_action() {
        if let Some(tx) = g.tasks.get(&a.upload()) {
            // A task that is gone ends itself (its ticket drops): nothing to tell it.
            let _ = tx.send(a);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.end(self.id);
    }
}
