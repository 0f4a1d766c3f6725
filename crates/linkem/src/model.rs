//! The sans-IO link model: [`Link`] decides, for each packet offered at a time, whether and
//! when it comes out of the other end; [`DelayLine`] holds the packets until then.
//!
//! Nothing here reads a clock, sleeps or touches a socket: callers pass the time in. Tests drive
//! it with a virtual clock (`Instant` + offsets); the UDP proxy and the TUN router drive it
//! with the real one.

use crate::rng::{derive_seed, Rng};
use crate::spec::{serialization_time, GilbertElliott, LinkSpec, SpecError};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// What happens to one offered packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The packet comes out of the link at `at`; the caller delivers it then.
    Deliver {
        /// Arrival time at the far end.
        at: Instant,
    },
    /// The packet is lost.
    Dropped(DropReason),
}

impl Verdict {
    /// The arrival time, if delivered.
    pub fn arrival(&self) -> Option<Instant> {
        match self {
            Verdict::Deliver { at } => Some(*at),
            Verdict::Dropped(_) => None,
        }
    }
}

/// Why a packet was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Lost on the medium: random loss or a Gilbert–Elliott burst.
    Loss,
    /// Tail-dropped: the bottleneck queue was full.
    QueueFull,
    /// The link was cut while the packet was offered, queued or in flight.
    Cut,
}

/// Counters of one direction. `offered = delivered + dropped_loss + dropped_queue +
/// dropped_cut` always holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets offered to the link.
    pub offered: u64,
    /// Packets delivered (or scheduled for delivery).
    pub delivered: u64,
    /// Packets lost on the medium (random or burst loss).
    pub dropped_loss: u64,
    /// Packets tail-dropped at the bottleneck queue.
    pub dropped_queue: u64,
    /// Packets lost to a link cut.
    pub dropped_cut: u64,
    /// Delivered packets that were held back to be reordered.
    pub reordered: u64,
    /// Bytes offered.
    pub bytes_offered: u64,
    /// Bytes delivered (or scheduled).
    pub bytes_delivered: u64,
    /// Longest wait in the bottleneck queue before serialisation started.
    pub max_queue_delay: Duration,
    /// Largest queue backlog seen (bytes not yet serialised, this packet included).
    pub max_backlog_bytes: u64,
    /// Largest packet offered (for IP drivers: shows that no GSO super-packets got through).
    pub max_packet_bytes: u64,
}

impl LinkStats {
    /// All dropped packets.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_queue + self.dropped_cut
    }

    /// Share of offered packets dropped for any reason (0 if nothing offered).
    pub fn drop_ratio(&self) -> f64 {
        if self.offered == 0 {
            0.0
        } else {
            self.dropped() as f64 / self.offered as f64
        }
    }
}

impl std::fmt::Display for LinkStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "offered {} ({} B), delivered {} ({} B), dropped: loss {}, queue {}, cut {}; \
             reordered {}; max queue delay {:?}, max backlog {} B, max packet {} B",
            self.offered,
            self.bytes_offered,
            self.delivered,
            self.bytes_delivered,
            self.dropped_loss,
            self.dropped_queue,
            self.dropped_cut,
            self.reordered,
            self.max_queue_delay,
            self.max_backlog_bytes,
            self.max_packet_bytes
        )
    }
}

/// A period during which the link is down.
#[derive(Clone, Debug)]
struct Window {
    start: Instant,
    /// `None`: until [`Link::restore`].
    end: Option<Instant>,
    /// From `LinkSpec::cuts` (re-made by `set_spec`), as opposed to triggered.
    scheduled: bool,
    /// The queue has been flushed for this window's start.
    flushed: bool,
}

impl Window {
    fn covers(&self, t: Instant) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e)
    }
    /// Does the window intersect the open interval a packet spends in the link?
    fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.start < to && self.end.is_none_or(|e| e > from)
    }
}

/// Sub-streams of the seed, one per impairment, so that e.g. adding jitter does not change
/// which packets are lost.
const STREAM_LOSS: u64 = 1;
const STREAM_BURST: u64 = 2;
const STREAM_JITTER: u64 = 3;
const STREAM_REORDER: u64 = 4;

/// One direction of an emulated link.
///
/// Deterministic: the verdicts are a pure function of the spec, the seed and the sequence of
/// calls (times and lengths). The first call that takes a time fixes the link's *epoch*, the
/// origin of scheduled cuts, unless [`Link::with_epoch`] set it.
#[derive(Clone, Debug)]
pub struct Link {
    spec: LinkSpec,
    epoch: Option<Instant>,
    last_now: Option<Instant>,
    /// When the bottleneck finishes serialising what it has accepted.
    busy_until: Option<Instant>,
    /// Arrival time of the last in-order packet (FIFO clamp).
    last_arrival: Option<Instant>,
    /// Gilbert–Elliott state: in the Bad state.
    bad: bool,
    rng_loss: Rng,
    rng_burst: Rng,
    rng_jitter: Rng,
    rng_reorder: Rng,
    windows: Vec<Window>,
    stats: LinkStats,
    /// Longest time a packet may stay in the link under any spec seen (bounds bookkeeping).
    horizon: Duration,
}

impl Link {
    /// A link with `spec`, seeded with `seed`. Its epoch is the time of the first call.
    pub fn new(spec: LinkSpec, seed: u64) -> Result<Self, SpecError> {
        spec.validate()?;
        Ok(Link {
            horizon: spec.max_sojourn(),
            spec,
            epoch: None,
            last_now: None,
            busy_until: None,
            last_arrival: None,
            bad: false,
            rng_loss: Rng::new(derive_seed(seed, STREAM_LOSS)),
            rng_burst: Rng::new(derive_seed(seed, STREAM_BURST)),
            rng_jitter: Rng::new(derive_seed(seed, STREAM_JITTER)),
            rng_reorder: Rng::new(derive_seed(seed, STREAM_REORDER)),
            windows: Vec::new(),
            stats: LinkStats::default(),
        })
    }

    /// A link whose scheduled cuts count from `epoch`.
    pub fn with_epoch(spec: LinkSpec, seed: u64, epoch: Instant) -> Result<Self, SpecError> {
        let mut link = Link::new(spec, seed)?;
        link.ensure_epoch(epoch);
        Ok(link)
    }

    /// The spec in force.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// The counters so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The origin of scheduled cuts, once known.
    pub fn epoch(&self) -> Option<Instant> {
        self.epoch
    }

    /// Replace the spec from now on. Packets already scheduled keep their verdicts; the
    /// random streams, the queue backlog and the Gilbert–Elliott state carry over; scheduled
    /// cuts are re-made from the new spec (relative to the same epoch), triggered ones stay.
    pub fn set_spec(&mut self, spec: LinkSpec) -> Result<(), SpecError> {
        spec.validate()?;
        self.horizon = self.horizon.max(spec.max_sojourn());
        if spec.burst.is_none() {
            self.bad = false;
        }
        self.spec = spec;
        if self.epoch.is_some() {
            self.materialize_scheduled();
        }
        Ok(())
    }

    /// Bytes accepted by the bottleneck but not yet serialised at `now`.
    pub fn backlog_bytes(&self, now: Instant) -> u64 {
        match self.busy_until {
            Some(b) if b > now && self.spec.rate_bps > 0 => {
                bytes_in(b.duration_since(now), self.spec.rate_bps)
            }
            _ => 0,
        }
    }

    /// Offer a packet of `len` bytes at `now`. `Deliver { at }` means the caller must hand
    /// it to the far end at `at` (and may then check [`Link::confirm_delivery`]).
    ///
    /// Times earlier than a previous call are treated as that previous time.
    pub fn offer(&mut self, now: Instant, len: usize) -> Verdict {
        self.ensure_epoch(now);
        let prev = self.last_now.unwrap_or(now);
        let now = now.max(prev);
        self.last_now = Some(now);
        let len = len as u64;
        self.stats.offered += 1;
        self.stats.bytes_offered += len;
        self.stats.max_packet_bytes = self.stats.max_packet_bytes.max(len);
        self.apply_cut_starts(prev, now);
        self.prune_windows(now);

        if self.is_cut(now) {
            self.stats.dropped_cut += 1;
            return Verdict::Dropped(DropReason::Cut);
        }

        // Bottleneck queue and serialisation.
        let rate = self.spec.rate_bps;
        let tx_end = if rate > 0 {
            let start = self.busy_until.map_or(now, |b| b.max(now));
            let backlog = bytes_in(start.duration_since(now), rate);
            if backlog + len > self.spec.queue_bytes {
                self.stats.dropped_queue += 1;
                return Verdict::Dropped(DropReason::QueueFull);
            }
            let end = start + serialization_time(len, rate);
            self.busy_until = Some(end);
            self.stats.max_queue_delay = self.stats.max_queue_delay.max(start - now);
            self.stats.max_backlog_bytes = self.stats.max_backlog_bytes.max(backlog + len);
            end
        } else {
            now
        };

        // Loss on the medium (after serialisation: a lost packet still used the link). Both
        // draws happen for every packet that reaches the medium, so each stream's position
        // depends only on the packet count.
        let lost_random = self.rng_loss.chance(self.spec.loss);
        let lost_burst = match self.spec.burst {
            Some(ge) => self.step_burst(ge),
            None => false,
        };
        if lost_random || lost_burst {
            self.stats.dropped_loss += 1;
            return Verdict::Dropped(DropReason::Loss);
        }

        // Propagation delay, jitter, reordering.
        let mut at = tx_end + self.spec.delay;
        let jitter = duration_ns(self.spec.jitter);
        if jitter > 0 {
            let span = jitter.saturating_mul(2).saturating_add(1);
            let offset = self.rng_jitter.below(span);
            at = if offset >= jitter {
                at + Duration::from_nanos(offset - jitter)
            } else {
                at.checked_sub(Duration::from_nanos(jitter - offset))
                    .map_or(tx_end, |t| t.max(tx_end))
            };
        }
        let reordered = self.rng_reorder.chance(self.spec.reorder);
        if reordered {
            at += self.spec.reorder_delay;
        } else if let Some(last) = self.last_arrival {
            // A link does not reorder by itself: a packet cannot overtake the one before it.
            at = at.max(last);
        }
        if self.windows.iter().any(|w| w.overlaps(now, at)) {
            self.stats.dropped_cut += 1;
            return Verdict::Dropped(DropReason::Cut);
        }
        if reordered {
            self.stats.reordered += 1;
        } else {
            self.last_arrival = Some(at);
        }
        self.stats.delivered += 1;
        self.stats.bytes_delivered += len;
        Verdict::Deliver { at }
    }

    /// Called by a driver when a packet offered at `offered_at` (and given `Deliver { at }`)
    /// is due: `false` if a cut triggered since then overlaps its time in the link (it was
    /// queued or on the wire when the link went down), and it is then counted as dropped.
    pub fn confirm_delivery(&mut self, offered_at: Instant, at: Instant, len: usize) -> bool {
        if self.windows.iter().any(|w| w.overlaps(offered_at, at)) {
            self.stats.delivered = self.stats.delivered.saturating_sub(1);
            self.stats.bytes_delivered = self.stats.bytes_delivered.saturating_sub(len as u64);
            self.stats.dropped_cut += 1;
            false
        } else {
            true
        }
    }

    /// Is the link down at `now`?
    pub fn is_cut(&self, now: Instant) -> bool {
        self.windows.iter().any(|w| w.covers(now))
    }

    /// Cut the link from `now` for `duration`: everything offered meanwhile is dropped, and so
    /// is everything queued or in flight at `now` (see [`Link::confirm_delivery`]).
    pub fn cut_for(&mut self, now: Instant, duration: Duration) {
        self.trigger_cut(now, Some(duration));
    }

    /// Cut the link from `now` until [`Link::restore`].
    pub fn cut(&mut self, now: Instant) {
        self.trigger_cut(now, None);
    }

    /// End every cut in force at `now` (scheduled ones included); later scheduled cuts stay.
    pub fn restore(&mut self, now: Instant) {
        self.ensure_epoch(now);
        let now = self.last_now.map_or(now, |l| now.max(l));
        for w in &mut self.windows {
            if w.covers(now) {
                w.end = Some(now);
            }
        }
        self.windows.retain(|w| w.end.is_none_or(|e| e > w.start));
    }

    fn trigger_cut(&mut self, now: Instant, duration: Option<Duration>) {
        self.ensure_epoch(now);
        let now = self.last_now.map_or(now, |l| now.max(l));
        let end = match duration {
            Some(d) if d.is_zero() => return,
            Some(d) => now.checked_add(d),
            None => None,
        };
        self.windows.push(Window {
            start: now,
            end,
            scheduled: false,
            flushed: true,
        });
        self.flush_at(now);
    }

    /// The link loses what it held when it went down: the queue empties, the FIFO order
    /// restarts.
    fn flush_at(&mut self, t: Instant) {
        self.busy_until = self.busy_until.map(|b| b.min(t));
        self.last_arrival = self.last_arrival.map(|a| a.min(t));
    }

    fn ensure_epoch(&mut self, now: Instant) {
        if self.epoch.is_none() {
            self.epoch = Some(now);
            self.materialize_scheduled();
        }
    }

    fn materialize_scheduled(&mut self) {
        let Some(epoch) = self.epoch else { return };
        self.windows.retain(|w| !w.scheduled);
        for cut in &self.spec.cuts {
            if cut.duration.is_zero() {
                continue;
            }
            let Some(start) = epoch.checked_add(cut.at) else {
                continue;
            };
            let end = start.checked_add(cut.duration);
            // A cut that already ended has nothing left to flush.
            let over = match (end, self.last_now) {
                (Some(e), Some(now)) => e <= now,
                _ => false,
            };
            self.windows.push(Window {
                start,
                end,
                scheduled: true,
                flushed: over,
            });
        }
    }

    /// Flush the queue for cuts that began since the previous call.
    fn apply_cut_starts(&mut self, prev: Instant, now: Instant) {
        let mut flush = None::<Instant>;
        for w in &mut self.windows {
            if !w.flushed && w.start <= now {
                w.flushed = true;
                let t = w.start.max(prev);
                flush = Some(flush.map_or(t, |f: Instant| f.min(t)));
            }
        }
        if let Some(t) = flush {
            self.flush_at(t);
        }
    }

    fn prune_windows(&mut self, now: Instant) {
        let keep = self.horizon + Duration::from_secs(1);
        self.windows
            .retain(|w| w.end.is_none_or(|e| e + keep > now) || !w.flushed);
    }

    /// One step of the Gilbert–Elliott chain; `true` if this packet is lost.
    fn step_burst(&mut self, ge: GilbertElliott) -> bool {
        let flip = if self.bad {
            ge.p_bad_to_good
        } else {
            ge.p_good_to_bad
        };
        if self.rng_burst.chance(flip) {
            self.bad = !self.bad;
        }
        let p = if self.bad {
            ge.loss_in_bad
        } else {
            ge.loss_in_good
        };
        self.rng_burst.chance(p)
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Bytes serialised in `d` at `rate_bps` (rounded up).
fn bytes_in(d: Duration, rate_bps: u64) -> u64 {
    let bits = d.as_nanos() * u128::from(rate_bps);
    u64::try_from(bits.div_ceil(8_000_000_000)).unwrap_or(u64::MAX)
}

/// Packets waiting for their delivery time: a min-heap on (time, insertion order), so equal
/// times come out in the order they went in. Sans-IO like [`Link`]; drivers own one per
/// direction. Memory is one entry per packet in flight.
#[derive(Debug)]
pub struct DelayLine<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> Default for DelayLine<T> {
    fn default() -> Self {
        DelayLine::new()
    }
}

impl<T> DelayLine<T> {
    /// An empty line.
    pub fn new() -> Self {
        DelayLine {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Hold `item` until `at`. Returns `true` if it is now the earliest (a waiting driver must
    /// wake up earlier).
    pub fn push(&mut self, at: Instant, item: T) -> bool {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Entry { at, seq, item });
        self.heap.peek().is_some_and(|e| e.seq == seq)
    }

    /// When the earliest item is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// The earliest item if it is due at `now`, with its due time.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.heap.peek()?.at <= now {
            self.heap.pop().map(|e| (e.at, e.item))
        } else {
            None
        }
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drop everything.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A virtual clock: offsets from a fixed origin.
    struct Clock(Instant);
    impl Clock {
        fn new() -> Self {
            Clock(Instant::now())
        }
        fn at(&self, d: Duration) -> Instant {
            self.0 + d
        }
    }

    fn run(link: &mut Link, clock: &Clock, n: usize, every: Duration, len: usize) -> Vec<Verdict> {
        (0..n)
            .map(|i| link.offer(clock.at(every * i as u32), len))
            .collect()
    }

    #[test]
    fn ideal_link_delivers_everything_at_once() {
        let c = Clock::new();
        let mut l = Link::new(LinkSpec::ideal(), 1).unwrap();
        for i in 0..100 {
            let t = c.at(ms(i));
            assert_eq!(l.offer(t, 1200), Verdict::Deliver { at: t });
        }
        assert_eq!(l.stats().delivered, 100);
        assert_eq!(l.stats().bytes_delivered, 120_000);
    }

    #[test]
    fn fixed_delay_is_applied_exactly() {
        let c = Clock::new();
        let mut l = Link::new(LinkSpec::ideal().with_delay(ms(60)), 1).unwrap();
        assert_eq!(
            l.offer(c.at(ms(5)), 100),
            Verdict::Deliver { at: c.at(ms(65)) }
        );
    }

    #[test]
    fn random_loss_converges_to_p() {
        let c = Clock::new();
        for (seed, p) in [(1u64, 0.02), (2, 0.005), (3, 0.05), (4, 0.3)] {
            let mut l = Link::new(LinkSpec::ideal().with_loss(p), seed).unwrap();
            let n = 200_000;
            let v = run(&mut l, &c, n, Duration::from_micros(10), 1200);
            let lost = v
                .iter()
                .filter(|v| **v == Verdict::Dropped(DropReason::Loss))
                .count() as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let expected = n as f64 * p;
            assert!(
                (lost - expected).abs() < 5.0 * sd,
                "p={p}: lost {lost}, expected {expected} ± {}",
                5.0 * sd
            );
            assert_eq!(l.stats().dropped_loss, lost as u64);
            assert_eq!(l.stats().offered, l.stats().delivered + l.stats().dropped());
        }
    }

    fn impaired() -> LinkSpec {
        LinkSpec::rural(10_000_000, ms(120), 0.03)
            .with_jitter(ms(8))
            .with_reorder(0.02, ms(15))
            .with_gilbert_elliott(GilbertElliott {
                p_good_to_bad: 0.01,
                p_bad_to_good: 0.3,
                loss_in_bad: 0.8,
                loss_in_good: 0.0,
            })
            .with_cut(Duration::from_secs(1), Duration::from_millis(300))
    }

    /// An irregular but reproducible input: sizes and gaps vary.
    fn traffic(link: &mut Link, c: &Clock) -> Vec<Verdict> {
        let mut t = Duration::ZERO;
        (0..5000u64)
            .map(|i| {
                t += Duration::from_micros(100 + (i * 7919) % 900);
                link.offer(c.at(t), 64 + ((i * 104_729) % 1437) as usize)
            })
            .collect()
    }

    #[test]
    fn same_seed_same_verdicts_other_seed_differs() {
        let c = Clock::new();
        let a = traffic(&mut Link::with_epoch(impaired(), 99, c.0).unwrap(), &c);
        let b = traffic(&mut Link::with_epoch(impaired(), 99, c.0).unwrap(), &c);
        let other = traffic(&mut Link::with_epoch(impaired(), 100, c.0).unwrap(), &c);
        assert_eq!(a, b);
        assert_ne!(a, other);
        // Every kind of verdict occurred, so the comparison covered every code path.
        for reason in [DropReason::Loss, DropReason::QueueFull, DropReason::Cut] {
            assert!(
                a.contains(&Verdict::Dropped(reason)),
                "{reason:?} never happened"
            );
        }
    }

    #[test]
    fn loss_pattern_does_not_depend_on_jitter_or_reorder() {
        // Separate random streams: comparing runs that differ only in delay settings (e.g.
        // QUIC vs TCP "over the same path") sees the same packets lost.
        let c = Clock::new();
        let base = LinkSpec::ideal().with_loss(0.05);
        let lost = |spec: LinkSpec| -> Vec<bool> {
            let mut l = Link::new(spec, 7).unwrap();
            run(&mut l, &c, 10_000, MS, 1000)
                .iter()
                .map(|v| v.arrival().is_none())
                .collect()
        };
        let plain = lost(base.clone());
        assert_eq!(
            plain,
            lost(base.clone().with_jitter(ms(10)).with_delay(ms(40)))
        );
        assert_eq!(plain, lost(base.with_reorder(0.1, ms(5))));
    }

    #[test]
    fn rate_cap_gives_exact_serialization_times() {
        // 8 Mbit/s = 1 byte/µs: a 1000-byte packet takes exactly 1 ms on the wire.
        let c = Clock::new();
        let spec = LinkSpec::ideal()
            .with_rate(8_000_000)
            .with_queue_bytes(100_000)
            .with_delay(ms(20));
        let mut l = Link::new(spec, 1).unwrap();
        let t0 = c.at(Duration::ZERO);
        assert_eq!(l.offer(t0, 1000), Verdict::Deliver { at: c.at(ms(21)) });
        assert_eq!(l.offer(t0, 1000), Verdict::Deliver { at: c.at(ms(22)) });
        assert_eq!(
            l.offer(t0, 500),
            Verdict::Deliver {
                at: c.at(ms(20) + Duration::from_micros(2500))
            }
        );
        assert_eq!(l.backlog_bytes(t0), 2500);
        // Half-way through the backlog: the next packet waits for what is left.
        let t1 = c.at(Duration::from_micros(1500));
        assert_eq!(l.backlog_bytes(t1), 1000);
        assert_eq!(
            l.offer(t1, 250),
            Verdict::Deliver {
                at: c.at(ms(22) + Duration::from_micros(750))
            }
        );
        // Idle link again: only its own serialisation time.
        let t2 = c.at(ms(100));
        assert_eq!(l.offer(t2, 1000), Verdict::Deliver { at: c.at(ms(121)) });
        // The third packet waited 2 ms behind the first two.
        assert_eq!(l.stats().max_queue_delay, ms(2));
        assert_eq!(l.stats().max_backlog_bytes, 2500);
    }

    #[test]
    fn rate_cap_sustains_exactly_the_rate() {
        // Offered at twice the rate for 10 s: delivered bytes / time = the rate, and the
        // arrivals are spaced by exactly one serialisation time.
        let c = Clock::new();
        let spec = LinkSpec::ideal()
            .with_rate(20_000_000)
            .with_queue_bytes(64_000);
        let mut l = Link::new(spec, 1).unwrap();
        let v = run(&mut l, &c, 33_334, Duration::from_micros(300), 1500);
        let arrivals: Vec<Instant> = v.iter().filter_map(Verdict::arrival).collect();
        for w in arrivals.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_micros(600));
        }
        let span = *arrivals.last().unwrap() - arrivals[0];
        let rate = (arrivals.len() - 1) as f64 * 1500.0 * 8.0 / span.as_secs_f64();
        assert!((rate - 20e6).abs() < 1.0, "rate {rate}");
        // Half the offered load was tail-dropped.
        let s = l.stats();
        assert!((s.dropped_queue as f64 / s.offered as f64 - 0.5).abs() < 0.01);
        assert!(s.max_backlog_bytes <= 64_000);
    }

    #[test]
    fn full_queue_tail_drops() {
        let c = Clock::new();
        let spec = LinkSpec::ideal()
            .with_rate(8_000_000)
            .with_queue_bytes(3000);
        let mut l = Link::new(spec, 1).unwrap();
        let t0 = c.at(Duration::ZERO);
        let v: Vec<Verdict> = (0..5).map(|_| l.offer(t0, 1000)).collect();
        assert!(v[..3].iter().all(|v| v.arrival().is_some()));
        assert_eq!(v[3], Verdict::Dropped(DropReason::QueueFull));
        assert_eq!(v[4], Verdict::Dropped(DropReason::QueueFull));
        // 1 ms later one packet has left: room for one more.
        assert!(l.offer(c.at(ms(1)), 1000).arrival().is_some());
        assert_eq!(
            l.offer(c.at(ms(1)), 1),
            Verdict::Dropped(DropReason::QueueFull)
        );
        assert_eq!(l.stats().dropped_queue, 3);
        assert_eq!(l.stats().max_backlog_bytes, 3000);
    }

    #[test]
    fn scheduled_cut_drops_everything_in_the_window_then_resumes() {
        let c = Clock::new();
        let spec = LinkSpec::ideal()
            .with_delay(ms(50))
            .with_cut(Duration::from_secs(1), Duration::from_secs(2));
        let mut l = Link::with_epoch(spec, 1, c.0).unwrap();
        for i in 0..500u64 {
            let t = ms(10 * i);
            let v = l.offer(c.at(t), 500);
            // Lost if its time in the link, [t, t + 50 ms], meets the cut [1 s, 3 s).
            let in_cut = t + ms(50) > ms(1000) && t < ms(3000);
            if in_cut {
                assert_eq!(v, Verdict::Dropped(DropReason::Cut), "at {t:?}");
            } else {
                assert_eq!(
                    v,
                    Verdict::Deliver {
                        at: c.at(t + ms(50))
                    },
                    "at {t:?}"
                );
            }
        }
        assert_eq!(l.stats().dropped_cut, 204); // offered 0.96 s ..= 2.99 s, every 10 ms
    }

    #[test]
    fn triggered_cut_drops_new_and_in_flight_packets_then_resumes() {
        let c = Clock::new();
        let spec = LinkSpec::ideal()
            .with_delay(ms(100))
            .with_rate(8_000_000)
            .with_queue_bytes(1_000_000);
        let mut l = Link::new(spec, 1).unwrap();
        // Delivered before the cut (arrive at 101 and 102 ms).
        let a = l.offer(c.at(ms(0)), 1000).arrival().unwrap();
        let b = l.offer(c.at(ms(0)), 1000).arrival().unwrap();
        // On the wire at the cut (sent 100..101 ms, arrives 201 ms).
        let on_wire = l.offer(c.at(ms(100)), 1000).arrival().unwrap();
        // Still being serialised at the cut (140..160 ms).
        let queued = l.offer(c.at(ms(140)), 20_000).arrival().unwrap();
        l.cut_for(c.at(ms(150)), ms(500));
        assert!(l.is_cut(c.at(ms(150))));
        assert!(l.confirm_delivery(c.at(ms(0)), a, 1000));
        assert!(l.confirm_delivery(c.at(ms(0)), b, 1000));
        assert!(!l.confirm_delivery(c.at(ms(100)), on_wire, 1000));
        assert!(!l.confirm_delivery(c.at(ms(140)), queued, 20_000));
        assert_eq!(
            l.offer(c.at(ms(300)), 1000),
            Verdict::Dropped(DropReason::Cut)
        );
        // After the cut the link is idle again (the queue was flushed) and delivers.
        assert!(!l.is_cut(c.at(ms(650))));
        assert_eq!(
            l.offer(c.at(ms(700)), 1000),
            Verdict::Deliver { at: c.at(ms(801)) }
        );
        let s = l.stats();
        assert_eq!(s.dropped_cut, 3);
        assert_eq!(s.delivered, 3);
        assert_eq!(s.bytes_delivered, 3000);
        assert_eq!(s.offered, s.delivered + s.dropped());
    }

    #[test]
    fn cut_until_restore() {
        let c = Clock::new();
        let mut l = Link::new(LinkSpec::ideal(), 1).unwrap();
        l.cut(c.at(ms(0)));
        for i in 0..100 {
            assert_eq!(
                l.offer(c.at(Duration::from_secs(i)), 10),
                Verdict::Dropped(DropReason::Cut)
            );
        }
        l.restore(c.at(Duration::from_secs(100)));
        assert!(l
            .offer(c.at(Duration::from_secs(100)), 10)
            .arrival()
            .is_some());
        // restore also ends a scheduled cut early, but not a later one.
        let spec = LinkSpec::ideal()
            .with_cut(ms(100), ms(1000))
            .with_cut(ms(5000), ms(10));
        let mut l = Link::with_epoch(spec, 1, c.0).unwrap();
        assert!(l.is_cut(c.at(ms(200))));
        l.restore(c.at(ms(200)));
        assert!(!l.is_cut(c.at(ms(300))));
        assert!(l.is_cut(c.at(ms(5005))));
    }

    #[test]
    fn jitter_spreads_delay_but_keeps_fifo() {
        let c = Clock::new();
        let spec = LinkSpec::ideal().with_delay(ms(50)).with_jitter(ms(20));
        // Sparse packets (gaps > 2 × jitter) see the full spread of delay ± jitter.
        let mut l = Link::new(spec.clone(), 5).unwrap();
        let delays: Vec<Duration> = run(&mut l, &c, 2000, ms(50), 1000)
            .iter()
            .enumerate()
            .map(|(i, v)| v.arrival().unwrap() - c.at(ms(50) * i as u32))
            .collect();
        let min = *delays.iter().min().unwrap();
        let max = *delays.iter().max().unwrap();
        assert!(min >= ms(30) && max <= ms(70), "{min:?}..{max:?}");
        assert!(
            min < ms(31) && max > ms(69),
            "jitter too narrow: {min:?}..{max:?}"
        );
        let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
        assert!(mean > ms(49) && mean < ms(51), "mean {mean:?}");
        // Dense packets: jitter never lets a packet overtake the previous one.
        let mut l = Link::new(spec, 5).unwrap();
        let v = run(&mut l, &c, 10_000, MS, 1000);
        let arrivals: Vec<Instant> = v.iter().map(|v| v.arrival().unwrap()).collect();
        assert!(
            arrivals.windows(2).all(|w| w[0] <= w[1]),
            "reordered by jitter"
        );
        let gaps: std::collections::HashSet<Duration> =
            arrivals.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() > 100, "arrivals not spread");
        for (i, a) in arrivals.iter().enumerate() {
            let d = *a - c.at(MS * i as u32);
            assert!(d >= ms(30) && d <= ms(70), "{d:?}");
        }
    }

    #[test]
    fn reorder_lets_later_packets_overtake() {
        let c = Clock::new();
        let spec = LinkSpec::ideal()
            .with_delay(ms(30))
            .with_reorder(0.1, ms(5));
        let mut l = Link::new(spec, 11).unwrap();
        let v = run(&mut l, &c, 20_000, MS, 1000);
        let arrivals: Vec<Instant> = v.iter().map(|v| v.arrival().unwrap()).collect();
        let overtaken = arrivals.windows(2).filter(|w| w[1] < w[0]).count();
        let share = l.stats().reordered as f64 / 20_000.0;
        assert!((share - 0.1).abs() < 0.01, "reordered share {share}");
        assert!(overtaken > 1500, "only {overtaken} inversions");
        // Held-back packets arrive exactly 5 ms late; the rest exactly on time.
        for (i, a) in arrivals.iter().enumerate() {
            let d = *a - c.at(MS * i as u32);
            assert!(d == ms(30) || d == ms(35), "{d:?}");
        }
    }

    #[test]
    fn gilbert_elliott_produces_bursts_of_the_configured_length() {
        let c = Clock::new();
        let spec = LinkSpec::ideal().with_burst_loss(0.03, 4.0).unwrap();
        let mut l = Link::new(spec, 3).unwrap();
        let n = 400_000;
        let lost: Vec<bool> = run(&mut l, &c, n, Duration::from_micros(10), 1000)
            .iter()
            .map(|v| *v == Verdict::Dropped(DropReason::Loss))
            .collect();
        let mut bursts = Vec::new();
        let mut run_len = 0;
        for &x in &lost {
            if x {
                run_len += 1;
            } else if run_len > 0 {
                bursts.push(run_len);
                run_len = 0;
            }
        }
        let mean_burst = bursts.iter().sum::<usize>() as f64 / bursts.len() as f64;
        let rate = lost.iter().filter(|&&x| x).count() as f64 / n as f64;
        assert!((mean_burst - 4.0).abs() < 0.2, "mean burst {mean_burst}");
        assert!((rate - 0.03).abs() < 0.004, "loss rate {rate}");
        // Independent loss of the same rate has bursts of ~1.03: bursty it is.
        let mut indep = Link::new(LinkSpec::ideal().with_loss(0.03), 3).unwrap();
        let il: Vec<bool> = run(&mut indep, &c, n, Duration::from_micros(10), 1000)
            .iter()
            .map(|v| v.arrival().is_none())
            .collect();
        let pairs = il.windows(2).filter(|w| w[0] && w[1]).count() as f64;
        let singles = il.iter().filter(|&&x| x).count() as f64;
        assert!(pairs / singles < 0.05);
    }

    #[test]
    fn set_spec_changes_behaviour_from_now_on() {
        let c = Clock::new();
        let mut l = Link::new(LinkSpec::ideal().with_delay(ms(10)), 1).unwrap();
        assert_eq!(
            l.offer(c.at(ms(0)), 100),
            Verdict::Deliver { at: c.at(ms(10)) }
        );
        l.set_spec(LinkSpec::ideal().with_delay(ms(40)).with_loss(1.0))
            .unwrap();
        assert_eq!(
            l.offer(c.at(ms(1)), 100),
            Verdict::Dropped(DropReason::Loss)
        );
        l.set_spec(LinkSpec::ideal().with_delay(ms(40))).unwrap();
        assert_eq!(
            l.offer(c.at(ms(2)), 100),
            Verdict::Deliver { at: c.at(ms(42)) }
        );
        assert!(l.set_spec(LinkSpec::ideal().with_loss(2.0)).is_err());
        // Scheduled cuts count from the original epoch.
        l.set_spec(LinkSpec::ideal().with_cut(ms(100), ms(50)))
            .unwrap();
        assert!(l.is_cut(c.at(ms(120))));
        assert!(!l.is_cut(c.at(ms(160))));
    }

    #[test]
    fn time_going_backwards_is_clamped() {
        let c = Clock::new();
        let mut l = Link::new(LinkSpec::ideal().with_delay(ms(10)), 1).unwrap();
        l.offer(c.at(ms(100)), 10);
        assert_eq!(
            l.offer(c.at(ms(50)), 10),
            Verdict::Deliver { at: c.at(ms(110)) }
        );
    }

    #[test]
    fn cut_windows_do_not_accumulate() {
        let c = Clock::new();
        let mut l = Link::new(LinkSpec::ideal().with_delay(ms(10)), 1).unwrap();
        for i in 0..10_000u64 {
            l.cut_for(c.at(ms(100 * i)), ms(10));
            l.offer(c.at(ms(100 * i + 50)), 10);
        }
        assert!(l.windows.len() < 50, "{} windows kept", l.windows.len());
    }

    #[test]
    fn delay_line_orders_by_time_then_insertion() {
        let c = Clock::new();
        let mut d = DelayLine::new();
        assert!(d.push(c.at(ms(10)), "b"));
        assert!(!d.push(c.at(ms(10)), "c"));
        assert!(d.push(c.at(ms(5)), "a"));
        assert!(!d.push(c.at(ms(20)), "d"));
        assert_eq!(d.next_due(), Some(c.at(ms(5))));
        assert_eq!(d.pop_due(c.at(ms(4))), None);
        let mut out = Vec::new();
        while let Some((_, x)) = d.pop_due(c.at(ms(10))) {
            out.push(x);
        }
        assert_eq!(out, ["a", "b", "c"]);
        assert_eq!(d.len(), 1);
    }
}
