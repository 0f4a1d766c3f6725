//! Peers of the alliance: devices, readers and relays.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ParseRoleError;

/// What a peer is allowed to do.
///
/// Text form (TOML, `Display`, `FromStr`, certificate URI): `device`, `reader`, `relay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends studies and live ECG as its own site (a modality console, an ECG cart, a gateway).
    Device,
    /// Receives what is routed to its site (and department), writes reports.
    Reader,
    /// A yilian relay; forwards to other relays.
    Relay,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Device, Role::Reader, Role::Relay];

    /// The text form (`device` / `reader` / `relay`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Device => "device",
            Role::Reader => "reader",
            Role::Relay => "relay",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseRoleError;

    /// Parses exactly `device`, `reader` or `relay` (lower case, as in certificates).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseRoleError {
                value: s.to_owned(),
            })
    }
}

/// One peer of the alliance, as declared in a `[[identity]]` table. Its certificate carries
/// [`Identity::peer_uri`].
///
/// `department` is only allowed for readers. A reader *with* a department receives what is routed
/// to `site/department`; a reader *without* one is a site-wide reader and receives what is routed
/// to the bare `site` (see [`crate::Topology::readers_for`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Unique name, `[a-z0-9][a-z0-9-]*`; the certificate CN.
    pub name: String,
    /// Id of the site the peer belongs to.
    pub site: String,
    /// What the peer may do.
    pub role: Role,
    /// Department at `site` (readers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

impl Identity {
    /// The SAN URI of this identity's certificate:
    /// `urn:yilian:peer:<name>:<site>:<role>[:<department>]` (see `docs/contracts.md`).
    pub fn peer_uri(&self) -> String {
        match &self.department {
            Some(department) => format!(
                "urn:yilian:peer:{}:{}:{}:{}",
                self.name, self.site, self.role, department
            ),
            None => format!("urn:yilian:peer:{}:{}:{}", self.name, self.site, self.role),
        }
    }
}
