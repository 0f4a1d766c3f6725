//! Certificate revocation lists (CRLs) published by the alliance CA.
//!
//! The relay checks client certificates against them during the handshake (webpki, through
//! rustls' client verifier, see [`crate::server_config_with_crls`]): a revoked certificate fails
//! the handshake with the TLS alert `certificate_revoked`, which the client explains as "the
//! relay refused our certificate: it has been revoked …". After a reload the relay also looks
//! up the certificates of its live connections ([`Crls::revokes`]) to close the ones a new CRL
//! revokes.
//!
//! Files are checked when loaded, so that a mistake is reported with the file's name instead
//! of refusing every client at the next handshake: PEM (one or more `X509 CRL` blocks) or DER;
//! issued **and signed** by a CA the relay trusts; in the RFC 5280 profile webpki supports.
//!
//! # Policy
//! - A CRL applies to the certificates of the CA that signed it. A certificate from a trusted
//!   CA that published no CRL is not checked: while an alliance changes CAs and the relay
//!   trusts both, it must not refuse every client of the CA without a CRL (rustls would report
//!   that "unknown revocation status" as an unknown CA, a misleading message). Since every file
//!   must come from a trusted CA, a CRL cannot silently apply to nobody.
//! - A CRL past its next-update date still applies (a stale list is better than none); the
//!   relay warns about it ([`Crls::out_of_date`]).
//! - Every certificate of the chain is checked, not only the end entity.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::OffsetDateTime;

use crate::identity::CertSerial;
use crate::tls::{parse_certs, TlsPem};

/// A CRL file that cannot be used; each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// The CA certificates to check the CRLs against are unusable (checked before, so rare).
    #[error("cannot check CRL files against the CA certificates: {0}")]
    Ca(String),
    /// The file could not be read.
    #[error("cannot read CRL file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Neither a PEM CRL nor a DER one.
    #[error(
        "CRL file {} holds no certificate revocation list (expected PEM \"-----BEGIN X509 CRL-----\" or DER){hint}",
        path.display()
    )]
    NoCrl {
        /// The file.
        path: PathBuf,
        /// Extra hint (starts with "; " when present).
        hint: &'static str,
    },
    /// The CRL does not parse.
    #[error("CRL file {} is not a valid certificate revocation list: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The CRL's issuer is none of the CAs the relay trusts.
    #[error(
        "CRL file {} was issued by \"{issuer}\", which is not a CA this relay trusts ([tls] ca): use the revocation list the alliance CA published",
        path.display()
    )]
    UnknownIssuer {
        /// The file.
        path: PathBuf,
        /// The CRL's issuer name.
        issuer: String,
    },
    /// The CRL names a trusted CA as issuer but that CA did not sign it.
    #[error(
        "CRL file {} claims to come from \"{issuer}\" but its signature does not verify with that CA's key: it is damaged or forged; fetch it again from the alliance CA",
        path.display()
    )]
    BadSignature {
        /// The file.
        path: PathBuf,
        /// The issuer it claims.
        issuer: String,
    },
    /// webpki refuses the CRL (version, missing next update, delta CRL, unsupported extension).
    #[error(
        "CRL file {} cannot be used: {reason} (yilian needs an RFC 5280 version 2 CRL with a next-update date, not a delta CRL)",
        path.display()
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// webpki's reason.
        reason: String,
    },
}

/// One CRL, as loaded from a file.
#[derive(Clone)]
struct Crl {
    path: PathBuf,
    der: CertificateRevocationListDer<'static>,
    /// DER of the issuer's distinguished name.
    issuer: Vec<u8>,
    revoked: HashSet<CertSerial>,
    next_update: Option<OffsetDateTime>,
}

/// The CRLs a relay applies to client certificates; empty = no CRL configured.
#[derive(Clone, Default)]
pub struct Crls {
    lists: Vec<Crl>,
}

impl fmt::Debug for Crls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crls")
            .field("lists", &self.lists.len())
            .field("revoked", &self.revoked_count())
            .finish()
    }
}

impl Crls {
    /// Read and check every file (PEM or DER; a PEM file may hold several CRLs) against the
    /// CA certificates of `tls`. The first problem found is returned.
    pub fn load(paths: &[PathBuf], tls: &TlsPem) -> Result<Crls, CrlError> {
        if paths.is_empty() {
            return Ok(Crls::default());
        }
        let ca_error = |e: crate::TransportError| CrlError::Ca(e.to_string());
        let cas =
            parse_certs(&tls.ca, "CA certificate", "the CA certificate PEM").map_err(ca_error)?;
        let roots = tls.roots().map_err(ca_error)?;
        let mut lists = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| CrlError::Read {
                path: path.clone(),
                source,
            })?;
            for der in crl_ders(path, &bytes)? {
                lists.push(check(path, der, &cas, &roots)?);
            }
        }
        Ok(Crls { lists })
    }

    /// Whether no CRL is configured.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// How many certificates the CRLs revoke in all.
    pub fn revoked_count(&self) -> usize {
        self.lists.iter().map(|l| l.revoked.len()).sum()
    }

    /// The file of the CRL that revokes `leaf` (same issuer, serial listed), if any.
    pub fn revokes(&self, leaf: &CertificateDer<'_>) -> Option<&Path> {
        if self.lists.is_empty() {
            return None;
        }
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        let serial = CertSerial::from_be_bytes(cert.raw_serial());
        let issuer = cert.issuer().as_raw();
        self.lists
            .iter()
            .find(|l| l.issuer == issuer && l.revoked.contains(&serial))
            .map(|l| l.path.as_path())
    }

    /// [`Crls::revokes`] for the certificate the peer of `conn` presented.
    pub fn revokes_peer(&self, conn: &quinn::Connection) -> Option<&Path> {
        if self.lists.is_empty() {
            return None;
        }
        let leaf = crate::identity::peer_leaf(conn).ok()?;
        self.revokes(&leaf)
    }

    /// CRLs whose next-update date is before `now`, with that date: the CA should have
    /// published a newer one (they still apply).
    pub fn out_of_date(&self, now: OffsetDateTime) -> Vec<(&Path, OffsetDateTime)> {
        self.lists
            .iter()
            .filter_map(|l| {
                l.next_update
                    .filter(|&t| t < now)
                    .map(|t| (l.path.as_path(), t))
            })
            .collect()
    }

    /// The CRLs, DER, for the verifier.
    pub(crate) fn ders(&self) -> impl Iterator<Item = CertificateRevocationListDer<'static>> + '_ {
        self.lists.iter().map(|l| l.der.clone())
    }
}

/// The DER CRLs in a file: every `X509 CRL` block of a PEM file, or the file itself.
fn crl_ders(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, CrlError> {
    let text = bytes.trim_ascii_start();
    if !text.starts_with(b"-----BEGIN") {
        if text.is_empty() {
            return Err(CrlError::NoCrl {
                path: path.to_path_buf(),
                hint: "; the file is empty",
            });
        }
        return Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())]);
    }
    let ders = CertificateRevocationListDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CrlError::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if ders.is_empty() {
        let hint = if text.windows(17).any(|w| w == b"BEGIN CERTIFICATE") {
            "; it holds a certificate: give the CA's revocation list, not a certificate"
        } else {
            ""
        };
        return Err(CrlError::NoCrl {
            path: path.to_path_buf(),
            hint,
        });
    }
    Ok(ders)
}

/// Parse one CRL, find the trusted CA that issued it, verify its signature, and make sure
/// webpki accepts it.
fn check(
    path: &Path,
    der: CertificateRevocationListDer<'static>,
    cas: &[CertificateDer<'static>],
    roots: &RootCertStore,
) -> Result<Crl, CrlError> {
    let malformed = |reason: String| CrlError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let (_, crl) =
        x509_parser::parse_x509_crl(der.as_ref()).map_err(|e| malformed(e.to_string()))?;
    let issuer_name = crl.issuer().to_string();
    let issuer = crl.issuer().as_raw().to_vec();
    let ca = cas
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .find(|(_, c)| c.subject().as_raw() == issuer.as_slice())
        .ok_or_else(|| CrlError::UnknownIssuer {
            path: path.to_path_buf(),
            issuer: issuer_name.clone(),
        })?;
    crl.verify_signature(ca.1.public_key())
        .map_err(|_| CrlError::BadSignature {
            path: path.to_path_buf(),
            issuer: issuer_name,
        })?;
    crate::tls::client_verifier(roots.clone(), std::iter::once(der.clone())).map_err(|e| {
        CrlError::Unsupported {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| CertSerial::from_be_bytes(r.raw_serial()))
        .collect();
    let next_update = crl.next_update().map(|t| t.to_datetime());
    Ok(Crl {
        path: path.to_path_buf(),
        der,
        issuer,
        revoked,
        next_update,
    })
}
