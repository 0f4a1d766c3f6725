//! Who is uploading, and through which front door.

use serde::{Deserialize, Serialize};
use std::fmt;
use yilian_route::Role;

/// The front door an upload came through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Door {
    /// yilian/1 over QUIC, identified by the peer's certificate.
    Quic,
    /// DICOM DIMSE (C-STORE), identified by the calling AE title declared in the topology.
    Dimse {
        /// The calling AE title, as the device sent it (trimmed).
        calling_ae: String,
    },
    /// DICOMweb STOW-RS over HTTPS, identified by a client certificate or a bearer token.
    Https {
        /// The token's id, when a token was the credential.
        token: Option<String>,
    },
}

/// An authenticated uploader: an identity of the topology (its site is where the upload comes
/// from, never what the upload claims) and the door it used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The identity's name (the certificate's CN; for an AE title, the identity it acts as).
    pub name: String,
    /// Its site.
    pub site: String,
    /// What it may do.
    pub role: Role,
    /// Its department, if any.
    pub department: Option<String>,
    /// How it reached the relay.
    pub door: Door,
}

impl Principal {
    /// Whether this principal may upload (devices, and relays forwarding for their sites).
    pub fn may_upload(&self) -> bool {
        matches!(self.role, Role::Device | Role::Relay)
    }

    /// The actor written to the audit trail: the identity, and the AE title for DIMSE.
    pub fn actor(&self) -> String {
        match &self.door {
            Door::Quic => self.name.clone(),
            Door::Dimse { calling_ae } => format!("{} (AE {calling_ae})", self.name),
            Door::Https { token: None } => format!("{} (HTTPS)", self.name),
            Door::Https { token: Some(id) } => format!("{} (HTTPS, token {id})", self.name),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.actor())
    }
}
