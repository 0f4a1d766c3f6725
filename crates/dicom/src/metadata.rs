//! The routing metadata of an instance, and the few attribute values the walker captures to
//! build it.

use dicom_core::Tag;

use crate::catalog::{normalise_date, normalise_time, parse_is, Catalog};
use crate::charset::{Charset, TextDecoder, TextVr};
use crate::error::DicomError;
use crate::phi::Phi;

/// What the relay needs to route an instance, read from the file meta information and the top
/// level of the dataset before Pixel Data.
///
/// Only what identifies an instance is required (its SOP Instance UID and Study Instance UID, and
/// a transfer syntax to read it with); everything else is optional, because real files lack
/// attributes routing may not need (Secondary Capture without Modality is common in the wild).
///
/// Strings are trimmed of their padding: UIDs of trailing NUL/space, code strings of spaces,
/// other text of trailing spaces. Text is decoded with the instance's Specific Character Set
/// (every DICOM defined term, ISO 2022 code extensions included; see [`crate::charset`]),
/// without a site default: [`Metadata::catalog_with_default`] decodes again with one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Transfer Syntax UID (0002,0010).
    pub transfer_syntax: String,
    /// SOP Class UID (0008,0016); Media Storage SOP Class UID (0002,0002) if the dataset lacks
    /// it; `None` if both are absent.
    pub sop_class_uid: Option<String>,
    /// SOP Instance UID (0008,0018); Media Storage SOP Instance UID (0002,0003) if the dataset
    /// lacks it.
    pub sop_instance_uid: String,
    /// Study Instance UID (0020,000D).
    pub study_instance_uid: String,
    /// Series Instance UID (0020,000E), if present.
    pub series_instance_uid: Option<String>,
    /// Modality (0008,0060), if present.
    pub modality: Option<String>,
    /// Body Part Examined (0018,0015).
    pub body_part: Option<String>,
    /// Number of Frames (0028,0008).
    pub number_of_frames: Option<u32>,
    /// Specific Character Set (0008,0005), all values as in the file (`\`-separated).
    pub specific_character_set: Option<String>,
    /// Patient-identifying values: redacted in `Debug`.
    pub patient: Patient,
    /// Where the top-level Pixel Data (7FE0,0010) is, once its header has been read.
    pub pixel_data: Option<PixelDataInfo>,
    /// What C-FIND and QIDO search on, decoded like [`Metadata::patient`] (declared character
    /// set only). The relay stores [`Metadata::catalog_with_default`] with its site's default.
    pub catalog: Catalog,
    /// The text values as in the file, for decoding again with a site default.
    raw_text: Phi<RawText>,
}

impl Metadata {
    /// The catalog with text decoded per the instance's Specific Character Set and, for bytes
    /// it does not cover (a console writing GBK without declaring it), `default` (the site's
    /// or AE title's default character set). With `None` this is [`Metadata::catalog`].
    pub fn catalog_with_default(&self, default: Option<Charset>) -> Catalog {
        let mut catalog = self.catalog.clone();
        if default.is_some() {
            let decoder = TextDecoder::new(self.specific_character_set.as_deref(), default);
            self.raw_text.expose().decode_into(&decoder, &mut catalog);
        }
        catalog
    }
}

/// The raw text values of the catalog (patient data among them: kept inside [`Phi`]).
#[derive(Clone, PartialEq, Eq, Default)]
struct RawText {
    values: Vec<(Field, Vec<u8>)>,
}

impl RawText {
    /// Decodes every value into `catalog`; records guesses and losses.
    fn decode_into(&self, decoder: &TextDecoder, catalog: &mut Catalog) {
        let mut guessed = false;
        let mut lossy = decoder.error().is_some();
        for (field, bytes) in &self.values {
            let Some(vr) = field.text_vr() else { continue };
            let d = decoder.decode(bytes, vr);
            guessed |= d.guessed;
            lossy |= !d.lossless;
            let text = d.text.trim_end_matches(['\0', ' ']).to_owned();
            let text = if matches!(vr, TextVr::PN | TextVr::ST | TextVr::LT | TextVr::UT) {
                text
            } else {
                // SH/LO: leading spaces are padding too.
                text.trim_start_matches(' ').to_owned()
            };
            match field {
                Field::PatientName => catalog.patient.name = Phi::new(text),
                Field::PatientId => catalog.patient.id = Phi::new(text),
                Field::IssuerOfPatientId => catalog.patient.issuer_of_id = Phi::new(text),
                Field::AccessionNumber => catalog.study.accession_number = Phi::new(text),
                Field::StudyId => catalog.study.id = Phi::new(text),
                Field::StudyDescription => catalog.study.description = text,
                Field::ReferringPhysician => catalog.study.referring_physician = Phi::new(text),
                Field::SeriesDescription => catalog.series.description = text,
                _ => {}
            }
        }
        catalog.text_guessed = guessed;
        catalog.text_lossy = lossy;
    }
}

/// Patient-identifying attributes. Absent attributes are empty strings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Patient {
    /// Patient's Name (0010,0010), decoded with the Specific Character Set.
    pub name: Phi<String>,
    /// Patient ID (0010,0020).
    pub id: Phi<String>,
    /// Accession Number (0008,0050).
    pub accession_number: Phi<String>,
}

/// Where the top-level Pixel Data (7FE0,0010) value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelDataInfo {
    /// Offset of the value's first byte in the stream. For a Deflated transfer syntax this
    /// counts inflated bytes after the file meta information.
    pub value_offset: u64,
    /// Declared length; `None` for an undefined length (encapsulated pixel data: fragments).
    pub length: Option<u64>,
}

/// An attribute the walker keeps the value of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    MetaGroupLength,
    MediaSopClass,
    MediaSopInstance,
    TransferSyntax,
    CharacterSet,
    SopClass,
    SopInstance,
    StudyDate,
    ContentDate,
    StudyTime,
    AccessionNumber,
    Modality,
    ReferringPhysician,
    StudyDescription,
    SeriesDescription,
    PatientName,
    PatientId,
    IssuerOfPatientId,
    BirthDate,
    Sex,
    BodyPart,
    StudyUid,
    SeriesUid,
    StudyId,
    SeriesNumber,
    InstanceNumber,
    NumberOfFrames,
    Rows,
    Columns,
}

const FIELD_COUNT: usize = 30;

/// SOP Class UID of a DICOMDIR (Media Storage Directory Storage).
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

impl Field {
    /// The captured attribute of the file meta information group with this tag, if any.
    pub(crate) fn in_meta(tag: Tag) -> Option<Field> {
        match tag {
            Tag(0x0002, 0x0000) => Some(Field::MetaGroupLength),
            Tag(0x0002, 0x0002) => Some(Field::MediaSopClass),
            Tag(0x0002, 0x0003) => Some(Field::MediaSopInstance),
            Tag(0x0002, 0x0010) => Some(Field::TransferSyntax),
            _ => None,
        }
    }

    /// The captured top-level dataset attribute with this tag, if any.
    pub(crate) fn in_dataset(tag: Tag) -> Option<Field> {
        match tag {
            Tag(0x0008, 0x0005) => Some(Field::CharacterSet),
            Tag(0x0008, 0x0016) => Some(Field::SopClass),
            Tag(0x0008, 0x0018) => Some(Field::SopInstance),
            Tag(0x0008, 0x0020) => Some(Field::StudyDate),
            Tag(0x0008, 0x0023) => Some(Field::ContentDate),
            Tag(0x0008, 0x0030) => Some(Field::StudyTime),
            Tag(0x0008, 0x0050) => Some(Field::AccessionNumber),
            Tag(0x0008, 0x0060) => Some(Field::Modality),
            Tag(0x0008, 0x0090) => Some(Field::ReferringPhysician),
            Tag(0x0008, 0x1030) => Some(Field::StudyDescription),
            Tag(0x0008, 0x103E) => Some(Field::SeriesDescription),
            Tag(0x0010, 0x0010) => Some(Field::PatientName),
            Tag(0x0010, 0x0020) => Some(Field::PatientId),
            Tag(0x0010, 0x0021) => Some(Field::IssuerOfPatientId),
            Tag(0x0010, 0x0030) => Some(Field::BirthDate),
            Tag(0x0010, 0x0040) => Some(Field::Sex),
            Tag(0x0018, 0x0015) => Some(Field::BodyPart),
            Tag(0x0020, 0x000D) => Some(Field::StudyUid),
            Tag(0x0020, 0x000E) => Some(Field::SeriesUid),
            Tag(0x0020, 0x0010) => Some(Field::StudyId),
            Tag(0x0020, 0x0011) => Some(Field::SeriesNumber),
            Tag(0x0020, 0x0013) => Some(Field::InstanceNumber),
            Tag(0x0028, 0x0008) => Some(Field::NumberOfFrames),
            Tag(0x0028, 0x0010) => Some(Field::Rows),
            Tag(0x0028, 0x0011) => Some(Field::Columns),
            _ => None,
        }
    }

    fn tag(self) -> Tag {
        match self {
            Field::MetaGroupLength => Tag(0x0002, 0x0000),
            Field::MediaSopClass => Tag(0x0002, 0x0002),
            Field::MediaSopInstance => Tag(0x0002, 0x0003),
            Field::TransferSyntax => Tag(0x0002, 0x0010),
            Field::CharacterSet => Tag(0x0008, 0x0005),
            Field::SopClass => Tag(0x0008, 0x0016),
            Field::SopInstance => Tag(0x0008, 0x0018),
            Field::StudyDate => Tag(0x0008, 0x0020),
            Field::ContentDate => Tag(0x0008, 0x0023),
            Field::StudyTime => Tag(0x0008, 0x0030),
            Field::AccessionNumber => Tag(0x0008, 0x0050),
            Field::Modality => Tag(0x0008, 0x0060),
            Field::ReferringPhysician => Tag(0x0008, 0x0090),
            Field::StudyDescription => Tag(0x0008, 0x1030),
            Field::SeriesDescription => Tag(0x0008, 0x103E),
            Field::PatientName => Tag(0x0010, 0x0010),
            Field::PatientId => Tag(0x0010, 0x0020),
            Field::IssuerOfPatientId => Tag(0x0010, 0x0021),
            Field::BirthDate => Tag(0x0010, 0x0030),
            Field::Sex => Tag(0x0010, 0x0040),
            Field::BodyPart => Tag(0x0018, 0x0015),
            Field::StudyUid => Tag(0x0020, 0x000D),
            Field::SeriesUid => Tag(0x0020, 0x000E),
            Field::StudyId => Tag(0x0020, 0x0010),
            Field::SeriesNumber => Tag(0x0020, 0x0011),
            Field::InstanceNumber => Tag(0x0020, 0x0013),
            Field::NumberOfFrames => Tag(0x0028, 0x0008),
            Field::Rows => Tag(0x0028, 0x0010),
            Field::Columns => Tag(0x0028, 0x0011),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::MetaGroupLength => "File Meta Information Group Length",
            Field::MediaSopClass => "Media Storage SOP Class UID",
            Field::MediaSopInstance => "Media Storage SOP Instance UID",
            Field::TransferSyntax => "Transfer Syntax UID",
            Field::CharacterSet => "Specific Character Set",
            Field::SopClass => "SOP Class UID",
            Field::SopInstance => "SOP Instance UID",
            Field::StudyDate => "Study Date",
            Field::ContentDate => "Content Date",
            Field::StudyTime => "Study Time",
            Field::AccessionNumber => "Accession Number",
            Field::Modality => "Modality",
            Field::ReferringPhysician => "Referring Physician's Name",
            Field::StudyDescription => "Study Description",
            Field::SeriesDescription => "Series Description",
            Field::PatientName => "Patient's Name",
            Field::PatientId => "Patient ID",
            Field::IssuerOfPatientId => "Issuer of Patient ID",
            Field::BirthDate => "Patient's Birth Date",
            Field::Sex => "Patient's Sex",
            Field::BodyPart => "Body Part Examined",
            Field::StudyUid => "Study Instance UID",
            Field::SeriesUid => "Series Instance UID",
            Field::StudyId => "Study ID",
            Field::SeriesNumber => "Series Number",
            Field::InstanceNumber => "Instance Number",
            Field::NumberOfFrames => "Number of Frames",
            Field::Rows => "Rows",
            Field::Columns => "Columns",
        }
    }

    /// Captured for the catalog only: a value longer than [`crate::Limits::max_attribute_len`]
    /// is cut there instead of refusing the file.
    pub(crate) fn is_catalog_only(self) -> bool {
        matches!(
            self,
            Field::StudyDate
                | Field::ContentDate
                | Field::StudyTime
                | Field::ReferringPhysician
                | Field::StudyDescription
                | Field::SeriesDescription
                | Field::IssuerOfPatientId
                | Field::BirthDate
                | Field::Sex
                | Field::StudyId
                | Field::SeriesNumber
                | Field::InstanceNumber
                | Field::Rows
                | Field::Columns
        )
    }

    /// The VR of a text value decoded with the character set.
    fn text_vr(self) -> Option<TextVr> {
        Some(match self {
            Field::PatientName | Field::ReferringPhysician => TextVr::PN,
            Field::PatientId
            | Field::IssuerOfPatientId
            | Field::AccessionNumber
            | Field::StudyDescription
            | Field::SeriesDescription => TextVr::LO,
            Field::StudyId => TextVr::SH,
            _ => return None,
        })
    }

    /// `Patient's Name (0010,0010)`.
    pub(crate) fn describe(self) -> String {
        format!("{} {}", self.name(), self.tag())
    }

    fn missing(self) -> DicomError {
        DicomError::MissingAttribute {
            name: self.name(),
            tag: self.tag(),
        }
    }
}

/// One captured value: its bytes (at most `cap`) and the offset of its element header.
struct Value {
    bytes: Vec<u8>,
    cap: usize,
    offset: u64,
}

/// The values of the captured attributes. Deliberately not `Debug`: it holds patient data.
#[derive(Default)]
pub(crate) struct Captured {
    values: [Option<Value>; FIELD_COUNT],
    /// The dataset is Explicit VR Big Endian (for binary values: Rows, Columns).
    pub(crate) big_endian: bool,
}

impl Captured {
    /// Starts capturing `field`, whose element header is at `offset`, keeping at most `cap`
    /// bytes of its value (the limit was checked for attributes that must be whole).
    pub(crate) fn begin(&mut self, field: Field, offset: u64, cap: usize) {
        if let Some(slot) = self.values.get_mut(field as usize) {
            *slot = Some(Value {
                bytes: Vec::with_capacity(cap),
                cap,
                offset,
            });
        }
    }

    /// Appends bytes to the value of `field` being captured (beyond its cap: dropped).
    pub(crate) fn extend(&mut self, field: Field, bytes: &[u8]) {
        if let Some(Some(value)) = self.values.get_mut(field as usize) {
            let room = value.cap.saturating_sub(value.bytes.len());
            value
                .bytes
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        }
    }

    fn get(&self, field: Field) -> Option<&Value> {
        self.values.get(field as usize).and_then(Option::as_ref)
    }

    fn bytes(&self, field: Field) -> Option<&[u8]> {
        self.get(field).map(|v| v.bytes.as_slice())
    }

    /// The File Meta Information Group Length, if it was captured with 4 bytes.
    pub(crate) fn meta_group_length(&self) -> Option<u32> {
        let b = self.bytes(Field::MetaGroupLength)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    /// The transfer syntax UID, trimmed; `None` if absent or empty.
    pub(crate) fn transfer_syntax(&self) -> Option<String> {
        self.uid(Field::TransferSyntax)
    }

    /// A UID value: ASCII, trimmed of NUL and spaces; `None` if absent or empty.
    fn uid(&self, field: Field) -> Option<String> {
        let text = String::from_utf8_lossy(self.bytes(field)?);
        let trimmed = text.trim_matches(|c| c == '\0' || c == ' ');
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// A code string (or DA, TM, IS): ASCII, trimmed of spaces (and stray NULs); `None` if
    /// absent or empty. Bytes outside ASCII become U+FFFD.
    fn code_string(&self, field: Field) -> Option<String> {
        let text: String = self
            .bytes(field)?
            .iter()
            .map(|&b| if b < 0x80 { char::from(b) } else { '\u{FFFD}' })
            .collect();
        let trimmed = text.trim_matches(|c| c == '\0' || c == ' ');
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// A US value (first of several), in the dataset's byte order.
    fn unsigned_short(&self, field: Field) -> Option<u16> {
        let b: [u8; 2] = self.bytes(field)?.get(..2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    /// The raw values of the text attributes the catalog decodes.
    fn raw_text(&self) -> RawText {
        let values = [
            Field::PatientName,
            Field::PatientId,
            Field::IssuerOfPatientId,
            Field::AccessionNumber,
            Field::StudyId,
            Field::StudyDescription,
            Field::ReferringPhysician,
            Field::SeriesDescription,
        ]
        .into_iter()
        .filter_map(|f| Some((f, self.bytes(f)?.to_vec())))
        .collect();
        RawText { values }
    }

    /// Checks a just-captured dataset SOP UID against its file meta counterpart.
    pub(crate) fn check_against_meta(&self, field: Field) -> Result<(), DicomError> {
        let meta = match field {
            Field::SopClass => Field::MediaSopClass,
            Field::SopInstance => Field::MediaSopInstance,
            _ => return Ok(()),
        };
        if let (Some(in_dataset), Some(in_meta)) = (self.uid(field), self.uid(meta)) {
            if in_dataset != in_meta {
                return Err(DicomError::Inconsistent {
                    offset: self.get(field).map_or(0, |v| v.offset),
                    what: format!(
                        "{} in the dataset differs from {} in the file meta information; the \
                         file was altered after it was written, resend it from the modality or \
                         PACS",
                        field.describe(),
                        meta.describe()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Builds the metadata once every routing attribute has been passed.
    pub(crate) fn build(&self) -> Result<Metadata, DicomError> {
        if self.uid(Field::MediaSopClass).as_deref() == Some(MEDIA_STORAGE_DIRECTORY) {
            return Err(DicomError::MediaDirectory);
        }
        let transfer_syntax = self
            .transfer_syntax()
            .ok_or_else(|| Field::TransferSyntax.missing())?;
        let sop_class_uid = self
            .uid(Field::SopClass)
            .or_else(|| self.uid(Field::MediaSopClass));
        let sop_instance_uid = self
            .uid(Field::SopInstance)
            .or_else(|| self.uid(Field::MediaSopInstance))
            .ok_or_else(|| Field::SopInstance.missing())?;
        let study_instance_uid = self
            .uid(Field::StudyUid)
            .ok_or_else(|| Field::StudyUid.missing())?;
        let series_instance_uid = self.uid(Field::SeriesUid);
        let modality = self.code_string(Field::Modality);
        let specific_character_set = self.code_string(Field::CharacterSet);
        let decoder = TextDecoder::new(specific_character_set.as_deref(), None);
        let raw_text = self.raw_text();
        let mut catalog = Catalog::default();
        raw_text.decode_into(&decoder, &mut catalog);
        let date = |f| {
            self.code_string(f)
                .map(|s| normalise_date(&s))
                .unwrap_or_default()
        };
        catalog.specific_character_set = specific_character_set.clone().unwrap_or_default();
        catalog.patient.birth_date = Phi::new(date(Field::BirthDate));
        catalog.patient.sex = self.code_string(Field::Sex).unwrap_or_default();
        catalog.study.uid = study_instance_uid.clone();
        catalog.study.date = date(Field::StudyDate);
        catalog.study.time = self
            .code_string(Field::StudyTime)
            .map(|s| normalise_time(&s))
            .unwrap_or_default();
        catalog.series.uid = series_instance_uid.clone().unwrap_or_default();
        catalog.series.modality = modality.clone().unwrap_or_default();
        catalog.series.number = self
            .code_string(Field::SeriesNumber)
            .and_then(|s| parse_is(&s));
        catalog.series.body_part = self.code_string(Field::BodyPart).unwrap_or_default();
        catalog.instance.sop_uid = sop_instance_uid.clone();
        catalog.instance.sop_class_uid = sop_class_uid.clone().unwrap_or_default();
        catalog.instance.number = self
            .code_string(Field::InstanceNumber)
            .and_then(|s| parse_is(&s));
        catalog.instance.frames = self.number_of_frames();
        catalog.instance.rows = self.unsigned_short(Field::Rows);
        catalog.instance.columns = self.unsigned_short(Field::Columns);
        catalog.instance.content_date = date(Field::ContentDate);
        Ok(Metadata {
            transfer_syntax,
            sop_class_uid,
            sop_instance_uid,
            study_instance_uid,
            series_instance_uid,
            modality,
            body_part: self.code_string(Field::BodyPart),
            number_of_frames: self.number_of_frames(),
            specific_character_set,
            patient: Patient {
                name: catalog.patient.name.clone(),
                id: catalog.patient.id.clone(),
                accession_number: catalog.study.accession_number.clone(),
            },
            pixel_data: None,
            catalog,
            raw_text: Phi::new(raw_text),
        })
    }

    /// Number of Frames is an IS: an optionally signed decimal integer, padded with spaces. A
    /// value that is not a whole number of frames is treated as absent: routing and storage do
    /// not need it, and the file is stored exactly as received (its viewer will judge it).
    fn number_of_frames(&self) -> Option<u32> {
        let text = self.code_string(Field::NumberOfFrames)?;
        let digits = text.strip_prefix('+').unwrap_or(&text);
        match digits.parse::<u32>() {
            Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Captured, Field};
    use crate::DicomError;

    fn with(values: &[(Field, &[u8])]) -> Captured {
        let mut c = Captured::default();
        for (i, (field, bytes)) in values.iter().enumerate() {
            c.begin(*field, i as u64 * 10, bytes.len());
            c.extend(*field, bytes);
        }
        c
    }

    fn routing() -> Vec<(Field, &'static [u8])> {
        vec![
            (Field::TransferSyntax, b"1.2.840.10008.1.2\0"),
            (Field::SopClass, b"1.2.3\0"),
            (Field::SopInstance, b"1.2.3.4 "),
            (Field::StudyUid, b"1.2\0"),
            (Field::SeriesUid, b"1.3\0"),
            (Field::Modality, b" CT "),
        ]
    }

    #[test]
    fn trims_padding_and_parses_frames() {
        let mut values = routing();
        values.push((Field::NumberOfFrames, b" +12 "));
        values.push((Field::BodyPart, b"CHEST "));
        values.push((Field::CharacterSet, b"GB18030 "));
        values.push((Field::PatientName, "王^小东 ".as_bytes()));
        let md = with(&values).build().map_err(|e| e.to_string());
        let md = md.as_ref().expect("complete metadata");
        assert_eq!(md.transfer_syntax, "1.2.840.10008.1.2");
        assert_eq!(md.sop_instance_uid, "1.2.3.4");
        assert_eq!(md.modality.as_deref(), Some("CT"));
        assert_eq!(md.number_of_frames, Some(12));
        assert_eq!(md.body_part.as_deref(), Some("CHEST"));
        assert_eq!(md.specific_character_set.as_deref(), Some("GB18030"));
        assert_eq!(md.patient.id.expose(), "");
    }

    #[test]
    fn gb18030_names_are_decoded() {
        let mut values = routing();
        values.push((Field::CharacterSet, b"GB18030 "));
        // 王^小东 in GB18030.
        let name: &[u8] = &[0xCD, 0xF5, b'^', 0xD0, 0xA1, 0xB6, 0xAB];
        values.push((Field::PatientName, name));
        let md = with(&values).build().ok();
        assert_eq!(
            md.map(|m| m.patient.name.into_inner()).as_deref(),
            Some("王^小东")
        );
    }

    #[test]
    fn bad_frame_counts_are_treated_as_absent() {
        for bad in [&b"1A"[..], b"-1", b"1.5", b"99999999999", b"1\\2"] {
            let mut values = routing();
            values.push((Field::NumberOfFrames, bad));
            let md = with(&values).build().map_err(|e| e.to_string());
            assert_eq!(md.map(|m| m.number_of_frames), Ok(None), "{bad:?}");
        }
        let mut values = routing();
        values.push((Field::NumberOfFrames, b"  "));
        assert_eq!(
            with(&values).build().ok().and_then(|m| m.number_of_frames),
            None
        );
    }

    #[test]
    fn required_attributes_are_reported_by_name() {
        for missing in [Field::StudyUid, Field::SopInstance] {
            let values: Vec<_> = routing()
                .into_iter()
                .filter(|(f, _)| *f != missing)
                .collect();
            match with(&values).build() {
                Err(DicomError::MissingAttribute { name, .. }) => assert_eq!(name, missing.name()),
                other => panic!("{missing:?}: {other:?}"),
            }
        }
        // An empty value is as good as absent.
        let mut values = routing();
        values.retain(|(f, _)| *f != Field::StudyUid);
        values.push((Field::StudyUid, b"  "));
        assert!(matches!(
            with(&values).build(),
            Err(DicomError::MissingAttribute { .. })
        ));
    }

    #[test]
    fn a_dicomdir_is_named_as_such() {
        let mut values = routing();
        values.push((Field::MediaSopClass, b"1.2.840.10008.1.3.10\0"));
        assert!(matches!(
            with(&values).build(),
            Err(DicomError::MediaDirectory)
        ));
    }

    #[test]
    fn attributes_routing_can_do_without_are_optional() {
        for optional in [Field::Modality, Field::SeriesUid, Field::SopClass] {
            let values: Vec<_> = routing()
                .into_iter()
                .filter(|(f, _)| *f != optional)
                .collect();
            let md = with(&values).build().map_err(|e| e.to_string());
            let md = md.as_ref().expect("identifiable without it");
            assert_eq!(md.sop_instance_uid, "1.2.3.4");
            match optional {
                Field::Modality => assert_eq!(md.modality, None),
                Field::SeriesUid => assert_eq!(md.series_instance_uid, None),
                _ => assert_eq!(md.sop_class_uid, None),
            }
        }
        let mut values = routing();
        values.retain(|(f, _)| *f != Field::Modality);
        values.push((Field::Modality, b"  "));
        assert_eq!(with(&values).build().ok().and_then(|m| m.modality), None);
    }

    #[test]
    fn meta_uids_fill_in_and_must_agree() {
        let mut values: Vec<_> = routing()
            .into_iter()
            .filter(|(f, _)| *f != Field::SopClass)
            .collect();
        values.push((Field::MediaSopClass, b"1.2.3\0"));
        let c = with(&values);
        assert_eq!(
            c.build().ok().and_then(|m| m.sop_class_uid).as_deref(),
            Some("1.2.3")
        );
        values.push((Field::SopClass, b"1.2.3 "));
        assert!(with(&values).check_against_meta(Field::SopClass).is_ok());
        values.pop();
        values.push((Field::SopClass, b"1.2.4\0"));
        assert!(matches!(
            with(&values).check_against_meta(Field::SopClass),
            Err(DicomError::Inconsistent { .. })
        ));
    }
}
