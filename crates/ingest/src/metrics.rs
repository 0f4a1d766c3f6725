//! Counters of the relay, logged periodically and readable in tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters (and two gauges) of one relay.
#[derive(Debug, Default)]
pub struct Metrics {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Of `bytes_out`: sent from shared in-memory chunks (cut-through), never copied per reader.
    pub bytes_out_shared: AtomicU64,
    pub instances_stored: AtomicU64,
    pub instances_deduplicated: AtomicU64,
    pub instances_refused: AtomicU64,
    pub instances_delivered: AtomicU64,
    pub connections_refused: AtomicU64,
    pub uploads_active: AtomicU64,
    pub deliveries_active: AtomicU64,
    /// Audit entries that could not be written (each also logged as an error).
    pub audit_failures: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_out_shared: u64,
    pub instances_stored: u64,
    pub instances_deduplicated: u64,
    pub instances_refused: u64,
    pub instances_delivered: u64,
    pub connections_refused: u64,
    pub uploads_active: u64,
    pub deliveries_active: u64,
    pub audit_failures: u64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            bytes_in: g(&self.bytes_in),
            bytes_out: g(&self.bytes_out),
            bytes_out_shared: g(&self.bytes_out_shared),
            instances_stored: g(&self.instances_stored),
            instances_deduplicated: g(&self.instances_deduplicated),
            instances_refused: g(&self.instances_refused),
            instances_delivered: g(&self.instances_delivered),
            connections_refused: g(&self.connections_refused),
            uploads_active: g(&self.uploads_active),
            deliveries_active: g(&self.deliveries_active),
            audit_failures: g(&self.audit_failures),
        }
    }
}

/// Decrements a gauge when dropped.
pub struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    pub fn up(g: &'a AtomicU64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        Gauge(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
