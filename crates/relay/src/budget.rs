//! One relay-wide budget for delivery buffers.
//!
//! What deliveries hold in memory is, above all, what QUIC keeps for a reader connection until
//! the reader acknowledges it: up to the connection's send window. Shared cut-through chunks
//! are not copied per reader, but readers drift apart (one behind the live broadcast reads its
//! own copy from the file), so with a fixed window per connection the relay's memory grew with
//! every reader connected (measured: +107 MiB for a 2 GiB instance to 10 readers, with 16 MiB
//! per connection). Instead the relay has one byte budget (`[delivery] buffer_budget`) that
//! the connected readers share: each reader connection's send window is
//! `budget / readers connected`, at least [`FLOOR`] (so a crowd of readers still moves) and at
//! most the transport's `send_window` (a lone reader gets what it always had), and it is set
//! again for every reader connection whenever a reader comes or goes.
//!
//! The other delivery buffers are bounded per reader: at most [`FILE_READS_PER_READER`] file
//! reads (of ≤ 256 KiB) in hand, waiting for room in that window, per reader connection.
//!
//! Relay-wide, delivery buffers stay within `max(budget, readers × FLOOR)` plus
//! `readers × FILE_READS_PER_READER × 256 KiB`, plus the live broadcasts (`hub.rs`), whatever
//! the number and size of instances.

use quinn::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Smallest send window a reader connection gets, however many readers share the budget:
/// 1 MiB carries ≈ 170 Mbit/s at 50 ms RTT.
pub const FLOOR: u64 = 1 << 20;

/// Default budget: 16 MiB shared by all reader connections: a lone reader keeps the
/// transport's 16 MiB window, two get 8 MiB each, ten 1.6 MiB each (plenty on a LAN or a
/// county link; raise it for many readers behind long fat links). With ten readers and a
/// 2 GiB instance the relay then grows ≈ 45 MiB (BENCHMARKING.md, "Fan-out memory").
pub const DEFAULT_BUDGET: u64 = 16 << 20;

/// File reads a reader connection may hold while they wait for room in its send window (they
/// share that window, so more would wait without moving anything).
pub(crate) const FILE_READS_PER_READER: usize = 2;

/// The budget and the reader connections sharing it.
pub(crate) struct DeliveryBudget {
    total: u64,
    ceiling: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    readers: HashMap<u64, Connection>,
}

impl DeliveryBudget {
    /// `total` bytes shared; no connection above `ceiling` (the transport's send window).
    pub(crate) fn new(total: u64, ceiling: u64) -> Self {
        DeliveryBudget {
            total,
            ceiling,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Each reader connection's send window when `readers` are connected.
    pub(crate) fn share(&self, readers: usize) -> u64 {
        let floor = FLOOR.min(self.ceiling);
        (self.total / readers.max(1) as u64).clamp(floor, self.ceiling)
    }

    /// A reader connection joins: every reader connection's window is set to the new share.
    /// The share is given back when the returned guard is dropped.
    pub(crate) fn join(self: &Arc<Self>, conn: Connection) -> BudgetShare {
        let mut g = self.lock();
        g.next_id += 1;
        let id = g.next_id;
        g.readers.insert(id, conn);
        self.rebalance(&g);
        BudgetShare {
            budget: self.clone(),
            id,
        }
    }

    fn rebalance(&self, g: &Inner) {
        let share = self.share(g.readers.len());
        for c in g.readers.values() {
            c.set_send_window(share);
        }
        tracing::debug!(
            readers = g.readers.len(),
            share,
            "delivery budget shared out"
        );
    }
}

/// A reader connection's part of the budget, while its session lasts.
pub(crate) struct BudgetShare {
    budget: Arc<DeliveryBudget>,
    id: u64,
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        let mut g = self.budget.lock();
        g.readers.remove(&self.id);
        self.budget.rebalance(&g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_the_budget_between_the_floor_and_the_transport_window() {
        let b = DeliveryBudget::new(32 << 20, 16 << 20);
        assert_eq!(b.share(0), 16 << 20);
        assert_eq!(
            b.share(1),
            16 << 20,
            "a lone reader: the transport's window"
        );
        assert_eq!(b.share(2), 16 << 20);
        assert_eq!(b.share(4), 8 << 20);
        assert_eq!(b.share(10), (32 << 20) / 10);
        assert_eq!(b.share(1000), FLOOR, "a crowd still moves");
        // A transport window below the floor wins.
        let small = DeliveryBudget::new(32 << 20, 256 << 10);
        assert_eq!(small.share(1000), 256 << 10);
    }
}
