//! Deliveries that failed, waiting to be tried again within the reader's session.
//!
//! A failed delivery (the reader refused it: its disk is full, a folder is in the way; the
//! relay could not read its copy) is tried again after a capped exponential backoff: 1 s, 2 s,
//! 4 s … 60 s. The session keeps its waiting deliveries in one heap ordered by due time and
//! sleeps until the earliest (no task per retry). The outbox entry stays in any case: a reader
//! that leaves receives it on a later session.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;
use tokio::time::Instant;

/// Wait after the first failure.
pub(crate) const FIRST: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
pub(crate) const MAX: Duration = Duration::from_secs(60);

/// Wait before the next attempt after `failures` consecutive failures (≥ 1).
pub(crate) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

struct Due<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Due<T> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl<T> Eq for Due<T> {}
impl<T> PartialOrd for Due<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Due<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Items waiting for their due time, earliest first (ties in insertion order).
pub(crate) struct RetryQueue<T> {
    heap: BinaryHeap<Reverse<Due<T>>>,
    seq: u64,
}

impl<T> Default for RetryQueue<T> {
    fn default() -> Self {
        RetryQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> RetryQueue<T> {
    pub(crate) fn push(&mut self, at: Instant, item: T) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            at,
            seq: self.seq,
            item,
        }));
    }

    /// When the earliest item is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// The earliest item, if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(d)| d.item)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_a_minute() {
        let s: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), MAX);
        assert_eq!(backoff(0), FIRST);
    }

    #[test]
    fn items_come_out_when_due_earliest_first() {
        let t0 = Instant::now();
        let mut q = RetryQueue::default();
        q.push(t0 + Duration::from_secs(4), "c");
        q.push(t0 + Duration::from_secs(1), "a");
        q.push(t0 + Duration::from_secs(1), "b");
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None, "nothing is due yet");
        let now = t0 + Duration::from_secs(2);
        assert_eq!(q.pop_due(now), Some("a"));
        assert_eq!(q.pop_due(now), Some("b"));
        assert_eq!(q.pop_due(now), None);
        assert!(!q.is_empty());
        assert_eq!(q.pop_due(t0 + Duration::from_secs(4)), Some("c"));
        assert!(q.is_empty());
    }
}
