//! QIDO-RS (PS3.18 §10.6): search for studies, series and instances, always among what is
//! routed to the asking reader.
//!
//! The query runs on the same catalog and with the same matching as C-FIND
//! (`yilian_store::query`: wildcards, case-insensitive person names over every component
//! group, date and time ranges, UID lists). This module only translates: query parameters to a
//! [`Query`] ([`parse`]), and matches to the DICOM JSON model (`dicom_json.rs`).
//!
//! Parameters: `{attribute}={value}` by keyword (`PatientName`) or tag (`00100010`); UID lists
//! and several modalities comma-separated (`StudyInstanceUID=1.2,1.3`, `ModalitiesInStudy=CT,MR`);
//! `includefield` (a comma-separated list, repeatable, or `all`); `limit` and `offset`;
//! `fuzzymatching` is accepted (person names already match case-insensitively; nothing
//! fuzzier is done, which a `Warning` header says when it is asked for). An attribute of the
//! standard the catalog does not hold is ignored with a `Warning` (PS3.18 §8.3.4.1); a name
//! that is no attribute at all is a 400.

use dicom_core::dictionary::DataDictionary;
use dicom_dictionary_std::StandardDataDictionary;
use yilian_proto::valid_uid;
use yilian_store::{Key, Query, QueryLevel, DEFAULT_MATCH_LIMIT};

/// The most matches one request may ask for (`limit`).
pub const MAX_LIMIT: usize = 10_000;

/// Where a search is scoped (the path's UIDs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub study: Option<String>,
    pub series: Option<String>,
}

/// A parsed QIDO request.
#[derive(Debug)]
pub struct Search {
    pub level: QueryLevel,
    pub query: Query,
    /// `Warning` header values (PS3.18 §8.3.4.1, code 299).
    pub warnings: Vec<String>,
}

/// A request that cannot be run (answered 400 with this text).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QidoError {
    #[error("{0:?} is not a DICOM attribute keyword or tag (e.g. PatientName or 00100010)")]
    UnknownAttribute(String),
    #[error("{name}={value:?}: {why}")]
    BadValue {
        name: String,
        value: String,
        why: &'static str,
    },
    #[error("{0:?} in the path is not a valid UID")]
    BadUid(String),
}

/// The attributes returned by default at each level (PS3.18 Tables 10.6.3-3 to -5, those the
/// catalog holds).
fn defaults(level: QueryLevel) -> &'static [Key] {
    match level {
        QueryLevel::Patient | QueryLevel::Study => &[
            Key::StudyDate,
            Key::StudyTime,
            Key::AccessionNumber,
            Key::ModalitiesInStudy,
            Key::ReferringPhysicianName,
            Key::PatientName,
            Key::PatientId,
            Key::PatientBirthDate,
            Key::PatientSex,
            Key::StudyInstanceUid,
            Key::StudyId,
            Key::NumberOfStudyRelatedSeries,
            Key::NumberOfStudyRelatedInstances,
        ],
        QueryLevel::Series => &[
            Key::Modality,
            Key::SeriesDescription,
            Key::SeriesInstanceUid,
            Key::SeriesNumber,
            Key::NumberOfSeriesRelatedInstances,
        ],
        QueryLevel::Image => &[
            Key::SopClassUid,
            Key::SopInstanceUid,
            Key::InstanceNumber,
            Key::Rows,
            Key::Columns,
            Key::NumberOfFrames,
        ],
    }
}

/// Every catalog attribute of `level` and the levels above (`includefield=all`).
fn all_keys(level: QueryLevel) -> Vec<Key> {
    let mut out = Vec::new();
    for l in [
        QueryLevel::Patient,
        QueryLevel::Study,
        QueryLevel::Series,
        QueryLevel::Image,
    ] {
        if rank(l) > rank(level) {
            break;
        }
        for k in defaults(l) {
            out.push(*k);
        }
    }
    out.extend([
        Key::IssuerOfPatientId,
        Key::StudyDescription,
        Key::BodyPartExamined,
        Key::ContentDate,
    ]);
    out.retain(|k| rank(k.level()) <= rank(level));
    out
}

fn rank(l: QueryLevel) -> u8 {
    match l {
        QueryLevel::Patient => 0,
        QueryLevel::Study => 1,
        QueryLevel::Series => 2,
        QueryLevel::Image => 3,
    }
}

/// Whether `name` is an attribute of the standard (keyword or 8 hex digits) at all.
fn is_standard_attribute(name: &str) -> bool {
    if StandardDataDictionary.by_name(name).is_some() {
        return true;
    }
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uid_key(key: Key) -> bool {
    key.vr() == *b"UI"
}

/// Translate a QIDO request at `level`, scoped by the path, with its query parameters.
pub fn parse(
    level: QueryLevel,
    scope: &Scope,
    params: &[(String, String)],
) -> Result<Search, QidoError> {
    let mut query = Query::new();
    let mut warnings = Vec::new();
    let mut include: Vec<Key> = defaults(level).to_vec();
    // Unscoped series and instance searches also describe the study (and series) they are in.
    if scope.study.is_none() && rank(level) > rank(QueryLevel::Study) {
        include.extend(defaults(QueryLevel::Study));
    }
    if scope.series.is_none() && level == QueryLevel::Image {
        include.extend(defaults(QueryLevel::Series));
    }
    let mut ignored = Vec::new();
    for (name, value) in params {
        let bad = |why| QidoError::BadValue {
            name: name.clone(),
            value: value.clone(),
            why,
        };
        match name.as_str() {
            "limit" => {
                let n: usize = value.trim().parse().map_err(|_| bad("not a number"))?;
                if n > MAX_LIMIT {
                    warnings.push(format!(
                        "299 yilian: limit {n} is above the maximum of {MAX_LIMIT}; {MAX_LIMIT} used"
                    ));
                }
                query = query.with_limit(n.min(MAX_LIMIT));
            }
            "offset" => {
                let n: usize = value.trim().parse().map_err(|_| bad("not a number"))?;
                query = query.with_offset(n);
            }
            "fuzzymatching" => match value.trim() {
                "true" => warnings.push(
                    "299 yilian: The fuzzymatching parameter is not supported. Only literal matching has been performed (person names match case-insensitively)."
                        .into(),
                ),
                "false" | "" => {}
                _ => return Err(bad("expected true or false")),
            },
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field == "all" {
                        include.extend(all_keys(level));
                    } else if let Some(k) = Key::from_name(field) {
                        include.push(k);
                    } else if is_standard_attribute(field) {
                        ignored.push(field.to_string());
                    } else {
                        return Err(QidoError::UnknownAttribute(field.to_string()));
                    }
                }
            }
            other => match Key::from_name(other) {
                Some(key) => {
                    let mut v = value.trim().to_string();
                    if is_uid_key(key) || key == Key::ModalitiesInStudy {
                        v = v.replace(',', "\\");
                    }
                    if key == Key::Modality && v.contains(',') {
                        return Err(bad("Modality takes one value (use ModalitiesInStudy for several)"));
                    }
                    query = query.with(key, v);
                }
                None if is_standard_attribute(other) => ignored.push(other.to_string()),
                None => return Err(QidoError::UnknownAttribute(other.to_string())),
            },
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "299 yilian: The following attributes are not supported by this server and were ignored: {}",
            ignored.join(", ")
        ));
    }
    for (key, uid) in [
        (Key::StudyInstanceUid, &scope.study),
        (Key::SeriesInstanceUid, &scope.series),
    ] {
        if let Some(uid) = uid {
            if !valid_uid(uid) {
                return Err(QidoError::BadUid(uid.clone()));
            }
            query = query.with(key, uid.clone());
        }
    }
    for key in include {
        query = query.returning(key);
    }
    if query.limit.is_none() {
        query = query.with_limit(DEFAULT_MATCH_LIMIT);
    }
    Ok(Search {
        level,
        query,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn value(q: &Query, key: Key) -> Option<&str> {
        q.keys()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn keywords_tags_lists_limits_and_scope_translate() {
        let s = parse(
            QueryLevel::Series,
            &Scope {
                study: Some("1.2.3".into()),
                series: None,
            },
            &p(&[
                ("PatientName", "wang*"),
                ("00100020", "P1"),
                ("SeriesInstanceUID", "1.2,1.3"),
                ("StudyDate", "20240101-20241231"),
                ("limit", "5"),
                ("offset", "10"),
                ("includefield", "BodyPartExamined,00081030"),
            ]),
        )
        .unwrap();
        assert_eq!(value(&s.query, Key::PatientName), Some("wang*"));
        assert_eq!(value(&s.query, Key::PatientId), Some("P1"));
        assert_eq!(value(&s.query, Key::SeriesInstanceUid), Some("1.2\\1.3"));
        assert_eq!(value(&s.query, Key::StudyInstanceUid), Some("1.2.3"));
        assert_eq!(value(&s.query, Key::BodyPartExamined), Some(""));
        assert_eq!(value(&s.query, Key::StudyDescription), Some(""));
        assert_eq!(value(&s.query, Key::Modality), Some(""), "a default");
        assert_eq!((s.query.limit, s.query.offset), (Some(5), 10));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn unsupported_standard_attributes_warn_and_unknown_names_fail() {
        let s = parse(
            QueryLevel::Study,
            &Scope::default(),
            &p(&[
                ("InstitutionName", "x"),
                ("includefield", "00081080"),
                ("fuzzymatching", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings.iter().any(|w| w.contains("InstitutionName")));
        assert_eq!(
            parse(
                QueryLevel::Study,
                &Scope::default(),
                &p(&[("Nonsense", "1")])
            )
            .unwrap_err(),
            QidoError::UnknownAttribute("Nonsense".into())
        );
        assert!(parse(QueryLevel::Study, &Scope::default(), &p(&[("limit", "x")])).is_err());
        assert!(parse(
            QueryLevel::Series,
            &Scope {
                study: Some("1.2;DROP".into()),
                series: None
            },
            &[]
        )
        .is_err());
        let big = parse(
            QueryLevel::Study,
            &Scope::default(),
            &p(&[("limit", "999999")]),
        )
        .unwrap();
        assert_eq!(big.query.limit, Some(MAX_LIMIT));
        assert_eq!(big.warnings.len(), 1);
    }

    #[test]
    fn includefield_all_returns_every_catalog_attribute_of_the_level() {
        let s = parse(
            QueryLevel::Study,
            &Scope::default(),
            &p(&[("includefield", "all")]),
        )
        .unwrap();
        for k in [
            Key::StudyDescription,
            Key::IssuerOfPatientId,
            Key::PatientSex,
        ] {
            assert_eq!(value(&s.query, k), Some(""), "{k:?}");
        }
        assert_eq!(
            value(&s.query, Key::SopInstanceUid),
            None,
            "not a study attribute"
        );
    }
}
