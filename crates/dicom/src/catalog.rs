//! The attributes of an instance that DICOM Query/Retrieve (C-FIND) and QIDO-RS search on,
//! read by the walker from the header (no pixel data) and decoded per the instance's Specific
//! Character Set.
//!
//! Text is decoded (see [`crate::charset`]); dates (DA) are kept as `YYYYMMDD` and times (TM) as
//! `HHMMSS.FFFFFF` (as much as the file gives), with the separators of old files (`.` in dates,
//! `:` in times) removed, so that ranges compare as strings. Absent attributes are empty strings
//! or `None`. Patient-identifying values are [`Phi`]: `Debug` never prints them.

use crate::phi::Phi;

/// The catalog attributes of one instance, at the four Query/Retrieve levels.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Catalog {
    /// Patient level.
    pub patient: CatalogPatient,
    /// Study level.
    pub study: CatalogStudy,
    /// Series level.
    pub series: CatalogSeries,
    /// Image (instance) level.
    pub instance: CatalogInstance,
    /// Specific Character Set (0008,0005) as in the file (empty when absent).
    pub specific_character_set: String,
    /// Some text was decoded by a guess (undeclared bytes ≥ 0x80; see [`crate::charset`]).
    pub text_guessed: bool,
    /// Some text could not be decoded (U+FFFD in it), or (0008,0005) names an unknown term.
    pub text_lossy: bool,
}

/// Patient-level attributes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CatalogPatient {
    /// Patient's Name (0010,0010), decoded (all component groups, `=`-separated as in the file).
    pub name: Phi<String>,
    /// Patient ID (0010,0020).
    pub id: Phi<String>,
    /// Issuer of Patient ID (0010,0021).
    pub issuer_of_id: Phi<String>,
    /// Patient's Birth Date (0010,0030), `YYYYMMDD`.
    pub birth_date: Phi<String>,
    /// Patient's Sex (0010,0040): `M`, `F`, `O` or empty.
    pub sex: String,
}

/// Study-level attributes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CatalogStudy {
    /// Study Instance UID (0020,000D).
    pub uid: String,
    /// Study Date (0008,0020), `YYYYMMDD`.
    pub date: String,
    /// Study Time (0008,0030), `HHMMSS.FFFFFF` or a prefix of it.
    pub time: String,
    /// Accession Number (0008,0050).
    pub accession_number: Phi<String>,
    /// Study ID (0020,0010).
    pub id: Phi<String>,
    /// Study Description (0008,1030).
    pub description: String,
    /// Referring Physician's Name (0008,0090).
    pub referring_physician: Phi<String>,
}

/// Series-level attributes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CatalogSeries {
    /// Series Instance UID (0020,000E).
    pub uid: String,
    /// Modality (0008,0060).
    pub modality: String,
    /// Series Number (0020,0011).
    pub number: Option<i32>,
    /// Series Description (0008,103E).
    pub description: String,
    /// Body Part Examined (0018,0015).
    pub body_part: String,
}

/// Instance-level attributes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CatalogInstance {
    /// SOP Instance UID (0008,0018).
    pub sop_uid: String,
    /// SOP Class UID (0008,0016).
    pub sop_class_uid: String,
    /// Instance Number (0020,0013).
    pub number: Option<i32>,
    /// Number of Frames (0028,0008).
    pub frames: Option<u32>,
    /// Rows (0028,0010).
    pub rows: Option<u16>,
    /// Columns (0028,0011).
    pub columns: Option<u16>,
    /// Content Date (0008,0023), `YYYYMMDD`.
    pub content_date: String,
}

/// A DA value as `YYYYMMDD`: padding and the `.` of old ACR-NEMA dates removed.
pub(crate) fn normalise_date(s: &str) -> String {
    s.trim_matches(['\0', ' ']).replace('.', "")
}

/// A TM value without padding and without the `:` of old files.
pub(crate) fn normalise_time(s: &str) -> String {
    s.trim_matches(['\0', ' ']).replace(':', "")
}

/// An IS value: an optionally signed integer, padded with spaces; `None` if it is not one.
pub(crate) fn parse_is(s: &str) -> Option<i32> {
    let t = s.trim_matches(['\0', ' ']);
    let digits = t.strip_prefix('+').unwrap_or(t);
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_normalise() {
        assert_eq!(normalise_date("2024.01.31 "), "20240131");
        assert_eq!(normalise_time("10:20:30.5"), "102030.5");
        assert_eq!(parse_is(" +12 "), Some(12));
        assert_eq!(parse_is("-3"), Some(-3));
        assert_eq!(parse_is("1.5"), None);
        let mut c = Catalog::default();
        c.patient.name = Phi::new("王^小东".into());
        c.study.accession_number = Phi::new("ACC123".into());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains('王') && !shown.contains("ACC123"),
            "{shown}"
        );
    }
}
