//! What dicom-object (dicom-rs) reads from a file: the oracle for the walker's metadata.

use std::path::Path;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use yilian_dicom::Metadata;

/// The routing values as dicom-object reads them, normalised like the walker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub transfer_syntax: String,
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub number_of_frames: Option<String>,
    pub specific_character_set: Option<String>,
    pub name: String,
    pub id: String,
    pub accession_number: String,
}

/// Trims like the walker: each `\`-separated value of its ends' spaces/NULs.
fn norm(s: &str) -> String {
    s.split('\\')
        .map(|v| v.trim_matches(['\0', ' ']))
        .collect::<Vec<_>>()
        .join("\\")
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub fn read(path: &Path) -> Result<Expected, String> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| e.to_string())?;
    // An element read with VR UN (e.g. after a private-syntax conversion) comes as bytes.
    let as_text = |e: &dicom_object::mem::InMemElement| -> Option<String> {
        if e.vr() == VR::UN {
            e.to_bytes()
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        } else {
            e.to_str().ok().map(|s| s.into_owned())
        }
    };
    let get = |tag: Tag| -> Option<String> {
        obj.get(tag)
            .and_then(as_text)
            .map(|s| norm(&s))
            .and_then(non_empty)
    };
    let text = |tag: Tag, keyword: &str| -> String {
        let s = obj
            .get(tag)
            .and_then(as_text)
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default();
        if s.contains('\u{1b}') {
            // dicom-rs leaves ISO 2022 escape sequences in: pydicom decodes them.
            super::pydicom::decoded_text(path, keyword)
        } else {
            s
        }
    };
    let meta = obj.meta();
    Ok(Expected {
        transfer_syntax: norm(meta.transfer_syntax()),
        sop_class_uid: get(tags::SOP_CLASS_UID)
            .or_else(|| non_empty(norm(meta.media_storage_sop_class_uid()))),
        sop_instance_uid: get(tags::SOP_INSTANCE_UID)
            .or_else(|| non_empty(norm(meta.media_storage_sop_instance_uid()))),
        study_instance_uid: get(tags::STUDY_INSTANCE_UID),
        series_instance_uid: get(tags::SERIES_INSTANCE_UID),
        modality: get(tags::MODALITY),
        body_part: get(tags::BODY_PART_EXAMINED),
        number_of_frames: get(tags::NUMBER_OF_FRAMES),
        specific_character_set: get(tags::SPECIFIC_CHARACTER_SET),
        name: text(tags::PATIENT_NAME, "PatientName"),
        id: text(tags::PATIENT_ID, "PatientID"),
        accession_number: text(tags::ACCESSION_NUMBER, "AccessionNumber"),
    })
}

impl Expected {
    /// Whether every attribute the walker requires is there (what identifies an instance).
    pub fn routable(&self) -> bool {
        self.sop_instance_uid.is_some() && self.study_instance_uid.is_some()
    }

    /// Panics with a readable diff if the walker's metadata differs.
    pub fn assert_matches(&self, md: &Metadata, what: &str) {
        assert_eq!(
            md.transfer_syntax, self.transfer_syntax,
            "{what}: transfer syntax"
        );
        assert_eq!(
            md.sop_class_uid.as_ref(),
            self.sop_class_uid.as_ref(),
            "{what}: SOP class"
        );
        assert_eq!(
            Some(&md.sop_instance_uid),
            self.sop_instance_uid.as_ref(),
            "{what}: SOP instance"
        );
        assert_eq!(
            Some(&md.study_instance_uid),
            self.study_instance_uid.as_ref(),
            "{what}: study"
        );
        assert_eq!(
            md.series_instance_uid.as_ref(),
            self.series_instance_uid.as_ref(),
            "{what}: series"
        );
        assert_eq!(
            md.modality.as_ref(),
            self.modality.as_ref(),
            "{what}: modality"
        );
        assert_eq!(md.body_part, self.body_part, "{what}: body part");
        assert_eq!(
            md.number_of_frames.map(|n| n.to_string()),
            self.number_of_frames
                .as_ref()
                .map(|s| s.trim_start_matches('+').trim_start_matches('0').to_owned())
                .map(|s| if s.is_empty() { "0".to_owned() } else { s }),
            "{what}: number of frames"
        );
        assert_eq!(
            md.specific_character_set, self.specific_character_set,
            "{what}: specific character set"
        );
        assert_eq!(md.patient.name.expose(), &self.name, "{what}: patient name");
        assert_eq!(md.patient.id.expose(), &self.id, "{what}: patient id");
        assert_eq!(
            md.patient.accession_number.expose(),
            &self.accession_number,
            "{what}: accession number"
        );
    }
}
