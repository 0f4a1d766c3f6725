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
/// (our identity is unknown to it, a TLS alert, a protocol violation) as opposed to the link
/// failing or the relay restarting.
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

/// Connect, retrying link failures with backoff until `give_up_after`; refusals (certificate,
/// identity) fail at once since retrying cannot fix them.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    cfg: &ClientConfig,
    progress: &dyn Progress,
) -> Result<Connection, ClientError> {
    let start = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        match yilian_transport::connect(endpoint, &cfg.relay).await {
            Ok((conn, _relay)) => return Ok(conn),
            Err(e) if permanent(&e) => return Err(ClientError::Refused(e.to_string())),
            Err(e) => {
                let delay = backoff.next_delay();
                if start.elapsed() + delay > cfg.give_up_after {
                    return Err(ClientError::GaveUp(cfg.give_up_after, e.to_string()));
                }
                progress.status(&format!(
                    "relay {} not reachable ({e}); retrying in {:.1} s",
                    cfg.relay,
                    delay.as_secs_f32()
                ));
                tokio::time::sleep(delay).await;
            }
        }
    }
}
