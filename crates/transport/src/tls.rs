//! TLS material (PEM files or strings) and the rustls configurations built from it.
//!
//! Every rustls configuration here is built with an explicit ring provider and TLS 1.3 only:
//! the process-wide default provider is never consulted (it panics when both ring and
//! aws-lc-rs are linked, which happens in this workspace).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::crl::Crls;
use crate::error::TransportError;
use crate::identity::{identity_from_cert, PeerIdentity};
use crate::ALPN;

/// The crypto provider every configuration of this crate uses: ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Paths of our certificate (chain), our private key and the alliance CA certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our certificate, PEM (leaf first, then any intermediates).
    pub cert: PathBuf,
    /// Our private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The alliance CA certificate(s), PEM: the only trust anchors.
    pub ca: PathBuf,
}

impl TlsFiles {
    /// Read the three files and check that each holds what it should.
    pub fn load(&self) -> Result<TlsPem, TransportError> {
        let read = |what: &'static str, path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| TransportError::ReadFile {
                what,
                path: path.clone(),
                source,
            })
        };
        let pem = TlsPem {
            cert: read("certificate", &self.cert)?,
            key: read("key", &self.key)?,
            ca: read("CA certificate", &self.ca)?,
        };
        let origin = |p: &PathBuf| p.display().to_string();
        parse_certs(&pem.cert, "certificate", &origin(&self.cert))?;
        parse_key(&pem.key, &origin(&self.key))?;
        parse_certs(&pem.ca, "CA certificate", &origin(&self.ca))?;
        Ok(pem)
    }
}

/// PEM material already in memory (e.g. dev certificates embedded with `include_str!`).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPem {
    /// Our certificate chain, PEM.
    pub cert: String,
    /// Our private key, PEM.
    pub key: String,
    /// The alliance CA certificate(s), PEM.
    pub ca: String,
}

impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPem")
            .field("cert", &format_args!("<{} bytes>", self.cert.len()))
            .field("key", &format_args!("<redacted>"))
            .field("ca", &format_args!("<{} bytes>", self.ca.len()))
            .finish()
    }
}

impl TlsPem {
    /// Our certificate chain, leaf first.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TransportError> {
        parse_certs(&self.cert, "certificate", "the certificate PEM")
    }

    /// Our private key.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, TransportError> {
        parse_key(&self.key, "the key PEM")
    }

    /// The alliance CA certificate(s) as the only trust anchors.
    pub fn roots(&self) -> Result<RootCertStore, TransportError> {
        let origin = "the CA certificate PEM";
        let mut roots = RootCertStore::empty();
        for cert in parse_certs(&self.ca, "CA certificate", origin)? {
            roots.add(cert).map_err(|e| TransportError::BadCa {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(roots)
    }

    /// The identity our own certificate carries (for logs: "connecting as ...").
    pub fn identity(&self) -> Result<PeerIdentity, TransportError> {
        let certs = self.certificates()?;
        let leaf = certs
            .first()
            .ok_or_else(|| no_pem("certificate", "the certificate PEM", ""))?;
        identity_from_cert(leaf).map_err(TransportError::OwnIdentity)
    }
}

/// rustls server configuration: our certificate, client certificates required and verified
/// against the alliance CA only, TLS 1.3, ALPN `yilian/1`.
pub fn server_tls_config(tls: &TlsPem) -> Result<rustls::ServerConfig, TransportError> {
    server_tls_config_with_crls(tls, &Crls::default())
}

/// [`server_tls_config`] that also refuses client certificates revoked by `crls` (TLS alert
/// `certificate_revoked`); see [`crate::crl`] for the policy.
pub fn server_tls_config_with_crls(
    tls: &TlsPem,
    crls: &Crls,
) -> Result<rustls::ServerConfig, TransportError> {
    let mut config = server_config(tls, crls, true, &[&rustls::version::TLS13])?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A server configuration with our certificate, the alliance CA (and `crls`) for client
/// certificates (`required` or optional), and these TLS versions.
fn server_config(
    tls: &TlsPem,
    crls: &Crls,
    required: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ServerConfig, TransportError> {
    let verifier =
        verifier(tls.roots()?, crls.ders(), required).map_err(|e| TransportError::BadCa {
            origin: "the CA certificate PEM".to_string(),
            reason: e.to_string(),
        })?;
    rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .map_err(|source| TransportError::Tls {
            context: "cannot select the TLS versions",
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls.certificates()?, tls.private_key()?)
        .map_err(|source| TransportError::Tls {
            context: "cannot use our certificate and key (does the key belong to the certificate?)",
            source,
        })
}

/// Client certificates required, chained to `roots`, and (when `crls` holds any) not revoked by
/// them; a certificate from a CA without a CRL is not revocation-checked (see [`crate::crl`]).
pub(crate) fn client_verifier(
    roots: RootCertStore,
    crls: impl IntoIterator<Item = CertificateRevocationListDer<'static>>,
) -> Result<Arc<dyn ClientCertVerifier>, VerifierBuilderError> {
    verifier(roots, crls, true)
}

fn verifier(
    roots: RootCertStore,
    crls: impl IntoIterator<Item = CertificateRevocationListDer<'static>>,
    required: bool,
) -> Result<Arc<dyn ClientCertVerifier>, VerifierBuilderError> {
    let crls: Vec<_> = crls.into_iter().collect();
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider());
    if !crls.is_empty() {
        builder = builder.with_crls(crls).allow_unknown_revocation_status();
    }
    if !required {
        builder = builder.allow_unauthenticated();
    }
    builder.build()
}

/// rustls server configuration for HTTPS (DICOMweb, later the console): our certificate, TLS
/// 1.3 and 1.2 (viewers and browsers), ALPN `h2` then `http/1.1`. A client certificate is
/// **optional** (a browser user has a token instead) but, when one is presented, it must chain
/// to the alliance CA and not be revoked by `crls`; the caller reads it with
/// [`identity_from_cert`].
pub fn https_server_config(
    tls: &TlsPem,
    crls: &Crls,
) -> Result<rustls::ServerConfig, TransportError> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = server_config(tls, crls, false, &versions)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// rustls client configuration: our certificate presented to the server, the alliance CA as the
/// only trust anchor, TLS 1.3, ALPN `yilian/1`.
pub fn client_tls_config(tls: &TlsPem) -> Result<rustls::ClientConfig, TransportError> {
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TransportError::Tls {
            context: "cannot select TLS 1.3",
            source,
        })?
        .with_root_certificates(tls.roots()?)
        .with_client_auth_cert(tls.certificates()?, tls.private_key()?)
        .map_err(|source| TransportError::Tls {
            context: "cannot use our certificate and key (does the key belong to the certificate?)",
            source,
        })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

fn no_pem(what: &'static str, origin: &str, hint: &str) -> TransportError {
    TransportError::NoPem {
        what,
        origin: origin.to_string(),
        hint: hint.to_string(),
    }
}

/// All certificates in `pem`; at least one.
pub(crate) fn parse_certs(
    pem: &str,
    what: &'static str,
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TransportError::BadPem {
            what,
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        let hint = if pem.contains("PRIVATE KEY-----") {
            "; it holds a private key: were the certificate and key files swapped?"
        } else {
            ""
        };
        return Err(no_pem(what, origin, hint));
    }
    Ok(certs)
}

/// The first private key in `pem`.
pub(crate) fn parse_key(pem: &str, origin: &str) -> Result<PrivateKeyDer<'static>, TransportError> {
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            let hint = if pem.contains("ENCRYPTED PRIVATE KEY-----") {
                "; it is encrypted: yilian needs an unencrypted key (keep the file mode 0600)"
            } else if pem.contains("BEGIN CERTIFICATE-----") {
                "; it holds a certificate: were the certificate and key files swapped?"
            } else {
                ""
            };
            Err(no_pem("private key", origin, hint))
        }
        Err(e) => Err(TransportError::BadPem {
            what: "private key",
            origin: origin.to_string(),
            reason: e.to_string(),
        }),
    }
}
