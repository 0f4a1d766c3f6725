//! `bdp`: a model-based congestion controller for quinn, built for township uplinks.
//!
//! Township uplinks are 2–100 Mbit/s, 50–300 ms RTT, with 0.5–10 % *random* loss and outages.
//! Loss-based controllers (CUBIC, NewReno) read every random loss as congestion and collapse
//! (≈ 0.7 of 20 Mbit/s at 2 % loss). quinn's BBR keeps goodput but floods the bottleneck:
//! quinn's pacer sends at 1.25 × window / smoothed RTT whatever the controller's pacing rate,
//! so the window is the *only* brake, and its BBR's window grows far past the BDP (≈ 6×;
//! 35–60 % of its packets were tail-dropped at a one-BDP queue). [`Bdp`] keeps BBR's model
//! (bottleneck bandwidth × minimum RTT) and makes the window the control.
//!
//! # Model
//! - **Delivery rate** per acknowledged packet, as in BBR: bytes delivered between the packet's
//!   send and its ack, over the longer of the send and ack intervals (intervals shorter than the
//!   minimum RTT are discarded: they measure ack compression). Packets sent while quinn reported
//!   the connection app-limited give samples that may raise the estimate, never lower it, and
//!   rounds with only such samples do not age the filter.
//! - **Bottleneck bandwidth** = the largest sample of the last 10 counted round trips.
//! - **Minimum RTT** = the lowest `now − sent` of an acked packet; a sample within 1/8 of it
//!   refreshes its age. When none came for 10 s (our own standing queue hides it) the
//!   controller enters **ProbeRtt**: window ½ BDP until what is in flight fits, then at least
//!   200 ms and one round trip; the lowest sample of that phase becomes the minimum (also if
//!   higher: the path got longer). Cost ≈ ½ × max(200 ms, RTT) of capacity per 10 s.
//! - **Ack aggregation** (BBR's `extra_acked`): the largest excess of acked bytes over what
//!   the bandwidth explains, last 10 rounds, is added to the window after Startup, and no
//!   window is computed for an RTT below 2 ms (quinn paces in 2 ms bursts): on loopback the RTT
//!   under load is host time, and bandwidth × a 10 µs idle RTT starved the sender.
//!
//! # States and windows (BDP = bandwidth × min RTT)
//! - **Startup** (also after an outage): from 32 packets the window grows by the acked bytes
//!   (×2 per round trip), capped at 2 × BDP so the overshoot is at most one BDP of queue.
//!   Leaves after 3 counted rounds in which the bandwidth grew less than 25 %.
//! - **Drain**: window 1 BDP until what is in flight fits (the startup queue is gone), at most
//!   3 rounds.
//! - **ProbeBw**: window 1.5 × BDP, and one round in 8 at 1.25 × that to find freed capacity
//!   sooner (between probes it is found too: a window above the BDP lets the delivery rate grow
//!   by 1.5× per round). At a one-BDP bottleneck queue this keeps a standing queue of ½ BDP,
//!   ⅞ BDP at the probe's peak: the controller does not overflow it by itself. Gains measured
//!   through the emulator: 2.0 overflowed the queue (≈ 1.4 % queue drops at 0 % loss, 20 Mbit/s,
//!   120 ms), 1.25 and 1.5 did not, with the same goodput; 1.5 leaves more room for ack jitter.
//!   (Compare gains with `YILIAN_CC_CONTROLLERS=bdp,bdp:gain=2.0 cargo bench --bench
//!   congestion`.)
//!
//! # Loss
//! Random loss does **not** change the window: the model is built from what was delivered.
//! The controller reacts only to loss that its own queue causes, told from the link's
//! background loss `bg` by rate, per round trip:
//! - a round is **congested** when the loss of packets sent since the last reaction exceeds
//!   max(2 × bg, bg + 2 %) and is beyond chance for a round of that size (≥ 4 packets and
//!   ≥ expected + 3 standard deviations), or an ECN CE mark arrived;
//! - the reaction caps the window gain at 0.85 × the current one, but never below the
//!   **floor**, `(1 + 9/8·bg) / (1 − bg) + 0.08` BDP: the window that still fills the pipe at
//!   the background loss (lost packets stay in flight ≈ 9/8 RTT until declared lost, and the
//!   BDP estimate counts only delivered bytes). The floor is above one BDP, so a false alarm
//!   costs no throughput, only standing queue, while a true one (a queue shallower than ½ BDP,
//!   or a competitor filling it) empties the queue we built. Each clean round lifts the cap by
//!   0.02 until it no longer binds (an additive probe back towards the overflow point);
//! - `bg` is the byte-weighted loss ratio of the learning rounds (running average, then over
//!   ≈ 16 BDPs). Learning rounds: Startup rounds while the bandwidth still grows, Drain,
//!   ProbeRtt, ProbeBw without a cap, and every round at the floor — at the floor our queue is
//!   as small as it gets, so whatever is lost there is the link's (a lasting rise of the link's
//!   loss is learned there). Rounds judged congested are left out except at the floor, as are
//!   the two rounds after a reaction; rounds while the cap lifts are left out (loss that grows
//!   with the window is ours). For the floor `bg` counts at most 12 %, so the floor never
//!   exceeds the cruise gain: overflow loss mistaken for background cannot feed itself.
//!
//! # Uplink yield
//! While the endpoint's [`UplinkYield`] order holds (a relay said the site has an urgent ECG
//! live, [`crate::uplink`]), ProbeBw and Drain use a window of `yield_gain` × BDP (0.9) with
//! no probing round and no ack-aggregation allowance: below the pipe's size, so the sender
//! keeps no standing queue at the township bottleneck and the ECG's packets pass at once,
//! while the upload keeps ≈ `yield_gain` of the rate. Samples sent under the order measure the
//! held-back window, not the path, so they count like app-limited ones (they may raise the
//! estimate, never lower it or age the filter) unless the smoothed RTT shows a standing
//! queue: then the path got slower than the estimate and the samples are the truth. Startup is
//! not changed (a connection opened during the order must still find the rate).
//!
//! # Outages
//! When no ack came for max(1 s, 4 × smoothed RTT) although the sender had data outstanding and
//! was not app-limited, or quinn declares persistent congestion, the link was cut: the controller restarts in Startup from
//! the initial window with fresh bandwidth and RTT estimates, so the old (possibly huge) window
//! is never sent into a just-restored, possibly slower link. Shorter gaps keep the model.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics};
use quinn_proto::RttEstimator;

use crate::uplink::UplinkYield;

/// Shortest RTT a window is computed for: quinn's pacer releases 2 ms bursts on timers of
/// ≈ 1 ms, and on loopback or a LAN the RTT under load is host time (wake-ups, batches), not
/// propagation. A window of bandwidth × an idle-path RTT of 10 µs starves the sender there
/// (measured: 150–250 MB/s instead of ≈ 500 on loopback); township links are far longer.
const HOST_TIME: Duration = Duration::from_millis(2);

/// Background loss rate above which the window floor grows no further.
const MAX_BACKGROUND_FOR_FLOOR: f64 = 0.12;

/// Configuration (and factory) of the [`Bdp`] controller. The defaults are the measured choice;
/// the fields are public for experiments.
#[derive(Debug, Clone, PartialEq)]
pub struct BdpConfig {
    /// Window before the first estimate and after an outage, bytes.
    pub initial_window: u64,
    /// Window gain in ProbeBw (× BDP).
    pub cwnd_gain: f64,
    /// Cap of the window in Startup (× BDP).
    pub startup_gain: f64,
    /// Extra gain of the probing round in ProbeBw.
    pub probe_gain: f64,
    /// One probing round every this many rounds.
    pub probe_every_rounds: u32,
    /// Slack of the lowest window gain the loss response goes to: the floor is the window that
    /// keeps the pipe full despite the background loss `p` (lost packets stay in flight until
    /// declared lost, ≈ 9/8 RTT; the bandwidth model only counts delivered bytes),
    /// `(1 + 9/8·p) / (1 − p)` BDP, plus this.
    pub floor_slack: f64,
    /// Window in ProbeRtt (× BDP).
    pub probe_rtt_gain: f64,
    /// Time in ProbeRtt after what is in flight fits the window (at least one round too).
    pub probe_rtt_time: Duration,
    /// Minimum-RTT filter window; ProbeRtt when no fresh minimum came for this long.
    pub min_rtt_window: Duration,
    /// Bandwidth filter window in round trips.
    pub bw_window_rounds: usize,
    /// React to congestion (overflow) loss; `false` only for experiments.
    pub loss_response: bool,
    /// Shortest ack gap (with data outstanding) taken as an outage; 4 × smoothed RTT if larger.
    pub outage_after: Duration,
    /// Window gain (× BDP, no probing) while the [`UplinkYield`] order holds: below 1, so the
    /// sender keeps no standing queue at the bottleneck and an urgent ECG sharing it is not
    /// delayed (see [`crate::uplink`]).
    pub yield_gain: f64,
    /// The yield order this controller obeys (shared by the endpoint's connections).
    pub uplink: UplinkYield,
}

impl Default for BdpConfig {
    fn default() -> Self {
        BdpConfig {
            initial_window: 32 * 1200,
            cwnd_gain: 1.5,
            startup_gain: 2.0,
            probe_gain: 1.25,
            probe_every_rounds: 8,
            floor_slack: 0.08,
            probe_rtt_gain: 0.5,
            probe_rtt_time: Duration::from_millis(200),
            min_rtt_window: Duration::from_secs(10),
            bw_window_rounds: 10,
            loss_response: true,
            outage_after: Duration::from_secs(1),
            yield_gain: 0.9,
            uplink: UplinkYield::default(),
        }
    }
}

impl ControllerFactory for BdpConfig {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(Bdp::new(self, now, current_mtu))
    }
}

/// State of the [`Bdp`] controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Window doubling per round trip until the bandwidth stops growing.
    Startup,
    /// Window one BDP until the startup queue is gone.
    Drain,
    /// Steady state: `cwnd_gain` × BDP with a probing round in 8.
    ProbeBw,
    /// Brief small window to measure the minimum RTT again.
    ProbeRtt,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Startup => "startup",
            Mode::Drain => "drain",
            Mode::ProbeBw => "probe_bw",
            Mode::ProbeRtt => "probe_rtt",
        })
    }
}

/// What the controller believes and did so far (for tests, benches and logs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BdpState {
    /// Current state.
    pub mode: Mode,
    /// Current window, bytes.
    pub window: u64,
    /// Bottleneck bandwidth estimate, bytes/s (0 before the first sample).
    pub btl_bw: u64,
    /// Minimum RTT estimate.
    pub min_rtt: Option<Duration>,
    /// Background (random) loss rate estimate.
    pub background_loss: f64,
    /// Window gain cap set by the loss response, if it binds.
    pub cap_gain: Option<f64>,
    /// Round trips counted.
    pub rounds: u64,
    /// Rounds judged congested (queue overflow or ECN).
    pub congested_rounds: u64,
    /// Restarts after an outage or persistent congestion.
    pub restarts: u64,
    /// Times ProbeRtt was entered.
    pub probe_rtts: u64,
    /// Whether the uplink yield order held at the last send or ack.
    pub yielding: bool,
}

/// Per-send snapshot for delivery-rate samples (consecutive sends at one instant share one).
#[derive(Debug, Clone, Copy)]
struct SendRecord {
    sent: Instant,
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
    /// Sent under the yield order: the window was below the BDP on purpose.
    yielding: bool,
}

/// The `bdp` congestion controller; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Bdp {
    config: Arc<BdpConfig>,
    mtu: u64,
    mode: Mode,
    /// Startup window (grows by acked bytes).
    cwnd: u64,

    // Delivery-rate sampling.
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    records: VecDeque<SendRecord>,
    /// While `delivered` is below this, sends are marked app-limited (0 = not app-limited).
    app_limited_until: u64,

    // Round trips.
    rounds: u64,
    next_round_delivered: u64,
    round_end_pending: bool,

    // Bandwidth filter: maxima of the last rounds, and of the current one.
    bw_rounds: VecDeque<u64>,
    round_bw: u64,
    round_has_sample: bool,

    // Ack aggregation: acks arriving faster than the bandwidth (batched acks, receive
    // offload, scheduling on loopback) need window beyond the BDP to keep the pipe busy.
    batch_acked: u64,
    ack_epoch_start: Option<Instant>,
    ack_epoch_acked: u64,
    extra_rounds: VecDeque<u64>,
    round_extra: u64,

    // RTT.
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    srtt: Option<Duration>,

    // Startup.
    full_bw: u64,
    full_bw_rounds: u32,

    // ProbeBw / Drain / ProbeRtt.
    cycle_round: u32,
    drain_rounds: u32,
    probe_rtt_until: Option<Instant>,
    probe_rtt_round: u64,
    probe_rtt_min: Option<Duration>,

    // Loss response.
    round_acked: u64,
    round_lost: u64,
    round_lost_new: u64,
    round_ecn: bool,
    background_loss: f64,
    /// Bytes behind `background_loss` (up to its horizon).
    background_bytes: u64,
    cap_gain: Option<f64>,
    last_reaction: Option<Instant>,
    reaction_round: u64,

    // Outages.
    last_restart: Option<Instant>,
    waiting_since: Option<Instant>,
    in_flight: u64,

    // Uplink yield (as of the last send or ack).
    yielding: bool,

    // Counters.
    congested_rounds: u64,
    restarts: u64,
    probe_rtts: u64,
}

impl Bdp {
    /// A controller at `now` for a path of `current_mtu`.
    pub fn new(config: Arc<BdpConfig>, now: Instant, current_mtu: u16) -> Self {
        let cwnd = config.initial_window;
        Bdp {
            config,
            mtu: current_mtu as u64,
            mode: Mode::Startup,
            cwnd,
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            records: VecDeque::new(),
            app_limited_until: 0,
            rounds: 0,
            next_round_delivered: 0,
            round_end_pending: false,
            bw_rounds: VecDeque::new(),
            round_bw: 0,
            round_has_sample: false,
            batch_acked: 0,
            ack_epoch_start: None,
            ack_epoch_acked: 0,
            extra_rounds: VecDeque::new(),
            round_extra: 0,
            min_rtt: None,
            min_rtt_stamp: now,
            srtt: None,
            full_bw: 0,
            full_bw_rounds: 0,
            cycle_round: 0,
            drain_rounds: 0,
            probe_rtt_until: None,
            probe_rtt_round: 0,
            probe_rtt_min: None,
            round_acked: 0,
            round_lost: 0,
            round_lost_new: 0,
            round_ecn: false,
            background_loss: 0.0,
            background_bytes: 0,
            cap_gain: None,
            last_reaction: None,
            reaction_round: 0,
            last_restart: None,
            waiting_since: None,
            in_flight: 0,
            yielding: false,
            congested_rounds: 0,
            restarts: 0,
            probe_rtts: 0,
        }
    }

    /// A snapshot of the estimates and counters.
    pub fn state(&self) -> BdpState {
        BdpState {
            mode: self.mode,
            window: self.window_now(),
            btl_bw: self.btl_bw(),
            min_rtt: self.min_rtt,
            background_loss: self.background_loss,
            cap_gain: self.cap_gain,
            rounds: self.rounds,
            congested_rounds: self.congested_rounds,
            restarts: self.restarts,
            probe_rtts: self.probe_rtts,
            yielding: self.yielding,
        }
    }

    fn min_window(&self) -> u64 {
        4 * self.mtu
    }

    /// Bottleneck bandwidth estimate, bytes/s.
    fn btl_bw(&self) -> u64 {
        self.bw_rounds
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.round_bw)
    }

    /// Largest excess of acked bytes over what the bandwidth explains, last rounds (as BBR).
    fn extra_acked(&self) -> u64 {
        self.extra_rounds
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.round_extra)
    }

    /// One batch of acks: measure how far ack arrivals ran ahead of the bandwidth estimate
    /// since the current aggregation epoch began (an epoch restarts whenever they fall back).
    fn update_ack_aggregation(&mut self, now: Instant) {
        let acked = std::mem::take(&mut self.batch_acked);
        let bw = self.btl_bw();
        // In Startup the acks outrun the (lagging) estimate by design: no measurement there.
        if acked == 0 || bw == 0 || self.mode == Mode::Startup {
            self.ack_epoch_start = None;
            self.ack_epoch_acked = 0;
            return;
        }
        let start = *self.ack_epoch_start.get_or_insert(now);
        let expected = (bw as f64 * now.saturating_duration_since(start).as_secs_f64()) as u64;
        if self.ack_epoch_acked <= expected {
            self.ack_epoch_acked = acked;
            self.ack_epoch_start = Some(now);
            return;
        }
        self.ack_epoch_acked += acked;
        self.round_extra = self.round_extra.max(self.ack_epoch_acked - expected);
    }

    /// `gain` × bandwidth × min RTT, bytes; `None` before both estimates exist.
    fn bdp(&self, gain: f64) -> Option<u64> {
        let bw = self.btl_bw();
        let rtt = self.min_rtt?.max(HOST_TIME);
        (bw > 0).then_some((gain * bw as f64 * rtt.as_secs_f64()) as u64)
    }

    /// Lowest window gain that still keeps the pipe full at the background loss rate.
    fn floor_gain(&self) -> f64 {
        // Capped so that the floor never exceeds the cruise gain of 1.5: if overflow loss on a
        // queue too shallow to show in the RTT is taken for background, it cannot feed itself.
        let p = self.background_loss.clamp(0.0, MAX_BACKGROUND_FOR_FLOOR);
        (1.0 + p * 9.0 / 8.0) / (1.0 - p) + self.config.floor_slack
    }

    /// Window gain in ProbeBw this round, before the loss cap.
    fn probe_bw_gain(&self) -> f64 {
        let probing = self.cycle_round == 0;
        let gain = self.config.cwnd_gain.max(self.floor_gain());
        gain * if probing { self.config.probe_gain } else { 1.0 }
    }

    /// Window gain in ProbeBw this round, the loss cap applied.
    fn effective_gain(&self) -> f64 {
        match self.cap_gain {
            Some(cap) => self.probe_bw_gain().min(cap.max(self.floor_gain())),
            None => self.probe_bw_gain(),
        }
    }

    fn window_now(&self) -> u64 {
        let c = &self.config;
        let extra = self.extra_acked();
        let w = match self.mode {
            Mode::Startup => self.cwnd,
            // Yielding: below the pipe's size, so no queue builds (no ack-aggregation allowance
            // either: it would be queue on a township link).
            Mode::Drain | Mode::ProbeBw if self.yielding => {
                self.bdp(c.yield_gain).unwrap_or(self.cwnd)
            }
            Mode::Drain => self.bdp(1.0).map_or(self.cwnd, |w| w + extra),
            Mode::ProbeBw => self
                .bdp(self.effective_gain())
                .map_or(self.cwnd, |w| w + extra),
            Mode::ProbeRtt => self.bdp(c.probe_rtt_gain).unwrap_or(self.cwnd),
        };
        w.max(self.min_window())
    }

    fn startup_cap(&self) -> u64 {
        match self.bdp(self.config.startup_gain) {
            Some(cap) => cap.max(self.config.initial_window),
            None => u64::MAX,
        }
    }

    /// Back to a fresh start after an outage: initial window, Startup, no estimates.
    fn restart(&mut self, now: Instant) {
        self.mode = Mode::Startup;
        self.cwnd = self.config.initial_window;
        self.records.clear();
        self.app_limited_until = 0;
        self.delivered_time = now;
        self.first_sent_time = now;
        self.next_round_delivered = self.delivered;
        self.round_end_pending = false;
        self.bw_rounds.clear();
        self.round_bw = 0;
        self.round_has_sample = false;
        self.batch_acked = 0;
        self.ack_epoch_start = None;
        self.ack_epoch_acked = 0;
        self.extra_rounds.clear();
        self.round_extra = 0;
        self.min_rtt = None;
        self.min_rtt_stamp = now;
        self.srtt = None;
        self.full_bw = 0;
        self.full_bw_rounds = 0;
        self.cycle_round = 0;
        self.drain_rounds = 0;
        self.probe_rtt_until = None;
        self.probe_rtt_min = None;
        self.round_acked = 0;
        self.round_lost = 0;
        self.round_lost_new = 0;
        self.round_ecn = false;
        self.cap_gain = None;
        self.last_reaction = Some(now);
        self.reaction_round = self.rounds;
        self.last_restart = Some(now);
        self.waiting_since = Some(now);
        self.restarts += 1;
    }

    fn outage_threshold(&self) -> Duration {
        let rtt4 = self.srtt.map_or(Duration::ZERO, |s| 4 * s);
        self.config.outage_after.max(rtt4)
    }

    fn on_rtt_sample(&mut self, now: Instant, rtt: Duration) {
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
        if self.mode == Mode::ProbeRtt && self.probe_rtt_until.is_some() {
            self.probe_rtt_min = Some(self.probe_rtt_min.map_or(rtt, |m| m.min(rtt)));
        }
        match self.min_rtt {
            None => {
                self.min_rtt = Some(rtt);
                self.min_rtt_stamp = now;
            }
            Some(min) => {
                if rtt <= min + min / 8 {
                    self.min_rtt_stamp = now;
                }
                if rtt < min {
                    self.min_rtt = Some(rtt);
                }
            }
        }
    }

    /// Follow the uplink yield order as of `now`.
    fn update_yield(&mut self, now: Instant) {
        let yielding = self.config.uplink.active(now);
        if yielding != self.yielding {
            self.yielding = yielding;
            tracing::debug!(
                yielding,
                btl_bw = self.btl_bw(),
                min_rtt = ?self.min_rtt,
                "bdp: uplink yield order {}",
                if yielding { "holds" } else { "ended" }
            );
        }
    }

    /// Whether the smoothed RTT shows a standing queue (while yielding, the window is meant to
    /// keep it empty: a queue means the path got slower than the estimate).
    fn queue_standing(&self) -> bool {
        match (self.srtt, self.min_rtt) {
            (Some(srtt), Some(min)) => srtt > min + (min / 4).max(HOST_TIME),
            _ => false,
        }
    }

    /// One or more packets of `bytes` were sent at `now`.
    pub(crate) fn sent(&mut self, now: Instant, bytes: u64) {
        self.update_yield(now);
        if self.in_flight == 0 {
            // Nothing was outstanding: measure the next intervals from here.
            self.delivered_time = now;
            self.first_sent_time = now;
        }
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        self.in_flight += bytes;
        let app_limited = self.app_limited_until > 0;
        if let Some(last) = self.records.back() {
            if last.sent == now {
                return; // same snapshot
            }
        }
        self.records.push_back(SendRecord {
            sent: now,
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited,
            yielding: self.yielding,
        });
    }

    /// A packet of `bytes` sent at `sent` was acknowledged at `now`.
    pub(crate) fn acked(&mut self, now: Instant, sent: Instant, bytes: u64) {
        // Not before the first bandwidth sample (no model to protect: a lost handshake packet
        // waits for quinn's probe timeout), and not while app-limited (an idle connection's
        // lost keep-alive is retried after a probe timeout too; a real cut of an idle link
        // shows as persistent congestion).
        let watch = self.btl_bw() > 0 && self.app_limited_until == 0;
        if let (Some(since), true) = (self.waiting_since, watch) {
            if now.saturating_duration_since(since) > self.outage_threshold() {
                tracing::debug!(
                    gap = ?now.saturating_duration_since(since),
                    delivered = self.delivered,
                    "bdp: no ack for too long, restarting from the initial window"
                );
                self.restart(now);
            }
        }
        self.waiting_since = Some(now);

        self.delivered += bytes;
        self.delivered_time = now;
        self.round_acked += bytes;
        self.batch_acked += bytes;
        if self.app_limited_until > 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        self.on_rtt_sample(now, now.saturating_duration_since(sent));

        // The send record of this packet (older ones were acked or lost).
        while self.records.front().is_some_and(|r| r.sent < sent) {
            self.records.pop_front();
        }
        let record = self.records.front().filter(|r| r.sent == sent).copied();
        if let Some(p) = record {
            self.first_sent_time = p.sent;
            if p.delivered >= self.next_round_delivered {
                self.round_end_pending = true;
            }
            let send_elapsed = p.sent.saturating_duration_since(p.first_sent_time);
            let ack_elapsed = now.saturating_duration_since(p.delivered_time);
            let interval = send_elapsed.max(ack_elapsed);
            let long_enough = self.min_rtt.is_some_and(|m| interval >= m) && !interval.is_zero();
            if long_enough {
                let bytes = (self.delivered - p.delivered) as f64;
                let rate = (bytes / interval.as_secs_f64()) as u64;
                // A window held below the BDP measures itself, not the path, so yielding
                // samples count like app-limited ones: they may raise the estimate, never lower
                // it, unless a standing queue shows the path itself got slower.
                let limited = p.app_limited || (p.yielding && !self.queue_standing());
                if !limited || rate > self.btl_bw() {
                    self.round_bw = self.round_bw.max(rate);
                    self.round_has_sample = true;
                }
            }
        }

        if self.mode == Mode::Startup {
            self.cwnd = (self.cwnd + bytes).min(self.startup_cap().max(self.cwnd));
        }
    }

    /// A batch of acks ended; `in_flight` bytes remain outstanding.
    pub(crate) fn end_acks(&mut self, now: Instant, in_flight: u64, app_limited: bool) {
        self.update_yield(now);
        self.in_flight = in_flight;
        if in_flight == 0 {
            self.waiting_since = None;
        }
        if app_limited {
            self.app_limited_until = (self.delivered + in_flight).max(1);
        }
        self.update_ack_aggregation(now);
        if self.round_end_pending {
            self.round_end_pending = false;
            self.end_round(now);
        }
        if self.mode == Mode::Startup {
            // Keep the startup window within the cap as the estimates move.
            self.cwnd = self.cwnd.min(self.startup_cap());
        }
        if self.mode == Mode::Drain
            && (self
                .bdp(1.0)
                .is_some_and(|bdp| in_flight <= bdp + self.extra_acked())
                || self.drain_rounds >= 3)
        {
            self.enter_probe_bw();
        }
        self.update_probe_rtt(now, in_flight);
    }

    /// Packets of `bytes` (the newest sent at `sent`) were declared lost; `bytes == 0` is an
    /// ECN congestion mark.
    pub(crate) fn lost(&mut self, now: Instant, sent: Instant, persistent: bool, bytes: u64) {
        if persistent {
            // An outage is usually noticed by the ack gap first, at this same instant.
            if self.last_restart != Some(now) {
                tracing::debug!(
                    delivered = self.delivered,
                    "bdp: persistent congestion, restarting from the initial window"
                );
                self.restart(now);
            }
            return;
        }
        if bytes == 0 {
            self.round_ecn = true;
            return;
        }
        self.in_flight = self.in_flight.saturating_sub(bytes);
        self.round_lost += bytes;
        if self.last_reaction.is_none_or(|r| sent > r) {
            self.round_lost_new += bytes;
        }
    }

    fn enter_probe_bw(&mut self) {
        self.mode = Mode::ProbeBw;
        // Start right after the probing round: the queue from Startup just drained.
        self.cycle_round = 1;
    }

    fn end_round(&mut self, now: Instant) {
        tracing::trace!(
            round = self.rounds,
            mode = %self.mode,
            window = self.window_now(),
            in_flight = self.in_flight,
            btl_bw = self.btl_bw(),
            round_bw = self.round_bw,
            min_rtt = ?self.min_rtt,
            srtt = ?self.srtt,
            background_loss = self.background_loss,
            cap_gain = ?self.cap_gain,
            round_acked = self.round_acked,
            round_lost = self.round_lost,
            app_limited = self.app_limited_until != 0,
            "bdp: round"
        );
        self.rounds += 1;
        self.next_round_delivered = self.delivered;

        // Bandwidth filter: a round counts if it had a sample that may count.
        if self.round_has_sample {
            self.bw_rounds.push_back(self.round_bw);
            while self.bw_rounds.len() > self.config.bw_window_rounds.max(1) {
                self.bw_rounds.pop_front();
            }
        }
        let counted = self.round_has_sample;
        self.round_bw = 0;
        self.round_has_sample = false;
        self.extra_rounds.push_back(self.round_extra);
        while self.extra_rounds.len() > self.config.bw_window_rounds.max(1) {
            self.extra_rounds.pop_front();
        }
        self.round_extra = 0;

        self.judge_loss(now);

        match self.mode {
            Mode::Startup if counted => {
                let bw = self.btl_bw();
                if bw as f64 >= self.full_bw as f64 * 1.25 {
                    self.full_bw = bw;
                    self.full_bw_rounds = 0;
                } else {
                    self.full_bw_rounds += 1;
                    if self.full_bw_rounds >= 3 {
                        self.mode = Mode::Drain;
                        self.drain_rounds = 0;
                        // Losses from the startup peak are not the link's background.
                        self.last_reaction = Some(now);
                        self.reaction_round = self.rounds;
                    }
                }
            }
            Mode::Drain => self.drain_rounds += 1,
            Mode::ProbeBw => {
                self.cycle_round = (self.cycle_round + 1) % self.config.probe_every_rounds.max(1);
            }
            _ => {}
        }
    }

    /// The loss response: compare this round's loss with the background.
    fn judge_loss(&mut self, now: Instant) {
        let total = self.round_acked + self.round_lost;
        let share = |bytes: u64| {
            if total > 0 {
                bytes as f64 / total as f64
            } else {
                0.0
            }
        };
        let (rate, rate_new) = (share(self.round_lost), share(self.round_lost_new));
        let bg = self.background_loss;
        // Far above the background, and beyond what chance gives a round of this size
        // (3 standard deviations of the expected count of lost packets).
        let packets = total as f64 / self.mtu as f64;
        let expected = bg * packets;
        let lost_packets = self.round_lost_new as f64 / self.mtu as f64;
        let unlikely = lost_packets >= 4.0_f64.max(expected + 3.0 * (expected + 1.0).sqrt());
        let overflow = unlikely && rate_new > (2.0 * bg).max(bg + 0.02);
        let congested = self.round_ecn || overflow;
        // Which rounds show the link's own loss: at the floor our queue is as small as it gets,
        // so whatever is lost there is background (a lasting rise of the link's loss is learned
        // there); with the cap lifting, loss that grows with the window is ours and must not be
        // learned (it would raise the threshold as fast as the overflow grows).
        let at_floor = self
            .cap_gain
            .is_some_and(|cap| cap <= self.floor_gain() + 0.05);
        // Rounds judged congested are left out, except at the floor: leaving out the rounds far
        // above the background biases it down a little, and if it was too low, the reactions
        // bring the window to the floor, where every round is learned.
        let learn = match self.mode {
            Mode::ProbeBw => at_floor || (self.cap_gain.is_none() && !congested),
            // Until the bandwidth stops growing the window is below the pipe's size.
            Mode::Startup => self.full_bw_rounds == 0 && !congested,
            Mode::Drain | Mode::ProbeRtt => true,
        };
        if congested && self.config.loss_response && self.mode == Mode::ProbeBw {
            self.congested_rounds += 1;
            if !at_floor {
                let current = self.effective_gain();
                self.cap_gain = Some((current * 0.85).max(self.floor_gain()));
                self.last_reaction = Some(now);
                self.reaction_round = self.rounds;
            }
            // At the floor the excess is not our queue's: hold there and learn it.
        } else if let Some(cap) = self.cap_gain {
            // Lift slowly: the last overflow was near here.
            let lifted = cap + 0.02;
            let top = self.config.cwnd_gain.max(self.floor_gain()) * self.config.probe_gain;
            self.cap_gain = (lifted < top).then_some(lifted);
        }
        // The background: the loss ratio of the bytes of the learning rounds, a running
        // average at first, then over the last ≈ 16 BDPs of them; leaving out the two rounds
        // after a reaction (they declare the losses of packets sent before it: that
        // congestion's). Weighing by bytes keeps the small first rounds from counting much.
        let clean = self.rounds > self.reaction_round + 2;
        if learn && clean && total >= 4 * self.mtu {
            let horizon = 16 * self.bdp(1.0).unwrap_or(0).max(64 * self.mtu);
            self.background_bytes = (self.background_bytes + total).min(horizon).max(total);
            let weight = total as f64 / self.background_bytes as f64;
            self.background_loss += (rate - bg) * weight;
        }
        self.round_acked = 0;
        self.round_lost = 0;
        self.round_lost_new = 0;
        self.round_ecn = false;
    }

    fn update_probe_rtt(&mut self, now: Instant, in_flight: u64) {
        let expired =
            now.saturating_duration_since(self.min_rtt_stamp) > self.config.min_rtt_window;
        if expired && matches!(self.mode, Mode::ProbeBw | Mode::Drain) {
            self.mode = Mode::ProbeRtt;
            self.probe_rtt_until = None;
            self.probe_rtt_min = None;
            self.probe_rtts += 1;
        }
        if self.mode != Mode::ProbeRtt {
            return;
        }
        match self.probe_rtt_until {
            None => {
                if in_flight <= self.window_now() + self.mtu {
                    // Drained: hold for the time and until a packet sent from now is acked
                    // (a round that starts here, as BBR does).
                    self.probe_rtt_until = Some(now + self.config.probe_rtt_time);
                    self.next_round_delivered = self.delivered;
                    self.probe_rtt_round = self.rounds;
                }
            }
            Some(until) => {
                if now >= until && self.rounds > self.probe_rtt_round {
                    if let Some(m) = self.probe_rtt_min {
                        self.min_rtt = Some(m);
                    }
                    self.min_rtt_stamp = now;
                    self.probe_rtt_until = None;
                    self.probe_rtt_min = None;
                    self.enter_probe_bw();
                }
            }
        }
    }
}

impl Controller for Bdp {
    fn on_sent(&mut self, now: Instant, bytes: u64, _last_packet_number: u64) {
        self.sent(now, bytes);
    }

    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        _app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        self.acked(now, sent, bytes);
    }

    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        _largest_packet_num_acked: Option<u64>,
    ) {
        self.end_acks(now, in_flight, app_limited);
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.lost(now, sent, is_persistent_congestion, lost_bytes);
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.mtu = new_mtu as u64;
    }

    fn window(&self) -> u64 {
        self.window_now()
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut m = ControllerMetrics::default();
        m.congestion_window = self.window_now();
        m.pacing_rate = Some(self.btl_bw().saturating_mul(8));
        m
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }

    fn initial_window(&self) -> u64 {
        self.config.initial_window
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    //! No sockets: a virtual clock drives a small discrete-event model of quinn's sender (window
    //! check, 1.25 × window / srtt token-bucket pacer, packet-threshold loss detection, PTO
    //! probes, persistent congestion) over a one-way bottleneck like `yilian-linkem`'s (tail-drop
    //! byte queue → serialisation → random loss → propagation; acks come back unimpaired).
    use super::*;
    use std::cmp::Reverse;
    use std::collections::{BTreeMap, BinaryHeap};

    const MTU: u64 = 1200;

    struct Rng(u64);

    impl Rng {
        fn f64(&mut self) -> f64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[derive(Clone, Copy)]
    struct Link {
        rate_bps: u64,
        rtt: Duration,
        loss: f64,
        queue_bytes: u64,
    }

    impl Link {
        /// Like `LinkSpec::rural`: a queue of one BDP (at least 16 packets).
        fn rural(rate_bps: u64, rtt_ms: u64, loss: f64) -> Link {
            let rtt = Duration::from_millis(rtt_ms);
            Link {
                rate_bps,
                rtt,
                loss,
                queue_bytes: (rate_bps as f64 / 8.0 * rtt.as_secs_f64()).max(16.0 * 1500.0) as u64,
            }
        }

        fn bdp(&self) -> f64 {
            self.rate_bps as f64 / 8.0 * self.rtt.as_secs_f64()
        }

        fn bytes_per_sec(&self) -> f64 {
            self.rate_bps as f64 / 8.0
        }
    }

    #[derive(Clone, Copy)]
    struct Pkt {
        sent: Instant,
        size: u64,
    }

    #[derive(Clone, Copy, Default, Debug)]
    struct Counters {
        sent_pkts: u64,
        delivered_bytes: u64,
        dropped_queue: u64,
        dropped_loss: u64,
        dropped_cut: u64,
        lost_declared_bytes: u64,
        max_queue_delay: Duration,
    }

    struct Sim {
        ctl: Bdp,
        now: Instant,
        link: Link,
        rng: Rng,
        link_free_at: Instant,
        next_pn: u64,
        outstanding: BTreeMap<u64, Pkt>,
        acks: BinaryHeap<Reverse<(Instant, u64)>>,
        in_flight: u64,
        tokens: f64,
        last_refill: Instant,
        srtt: Duration,
        largest_acked: Option<u64>,
        last_progress: Instant,
        pto_count: u32,
        cut: Option<(Instant, Instant)>,
        /// Bytes/s the application offers; `None` = always has data.
        app_rate: Option<f64>,
        app_credit: f64,
        c: Counters,
    }

    impl Sim {
        fn new(link: Link, config: BdpConfig, seed: u64) -> Sim {
            let now = Instant::now();
            Sim {
                ctl: Bdp::new(Arc::new(config), now, MTU as u16),
                now,
                link,
                rng: Rng(seed.max(1)),
                link_free_at: now,
                next_pn: 0,
                outstanding: BTreeMap::new(),
                acks: BinaryHeap::new(),
                in_flight: 0,
                tokens: 10.0 * MTU as f64,
                last_refill: now,
                srtt: Duration::from_millis(333),
                largest_acked: None,
                last_progress: now,
                pto_count: 0,
                cut: None,
                app_rate: None,
                app_credit: 0.0,
                c: Counters::default(),
            }
        }

        fn window(&self) -> u64 {
            self.ctl.window()
        }

        fn cut_active(&self, t: Instant) -> bool {
            self.cut.is_some_and(|(from, to)| t >= from && t < to)
        }

        fn pto(&self) -> Duration {
            self.srtt * 3 / 2 + Duration::from_millis(25)
        }

        fn refill(&mut self) {
            let w = self.window() as f64;
            let srtt = self.srtt.as_secs_f64();
            let cap = (w * 0.002 / srtt).clamp(10.0 * MTU as f64, 256.0 * MTU as f64);
            let dt = self
                .now
                .saturating_duration_since(self.last_refill)
                .as_secs_f64();
            self.tokens = (self.tokens + 1.25 * w / srtt * dt).min(cap);
            self.last_refill = self.now;
        }

        fn app_has_data(&self) -> bool {
            self.app_rate.is_none() || self.app_credit >= MTU as f64 - 1e-6
        }

        fn cwnd_blocked(&self) -> bool {
            self.in_flight + MTU >= self.window()
        }

        /// When the next data packet may go, if the window and the application allow one.
        fn next_send(&mut self) -> Option<Instant> {
            if self.cwnd_blocked() {
                return None;
            }
            self.refill();
            let need = MTU as f64 - self.tokens;
            let rate = 1.25 * self.window() as f64 / self.srtt.as_secs_f64();
            let pace = if need <= 0.0 {
                self.now
            } else {
                self.now + Duration::from_secs_f64(need / rate)
            };
            match self.app_rate {
                None => Some(pace),
                Some(r) => {
                    let wait = (MTU as f64 - self.app_credit) / r;
                    if wait <= 0.0 {
                        return Some(pace);
                    }
                    // (At least a microsecond: rounding must not stall the virtual clock.)
                    let wait = Duration::from_secs_f64(wait).max(Duration::from_micros(1));
                    Some(pace.max(self.now + wait))
                }
            }
        }

        fn transmit(&mut self, probe: bool) {
            let pn = self.next_pn;
            self.next_pn += 1;
            if !probe {
                self.refill();
                self.tokens -= MTU as f64;
                if self.app_rate.is_some() {
                    self.app_credit -= MTU as f64;
                }
            }
            self.outstanding.insert(
                pn,
                Pkt {
                    sent: self.now,
                    size: MTU,
                },
            );
            self.in_flight += MTU;
            self.ctl.sent(self.now, MTU);
            self.c.sent_pkts += 1;
            if self.cut_active(self.now) {
                self.c.dropped_cut += 1;
                return;
            }
            let bps = self.link.bytes_per_sec();
            let backlog = self
                .link_free_at
                .saturating_duration_since(self.now)
                .as_secs_f64()
                * bps;
            if backlog + MTU as f64 > self.link.queue_bytes as f64 {
                self.c.dropped_queue += 1;
                return;
            }
            let start = self.link_free_at.max(self.now);
            self.c.max_queue_delay = self.c.max_queue_delay.max(start - self.now);
            let depart = start + Duration::from_secs_f64(MTU as f64 / bps);
            self.link_free_at = depart;
            if self.rng.f64() < self.link.loss {
                self.c.dropped_loss += 1;
                return;
            }
            let ack_at = depart + self.link.rtt;
            if self.cut_active(depart + self.link.rtt / 2) || self.cut_active(ack_at) {
                self.c.dropped_cut += 1;
                return;
            }
            self.acks.push(Reverse((ack_at, pn)));
        }

        fn process_acks(&mut self) {
            let mut newly = Vec::new();
            while let Some(Reverse((t, pn))) = self.acks.peek().copied() {
                if t > self.now {
                    break;
                }
                self.acks.pop();
                newly.push(pn);
            }
            newly.sort_unstable();
            let mut acked_any = false;
            for pn in newly {
                if let Some(p) = self.outstanding.remove(&pn) {
                    acked_any = true;
                    self.in_flight -= p.size;
                    self.c.delivered_bytes += p.size;
                    self.ctl.acked(self.now, p.sent, p.size);
                    if self.largest_acked.is_none_or(|l| pn > l) {
                        self.largest_acked = Some(pn);
                        let rtt = self.now - p.sent;
                        self.srtt = (self.srtt * 7 + rtt) / 8;
                    }
                }
            }
            if !acked_any {
                return;
            }
            let app_limited = !self.app_has_data() && !self.cwnd_blocked();
            self.ctl.end_acks(self.now, self.in_flight, app_limited);
            self.last_progress = self.now;
            self.pto_count = 0;
            // Loss detection (FIFO link: what is below the largest acked never comes).
            let largest = self.largest_acked.unwrap();
            let time_limit = self.srtt * 9 / 8;
            let lost: Vec<u64> = self
                .outstanding
                .range(..largest)
                .filter(|(pn, p)| {
                    largest >= *pn + 3 || self.now.saturating_duration_since(p.sent) >= time_limit
                })
                .map(|(pn, _)| *pn)
                .collect();
            if lost.is_empty() {
                return;
            }
            let mut bytes = 0;
            let mut run_start = self.outstanding[&lost[0]].sent;
            let mut prev = lost[0];
            let mut persistent = false;
            let mut newest = run_start;
            for pn in &lost {
                let p = self.outstanding.remove(pn).unwrap();
                if *pn != prev + 1 && *pn != prev {
                    run_start = p.sent;
                }
                if p.sent.saturating_duration_since(run_start) > self.pto() * 3 {
                    persistent = true;
                }
                prev = *pn;
                newest = p.sent;
                bytes += p.size;
            }
            self.in_flight -= bytes;
            self.c.lost_declared_bytes += bytes;
            self.ctl.lost(self.now, newest, persistent, bytes);
        }

        fn run_for(&mut self, d: Duration) {
            let until = self.now + d;
            loop {
                let ack_at = self.acks.peek().map(|r| r.0 .0);
                let send_at = if self.app_has_data() || self.app_rate.is_some() {
                    self.next_send()
                } else {
                    None
                };
                let pto_at = (self.in_flight > 0)
                    .then(|| self.last_progress + self.pto() * 2u32.pow(self.pto_count.min(10)));
                let t = [ack_at, send_at, pto_at]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(until);
                if t > until {
                    self.advance_app(until);
                    self.now = until;
                    return;
                }
                self.advance_app(t);
                self.now = t;
                if ack_at == Some(t) {
                    self.process_acks();
                } else if send_at == Some(t) {
                    if self.app_has_data() {
                        self.transmit(false);
                    }
                } else if pto_at == Some(t) {
                    self.transmit(true);
                    self.pto_count += 1;
                }
            }
        }

        fn advance_app(&mut self, t: Instant) {
            if let Some(r) = self.app_rate {
                let dt = t.saturating_duration_since(self.now).as_secs_f64();
                self.app_credit = (self.app_credit + r * dt).min(4.0 * MTU as f64);
            }
        }

        /// Run `d`, sampling every 10 ms: (window, mode) pairs and goodput over `d`.
        fn measure(&mut self, d: Duration) -> (Vec<(u64, Mode)>, f64) {
            let before = self.c.delivered_bytes;
            let mut samples = Vec::new();
            let step = Duration::from_millis(10);
            let mut t = Duration::ZERO;
            while t < d {
                self.run_for(step);
                samples.push((self.window(), self.ctl.mode));
                t += step;
            }
            let goodput = (self.c.delivered_bytes - before) as f64 / d.as_secs_f64();
            (samples, goodput)
        }
    }

    fn median(mut v: Vec<u64>) -> u64 {
        v.sort_unstable();
        v[v.len() / 2]
    }

    /// Median window in ProbeBw outside the probing and ProbeRtt rounds, in BDPs.
    fn cruise_window_in_bdps(samples: &[(u64, Mode)], link: &Link, gain: f64) -> f64 {
        let cruise: Vec<u64> = samples
            .iter()
            .filter(|(_, m)| *m == Mode::ProbeBw)
            .map(|(w, _)| *w)
            .filter(|w| (*w as f64) < gain * 1.15 * link.bdp())
            .collect();
        assert!(!cruise.is_empty(), "never in ProbeBw");
        median(cruise) as f64 / link.bdp()
    }

    #[test]
    fn converges_to_gain_times_bdp_without_overflowing_the_queue() {
        for (rate, rtt) in [(20_000_000, 100), (20_000_000, 30), (100_000_000, 120)] {
            let link = Link::rural(rate, rtt, 0.0);
            let mut sim = Sim::new(link, BdpConfig::default(), 7);
            sim.run_for(Duration::from_secs(5));
            let drops_after_startup = sim.c.dropped_queue;
            let (samples, goodput) = sim.measure(Duration::from_secs(15));
            let w = cruise_window_in_bdps(&samples, &link, 1.5);
            let s = sim.ctl.state();
            assert!(
                (1.35..=1.65).contains(&w),
                "{rate} {rtt}: window {w} BDP, {s:?}"
            );
            let share = goodput / link.bytes_per_sec();
            assert!(share > 0.95, "{rate} {rtt}: goodput {share}");
            assert_eq!(
                sim.c.dropped_queue, drops_after_startup,
                "{rate} {rtt}: {:?}",
                sim.c
            );
            let rtt_err = s.min_rtt.unwrap().as_secs_f64() / link.rtt.as_secs_f64();
            assert!((1.0..1.1).contains(&rtt_err), "min RTT {:?}", s.min_rtt);
            assert!(sim.c.max_queue_delay < link.rtt, "{:?}", sim.c);
        }
    }

    #[test]
    fn under_the_yield_order_the_queue_stays_empty_and_most_of_the_rate_is_kept() {
        // The township case of design §2 / issue 16: 20 Mbit/s, 120 ms, 2 % random loss.
        for seed in [31, 32, 33] {
            let link = Link::rural(20_000_000, 120, 0.02);
            let config = BdpConfig::default();
            let order = config.uplink.clone();
            let mut sim = Sim::new(link, config, seed);
            sim.run_for(Duration::from_secs(10));
            let (_, before) = sim.measure(Duration::from_secs(10));
            assert!(
                sim.c.max_queue_delay > Duration::from_millis(30),
                "{:?}",
                sim.c
            );

            // An urgent ECG goes live: the relay's order, renewed as a lease.
            order.hold_for(sim.now, Duration::from_secs(60));
            sim.run_for(Duration::from_secs(2)); // what was queued drains
            sim.c.max_queue_delay = Duration::ZERO;
            let drops = sim.c.dropped_queue;
            let (samples, during) = sim.measure(Duration::from_secs(30));
            let s = sim.ctl.state();
            assert!(s.yielding, "{s:?}");
            // Quinn's pacer releases 1.25 × window / RTT: bursts, never a standing queue.
            assert!(
                sim.c.max_queue_delay < Duration::from_millis(15),
                "seed {seed}: queue delay {:?} while yielding, {s:?}",
                sim.c.max_queue_delay
            );
            assert_eq!(sim.c.dropped_queue, drops, "{:?}", sim.c);
            let kept = during / before;
            assert!(
                (0.7..0.95).contains(&kept),
                "seed {seed}: kept {kept} of the rate ({during} of {before} B/s), {s:?}"
            );
            // The estimate did not spiral down with the held-back window.
            let bw = s.btl_bw as f64 / link.bytes_per_sec();
            assert!(bw > 0.9, "seed {seed}: estimate {bw} of the link, {s:?}");
            let w = median(samples.iter().map(|(w, _)| *w).collect()) as f64 / link.bdp();
            assert!((0.75..0.95).contains(&w), "seed {seed}: window {w} BDP");

            // The ECG ends: the order is released and the upload takes the link back.
            order.release();
            sim.run_for(Duration::from_secs(3));
            let (samples, after) = sim.measure(Duration::from_secs(10));
            assert!(!sim.ctl.state().yielding);
            assert!(after / link.bytes_per_sec() > 0.9, "seed {seed}: {after}");
            let w = cruise_window_in_bdps(&samples, &link, 1.5);
            assert!(w > 1.3, "seed {seed}: window {w} BDP after the order");
        }
    }

    #[test]
    fn a_path_that_slows_down_under_the_yield_order_is_followed() {
        let link = Link::rural(20_000_000, 120, 0.0);
        let config = BdpConfig::default();
        let order = config.uplink.clone();
        let mut sim = Sim::new(link, config, 41);
        sim.run_for(Duration::from_secs(10));
        order.hold_for(sim.now, Duration::from_secs(120));
        sim.run_for(Duration::from_secs(5));
        // Half the rate (another household on the township's line): the held-back window is
        // now far above the path's BDP and would keep a queue of its own.
        sim.link.rate_bps /= 2;
        sim.run_for(Duration::from_secs(20));
        sim.c.max_queue_delay = Duration::ZERO;
        let (_, goodput) = sim.measure(Duration::from_secs(20));
        let s = sim.ctl.state();
        let bw = s.btl_bw as f64 / sim.link.bytes_per_sec();
        assert!(
            (0.8..1.2).contains(&bw),
            "estimate {bw} of the slower link, {s:?}"
        );
        assert!(
            sim.c.max_queue_delay < Duration::from_millis(40),
            "{:?}, {s:?}",
            sim.c
        );
        assert!(goodput / sim.link.bytes_per_sec() > 0.6, "{goodput}");
    }

    #[test]
    fn random_loss_does_not_reduce_the_window() {
        for loss in [0.02, 0.05, 0.10] {
            let link = Link::rural(20_000_000, 120, loss);
            let mut sim = Sim::new(link, BdpConfig::default(), 11);
            sim.run_for(Duration::from_secs(5));
            let (samples, goodput) = sim.measure(Duration::from_secs(20));
            // The model is built from what was delivered: (1 − loss) of the link.
            let w = cruise_window_in_bdps(&samples, &link, 1.5) / (1.0 - loss);
            assert!(
                w > 1.3,
                "loss {loss}: window {w} BDP, {:?}",
                sim.ctl.state()
            );
            let share = goodput / link.bytes_per_sec() / (1.0 - loss);
            assert!(share > 0.93, "loss {loss}: goodput share {share}");
            assert!(
                sim.c.dropped_queue * 1000 <= sim.c.sent_pkts,
                "loss {loss}: {:?}",
                sim.c
            );
        }
    }

    #[test]
    fn a_single_loss_event_leaves_the_window_alone() {
        let link = Link::rural(20_000_000, 100, 0.0);
        let mut sim = Sim::new(link, BdpConfig::default(), 3);
        sim.run_for(Duration::from_secs(5));
        assert_eq!(sim.ctl.mode, Mode::ProbeBw);
        let before = sim.window();
        let now = sim.now;
        sim.ctl
            .lost(now, now - Duration::from_millis(50), false, 3 * MTU);
        assert_eq!(sim.window(), before);
    }

    #[test]
    fn startup_doubles_per_round_then_exits_without_a_big_overshoot() {
        let link = Link::rural(20_000_000, 120, 0.0);
        let mut sim = Sim::new(link, BdpConfig::default(), 5);
        let mut per_round = Vec::new();
        let mut last_round = 0;
        while sim.ctl.mode == Mode::Startup {
            sim.run_for(Duration::from_millis(1));
            let s = sim.ctl.state();
            if s.rounds != last_round {
                last_round = s.rounds;
                per_round.push(s.window);
            }
            assert!(s.rounds < 100, "{per_round:?}");
        }
        let bdp = link.bdp();
        // Growth ≈ ×2 per round while below the BDP.
        // (The first round ends with the first ack.)
        let below: Vec<f64> = per_round[1..]
            .windows(2)
            .filter(|w| (w[1] as f64) < bdp)
            .map(|w| w[1] as f64 / w[0] as f64)
            .collect();
        assert!(below.len() >= 2, "{per_round:?}");
        for g in &below {
            assert!(*g > 1.7, "growth {g} per round: {per_round:?}");
        }
        // Left startup within 3 rounds of reaching the BDP, never above 2.2 BDP.
        let rounds_to_bdp = per_round.iter().position(|w| *w as f64 >= bdp).unwrap();
        assert!(per_round.len() <= rounds_to_bdp + 5, "{per_round:?}");
        let peak = *per_round.iter().max().unwrap() as f64 / bdp;
        assert!(peak <= 2.2, "peak {peak} BDP: {per_round:?}");
        // At most a burst at the peak (one BDP of queue); quinn's BBR lost 35–60 % there.
        assert!(sim.c.dropped_queue * 200 <= sim.c.sent_pkts, "{:?}", sim.c);
        // Then drain and steady state.
        sim.run_for(Duration::from_secs(2));
        assert_eq!(sim.ctl.mode, Mode::ProbeBw);
    }

    #[test]
    fn recovers_from_an_outage_with_a_fresh_small_window() {
        let link = Link::rural(20_000_000, 120, 0.01);
        let mut sim = Sim::new(link, BdpConfig::default(), 9);
        sim.run_for(Duration::from_secs(8));
        let before = sim.window();
        assert!(before as f64 > 1.2 * link.bdp());
        let start = sim.now;
        sim.cut = Some((start, start + Duration::from_secs(5)));
        sim.run_for(Duration::from_secs(5));
        // First moments after the restore: a small window, not the old one.
        let mut first_window = None;
        // (quinn's probe timeouts back off: the first probe after the restore may come late.)
        for _ in 0..10_000 {
            sim.run_for(Duration::from_millis(1));
            if sim.ctl.state().restarts > 0 {
                first_window = Some(sim.window());
                break;
            }
        }
        let first = first_window.expect("no restart after the outage");
        assert!(
            first <= 2 * BdpConfig::default().initial_window,
            "{first} after the outage (was {before})"
        );
        // Back to full speed within a few seconds.
        sim.run_for(Duration::from_secs(4));
        let (samples, goodput) = sim.measure(Duration::from_secs(6));
        let share = goodput / link.bytes_per_sec() / 0.99;
        assert!(share > 0.93, "goodput share {share} after the outage");
        let w = cruise_window_in_bdps(&samples, &link, 1.5);
        assert!(w > 1.3, "window {w} BDP");
    }

    #[test]
    fn a_short_gap_keeps_the_model() {
        let link = Link::rural(20_000_000, 60, 0.0);
        let mut sim = Sim::new(link, BdpConfig::default(), 13);
        sim.run_for(Duration::from_secs(5));
        let start = sim.now;
        sim.cut = Some((start, start + Duration::from_millis(300)));
        sim.run_for(Duration::from_secs(2));
        assert_eq!(sim.ctl.state().restarts, 0);
    }

    #[test]
    fn backs_off_when_its_own_queue_overflows() {
        // A queue of a quarter BDP: a window of 1.5 BDP overflows it every round.
        let mut link = Link::rural(20_000_000, 120, 0.01);
        link.queue_bytes = (link.bdp() / 4.0) as u64;
        let run = |loss_response: bool| {
            let config = BdpConfig {
                loss_response,
                ..BdpConfig::default()
            };
            let mut sim = Sim::new(link, config, 17);
            sim.run_for(Duration::from_secs(5));
            let before = sim.c;
            let (_, goodput) = sim.measure(Duration::from_secs(20));
            let drops = (sim.c.dropped_queue - before.dropped_queue) as f64
                / (sim.c.sent_pkts - before.sent_pkts) as f64;
            (drops, goodput / link.bytes_per_sec(), sim.ctl.state())
        };
        let (drops_on, share_on, s_on) = run(true);
        let (drops_off, share_off, _) = run(false);
        assert!(s_on.congested_rounds > 0, "{s_on:?}");
        assert!(
            drops_on < drops_off / 3.0,
            "queue drops {drops_on} with the response, {drops_off} without"
        );
        assert!(
            share_on > 0.9 && share_on >= share_off - 0.03,
            "{share_on} vs {share_off}"
        );
    }

    #[test]
    fn a_lasting_rise_of_random_loss_becomes_the_background() {
        let link = Link::rural(20_000_000, 120, 0.01);
        let mut sim = Sim::new(link, BdpConfig::default(), 29);
        sim.run_for(Duration::from_secs(8));
        sim.link.loss = 0.10;
        sim.run_for(Duration::from_secs(12));
        let s = sim.ctl.state();
        assert!((0.07..0.13).contains(&s.background_loss), "{s:?}");
        let (samples, goodput) = sim.measure(Duration::from_secs(10));
        let share = goodput / link.bytes_per_sec() / 0.9;
        assert!(share > 0.93, "goodput share {share}, {:?}", sim.ctl.state());
        let w = cruise_window_in_bdps(&samples, &link, 1.5) / 0.9;
        assert!(w > 1.3, "window {w} BDP, {:?}", sim.ctl.state());
    }

    #[test]
    fn app_limited_periods_do_not_lower_the_estimate() {
        let link = Link::rural(20_000_000, 100, 0.0);
        let mut sim = Sim::new(link, BdpConfig::default(), 19);
        sim.run_for(Duration::from_secs(5));
        let bw = sim.ctl.state().btl_bw as f64;
        assert!(bw > 0.9 * link.bytes_per_sec(), "{bw}");
        // The application trickles at a tenth of the link for 5 s.
        sim.app_rate = Some(link.bytes_per_sec() / 10.0);
        sim.run_for(Duration::from_secs(5));
        let after = sim.ctl.state().btl_bw as f64;
        assert!(after >= 0.95 * bw, "estimate fell from {bw} to {after}");
    }

    #[test]
    fn min_rtt_is_refreshed_and_follows_a_longer_path() {
        let link = Link::rural(20_000_000, 80, 0.0);
        let mut sim = Sim::new(link, BdpConfig::default(), 23);
        sim.run_for(Duration::from_secs(25));
        let s = sim.ctl.state();
        assert!(s.probe_rtts >= 1, "{s:?}");
        let r = s.min_rtt.unwrap().as_secs_f64() / 0.080;
        assert!((1.0..1.1).contains(&r), "{s:?}");
        // The path gets longer (a new route): the estimate follows within one filter window.
        sim.link.rtt = Duration::from_millis(160);
        sim.run_for(Duration::from_secs(15));
        let s = sim.ctl.state();
        let r = s.min_rtt.unwrap().as_secs_f64() / 0.160;
        assert!((1.0..1.1).contains(&r), "{s:?}");
    }

    #[test]
    fn the_factory_builds_it_and_quinn_sees_the_window() {
        let c: Box<dyn Controller> = Arc::new(BdpConfig::default()).build(Instant::now(), 1200);
        assert_eq!(c.window(), BdpConfig::default().initial_window);
        assert_eq!(c.initial_window(), BdpConfig::default().initial_window);
        assert!(c.clone_box().into_any().downcast::<Bdp>().is_ok());
    }
}
