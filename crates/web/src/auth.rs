//! Who is asking: an identity of the topology, by certificate or by bearer token.
//!
//! The same admission rule as the QUIC door: a certificate's identity must be declared exactly
//! so in the topology in force ([`yilian_route::Topology::declared`]) and not on its deny list;
//! a token's identity must be declared and not denied by name. A request with neither is
//! refused as unauthenticated (401); what a known identity may see is decided per request
//! (a reader sees what is routed to it, `qido.rs`).

use std::time::SystemTime;

use yilian_route::{CertSerial, Identity, Role, Topology};
use yilian_transport::PeerIdentity;

use crate::token::{TokenError, Tokens};

/// The certificate a TLS connection presented, read once per connection.
#[derive(Clone, Debug)]
pub enum ConnCert {
    /// No client certificate (a browser): requests need a token.
    None,
    /// A certificate of the alliance CA with a yilian identity.
    Peer {
        identity: PeerIdentity,
        serial: CertSerial,
    },
    /// A certificate of the alliance CA whose identity could not be read.
    Unreadable(String),
}

/// How a caller proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Its alliance certificate.
    Certificate,
    /// A bearer token; its id (for the audit log).
    Token { id: String },
}

/// An authenticated caller: a declared identity of the topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    pub via: Via,
}

impl Caller {
    /// The actor of the audit trail: the identity, and how it came.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Certificate => format!("{} (HTTPS)", self.identity.name),
            Via::Token { id } => format!("{} (HTTPS, token {id})", self.identity.name),
        }
    }

    /// Whether the caller is a reader (may search and retrieve what is routed to it).
    pub fn is_reader(&self) -> bool {
        self.identity.role == Role::Reader
    }
}

/// Why a request is not authenticated (all answered 401, with this text).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: present an alliance client certificate or an `Authorization: Bearer <token>` header (`yilian token issue --identity NAME` on the relay makes one)")]
    NoCredentials,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the client certificate has no readable yilian identity: {0}")]
    Certificate(String),
    #[error("unknown identity {0}: it is not declared in this relay's topology (the alliance administrator must add it)")]
    Unknown(String),
    #[error("{name} is revoked: {reason}")]
    Revoked { name: String, reason: String },
}

/// Authenticate a request: a bearer token if the request carries one, else the connection's
/// certificate.
pub fn authenticate(
    topology: &Topology,
    tokens: &Tokens,
    cert: &ConnCert,
    authorization: Option<&str>,
    now: SystemTime,
) -> Result<Caller, AuthError> {
    if let Some(header) = authorization {
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::NotBearer)?;
        let claims = tokens.verify(token.trim(), now)?;
        let identity = topology
            .identity(&claims.identity)
            .ok_or_else(|| AuthError::Unknown(claims.identity.clone()))?;
        if let Some(r) = topology
            .revocations()
            .find(|r| r.name.as_deref() == Some(identity.name.as_str()))
        {
            return Err(AuthError::Revoked {
                name: identity.name.clone(),
                reason: r.reason.clone(),
            });
        }
        return Ok(Caller {
            identity: identity.clone(),
            via: Via::Token { id: claims.id },
        });
    }
    match cert {
        ConnCert::None => Err(AuthError::NoCredentials),
        ConnCert::Unreadable(e) => Err(AuthError::Certificate(e.clone())),
        ConnCert::Peer { identity, serial } => {
            let declared = identity
                .declared_in(topology)
                .ok_or_else(|| AuthError::Unknown(identity.to_string()))?;
            if let Some(r) = topology.revoked(&identity.name, serial) {
                return Err(AuthError::Revoked {
                    name: identity.name.clone(),
                    reason: r.reason.clone(),
                });
            }
            Ok(Caller {
                identity: declared.clone(),
                via: Via::Certificate,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn setup() -> (tempfile::TempDir, Tokens, Topology) {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::open(dir.path()).unwrap();
        (dir, tokens, Topology::example())
    }

    #[test]
    fn a_token_of_a_declared_reader_authenticates_as_that_reader() {
        let (_d, tokens, topo) = setup();
        let now = SystemTime::now();
        let (token, claims) = tokens
            .issue("county-radiology", Duration::from_secs(60), now)
            .unwrap();
        let c = authenticate(
            &topo,
            &tokens,
            &ConnCert::None,
            Some(&format!("Bearer {token}")),
            now,
        )
        .unwrap();
        assert_eq!(c.identity.name, "county-radiology");
        assert!(c.is_reader());
        assert_eq!(c.via, Via::Token { id: claims.id });
    }

    #[test]
    fn no_credentials_an_unknown_identity_or_a_bad_header_are_refused() {
        let (_d, tokens, topo) = setup();
        let now = SystemTime::now();
        assert!(matches!(
            authenticate(&topo, &tokens, &ConnCert::None, None, now),
            Err(AuthError::NoCredentials)
        ));
        assert!(matches!(
            authenticate(&topo, &tokens, &ConnCert::None, Some("Basic abc"), now),
            Err(AuthError::NotBearer)
        ));
        let (token, _) = tokens
            .issue("nobody-declared", Duration::from_secs(60), now)
            .unwrap();
        assert!(matches!(
            authenticate(
                &topo,
                &tokens,
                &ConnCert::None,
                Some(&format!("Bearer {token}")),
                now
            ),
            Err(AuthError::Unknown(_))
        ));
    }

    #[test]
    fn a_certificate_must_match_its_declaration() {
        let (_d, tokens, topo) = setup();
        let now = SystemTime::now();
        let serial: CertSerial = "01".parse().unwrap();
        let id = topo.identity("county-radiology").unwrap().clone();
        let good =
            PeerIdentity::new(&id.name, &id.site, id.role, id.department.as_deref()).unwrap();
        let c = authenticate(
            &topo,
            &tokens,
            &ConnCert::Peer {
                identity: good,
                serial: serial.clone(),
            },
            None,
            now,
        )
        .unwrap();
        assert_eq!(c.via, Via::Certificate);
        // Same name, another site: not the declared identity.
        let wrong =
            PeerIdentity::new(&id.name, "township-a", id.role, id.department.as_deref()).unwrap();
        assert!(matches!(
            authenticate(
                &topo,
                &tokens,
                &ConnCert::Peer {
                    identity: wrong,
                    serial
                },
                None,
                now
            ),
            Err(AuthError::Unknown(_))
        ));
    }
}
