//! Typed errors of this crate. Every message names what is wrong and, where it can, what to do.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::identity::PeerIdentity;

/// A peer identity (SAN URI or certificate) that does not follow the contract.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The URI does not start with `urn:yilian:peer:`.
    #[error("\"{0}\" is not a yilian peer URI (expected urn:yilian:peer:<name>:<site>:<role>[:<department>])")]
    NotYilianUri(String),
    /// Too few or too many `:`-separated parts.
    #[error("malformed yilian peer URI \"{0}\" (expected urn:yilian:peer:<name>:<site>:<role>[:<department>])")]
    MalformedUri(String),
    /// A name, site or department outside `[a-z0-9][a-z0-9-]*`.
    #[error("invalid {field} \"{value}\": use lowercase letters, digits and '-', starting with a letter or digit")]
    InvalidLabel {
        /// `name`, `site` or `department`.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// A role other than device, reader, relay.
    #[error("unknown role \"{0}\" (expected device, reader or relay)")]
    UnknownRole(String),
    /// The DER did not parse as an X.509 certificate.
    #[error("cannot parse the certificate: {0}")]
    BadCertificate(String),
    /// No SAN URI at all: not a certificate issued for yilian.
    #[error("the certificate carries no yilian identity (no SAN URI urn:yilian:peer:...); it was not issued for yilian")]
    NoSanUri,
    /// The contract requires exactly one SAN URI.
    #[error("the certificate carries {0} SAN URIs; a yilian certificate carries exactly one")]
    SeveralSanUris(usize),
    /// The connection has no peer certificate (should not happen with mutual TLS).
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
}

/// Errors building endpoints, loading TLS material or generating certificates.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A file could not be read.
    #[error("cannot read {what} file {}: {source}", path.display())]
    ReadFile {
        /// `certificate`, `key` or `CA certificate`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// No PEM section of the wanted kind.
    #[error("no PEM {what} in {origin}{hint}")]
    NoPem {
        /// `certificate`, `private key`, `CA certificate`.
        what: &'static str,
        /// File name or description of the in-memory PEM.
        origin: String,
        /// Extra hint (starts with "; " when present).
        hint: String,
    },
    /// A PEM section that does not decode.
    #[error("malformed PEM {what} in {origin}: {reason}")]
    BadPem {
        /// What was being read.
        what: &'static str,
        /// File name or description of the in-memory PEM.
        origin: String,
        /// The decoder's message.
        reason: String,
    },
    /// The CA certificate could not be used as a trust anchor.
    #[error("cannot trust the CA certificate in {origin}: {reason}")]
    BadCa {
        /// File name or description.
        origin: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("{context}: {source}")]
    Tls {
        /// What was being built.
        context: &'static str,
        /// rustls' error.
        source: rustls::Error,
    },
    /// Our own certificate does not carry a valid yilian identity.
    #[error("our certificate is not a yilian certificate: {0}")]
    OwnIdentity(#[source] IdentityError),
    /// The QUIC layer refused the TLS configuration.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(String),
    /// The UDP socket could not be opened.
    #[error("cannot open a UDP socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// rcgen could not generate a key or certificate.
    #[error("cannot generate {what}: {source}")]
    CertGen {
        /// What was being generated.
        what: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// Invalid input to certificate generation.
    #[error("{0}")]
    InvalidInput(String),
}

/// Why [`crate::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The relay address is not `host:port`.
    #[error("relay address \"{relay}\" is not host:port ({reason})")]
    BadAddress {
        /// What was given.
        relay: String,
        /// Why it does not parse.
        reason: &'static str,
    },
    /// Name resolution failed or returned nothing.
    #[error(
        "cannot resolve relay address \"{relay}\": {source} (check the host name and the network)"
    )]
    Resolve {
        /// What was given.
        relay: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// quinn refused to start the connection (bad server name, no client config...).
    #[error("cannot start a connection to {relay}: {source}")]
    Endpoint {
        /// What was given.
        relay: String,
        /// quinn's error.
        source: quinn::ConnectError,
    },
    /// The handshake or the connection failed; the message comes from [`crate::explain`].
    #[error("{}", crate::explain::explain(.0))]
    Connect(quinn::ConnectionError),
    /// The server's certificate is valid but its identity is not a relay.
    #[error("the server is {0}, not a relay: check the relay address (a certificate for a device or reader must never serve connections)")]
    NotARelay(PeerIdentity),
    /// The server's certificate carries no valid yilian identity.
    #[error("the relay's certificate carries no valid yilian identity: {0}")]
    Identity(IdentityError),
}

/// Why [`crate::accept`] failed, with the remote address for the relay's log.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The handshake failed; the message comes from [`crate::explain_handshake_failure`].
    #[error("connection from {remote}: {}", crate::explain::explain_handshake_failure(.error))]
    Handshake {
        /// The client's address.
        remote: SocketAddr,
        /// quinn's error.
        error: quinn::ConnectionError,
    },
    /// The client's certificate verified but carries no valid yilian identity.
    #[error("connection from {remote}: the client's certificate carries no valid yilian identity: {error}")]
    Identity {
        /// The client's address.
        remote: SocketAddr,
        /// What is wrong with it.
        error: IdentityError,
    },
}
