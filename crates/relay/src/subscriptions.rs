//! One live subscription per reader identity.
//!
//! A reader identity has one outbox. Two `yilian read` processes with one certificate (two
//! workstations of a department sharing it, or one started twice by mistake) would split its
//! studies between two folders, and each new session used to replace the previous one, whose
//! `read` reconnected and replaced it back: a loop in which one of them never received
//! anything. The rule, for every QUIC subscription:
//!
//! * **The first live subscription keeps the identity.** A second one is refused: its
//!   connection is closed with [`close::SUBSCRIBED_ELSEWHERE`] (final for `read`, which exits
//!   saying so) and a reason naming the address the first is connected from and since when.
//!   The first is never interrupted: a study it is receiving is not split.
//! * **Unless the first no longer answers.** A `read` that was killed, a workstation switched
//!   off or a link that died leaves its connection open at the relay until QUIC's idle timeout
//!   (60 s by default), and its restart would be refused meanwhile. So before refusing, the
//!   relay probes the holder ([`answers`]: datagrams its QUIC stack must acknowledge, for
//!   [`PROBE_WINDOW`]); a holder that stays silent is closed with [`close::TAKEN_OVER`] and the
//!   newcomer gets the subscription. A killed reader restarted at once is back within seconds.
//!
//! Workstations that should each receive everything need reader identities of their own, each
//! routed the department's studies. The registry ([`Subscriptions`]) is plain data under a
//! lock, tested below; the probe is the only I/O.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use quinn::{SendDatagramError, VarInt};
use tracing::debug;
use yilian_proto::RelayDatagram;

use crate::close;
use crate::connections::Closable;

/// How long a holder must stay silent, while probed, to count as gone (at least; four round
/// trips of its connection if that is longer). A live reader acknowledges a probe within a
/// round trip plus QUIC's ack delay (25 ms), and it is probed every [`PROBE_EVERY`], so a few
/// lost packets do not make it look gone.
pub(crate) const PROBE_WINDOW: Duration = Duration::from_secs(3);
/// Interval between two probes of a holder.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// The connection holding a reader's subscription.
pub(crate) struct Holder<C> {
    /// Registration number, unique in this registry.
    id: u64,
    /// The admitted connection's number (`yilian_ingest::next_conn`).
    pub conn_id: u64,
    /// Where the holder is connected from.
    pub remote: SocketAddr,
    /// When it subscribed.
    pub since: SystemTime,
    pub conn: C,
}

/// The answer to a subscription.
pub(crate) enum Claim<C: Closable> {
    /// Subscribed: keep the guard for as long as the session lasts.
    Granted(Subscription<C>),
    /// This very connection already holds the subscription (it subscribed twice).
    Again,
    /// Another connection holds it: probe that one ([`answers`]), then refuse (it answers) or
    /// [`Subscriptions::take_over`] (it does not).
    Held(Arc<Holder<C>>),
}

/// Who holds each reader identity's subscription.
pub(crate) struct Subscriptions<C = quinn::Connection> {
    inner: Mutex<Inner<C>>,
}

struct Inner<C> {
    next: u64,
    by_reader: HashMap<String, Arc<Holder<C>>>,
}

impl<C> Default for Subscriptions<C> {
    fn default() -> Self {
        Subscriptions {
            inner: Mutex::new(Inner {
                next: 0,
                by_reader: HashMap::new(),
            }),
        }
    }
}

impl<C: Closable> Subscriptions<C> {
    fn lock(&self) -> MutexGuard<'_, Inner<C>> {
        // Every update is one map operation: a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribe connection `conn_id` (from `remote`) as `reader`.
    pub fn claim(
        self: &Arc<Self>,
        reader: &str,
        conn_id: u64,
        remote: SocketAddr,
        conn: C,
    ) -> Claim<C> {
        let mut inner = self.lock();
        match inner.by_reader.get(reader) {
            Some(h) if h.conn_id == conn_id => Claim::Again,
            Some(h) => Claim::Held(h.clone()),
            None => Claim::Granted(self.grant(&mut inner, reader, conn_id, remote, conn)),
        }
    }

    /// `stale` did not answer its probe. If it still holds `reader`, close it with
    /// [`close::TAKEN_OVER`] and `reason`, and subscribe the newcomer instead (also when the
    /// holder left meanwhile). If another connection holds it now (a newcomer that was
    /// quicker), that one is returned: it just subscribed, so it answers.
    pub fn take_over(
        self: &Arc<Self>,
        reader: &str,
        stale: &Holder<C>,
        conn_id: u64,
        remote: SocketAddr,
        conn: C,
        reason: &str,
    ) -> Result<Subscription<C>, Arc<Holder<C>>> {
        let mut inner = self.lock();
        match inner.by_reader.get(reader) {
            Some(h) if h.id != stale.id => Err(h.clone()),
            Some(h) => {
                h.conn
                    .close(VarInt::from_u32(close::TAKEN_OVER), reason.as_bytes());
                Ok(self.grant(&mut inner, reader, conn_id, remote, conn))
            }
            None => Ok(self.grant(&mut inner, reader, conn_id, remote, conn)),
        }
    }

    /// The connection holding `reader`'s subscription, if any.
    #[cfg(test)]
    fn holder(&self, reader: &str) -> Option<Arc<Holder<C>>> {
        self.lock().by_reader.get(reader).cloned()
    }

    fn grant(
        self: &Arc<Self>,
        inner: &mut Inner<C>,
        reader: &str,
        conn_id: u64,
        remote: SocketAddr,
        conn: C,
    ) -> Subscription<C> {
        let id = inner.next;
        inner.next += 1;
        inner.by_reader.insert(
            reader.to_string(),
            Arc::new(Holder {
                id,
                conn_id,
                remote,
                since: SystemTime::now(),
                conn,
            }),
        );
        Subscription {
            reader: reader.to_string(),
            id,
            registry: self.clone(),
        }
    }
}

/// A held subscription; dropping it (the session ended) frees the reader identity, unless
/// another connection took it over meanwhile.
pub(crate) struct Subscription<C: Closable = quinn::Connection> {
    reader: String,
    id: u64,
    registry: Arc<Subscriptions<C>>,
}

impl<C: Closable> Drop for Subscription<C> {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if inner
            .by_reader
            .get(&self.reader)
            .is_some_and(|h| h.id == self.id)
        {
            inner.by_reader.remove(&self.reader);
        }
    }
}

/// What a refused second reader is told (the connection's close reason, so kept short).
pub(crate) fn refusal<C>(reader: &str, holder: &Holder<C>, now: SystemTime) -> String {
    let ago = now.duration_since(holder.since).unwrap_or_default();
    format!(
        "{reader} is already reading from this relay: connected from {} since {} ({}), and it answers. \
         One reader certificate reads in one place at a time (its studies are never split). \
         Stop that `yilian read` first, or give this workstation a reader identity of its own \
         in the topology",
        holder.remote,
        utc(holder.since),
        ago_text(ago),
    )
}

/// What a holder that stopped answering is told when a newcomer takes over (it reads it only
/// if its link comes back).
pub(crate) fn taken_over_reason(reader: &str, newcomer: SocketAddr) -> String {
    format!(
        "{reader} subscribed again from {newcomer} while this connection did not answer for {} s: \
         that one receives this reader's studies now",
        PROBE_WINDOW.as_secs()
    )
}

/// `2026-03-01 08:15:02 UTC`.
fn utc(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `12 s ago`, `5 min ago`, `3 h ago`.
fn ago_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// Whether the peer of `conn` still answers: it acknowledges (or sends) anything within
/// [`PROBE_WINDOW`] (at least four of its round trips) while probed every [`PROBE_EVERY`]. A
/// connection that cannot carry datagrams cannot be probed and counts as answering: a reader
/// is never dropped unchecked.
pub(crate) async fn answers(conn: &quinn::Connection) -> bool {
    if conn.close_reason().is_some() {
        return false;
    }
    let heard = conn.stats().udp_rx.datagrams;
    let window = PROBE_WINDOW.max(conn.rtt() * 4);
    let deadline = tokio::time::Instant::now() + window;
    let probe = Bytes::from(RelayDatagram::Probe.encode());
    loop {
        match conn.send_datagram(probe.clone()) {
            Ok(()) => {}
            Err(SendDatagramError::ConnectionLost(_)) => return false,
            Err(e) => {
                debug!(remote = %conn.remote_address(), "cannot probe the connection ({e}): counted as answering");
                return true;
            }
        }
        tokio::select! {
            _ = conn.closed() => return false,
            () = tokio::time::sleep(PROBE_EVERY) => {}
        }
        if conn.stats().udp_rx.datagrams > heard {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::FakeConnection as Fake;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    type Reg = Arc<Subscriptions<Arc<Fake>>>;

    fn granted(c: Claim<Arc<Fake>>) -> Subscription<Arc<Fake>> {
        match c {
            Claim::Granted(s) => s,
            Claim::Again => panic!("expected granted, got again"),
            Claim::Held(h) => panic!("expected granted, held by {}", h.remote),
        }
    }

    fn held(c: Claim<Arc<Fake>>) -> Arc<Holder<Arc<Fake>>> {
        match c {
            Claim::Held(h) => h,
            Claim::Granted(_) => panic!("expected held, got granted"),
            Claim::Again => panic!("expected held, got again"),
        }
    }

    #[test]
    fn a_second_subscription_is_held_off_and_told_who_holds_it() {
        let reg = Reg::default();
        let first = Arc::new(Fake::default());
        let _a = granted(reg.claim("rad", 1, addr(1001), first.clone()));
        let h = held(reg.claim("rad", 2, addr(1002), Arc::default()));
        assert_eq!((h.conn_id, h.remote), (1, addr(1001)));
        assert_eq!(first.closed(), None, "the first is never interrupted");
        // Another reader identity is independent.
        let _b = granted(reg.claim("us", 3, addr(1003), Arc::default()));
        // The same connection subscribing again is told so, not refused as a stranger.
        assert!(matches!(
            reg.claim("rad", 1, addr(1001), Arc::default()),
            Claim::Again
        ));
    }

    #[test]
    fn the_identity_is_free_again_once_the_session_ends() {
        let reg = Reg::default();
        let a = granted(reg.claim("rad", 1, addr(1001), Arc::default()));
        drop(a);
        assert!(reg.holder("rad").is_none());
        let _b = granted(reg.claim("rad", 2, addr(1002), Arc::default()));
        assert_eq!(reg.holder("rad").map(|h| h.conn_id), Some(2));
    }

    #[test]
    fn a_silent_holder_is_closed_and_replaced_and_its_late_end_frees_nothing() {
        let reg = Reg::default();
        let dead = Arc::new(Fake::default());
        let a = granted(reg.claim("rad", 1, addr(1001), dead.clone()));
        let stale = held(reg.claim("rad", 2, addr(1002), Arc::default()));
        let b = reg
            .take_over(
                "rad",
                &stale,
                2,
                addr(1002),
                Arc::default(),
                &taken_over_reason("rad", addr(1002)),
            )
            .map_err(|h| h.remote)
            .unwrap();
        let (code, reason) = dead.closed().expect("the silent holder is closed");
        assert_eq!(code, close::TAKEN_OVER);
        assert!(reason.contains("10.0.0.1:1002"), "{reason}");
        // The old session ends after the take-over: the newcomer keeps the identity.
        drop(a);
        assert_eq!(reg.holder("rad").map(|h| h.conn_id), Some(2));
        drop(b);
        assert!(reg.holder("rad").is_none());
    }

    #[test]
    fn of_two_newcomers_after_a_silent_holder_only_the_first_takes_over() {
        let reg = Reg::default();
        let dead = Arc::new(Fake::default());
        let _a = granted(reg.claim("rad", 1, addr(1001), dead.clone()));
        // Both find the holder and probe it at the same time.
        let seen_by_b = held(reg.claim("rad", 2, addr(1002), Arc::default()));
        let seen_by_c = held(reg.claim("rad", 3, addr(1003), Arc::default()));
        let _b = reg
            .take_over("rad", &seen_by_b, 2, addr(1002), Arc::default(), "gone")
            .map_err(|h| h.remote)
            .unwrap();
        let now = match reg.take_over("rad", &seen_by_c, 3, addr(1003), Arc::default(), "gone") {
            Err(h) => h,
            Ok(_) => panic!("the second newcomer must not take over from the first"),
        };
        assert_eq!(now.remote, addr(1002), "refused naming the one that got in");
    }

    #[test]
    fn a_holder_that_left_during_the_probe_lets_the_newcomer_in() {
        let reg = Reg::default();
        let a = granted(reg.claim("rad", 1, addr(1001), Arc::default()));
        let stale = held(reg.claim("rad", 2, addr(1002), Arc::default()));
        drop(a);
        let _b = reg
            .take_over("rad", &stale, 2, addr(1002), Arc::default(), "gone")
            .map_err(|h| h.remote)
            .unwrap();
        assert_eq!(reg.holder("rad").map(|h| h.conn_id), Some(2));
    }

    /// Seeded interleavings of subscribers coming, leaving, probing and taking over: at most
    /// one holder per identity at any time, a holder is only ever closed by a take-over, and a
    /// session's end frees the identity exactly when it still held it.
    #[test]
    fn model_one_holder_at_a_time() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200 {
            let reg = Reg::default();
            // Live sessions: (connection id, guard, fake connection).
            let mut sessions: Vec<(u64, Subscription<Arc<Fake>>, Arc<Fake>)> = Vec::new();
            // Newcomers waiting on a probe: (connection id, holder seen).
            let mut probing: Vec<(u64, Arc<Holder<Arc<Fake>>>)> = Vec::new();
            let mut next_conn = 1u64;
            for _ in 0..60 {
                match rand(4) {
                    0 => {
                        let id = next_conn;
                        next_conn += 1;
                        let fake = Arc::new(Fake::default());
                        match reg.claim("rad", id, addr(id as u16), fake.clone()) {
                            Claim::Granted(s) => sessions.push((id, s, fake)),
                            Claim::Held(h) => probing.push((id, h)),
                            Claim::Again => panic!("a new connection is never `Again`"),
                        }
                    }
                    1 if !sessions.is_empty() => {
                        let (id, guard, _) = sessions.remove(rand(sessions.len()));
                        let held_it = reg.holder("rad").is_some_and(|h| h.conn_id == id);
                        drop(guard);
                        if held_it {
                            assert!(reg.holder("rad").is_none(), "its end frees the identity");
                        }
                    }
                    2 if !probing.is_empty() => {
                        // The probe said: silent.
                        let (id, seen) = probing.remove(rand(probing.len()));
                        let fake = Arc::new(Fake::default());
                        match reg.take_over("rad", &seen, id, addr(id as u16), fake.clone(), "x") {
                            Ok(s) => sessions.push((id, s, fake)),
                            Err(h) => assert_ne!(h.conn_id, seen.conn_id),
                        }
                    }
                    _ if !probing.is_empty() => {
                        // The probe said: answering. Refused; nothing changes.
                        probing.remove(rand(probing.len()));
                    }
                    _ => {}
                }
                // Invariant: the holder, if any, is a live session that was never closed;
                // every other live session either was closed by a take-over or never held.
                if let Some(h) = reg.holder("rad") {
                    let mine = sessions.iter().find(|(id, _, _)| *id == h.conn_id);
                    let (_, _, fake) = mine.expect("the holder is a live session");
                    assert_eq!(fake.closed(), None, "the holder is open");
                }
            }
        }
    }

    #[test]
    fn the_refusal_says_where_and_since_when() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_352_902);
        let h = Holder {
            id: 0,
            conn_id: 1,
            remote: addr(53211),
            since,
            conn: (),
        };
        let text = refusal("county-radiology", &h, since + Duration::from_secs(185));
        assert!(
            text.contains("county-radiology is already reading"),
            "{text}"
        );
        assert!(text.contains("from 10.0.0.1:53211"), "{text}");
        assert!(
            text.contains("since 2026-03-01 08:15:02 UTC (3 min ago)"),
            "{text}"
        );
        assert!(
            text.len() < 500,
            "fits a close frame and is shown whole: {} bytes",
            text.len()
        );
        assert_eq!(ago_text(Duration::from_secs(7)), "7 s ago");
        assert_eq!(ago_text(Duration::from_secs(3 * 3600 + 5)), "3 h ago");
    }
}
