//! Reviving a connection when a cut link comes back.
//!
//! # The problem
//! When a township link is cut, QUIC's sender hears no acknowledgements. quinn sends a probe
//! after each probe timeout (PTO) and doubles the timeout every time, up to 2¹⁶ times: after
//! probes at 0.2, 0.6, 1.4, 3, 6.2, 12.6 and 25.4 s of a cut (a 200 ms PTO), the next one
//! leaves at 51 s. A link back after 30 s therefore waits 21 s more before the sender notices,
//! and a probe due after the idle timeout (60 s) never leaves: the connection dies although
//! the link was back in time. Between probes nothing else may leave either: the packets lost
//! in the cut still count as in flight, so the congestion window is full, and keep-alives and
//! new data wait behind it. quinn 0.11 has no setting for the backoff.
//!
//! # What this module does
//! Two halves, both outside quinn's state machine:
//! - [`Revive`] wraps the connection's congestion controller (every controller of
//!   [`Tuning`](crate::Tuning)). When the sender has heard nothing for
//!   [`quiet`](Revive::quiet_after) — max(1 s, 4 × smoothed RTT), far beyond any PTO before
//!   its backoff grows — and its window is full, it lets **one or two packets** past the
//!   window, at most once per [`PROBE_GAP`]. While acknowledgements arrive it is the inner
//!   controller, unchanged (it reads the clock only when the window is full).
//! - A [`Nudger`] (one task per connection, [`nudge`]) gives it the chance: once per
//!   [`TICK`], if the connection has received nothing since the last tick although something
//!   it sent before that tick is still unanswered, it raises the connection's receive window by
//!   one byte. That queues a MAX_DATA frame (ack-eliciting: the peer must answer it) and wakes
//!   the connection, so quinn builds a packet and asks the controller.
//!
//! The link's outage then costs at most one probe gap (≈ 1 s) after it heals, instead of up to
//! the whole outage again, and the connection outlives any cut shorter than its idle timeout.
//! The price: one or two packets a second towards a dead link, and a receive window one byte
//! larger per second of outage (60 bytes before the idle timeout ends the connection).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics};
use quinn::{Connection, VarInt};
use quinn_proto::RttEstimator;

/// Silence shorter than this is not an outage (raised to 4 × smoothed RTT on long paths).
pub const QUIET_MIN: Duration = Duration::from_secs(1);
/// Probes let past the window during an outage are at least this far apart.
pub const PROBE_GAP: Duration = Duration::from_millis(900);
/// How often a [`Nudger`] looks at its connection (a little longer than [`PROBE_GAP`], so each
/// nudge during an outage gets its probe).
pub const TICK: Duration = Duration::from_secs(1);
/// Room a probe gets beyond what is in flight, in packets: quinn blocks a datagram when what
/// is in flight plus the datagram (and a packet it may coalesce into it) reaches the window,
/// so three let one or two packets through.
const PROBE_PACKETS: u64 = 3;

/// Factory of [`Revive`] controllers around another factory's.
pub struct ReviveFactory {
    inner: Arc<dyn ControllerFactory + Send + Sync>,
}

impl ReviveFactory {
    pub fn new(inner: Arc<dyn ControllerFactory + Send + Sync>) -> ReviveFactory {
        ReviveFactory { inner }
    }
}

impl ControllerFactory for ReviveFactory {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(Revive::new(
            self.inner.clone().build(now, current_mtu),
            now,
            current_mtu,
        ))
    }
}

/// A congestion controller that lets a probe past a full window during an outage (see the
/// module docs); otherwise its inner controller.
pub struct Revive {
    inner: Box<dyn Controller>,
    /// Bytes in flight as quinn counts them: set at each batch of acknowledgements, then
    /// raised by what is sent and lowered by what is acknowledged or lost.
    in_flight: u64,
    /// When the peer last acknowledged anything (or the connection started).
    heard: Instant,
    /// When a packet last left during an outage.
    probed: Option<Instant>,
    mtu: u64,
    srtt: Duration,
}

impl Revive {
    pub fn new(inner: Box<dyn Controller>, now: Instant, mtu: u16) -> Revive {
        Revive {
            inner,
            in_flight: 0,
            heard: now,
            probed: None,
            mtu: u64::from(mtu),
            srtt: Duration::ZERO,
        }
    }

    /// How long without acknowledgements counts as an outage.
    pub fn quiet_after(&self) -> Duration {
        QUIET_MIN.max(4 * self.srtt)
    }

    /// `bytes` were acknowledged at `now`; the smoothed RTT is `srtt`.
    fn acked(&mut self, now: Instant, bytes: u64, srtt: Duration) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        self.heard = now;
        self.srtt = srtt;
    }

    fn quiet(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.heard) >= self.quiet_after()
    }

    /// The window at `now`: the inner one, or during an outage, when no probe left for
    /// [`PROBE_GAP`], room for one probe beyond what is in flight.
    pub fn window_at(&self, now: Instant) -> u64 {
        let window = self.inner.window();
        if !self.full(window) || !self.quiet(now) {
            return window;
        }
        let due = self
            .probed
            .is_none_or(|p| now.saturating_duration_since(p) >= PROBE_GAP);
        if due {
            window.max(self.with_probe())
        } else {
            window
        }
    }

    /// What is in flight plus the room of one probe.
    fn with_probe(&self) -> u64 {
        self.in_flight.saturating_add(PROBE_PACKETS * self.mtu)
    }

    /// Whether `window` leaves no room for a probe.
    fn full(&self, window: u64) -> bool {
        self.with_probe() >= window
    }
}

impl Controller for Revive {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number);
        self.in_flight = self.in_flight.saturating_add(bytes);
        if self.quiet(now) {
            self.probed = Some(now);
        }
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.inner.on_ack(now, sent, bytes, app_limited, rtt);
        self.acked(now, bytes, rtt.get());
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked);
        self.in_flight = in_flight;
        self.heard = now;
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.inner
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes);
        self.in_flight = self.in_flight.saturating_sub(lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu);
        self.mtu = u64::from(new_mtu);
    }

    fn window(&self) -> u64 {
        let window = self.inner.window();
        // The common case, without reading the clock: the window is not full.
        if !self.full(window) {
            return window;
        }
        self.window_at(Instant::now())
    }

    fn metrics(&self) -> ControllerMetrics {
        self.inner.metrics()
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(Revive {
            inner: self.inner.clone_box(),
            in_flight: self.in_flight,
            heard: self.heard,
            probed: self.probed,
            mtu: self.mtu,
            srtt: self.srtt,
        })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }

    /// The inner controller: a caller that downcasts the connection's controller finds the one
    /// it configured.
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self.inner.into_any()
    }
}

/// What a [`Nudger`] saw at its last tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// UDP datagrams received so far.
    pub rx: u64,
    /// UDP datagrams sent so far.
    pub tx: u64,
}

/// The sans-IO half of [`nudge`]: decides at each tick whether the connection is waiting on a
/// silent peer.
#[derive(Debug, Clone, Default)]
pub struct Nudger {
    last: Seen,
    /// Datagrams sent when something was last received.
    tx_at_rx: u64,
    /// Nudges so far (the receive window grew by as many bytes).
    pub nudges: u64,
}

impl Nudger {
    /// At a tick, with the connection's counters now: nudge? True when nothing was received
    /// since the last tick and something sent before the last tick is still unanswered (a
    /// keep-alive whose answer is a round trip away does not count).
    pub fn tick(&mut self, now: Seen) -> bool {
        let heard = now.rx != self.last.rx;
        let unanswered_before = self.last.tx != self.tx_at_rx;
        self.last = now;
        if heard {
            self.tx_at_rx = now.tx;
            return false;
        }
        if !unanswered_before {
            return false;
        }
        self.nudges += 1;
        true
    }
}

/// Spawn the task that nudges `conn` while its peer is silent (see the module docs).
/// `receive_window` is the connection's configured receive window
/// ([`Tuning::receive_window`](crate::Tuning::receive_window)). The task ends with the
/// connection.
pub fn nudge(conn: &Connection, receive_window: u64) -> tokio::task::JoinHandle<()> {
    let conn = conn.clone();
    tokio::spawn(async move {
        let mut nudger = Nudger::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = conn.closed() => return,
                _ = tick.tick() => {}
            }
            let stats = conn.stats();
            let seen = Seen {
                rx: stats.udp_rx.datagrams,
                tx: stats.udp_tx.datagrams,
            };
            if nudger.tick(seen) {
                let window = receive_window.saturating_add(nudger.nudges);
                conn.set_receive_window(VarInt::from_u64(window).unwrap_or(VarInt::MAX));
                tracing::trace!(nudges = nudger.nudges, "peer silent: nudged the connection");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner controller with a fixed window.
    #[derive(Clone)]
    struct Fixed(u64);

    impl Controller for Fixed {
        fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {}
        fn on_mtu_update(&mut self, _: u16) {}
        fn window(&self) -> u64 {
            self.0
        }
        fn clone_box(&self) -> Box<dyn Controller> {
            Box::new(self.clone())
        }
        fn initial_window(&self) -> u64 {
            self.0
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any> {
            self
        }
    }

    const MTU: u16 = 1200;
    const WINDOW: u64 = 100 * MTU as u64;

    fn full(t0: Instant) -> Revive {
        let mut c = Revive::new(Box::new(Fixed(WINDOW)), t0, MTU);
        // The window fills, then everything stays in flight: the link was cut.
        for i in 0..100 {
            c.on_sent(t0 + Duration::from_micros(i), u64::from(MTU), i);
        }
        c
    }

    fn blocked(c: &Revive, now: Instant) -> bool {
        // quinn's check: in flight + one packet ≥ window means blocked.
        c.in_flight + u64::from(MTU) >= c.window_at(now)
    }

    #[test]
    fn a_full_window_stays_shut_until_the_peer_has_been_silent_a_while() {
        let t0 = Instant::now();
        let c = full(t0);
        assert!(blocked(&c, t0 + Duration::from_millis(10)));
        assert!(blocked(&c, t0 + QUIET_MIN - Duration::from_millis(1)));
        assert!(!blocked(&c, t0 + QUIET_MIN));
    }

    #[test]
    fn during_an_outage_one_probe_leaves_per_gap() {
        let t0 = Instant::now();
        let mut c = full(t0);
        let mut probes = 0;
        let mut pn = 100;
        // 30 s of outage, quinn asking every 10 ms (timers, nudges).
        for ms in (0..30_000).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            if !blocked(&c, now) {
                c.on_sent(now, u64::from(MTU), pn);
                pn += 1;
                probes += 1;
                assert!(blocked(&c, now), "one packet per probe");
            }
        }
        // From 1 s to 30 s, one per 0.9 s gap (rounded to the 10 ms asks).
        assert!((30..=33).contains(&probes), "{probes} probes");
    }

    #[test]
    fn an_acknowledgement_ends_the_outage_and_hands_back_to_the_inner_window() {
        let t0 = Instant::now();
        let mut c = full(t0);
        let t1 = t0 + Duration::from_secs(5);
        assert!(!blocked(&c, t1));
        c.acked(t1, u64::from(MTU), Duration::from_millis(60));
        c.on_end_acks(t1, WINDOW - u64::from(MTU), false, Some(0));
        assert!(blocked(&c, t1 + Duration::from_millis(500)));
        // A long path needs longer silence: 4 × smoothed RTT.
        c.acked(t1, 0, Duration::from_millis(600));
        assert_eq!(c.quiet_after(), Duration::from_millis(2400));
        assert!(blocked(&c, t1 + Duration::from_secs(2)));
        assert!(!blocked(&c, t1 + Duration::from_millis(2400)));
    }

    #[test]
    fn lost_bytes_leave_the_in_flight_count() {
        let t0 = Instant::now();
        let mut c = full(t0);
        c.on_congestion_event(t0, t0, true, WINDOW / 2);
        assert_eq!(c.in_flight, WINDOW / 2);
        // Not full any more: the inner window, whatever the silence.
        assert_eq!(c.window_at(t0 + Duration::from_secs(10)), WINDOW);
    }

    #[test]
    fn the_inner_controller_is_what_a_downcast_finds() {
        let c: Box<dyn Controller> = Box::new(full(Instant::now()));
        assert!(c.clone_box().into_any().downcast::<Fixed>().is_ok());
    }

    #[test]
    fn the_nudger_nudges_only_a_connection_waiting_on_a_silent_peer() {
        let mut n = Nudger::default();
        // Traffic both ways: no nudge.
        assert!(!n.tick(Seen { rx: 10, tx: 10 }));
        assert!(!n.tick(Seen { rx: 20, tx: 25 }));
        // Idle both ways (nothing sent since the last receive): no nudge.
        assert!(!n.tick(Seen { rx: 20, tx: 25 }));
        // A keep-alive answered within the tick: no nudge.
        assert!(!n.tick(Seen { rx: 21, tx: 26 }));
        // A keep-alive just sent, its answer not back yet: no nudge.
        assert!(!n.tick(Seen { rx: 21, tx: 27 }));
        assert!(!n.tick(Seen { rx: 22, tx: 27 }));
        // Sent, and a tick later still no answer: nudge, and every tick until something
        // arrives.
        assert!(!n.tick(Seen { rx: 22, tx: 30 }));
        assert!(n.tick(Seen { rx: 22, tx: 30 }));
        assert!(n.tick(Seen { rx: 22, tx: 31 }));
        assert!(n.tick(Seen { rx: 22, tx: 32 }));
        assert_eq!(n.nudges, 3);
        // The link is back.
        assert!(!n.tick(Seen { rx: 40, tx: 50 }));
        assert!(!n.tick(Seen { rx: 41, tx: 50 }));
        assert_eq!(n.nudges, 3);
    }
}
