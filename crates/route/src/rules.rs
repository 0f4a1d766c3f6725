//! Routing rules, the routing input and the routing decision.

use serde::Serialize;

use crate::destination::Destination;
use crate::priority::Priority;

/// One validated `[[rule]]`.
///
/// A rule matches an instance when **every** filter it has matches (filters are AND-ed; the
/// values inside one filter are OR-ed):
/// - `from_sites`: the source site is one of them; empty = any site;
/// - `modalities`: the modality equals one of them, ignoring ASCII case (an instance without a
///   modality never matches a rule that has `modalities`); `None` = any;
/// - `sop_classes`: the SOP class UID equals one of them (an instance without one never
///   matches); `None` = any;
/// - `body_parts`: the instance has a body part equal to one of them, ignoring ASCII case
///   (an instance without a body part never matches a rule that has `body_parts`); `None` = any.
///
/// Instance values are compared after trimming DICOM padding (trailing NUL and spaces).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Unique name; reported in [`RouteDecision::rules`] and in the audit trail.
    pub name: String,
    /// Source sites this rule applies to; empty = any site.
    pub from_sites: Vec<String>,
    /// Modalities (e.g. `CT`, `ECG`); `None` = any.
    pub modalities: Option<Vec<String>>,
    /// SOP class UIDs; `None` = any.
    pub sop_classes: Option<Vec<String>>,
    /// Body parts examined (e.g. `HEAD`); `None` = any.
    pub body_parts: Option<Vec<String>>,
    /// Where matching instances go (never empty).
    pub to: Vec<Destination>,
    /// Priority this rule raises matching instances to; `None` = leave as requested.
    pub priority: Option<Priority>,
}

impl Rule {
    /// Whether this rule applies to `input` (see the type docs for the semantics).
    pub fn matches(&self, input: &RouteInput<'_>) -> bool {
        let from_ok =
            self.from_sites.is_empty() || self.from_sites.iter().any(|s| s == input.source_site);
        if !from_ok {
            return false;
        }
        if let Some(modalities) = &self.modalities {
            let Some(modality) = input.modality.map(trim_dicom) else {
                return false;
            };
            if !modalities.iter().any(|m| m.eq_ignore_ascii_case(modality)) {
                return false;
            }
        }
        if let Some(sop_classes) = &self.sop_classes {
            let Some(sop_class) = input.sop_class_uid.map(trim_dicom) else {
                return false;
            };
            if !sop_classes.iter().any(|c| c == sop_class) {
                return false;
            }
        }
        if let Some(body_parts) = &self.body_parts {
            let Some(body_part) = input.body_part.map(trim_dicom) else {
                return false;
            };
            if !body_parts.iter().any(|b| b.eq_ignore_ascii_case(body_part)) {
                return false;
            }
        }
        true
    }
}

/// Strips DICOM value padding (NUL for UIDs, space for text) and surrounding whitespace.
pub(crate) fn trim_dicom(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// What routing needs to know about one instance. The source site must come from the sender's
/// authenticated identity, never from the instance itself. Attributes the instance lacks are
/// `None`: routing uses what is present (rules that do not filter on a missing attribute still
/// match; when no rule matches, the default route applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInput<'a> {
    /// Site id of the sender.
    pub source_site: &'a str,
    /// Modality (0008,0060), e.g. `CT`, if present.
    pub modality: Option<&'a str>,
    /// SOP Class UID (0008,0016), if present.
    pub sop_class_uid: Option<&'a str>,
    /// Body Part Examined (0018,0015), if present.
    pub body_part: Option<&'a str>,
    /// Priority the sender asked for.
    pub requested_priority: Priority,
}

impl<'a> RouteInput<'a> {
    /// An input without body part, requested at [`Priority::Routine`].
    pub fn new(source_site: &'a str, modality: &'a str, sop_class_uid: &'a str) -> Self {
        RouteInput {
            source_site,
            modality: Some(modality),
            sop_class_uid: Some(sop_class_uid),
            body_part: None,
            requested_priority: Priority::Routine,
        }
    }

    /// The same input without a modality (many Secondary Capture files have none).
    pub fn without_modality(mut self) -> Self {
        self.modality = None;
        self
    }

    /// The same input with a body part.
    pub fn with_body_part(mut self, body_part: &'a str) -> Self {
        self.body_part = Some(body_part);
        self
    }

    /// The same input with a requested priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.requested_priority = priority;
        self
    }
}

/// Where one instance goes and how urgently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteDecision {
    /// Destinations, de-duplicated, in the order of first appearance (rules in file order, each
    /// rule's `to` in order). Never empty.
    pub destinations: Vec<Destination>,
    /// `max(requested, priority of every matching rule)`.
    pub priority: Priority,
    /// Names of the matching rules in file order; empty = the default route (source site's parent).
    pub rules: Vec<String>,
}

impl RouteDecision {
    /// Whether this is the default route (no rule matched).
    pub fn is_default_route(&self) -> bool {
        self.rules.is_empty()
    }
}
