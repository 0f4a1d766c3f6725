//! The registry of live, admitted connections: who is connected right now, with which
//! certificate.
//!
//! Admission registers every connection it lets in ([`Connections::register`]) and keeps the
//! returned [`Registered`] for the connection's lifetime; dropping it deregisters. The registry
//! answers how many connections an identity holds ([`Connections::count`]) and closes the
//! connections a reload no longer admits ([`Connections::close_where`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use quinn::VarInt;
use yilian_transport::{CertSerial, PeerIdentity};

/// What the registry needs of a connection: closing it. (quinn's `Connection`; tests use a fake.)
pub(crate) trait Closable {
    fn close(&self, code: VarInt, reason: &[u8]);
}

impl Closable for quinn::Connection {
    fn close(&self, code: VarInt, reason: &[u8]) {
        quinn::Connection::close(self, code, reason);
    }
}

/// One admitted connection.
pub(crate) struct LiveConnection<C> {
    pub peer: Arc<PeerIdentity>,
    pub serial: CertSerial,
    pub conn: C,
}

/// Why a connection is refused or closed.
pub(crate) struct Close {
    /// Application close code (`close.rs`).
    pub code: u32,
    /// What the peer reads.
    pub reason: String,
    /// For the audit log: `revoked`, `unknown-identity`.
    pub outcome: &'static str,
}

/// Live connections by registration number.
pub(crate) struct Connections<C = quinn::Connection> {
    inner: Mutex<Inner<C>>,
}

struct Inner<C> {
    next: u64,
    live: HashMap<u64, Arc<LiveConnection<C>>>,
    /// Live connections per identity name (admission asks on every handshake: no scan).
    per_name: HashMap<String, usize>,
}

impl<C> Default for Connections<C> {
    fn default() -> Self {
        Connections {
            inner: Mutex::new(Inner {
                next: 0,
                live: HashMap::new(),
                per_name: HashMap::new(),
            }),
        }
    }
}

impl<C: Closable> Connections<C> {
    fn lock(&self) -> MutexGuard<'_, Inner<C>> {
        // Nothing here can be left half-updated by a panic: a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register an admitted connection; it stays registered until the guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        peer: Arc<PeerIdentity>,
        serial: CertSerial,
        conn: C,
    ) -> Registered<C> {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        *inner.per_name.entry(peer.name.clone()).or_default() += 1;
        inner
            .live
            .insert(id, Arc::new(LiveConnection { peer, serial, conn }));
        Registered {
            id,
            registry: self.clone(),
        }
    }

    /// How many live connections identity `name` holds.
    pub fn count(&self, name: &str) -> usize {
        self.lock().per_name.get(name).copied().unwrap_or(0)
    }

    /// How many live connections there are.
    pub fn len(&self) -> usize {
        self.lock().live.len()
    }

    /// Close every live connection `decide` returns a [`Close`] for; returns those closed,
    /// with their reasons. `decide` runs without the registry's lock held.
    pub fn close_where(
        &self,
        mut decide: impl FnMut(&LiveConnection<C>) -> Option<Close>,
    ) -> Vec<(Arc<LiveConnection<C>>, Close)> {
        let live: Vec<Arc<LiveConnection<C>>> = self.lock().live.values().cloned().collect();
        let mut closed = Vec::new();
        for c in live {
            if let Some(close) = decide(&c) {
                c.conn
                    .close(VarInt::from_u32(close.code), close.reason.as_bytes());
                closed.push((c, close));
            }
        }
        closed
    }
}

/// Keeps a connection registered; deregisters it when dropped.
pub(crate) struct Registered<C: Closable = quinn::Connection> {
    id: u64,
    registry: Arc<Connections<C>>,
}

impl<C: Closable> Drop for Registered<C> {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(c) = inner.live.remove(&self.id) {
            if let Some(n) = inner.per_name.get_mut(&c.peer.name) {
                *n -= 1;
                if *n == 0 {
                    inner.per_name.remove(&c.peer.name);
                }
            }
        }
    }
}

/// A connection for tests that records how it was closed.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct FakeConnection(pub Mutex<Option<(u32, String)>>);

#[cfg(test)]
impl FakeConnection {
    /// The close code and reason, once closed.
    pub fn closed(&self) -> Option<(u32, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
impl Closable for Arc<FakeConnection> {
    fn close(&self, code: VarInt, reason: &[u8]) {
        let code = u32::try_from(code.into_inner()).unwrap_or(u32::MAX);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((code, String::from_utf8_lossy(reason).into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yilian_transport::Role;

    type Fake = FakeConnection;

    fn peer(name: &str) -> Arc<PeerIdentity> {
        Arc::new(PeerIdentity::new(name, "county", Role::Reader, None).unwrap())
    }

    fn serial(s: &str) -> CertSerial {
        s.parse().unwrap()
    }

    #[test]
    fn counts_follow_registrations_and_their_drops() {
        let reg: Arc<Connections<Arc<Fake>>> = Arc::default();
        let a1 = reg.register(peer("a"), serial("1"), Arc::default());
        let a2 = reg.register(peer("a"), serial("1"), Arc::default());
        let b = reg.register(peer("b"), serial("2"), Arc::default());
        assert_eq!((reg.count("a"), reg.count("b"), reg.count("c")), (2, 1, 0));
        assert_eq!(reg.len(), 3);
        drop(a1);
        assert_eq!(reg.count("a"), 1);
        drop((a2, b));
        assert_eq!(reg.len(), 0);
        assert_eq!((reg.count("a"), reg.count("b")), (0, 0));
        assert!(reg.lock().per_name.is_empty(), "no counter left behind");
    }

    #[test]
    fn close_where_closes_exactly_the_matching_connections_with_their_reason() {
        let reg: Arc<Connections<Arc<Fake>>> = Arc::default();
        let (stolen, other): (Arc<Fake>, Arc<Fake>) = Default::default();
        let _s = reg.register(peer("stolen"), serial("1"), stolen.clone());
        let _o = reg.register(peer("other"), serial("2"), other.clone());
        let closed = reg.close_where(|c| {
            (c.serial == serial("1")).then(|| Close {
                code: 5,
                reason: format!("bye {}", c.peer.name),
                outcome: "revoked",
            })
        });
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0.peer.name, "stolen");
        assert_eq!(stolen.closed(), Some((5, "bye stolen".into())));
        assert_eq!(other.closed(), None);
    }
}
