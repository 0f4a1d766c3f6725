//! Sites of the alliance: township health centers, county and provincial hospitals.

use serde::{Deserialize, Serialize};

/// The level of a site in the alliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    /// Township health center (乡镇卫生院).
    Township,
    /// County hospital (县医院), the hub of the alliance.
    County,
    /// Provincial or city hospital (省/市级医院), for consultations.
    Provincial,
}

/// One site, as declared in a `[[site]]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Unique id, `[a-z0-9][a-z0-9-]*`; appears in certificates and destinations.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Level of the site.
    pub kind: SiteKind,
    /// Reading departments at this site (`[a-z0-9][a-z0-9-]*` each); may be empty.
    #[serde(default)]
    pub departments: Vec<String>,
    /// Id of the site that receives this site's instances when no rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Department that receives instances routed here by default (from a child site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_department: Option<String>,
    /// Character set of text this site's devices write without declaring it (no Specific
    /// Character Set but bytes beyond ASCII, as many consoles in China write GBK): a DICOM
    /// defined term such as "GBK", "GB18030" or "ISO_IR 192".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
}

impl Site {
    /// Whether `department` is one of this site's departments.
    pub fn has_department(&self, department: &str) -> bool {
        self.departments.iter().any(|d| d == department)
    }
}
