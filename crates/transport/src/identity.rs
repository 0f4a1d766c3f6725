//! Who a peer is: the identity carried in the SAN URI of its alliance certificate.
//!
//! The URI form is `urn:yilian:peer:<name>:<site>:<role>[:<department>]` (see
//! `docs/contracts.md`). This module is the only place that writes or reads it.

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::error::IdentityError;

/// Prefix of every yilian peer URI.
pub const SAN_URI_PREFIX: &str = "urn:yilian:peer:";

/// What a peer does in the alliance: the topology's role type, so that what a certificate says
/// and what the topology declares are compared as one type.
pub use yilian_route::Role;

/// A certificate serial number: the topology's type, so that a `[[revoked]]` serial and a
/// peer's certificate are compared as one type.
pub use yilian_route::CertSerial;

/// The authenticated identity of a peer, as issued by the alliance CA.
///
/// Build one with [`PeerIdentity::new`] (validated) or parse one with
/// [`PeerIdentity::from_san_uri`]; the fields are public for matching, and
/// [`PeerIdentity::validate`] re-checks a hand-built value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// Unique name of the peer within the alliance (also the certificate's CN).
    pub name: String,
    /// Site id from the topology (`township-a`, `county`, ...).
    pub site: String,
    /// What the peer does.
    pub role: Role,
    /// Department within the site, if the identity belongs to one.
    pub department: Option<String>,
}

impl PeerIdentity {
    /// A validated identity.
    pub fn new(
        name: &str,
        site: &str,
        role: Role,
        department: Option<&str>,
    ) -> Result<Self, IdentityError> {
        let id = PeerIdentity {
            name: name.to_string(),
            site: site.to_string(),
            role,
            department: department.map(str::to_string),
        };
        id.validate()?;
        Ok(id)
    }

    /// The identity of `topology` this certificate identity is, if declared exactly so (same
    /// name, site, role and department): the admission rule of every door that takes
    /// certificates (QUIC, HTTPS). Revocations are checked separately.
    pub fn declared_in<'t>(
        &self,
        topology: &'t yilian_route::Topology,
    ) -> Option<&'t yilian_route::Identity> {
        topology.declared(
            &self.name,
            &self.site,
            self.role,
            self.department.as_deref(),
        )
    }

    /// Check every label against `[a-z0-9][a-z0-9-]*`.
    pub fn validate(&self) -> Result<(), IdentityError> {
        check_label("name", &self.name)?;
        check_label("site", &self.site)?;
        if let Some(d) = &self.department {
            check_label("department", d)?;
        }
        Ok(())
    }

    /// `urn:yilian:peer:<name>:<site>:<role>[:<department>]`.
    pub fn san_uri(&self) -> String {
        let mut uri = format!("{SAN_URI_PREFIX}{}:{}:{}", self.name, self.site, self.role);
        if let Some(d) = &self.department {
            uri.push(':');
            uri.push_str(d);
        }
        uri
    }

    /// Parse a SAN URI; anything but the exact contract form is an error.
    pub fn from_san_uri(uri: &str) -> Result<Self, IdentityError> {
        let rest = uri
            .strip_prefix(SAN_URI_PREFIX)
            .ok_or_else(|| IdentityError::NotYilianUri(uri.to_string()))?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (name, site, role, department) = match parts.as_slice() {
            [name, site, role] => (*name, *site, *role, None),
            [name, site, role, dept] => (*name, *site, *role, Some(*dept)),
            _ => return Err(IdentityError::MalformedUri(uri.to_string())),
        };
        let role = role
            .parse::<Role>()
            .map_err(|e| IdentityError::UnknownRole(e.value))?;
        PeerIdentity::new(name, site, role, department)
    }

    /// `site` or `site/department`: the routing destination this identity belongs to.
    pub fn place(&self) -> String {
        match &self.department {
            Some(d) => format!("{}/{}", self.site, d),
            None => self.site.clone(),
        }
    }
}

impl fmt::Display for PeerIdentity {
    /// `county-radiology (reader, county/radiology)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.role, self.place())
    }
}

impl FromStr for PeerIdentity {
    type Err = IdentityError;

    /// Parses the SAN URI form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PeerIdentity::from_san_uri(s)
    }
}

fn check_label(field: &'static str, value: &str) -> Result<(), IdentityError> {
    let mut bytes = value.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(IdentityError::InvalidLabel {
            field,
            value: value.to_string(),
        })
    }
}

/// Parse a DER certificate and extract the identity from its single SAN URI.
///
/// This does not verify the certificate: rustls has already done so for a peer of an
/// established connection (see [`peer_identity`]).
pub fn identity_from_cert(der: &CertificateDer<'_>) -> Result<PeerIdentity, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    let uris: Vec<&str> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris.as_slice() {
        [] => Err(IdentityError::NoSanUri),
        [uri] => PeerIdentity::from_san_uri(uri),
        many => Err(IdentityError::SeveralSanUris(many.len())),
    }
}

/// The serial number of a DER certificate (not verified: see [`identity_from_cert`]).
pub fn certificate_serial(der: &CertificateDer<'_>) -> Result<CertSerial, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    Ok(CertSerial::from_be_bytes(cert.raw_serial()))
}

/// The end-entity certificate the peer of an established connection presented.
pub(crate) fn peer_leaf(
    conn: &quinn::Connection,
) -> Result<CertificateDer<'static>, IdentityError> {
    let any = conn
        .peer_identity()
        .ok_or(IdentityError::NoPeerCertificate)?;
    let chain = any
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| IdentityError::NoPeerCertificate)?;
    let chain: Vec<CertificateDer<'static>> = *chain;
    chain
        .into_iter()
        .next()
        .ok_or(IdentityError::NoPeerCertificate)
}

/// The authenticated identity of the peer of an established connection.
///
/// The certificate chain was verified against the alliance CA during the handshake; the
/// identity is read from its end-entity certificate only.
pub fn peer_identity(conn: &quinn::Connection) -> Result<PeerIdentity, IdentityError> {
    identity_from_cert(&peer_leaf(conn)?)
}

/// The serial number of the certificate the peer of an established connection presented:
/// what a `[[revoked]]` serial of the topology is compared with (and what the relay logs when
/// a peer connects, so an administrator can revoke that one certificate).
pub fn peer_serial(conn: &quinn::Connection) -> Result<CertSerial, IdentityError> {
    certificate_serial(&peer_leaf(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_place() {
        let r = PeerIdentity::new(
            "county-radiology",
            "county",
            Role::Reader,
            Some("radiology"),
        )
        .unwrap();
        assert_eq!(r.to_string(), "county-radiology (reader, county/radiology)");
        let d = PeerIdentity::new("tsdr1", "township-a", Role::Device, None).unwrap();
        assert_eq!(d.to_string(), "tsdr1 (device, township-a)");
    }

    #[test]
    fn role_strings() {
        for r in Role::ALL {
            assert_eq!(r.to_string().parse::<Role>().unwrap(), r);
        }
        assert!("Relay".parse::<Role>().is_err());
    }
}
