//! Where an instance is routed: a site, optionally one of its departments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ParseDestinationError;
use crate::name::is_valid_name;

/// A routing destination. Text form: `site` or `site/department` (as in a rule's `to`).
///
/// Serialized (serde) as that text form, so it can key outboxes and appear in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination {
    /// Site id.
    pub site: String,
    /// Department at that site, if the destination names one.
    pub department: Option<String>,
}

impl Destination {
    /// A destination for a whole site (no department).
    pub fn site(site: impl Into<String>) -> Self {
        Destination {
            site: site.into(),
            department: None,
        }
    }

    /// A destination for one department of a site.
    pub fn department(site: impl Into<String>, department: impl Into<String>) -> Self {
        Destination {
            site: site.into(),
            department: Some(department.into()),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.department {
            Some(department) => write!(f, "{}/{}", self.site, department),
            None => f.write_str(&self.site),
        }
    }
}

impl FromStr for Destination {
    type Err = ParseDestinationError;

    /// Parses `site` or `site/department`; both parts must match `[a-z0-9][a-z0-9-]*`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDestinationError {
            value: s.to_owned(),
        };
        let (site, department) = match s.split_once('/') {
            Some((site, department)) => (site, Some(department)),
            None => (s, None),
        };
        if !is_valid_name(site) {
            return Err(err());
        }
        if let Some(department) = department {
            // Also rejects a second '/', which is not a name character.
            if !is_valid_name(department) {
                return Err(err());
            }
        }
        Ok(Destination {
            site: site.to_owned(),
            department: department.map(str::to_owned),
        })
    }
}

impl TryFrom<String> for Destination {
    type Error = ParseDestinationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Destination> for String {
    fn from(value: Destination) -> Self {
        value.to_string()
    }
}
