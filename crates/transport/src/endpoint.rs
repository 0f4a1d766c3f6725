//! QUIC endpoints (server and client), connecting to a relay and accepting clients.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, ConnectionError, Endpoint, VarInt};

use crate::crl::Crls;
use crate::error::{AcceptError, ConnectError, TransportError};
use crate::identity::{peer_identity, PeerIdentity, Role};
use crate::tls::{client_tls_config, server_tls_config_with_crls, TlsPem};
use crate::tuning::Tuning;

/// Application close code sent when the peer is not who it must be (e.g. not a relay, or no
/// valid yilian identity in its certificate).
pub const CLOSE_WRONG_PEER: VarInt = VarInt::from_u32(0x10);

/// quinn server configuration: mutual TLS against the alliance CA, ALPN yilian/1, `tuning`.
pub fn server_config(tls: &TlsPem, tuning: &Tuning) -> Result<quinn::ServerConfig, TransportError> {
    server_config_with_crls(tls, tuning, &Crls::default())
}

/// [`server_config`] that also refuses client certificates revoked by `crls`. A relay that
/// reloads its CRLs installs a new one with [`Endpoint::set_server_config`] (new handshakes
/// only; it closes live connections of revoked certificates itself).
pub fn server_config_with_crls(
    tls: &TlsPem,
    tuning: &Tuning,
    crls: &Crls,
) -> Result<quinn::ServerConfig, TransportError> {
    let crypto = QuicServerConfig::try_from(server_tls_config_with_crls(tls, crls)?)
        .map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(tuning.transport_config()));
    Ok(config)
}

/// quinn client configuration: our certificate, the alliance CA only, ALPN yilian/1, `tuning`.
pub fn client_config(tls: &TlsPem, tuning: &Tuning) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(client_tls_config(tls)?)
        .map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(tuning.transport_config()));
    Ok(config)
}

/// Server endpoint on `listen`: requires client certificates chained to the alliance CA.
///
/// It also carries a default client configuration with the same identity, so a relay can
/// connect upstream (relay to relay) from the same socket. Needs a tokio runtime.
pub fn server_endpoint(
    listen: SocketAddr,
    tls: &TlsPem,
    tuning: &Tuning,
) -> Result<Endpoint, TransportError> {
    server_endpoint_with_reset_key(listen, tls, tuning, None, &Crls::default())
}

/// [`server_endpoint`] with a stateless-reset key that outlives the process.
///
/// QUIC peers learn a "stateless reset token" per connection ID, derived from this key. A relay
/// restarted after a crash with the *same* key answers packets of connections it forgot with a
/// reset the clients recognise, so they reconnect and resume within one round trip; with a new
/// random key they would wait for their idle timeout. The relay keeps the key in its data
/// directory. `None` = a random key (tests, tools). Client certificates revoked by `crls` are
/// refused.
pub fn server_endpoint_with_reset_key(
    listen: SocketAddr,
    tls: &TlsPem,
    tuning: &Tuning,
    reset_key: Option<&[u8]>,
    crls: &Crls,
) -> Result<Endpoint, TransportError> {
    let server = server_config_with_crls(tls, tuning, crls)?;
    let client = client_config(tls, tuning)?;
    let bind = |source| TransportError::Bind {
        addr: listen,
        source,
    };
    let socket = udp_socket(listen, tuning.udp_buffer).map_err(bind)?;
    let config = match reset_key {
        None => quinn::EndpointConfig::default(),
        Some(key) => {
            // The connection-ID generator must recognise the previous run's IDs too, or the
            // restarted relay drops their packets as invalid instead of resetting them.
            let digest = ring::digest::digest(&ring::digest::SHA256, key);
            let mut cid_key = [0u8; 8];
            cid_key.copy_from_slice(&digest.as_ref()[..8]);
            let cid_key = u64::from_le_bytes(cid_key);
            let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
            let mut config = quinn::EndpointConfig::new(Arc::new(hmac));
            config.cid_generator(move || {
                Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
            });
            config
        }
    };
    let mut endpoint = Endpoint::new(config, Some(server), socket, runtime()?).map_err(bind)?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// Client endpoint on an ephemeral port (`0.0.0.0:0`, or `[::]:0` when `ipv6`), presenting our
/// certificate and trusting only the alliance CA. Needs a tokio runtime.
pub fn client_endpoint(
    tls: &TlsPem,
    tuning: &Tuning,
    ipv6: bool,
) -> Result<Endpoint, TransportError> {
    let client = client_config(tls, tuning)?;
    let addr = if ipv6 {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    };
    let socket = udp_socket(addr, tuning.udp_buffer)
        .map_err(|source| TransportError::Bind { addr, source })?;
    let mut endpoint = Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime()?)
        .map_err(|source| TransportError::Bind { addr, source })?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

fn runtime() -> Result<Arc<dyn quinn::Runtime>, TransportError> {
    quinn::default_runtime()
        .ok_or_else(|| TransportError::Quic("no async runtime found for the QUIC endpoint".into()))
}

/// A UDP socket with `buffer` bytes of kernel receive and send buffer (as much as allowed).
fn udp_socket(addr: SocketAddr, buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Accept IPv4-mapped peers too on a [::] listener.
        if let Err(e) = socket.set_only_v6(false) {
            tracing::warn!(%addr, "IPv4 peers cannot reach this IPv6 socket (IPV6_V6ONLY stays on): {e}");
        }
    }
    if buffer > 0 {
        let _ = socket.set_recv_buffer_size(buffer);
        let _ = socket.set_send_buffer_size(buffer);
        // Capped by net.core.{r,w}mem_max: a privileged relay may force its size.
        if socket.recv_buffer_size().unwrap_or(0) < buffer {
            force_buffer(&socket, libc::SO_RCVBUFFORCE, buffer);
        }
        if socket.send_buffer_size().unwrap_or(0) < buffer {
            force_buffer(&socket, libc::SO_SNDBUFFORCE, buffer);
        }
        tracing::debug!(
            rcvbuf = socket.recv_buffer_size().unwrap_or(0),
            sndbuf = socket.send_buffer_size().unwrap_or(0),
            "UDP socket buffers"
        );
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn force_buffer(socket: &socket2::Socket, option: libc::c_int, size: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket fd, a c_int option value of the right size; failure (no
    // CAP_NET_ADMIN) only leaves the capped size in place.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Split `host:port` (`[v6]:port` for IPv6 literals) into host and port.
pub fn split_host_port(relay: &str) -> Result<(&str, u16), ConnectError> {
    let bad = |reason| ConnectError::BadAddress {
        relay: relay.to_string(),
        reason,
    };
    let (host, port) = relay.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .ok_or_else(|| bad("unbalanced brackets"))?,
        None if host.contains(':') => return Err(bad("write IPv6 addresses as [address]:port")),
        None => host,
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok((host, port))
}

/// Resolve `host:port` to socket addresses (IP literals need no resolver).
pub async fn resolve(relay: &str) -> Result<Vec<SocketAddr>, ConnectError> {
    let (host, port) = split_host_port(relay)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ConnectError::Resolve {
            relay: relay.to_string(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve {
            relay: relay.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        });
    }
    Ok(addrs)
}

/// Connect to the relay at `host:port`, verify it is a relay, and return the connection with
/// the relay's identity.
///
/// The server name checked against the relay's certificate is `host`. The call returns only
/// once the relay has *confirmed* the handshake (QUIC HANDSHAKE_DONE), i.e. after the relay
/// verified our certificate: a refusal of our certificate is reported here, not on the first
/// stream.
pub async fn connect(
    endpoint: &Endpoint,
    relay: &str,
) -> Result<(Connection, PeerIdentity), ConnectError> {
    let (conn, identity) = connect_pipelined(endpoint, relay).await?;
    wait_confirmed(&conn).await.map_err(ConnectError::Connect)?;
    Ok((conn, identity))
}

/// [`connect`] without waiting for the relay's confirmation: returns as soon as our side of the
/// handshake is done and the relay's certificate checked out, one round trip earlier, so that
/// the first requests leave with our handshake's last flight.
///
/// The relay may still refuse our certificate. The refusal then arrives as the connection's
/// close reason (see [`crate::explain`]) on whatever was sent on it: use this only where every
/// stream's failure is checked for it.
pub async fn connect_pipelined(
    endpoint: &Endpoint,
    relay: &str,
) -> Result<(Connection, PeerIdentity), ConnectError> {
    let (host, _) = split_host_port(relay)?;
    let addrs = resolve(relay).await?;
    let want_v6 = endpoint.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv6() == want_v6)
        .or(addrs.first())
        .copied()
        .ok_or_else(|| ConnectError::Resolve {
            relay: relay.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })?;
    let connecting = endpoint
        .connect(addr, host)
        .map_err(|source| ConnectError::Endpoint {
            relay: relay.to_string(),
            source,
        })?;
    let conn = connecting.await.map_err(ConnectError::Connect)?;
    let identity = match peer_identity(&conn) {
        Ok(id) => id,
        Err(e) => {
            conn.close(
                CLOSE_WRONG_PEER,
                b"server certificate carries no yilian identity",
            );
            return Err(ConnectError::Identity(e));
        }
    };
    if identity.role != Role::Relay {
        conn.close(CLOSE_WRONG_PEER, b"server is not a relay");
        return Err(ConnectError::NotARelay(identity));
    }
    tracing::debug!(relay = %identity, addr = %addr, "connected to relay");
    Ok((conn, identity))
}

/// Wait until the server confirms the handshake, or the connection ends.
///
/// A TLS 1.3 client finishes its side of the handshake before the server has checked the
/// client's certificate, so quinn reports a client connection as established even when the
/// server is about to refuse it. The server's HANDSHAKE_DONE frame is the confirmation; quinn
/// exposes it only as a frame counter, so poll that (with backoff, about one RTT in all) while
/// watching for the connection to close.
async fn wait_confirmed(conn: &Connection) -> Result<(), ConnectionError> {
    let confirmed = async {
        let mut delay = Duration::from_millis(1);
        while conn.stats().frame_rx.handshake_done == 0 {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    };
    tokio::select! {
        biased;
        err = conn.closed() => Err(err),
        () = confirmed => match conn.close_reason() {
            Some(err) => Err(err),
            None => Ok(()),
        },
    }
}

/// Server side: complete the handshake of an incoming connection and read the client's
/// identity. Errors carry the remote address and a clear reason for the relay's log (see
/// [`crate::explain_handshake_failure`]).
pub async fn accept(incoming: quinn::Incoming) -> Result<(Connection, PeerIdentity), AcceptError> {
    let remote = incoming.remote_address();
    let handshake = |error| AcceptError::Handshake { remote, error };
    let conn = incoming
        .accept()
        .map_err(handshake)?
        .await
        .map_err(handshake)?;
    match peer_identity(&conn) {
        Ok(id) => {
            tracing::debug!(peer = %id, %remote, "accepted connection");
            Ok((conn, id))
        }
        Err(error) => {
            conn.close(CLOSE_WRONG_PEER, b"certificate carries no yilian identity");
            Err(AcceptError::Identity { remote, error })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("127.0.0.1:4433").unwrap(),
            ("127.0.0.1", 4433)
        );
        assert_eq!(split_host_port("[::1]:4433").unwrap(), ("::1", 4433));
        assert_eq!(
            split_host_port("relay.county.example:7000").unwrap(),
            ("relay.county.example", 7000)
        );
        for bad in [
            "relay",
            "relay:",
            "relay:x",
            ":4433",
            "::1:4433",
            "[::1:4433",
            "h:0",
        ] {
            assert!(
                matches!(split_host_port(bad), Err(ConnectError::BadAddress { .. })),
                "{bad}"
            );
        }
    }
}
