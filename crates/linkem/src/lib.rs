//! yilian-linkem: seeded, deterministic link emulation (docs to come).
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
pub use netns::{NetnsError, NetnsPair, Side};
pub use spec::{Cut, GilbertElliott, LinkSpec, SpecError};
pub use udp_proxy::{ProxyError, ProxyHandle, UdpProxy};
