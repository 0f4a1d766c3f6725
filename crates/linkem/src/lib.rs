//! # yilian-linkem: a seeded, deterministic link emulator for tests and benches
//!
//! yilian carries DICOM studies from township clinics to county hospitals over uplinks of
//! 2–20 Mbit/s, 50–300 ms round trip and 0.5–5 % loss that go down for minutes. This kernel has
//! no `netem`, so the impairments are emulated in userspace by this crate: one model, two
//! drivers.
//!
//! ## The model (sans-IO)
//!
//! [`Link`] is one direction of a path. It is fed `offer(now, len)` and answers
//! [`Verdict::Deliver`]`{ at }` or [`Verdict::Dropped`]`(`[`DropReason`]`)`; the caller keeps the
//! packet in a [`DelayLine`] until `at`. It never reads a clock, sleeps or touches a socket,
//! so unit tests drive it with a virtual clock and run in microseconds. A packet goes through,
//! in order:
//!
//! 1. **cut** — if the link is down, the packet is dropped ([`DropReason::Cut`]);
//! 2. **bottleneck queue** — with a rate cap, the bytes not yet serialised (this packet
//!    included) may not exceed [`LinkSpec::queue_bytes`]: tail drop ([`DropReason::QueueFull`]);
//! 3. **serialisation** — it leaves the queue at `max(now, previous departure) + len·8/rate`;
//! 4. **loss on the medium** — random loss with [`LinkSpec::loss`], then the Gilbert–Elliott
//!    chain of [`LinkSpec::burst`] (bursty loss: Good/Bad states, one step per packet); a lost
//!    packet still used its serialisation time, as on a radio link ([`DropReason::Loss`]);
//! 5. **propagation** — `+ delay ± jitter` (uniform); a packet never overtakes the previous
//!    one (its arrival is clamped to the previous arrival), as on a real link;
//! 6. **reordering** — with probability [`LinkSpec::reorder`] it is held back
//!    [`LinkSpec::reorder_delay`] more, outside the FIFO clamp, so later packets overtake it;
//! 7. **cut during its time in the link** — if a cut window meets `[offered, arrival)`, it is
//!    lost too: a cut loses what is queued and in flight. Cuts are scheduled
//!    ([`LinkSpec::cuts`], offsets from the link's start) or triggered now
//!    ([`Link::cut_for`], [`Link::cut`] / [`Link::restore`]); for a triggered cut, drivers call
//!    [`Link::confirm_delivery`] when a packet is due. After a cut the link starts idle.
//!
//! [`LinkStats`] counts offered, delivered and dropped packets by reason, bytes, reordered
//! packets, the longest queueing delay, the largest backlog and the largest packet.
//! [`LinkSpec::rural`] builds a typical direction (one-way delay = RTT/2, queue of one
//! bandwidth-delay product); builder methods add the rest; [`LinkSpec`] deserialises from
//! human forms (`"20mbit"`, `"256KiB"`, `"2%"`, `"120ms"`).
//!
//! ## Determinism
//!
//! A [`Link`] is a pure function of its spec, its seed and the sequence of `(time, length)`
//! it is offered: same inputs, same verdicts, on every machine ([`rng::Rng`] is an in-crate
//! xoshiro256++, pinned by a test). Each impairment draws from its own stream of the seed, so
//! the *n*-th packet that reaches the medium gets the same loss decision whatever the jitter,
//! reordering or delay settings — QUIC and TCP runs "over the same path" with the same seed
//! see the same loss pattern per packet. The drivers run on the real clock, so where a verdict
//! depends on timing (queue drops, cuts) it depends on the traffic's real timing; without
//! queue drops or cuts, which packets are lost depends only on their count (the proxy test
//! checks this against the pure model). [`direction_seed`] gives each direction's seed.
//!
//! ## The drivers
//!
//! * [`UdpProxy`] (tokio, loopback only): clients send to [`ProxyHandle::local_addr`]; each
//!   client source address gets its own upstream-facing socket; one delay line per direction,
//!   drained by one task that sleeps until the earliest due packet. Control:
//!   [`ProxyHandle::cut_for`], `cut_now`/`restore`, `set_specs`, `stats`, and
//!   [`ProxyHandle::rebind`] (NAT rebinding: new upstream-facing port mid-flow; QUIC must
//!   migrate). For QUIC tests and benches.
//! * [`NetnsPair`] (root, `/dev/net/tun`): two network namespaces, a TUN device `lnk0` in each
//!   (created in the root namespace, then moved), point-to-point addresses
//!   `10.201.N.1 ↔ 10.201.N.2`, and a router thread ([`tun_router`]) that moves IP packets
//!   between the two TUN fds through the two links (up = A → B). Any program runs on either
//!   side ([`NetnsPair::command_a`], [`NetnsPair::run_in`] for in-process sockets), so TCP
//!   (DCMTK) and QUIC (yilian) can be compared on the *same* impaired path. TCP congestion
//!   control is chosen per namespace (default `cubic`; the host's
//!   `tcp_allowed_congestion_control` is extended as needed) and `tcp_no_metrics_save=1`.
//!   Namespaces are deleted on drop; stale ones of dead processes are cleaned up.
//!
//! Both share [`LinkControl`] (cut, restore, specs, [`PathStats`]). The `yilian-linkem`
//! binary puts either on the command line (`--help` explains every impairment and typical
//! township links).
//!
//! ## Performance and memory
//!
//! Measured here (2 cores, release build): the proxy forwards 95 Mbit/s of 1200-byte datagrams
//! through a 100 Mbit/s link with 40 ms or 300 ms RTT at about 17–20 % of one core; the
//! router carries a TCP (BBR) transfer at 94 Mbit/s goodput over a 100 Mbit/s, 40 ms path at
//! about 27 % of one core (including the kernel's receive work, which runs in the router
//! thread when it writes a packet to the TUN device). Memory is bounded by the configured
//! queue plus the in-flight delay line (about `rate × (delay + jitter + reorder_delay)`): a
//! 100 Mbit/s × 300 ms path (3.75 MB queue + 3.75 MB in flight) ran at 12 MB RSS. With no
//! rate cap, the delay line holds what the sender pushes during one delay.
//!
//! ## What is not modelled
//!
//! Fair queueing or AQM at the bottleneck (it is one FIFO with tail drop); link-layer
//! retransmission (4G HARQ/RLC turns loss into delay — approximate with jitter); duplication
//! and corruption; rate changes over time other than through `set_specs`; ICMP errors for
//! dropped packets; MTU and fragmentation. The proxy's rate and queue count UDP payload bytes
//! (the router counts whole IP packets: 28 bytes more per datagram). The proxy delivers up to
//! about 1 ms late (tokio's timer), never early; the router uses nanosecond `ppoll` timeouts.
//!
//! ## Example (the model alone)
//!
//! ```
//! use std::time::{Duration, Instant};
//! use yilian_linkem::{DropReason, Link, LinkSpec, Verdict};
//!
//! // 8 Mbit/s (1 byte/µs), 20 ms one way, room for 3000 bytes in the queue.
//! let spec = LinkSpec::ideal()
//!     .with_rate(8_000_000)
//!     .with_queue_bytes(3000)
//!     .with_delay(Duration::from_millis(20));
//! let mut link = Link::new(spec, 42)?;
//! let t0 = Instant::now(); // a virtual clock: only offsets from t0 matter
//! let ms = Duration::from_millis;
//! assert_eq!(link.offer(t0, 1000), Verdict::Deliver { at: t0 + ms(21) });
//! assert_eq!(link.offer(t0, 1000), Verdict::Deliver { at: t0 + ms(22) });
//! assert_eq!(link.offer(t0, 1000), Verdict::Deliver { at: t0 + ms(23) });
//! assert_eq!(link.offer(t0, 1000), Verdict::Dropped(DropReason::QueueFull));
//! # Ok::<(), yilian_linkem::SpecError>(())
//! ```
//!
//! ## Example (a QUIC test through the proxy)
//!
//! ```no_run
//! # async fn f(server: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use yilian_linkem::{LinkSpec, UdpProxy};
//!
//! let link = LinkSpec::rural(20_000_000, Duration::from_millis(120), 0.02);
//! let proxy = UdpProxy::start("127.0.0.1:0".parse()?, server, link.clone(), link, 7).await?;
//! // connect the QUIC client to proxy.local_addr() instead of `server`, then:
//! proxy.cut_for(Duration::from_secs(30)); // the uplink drops for 30 s
//! proxy.rebind()?; // the clinic's NAT gives it a new port
//! println!("{}", proxy.stats());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod control;
pub mod model;
pub mod netns;
pub mod rng;
pub mod spec;
pub mod tun_router;
pub mod udp_proxy;

pub use control::{direction_seed, Direction, LinkControl, PathStats};
pub use model::{DelayLine, DropReason, Link, LinkStats, Verdict};
pub use netns::{NetnsBuilder, NetnsError, NetnsPair, Side};
pub use spec::{Cut, GilbertElliott, LinkSpec, SpecError};
pub use udp_proxy::{ProxyError, ProxyHandle, UdpProxy};
