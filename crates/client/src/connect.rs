//! Reaching the relay, with capped exponential backoff while it cannot be reached.

use quinn::{Connection, Endpoint};
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
    /// Stop retrying after this long without reaching the relay.
    pub give_up_after: Duration,
}

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
    let mut backoff = Backoff::default();
    loop {
        // A handshake into a dead link would otherwise wait for the whole idle timeout.
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_secs(1), HANDSHAKE_TIMEOUT);
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
                return Ok(conn);
            }
            Ok(Err(e)) if permanent(&e) => return Err(ClientError::Refused(e.to_string())),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", wait.as_secs()),
        };
        let delay = backoff.next_delay();
        if Instant::now() + delay > deadline {
            return Err(ClientError::GaveUp(cfg.give_up_after, e));
        }
        progress.status(&format!(
            "relay {} not reachable ({e}); retrying in {:.1} s",
            cfg.relay,
            delay.as_secs_f32()
        ));
        tokio::time::sleep(delay).await;
    }
}

/// The longest one connection attempt may take: a handshake on a 300 ms, 10 % loss link
/// takes a few seconds at worst; longer means the link is down, so back off and try again.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
