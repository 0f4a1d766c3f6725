//! The bad inputs really are bad: dicom-object refuses each of them, while the source is fine.

use dicom_object::open_file;
use yilian_testkit::{
    blake3_file, corrupt_length, ct_series, not_dicom, truncated_copy, Generated, StudySpec,
};

fn one_ct(dir: &std::path::Path) -> Generated {
    ct_series(dir, &StudySpec::new("CT", 3), 1, 64, 64, 3)
        .unwrap()
        .remove(0)
}

#[test]
fn not_dicom_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = not_dicom(&dir.path().join("photo.jpg")).unwrap();
    assert_eq!(path, dir.path().join("photo.jpg"));
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 132);
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    assert_ne!(&bytes[128..132], b"DICM");
    assert!(open_file(&path).is_err());
}

#[test]
fn truncated_copy_shortens_and_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let g = one_ct(dir.path());
    let keep = g.pixel_data_offset + 1000; // cut in the pixel data
    let cut = truncated_copy(&g.path, &dir.path().join("cut.dcm"), keep).unwrap();
    assert_eq!(std::fs::metadata(&cut).unwrap().len(), keep);
    assert!(keep < g.size);
    let original = std::fs::read(&g.path).unwrap();
    assert_eq!(std::fs::read(&cut).unwrap(), &original[..keep as usize]);
    assert!(open_file(&g.path).is_ok());
    assert!(
        open_file(&cut).is_err(),
        "a file cut in its pixel data must not open"
    );
    // The source is untouched.
    assert_eq!(blake3_file(&g.path).unwrap(), g.blake3);
}

#[test]
fn truncated_copy_refuses_not_to_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let g = one_ct(dir.path());
    for keep in [g.size, g.size + 1] {
        let err = truncated_copy(&g.path, &dir.path().join("same.dcm"), keep).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[test]
fn corrupt_length_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let g = one_ct(dir.path());
    let bad = corrupt_length(&g.path, &dir.path().join("bad-length.dcm")).unwrap();
    let (good_bytes, bad_bytes) = (
        std::fs::read(&g.path).unwrap(),
        std::fs::read(&bad).unwrap(),
    );
    assert_eq!(good_bytes.len(), bad_bytes.len());
    let differing: Vec<usize> = (0..good_bytes.len())
        .filter(|&i| good_bytes[i] != bad_bytes[i])
        .collect();
    assert!(
        !differing.is_empty() && differing.len() <= 4,
        "{differing:?}"
    );
    assert!(
        open_file(&bad).is_err(),
        "a corrupt element length must not open"
    );
    assert_eq!(blake3_file(&g.path).unwrap(), g.blake3);

    // Not DICOM in, error out.
    let jpeg = not_dicom(&dir.path().join("x.jpg")).unwrap();
    let err = corrupt_length(&jpeg, &dir.path().join("y.dcm")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
