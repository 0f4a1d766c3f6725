//! yilian-linkem: seeded, deterministic link emulation (docs to come).
#![warn(missing_docs)]

pub mod model;
pub mod rng;
pub mod spec;

pub use model::{DelayLine, DropReason, Link, LinkStats, Verdict};
pub use spec::{Cut, GilbertElliott, LinkSpec, SpecError};
