//! C-FIND / QIDO matching over the catalog (PS3.4 C.2.2.2), always restricted to one reader.
//!
//! A reader (a workstation's AE title maps to one) sees exactly the instances in its outbox,
//! delivered or not, and nothing else: every query joins `outbox` on the reader first.
//!
//! ## Matching
//! A [`Query`] is a list of keys with a value each; an empty value is *universal matching*
//! (the key is only returned). Per key kind:
//! * **text** (LO, SH, CS: IDs, descriptions, modality, sex, body part): single value matching
//!   is exact and case-sensitive; `*` (any run) and `?` (one character) make it a wildcard
//!   match; a value of only `*` is universal. Modalities in Study may list several values
//!   (`CT\MR`): any of them.
//! * **person names** (Patient's Name, Referring Physician's Name) match *case-insensitively*
//!   (PS3.4 C.2.2.2.1 leaves PN case to the SCP; workstations type names in any case), with the
//!   same wildcards, against the whole value **or any one component group**: `王^小东` and
//!   `wang*` both find `Wang^XiaoDong=王^小东=`. Trailing `^`/`=` are ignored on both sides.
//!   Names are matched as decoded text, whatever character set either side was written in.
//! * **UIDs**: a single UID or a list (`1.2.3\1.2.4`); no wildcards (a lone `*` is universal).
//! * **dates and times** (DA, TM): a single value, or a range `A-B`, `-B`, `A-` (inclusive); an
//!   instance without the attribute never matches a range. Old forms (`2024.01.31`,
//!   `10:20:30`) are accepted. Combined date-time matching is not supported.
//! * **integers** (Series/Instance Number, Rows, …): exact.
//! * **counts** (Number of … Related …) and Modalities in Study are computed per match
//!   (return keys; a value given for a count is ignored).
//!
//! A query at one level may carry keys of any level (relational); a match returns the keys
//! asked for at its level and above, plus the unique keys of its level and above. Values of
//! patient/study attributes that differ between instances of a study come from the most
//! recently stored instance. At most [`Query::limit`] matches (default
//! [`DEFAULT_MATCH_LIMIT`]) are returned; [`Store::find`] fails with
//! [`StoreError::TooManyMatches`] beyond it, [`Store::find_limited`] truncates.

use std::fmt;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use yilian_dicom::Phi;

use crate::records::InstanceRecord;
use crate::store::row_to_record;
use crate::{Store, StoreError};

/// Matches returned by a query unless it says otherwise.
pub const DEFAULT_MATCH_LIMIT: usize = 1000;

/// UIDs per statement in [`Store::instances_for`].
const UIDS_PER_STATEMENT: usize = 500;

/// Query/Retrieve Level (0008,0052).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryLevel {
    /// PATIENT: one match per (Patient ID, Issuer of Patient ID).
    Patient,
    /// STUDY: one match per Study Instance UID.
    Study,
    /// SERIES: one match per Series Instance UID.
    Series,
    /// IMAGE: one match per instance.
    Image,
}

impl QueryLevel {
    /// From the value of (0008,0052): `PATIENT`, `STUDY`, `SERIES`, `IMAGE`.
    pub fn from_code(code: &str) -> Option<QueryLevel> {
        match code.trim_matches(['\0', ' ']) {
            "PATIENT" => Some(QueryLevel::Patient),
            "STUDY" => Some(QueryLevel::Study),
            "SERIES" => Some(QueryLevel::Series),
            "IMAGE" => Some(QueryLevel::Image),
            _ => None,
        }
    }

    fn rank(self) -> u8 {
        self as u8
    }

    /// Unique keys of this level and the levels above it.
    fn unique_keys(self) -> &'static [Key] {
        match self {
            QueryLevel::Patient => &[Key::PatientId],
            QueryLevel::Study => &[Key::StudyInstanceUid],
            QueryLevel::Series => &[Key::StudyInstanceUid, Key::SeriesInstanceUid],
            QueryLevel::Image => &[
                Key::StudyInstanceUid,
                Key::SeriesInstanceUid,
                Key::SopInstanceUid,
            ],
        }
    }
}

/// How a key matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    PersonName,
    Uid,
    Date,
    Time,
    Integer,
    /// Computed per match: never matched on.
    Computed,
}

/// An attribute a query can match on or ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Key {
    /// Patient's Name (0010,0010).
    PatientName,
    /// Patient ID (0010,0020).
    PatientId,
    /// Issuer of Patient ID (0010,0021).
    IssuerOfPatientId,
    /// Patient's Birth Date (0010,0030).
    PatientBirthDate,
    /// Patient's Sex (0010,0040).
    PatientSex,
    /// Number of Patient Related Studies (0020,1200).
    NumberOfPatientRelatedStudies,
    /// Number of Patient Related Series (0020,1202).
    NumberOfPatientRelatedSeries,
    /// Number of Patient Related Instances (0020,1204).
    NumberOfPatientRelatedInstances,
    /// Study Instance UID (0020,000D).
    StudyInstanceUid,
    /// Study Date (0008,0020).
    StudyDate,
    /// Study Time (0008,0030).
    StudyTime,
    /// Accession Number (0008,0050).
    AccessionNumber,
    /// Study ID (0020,0010).
    StudyId,
    /// Study Description (0008,1030).
    StudyDescription,
    /// Referring Physician's Name (0008,0090).
    ReferringPhysicianName,
    /// Modalities in Study (0008,0061).
    ModalitiesInStudy,
    /// Number of Study Related Series (0020,1206).
    NumberOfStudyRelatedSeries,
    /// Number of Study Related Instances (0020,1208).
    NumberOfStudyRelatedInstances,
    /// Series Instance UID (0020,000E).
    SeriesInstanceUid,
    /// Modality (0008,0060).
    Modality,
    /// Series Number (0020,0011).
    SeriesNumber,
    /// Series Description (0008,103E).
    SeriesDescription,
    /// Body Part Examined (0018,0015).
    BodyPartExamined,
    /// Number of Series Related Instances (0020,1209).
    NumberOfSeriesRelatedInstances,
    /// SOP Instance UID (0008,0018).
    SopInstanceUid,
    /// SOP Class UID (0008,0016).
    SopClassUid,
    /// Instance Number (0020,0013).
    InstanceNumber,
    /// Number of Frames (0028,0008).
    NumberOfFrames,
    /// Rows (0028,0010).
    Rows,
    /// Columns (0028,0011).
    Columns,
    /// Content Date (0008,0023).
    ContentDate,
}

/// Every key, for lookups by tag.
const ALL_KEYS: [Key; 31] = [
    Key::PatientName,
    Key::PatientId,
    Key::IssuerOfPatientId,
    Key::PatientBirthDate,
    Key::PatientSex,
    Key::NumberOfPatientRelatedStudies,
    Key::NumberOfPatientRelatedSeries,
    Key::NumberOfPatientRelatedInstances,
    Key::StudyInstanceUid,
    Key::StudyDate,
    Key::StudyTime,
    Key::AccessionNumber,
    Key::StudyId,
    Key::StudyDescription,
    Key::ReferringPhysicianName,
    Key::ModalitiesInStudy,
    Key::NumberOfStudyRelatedSeries,
    Key::NumberOfStudyRelatedInstances,
    Key::SeriesInstanceUid,
    Key::Modality,
    Key::SeriesNumber,
    Key::SeriesDescription,
    Key::BodyPartExamined,
    Key::NumberOfSeriesRelatedInstances,
    Key::SopInstanceUid,
    Key::SopClassUid,
    Key::InstanceNumber,
    Key::NumberOfFrames,
    Key::Rows,
    Key::Columns,
    Key::ContentDate,
];

impl Key {
    /// The attribute's tag (group, element).
    pub fn tag(self) -> (u16, u16) {
        match self {
            Key::PatientName => (0x0010, 0x0010),
            Key::PatientId => (0x0010, 0x0020),
            Key::IssuerOfPatientId => (0x0010, 0x0021),
            Key::PatientBirthDate => (0x0010, 0x0030),
            Key::PatientSex => (0x0010, 0x0040),
            Key::NumberOfPatientRelatedStudies => (0x0020, 0x1200),
            Key::NumberOfPatientRelatedSeries => (0x0020, 0x1202),
            Key::NumberOfPatientRelatedInstances => (0x0020, 0x1204),
            Key::StudyInstanceUid => (0x0020, 0x000D),
            Key::StudyDate => (0x0008, 0x0020),
            Key::StudyTime => (0x0008, 0x0030),
            Key::AccessionNumber => (0x0008, 0x0050),
            Key::StudyId => (0x0020, 0x0010),
            Key::StudyDescription => (0x0008, 0x1030),
            Key::ReferringPhysicianName => (0x0008, 0x0090),
            Key::ModalitiesInStudy => (0x0008, 0x0061),
            Key::NumberOfStudyRelatedSeries => (0x0020, 0x1206),
            Key::NumberOfStudyRelatedInstances => (0x0020, 0x1208),
            Key::SeriesInstanceUid => (0x0020, 0x000E),
            Key::Modality => (0x0008, 0x0060),
            Key::SeriesNumber => (0x0020, 0x0011),
            Key::SeriesDescription => (0x0008, 0x103E),
            Key::BodyPartExamined => (0x0018, 0x0015),
            Key::NumberOfSeriesRelatedInstances => (0x0020, 0x1209),
            Key::SopInstanceUid => (0x0008, 0x0018),
            Key::SopClassUid => (0x0008, 0x0016),
            Key::InstanceNumber => (0x0020, 0x0013),
            Key::NumberOfFrames => (0x0028, 0x0008),
            Key::Rows => (0x0028, 0x0010),
            Key::Columns => (0x0028, 0x0011),
            Key::ContentDate => (0x0008, 0x0023),
        }
    }

    /// The key of a tag, if the catalog has it.
    pub fn from_tag(group: u16, element: u16) -> Option<Key> {
        ALL_KEYS.into_iter().find(|k| k.tag() == (group, element))
    }

    /// The attribute's keyword in the DICOM dictionary (PS3.6), as QIDO-RS names it.
    pub fn keyword(self) -> &'static str {
        use Key::*;
        match self {
            PatientName => "PatientName",
            PatientId => "PatientID",
            IssuerOfPatientId => "IssuerOfPatientID",
            PatientBirthDate => "PatientBirthDate",
            PatientSex => "PatientSex",
            NumberOfPatientRelatedStudies => "NumberOfPatientRelatedStudies",
            NumberOfPatientRelatedSeries => "NumberOfPatientRelatedSeries",
            NumberOfPatientRelatedInstances => "NumberOfPatientRelatedInstances",
            StudyInstanceUid => "StudyInstanceUID",
            StudyDate => "StudyDate",
            StudyTime => "StudyTime",
            AccessionNumber => "AccessionNumber",
            StudyId => "StudyID",
            StudyDescription => "StudyDescription",
            ReferringPhysicianName => "ReferringPhysicianName",
            ModalitiesInStudy => "ModalitiesInStudy",
            NumberOfStudyRelatedSeries => "NumberOfStudyRelatedSeries",
            NumberOfStudyRelatedInstances => "NumberOfStudyRelatedInstances",
            SeriesInstanceUid => "SeriesInstanceUID",
            Modality => "Modality",
            SeriesNumber => "SeriesNumber",
            SeriesDescription => "SeriesDescription",
            BodyPartExamined => "BodyPartExamined",
            NumberOfSeriesRelatedInstances => "NumberOfSeriesRelatedInstances",
            SopInstanceUid => "SOPInstanceUID",
            SopClassUid => "SOPClassUID",
            InstanceNumber => "InstanceNumber",
            NumberOfFrames => "NumberOfFrames",
            Rows => "Rows",
            Columns => "Columns",
            ContentDate => "ContentDate",
        }
    }

    /// The key of a keyword (exact, as in PS3.6) or of a tag written as 8 hex digits
    /// (`00100010`), as QIDO-RS query parameters and `includefield` name attributes.
    pub fn from_name(name: &str) -> Option<Key> {
        if let Some(k) = ALL_KEYS.into_iter().find(|k| k.keyword() == name) {
            return Some(k);
        }
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let group = u16::from_str_radix(&name[..4], 16).ok()?;
            let element = u16::from_str_radix(&name[4..], 16).ok()?;
            return Key::from_tag(group, element);
        }
        None
    }

    /// The attribute's value representation (PS3.6), e.g. `*b"PN"`.
    pub fn vr(self) -> [u8; 2] {
        use Key::*;
        match self {
            PatientName | ReferringPhysicianName => *b"PN",
            PatientId | IssuerOfPatientId | StudyDescription | SeriesDescription => *b"LO",
            PatientBirthDate | StudyDate | ContentDate => *b"DA",
            StudyTime => *b"TM",
            AccessionNumber | StudyId => *b"SH",
            PatientSex | ModalitiesInStudy | Modality | BodyPartExamined => *b"CS",
            StudyInstanceUid | SeriesInstanceUid | SopInstanceUid | SopClassUid => *b"UI",
            Rows | Columns => *b"US",
            NumberOfPatientRelatedStudies
            | NumberOfPatientRelatedSeries
            | NumberOfPatientRelatedInstances
            | NumberOfStudyRelatedSeries
            | NumberOfStudyRelatedInstances
            | NumberOfSeriesRelatedInstances
            | SeriesNumber
            | InstanceNumber
            | NumberOfFrames => *b"IS",
        }
    }

    /// The level the attribute belongs to.
    pub fn level(self) -> QueryLevel {
        use Key::*;
        match self {
            PatientName
            | PatientId
            | IssuerOfPatientId
            | PatientBirthDate
            | PatientSex
            | NumberOfPatientRelatedStudies
            | NumberOfPatientRelatedSeries
            | NumberOfPatientRelatedInstances => QueryLevel::Patient,
            StudyInstanceUid
            | StudyDate
            | StudyTime
            | AccessionNumber
            | StudyId
            | StudyDescription
            | ReferringPhysicianName
            | ModalitiesInStudy
            | NumberOfStudyRelatedSeries
            | NumberOfStudyRelatedInstances => QueryLevel::Study,
            SeriesInstanceUid
            | Modality
            | SeriesNumber
            | SeriesDescription
            | BodyPartExamined
            | NumberOfSeriesRelatedInstances => QueryLevel::Series,
            SopInstanceUid | SopClassUid | InstanceNumber | NumberOfFrames | Rows | Columns
            | ContentDate => QueryLevel::Image,
        }
    }

    fn kind(self) -> Kind {
        use Key::*;
        match self {
            PatientName | ReferringPhysicianName => Kind::PersonName,
            StudyInstanceUid | SeriesInstanceUid | SopInstanceUid | SopClassUid => Kind::Uid,
            PatientBirthDate | StudyDate | ContentDate => Kind::Date,
            StudyTime => Kind::Time,
            SeriesNumber | InstanceNumber | NumberOfFrames | Rows | Columns => Kind::Integer,
            NumberOfPatientRelatedStudies
            | NumberOfPatientRelatedSeries
            | NumberOfPatientRelatedInstances
            | NumberOfStudyRelatedSeries
            | NumberOfStudyRelatedInstances
            | NumberOfSeriesRelatedInstances => Kind::Computed,
            _ => Kind::Text,
        }
    }

    /// Whether the catalog has an index on the key's column.
    fn indexed(self) -> bool {
        matches!(
            self,
            Key::StudyInstanceUid
                | Key::SeriesInstanceUid
                | Key::SopInstanceUid
                | Key::PatientId
                | Key::AccessionNumber
                | Key::StudyDate
        )
    }

    /// The catalog column the key matches on.
    fn column(self) -> &'static str {
        use Key::*;
        match self {
            PatientName => "patient_name",
            PatientId => "patient_id",
            IssuerOfPatientId => "issuer_of_patient_id",
            PatientBirthDate => "patient_birth_date",
            PatientSex => "patient_sex",
            StudyInstanceUid => "study_uid",
            StudyDate => "study_date",
            StudyTime => "study_time",
            AccessionNumber => "accession_number",
            StudyId => "study_id",
            StudyDescription => "study_description",
            ReferringPhysicianName => "referring_physician",
            ModalitiesInStudy | Modality => "modality",
            SeriesInstanceUid => "series_uid",
            SeriesNumber => "series_number",
            SeriesDescription => "series_description",
            BodyPartExamined => "body_part",
            SopInstanceUid => "sop_uid",
            SopClassUid => "sop_class_uid",
            InstanceNumber => "instance_number",
            NumberOfFrames => "frames",
            Rows => "rows",
            Columns => "columns",
            ContentDate => "content_date",
            NumberOfPatientRelatedStudies
            | NumberOfPatientRelatedSeries
            | NumberOfPatientRelatedInstances
            | NumberOfStudyRelatedSeries
            | NumberOfStudyRelatedInstances
            | NumberOfSeriesRelatedInstances => "instance_id",
        }
    }

    /// What the outer query selects for this key at `level`; `None` if it has no value there.
    fn select(self, level: QueryLevel) -> Option<String> {
        use Key::*;
        let at = |l: QueryLevel| (level == l).then_some(());
        Some(match self {
            NumberOfPatientRelatedStudies => {
                at(QueryLevel::Patient).map(|()| "COUNT(DISTINCT c.study_uid)".to_owned())?
            }
            NumberOfPatientRelatedSeries => {
                at(QueryLevel::Patient).map(|()| "COUNT(DISTINCT c.series_uid)".to_owned())?
            }
            NumberOfPatientRelatedInstances => {
                at(QueryLevel::Patient).map(|()| "COUNT(*)".to_owned())?
            }
            NumberOfStudyRelatedSeries => {
                at(QueryLevel::Study).map(|()| "COUNT(DISTINCT c.series_uid)".to_owned())?
            }
            NumberOfStudyRelatedInstances => {
                at(QueryLevel::Study).map(|()| "COUNT(*)".to_owned())?
            }
            NumberOfSeriesRelatedInstances => {
                at(QueryLevel::Series).map(|()| "COUNT(*)".to_owned())?
            }
            ModalitiesInStudy => {
                if level.rank() > QueryLevel::Study.rank() {
                    return None;
                }
                "group_concat(DISTINCT c.modality)".to_owned()
            }
            key if key.level().rank() <= level.rank() => format!("c.{}", key.column()),
            _ => return None,
        })
    }
}

/// The keys of a C-FIND or QIDO request, each with its value (empty: return only).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Query {
    keys: Vec<(Key, String)>,
    /// Most matches returned (`None`: [`DEFAULT_MATCH_LIMIT`]).
    pub limit: Option<usize>,
    /// Matches skipped first, in the order of the level's unique key (QIDO's `offset`).
    pub offset: usize,
}

impl fmt::Debug for Query {
    /// Keys only: the values may be patient names or IDs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field(
                "keys",
                &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Query {
    /// An empty query: matches everything the reader may see.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a key with its value: matched on unless empty, returned either way.
    /// Dates, times and UIDs are trimmed of padding; text is used as given.
    pub fn with(mut self, key: Key, value: impl Into<String>) -> Self {
        let value = value.into();
        self.keys.retain(|(k, _)| *k != key);
        self.keys.push((key, value));
        self
    }

    /// Asks for a key without matching on it (universal matching); a key already given keeps
    /// its value.
    pub fn returning(self, key: Key) -> Self {
        if self.keys.iter().any(|(k, _)| *k == key) {
            return self;
        }
        self.with(key, "")
    }

    /// At most `n` matches.
    pub fn with_limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skip the first `n` matches.
    pub fn with_offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// The keys and their values, in the order given.
    pub fn keys(&self) -> &[(Key, String)] {
        &self.keys
    }
}

/// One answer to a query: the values of the keys asked for (and the level's unique keys), as
/// DICOM strings (numbers in decimal, Modalities in Study `\`-separated). Every value is
/// [`Phi`]: `Debug` never prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The level of the query.
    pub level: QueryLevel,
    values: Vec<(Key, Phi<String>)>,
}

impl Match {
    /// The value of a key (empty if the instances lack it); `None` if not asked for.
    pub fn get(&self, key: Key) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.expose().as_str())
    }

    /// Every key and its value, the level's unique keys first. Never log the values.
    pub fn values(&self) -> impl Iterator<Item = (Key, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.expose().as_str()))
    }
}

/// The answers to a query, at most its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The matches, in the order of the level's unique key.
    pub matches: Vec<Match>,
    /// More matched than the limit: only the first `limit` are here.
    pub truncated: bool,
}

/// A key's value as a match condition.
#[derive(Debug, PartialEq)]
enum Condition {
    Universal,
    Equal(Value),
    AnyOf(Vec<String>),
    Wildcard(String),
    PersonName(String),
    Range(Option<String>, Option<String>),
}

fn bad(key: Key, what: &str) -> StoreError {
    // Never the value: it may be a name or an ID.
    StoreError::BadQuery(format!(
        "{key:?} {:04X},{:04X}: {what}",
        key.tag().0,
        key.tag().1
    ))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Parses a key's value into a condition.
fn condition(key: Key, value: &str) -> Result<Condition, StoreError> {
    let kind = key.kind();
    let trimmed = value.trim_matches(['\0', ' ']);
    if trimmed.is_empty() || trimmed == "*" || kind == Kind::Computed {
        return Ok(Condition::Universal);
    }
    Ok(match kind {
        Kind::PersonName => Condition::PersonName(trimmed.to_owned()),
        Kind::Text if key == Key::ModalitiesInStudy && trimmed.contains('\\') => {
            Condition::AnyOf(trimmed.split('\\').map(|v| v.trim().to_owned()).collect())
        }
        Kind::Text if has_wildcard(trimmed) => Condition::Wildcard(trimmed.to_owned()),
        Kind::Text => Condition::Equal(Value::Text(trimmed.to_owned())),
        Kind::Uid => {
            if has_wildcard(trimmed) {
                return Err(bad(key, "UIDs match as a list, never with wildcards"));
            }
            let uids: Vec<String> = trimmed
                .split('\\')
                .map(|u| u.trim_matches(['\0', ' ']).to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            Condition::AnyOf(uids)
        }
        Kind::Date | Kind::Time => {
            let norm = |s: &str| -> Result<Option<String>, StoreError> {
                let s = s.trim();
                let s = if kind == Kind::Date {
                    s.replace('.', "")
                } else {
                    s.replace(':', "")
                };
                let digits_ok = s.chars().all(|c| c.is_ascii_digit() || c == '.');
                let ok = if kind == Kind::Date {
                    s.len() == 8 && s.chars().all(|c| c.is_ascii_digit())
                } else {
                    (2..=13).contains(&s.len()) && digits_ok
                };
                match (s.is_empty(), ok) {
                    (true, _) => Ok(None),
                    (false, true) => Ok(Some(s)),
                    (false, false) => Err(bad(
                        key,
                        if kind == Kind::Date {
                            "a date is YYYYMMDD, a range YYYYMMDD-YYYYMMDD"
                        } else {
                            "a time is HHMMSS.FFFFFF (or a prefix), a range HHMM-HHMM"
                        },
                    )),
                }
            };
            if has_wildcard(trimmed) {
                return Err(bad(
                    key,
                    "dates and times match by value or range, never wildcards",
                ));
            }
            match trimmed.split_once('-') {
                None => match norm(trimmed)? {
                    Some(v) => Condition::Equal(Value::Text(v)),
                    None => Condition::Universal,
                },
                Some((from, to)) => {
                    if to.contains('-') {
                        return Err(bad(key, "a range has one '-'"));
                    }
                    match (norm(from)?, norm(to)?) {
                        (None, None) => Condition::Universal,
                        (a, b) => Condition::Range(a, b),
                    }
                }
            }
        }
        Kind::Integer => match trimmed.trim_start_matches('+').parse::<i64>() {
            Ok(n) => Condition::Equal(Value::Integer(n)),
            Err(_) => return Err(bad(key, "an integer is expected")),
        },
        Kind::Computed => Condition::Universal,
    })
}

/// Appends the SQL of a condition on `col` (an expression) and its parameters.
fn push_condition(sql: &mut String, params: &mut Vec<Value>, col: &str, cond: Condition) {
    match cond {
        Condition::Universal => {}
        Condition::Equal(v) => {
            sql.push_str(&format!(" AND {col} = ?"));
            params.push(v);
        }
        Condition::AnyOf(values) => {
            let marks = vec!["?"; values.len().max(1)].join(", ");
            sql.push_str(&format!(" AND {col} IN ({marks})"));
            if values.is_empty() {
                params.push(Value::Null);
            }
            params.extend(values.into_iter().map(Value::Text));
        }
        Condition::Wildcard(p) => {
            sql.push_str(&format!(" AND dicom_wildcard(?, {col})"));
            params.push(Value::Text(p));
        }
        Condition::PersonName(p) => {
            sql.push_str(&format!(" AND dicom_person_name(?, {col})"));
            params.push(Value::Text(p));
        }
        Condition::Range(from, to) => {
            sql.push_str(&format!(" AND {col} <> ''"));
            if let Some(from) = from {
                sql.push_str(&format!(" AND {col} >= ?"));
                params.push(Value::Text(from));
            }
            if let Some(to) = to {
                sql.push_str(&format!(" AND {col} <= ?"));
                params.push(Value::Text(to));
            }
        }
    }
}

/// The columns one match is grouped by.
fn group_columns(level: QueryLevel) -> &'static str {
    match level {
        QueryLevel::Patient => "c.patient_id, c.issuer_of_patient_id",
        QueryLevel::Study => "c.study_uid",
        QueryLevel::Series => "c.series_uid",
        QueryLevel::Image => "c.instance_id",
    }
}

/// The SQL of a query and its parameters, with the keys each selected column answers.
fn build_sql(
    reader: &str,
    level: QueryLevel,
    query: &Query,
    limit: usize,
    walk: bool,
) -> Result<(String, Vec<Value>, Vec<Key>), StoreError> {
    let group = group_columns(level);
    let mut returned: Vec<Key> = level.unique_keys().to_vec();
    for (key, _) in &query.keys {
        if !returned.contains(key) && key.select(level).is_some() {
            returned.push(*key);
        }
    }
    let selects: Vec<String> = returned.iter().filter_map(|k| k.select(level)).collect();
    let mut conditions = Vec::with_capacity(query.keys.len());
    for (key, value) in &query.keys {
        conditions.push((*key, condition(*key, value)?));
    }
    // The groups that match: a reader's instance rows on which every condition holds. With a
    // condition an index serves (a UID, Patient ID, Accession Number, a date), the catalog
    // leads and the reader's outbox entry is looked up per row; otherwise the reader's outbox
    // leads (never a scan of every reader's catalog). CROSS JOIN fixes that order for SQLite.
    // Nothing to filter on (a viewer's study list, first page): walk the level's index in
    // order and stop after the page, instead of listing every group of the reader first —
    // when the reader holds a good share of the catalog (`walk`), so that the walk meets
    // its groups soon.
    if walk
        && level != QueryLevel::Patient
        && conditions
            .iter()
            .all(|(_, c)| matches!(c, Condition::Universal))
    {
        let sql = format!(
            "SELECT MAX(c.instance_id), {} FROM catalog c CROSS JOIN outbox o
                 ON o.instance_id = c.instance_id
             WHERE o.reader = ?
             GROUP BY {group} ORDER BY {group} LIMIT ? OFFSET ?",
            selects.join(", ")
        );
        let params = vec![
            Value::Text(reader.to_owned()),
            Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1),
            Value::Integer(i64::try_from(query.offset).unwrap_or(i64::MAX)),
        ];
        return Ok((sql, params, returned));
    }
    // A Patient's Name with a literal start is narrowed by the name index first
    // (`catalog_names`, a range of keys), then matched exactly.
    let name_range = conditions.iter().find_map(|(key, cond)| match cond {
        Condition::PersonName(p) if *key == Key::PatientName => name_prefix(p),
        _ => None,
    });
    let indexed = name_range.is_some()
        || conditions.iter().any(|(key, cond)| {
            key.indexed()
                && matches!(
                    cond,
                    Condition::Equal(_) | Condition::AnyOf(_) | Condition::Range(..)
                )
        });
    let from = if indexed {
        "catalog c2 CROSS JOIN outbox o2 ON o2.instance_id = c2.instance_id"
    } else {
        "outbox o2 CROSS JOIN catalog c2 ON c2.instance_id = o2.instance_id"
    };
    let mut inner = format!(
        "SELECT {} FROM {from} WHERE o2.reader = ?",
        group.replace("c.", "c2.")
    );
    let mut params = vec![Value::Text(reader.to_owned())];
    if let Some(prefix) = name_range {
        inner.push_str(
            " AND c2.instance_id IN (SELECT instance_id FROM catalog_names WHERE key >= ? AND key < ?)",
        );
        let end = format!("{prefix}{}", char::MAX);
        params.push(Value::Text(prefix));
        params.push(Value::Text(end));
    }
    for (key, cond) in conditions {
        push_condition(
            &mut inner,
            &mut params,
            &format!("c2.{}", key.column()),
            cond,
        );
    }
    // Then every instance of the reader in those groups (for counts and modalities), the
    // groups probed through their index (the catalog leads); bare columns come from the row
    // of MAX(c.instance_id), the most recently stored instance.
    let (group_match, params) = if level == QueryLevel::Patient {
        let ids = inner.replacen(
            "SELECT c2.patient_id, c2.issuer_of_patient_id",
            "SELECT c2.patient_id",
            1,
        );
        let mut both = params.clone();
        both.extend(params);
        (
            format!("c.patient_id IN ({ids}) AND ({group}) IN ({inner})"),
            both,
        )
    } else {
        (format!("{group} IN ({inner})"), params)
    };
    let sql = format!(
        "SELECT MAX(c.instance_id), {} FROM catalog c CROSS JOIN outbox o
             ON o.instance_id = c.instance_id
         WHERE o.reader = ? AND {group_match}
         GROUP BY {group} ORDER BY {group} LIMIT ? OFFSET ?",
        selects.join(", ")
    );
    let mut all = vec![Value::Text(reader.to_owned())];
    all.extend(params);
    all.push(Value::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1,
    ));
    all.push(Value::Integer(
        i64::try_from(query.offset).unwrap_or(i64::MAX),
    ));
    Ok((sql, all, returned))
}

fn text_of(v: Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(n) => n.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s,
        Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

impl Store {
    /// The matches of `query` at `level` among the instances routed to `reader` (its outbox,
    /// delivered or not). Fails with [`StoreError::TooManyMatches`] when more than the query's
    /// limit match, and with [`StoreError::BadQuery`] for a value that cannot match (a
    /// malformed date range, a wildcard in a UID).
    pub fn find(
        &self,
        reader: &str,
        level: QueryLevel,
        query: &Query,
    ) -> Result<Vec<Match>, StoreError> {
        let found = self.find_limited(reader, level, query)?;
        if found.truncated {
            return Err(StoreError::TooManyMatches {
                limit: query.limit.unwrap_or(DEFAULT_MATCH_LIMIT),
            });
        }
        Ok(found.matches)
    }

    /// Like [`Store::find`], but returns the first matches (up to the limit) and whether more
    /// matched, instead of failing.
    pub fn find_limited(
        &self,
        reader: &str,
        level: QueryLevel,
        query: &Query,
    ) -> Result<Found, StoreError> {
        let limit = query.limit.unwrap_or(DEFAULT_MATCH_LIMIT);
        let db = self.read()?;
        // An unfiltered page walks the catalog in order when the reader holds at least a
        // quarter of it (its outbox counted through its index; the catalog's size is its
        // largest row id): then the walk meets the reader's groups at once. A reader with
        // few studies on a big relay keeps the reader-first plan.
        let unfiltered = query
            .keys
            .iter()
            .all(|(k, v)| matches!(condition(*k, v), Ok(Condition::Universal)));
        let walk = unfiltered && {
            let mine: i64 = db
                .prepare_cached("SELECT COUNT(*) FROM outbox WHERE reader = ?")?
                .query_row([reader], |r| r.get(0))?;
            let all: i64 = db
                .prepare_cached("SELECT COALESCE(MAX(instance_id), 0) FROM catalog")?
                .query_row([], |r| r.get(0))?;
            mine.saturating_mul(4) >= all
        };
        let (sql, params, returned) = build_sql(reader, level, query, limit, walk)?;
        let mut st = db.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(params))?;
        let mut matches = Vec::new();
        let mut truncated = false;
        while let Some(row) = rows.next()? {
            if matches.len() == limit {
                truncated = true;
                break;
            }
            let mut values = Vec::with_capacity(returned.len());
            for (i, key) in returned.iter().enumerate() {
                let mut text = text_of(row.get::<_, Value>(i + 1)?);
                if *key == Key::ModalitiesInStudy {
                    let mut list: Vec<&str> = text.split(',').filter(|m| !m.is_empty()).collect();
                    list.sort_unstable();
                    text = list.join("\\");
                }
                values.push((*key, Phi::new(text)));
            }
            matches.push(Match { level, values });
        }
        Ok(Found { matches, truncated })
    }

    /// The stored instances routed to `reader` under the given keys of `level` (Patient IDs,
    /// Study, Series or SOP Instance UIDs), for C-MOVE and C-GET: the same restriction as
    /// [`Store::find`]. Ordered by study, series, instance number. Read each one's file at
    /// [`Store::object_path`].
    pub fn instances_for(
        &self,
        reader: &str,
        level: QueryLevel,
        keys: &[String],
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let db = self.read()?;
        let mut out = Vec::new();
        for chunk in keys.chunks(UIDS_PER_STATEMENT) {
            let mut st = db.prepare_cached(&instances_for_sql(level, chunk.len()))?;
            let params = std::iter::once(reader).chain(chunk.iter().map(String::as_str));
            let rows = st.query_map(params_from_iter(params), row_to_record)?;
            for r in rows {
                out.push(r??);
            }
        }
        Ok(out)
    }
}

/// The statement of [`Store::instances_for`] for `keys` keys of `level`: the catalog leads
/// (its index on the level's key), then each instance's row and the reader's outbox entry
/// (`UNIQUE(reader, instance_id)`), so the work follows the instances named, not the reader's
/// whole outbox. With a plain `JOIN` SQLite chose to walk every entry of the reader (a
/// county's whole history for one instance); `CROSS JOIN` keeps the order written.
pub(crate) fn instances_for_sql(level: QueryLevel, keys: usize) -> String {
    let col = match level {
        QueryLevel::Patient => "c.patient_id",
        QueryLevel::Study => "c.study_uid",
        QueryLevel::Series => "c.series_uid",
        QueryLevel::Image => "c.sop_uid",
    };
    let marks = vec!["?"; keys].join(", ");
    format!(
        "SELECT i.sop_uid, i.study_uid, i.series_uid, i.sop_class_uid, i.modality,
                i.source_site, i.source_identity, i.size, i.hash, i.priority,
                i.stored_at, i.id
         FROM catalog c CROSS JOIN instances i ON i.id = c.instance_id
              CROSS JOIN outbox o ON o.instance_id = i.id
         WHERE o.reader = ? AND {col} IN ({marks})
         ORDER BY c.study_uid, c.series_uid, c.instance_number, c.sop_uid"
    )
}

/// Registers the matching functions on a connection: `dicom_wildcard(pattern, value)` and
/// `dicom_person_name(pattern, value)`.
pub(crate) fn register_functions(conn: &Connection) -> Result<(), StoreError> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("dicom_wildcard", 2, flags, |ctx| {
        let pattern: String = ctx.get(0)?;
        let value: Option<String> = ctx.get(1)?;
        Ok(wildcard(&pattern, value.as_deref().unwrap_or("")))
    })?;
    conn.create_scalar_function("dicom_person_name", 2, flags, |ctx| {
        let pattern: String = ctx.get(0)?;
        let value: Option<String> = ctx.get(1)?;
        Ok(person_name(&pattern, value.as_deref().unwrap_or("")))
    })?;
    Ok(())
}

/// DICOM wildcard matching: `*` any run of characters (also none), `?` exactly one.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Iterative matching with backtracking to the last `*`: O(len(p) * len(v)) at worst.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, vi));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == v.get(vi) => {
                pi += 1;
                vi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp + 1;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == '*')
}

/// The keys a Patient's Name is found by in `catalog_names`: the whole value and each of its
/// component groups, trimmed and lowercased exactly as [`person_name`] compares them. A name
/// that [`person_name`] matches has a key that begins with the pattern's literal start.
pub(crate) fn name_keys(value: &str) -> Vec<String> {
    let mut keys: Vec<String> = std::iter::once(value)
        .chain(value.split('='))
        .map(name_trim)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn name_trim(s: &str) -> String {
    s.trim_end_matches(['^', '=', ' ']).to_lowercase()
}

/// The literal start of a person-name pattern (before its first wildcard), as keys are
/// written; `None` when the pattern begins with a wildcard (nothing to narrow by).
fn name_prefix(pattern: &str) -> Option<String> {
    let p = name_trim(pattern);
    let prefix: String = p.chars().take_while(|c| *c != '*' && *c != '?').collect();
    (!prefix.is_empty()).then_some(prefix)
}

/// Person name matching: case-insensitive, wildcards allowed, against the whole value or any
/// one component group; trailing `^` and `=` are ignored.
pub fn person_name(pattern: &str, value: &str) -> bool {
    let trim = name_trim;
    let p = trim(pattern);
    let v = trim(value);
    if wildcard(&p, &v) {
        return true;
    }
    !p.contains('=') && v.split('=').any(|group| wildcard(&p, &trim(group)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("王*", "王小东"));
        assert!(wildcard("*东", "王小东"));
        assert!(wildcard("王?东", "王小东"));
        assert!(!wildcard("王?东", "王东"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXbYY"));
        assert!(wildcard("CT", "CT"));
        assert!(!wildcard("CT", "ct"));
        assert!(wildcard("**a", "ba"));
    }

    #[test]
    fn name_keys_hold_every_match_s_literal_start() {
        assert_eq!(
            name_keys("Wang^XiaoDong=王^小东="),
            ["wang^xiaodong", "wang^xiaodong=王^小东", "王^小东"]
        );
        assert_eq!(name_keys(""), Vec::<String>::new());
        assert_eq!(name_prefix("WANG*"), Some("wang".into()));
        assert_eq!(name_prefix("王?东"), Some("王".into()));
        assert_eq!(name_prefix("*东"), None);
        assert_eq!(name_prefix("Smith^John^^"), Some("smith^john".into()));
        // Whatever person_name matches has a key that starts with the pattern's prefix.
        let values = [
            "Wang^XiaoDong=王^小东=",
            "Smith^John^^^",
            "ÉMILE^Zola",
            "İSTANBUL^X",
            "O'Brien^Conan",
            "=李^四",
        ];
        let patterns = [
            "wang*",
            "王*",
            "王^小东",
            "smith^john",
            "émile*",
            "i̇stanbul*",
            "o'b*",
            "李*",
            "Wang^XiaoDong=王^小东",
            "S?ith*",
        ];
        for v in values {
            for p in patterns {
                if person_name(p, v) {
                    let prefix = name_prefix(p).unwrap_or_default();
                    assert!(
                        name_keys(v).iter().any(|k| k.starts_with(&prefix)),
                        "{p:?} matches {v:?} but no key starts with {prefix:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn person_names() {
        let v = "Wang^XiaoDong=王^小东=";
        assert!(person_name("wang^xiaodong", v));
        assert!(person_name("WANG*", v));
        assert!(person_name("王^小东", v));
        assert!(person_name("王*", v));
        assert!(person_name("Wang^XiaoDong=王^小东", v));
        assert!(!person_name("李*", v));
        assert!(!person_name("Wang^XiaoDong=李^四", v));
        assert!(person_name("Smith^John", "Smith^John^^^"));
    }

    #[test]
    fn conditions() {
        let c = |k, v: &str| condition(k, v).map_err(|e| e.to_string());
        assert_eq!(c(Key::StudyDate, ""), Ok(Condition::Universal));
        assert_eq!(
            c(Key::StudyDate, "20240101-20241231"),
            Ok(Condition::Range(
                Some("20240101".into()),
                Some("20241231".into())
            ))
        );
        assert_eq!(
            c(Key::StudyDate, "-20241231"),
            Ok(Condition::Range(None, Some("20241231".into())))
        );
        assert_eq!(
            c(Key::StudyDate, "2024.01.01-"),
            Ok(Condition::Range(Some("20240101".into()), None))
        );
        assert_eq!(
            c(Key::StudyTime, "09:00-1000"),
            Ok(Condition::Range(Some("0900".into()), Some("1000".into())))
        );
        assert!(c(Key::StudyDate, "2024-01-01").is_err());
        assert!(c(Key::StudyDate, "2024*").is_err());
        assert!(c(Key::StudyInstanceUid, "1.2.*").is_err());
        assert_eq!(
            c(Key::StudyInstanceUid, "1.2\\1.3 "),
            Ok(Condition::AnyOf(vec!["1.2".into(), "1.3".into()]))
        );
        assert_eq!(c(Key::SopInstanceUid, "*"), Ok(Condition::Universal));
        assert_eq!(
            c(Key::SeriesNumber, "+3"),
            Ok(Condition::Equal(Value::Integer(3)))
        );
        assert!(c(Key::SeriesNumber, "x").is_err());
        assert_eq!(
            c(Key::NumberOfStudyRelatedInstances, "5"),
            Ok(Condition::Universal)
        );
        // Error messages never carry the value.
        let e = c(Key::PatientBirthDate, "19700101-1980").unwrap_err();
        assert!(!e.contains("1970"), "{e}");
    }

    #[test]
    fn keys_round_trip_by_tag() {
        for key in ALL_KEYS {
            let (g, e) = key.tag();
            assert_eq!(Key::from_tag(g, e), Some(key));
            assert!(key.select(key.level()).is_some(), "{key:?}");
        }
        assert_eq!(Key::from_tag(0x7FE0, 0x0010), None);
        assert_eq!(QueryLevel::from_code("STUDY "), Some(QueryLevel::Study));
    }
}

#[cfg(test)]
mod scale {
    use super::*;
    use rusqlite::params;

    /// `n` instances in `studies` studies of 4 series, alternately routed to readers r0/r1
    /// (by study), written straight into the index.
    fn populate(store: &Store, n: usize, studies: usize) {
        let mut db = store.db();
        let tx = db.transaction().unwrap();
        for i in 0..n {
            let study = i % studies;
            let series = format!("1.2.{study}.{}", (i / studies) % 4);
            let sop = format!("{series}.{i}");
            let study_uid = format!("1.2.{study}");
            tx.execute(
                "INSERT INTO instances (source_site, sop_uid, study_uid, series_uid,
                     sop_class_uid, modality, source_identity, size, hash, priority, stored_at)
                 VALUES ('t', ?1, ?2, ?3, 'c', 'CT', 'd', 1, ?4, 0, 0)",
                params![sop, study_uid, series, &[0u8; 32][..]],
            )
            .unwrap();
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO outbox (reader, instance_id, priority, enqueued_at)
                 VALUES (?1, ?2, 0, 0)",
                params![format!("r{}", study % 2), id],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO catalog (instance_id, patient_name, patient_id, study_uid,
                     study_date, accession_number, series_uid, modality, sop_uid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'CT', ?8)",
                params![
                    id,
                    format!("Patient^{study}"),
                    format!("P{study}"),
                    study_uid,
                    format!("2024{:02}{:02}", 1 + study % 12, 1 + study % 28),
                    format!("ACC{study}"),
                    series,
                    sop
                ],
            )
            .unwrap();
            for key in name_keys(&format!("Patient^{study}")) {
                tx.execute(
                    "INSERT INTO catalog_names (key, instance_id) VALUES (?1, ?2)",
                    params![key, id],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn plan(store: &Store, level: QueryLevel, query: &Query) -> String {
        plan_with(store, level, query, false)
    }

    /// A few thousand instances: queries by the usual keys go through an index, never a scan
    /// of the catalog; the answers are right. (Timing belongs to benches.)
    #[test]
    fn queries_use_indexes_at_a_few_thousand_instances() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::small_pool_for_tests(dir.path()).unwrap();
        populate(&store, 4000, 200);
        for (level, query, index) in [
            (
                QueryLevel::Study,
                Query::new().with(Key::StudyInstanceUid, "1.2.42"),
                "catalog_by_study",
            ),
            (
                QueryLevel::Study,
                Query::new().with(Key::PatientId, "P42"),
                "catalog_by_patient_id",
            ),
            (
                QueryLevel::Study,
                Query::new().with(Key::AccessionNumber, "ACC42"),
                "catalog_by_accession",
            ),
            (
                QueryLevel::Study,
                Query::new().with(Key::StudyDate, "20240301-20240331"),
                "catalog_by_study_date",
            ),
            (
                QueryLevel::Image,
                Query::new().with(Key::SeriesInstanceUid, "1.2.42.1"),
                "catalog_by_series",
            ),
        ] {
            let p = plan(&store, level, &query);
            assert!(p.contains(index), "{query:?}:\n{p}");
            assert!(!p.contains("SCAN c2"), "{query:?}:\n{p}");
        }
        let q = Query::new()
            .with(Key::PatientId, "P42")
            .returning(Key::NumberOfStudyRelatedInstances)
            .returning(Key::NumberOfStudyRelatedSeries);
        let m = store.find("r0", QueryLevel::Study, &q).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].get(Key::NumberOfStudyRelatedInstances), Some("20"));
        assert_eq!(m[0].get(Key::NumberOfStudyRelatedSeries), Some("4"));
        assert!(store.find("r1", QueryLevel::Study, &q).unwrap().is_empty());
        let all = store
            .find(
                "r0",
                QueryLevel::Study,
                &Query::new().with(Key::PatientName, "patient^4*"),
            )
            .unwrap();
        // Studies 4, 40–48 and 400+ do not exist; the even ones are r0's: 4, 40, 42, …, 48.
        assert_eq!(all.len(), 6);
        // Found through the name index, not by matching every row of the reader.
        let p = plan(
            &store,
            QueryLevel::Study,
            &Query::new().with(Key::PatientName, "patient^4*"),
        );
        assert!(p.contains("catalog_names"), "{p}");
        assert!(!p.contains("SCAN o2"), "{p}");
        // A leading wildcard has nothing to narrow by: matched row by row, same rule.
        let tail = store
            .find(
                "r0",
                QueryLevel::Study,
                &Query::new().with(Key::PatientName, "*t^42"),
            )
            .unwrap();
        assert_eq!(tail.len(), 1);
        let months = store
            .find(
                "r0",
                QueryLevel::Study,
                &Query::new().with(Key::StudyDate, "20240301-20240331"),
            )
            .unwrap();
        assert!(!months.is_empty());
        assert!(months.len() < 100);
    }

    /// An unfiltered page (a viewer's study list) walks the level's index and stops after the
    /// page, with exactly the answers of the reader-first plan, at every level and offset;
    /// a reader with a small share of the catalog keeps the reader-first plan.
    #[test]
    fn an_unfiltered_page_walks_the_index_with_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::small_pool_for_tests(dir.path()).unwrap();
        populate(&store, 4000, 200);
        let run = |level, query: &Query, walk| {
            let (sql, params, returned) = build_sql("r0", level, query, 25, walk).unwrap();
            let db = store.db();
            let mut st = db.prepare(&sql).unwrap();
            let rows = st
                .query_map(params_from_iter(params), |r| {
                    (1..=returned.len())
                        .map(|i| r.get::<_, Value>(i).map(text_of))
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>()
        };
        for level in [QueryLevel::Study, QueryLevel::Series, QueryLevel::Image] {
            for offset in [0, 7, 90, 5000] {
                let q = Query::new()
                    .with(Key::PatientName, "*")
                    .with(Key::StudyDate, "")
                    .with_limit(25)
                    .with_offset(offset);
                let walked = run(level, &q, true);
                assert_eq!(walked, run(level, &q, false), "{level:?} offset {offset}");
                if offset < 90 {
                    assert_eq!(walked.len(), 26, "a page and one more");
                }
            }
        }
        let q = Query::new().with_limit(25);
        let p = plan_with(&store, QueryLevel::Study, &q, true);
        assert!(
            p.contains("SCAN c USING COVERING INDEX catalog_by_study"),
            "{p}"
        );
        assert!(!p.contains("LIST SUBQUERY"), "{p}");
        // Through find_limited: r0 holds half the catalog, so it walks; the answers match.
        let found = store.find_limited("r0", QueryLevel::Study, &q).unwrap();
        assert_eq!(found.matches.len(), 25);
        assert!(found.truncated);
        // A reader with a tenth of the catalog: the reader-first plan, the same answers.
        let db = store.db();
        db.execute(
            "UPDATE outbox SET reader = 'small' WHERE instance_id % 10 = 0",
            [],
        )
        .unwrap();
        let studies: i64 = db
            .query_row(
                "SELECT COUNT(DISTINCT c.study_uid) FROM outbox o JOIN catalog c
                 ON c.instance_id = o.instance_id WHERE o.reader = 'small'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(db);
        let small = store.find_limited("small", QueryLevel::Study, &q).unwrap();
        assert_eq!(small.matches.len() as i64, studies.min(25));
    }

    fn plan_with(store: &Store, level: QueryLevel, query: &Query, walk: bool) -> String {
        let (sql, params, _) = build_sql("r0", level, query, 100, walk).unwrap();
        let db = store.db();
        let mut st = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(params_from_iter(params), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
    }
}
