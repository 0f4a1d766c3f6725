//! Reaching the relay, with capped exponential backoff while it cannot be reached.
//!
//! **First contact.** Until a client has reached its relay once ([`Contact`]), a relay that
//! does not answer is more likely a wrong address (or a relay not running, or UDP blocked)
//! than a township link that happens to be down: attempts are bounded by
//! [`FIRST_CONTACT_ATTEMPT`], the first failure says that the address may be wrong (naming the
//! address, UDP port and certificate name tried, and what to check), and the client gives up
//! after [`FIRST_CONTACT_BUDGET`] (at most `give_up_after`) with
//! [`ClientError::NoRelayAnswered`]. Once a connection succeeded, an outage is waited out for
//! the whole `give_up_after`.

use quinn::{Connection, Endpoint};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_transport::{TlsPem, Tuning};

use crate::{ClientError, Progress};

/// How to reach the relay.
#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` of the relay.
    pub relay: String,
    pub tls: TlsPem,
    pub tuning: Tuning,
    /// Stop retrying after this long without reaching the relay (once it was reached: see
    /// [`Contact`]).
    pub give_up_after: Duration,
    /// Whether the relay was reached yet; clones share it (one per `send` or `read` run, one
    /// for a gateway's lifetime).
    pub contact: Contact,
}

/// Whether a client has reached its relay yet (a connection succeeded). Clones share it.
#[derive(Clone, Debug, Default)]
pub struct Contact(Arc<AtomicBool>);

impl Contact {
    /// Whether a connection to the relay ever succeeded.
    pub fn made(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How long a client that never reached its relay keeps trying (at most `give_up_after`).
/// A relay that exists answers a handshake within a second on the links yilian is made for
/// (RTT ≤ 300 ms; a lost handshake packet costs 0.3 s), and one that restarts is back within
/// seconds; 30 s covers both and a few lost handshakes, and keeps a wrong address from
/// holding the radiographer for the 10-minute outage budget meant for links that were up.
pub const FIRST_CONTACT_BUDGET: Duration = Duration::from_secs(30);

/// The longest one attempt of a first contact may take: after 5 s without any answer the
/// user is told the address may be wrong (the attempt is then made again).
pub const FIRST_CONTACT_ATTEMPT: Duration = Duration::from_secs(5);

/// Capped exponential backoff: 0.5 s, 1 s, 2 s … 30 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(500),
        }
    }
}

impl Backoff {
    pub const MAX: Duration = Duration::from_secs(30);

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

pub(crate) fn endpoint(cfg: &ClientConfig) -> Result<Endpoint, ClientError> {
    let ipv6 = cfg.relay.starts_with('[');
    Ok(yilian_transport::client_endpoint(
        &cfg.tls,
        &cfg.tuning,
        ipv6,
    )?)
}

/// Close `conn` and give the close [`CLOSE_GRACE`] to leave, instead of waiting out the full
/// QUIC closing period (three probe timeouts: 1–4 s on a lossy rural link). Everything was acknowledged before we close, so nothing waits on it: if
/// the close itself is lost, the relay drops the connection at its idle timeout.
pub(crate) async fn close(endpoint: &Endpoint, conn: &Connection, reason: &'static [u8]) {
    conn.close(0u32.into(), reason);
    let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
}

/// How long a finished client lets its close packet leave (it is sent at once; this is host
/// time, not a round trip).
pub const CLOSE_GRACE: Duration = Duration::from_millis(50);

/// Whether a connection failure can heal by retrying (a link problem) or not (a refusal).
fn permanent(e: &yilian_transport::ConnectError) -> bool {
    use yilian_transport::ConnectError as E;
    match e {
        E::Connect(c) => matches!(
            c,
            quinn::ConnectionError::ConnectionClosed(_)
                | quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::TransportError(_)
                | quinn::ConnectionError::VersionMismatch
        ),
        // DNS may come back with the link; a bad address or identity will not.
        E::Resolve { .. } => false,
        _ => true,
    }
}

/// Application close code a relay uses when it shuts down (restarts are worth waiting for).
const RELAY_SHUTDOWN: u32 = 4;

/// Whether the relay ended an established connection on purpose in a way retrying cannot fix
/// (our identity is unknown to it, our certificate was revoked, a TLS alert, a protocol
/// violation) as opposed to the link failing or the relay restarting.
pub(crate) fn refused_for_good(e: &quinn::ConnectionError) -> bool {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            let code = c.error_code.into_inner();
            code != 0 && code != u64::from(RELAY_SHUTDOWN)
        }
        quinn::ConnectionError::ConnectionClosed(_) | quinn::ConnectionError::VersionMismatch => {
            true
        }
        _ => false,
    }
}

/// When a new connection is handed to its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handover {
    /// Once the relay confirmed the handshake (it accepted our certificate): a refusal is
    /// reported by the connect call itself.
    Confirmed,
    /// One round trip earlier, as soon as our side of the handshake is done: the first
    /// requests leave with its last flight. A refusal of our certificate arrives as the
    /// connection's close reason ([`refused_for_good`]), which the user must check on every
    /// failed stream. `send` does: on a 300 ms township link this saves 0.3 s per run.
    Pipelined,
}

/// Connect, retrying link failures with backoff until `give_up_after`; refusals (certificate,
/// identity) fail at once since retrying cannot fix them.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    cfg: &ClientConfig,
    progress: &dyn Progress,
    handover: Handover,
) -> Result<Connection, ClientError> {
    connect_until(
        endpoint,
        cfg,
        progress,
        Instant::now() + cfg.give_up_after,
        handover,
    )
    .await
}

/// [`connect`], giving up at `deadline` (e.g. `give_up_after` past the last acknowledgement of
/// an upload, so that a link that stays down is bounded as a whole, not per attempt).
pub(crate) async fn connect_until(
    endpoint: &Endpoint,
    cfg: &ClientConfig,
    progress: &dyn Progress,
    deadline: Instant,
    handover: Handover,
) -> Result<Connection, ClientError> {
    let started = Instant::now();
    // Never reached in this run: a short budget, and the address is named on the first failure.
    let first_contact = !cfg.contact.made();
    let (deadline, attempt_max) = if first_contact {
        (
            deadline.min(started + FIRST_CONTACT_BUDGET.min(cfg.give_up_after)),
            FIRST_CONTACT_ATTEMPT,
        )
    } else {
        (deadline, HANDSHAKE_TIMEOUT)
    };
    let mut backoff = Backoff::default();
    let mut failures = 0u32;
    loop {
        // A handshake into a dead link would otherwise wait for the whole idle timeout.
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_secs(1), attempt_max);
        let attempt = async {
            match handover {
                Handover::Confirmed => yilian_transport::connect(endpoint, &cfg.relay).await,
                Handover::Pipelined => {
                    yilian_transport::connect_pipelined(endpoint, &cfg.relay).await
                }
            }
        };
        let e = match tokio::time::timeout(wait, attempt).await {
            Ok(Ok((conn, _relay))) => {
                tracing::debug!(relay = %cfg.relay, rtt_ms = conn.rtt().as_millis() as u64, "connected");
                cfg.contact.mark();
                // After a cut link heals, a probe leaves within a second (QUIC's own backs
                // off to minutes).
                cfg.tuning.revive(&conn);
                return Ok(conn);
            }
            Ok(Err(e)) if permanent(&e) => return Err(ClientError::Refused(e.to_string())),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", wait.as_secs()),
        };
        failures += 1;
        let delay = backoff.next_delay();
        if first_contact {
            let target = Target::of(&cfg.relay).await;
            if Instant::now() + delay > deadline {
                return Err(ClientError::NoRelayAnswered {
                    target: target.to_string(),
                    waited: started.elapsed().as_secs(),
                    attempts: failures,
                    last: e,
                });
            }
            if failures == 1 {
                progress.status(&format!(
                    "no relay answered at {target} ({e}): the address may be wrong. {CHECK}. Trying again for {} s more",
                    deadline.saturating_duration_since(Instant::now()).as_secs()
                ));
            } else {
                progress.status(&format!(
                    "still no answer from {} ({e}); retrying in {:.1} s",
                    cfg.relay,
                    delay.as_secs_f32()
                ));
            }
        } else {
            if Instant::now() + delay > deadline {
                return Err(ClientError::GaveUp(cfg.give_up_after, e));
            }
            progress.status(&format!(
                "relay {} not reachable ({e}); retrying in {:.1} s",
                cfg.relay,
                delay.as_secs_f32()
            ));
        }
        tokio::time::sleep(delay).await;
    }
}

/// What to check when no relay answers at an address.
pub(crate) const CHECK: &str = "Check that the relay is running there (`yilian serve` logs \"yilian relay ready\" with its listen address), that --relay gives its address and UDP port, and that firewalls let UDP through to that port";

/// Where a client looked for its relay, in words: `--relay` as given, the address it resolved
/// to, the UDP port, and the name the relay's certificate must carry.
struct Target {
    relay: String,
    addresses: Option<String>,
    port: Option<u16>,
    server_name: Option<String>,
}

impl Target {
    async fn of(relay: &str) -> Target {
        let parts = yilian_transport::split_host_port(relay)
            .ok()
            .map(|(h, p)| (h.to_string(), p));
        let addresses = match yilian_transport::resolve(relay).await {
            Ok(a) => {
                let mut ips: Vec<String> = Vec::new();
                for ip in a.iter().map(|a| a.ip().to_string()) {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
                Some(ips.join(" or "))
            }
            Err(_) => None,
        };
        Target {
            relay: relay.to_string(),
            addresses,
            port: parts.as_ref().map(|(_, p)| *p),
            server_name: parts.map(|(h, _)| h),
        }
    }
}

impl std::fmt::Display for Target {
    /// `localhost:4433 (address 127.0.0.1, UDP port 4433, relay certificate name "localhost")`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.relay)?;
        let (Some(port), Some(name)) = (self.port, &self.server_name) else {
            return Ok(());
        };
        match &self.addresses {
            Some(a) => write!(f, " (address {a}, ")?,
            None => write!(f, " (name not resolved, ")?,
        }
        write!(f, "UDP port {port}, relay certificate name \"{name}\")")
    }
}

/// The longest one connection attempt may take: a handshake on a 300 ms, 10 % loss link
/// takes a few seconds at worst; longer means the link is down, so back off and try again.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
