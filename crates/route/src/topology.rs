//! The validated alliance topology and the questions it answers.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::ae::AeTitle;
use crate::destination::Destination;
use crate::error::{RouteError, TopologyError};
use crate::file::TopologyFile;
use crate::identity::{Identity, Role};
use crate::revocation::Revocation;
use crate::rules::{RouteDecision, RouteInput, Rule};
use crate::serial::CertSerial;
use crate::site::Site;

/// The example alliance of `fixtures/topology.toml` (development only).
const EXAMPLE_TOML: &str = include_str!("../../../fixtures/topology.toml");

/// A validated, immutable alliance topology: sites, identities, routing rules and the deny list
/// of revoked certificates.
///
/// Built only through [`Topology::from_toml_str`] / [`Topology::load`], so every reference in it
/// (parent, identity site and department, rule sources and destinations) points at something
/// declared, and parents form no cycle.
#[derive(Clone, Debug)]
pub struct Topology {
    pub(crate) alliance_name: String,
    /// In file order.
    pub(crate) sites: Vec<Site>,
    pub(crate) site_index: HashMap<String, usize>,
    /// In file order.
    pub(crate) identities: Vec<Identity>,
    pub(crate) identity_index: HashMap<String, usize>,
    /// In file order.
    pub(crate) rules: Vec<Rule>,
    /// `[[revoked]]`, in file order.
    pub(crate) revocations: Vec<Revocation>,
    /// `[[ae]]`, in file order.
    pub(crate) ae_titles: Vec<AeTitle>,
    /// By trimmed title.
    pub(crate) ae_index: HashMap<String, usize>,
}

impl Topology {
    /// Parses and validates a topology from TOML text.
    pub fn from_toml_str(s: &str) -> Result<Topology, TopologyError> {
        let file: TopologyFile = toml::from_str(s)?;
        crate::validate::validate(file)
    }

    /// Reads, parses and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Topology::from_toml_str(&text)
    }

    /// The example alliance embedded from `fixtures/topology.toml` (development and tests only).
    pub fn example() -> Topology {
        // The embedded text is a compile-time constant, checked by this crate's tests.
        Topology::from_toml_str(EXAMPLE_TOML)
            .unwrap_or_else(|e| panic!("fixtures/topology.toml is invalid: {e}"))
    }

    /// The TOML text of [`Topology::example`].
    pub fn example_toml() -> &'static str {
        EXAMPLE_TOML
    }

    /// `[alliance] name`.
    pub fn alliance_name(&self) -> &str {
        &self.alliance_name
    }

    /// The site with this id.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.site_index.get(id).map(|&i| &self.sites[i])
    }

    /// All sites, in file order.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.iter()
    }

    /// The identity with this name.
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.identity_index.get(name).map(|&i| &self.identities[i])
    }

    /// The declared identity a certificate's identity is, if it is declared exactly so (same
    /// name, site, role and department): the admission rule of every door that takes
    /// certificates (QUIC, HTTPS). Revocations are checked separately ([`Topology::revoked`]).
    pub fn declared(
        &self,
        name: &str,
        site: &str,
        role: Role,
        department: Option<&str>,
    ) -> Option<&Identity> {
        self.identity(name).filter(|id| {
            id.site == site && id.role == role && id.department.as_deref() == department
        })
    }

    /// The `[[ae]]` with this title (leading and trailing spaces are not significant).
    pub fn ae(&self, title: &str) -> Option<&AeTitle> {
        self.ae_index.get(title.trim()).map(|&i| &self.ae_titles[i])
    }

    /// The character set assumed for undeclared non-ASCII text from `site` (or from the AE
    /// titled `ae`, whose own `charset` comes first).
    pub fn default_charset(
        &self,
        site: &str,
        ae: Option<&str>,
    ) -> Option<yilian_dicom::charset::Charset> {
        let term = ae
            .and_then(|t| self.ae(t))
            .and_then(|a| a.charset.as_deref())
            .or_else(|| self.site(site).and_then(|s| s.charset.as_deref()))?;
        // Validated when the topology was loaded.
        yilian_dicom::charset::Charset::from_term(term)
            .ok()
            .map(|(c, _)| c)
    }

    /// All `[[ae]]`, in file order.
    pub fn ae_titles(&self) -> impl Iterator<Item = &AeTitle> {
        self.ae_titles.iter()
    }

    /// The `[[ae]]` with `push = true`: DIMSE peers the relay delivers to by C-STORE, each
    /// draining its reader identity's outbox. Validated: each has host and port, acts as a
    /// reader, and no two push to the same reader.
    pub fn push_aes(&self) -> impl Iterator<Item = &AeTitle> {
        self.ae_titles.iter().filter(|a| a.push)
    }

    /// The push `[[ae]]` that drains `reader`'s outbox, if any.
    pub fn push_ae_for(&self, reader: &str) -> Option<&AeTitle> {
        self.push_aes().find(|a| a.identity == reader)
    }

    /// All identities, in file order.
    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.identities.iter()
    }

    /// The rule with this name.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// All rules, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The first `[[revoked]]` entry that revokes certificate `serial` of identity `name`, if any.
    ///
    /// An entry with only a name revokes every certificate of that identity; one with only a
    /// serial revokes that certificate whatever identity it carries; one with both needs both
    /// to match.
    pub fn revoked(&self, name: &str, serial: &CertSerial) -> Option<&Revocation> {
        self.revocations.iter().find(|r| r.matches(name, serial))
    }

    /// All `[[revoked]]` entries, in file order.
    pub fn revocations(&self) -> impl Iterator<Item = &Revocation> {
        self.revocations.iter()
    }

    /// Routes one instance.
    ///
    /// Every matching rule applies: destinations are the union of their `to`, de-duplicated, in
    /// order of first appearance; priority is the max of the requested priority and every
    /// matching rule's priority. When no rule matches, the instance goes to the source site's
    /// `parent`, at the parent's `default_department` (the default route, `rules` empty, priority
    /// as requested).
    ///
    /// # Errors
    /// [`RouteError::UnknownSourceSite`] if the source site is not declared;
    /// [`RouteError::NoRoute`] if no rule matches and the source site has no parent.
    pub fn route(&self, input: &RouteInput<'_>) -> Result<RouteDecision, RouteError> {
        let Some(source) = self.site(input.source_site) else {
            return Err(RouteError::UnknownSourceSite {
                site: input.source_site.to_owned(),
            });
        };

        let mut destinations: Vec<Destination> = Vec::new();
        let mut seen: HashSet<&Destination> = HashSet::new();
        let mut priority = input.requested_priority;
        let mut rules = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(input)) {
            rules.push(rule.name.clone());
            if let Some(rule_priority) = rule.priority {
                priority = priority.max(rule_priority);
            }
            for destination in &rule.to {
                if seen.insert(destination) {
                    destinations.push(destination.clone());
                }
            }
        }
        if !rules.is_empty() {
            return Ok(RouteDecision {
                destinations,
                priority,
                rules,
            });
        }

        let Some(parent) = &source.parent else {
            return Err(RouteError::NoRoute {
                site: source.id.clone(),
                modality: input.modality.unwrap_or("(none)").to_owned(),
                sop_class_uid: input.sop_class_uid.unwrap_or("(none)").to_owned(),
            });
        };
        let department = self.site(parent).and_then(|p| p.default_department.clone());
        Ok(RouteDecision {
            destinations: vec![Destination {
                site: parent.clone(),
                department,
            }],
            priority,
            rules,
        })
    }

    /// Reader identities that receive what is routed to `dest`, sorted by name.
    ///
    /// A reader receives `dest` when it is at `dest.site` and, if `dest` names a department, it
    /// belongs to that department. So a destination without department (`"township-a"`) reaches
    /// every reader of the site, while a department destination (`"county/radiology"`) reaches
    /// only that department's readers — a reader without department does not receive it.
    pub fn readers_for(&self, dest: &Destination) -> Vec<&Identity> {
        let mut readers: Vec<&Identity> = self
            .identities
            .iter()
            .filter(|i| i.role == Role::Reader && i.site == dest.site)
            .filter(|i| dest.department.is_none() || i.department == dest.department)
            .collect();
        readers.sort_by(|a, b| a.name.cmp(&b.name));
        readers
    }
}
