//! Every generator writes a file that dicom-object opens back with the expected SOP class,
//! modality, UIDs, dimensions and pixel data; generation is deterministic in the seed.

mod common;

use std::collections::HashSet;

use common::{check_common, int, open, pixel_bytes, text};
use dicom_dictionary_std::tags;
use yilian_testkit::{
    blake3_file, ct_series, dx_image, large_instance, us_multiframe, Generated, StudySpec,
    LARGE_FRAME_BYTES, LARGE_MAX_PIXEL_BYTES,
};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const DX: &str = "1.2.840.10008.5.1.4.1.1.1.1";
const US_MF: &str = "1.2.840.10008.5.1.4.1.1.3.1";
const SC_WORD: &str = "1.2.840.10008.5.1.4.1.1.7.3";

#[test]
fn study_spec_is_deterministic() {
    let a = StudySpec::new("CT", 42);
    assert_eq!(a, StudySpec::new("CT", 42));
    assert_ne!(a.study_uid, StudySpec::new("CT", 43).study_uid);
    assert_eq!(a.patient_name, "测试^患者");
    assert_eq!(a.body_part.as_deref(), Some("CHEST"));
    assert_eq!(StudySpec::new("ECG", 1).body_part, None);
    assert!(a.study_uid.starts_with("1.2.826.0.1.3680043.10.1234."));
}

#[test]
fn ct_series_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = StudySpec::new("CT", 7);
    spec.body_part = Some("HEAD".into());
    let series = ct_series(dir.path(), &spec, 5, 64, 80, 1).unwrap();
    assert_eq!(series.len(), 5);

    let mut instance_uids = HashSet::new();
    let mut positions = Vec::new();
    for (i, g) in series.iter().enumerate() {
        assert_eq!(
            g.path.file_name().unwrap().to_str().unwrap(),
            format!("CT_{:04}.dcm", i + 1)
        );
        assert_eq!(g.sop_class_uid, CT);
        assert_eq!(g.modality, "CT");
        assert_eq!(g.series_instance_uid, series[0].series_instance_uid);
        assert!(instance_uids.insert(g.sop_instance_uid.clone()));

        let obj = open(&g.path);
        check_common(&obj, g, &spec.study_uid);
        assert_eq!(int(&obj, tags::ROWS), 64);
        assert_eq!(int(&obj, tags::COLUMNS), 80);
        assert_eq!(int(&obj, tags::BITS_ALLOCATED), 16);
        assert_eq!(int(&obj, tags::BITS_STORED), 16);
        assert_eq!(int(&obj, tags::PIXEL_REPRESENTATION), 1);
        assert_eq!(int(&obj, tags::INSTANCE_NUMBER), i as i64 + 1);
        assert_eq!(text(&obj, tags::RESCALE_INTERCEPT), "-1024");
        assert_eq!(text(&obj, tags::BODY_PART_EXAMINED), "HEAD");
        assert_eq!(text(&obj, tags::PHOTOMETRIC_INTERPRETATION), "MONOCHROME2");
        assert_eq!(text(&obj, tags::WINDOW_CENTER), "40");
        assert_eq!(text(&obj, tags::WINDOW_WIDTH), "400");
        assert_eq!(text(&obj, tags::SLICE_THICKNESS), "1.25");
        assert_eq!(
            text(&obj, tags::IMAGE_ORIENTATION_PATIENT),
            "1\\0\\0\\0\\1\\0"
        );
        positions.push(text(&obj, tags::IMAGE_POSITION_PATIENT));

        let pixels = pixel_bytes(&obj);
        assert_eq!(pixels.len(), 64 * 80 * 2);
        assert_eq!(g.pixel_data_len, 64 * 80 * 2);
        let values: Vec<i16> = pixels
            .chunks_exact(2)
            .map(|p| i16::from_le_bytes([p[0], p[1]]))
            .collect();
        // Air (stored 0 = -1024 HU) around a soft-tissue body (stored ~1000..1127).
        assert!(values.iter().all(|&v| v == 0 || (1000..1128).contains(&v)));
        let body = values.iter().filter(|&&v| v != 0).count();
        assert!(
            body > values.len() / 3 && body < values.len(),
            "body {body}"
        );
        assert!(
            values.iter().collect::<HashSet<_>>().len() > 20,
            "pixels vary"
        );
    }
    // Slices step along z.
    assert_eq!(positions[0], "-175\\-175\\0");
    assert_eq!(positions[1], "-175\\-175\\-1.25");
    assert_eq!(positions.iter().collect::<HashSet<_>>().len(), 5);
}

#[test]
fn dx_image_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StudySpec::new("DX", 8);
    let g = dx_image(&dir.path().join("dx.dcm"), &spec, 120, 100, 2).unwrap();
    assert_eq!(g.sop_class_uid, DX);
    assert_eq!(g.modality, "DX");
    let obj = open(&g.path);
    check_common(&obj, &g, &spec.study_uid);
    assert_eq!(int(&obj, tags::ROWS), 120);
    assert_eq!(int(&obj, tags::COLUMNS), 100);
    assert_eq!(int(&obj, tags::BITS_ALLOCATED), 16);
    assert_eq!(int(&obj, tags::BITS_STORED), 12);
    assert_eq!(int(&obj, tags::HIGH_BIT), 11);
    assert_eq!(int(&obj, tags::PIXEL_REPRESENTATION), 0);
    assert_eq!(
        text(&obj, tags::PRESENTATION_INTENT_TYPE),
        "FOR PRESENTATION"
    );
    assert_eq!(text(&obj, tags::BODY_PART_EXAMINED), "CHEST");
    let pixels = pixel_bytes(&obj);
    assert_eq!(pixels.len(), 120 * 100 * 2);
    let values: Vec<u16> = pixels
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    assert!(values.iter().all(|&v| v < 4096), "12 bits stored");
    assert!(
        values.iter().collect::<HashSet<_>>().len() > 50,
        "pixels vary"
    );
}

#[test]
fn us_multiframe_reads_back_including_odd_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StudySpec::new("US", 9);
    // 3 frames of 5×7 RGB = 315 bytes: odd, padded to 316.
    for (frames, rows, cols) in [(4u32, 48u16, 64u16), (3, 5, 7)] {
        let g = us_multiframe(
            &dir.path().join(format!("us-{frames}.dcm")),
            &spec,
            frames,
            rows,
            cols,
            3,
        )
        .unwrap();
        assert_eq!(g.sop_class_uid, US_MF);
        assert_eq!(g.modality, "US");
        let obj = open(&g.path);
        check_common(&obj, &g, &spec.study_uid);
        assert_eq!(int(&obj, tags::ROWS), i64::from(rows));
        assert_eq!(int(&obj, tags::COLUMNS), i64::from(cols));
        assert_eq!(int(&obj, tags::NUMBER_OF_FRAMES), i64::from(frames));
        assert_eq!(int(&obj, tags::SAMPLES_PER_PIXEL), 3);
        assert_eq!(int(&obj, tags::PLANAR_CONFIGURATION), 0);
        assert_eq!(int(&obj, tags::BITS_ALLOCATED), 8);
        assert_eq!(int(&obj, tags::CINE_RATE), 30);
        assert_eq!(text(&obj, tags::FRAME_TIME), "33.3333");
        assert_eq!(text(&obj, tags::PHOTOMETRIC_INTERPRETATION), "RGB");
        let expected = u64::from(frames) * u64::from(rows) * u64::from(cols) * 3;
        let padded = expected + expected % 2;
        let pixels = pixel_bytes(&obj);
        assert_eq!(pixels.len() as u64, padded);
        assert_eq!(g.pixel_data_len, padded);
        if padded != expected {
            assert_eq!(pixels.last(), Some(&0), "pad byte");
        }
        // Grey: R = G = B.
        assert!(pixels[..expected as usize]
            .chunks_exact(3)
            .all(|p| p[0] == p[1] && p[1] == p[2]));
        assert!(pixels.iter().any(|&b| b != 0));
    }
}

#[test]
fn large_instance_of_8_mib_is_correct() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = StudySpec::new("XA", 10);
    spec.modality = "XA".into();
    let pixel_bytes_wanted = 8 << 20;
    let g = large_instance(&dir.path().join("large.dcm"), &spec, pixel_bytes_wanted, 5).unwrap();
    assert_eq!(g.sop_class_uid, SC_WORD);
    assert_eq!(g.modality, "XA");
    assert_eq!(g.pixel_data_len, pixel_bytes_wanted);
    assert_eq!(blake3_file(&g.path).unwrap(), g.blake3);

    let obj = open(&g.path);
    check_common(&obj, &g, &spec.study_uid);
    assert_eq!(int(&obj, tags::ROWS), 512);
    assert_eq!(int(&obj, tags::COLUMNS), 512);
    assert_eq!(
        int(&obj, tags::NUMBER_OF_FRAMES),
        (pixel_bytes_wanted / LARGE_FRAME_BYTES) as i64
    );
    assert_eq!(int(&obj, tags::BITS_ALLOCATED), 16);
    assert_eq!(int(&obj, tags::BITS_STORED), 12);
    let pixels = pixel_bytes(&obj);
    assert_eq!(pixels.len() as u64, pixel_bytes_wanted);
    assert!(pixels
        .chunks_exact(2)
        .all(|p| u16::from_le_bytes([p[0], p[1]]) < 4096));
    // Not a repeated pattern: the two halves differ.
    let (a, b) = pixels.split_at(pixels.len() / 2);
    assert_ne!(a, b);

    // The element header is explicit OW with the exact length, right before the pixels.
    let raw = std::fs::read(&g.path).unwrap();
    let at = g.pixel_data_offset as usize;
    assert_eq!(
        &raw[at - 12..at - 4],
        &[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]
    );
    assert_eq!(
        u32::from_le_bytes(raw[at - 4..at].try_into().unwrap()),
        pixel_bytes_wanted as u32
    );
}

#[test]
fn large_instance_rounds_up_to_whole_frames_and_rejects_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StudySpec::new("OT", 11);
    let g = large_instance(&dir.path().join("one.dcm"), &spec, 1000, 1).unwrap();
    assert_eq!(g.pixel_data_len, LARGE_FRAME_BYTES);
    assert_eq!(int(&open(&g.path), tags::NUMBER_OF_FRAMES), 1);
    let g = large_instance(&dir.path().join("zero.dcm"), &spec, 0, 1).unwrap();
    assert_eq!(g.pixel_data_len, LARGE_FRAME_BYTES);
    let g = large_instance(
        &dir.path().join("three.dcm"),
        &spec,
        2 * LARGE_FRAME_BYTES + 1,
        1,
    )
    .unwrap();
    assert_eq!(g.pixel_data_len, 3 * LARGE_FRAME_BYTES);

    let err = large_instance(
        &dir.path().join("huge.dcm"),
        &spec,
        LARGE_MAX_PIXEL_BYTES + 1,
        1,
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!dir.path().join("huge.dcm").exists());
    const { assert!(LARGE_MAX_PIXEL_BYTES < 0xFFFF_FFFF) };
    const { assert!(LARGE_MAX_PIXEL_BYTES > 4_000_000_000) };
}

/// Generates one of everything under `dir` with the given seeds.
fn all_generators(dir: &std::path::Path, spec_seed: u64, seed: u64) -> Vec<Generated> {
    let ct_spec = StudySpec::new("CT", spec_seed);
    let mut out = ct_series(&dir.join("ct"), &ct_spec, 3, 32, 48, seed).unwrap();
    out.push(
        dx_image(
            &dir.join("dx.dcm"),
            &StudySpec::new("DX", spec_seed),
            40,
            30,
            seed,
        )
        .unwrap(),
    );
    out.push(
        us_multiframe(
            &dir.join("us.dcm"),
            &StudySpec::new("US", spec_seed),
            2,
            16,
            24,
            seed,
        )
        .unwrap(),
    );
    out.push(
        large_instance(
            &dir.join("large.dcm"),
            &StudySpec::new("CT", spec_seed),
            1 << 20,
            seed,
        )
        .unwrap(),
    );
    out
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = all_generators(a.path(), 1, 1);
    let second = all_generators(b.path(), 1, 1);
    assert_eq!(first.len(), second.len());
    for (x, y) in first.iter().zip(&second) {
        assert_eq!(
            std::fs::read(&x.path).unwrap(),
            std::fs::read(&y.path).unwrap(),
            "{} vs {}",
            x.path.display(),
            y.path.display()
        );
        assert_eq!(x.blake3, y.blake3);
        assert_eq!(x.sop_instance_uid, y.sop_instance_uid);
    }
}

#[test]
fn different_seeds_give_different_files_and_uids() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let base = all_generators(a.path(), 1, 1);
    let other_seed = all_generators(b.path(), 1, 2);
    let other_study = all_generators(c.path(), 2, 1);
    for ((x, y), z) in base.iter().zip(&other_seed).zip(&other_study) {
        assert_ne!(x.blake3, y.blake3, "{}", x.path.display());
        assert_ne!(x.sop_instance_uid, y.sop_instance_uid);
        assert_ne!(x.series_instance_uid, y.series_instance_uid);
        assert_eq!(x.study_instance_uid, y.study_instance_uid);
        assert_ne!(x.blake3, z.blake3);
        assert_ne!(x.study_instance_uid, z.study_instance_uid);
        assert_ne!(x.sop_instance_uid, z.sop_instance_uid);
        // The pixels themselves differ with the seed, not only the UIDs.
        let (px, py) = (pixel_bytes(&open(&x.path)), pixel_bytes(&open(&y.path)));
        assert_ne!(px, py, "{}", x.path.display());
    }
    // All instance UIDs across generators are distinct.
    let uids: HashSet<_> = base.iter().map(|g| &g.sop_instance_uid).collect();
    assert_eq!(uids.len(), base.len());
}

#[test]
fn dicom_object_rewrites_our_files_byte_for_byte() {
    // Our streamed Pixel Data element is encoded exactly as dicom-rs would encode it.
    let dir = tempfile::tempdir().unwrap();
    let spec = StudySpec::new("CT", 12);
    let mut files = ct_series(&dir.path().join("ct"), &spec, 1, 16, 16, 1).unwrap();
    files.push(dx_image(&dir.path().join("dx.dcm"), &spec, 10, 12, 1).unwrap());
    files.push(us_multiframe(&dir.path().join("us.dcm"), &spec, 3, 5, 7, 1).unwrap());
    for g in files {
        let again = dir.path().join("rewritten.dcm");
        open(&g.path).write_to_file(&again).unwrap();
        assert_eq!(
            std::fs::read(&g.path).unwrap(),
            std::fs::read(&again).unwrap(),
            "{}",
            g.path.display()
        );
    }
}

#[test]
fn empty_images_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StudySpec::new("CT", 1);
    assert!(ct_series(dir.path(), &spec, 1, 0, 10, 1).is_err());
    assert!(dx_image(&dir.path().join("dx.dcm"), &spec, 10, 0, 1).is_err());
    assert!(us_multiframe(&dir.path().join("us.dcm"), &spec, 0, 10, 10, 1).is_err());
    assert!(ct_series(dir.path(), &spec, 0, 10, 10, 1)
        .unwrap()
        .is_empty());
}
