//! QUIC transport tuning: congestion controller, flow-control windows, timers, stream limits.
//!
//! The defaults are sized for the links yilian lives on (township uplinks of 2–20 Mbit/s,
//! 50–300 ms RTT, 0.5–5 % loss; figures below were measured with quinn 0.11.12 through an
//! impaired userspace link, as recorded in the project's field notes):
//! - **bdp** ([`crate::congestion`]) by default: yilian's own model-based controller. Through
//!   the link emulator (one-BDP queue) it keeps quinn's BBR goodput within a few percent on the
//!   20–100 Mbit/s × 30–300 ms × 0–10 % matrix (better at 100 Mbit/s, 30 ms; lower on short,
//!   startup-bound 300 ms transfers: 32-packet initial window against BBR's 200), costs nothing
//!   on loopback (1 GiB: 381 vs 385 MB/s, 8 runs), and what QUIC declares lost stays at the
//!   link's own random loss: queue drops ≤ 0.6 % of packets and a standing queue of ≈ ½ BDP.
//!   Measured with `cargo bench --bench congestion` (`-- --full` for the whole matrix,
//!   `-- --loopback` for loopback).
//!   Over the namespace path of `benches/rural_links.rs` it beat BBR in 4 of 5 cells.
//! - **BBR** (quinn's, selectable): held 17.8 Mbit/s (89 %) on 20 Mbit/s, 120 ms, 2 % loss, but
//!   it floods the bottleneck: 13–53 % of the packets it sent were tail-dropped, and the queue
//!   stays full (a full RTT of added delay for everything else on a township uplink).
//! - **CUBIC, NewReno** (selectable) collapse under random loss (0.7–0.8 Mbit/s of 20 at 2 %).
//! - **Windows**: quinn's default 1.25 MB stream window caps one stream at ≈ 100 Mbit/s at
//!   100 ms RTT and cost BBR ≈ 11 % at 2 % loss; 8 MiB per stream and 32 MiB per connection
//!   cover a 300 ms, 100 Mbit/s path for a single large DICOM instance.
//! - **Streams**: 64 bidirectional concurrent streams; quinn's default of 1024 costs ≈ 6× the
//!   RSS per connection for no gain. No unidirectional streams: yilian/1 uses none, and a
//!   stream nobody reads would buffer a peer's data up to the connection window.
//! - **Handshake**: an initial RTT estimate of 100 ms (as Chromium's QUIC) instead of RFC
//!   9002's 333 ms, so a handshake packet lost on a 2 % loss uplink is sent again after 0.3 s,
//!   not 1 s (measured: a lost first Initial cost 1.27 s of a 20 Mbit/s, 120 ms, 2 % run). On a
//!   path slower than 100 ms the only cost is one spurious resend of the 1200-byte Initial.
//! - **Timers**: a 5 s keep-alive keeps NAT bindings on township routers open and notices a
//!   dead link quickly; 60 s idle timeout survives short outages without holding dead peers.
//!   QUIC's own probes back off (doubling) during an outage, so every controller is wrapped in
//!   [`crate::revive`] and [`Tuning::revive`] starts its per-connection nudge: a link that
//!   comes back is noticed within about a second.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use quinn::congestion::{BbrConfig, ControllerFactory, CubicConfig, NewRenoConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use serde::{Deserialize, Serialize};

use crate::congestion::BdpConfig;
use crate::revive::ReviveFactory;
use crate::uplink::UplinkYield;

/// Congestion controller of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    /// quinn's BBR: keeps throughput on lossy links but floods the bottleneck queue (13–53 %
    /// of its packets tail-dropped at a one-BDP queue, measured; BENCHMARKING.md).
    Bbr,
    /// CUBIC: loss-based, gentle on shared queues, collapses on lossy links.
    Cubic,
    /// NewReno: the classic loss-based controller.
    NewReno,
    /// yilian's own model-based controller ([`crate::congestion`]): BBR-like bandwidth × min
    /// RTT model, window 1.5 BDP, ignores random loss, backs off on queue-overflow loss,
    /// restarts small after an outage. The default: same goodput as BBR on the rural matrix
    /// and on loopback, without flooding a shared township uplink (BENCHMARKING.md).
    #[default]
    Bdp,
}

impl Congestion {
    /// Every controller, in a stable order.
    pub const ALL: [Congestion; 4] = [
        Congestion::Bbr,
        Congestion::Cubic,
        Congestion::NewReno,
        Congestion::Bdp,
    ];

    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Congestion::Bbr => "bbr",
            Congestion::Cubic => "cubic",
            Congestion::NewReno => "newreno",
            Congestion::Bdp => "bdp",
        }
    }

    /// The quinn controller factory for this choice.
    pub fn controller_factory(self) -> Arc<dyn ControllerFactory + Send + Sync + 'static> {
        match self {
            Congestion::Bbr => Arc::new(BbrConfig::default()),
            Congestion::Cubic => Arc::new(CubicConfig::default()),
            Congestion::NewReno => Arc::new(NewRenoConfig::default()),
            Congestion::Bdp => Arc::new(BdpConfig::default()),
        }
    }
}

impl fmt::Display for Congestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown congestion controller name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown congestion controller \"{0}\" (expected bbr, cubic, newreno or bdp)")]
pub struct ParseCongestionError(pub String);

impl FromStr for Congestion {
    type Err = ParseCongestionError;

    /// `bbr`, `cubic`, `newreno` (also `new-reno`), `bdp`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "bbr" => Ok(Congestion::Bbr),
            "cubic" => Ok(Congestion::Cubic),
            "newreno" | "new-reno" => Ok(Congestion::NewReno),
            "bdp" => Ok(Congestion::Bdp),
            _ => Err(ParseCongestionError(s.to_string())),
        }
    }
}

/// Transport parameters of every yilian connection (both sides use the same values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Congestion controller.
    pub congestion: Congestion,
    /// Bytes one stream may have in flight towards us (flow-control window per stream).
    pub stream_receive_window: u64,
    /// Bytes all streams of a connection may have in flight towards us.
    pub receive_window: u64,
    /// Bytes we buffer for sending across all streams of a connection.
    pub send_window: u64,
    /// Keep-alive interval; `Duration::ZERO` disables keep-alives.
    pub keep_alive: Duration,
    /// Idle timeout (the lower of both sides' values applies); `Duration::ZERO` means never.
    pub idle_timeout: Duration,
    /// Concurrent bidirectional streams the peer may open.
    pub max_concurrent_bidi_streams: u32,
    /// Concurrent unidirectional streams the peer may open.
    pub max_concurrent_uni_streams: u32,
    /// Initial RTT estimate before the first sample (default 100 ms, as Chromium's QUIC;
    /// quinn's own 333 ms when `None`). A lost handshake packet is sent again after three
    /// times this.
    pub initial_rtt: Option<Duration>,
    /// UDP socket receive and send buffer, bytes. The kernel default (≈ 208 KiB) drops
    /// datagrams at a few hundred MB/s, which QUIC then retransmits (measured: 45 % of a
    /// relay's datagrams on loopback). Capped by `net.core.rmem_max`/`wmem_max` unless the
    /// process may force it (root); raise those sysctls on relays.
    pub udp_buffer: usize,
    /// The endpoint's uplink yield order, obeyed by `bdp` connections ([`crate::uplink`]); the
    /// client sets it when its relay says so.
    pub uplink: UplinkYield,
}

const MIB: u64 = 1024 * 1024;

/// Default initial RTT estimate; see the module docs.
const INITIAL_RTT: Duration = Duration::from_millis(100);

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            congestion: Congestion::Bdp,
            stream_receive_window: 8 * MIB,
            receive_window: 32 * MIB,
            send_window: 16 * MIB,
            keep_alive: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_concurrent_bidi_streams: 64,
            max_concurrent_uni_streams: 0,
            initial_rtt: Some(INITIAL_RTT),
            udp_buffer: 4 * MIB as usize,
            uplink: UplinkYield::default(),
        }
    }
}

impl Tuning {
    /// The quinn transport configuration; out-of-range values are clamped to QUIC's limits.
    pub fn transport_config(&self) -> TransportConfig {
        let varint = |v: u64| VarInt::from_u64(v).unwrap_or(VarInt::MAX);
        let mut cfg = TransportConfig::default();
        let controller: Arc<dyn ControllerFactory + Send + Sync> = match self.congestion {
            Congestion::Bdp => Arc::new(BdpConfig {
                uplink: self.uplink.clone(),
                ..BdpConfig::default()
            }),
            other => other.controller_factory(),
        };
        cfg.congestion_controller_factory(Arc::new(ReviveFactory::new(controller)))
            .stream_receive_window(varint(self.stream_receive_window))
            .receive_window(varint(self.receive_window))
            .send_window(self.send_window)
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_concurrent_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_concurrent_uni_streams))
            .keep_alive_interval((!self.keep_alive.is_zero()).then_some(self.keep_alive))
            .max_idle_timeout(idle_timeout(self.idle_timeout));
        if let Some(rtt) = self.initial_rtt {
            cfg.initial_rtt(rtt);
        }
        cfg
    }

    /// Start the task that revives `conn` when a cut link heals ([`crate::revive`]): every
    /// connection made with [`Tuning::transport_config`] should have one. It ends with the
    /// connection.
    pub fn revive(&self, conn: &quinn::Connection) {
        crate::revive::nudge(conn, self.receive_window);
    }
}

fn idle_timeout(d: Duration) -> Option<IdleTimeout> {
    if d.is_zero() {
        return None;
    }
    // IdleTimeout is milliseconds in a VarInt; clamp anything longer.
    Some(IdleTimeout::try_from(d).unwrap_or_else(|_| IdleTimeout::from(VarInt::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn congestion_names_round_trip() {
        for c in Congestion::ALL {
            assert_eq!(c.to_string().parse::<Congestion>().unwrap(), c);
        }
        assert_eq!("BBR".parse::<Congestion>().unwrap(), Congestion::Bbr);
        assert_eq!(
            "new-reno".parse::<Congestion>().unwrap(),
            Congestion::NewReno
        );
        let err = "vegas".parse::<Congestion>().unwrap_err();
        assert!(err.to_string().contains("vegas"));
        assert_eq!(Congestion::default(), Congestion::Bdp);
    }

    #[test]
    fn huge_values_are_clamped_not_panicking() {
        let t = Tuning {
            stream_receive_window: u64::MAX,
            receive_window: u64::MAX,
            idle_timeout: Duration::from_secs(u64::MAX / 2),
            keep_alive: Duration::ZERO,
            ..Tuning::default()
        };
        let _ = t.transport_config();
    }
}
