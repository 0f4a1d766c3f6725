//! The topology file as written by the administrator, before validation.
//!
//! Every table rejects unknown keys, so a typo (`from_site`, `departement`) is an error instead of
//! a silently ignored setting.

use serde::Deserialize;

use crate::ae::AeTitle;
use crate::identity::Identity;
use crate::priority::Priority;
use crate::site::Site;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopologyFile {
    pub alliance: AllianceTable,
    #[serde(default)]
    pub site: Vec<Site>,
    #[serde(default)]
    pub identity: Vec<Identity>,
    #[serde(default)]
    pub rule: Vec<RuleTable>,
    #[serde(default)]
    pub revoked: Vec<RevokedTable>,
    #[serde(default)]
    pub ae: Vec<AeTitle>,
}

/// `[alliance]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllianceTable {
    pub name: String,
}

/// One `[[rule]]`, with destinations still as text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleTable {
    pub name: String,
    #[serde(default)]
    pub from_sites: Vec<String>,
    pub modalities: Option<Vec<String>>,
    pub sop_classes: Option<Vec<String>>,
    pub body_parts: Option<Vec<String>>,
    pub to: Vec<String>,
    pub priority: Option<Priority>,
}

/// One `[[revoked]]`, with the serial still as text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokedTable {
    pub name: Option<String>,
    pub serial: Option<String>,
    pub reason: String,
}
