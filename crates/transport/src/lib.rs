//! QUIC endpoints for yilian: rustls mutual TLS, peer identity from certificates, tuned transport.
//!
//! # Who is who
//! Every peer of a yilian alliance — a township DR console or ECG cart (**device**), a county
//! specialist's workstation (**reader**), a county or provincial **relay** — holds a certificate
//! issued by the alliance CA. The certificate carries exactly one SAN URI,
//! `urn:yilian:peer:<name>:<site>:<role>[:<department>]` ([`PeerIdentity`]), and CN = name.
//! Relay certificates also carry the DNS names / IP addresses clients use to reach them.
//!
//! Devices and readers are QUIC *clients*; relays are QUIC *servers* (and clients of their
//! upstream relay). Both sides present certificates (mutual TLS) and trust only the alliance
//! CA — never the system's web PKI.
//!
//! # Identity only from certificates
//! A peer is whoever its verified certificate says, read with [`peer_identity`] from an
//! established connection. Nothing a peer writes in a message (site, name, department) is ever
//! taken as its identity. A client additionally checks that the server it reached has the
//! role `relay` ([`connect`] returns [`ConnectError::NotARelay`] otherwise); the relay then
//! checks the identity against its topology (an unknown identity is refused there, not here).
//!
//! # Why ring, explicitly
//! ring (quinn, rcgen) and aws-lc-rs (rustls' default, other crates) both end up in the
//! workspace's dependency graph; rustls then cannot pick a process-wide default and
//! `ClientConfig::builder()` panics. Every configuration here is built with
//! `builder_with_provider(ring)` and TLS 1.3 only (QUIC requires it), so this crate never
//! depends on — or installs — a process default ([`crypto_provider`]).
//!
//! # Revocation
//! A relay may refuse certificates the alliance CA revoked: [`Crls`] loads CRL files (checked
//! against the CA) and [`server_config_with_crls`] makes a revoked certificate fail the
//! handshake. [`peer_serial`] gives a peer's certificate serial, for the topology's deny list
//! (`[[revoked]]`), which the relay applies at admission.
//!
//! # Tuning
//! [`Tuning::default`] is sized for throughput on long, lossy township links: the `bdp`
//! congestion controller ([`congestion`]), 8 MiB
//! stream / 32 MiB connection windows, 5 s keep-alive, 60 s idle timeout, 64 bidirectional
//! and 16 unidirectional streams. See [`tuning`] for the measurements behind each choice.
//! Every controller is wrapped in [`revive::Revive`], and [`Tuning::revive`] starts the
//! per-connection task that lets a probe through after a cut link heals, instead of QUIC's
//! doubling probe timeout ([`revive`]).
//! [`Tuning::uplink`] is the endpoint's [`UplinkYield`] order: while a relay says the site has
//! an urgent ECG live, `bdp` connections keep their window below the path's BDP ([`uplink`]).
//!
//! # Errors people can act on
//! [`explain`] (client side) and [`explain_handshake_failure`] (relay side) turn QUIC/TLS
//! failures — unknown CA, expired certificate, wrong name, no ALPN, timeouts, application
//! closes — into one sentence that says what to do next.
//!
//! # Development certificates
//! [`devcerts`] generates a clearly-labelled development CA and leaves (`yilian certs dev`).
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use yilian_transport::{client_endpoint, connect, TlsFiles, Tuning};
//! let tls = TlsFiles { cert: "me.pem".into(), key: "me.key".into(), ca: "ca.pem".into() }.load()?;
//! let endpoint = client_endpoint(&tls, &Tuning::default(), false)?;
//! let (conn, relay) = connect(&endpoint, "127.0.0.1:4433").await?;
//! println!("connected to {relay}");
//! # drop(conn); Ok(()) }
//! ```

pub mod congestion;
pub mod crl;
pub mod devcerts;
mod endpoint;
mod error;
mod explain;
mod identity;
pub mod priority;
pub mod read_ahead;
pub mod revive;
mod tls;
pub mod tuning;
pub mod uplink;

pub use congestion::{Bdp, BdpConfig, BdpState};
pub use crl::{CrlError, Crls};
pub use devcerts::{write_dev_certs, DevCa};
pub use endpoint::{
    accept, client_config, client_endpoint, connect, connect_pipelined, resolve, server_config,
    server_config_with_crls, server_endpoint, server_endpoint_with_reset_key, split_host_port,
    CLOSE_WRONG_PEER,
};
pub use error::{AcceptError, ConnectError, IdentityError, TransportError};
pub use explain::{explain, explain_handshake_failure};
pub use identity::{
    certificate_serial, identity_from_cert, peer_identity, peer_serial, CertSerial, PeerIdentity,
    Role, SAN_URI_PREFIX,
};
pub use tls::{
    client_tls_config, crypto_provider, https_server_config, server_tls_config,
    server_tls_config_with_crls, TlsFiles, TlsPem,
};
pub use tuning::{Congestion, ParseCongestionError, Tuning};
pub use uplink::UplinkYield;

/// The ALPN protocol of yilian/1; both sides require it.
pub const ALPN: &[u8] = b"yilian/1";
