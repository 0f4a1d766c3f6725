//! Uploads write their data in the order they were started.
//!
//! Each upload's stream has a priority by upload order (`yilian_transport::priority`), but QUIC
//! can only send what is in its send buffer, and that buffer (`send_window`) is shared by every
//! stream of the connection. With many uploads offered at once (needed to keep a long, fast link
//! busy), whichever were accepted first filled it, and the earlier uploads waited for space:
//! instances then finished out of order and together. [`WriteOrder`] lets an upload write its
//! data only once every upload started before it has written all of its own, so the buffer,
//! and the link, carry them in order; the offers still go out at once.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Uploads still to write their data, by start order.
#[derive(Default)]
pub(crate) struct WriteOrder {
    waiting: Mutex<BTreeSet<u64>>,
    changed: Notify,
}

impl WriteOrder {
    /// Upload `seq` joins the line; it leaves when the turn is done or dropped.
    pub(crate) fn join(&self, seq: u64) -> WriteTurn<'_> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(seq);
        WriteTurn {
            order: self,
            seq,
            granted: AtomicBool::new(false),
            done: false,
        }
    }

    fn first(&self) -> Option<u64> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .copied()
    }

    fn leave(&self, seq: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&seq);
        self.changed.notify_waiters();
    }
}

/// One upload's place in the [`WriteOrder`].
pub(crate) struct WriteTurn<'a> {
    order: &'a WriteOrder,
    seq: u64,
    /// Once first in line, it stays first until done: no need to look again (per chunk).
    granted: AtomicBool,
    done: bool,
}

impl WriteTurn<'_> {
    /// Whether every upload started before this one has written its data.
    pub(crate) fn ready(&self) -> bool {
        if self.done || self.granted.load(Ordering::Relaxed) {
            return true;
        }
        let first = self.order.first() == Some(self.seq);
        self.granted.store(first, Ordering::Relaxed);
        first
    }

    /// Wait until [`ready`](Self::ready).
    pub(crate) async fn wait(&self) {
        loop {
            let changed = self.order.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.ready() {
                return;
            }
            changed.await;
        }
    }

    /// This upload has written all its data (or will write none): the next may go.
    pub(crate) fn done(&mut self) {
        if !self.done {
            self.done = true;
            self.order.leave(self.seq);
        }
    }
}

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn turns_go_in_start_order_and_a_dropped_turn_lets_the_next_go() {
        let order = WriteOrder::default();
        let mut a = order.join(0);
        let b = order.join(1);
        let c = order.join(2);
        assert!(a.ready() && !b.ready() && !c.ready());
        a.done();
        assert!(b.ready() && !c.ready());
        drop(b);
        assert!(c.ready());
    }

    #[tokio::test]
    async fn a_waiting_turn_wakes_when_the_earlier_one_is_done() {
        let order = Arc::new(WriteOrder::default());
        let first = order.join(5);
        let o = order.clone();
        let waiter = tokio::spawn(async move {
            let t = o.join(9);
            t.wait().await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the second turn came")
            .unwrap();
    }
}
