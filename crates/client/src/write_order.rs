//! Uploads write their data in the order they were started — those that may write.
//!
//! Each upload's stream has a priority by upload order (`yilian_transport::priority`), but QUIC
//! can only send what is in its send buffer, and that buffer (`send_window`) is shared by every
//! stream of the connection. With many uploads offered at once (needed to keep a long, fast link
//! busy), whichever were accepted first filled it, and the earlier uploads waited for space:
//! instances then finished out of order and together. So an upload writes its data only when
//! no upload started before it is **ready to write** ([`WriteLine::may_write`]).
//!
//! "Ready" is the point: an upload the relay has not accepted yet (it may wait for the lease
//! of its instance) or has asked to pause (an urgent study of the same site has the link) is
//! not ready, and never blocks the uploads behind it. A line that waited for every earlier
//! upload would deadlock on a hold: the relay holds a routine upload because an urgent one is
//! in progress, and the urgent one would wait for the held one's turn. The relay's side of the
//! same rule is in `yilian_ingest::gate`; `tests/urgent_first_model.rs` checks both together
//! over many seeded interleavings.
//!
//! [`WriteLine`] is the sans-IO rule; [`WriteOrder`] shares one between a run's uploads and
//! wakes them when it changes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Where one upload stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry {
    accepted: bool,
    held: bool,
}

impl Entry {
    fn ready(self) -> bool {
        self.accepted && !self.held
    }
}

/// The uploads of a run that still have data to write, by start order. Sans-IO.
#[derive(Debug, Default)]
pub struct WriteLine {
    entries: BTreeMap<u64, Entry>,
}

impl WriteLine {
    /// Upload `seq` was offered (it joins the line, not ready yet).
    pub fn join(&mut self, seq: u64) {
        self.entries.insert(seq, Entry::default());
    }

    /// The relay accepted it: it may write when no ready upload is before it.
    pub fn accepted(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.accepted = true;
        }
    }

    /// The relay asked it to pause (`true`) or to continue (`false`).
    pub fn held(&mut self, seq: u64, on: bool) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.held = on;
        }
    }

    /// It wrote all its data, or stopped.
    pub fn leave(&mut self, seq: u64) {
        self.entries.remove(&seq);
    }

    /// Whether `seq` may write now: it is ready and no ready upload started before it.
    pub fn may_write(&self, seq: u64) -> bool {
        self.first_ready() == Some(seq)
    }

    /// The earliest upload that is ready to write.
    pub fn first_ready(&self) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.ready())
            .map(|(seq, _)| *seq)
    }

    /// Uploads in the line.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A [`WriteLine`] shared by the uploads of one run.
#[derive(Default)]
pub(crate) struct WriteOrder {
    line: Mutex<WriteLine>,
    changed: Notify,
}

impl WriteOrder {
    fn with<R>(&self, f: impl FnOnce(&mut WriteLine) -> R) -> R {
        let r = f(&mut self.line.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_waiters();
        r
    }

    /// Upload `seq` joins the line; it leaves when the turn is done or dropped.
    pub(crate) fn join(&self, seq: u64) -> WriteTurn<'_> {
        self.with(|l| l.join(seq));
        WriteTurn {
            order: self,
            seq,
            done: false,
        }
    }
}

/// One upload's place in the [`WriteOrder`].
pub(crate) struct WriteTurn<'a> {
    order: &'a WriteOrder,
    seq: u64,
    done: bool,
}

impl WriteTurn<'_> {
    /// The relay accepted the upload.
    pub(crate) fn accepted(&self) {
        if !self.done {
            self.order.with(|l| l.accepted(self.seq));
        }
    }

    /// The relay paused (`true`) or resumed (`false`) the upload.
    pub(crate) fn held(&self, on: bool) {
        if !self.done {
            self.order.with(|l| l.held(self.seq, on));
        }
    }

    /// Whether this upload may write now.
    pub(crate) fn ready(&self) -> bool {
        self.done
            || self
                .order
                .line
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .may_write(self.seq)
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
            self.order.with(|l| l.leave(self.seq));
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
    fn only_ready_uploads_take_turns_in_start_order() {
        let mut l = WriteLine::default();
        for s in 0..3 {
            l.join(s);
        }
        assert_eq!(l.first_ready(), None, "nothing accepted yet");
        l.accepted(1);
        assert!(l.may_write(1), "0 is not accepted: it does not block 1");
        l.accepted(0);
        assert!(l.may_write(0) && !l.may_write(1));
        // The relay holds 0 (urgent first): 1 goes, and 0 never blocks it while held.
        l.held(0, true);
        assert!(l.may_write(1));
        l.accepted(2);
        l.leave(1);
        assert!(l.may_write(2));
        l.held(0, false);
        assert!(l.may_write(0) && !l.may_write(2));
    }

    #[test]
    fn turns_go_in_start_order_and_a_dropped_turn_lets_the_next_go() {
        let order = WriteOrder::default();
        let mut a = order.join(0);
        let b = order.join(1);
        let c = order.join(2);
        for t in [&a, &b, &c] {
            t.accepted();
        }
        assert!(a.ready() && !b.ready() && !c.ready());
        a.done();
        assert!(b.ready() && !c.ready());
        drop(b);
        assert!(c.ready());
    }

    #[tokio::test]
    async fn a_waiting_turn_wakes_when_the_one_before_it_is_held() {
        let order = Arc::new(WriteOrder::default());
        let first = order.join(5);
        first.accepted();
        let o = order.clone();
        let waiter = tokio::spawn(async move {
            let t = o.join(9);
            t.accepted();
            t.wait().await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        first.held(true);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the second turn came")
            .unwrap();
    }
}
