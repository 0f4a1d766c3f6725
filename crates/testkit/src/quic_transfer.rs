//! One QUIC transfer over a chosen path, measured: the harness behind the congestion-control
//! tests (`crates/transport/tests/congestion_links.rs`) and the congestion bench
//! (`benches/congestion.rs`).
//!
//! [`transfer`] opens one quinn connection between real yilian endpoints on 127.0.0.1 (mutual
//! TLS from a throw-away [`Pki`], the [`Tuning`] of a [`Controller`]) and sends one stream of
//! bytes from memory, client → server (a township device uploading to the relay), either
//! directly ([`LinkPath::Loopback`]) or through the seeded UDP link emulator
//! [`yilian_linkem::UdpProxy`] ([`LinkPath::Emulated`], optionally with a cut of both
//! directions). The server compares every chunk with the payload as it arrives and answers one
//! byte (identical or not); the [`Outcome`] holds what arrived, how long it took, what QUIC
//! declared lost, the emulator's counters and, for `bdp`, the controller's final state.
//! Both ends run as the product's do: the controller wrapped in `yilian_transport::revive` and
//! a revive nudge on each connection.
//!
//! Nothing here asserts: the callers decide what a property or a measurement is. Setup
//! failures (endpoints, certificates, the emulator) panic with a message — this is test
//! support.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use yilian_testkit::quic_transfer::{payload, rural, transfer, Controller, LinkPath, Pki};
//! use yilian_transport::Congestion;
//!
//! let pki = Pki::generate("demo");
//! let (up, down) = rural(20, 120, 0.02); // 20 Mbit/s, 120 ms RTT, 2 % loss each way
//! let path = LinkPath::Emulated { up, down, seed: 1, cut: None };
//! let out = transfer(
//!     &pki,
//!     &Controller::named(Congestion::Bdp),
//!     path,
//!     payload(8 << 20, 1),
//!     Duration::from_secs(60),
//! )
//! .await;
//! println!("{:.1} Mbit/s, {:.1} % lost", out.mbit_per_s(), 100.0 * out.lost_ratio());
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use yilian_linkem::{LinkSpec, PathStats, UdpProxy};
use yilian_transport::revive::ReviveFactory;
use yilian_transport::{
    client_config, client_endpoint, connect, server_endpoint, Bdp, BdpConfig, BdpState, Congestion,
    DevCa, PeerIdentity, Role, TlsPem, Tuning,
};

/// A congestion controller under test: one of the named ones, or `bdp` with other parameters,
/// optionally with another stream receive window.
#[derive(Clone, Debug)]
pub struct Controller {
    /// How tables and summaries name it (`bbr`, `bdp`, `bdp:gain=2.0`, …).
    pub label: String,
    /// The controller selected in [`Tuning`].
    pub congestion: Congestion,
    /// `bdp` with these parameters instead of the defaults (client side only).
    pub bdp: Option<BdpConfig>,
    /// Stream receive window in bytes instead of [`Tuning`]'s default; the connection's
    /// receive and send windows become twice that.
    pub stream_window: Option<u64>,
}

impl Controller {
    /// A named controller with its default parameters.
    pub fn named(c: Congestion) -> Controller {
        Controller {
            label: c.to_string(),
            congestion: c,
            bdp: None,
            stream_window: None,
        }
    }

    /// `bbr`, `bdp`, `cubic`, `newreno`, `bdp:gain=G` (a `bdp` with window gain G), or
    /// `bdp:yield[=G]` (a `bdp` whose uplink yield order the caller holds while it matters,
    /// [`Controller::uplink`]; G its yield gain, default the product's).
    pub fn parse(s: &str) -> Result<Controller, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("bdp:yield") {
            let mut bdp = BdpConfig::default();
            if let Some(g) = rest.strip_prefix('=') {
                bdp.yield_gain = g
                    .parse()
                    .ok()
                    .filter(|g: &f64| g.is_finite() && *g > 0.0)
                    .ok_or_else(|| format!("{s:?}: expected bdp:yield=<positive number>"))?;
            } else if !rest.is_empty() {
                return Err(format!("{s:?}: expected bdp:yield or bdp:yield=G"));
            }
            return Ok(Controller {
                label: s.to_string(),
                congestion: Congestion::Bdp,
                bdp: Some(bdp),
                stream_window: None,
            });
        }
        if let Some(rest) = s.strip_prefix("bdp:gain=") {
            let gain: f64 = rest
                .parse()
                .ok()
                .filter(|g: &f64| g.is_finite() && *g > 0.0)
                .ok_or_else(|| format!("{s:?}: expected bdp:gain=<positive number>"))?;
            return Ok(Controller {
                label: s.to_string(),
                congestion: Congestion::Bdp,
                bdp: Some(BdpConfig {
                    cwnd_gain: gain,
                    ..BdpConfig::default()
                }),
                stream_window: None,
            });
        }
        let c: Congestion = s
            .parse()
            .map_err(|e| format!("{s:?}: {e} (expected bbr, bdp, cubic, newreno or bdp:gain=G)"))?;
        Ok(Controller::named(c))
    }

    /// The uplink yield order of a `bdp:yield` controller (the relay's order, which a bench
    /// holds itself while an urgent flow shares the link).
    pub fn uplink(&self) -> Option<&yilian_transport::UplinkYield> {
        self.bdp
            .as_ref()
            .filter(|_| self.label.starts_with("bdp:yield"))
            .map(|b| &b.uplink)
    }

    /// The same controller with a stream receive window of `bytes`.
    pub fn with_stream_window(mut self, bytes: u64) -> Controller {
        self.stream_window = Some(bytes);
        self
    }

    /// The default tuning with this controller (and stream window, if set).
    pub fn tuning(&self) -> Tuning {
        let mut t = Tuning {
            congestion: self.congestion,
            ..Tuning::default()
        };
        if let Some(window) = self.stream_window {
            t.stream_receive_window = window;
            t.receive_window = 2 * window;
            t.send_window = 2 * window;
        }
        t
    }
}

/// What one transfer gave.
#[derive(Debug)]
pub struct Outcome {
    /// Bytes that reached the receiver (all of them unless cut off by the timeout).
    pub received: u64,
    /// Seconds from the stream's first byte to the receiver's answer (or the timeout).
    pub secs: f64,
    /// The whole payload arrived and was identical.
    pub identical: bool,
    /// Stopped by the per-run timeout.
    pub timed_out: bool,
    /// Bytes QUIC declared lost, sender side.
    pub lost_bytes: u64,
    /// UDP bytes sent, sender side.
    pub sent_bytes: u64,
    /// The sender's smoothed RTT at the end (the standing queue shows here).
    pub srtt: Duration,
    /// Emulator counters (`None` on [`LinkPath::Loopback`]).
    pub link: Option<PathStats>,
    /// The sender's controller at the end, if it is `bdp`.
    pub bdp: Option<BdpState>,
}

impl Outcome {
    /// Goodput: received payload bits per second, in Mbit/s.
    pub fn mbit_per_s(&self) -> f64 {
        self.received as f64 * 8.0 / 1e6 / self.secs
    }

    /// Bytes QUIC declared lost / UDP bytes sent, sender side.
    pub fn lost_ratio(&self) -> f64 {
        self.lost_bytes as f64 / self.sent_bytes.max(1) as f64
    }
}

/// Deterministic payload of `len` bytes (xorshift; QUIC encrypts it anyway, the content only
/// matters for the comparison at the receiver).
pub fn payload(len: usize, seed: u64) -> Arc<Vec<u8>> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Arc::new(v)
}

/// TLS material for both ends, issued by one throw-away development CA.
pub struct Pki {
    /// The relay (`county-relay`, valid for 127.0.0.1).
    pub server: TlsPem,
    /// A township device (`township-a-dr`).
    pub client: TlsPem,
}

impl Pki {
    /// A fresh CA named after `alliance`, and a relay and a device certificate valid from an
    /// hour ago for 30 days.
    pub fn generate(alliance: &str) -> Pki {
        let ca = DevCa::generate(alliance).expect("generate a development CA");
        let now = OffsetDateTime::now_utc();
        let issue = |id: PeerIdentity, dns: &[String]| {
            let (cert, key) = ca
                .issue(
                    &id,
                    dns,
                    now - time::Duration::hours(1),
                    now + time::Duration::days(30),
                )
                .expect("issue a development certificate");
            TlsPem {
                cert,
                key,
                ca: ca.ca_pem(),
            }
        };
        let relay = PeerIdentity::new("county-relay", "county", Role::Relay, None)
            .expect("a valid relay identity");
        let device = PeerIdentity::new("township-a-dr", "township-a", Role::Device, None)
            .expect("a valid device identity");
        Pki {
            server: issue(relay, &["127.0.0.1".to_string()]),
            client: issue(device, &[]),
        }
    }
}

/// What the path between client and server does.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // built a handful of times per run
pub enum LinkPath {
    /// Straight over 127.0.0.1, no emulator.
    Loopback,
    /// Through a [`UdpProxy`] with these link models.
    Emulated {
        /// Client → server.
        up: LinkSpec,
        /// Server → client.
        down: LinkSpec,
        /// Seed of the link model (same seed, same impairments).
        seed: u64,
        /// Cut both directions this long after the stream started, for this long.
        cut: Option<(Duration, Duration)>,
    },
}

/// The same rural link both ways: `rate_mbit` Mbit/s, `rtt_ms` ms round trip, random loss
/// `loss` (a fraction, 0.02 = 2 %) each way, a one-BDP tail-drop queue ([`LinkSpec::rural`]).
pub fn rural(rate_mbit: u64, rtt_ms: u64, loss: f64) -> (LinkSpec, LinkSpec) {
    let spec = LinkSpec::rural(rate_mbit * 1_000_000, Duration::from_millis(rtt_ms), loss);
    (spec.clone(), spec)
}

/// One connection, one stream of `data` from the client (a township device uploading) to the
/// server (the relay), through `path`; the sending side gives up after `timeout`
/// ([`Outcome::timed_out`]). Call it inside a multi-threaded tokio runtime.
pub async fn transfer(
    pki: &Pki,
    controller: &Controller,
    path: LinkPath,
    data: Arc<Vec<u8>>,
    timeout: Duration,
) -> Outcome {
    let tuning = controller.tuning();
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    let server = server_endpoint(any_port, &pki.server, &tuning).expect("bind the server endpoint");
    let server_addr = server
        .local_addr()
        .expect("the server endpoint's local address");
    let mut client =
        client_endpoint(&pki.client, &tuning, false).expect("bind the client endpoint");
    if let Some(bdp) = &controller.bdp {
        let mut transport = tuning.transport_config();
        // Wrapped like every product connection's controller (`Tuning::transport_config`).
        transport
            .congestion_controller_factory(Arc::new(ReviveFactory::new(Arc::new(bdp.clone()))));
        let mut config = client_config(&pki.client, &tuning).expect("the client configuration");
        config.transport_config(Arc::new(transport));
        client.set_default_client_config(config);
    }
    let (proxy, target, cut) = match path {
        LinkPath::Loopback => (None, server_addr, None),
        LinkPath::Emulated {
            up,
            down,
            seed,
            cut,
        } => {
            let proxy = UdpProxy::start(any_port, server_addr, up, down, seed)
                .await
                .expect("start the link emulator");
            let addr = proxy.local_addr();
            (Some(proxy), addr, cut)
        }
    };

    // The receiver: counts as it goes (for a cut-off run), compares at the end, answers 1 byte.
    let received = Arc::new(AtomicU64::new(0));
    let expected = data.clone();
    let counter = received.clone();
    let server_tuning = tuning.clone();
    let receiver = tokio::spawn(async move {
        let incoming = server.accept().await.ok_or("the server endpoint closed")?;
        let (conn, _) = yilian_transport::accept(incoming)
            .await
            .map_err(|e| format!("accept: {e}"))?;
        server_tuning.revive(&conn);
        let (mut send, mut recv) = conn
            .accept_bi()
            .await
            .map_err(|e| format!("accept the stream: {e}"))?;
        // Ordered reads: compare each chunk where it belongs (no copy of the whole stream).
        let (mut at, mut identical) = (0usize, true);
        while let Some(chunk) = recv
            .read_chunk(usize::MAX, true)
            .await
            .map_err(|e| format!("read: {e}"))?
        {
            let n = chunk.bytes.len();
            counter.fetch_add(n as u64, Ordering::Relaxed);
            identical &= expected.get(at..at + n) == Some(&chunk.bytes[..]);
            at += n;
        }
        identical &= at == expected.len();
        send.write_all(&[identical as u8])
            .await
            .map_err(|e| format!("answer: {e}"))?;
        send.finish().map_err(|e| format!("finish: {e}"))?;
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
        server.wait_idle().await;
        Ok::<(), String>(())
    });

    let (conn, _) = connect(&client, &target.to_string())
        .await
        .expect("connect to the server");
    tuning.revive(&conn);
    let start = Instant::now();
    if let (Some(proxy), Some((after, length))) = (&proxy, cut) {
        let handle = proxy.handle();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            handle.cut_for(length);
        });
    }
    let sending = {
        let conn = conn.clone();
        async move {
            let (mut send, mut recv) = conn.open_bi().await.expect("open the stream");
            send.write_all(&data).await.expect("send the payload");
            send.finish().expect("finish the stream");
            let answer = recv.read_to_end(1).await.expect("the receiver's answer");
            answer == [1]
        }
    };
    let (identical, timed_out) = match tokio::time::timeout(timeout, sending).await {
        Ok(identical) => (identical, false),
        Err(_) => (false, true),
    };
    let secs = start.elapsed().as_secs_f64();
    let stats = conn.stats();
    let bdp = conn
        .congestion_state()
        .into_any()
        .downcast::<Bdp>()
        .ok()
        .map(|b| b.state());
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    if timed_out {
        receiver.abort();
    } else {
        receiver
            .await
            .expect("the receiver task")
            .unwrap_or_else(|e| panic!("the receiver failed: {e}"));
    }
    let link = proxy.as_ref().map(|p| p.stats());
    if let Some(p) = proxy {
        p.shutdown();
    }
    Outcome {
        received: received.load(Ordering::Relaxed),
        secs,
        identical,
        timed_out,
        lost_bytes: stats.path.lost_bytes,
        sent_bytes: stats.udp_tx.bytes,
        srtt: stats.path.rtt,
        link,
        bdp,
    }
}
