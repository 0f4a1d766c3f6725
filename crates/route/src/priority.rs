//! Delivery priority of a routed instance.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ParsePriorityError;

/// How urgently an instance must be delivered. Ordered: `Urgent > Routine`, so the priority of a
/// routing decision is simply the `max` of everything that applies.
///
/// Text form (TOML, `Display`, `FromStr`): `routine`, `urgent`. Compact form for wire and storage:
/// [`Priority::as_u8`] / [`Priority::from_u8`] (0 = routine, 1 = urgent).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Normal queue order.
    #[default]
    Routine,
    /// Jumps every queue (stroke CT, STEMI ECG).
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 2] = [Priority::Routine, Priority::Urgent];

    /// The compact numeric form: 0 = routine, 1 = urgent. Higher is more urgent.
    pub fn as_u8(self) -> u8 {
        match self {
            Priority::Routine => 0,
            Priority::Urgent => 1,
        }
    }

    /// Inverse of [`Priority::as_u8`]; `None` for an unknown value.
    pub fn from_u8(value: u8) -> Option<Priority> {
        match value {
            0 => Some(Priority::Routine),
            1 => Some(Priority::Urgent),
            _ => None,
        }
    }

    /// The text form (`routine` / `urgent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Routine => "routine",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParsePriorityError;

    /// Parses exactly `routine` or `urgent` (lower case, as in the topology file).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParsePriorityError {
                value: s.to_owned(),
            })
    }
}
