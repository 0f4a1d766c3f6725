//! [`LinkControl`]: the two directions of a path, shared between a driver (UDP proxy, TUN
//! router) and whoever steers it (a test, a bench, the CLI).

use crate::model::{Link, LinkStats};
use crate::rng::derive_seed;
use crate::spec::{LinkSpec, SpecError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A direction of a path. *Up* goes from the client (clinic) side to the server (hospital)
/// side: for the UDP proxy, from the listening socket to the upstream; for a namespace pair,
/// from namespace A to namespace B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server, A → B.
    Up,
    /// Server → client, B → A.
    Down,
}

/// The seed a path's `seed` gives to one direction's [`Link`] (so that a model run in a
/// unit test can reproduce exactly what a driver did).
pub fn direction_seed(seed: u64, dir: Direction) -> u64 {
    derive_seed(
        seed,
        match dir {
            Direction::Up => 0x7570,
            Direction::Down => 0x646f_776e,
        },
    )
}

/// Counters of both directions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Client → server (A → B).
    pub up: LinkStats,
    /// Server → client (B → A).
    pub down: LinkStats,
}

impl std::fmt::Display for PathStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "up: {}\ndown: {}", self.up, self.down)
    }
}

/// Cheap, cloneable handle on the two [`Link`]s of a path: cut, restore, change specs, read
/// counters. All times are the real clock (`Instant::now()`); scheduled cuts count from the
/// moment the control was created (the driver's start).
#[derive(Clone, Debug)]
pub struct LinkControl {
    inner: Arc<Links>,
}

#[derive(Debug)]
struct Links {
    up: Mutex<Link>,
    down: Mutex<Link>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LinkControl {
    /// Both directions, seeded from `seed` (see [`direction_seed`]), starting now.
    pub fn new(up: LinkSpec, down: LinkSpec, seed: u64) -> Result<Self, SpecError> {
        let epoch = Instant::now();
        Ok(LinkControl {
            inner: Arc::new(Links {
                up: Mutex::new(Link::with_epoch(
                    up,
                    direction_seed(seed, Direction::Up),
                    epoch,
                )?),
                down: Mutex::new(Link::with_epoch(
                    down,
                    direction_seed(seed, Direction::Down),
                    epoch,
                )?),
            }),
        })
    }

    /// Lock one direction's model (drivers; keep the guard briefly).
    pub fn link(&self, dir: Direction) -> MutexGuard<'_, Link> {
        match dir {
            Direction::Up => lock(&self.inner.up),
            Direction::Down => lock(&self.inner.down),
        }
    }

    fn both(&self, mut f: impl FnMut(&mut Link)) {
        f(&mut self.link(Direction::Up));
        f(&mut self.link(Direction::Down));
    }

    /// Cut both directions now for `duration`; what is queued or in flight is lost too.
    pub fn cut_for(&self, duration: Duration) {
        let now = Instant::now();
        self.both(|l| l.cut_for(now, duration));
    }

    /// Cut both directions now, until [`LinkControl::restore`].
    pub fn cut_now(&self) {
        let now = Instant::now();
        self.both(|l| l.cut(now));
    }

    /// End every cut in force (triggered or scheduled) in both directions.
    pub fn restore(&self) {
        let now = Instant::now();
        self.both(|l| l.restore(now));
    }

    /// Is either direction cut right now?
    pub fn is_cut(&self) -> bool {
        let now = Instant::now();
        self.link(Direction::Up).is_cut(now) || self.link(Direction::Down).is_cut(now)
    }

    /// Replace both specs (both are checked before either changes).
    pub fn set_specs(&self, up: LinkSpec, down: LinkSpec) -> Result<(), SpecError> {
        up.validate()?;
        down.validate()?;
        self.link(Direction::Up).set_spec(up)?;
        self.link(Direction::Down).set_spec(down)
    }

    /// Replace one direction's spec.
    pub fn set_spec(&self, dir: Direction, spec: LinkSpec) -> Result<(), SpecError> {
        self.link(dir).set_spec(spec)
    }

    /// The specs in force (up, down).
    pub fn specs(&self) -> (LinkSpec, LinkSpec) {
        (
            self.link(Direction::Up).spec().clone(),
            self.link(Direction::Down).spec().clone(),
        )
    }

    /// Counters of both directions.
    pub fn stats(&self) -> PathStats {
        PathStats {
            up: self.link(Direction::Up).stats().clone(),
            down: self.link(Direction::Down).stats().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_cuts_and_restores_both_directions() {
        let c = LinkControl::new(LinkSpec::ideal(), LinkSpec::ideal(), 1).unwrap();
        assert!(!c.is_cut());
        c.cut_now();
        assert!(c.is_cut());
        let now = Instant::now();
        assert!(c.link(Direction::Down).offer(now, 10).arrival().is_none());
        c.restore();
        assert!(!c.is_cut());
        assert!(c
            .link(Direction::Up)
            .offer(Instant::now(), 10)
            .arrival()
            .is_some());
        let s = c.stats();
        assert_eq!((s.down.dropped_cut, s.up.delivered), (1, 1));
        assert!(c
            .set_specs(LinkSpec::ideal(), LinkSpec::ideal().with_loss(3.0))
            .is_err());
        assert_eq!(c.specs().1, LinkSpec::ideal());
        assert_ne!(
            direction_seed(1, Direction::Up),
            direction_seed(1, Direction::Down)
        );
    }
}
