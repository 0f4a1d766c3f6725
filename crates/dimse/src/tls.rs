//! DICOM TLS (PS3.15 Annex B.1, the BCP 195 profiles): mutual TLS around the same DIMSE
//! driver, with rustls and the ring provider.
//!
//! DICOM TLS is plain TLS on a TCP connection (no ALPN, no STARTTLS): the Upper Layer starts
//! once the handshake is done. [`crate::scp::serve`] and [`crate::scu::StoreScu`] are generic
//! over `AsyncRead + AsyncWrite`, so a [`ServerTlsStream`] or [`ClientTlsStream`] goes where a
//! `TcpStream` went:
//!
//! ```no_run
//! # async fn f(listener: yilian_dimse::tcp::Listener, handler: impl yilian_dimse::scp::ScpHandler) -> Result<(), Box<dyn std::error::Error>> {
//! use yilian_dimse::{scp, tls};
//! let config = tls::server_config_from_pem("ca.pem".as_ref(), "relay.pem".as_ref(), "relay.key".as_ref())?;
//! let (tcp, peer) = listener.accept().await?;
//! let stream = tls::accept(tcp, config.clone(), tls::DEFAULT_HANDSHAKE_TIMEOUT).await?;
//! let identity = tls::peer_certificates(&stream).map(|chain| chain[0].clone()); // → the relay's identity map
//! scp::serve(stream, peer, &handler, &scp::ScpConfig::default()).await?;
//! # Ok(()) }
//! ```
//!
//! * The **server** requires a client certificate that chains to the given CA (mutual TLS):
//!   a client without one, or with one from another CA, fails in the handshake, before a
//!   byte of DICOM is read. [`accept`] bounds the handshake by a timeout (a peer that
//!   connects and says nothing costs a socket for that long only).
//! * The **client** verifies the server against the CA and presents its own certificate.
//! * [`peer_certificates`] gives the verified chain (leaf first); mapping it to an identity
//!   (site, device) is the relay's business.
//!
//! Keys and certificates load from PEM with `rustls-pki-types`' [`PemObject`].

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

pub use tokio_rustls::client::TlsStream as ClientTlsStream;
pub use tokio_rustls::server::TlsStream as ServerTlsStream;

/// How long [`accept`] and [`connect`] wait for a handshake by default: 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong setting up or running a TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing of the expected kind.
    #[error("{path}: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client certificate verifier could not be built (e.g. an empty CA set).
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// Not a valid DNS name or IP address to verify the server against.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The handshake failed (bad or missing certificate, another CA, not TLS at all…).
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    /// The handshake did not finish in time.
    #[error("TLS handshake did not finish within {0:?}")]
    Timeout(Duration),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Every certificate in a PEM file (a chain: leaf first; or a CA bundle).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// A root store holding the CA certificates of a PEM file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certificates(path)? {
        roots.add(cert).map_err(|e| pem_error(path, e))?;
    }
    Ok(roots)
}

/// A server configuration for mutual TLS: our chain and key; clients must present a
/// certificate that chains to `client_roots`.
pub fn server_config(
    client_roots: RootCertStore,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// [`server_config`] from PEM files: the CA (bundle) that client certificates must chain to,
/// our certificate chain, our private key.
pub fn server_config_from_pem(
    ca: &Path,
    chain: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config(
        load_roots(ca)?,
        load_certificates(chain)?,
        load_private_key(key)?,
    )
}

/// A client configuration: servers are verified against `roots`; `identity` (chain, key) is
/// the client certificate (`None`: no client certificate, which a DICOM TLS server of ours
/// refuses).
pub fn client_config(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// [`client_config`] from PEM files: the CA to verify servers against, and our certificate
/// chain and key.
pub fn client_config_from_pem(
    ca: &Path,
    chain: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config(
        load_roots(ca)?,
        Some((load_certificates(chain)?, load_private_key(key)?)),
    )
}

/// Run the server side of the handshake on an accepted stream (e.g. from
/// [`crate::tcp::Listener::accept`], TCP_NODELAY already set), within `timeout`.
pub async fn accept<IO>(
    io: IO,
    config: Arc<ServerConfig>,
    timeout: Duration,
) -> Result<ServerTlsStream<IO>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::time::timeout(timeout, acceptor.accept(io))
        .await
        .map_err(|_| TlsError::Timeout(timeout))?
        .map_err(TlsError::Handshake)
}

/// Run the client side of the handshake on a connected stream (e.g. from
/// [`crate::tcp::connect`]), verifying the server as `server_name` (a DNS name or an IP
/// address in its certificate), within `timeout`.
pub async fn connect<IO>(
    io: IO,
    server_name: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<ClientTlsStream<IO>, TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(timeout, connector.connect(name, io))
        .await
        .map_err(|_| TlsError::Timeout(timeout))?
        .map_err(TlsError::Handshake)
}

/// The client's verified certificate chain (leaf first) on a server-side stream.
pub fn peer_certificates<IO>(stream: &ServerTlsStream<IO>) -> Option<&[CertificateDer<'static>]> {
    stream.get_ref().1.peer_certificates()
}

/// The server's certificate chain on a client-side stream.
pub fn server_certificates<IO>(stream: &ClientTlsStream<IO>) -> Option<&[CertificateDer<'static>]> {
    stream.get_ref().1.peer_certificates()
}
