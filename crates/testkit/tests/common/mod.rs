//! Reading generated files back with dicom-object.

#![allow(dead_code)]

use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{open_file, DefaultDicomObject};
use yilian_testkit::Generated;

pub fn open(path: &Path) -> DefaultDicomObject {
    open_file(path).unwrap_or_else(|e| panic!("dicom-object cannot open {}: {e}", path.display()))
}

pub fn text(obj: &DefaultDicomObject, tag: Tag) -> String {
    obj.element(tag)
        .unwrap_or_else(|e| panic!("missing {tag}: {e}"))
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_owned()
}

pub fn int(obj: &DefaultDicomObject, tag: Tag) -> i64 {
    obj.element(tag)
        .unwrap_or_else(|e| panic!("missing {tag}: {e}"))
        .to_int::<i64>()
        .unwrap()
}

pub fn pixel_bytes(obj: &DefaultDicomObject) -> Vec<u8> {
    obj.element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .into_owned()
}

/// What every generated file must satisfy, whatever the generator.
pub fn check_common(obj: &DefaultDicomObject, g: &Generated, study_uid: &str) {
    let meta = obj.meta();
    assert_eq!(
        meta.transfer_syntax().trim_end_matches('\0'),
        "1.2.840.10008.1.2.1"
    );
    assert_eq!(
        meta.media_storage_sop_class_uid().trim_end_matches('\0'),
        g.sop_class_uid
    );
    assert_eq!(
        meta.media_storage_sop_instance_uid().trim_end_matches('\0'),
        g.sop_instance_uid
    );
    assert_eq!(text(obj, tags::SOP_CLASS_UID), g.sop_class_uid);
    assert_eq!(text(obj, tags::SOP_INSTANCE_UID), g.sop_instance_uid);
    assert_eq!(text(obj, tags::STUDY_INSTANCE_UID), study_uid);
    assert_eq!(g.study_instance_uid, study_uid);
    assert_eq!(text(obj, tags::SERIES_INSTANCE_UID), g.series_instance_uid);
    assert_eq!(text(obj, tags::MODALITY), g.modality);
    assert_eq!(text(obj, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    assert_eq!(text(obj, tags::PATIENT_NAME), "测试^患者");
    for uid in [
        &g.sop_instance_uid,
        &g.series_instance_uid,
        &g.study_instance_uid,
    ] {
        assert!(
            uid.len() <= 64 && uid.starts_with(yilian_testkit::TEST_UID_ROOT),
            "{uid}"
        );
    }

    let on_disk = std::fs::metadata(&g.path).unwrap().len();
    assert_eq!(g.size, on_disk, "recorded size");
    assert_eq!(
        yilian_testkit::blake3_file(&g.path).unwrap(),
        g.blake3,
        "recorded hash"
    );
    assert_eq!(g.pixel_data_offset + g.pixel_data_len, g.size);
    assert_eq!(g.pixel_data_len % 2, 0);
}
