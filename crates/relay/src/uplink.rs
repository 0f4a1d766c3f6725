//! Uplink yield orders: while a site has an urgent ECG live, its uploads keep the township
//! uplink's queue empty.
//!
//! A CT upload fills the township's uplink, and its controller keeps a standing queue at the
//! bottleneck that every ECG packet waits in (measured in `benches/ecg_transport.rs`: no ECG
//! transport meets its latency budget behind it). The relay is the one place that sees both
//! the cart's urgent session and the site's uploads, so it tells every connection of that site
//! with an upload open to yield: a [`RelayDatagram::YieldUplink`] lease of [`LEASE`], renewed
//! every [`RENEW`] by [`Uplinks::renew`] while the urgent session lives, and ended with a
//! zero lease when the last urgent session of the site closes. The sender's `bdp` controller
//! then cruises below the path's BDP (`yilian_transport::uplink`): the queue empties and the
//! upload keeps most of the rate. Uploads are not held: an urgent ECG must not stall a stroke
//! CT from the same township.
//!
//! Only connections with an upload open are told (a reader or a cart does not read them, and
//! unread datagrams would sit in its receive buffer); an upload that opens during an urgent
//! session is told at once. Lost datagrams only end an order early (the lease lapses), never
//! keep a site slowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use yilian_proto::RelayDatagram;

/// How long one order holds at the sender.
pub(crate) const LEASE: Duration = Duration::from_secs(2);

/// How often orders are renewed while a site's urgent session lives (3 renewals per lease: two
/// lost datagrams in a row do not end it).
pub(crate) const RENEW: Duration = Duration::from_millis(500);

/// What the registry needs of a connection: sending it a datagram. (quinn's `Connection`;
/// tests use a fake.)
pub(crate) trait Datagrams {
    /// Send `bytes` as an unreliable datagram; `false` if the connection cannot take it.
    fn send_datagram(&self, bytes: &[u8]) -> bool;
}

impl Datagrams for quinn::Connection {
    fn send_datagram(&self, bytes: &[u8]) -> bool {
        match quinn::Connection::send_datagram(self, bytes.to_vec().into()) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("uplink order not sent: {e}");
                false
            }
        }
    }
}

/// Live urgent sessions per site, and the connections with uploads open.
pub(crate) struct Uplinks<C = quinn::Connection> {
    inner: Mutex<Inner<C>>,
}

struct Inner<C> {
    /// Urgent live ECG sessions per site.
    urgent: HashMap<String, usize>,
    /// Connections with at least one upload open, by connection number.
    uploading: HashMap<u64, Uploader<C>>,
}

struct Uploader<C> {
    site: String,
    conn: C,
    uploads: usize,
}

impl<C> Default for Uplinks<C> {
    fn default() -> Self {
        Uplinks {
            inner: Mutex::new(Inner {
                urgent: HashMap::new(),
                uploading: HashMap::new(),
            }),
        }
    }
}

fn order(lease: Duration) -> Vec<u8> {
    let millis = u32::try_from(lease.as_millis()).unwrap_or(u32::MAX);
    RelayDatagram::YieldUplink { millis }.encode()
}

impl<C: Datagrams + Clone> Uplinks<C> {
    fn lock(&self) -> MutexGuard<'_, Inner<C>> {
        // Counters only: a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell the uploading connections of `site` (outside the lock).
    fn tell_site(&self, site: &str, lease: Duration) -> usize {
        let conns: Vec<C> = self
            .lock()
            .uploading
            .values()
            .filter(|u| u.site == site)
            .map(|u| u.conn.clone())
            .collect();
        let bytes = order(lease);
        conns.iter().filter(|c| c.send_datagram(&bytes)).count()
    }

    /// An urgent ECG session of `site` is live until the guard is dropped.
    pub fn urgent_live(self: &Arc<Self>, site: &str) -> UrgentLive<C> {
        let first = {
            let mut inner = self.lock();
            let n = inner.urgent.entry(site.to_string()).or_default();
            *n += 1;
            *n == 1
        };
        if first {
            let told = self.tell_site(site, LEASE);
            tracing::info!(
                site,
                uploading_connections = told,
                "urgent ECG live: the site's uploads yield the uplink"
            );
        }
        UrgentLive {
            site: site.to_string(),
            registry: self.clone(),
        }
    }

    /// Connection `conn_id` of `site` has an upload open until the guard is dropped.
    pub fn uploading(self: &Arc<Self>, conn_id: u64, site: &str, conn: C) -> Uploading<C> {
        let urgent = {
            let mut inner = self.lock();
            inner
                .uploading
                .entry(conn_id)
                .or_insert_with(|| Uploader {
                    site: site.to_string(),
                    conn: conn.clone(),
                    uploads: 0,
                })
                .uploads += 1;
            inner.urgent.contains_key(site)
        };
        if urgent {
            conn.send_datagram(&order(LEASE));
        }
        Uploading {
            conn_id,
            registry: self.clone(),
        }
    }

    /// Renew the orders of every site with an urgent session live; returns how many
    /// connections were told.
    pub fn renew(&self) -> usize {
        let conns: Vec<C> = {
            let inner = self.lock();
            if inner.urgent.is_empty() {
                return 0;
            }
            inner
                .uploading
                .values()
                .filter(|u| inner.urgent.contains_key(&u.site))
                .map(|u| u.conn.clone())
                .collect()
        };
        let bytes = order(LEASE);
        conns.iter().filter(|c| c.send_datagram(&bytes)).count()
    }

    /// Whether `site` has an urgent session live.
    #[cfg(test)]
    fn is_urgent(&self, site: &str) -> bool {
        self.lock().urgent.contains_key(site)
    }
}

/// Keeps a site's urgent session counted; the last one dropped ends the site's orders.
pub(crate) struct UrgentLive<C: Datagrams + Clone = quinn::Connection> {
    site: String,
    registry: Arc<Uplinks<C>>,
}

impl<C: Datagrams + Clone> Drop for UrgentLive<C> {
    fn drop(&mut self) {
        let last = {
            let mut inner = self.registry.lock();
            match inner.urgent.get_mut(&self.site) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    inner.urgent.remove(&self.site);
                    true
                }
                None => false,
            }
        };
        if last {
            let told = self.registry.tell_site(&self.site, Duration::ZERO);
            tracing::info!(
                site = %self.site,
                uploading_connections = told,
                "no urgent ECG live any more: the site's uploads take the uplink back"
            );
        }
    }
}

/// Keeps one upload of a connection counted.
pub(crate) struct Uploading<C: Datagrams + Clone = quinn::Connection> {
    conn_id: u64,
    registry: Arc<Uplinks<C>>,
}

impl<C: Datagrams + Clone> Drop for Uploading<C> {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(u) = inner.uploading.get_mut(&self.conn_id) {
            u.uploads -= 1;
            if u.uploads == 0 {
                inner.uploading.remove(&self.conn_id);
            }
        }
    }
}

/// Renew the orders every [`RENEW`] for as long as the relay runs.
pub(crate) async fn renew_orders(uplinks: Arc<Uplinks>) {
    let mut t = tokio::time::interval(RENEW);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        uplinks.renew();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that records the orders it was sent.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Vec<u32>>>);

    impl Datagrams for Fake {
        fn send_datagram(&self, bytes: &[u8]) -> bool {
            let Ok(RelayDatagram::YieldUplink { millis }) = RelayDatagram::decode(bytes) else {
                panic!("not an order: {bytes:?}");
            };
            self.0.lock().unwrap().push(millis);
            true
        }
    }

    impl Fake {
        fn orders(&self) -> Vec<u32> {
            self.0.lock().unwrap().clone()
        }
    }

    const L: u32 = LEASE.as_millis() as u32;

    #[test]
    fn the_sites_uploading_connections_are_told_renewed_and_released() {
        let reg: Arc<Uplinks<Fake>> = Arc::default();
        let (a, b, other) = (Fake::default(), Fake::default(), Fake::default());
        let _ua = reg.uploading(1, "township-a", a.clone());
        let _ub1 = reg.uploading(2, "township-a", b.clone());
        let _ub2 = reg.uploading(2, "township-a", b.clone());
        let _uo = reg.uploading(3, "township-b", other.clone());
        assert_eq!(reg.renew(), 0, "nothing urgent: no orders");

        let ecg = reg.urgent_live("township-a");
        assert_eq!(a.orders(), vec![L]);
        assert_eq!(
            b.orders(),
            vec![L],
            "one order per connection, not per upload"
        );
        assert_eq!(reg.renew(), 2);
        assert_eq!(a.orders(), vec![L, L]);
        drop(ecg);
        assert_eq!(a.orders(), vec![L, L, 0], "released at once");
        assert_eq!(b.orders(), vec![L, L, 0]);
        assert!(other.orders().is_empty(), "another site is never told");
        assert_eq!(reg.renew(), 0);
    }

    #[test]
    fn an_upload_opened_during_the_session_is_told_at_once_and_forgotten_when_closed() {
        let reg: Arc<Uplinks<Fake>> = Arc::default();
        let _ecg = reg.urgent_live("township-a");
        let late = Fake::default();
        let up = reg.uploading(7, "township-a", late.clone());
        assert_eq!(late.orders(), vec![L]);
        drop(up);
        assert_eq!(reg.renew(), 0, "no upload open on it any more");
        assert_eq!(late.orders(), vec![L]);
    }

    #[test]
    fn the_order_ends_only_with_the_sites_last_urgent_session() {
        let reg: Arc<Uplinks<Fake>> = Arc::default();
        let c = Fake::default();
        let _u = reg.uploading(1, "township-a", c.clone());
        let first = reg.urgent_live("township-a");
        let second = reg.urgent_live("township-a");
        assert_eq!(c.orders(), vec![L], "the second session adds no order");
        drop(first);
        assert!(reg.is_urgent("township-a"));
        assert_eq!(reg.renew(), 1);
        drop(second);
        assert!(!reg.is_urgent("township-a"));
        assert_eq!(c.orders(), vec![L, L, 0]);
    }

    /// A seeded model: any interleaving of sessions and uploads opening and closing leaves no
    /// count behind, and a connection is told (renewal) exactly while its site is urgent and it
    /// has an upload open.
    #[test]
    fn any_interleaving_keeps_the_counts_exact() {
        for seed in 1..=300u64 {
            let mut x = seed;
            let mut next = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            let reg: Arc<Uplinks<Fake>> = Arc::default();
            let sites = ["a", "b"];
            let conns: Vec<(u64, &str, Fake)> = (0..4)
                .map(|i| (i, sites[(i % 2) as usize], Fake::default()))
                .collect();
            let mut sessions: Vec<(usize, UrgentLive<Fake>)> = Vec::new();
            let mut uploads: Vec<(usize, Uploading<Fake>)> = Vec::new();
            for _ in 0..60 {
                match next(4) {
                    0 => {
                        let s = next(2) as usize;
                        sessions.push((s, reg.urgent_live(sites[s])));
                    }
                    1 if !sessions.is_empty() => {
                        let i = next(sessions.len() as u64) as usize;
                        sessions.swap_remove(i);
                    }
                    2 => {
                        let c = next(4) as usize;
                        let (id, site, fake) = &conns[c];
                        uploads.push((c, reg.uploading(*id, site, fake.clone())));
                    }
                    _ if !uploads.is_empty() => {
                        let i = next(uploads.len() as u64) as usize;
                        uploads.swap_remove(i);
                    }
                    _ => {}
                }
                let urgent_sites: Vec<&str> = sessions.iter().map(|(s, _)| sites[*s]).collect();
                let mut open: Vec<usize> = uploads.iter().map(|(c, _)| *c).collect();
                open.sort_unstable();
                open.dedup();
                let expected = open
                    .iter()
                    .filter(|c| urgent_sites.contains(&conns[**c].1))
                    .count();
                assert_eq!(reg.renew(), expected, "seed {seed}");
                for s in sites {
                    assert_eq!(reg.is_urgent(s), urgent_sites.contains(&s), "seed {seed}");
                }
            }
            drop(sessions);
            drop(uploads);
            let inner = reg.lock();
            assert!(
                inner.urgent.is_empty() && inner.uploading.is_empty(),
                "seed {seed}"
            );
        }
    }
}
