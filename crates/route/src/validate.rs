//! Turning the parsed file into a consistent [`Topology`], or the first problem found.
//!
//! Checks run in file order: alliance, sites, parents, identities, rules, revocations; the first
//! error is returned (fix it, reload, see the next).

use std::collections::{HashMap, HashSet};

use crate::ae::{is_valid_ae_title, AeTitle};
use crate::destination::Destination;
use crate::error::TopologyError;
use crate::file::{RevokedTable, RuleTable, TopologyFile};
use crate::identity::{Identity, Role};
use crate::name::{is_valid_name, is_valid_uid};
use crate::revocation::{Revocation, MAX_REASON_CHARS};
use crate::rules::{trim_dicom, Rule};
use crate::site::Site;
use crate::topology::Topology;

pub(crate) fn validate(file: TopologyFile) -> Result<Topology, TopologyError> {
    let alliance_name = file.alliance.name.trim().to_owned();
    if alliance_name.is_empty() {
        return Err(TopologyError::EmptyAllianceName);
    }

    let site_index = check_sites(&file.site)?;
    for site in &file.site {
        check_charset(format!("[[site]] {:?}", site.id), site.charset.as_deref())?;
    }
    check_parents(&file.site, &site_index)?;
    let identity_index = check_identities(&file.identity, &file.site, &site_index)?;
    let rules = check_rules(file.rule, &file.site, &site_index)?;
    let revocations = check_revocations(file.revoked, &identity_index)?;
    let ae_index = check_ae_titles(&file.ae, &file.identity, &identity_index)?;

    Ok(Topology {
        alliance_name,
        sites: file.site,
        site_index,
        identities: file.identity,
        identity_index,
        rules,
        revocations,
        ae_titles: file.ae,
        ae_index,
    })
}

fn check_charset(owner: String, term: Option<&str>) -> Result<(), TopologyError> {
    match term {
        Some(t) if yilian_dicom::charset::Charset::from_term(t).is_err() => {
            Err(TopologyError::UnknownCharset {
                owner,
                term: t.to_string(),
            })
        }
        _ => Ok(()),
    }
}

fn check_ae_titles(
    aes: &[AeTitle],
    identities: &[Identity],
    identity_index: &HashMap<String, usize>,
) -> Result<HashMap<String, usize>, TopologyError> {
    let mut index = HashMap::with_capacity(aes.len());
    // Push AEs by the reader identity they drain: one peer per reader outbox.
    let mut pushed: HashMap<&str, &str> = HashMap::new();
    for (i, ae) in aes.iter().enumerate() {
        if !is_valid_ae_title(&ae.title) {
            return Err(TopologyError::InvalidAeTitle {
                title: ae.title.clone(),
            });
        }
        if !identity_index.contains_key(&ae.identity) {
            return Err(TopologyError::UnknownAeIdentity {
                title: ae.title.clone(),
                identity: ae.identity.clone(),
            });
        }
        check_charset(format!("[[ae]] {:?}", ae.title), ae.charset.as_deref())?;
        if ae.host.is_some() != ae.port.is_some() {
            return Err(TopologyError::AeHostWithoutPort {
                title: ae.title.clone(),
            });
        }
        if index.insert(ae.title.trim().to_string(), i).is_some() {
            return Err(TopologyError::DuplicateAeTitle {
                title: ae.title.clone(),
            });
        }
        if ae.push {
            if ae.endpoint().is_none() {
                return Err(TopologyError::PushWithoutEndpoint {
                    title: ae.title.clone(),
                });
            }
            let role = identity_index
                .get(&ae.identity)
                .map(|&j| identities[j].role)
                .unwrap_or(Role::Device);
            if role != Role::Reader {
                return Err(TopologyError::PushNotReader {
                    title: ae.title.clone(),
                    identity: ae.identity.clone(),
                    role,
                });
            }
            if let Some(first) = pushed.insert(&ae.identity, &ae.title) {
                return Err(TopologyError::DuplicatePushReader {
                    identity: ae.identity.clone(),
                    first: first.to_string(),
                    second: ae.title.clone(),
                });
            }
        }
    }
    Ok(index)
}

fn check_sites(sites: &[Site]) -> Result<HashMap<String, usize>, TopologyError> {
    let mut index = HashMap::with_capacity(sites.len());
    for (i, site) in sites.iter().enumerate() {
        if !is_valid_name(&site.id) {
            return Err(TopologyError::InvalidSiteId {
                id: site.id.clone(),
            });
        }
        if index.insert(site.id.clone(), i).is_some() {
            return Err(TopologyError::DuplicateSite {
                id: site.id.clone(),
            });
        }
        let mut seen = HashSet::new();
        for department in &site.departments {
            if !is_valid_name(department) {
                return Err(TopologyError::InvalidDepartment {
                    site: site.id.clone(),
                    department: department.clone(),
                });
            }
            if !seen.insert(department.as_str()) {
                return Err(TopologyError::DuplicateDepartment {
                    site: site.id.clone(),
                    department: department.clone(),
                });
            }
        }
        if let Some(department) = &site.default_department {
            if !site.has_department(department) {
                return Err(TopologyError::UnknownDefaultDepartment {
                    site: site.id.clone(),
                    department: department.clone(),
                });
            }
        }
    }
    Ok(index)
}

fn check_parents(sites: &[Site], index: &HashMap<String, usize>) -> Result<(), TopologyError> {
    for site in sites {
        if let Some(parent) = &site.parent {
            if !index.contains_key(parent) {
                return Err(TopologyError::UnknownParent {
                    site: site.id.clone(),
                    parent: parent.clone(),
                });
            }
        }
    }

    // Walk up from every site; sites already proven to reach a root are not walked again.
    let mut reaches_root = vec![false; sites.len()];
    for start in 0..sites.len() {
        let mut path: Vec<usize> = Vec::new();
        let mut current = Some(start);
        while let Some(i) = current {
            if reaches_root[i] {
                break;
            }
            if let Some(pos) = path.iter().position(|&p| p == i) {
                let mut cycle: Vec<String> =
                    path[pos..].iter().map(|&p| sites[p].id.clone()).collect();
                cycle.push(sites[i].id.clone());
                return Err(TopologyError::ParentCycle { cycle });
            }
            path.push(i);
            current = sites[i]
                .parent
                .as_ref()
                .and_then(|parent| index.get(parent).copied());
        }
        for i in path {
            reaches_root[i] = true;
        }
    }
    Ok(())
}

fn check_identities(
    identities: &[Identity],
    sites: &[Site],
    site_index: &HashMap<String, usize>,
) -> Result<HashMap<String, usize>, TopologyError> {
    let mut index = HashMap::with_capacity(identities.len());
    for (i, identity) in identities.iter().enumerate() {
        if !is_valid_name(&identity.name) {
            return Err(TopologyError::InvalidIdentityName {
                name: identity.name.clone(),
            });
        }
        if index.insert(identity.name.clone(), i).is_some() {
            return Err(TopologyError::DuplicateIdentity {
                name: identity.name.clone(),
            });
        }
        let Some(site) = site_index.get(&identity.site).map(|&s| &sites[s]) else {
            return Err(TopologyError::UnknownIdentitySite {
                identity: identity.name.clone(),
                site: identity.site.clone(),
            });
        };
        if let Some(department) = &identity.department {
            if identity.role != Role::Reader {
                return Err(TopologyError::DepartmentNotAllowed {
                    identity: identity.name.clone(),
                    role: identity.role,
                    department: department.clone(),
                });
            }
            if !site.has_department(department) {
                return Err(TopologyError::UnknownIdentityDepartment {
                    identity: identity.name.clone(),
                    site: identity.site.clone(),
                    department: department.clone(),
                });
            }
        }
    }
    Ok(index)
}

fn check_rules(
    tables: Vec<RuleTable>,
    sites: &[Site],
    site_index: &HashMap<String, usize>,
) -> Result<Vec<Rule>, TopologyError> {
    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(tables.len());
    for (i, table) in tables.into_iter().enumerate() {
        let name = table.name.trim().to_owned();
        if name.is_empty() {
            return Err(TopologyError::EmptyRuleName { index: i + 1 });
        }
        if !names.insert(name.clone()) {
            return Err(TopologyError::DuplicateRule { name });
        }
        for site in &table.from_sites {
            if !site_index.contains_key(site) {
                return Err(TopologyError::UnknownRuleSource {
                    rule: name,
                    site: site.clone(),
                });
            }
        }
        let modalities = check_filter(&name, "modalities", table.modalities)?;
        let sop_classes = check_filter(&name, "sop_classes", table.sop_classes)?;
        if let Some(uid) = sop_classes.iter().flatten().find(|uid| !is_valid_uid(uid)) {
            return Err(TopologyError::InvalidSopClass {
                rule: name,
                value: uid.clone(),
            });
        }
        let body_parts = check_filter(&name, "body_parts", table.body_parts)?;
        let to = check_targets(&name, &table.to, sites, site_index)?;
        rules.push(Rule {
            name,
            from_sites: table.from_sites,
            modalities,
            sop_classes,
            body_parts,
            to,
            priority: table.priority,
        });
    }
    Ok(rules)
}

/// An absent filter matches anything; a present one must be non-empty with non-blank entries.
/// Entries are stored trimmed.
fn check_filter(
    rule: &str,
    field: &'static str,
    values: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, TopologyError> {
    let Some(values) = values else {
        return Ok(None);
    };
    let values: Vec<String> = values.iter().map(|v| trim_dicom(v).to_owned()).collect();
    if values.is_empty() || values.iter().any(String::is_empty) {
        return Err(TopologyError::EmptyRuleFilter {
            rule: rule.to_owned(),
            field,
        });
    }
    Ok(Some(values))
}

fn check_targets(
    rule: &str,
    to: &[String],
    sites: &[Site],
    site_index: &HashMap<String, usize>,
) -> Result<Vec<Destination>, TopologyError> {
    if to.is_empty() {
        return Err(TopologyError::EmptyRuleTarget {
            rule: rule.to_owned(),
        });
    }
    to.iter()
        .map(|value| {
            let destination: Destination =
                value
                    .parse()
                    .map_err(|_| TopologyError::InvalidRuleTarget {
                        rule: rule.to_owned(),
                        value: value.clone(),
                    })?;
            let Some(site) = site_index.get(&destination.site).map(|&s| &sites[s]) else {
                return Err(TopologyError::UnknownRuleTargetSite {
                    rule: rule.to_owned(),
                    site: destination.site,
                });
            };
            if let Some(department) = &destination.department {
                if !site.has_department(department) {
                    return Err(TopologyError::UnknownRuleTargetDepartment {
                        rule: rule.to_owned(),
                        site: destination.site.clone(),
                        department: department.clone(),
                    });
                }
            }
            Ok(destination)
        })
        .collect()
}

/// Every entry names something (a declared identity and/or a well-formed serial) and says why.
///
/// A name that is not a declared identity is an error, not a warning: a revocation is a
/// security action, and one that silently revokes nobody because of a typo is the worst
/// outcome. (An identity removed from `[[identity]]` needs no entry: it is refused anyway.)
fn check_revocations(
    tables: Vec<RevokedTable>,
    identity_index: &HashMap<String, usize>,
) -> Result<Vec<Revocation>, TopologyError> {
    tables
        .into_iter()
        .enumerate()
        .map(|(i, table)| {
            let index = i + 1;
            if table.name.is_none() && table.serial.is_none() {
                return Err(TopologyError::RevokedWithoutTarget { index });
            }
            if let Some(name) = &table.name {
                if !identity_index.contains_key(name) {
                    return Err(TopologyError::RevokedUnknownIdentity { name: name.clone() });
                }
            }
            let serial = table
                .serial
                .map(|value| {
                    value
                        .parse()
                        .map_err(|_| TopologyError::InvalidRevokedSerial { index, value })
                })
                .transpose()?;
            let reason = table.reason.trim().to_owned();
            let problem = if reason.is_empty() {
                Some("an empty reason")
            } else if reason.chars().any(char::is_control) {
                Some("a reason with line breaks or control characters")
            } else if reason.chars().count() > MAX_REASON_CHARS {
                Some("a reason that is too long")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(TopologyError::InvalidRevocationReason { index, problem });
            }
            Ok(Revocation {
                name: table.name,
                serial,
                reason,
            })
        })
        .collect()
}
