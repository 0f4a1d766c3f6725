//! Data set attributes shared by every generated instance (everything but Pixel Data).

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::spec::StudySpec;

/// Fixed dates and times: fixtures must not depend on the clock.
pub(crate) const STUDY_DATE: &str = "20250315";
pub(crate) const STUDY_TIME: &str = "093000";

/// What identifies one instance inside its study.
pub(crate) struct InstanceHeader<'a> {
    pub sop_class_uid: &'a str,
    pub sop_instance_uid: &'a str,
    pub series_uid: &'a str,
    pub modality: &'a str,
    pub series_number: u32,
    pub instance_number: u32,
    pub image_type: &'a str,
}

/// The Image Pixel module (without Pixel Data).
pub(crate) struct PixelModule<'a> {
    pub rows: u16,
    pub cols: u16,
    pub samples_per_pixel: u16,
    pub photometric: &'a str,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    /// 0 = unsigned, 1 = two's complement.
    pub pixel_representation: u16,
}

/// Patient, General Study, General Series, General Equipment, General Image and SOP Common
/// attributes, with Specific Character Set `ISO_IR 192` so the Chinese patient name is UTF-8.
pub(crate) fn base_object(spec: &StudySpec, ids: &InstanceHeader<'_>) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    put_str(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put_str(&mut obj, tags::IMAGE_TYPE, VR::CS, ids.image_type);
    put_str(&mut obj, tags::SOP_CLASS_UID, VR::UI, ids.sop_class_uid);
    put_str(
        &mut obj,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        ids.sop_instance_uid,
    );
    put_str(&mut obj, tags::STUDY_DATE, VR::DA, STUDY_DATE);
    put_str(&mut obj, tags::SERIES_DATE, VR::DA, STUDY_DATE);
    put_str(&mut obj, tags::CONTENT_DATE, VR::DA, STUDY_DATE);
    put_str(&mut obj, tags::STUDY_TIME, VR::TM, STUDY_TIME);
    put_str(&mut obj, tags::CONTENT_TIME, VR::TM, STUDY_TIME);
    put_str(
        &mut obj,
        tags::ACCESSION_NUMBER,
        VR::SH,
        spec.accession.as_str(),
    );
    put_str(&mut obj, tags::MODALITY, VR::CS, ids.modality);
    put_str(&mut obj, tags::MANUFACTURER, VR::LO, "yilian-testkit");
    put_str(&mut obj, tags::INSTITUTION_NAME, VR::LO, "测试乡镇卫生院");
    put_str(&mut obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put_str(&mut obj, tags::MANUFACTURER_MODEL_NAME, VR::LO, "synthetic");
    put_str(
        &mut obj,
        tags::PATIENT_NAME,
        VR::PN,
        spec.patient_name.as_str(),
    );
    put_str(&mut obj, tags::PATIENT_ID, VR::LO, spec.patient_id.as_str());
    put_str(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, "19650412");
    put_str(&mut obj, tags::PATIENT_SEX, VR::CS, "O");
    if let Some(body_part) = &spec.body_part {
        put_str(
            &mut obj,
            tags::BODY_PART_EXAMINED,
            VR::CS,
            body_part.as_str(),
        );
    }
    put_str(
        &mut obj,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        spec.study_uid.as_str(),
    );
    put_str(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, ids.series_uid);
    put_str(&mut obj, tags::STUDY_ID, VR::SH, "1");
    put_str(
        &mut obj,
        tags::SERIES_NUMBER,
        VR::IS,
        ids.series_number.to_string(),
    );
    put_str(
        &mut obj,
        tags::INSTANCE_NUMBER,
        VR::IS,
        ids.instance_number.to_string(),
    );
    obj
}

/// Adds the Image Pixel module attributes (except Pixel Data).
pub(crate) fn put_pixel_module(obj: &mut InMemDicomObject, px: &PixelModule<'_>) {
    put_u16(obj, tags::SAMPLES_PER_PIXEL, px.samples_per_pixel);
    put_str(
        obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        px.photometric,
    );
    if px.samples_per_pixel > 1 {
        put_u16(obj, tags::PLANAR_CONFIGURATION, 0);
    }
    put_u16(obj, tags::ROWS, px.rows);
    put_u16(obj, tags::COLUMNS, px.cols);
    put_u16(obj, tags::BITS_ALLOCATED, px.bits_allocated);
    put_u16(obj, tags::BITS_STORED, px.bits_stored);
    put_u16(obj, tags::HIGH_BIT, px.bits_stored - 1);
    put_u16(obj, tags::PIXEL_REPRESENTATION, px.pixel_representation);
}

/// Adds the Multi-frame module with Cine timing: Number of Frames, Frame Time (ms) and Frame
/// Increment Pointer → Frame Time.
pub(crate) fn put_multiframe(obj: &mut InMemDicomObject, frames: u32, frame_time_ms: f64) {
    put_str(obj, tags::NUMBER_OF_FRAMES, VR::IS, frames.to_string());
    put_str(obj, tags::FRAME_TIME, VR::DS, ds(frame_time_ms));
    obj.put(DataElement::new(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::from(tags::FRAME_TIME),
    ));
}

pub(crate) fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<String>) {
    obj.put_str(tag, vr, value);
}

pub(crate) fn put_u16(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

/// A Decimal String value: at most 4 decimals, no trailing zeros, never more than 16 characters.
pub(crate) fn ds(value: f64) -> String {
    let mut s = format!("{value:.4}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".to_owned();
    }
    debug_assert!(s.len() <= 16, "DS value too long: {s}");
    s
}

/// Several Decimal String values, backslash-separated.
pub(crate) fn ds_multi(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

#[cfg(test)]
mod tests {
    use super::{ds, ds_multi};

    #[test]
    fn decimal_strings() {
        assert_eq!(ds(1.0), "1");
        assert_eq!(ds(-1024.0), "-1024");
        assert_eq!(ds(0.68359375), "0.6836");
        assert_eq!(ds(33.333333), "33.3333");
        assert_eq!(ds(-0.00001), "0");
        assert_eq!(ds_multi(&[1.0, 0.0, -2.5]), "1\\0\\-2.5");
    }
}
