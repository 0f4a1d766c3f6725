//! Uplink yield: a township's uploads make room for its urgent live ECG.
//!
//! A township uplink is one FIFO bottleneck shared by the CT upload and the ECG cart. The upload's
//! controller keeps a standing queue there (`bdp` cruises at 1.5 BDP: ½ BDP of queue, ≈ 60 ms on a
//! 120 ms link), and every ECG packet waits in it. Only the upload's sender can empty that queue.
//! While a site has an urgent ECG live, its relay tells the site's uploading connections to yield
//! (`yilian_proto::notice`), renewing the order as a short lease; the sender's [`UplinkYield`]
//! holds the order and its [`crate::Bdp`] controllers then cruise **below** the path's BDP
//! ([`crate::BdpConfig::yield_gain`], no probing), so the queue stays empty and the upload keeps
//! most of the rate (measured in `benches/ecg_transport.rs`). A lost renewal or a relay that
//! vanishes cannot leave the upload slowed: the lease lapses by itself.
//!
//! One handle is shared by every connection of an endpoint ([`crate::Tuning::uplink`]): a
//! township sender's uplink is the site's uplink.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The yield order a sender holds: until when its uploads make room on the uplink.
///
/// Cheap to clone (one shared atomic); equal when it is the same handle.
#[derive(Clone)]
pub struct UplinkYield {
    inner: Arc<Inner>,
}

struct Inner {
    /// Instants are stored as nanoseconds after this one.
    base: Instant,
    /// End of the order in nanoseconds after `base`; 0 = no order.
    until: AtomicU64,
}

impl Default for UplinkYield {
    fn default() -> Self {
        UplinkYield {
            inner: Arc::new(Inner {
                base: Instant::now(),
                until: AtomicU64::new(0),
            }),
        }
    }
}

impl UplinkYield {
    /// A handle with no order.
    pub fn new() -> Self {
        Self::default()
    }

    fn nanos(&self, t: Instant) -> u64 {
        // At least 1: 0 means "no order".
        u64::try_from(t.saturating_duration_since(self.inner.base).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Yield until `until` (a renewal replaces the previous end, earlier or later).
    pub fn hold_until(&self, until: Instant) {
        self.inner.until.store(self.nanos(until), Ordering::Relaxed);
    }

    /// Yield for `d` from `now`; `Duration::ZERO` releases the order.
    pub fn hold_for(&self, now: Instant, d: Duration) {
        if d.is_zero() {
            self.release();
        } else {
            self.hold_until(now + d);
        }
    }

    /// End the order now.
    pub fn release(&self) {
        self.inner.until.store(0, Ordering::Relaxed);
    }

    /// Whether the order holds at `now`.
    pub fn active(&self, now: Instant) -> bool {
        let until = self.inner.until.load(Ordering::Relaxed);
        until != 0 && self.nanos(now) < until
    }
}

impl PartialEq for UplinkYield {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for UplinkYield {}

impl fmt::Debug for UplinkYield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UplinkYield")
            .field("active", &self.active(Instant::now()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_holds_until_its_end_and_a_renewal_moves_the_end() {
        let y = UplinkYield::new();
        let t0 = Instant::now();
        assert!(!y.active(t0));
        y.hold_for(t0, Duration::from_secs(2));
        assert!(y.active(t0 + Duration::from_millis(1999)));
        assert!(!y.active(t0 + Duration::from_secs(2)));
        y.hold_for(t0 + Duration::from_secs(1), Duration::from_secs(2));
        assert!(y.active(t0 + Duration::from_millis(2500)));
        y.hold_for(t0, Duration::ZERO);
        assert!(!y.active(t0));
    }

    #[test]
    fn clones_share_the_order_and_compare_equal() {
        let y = UplinkYield::new();
        let c = y.clone();
        let t0 = Instant::now();
        c.hold_for(t0, Duration::from_secs(1));
        assert!(y.active(t0));
        assert_eq!(y, c);
        assert_ne!(y, UplinkYield::new());
        y.release();
        assert!(!c.active(t0));
    }

    #[test]
    fn an_end_before_the_handle_existed_is_no_order() {
        let y = UplinkYield::new();
        let past = Instant::now()
            .checked_sub(Duration::from_secs(5))
            .unwrap_or_else(Instant::now);
        y.hold_until(past);
        assert!(!y.active(Instant::now() + Duration::from_millis(1)));
    }
}
