//! An independent reader (pydicom, in strict validation mode) accepts what we generate.
//!
//! Requires `python3` with pydicom (`pip install pydicom==3.0.2`). This test fails — it does not
//! skip — when pydicom is missing, so that interoperability is never silently unchecked.

use std::process::Command;

use yilian_testkit::{ct_series, dx_image, large_instance, us_multiframe, StudySpec};

const SCRIPT: &str = r#"
import sys
import pydicom
from pydicom import config
config.settings.reading_validation_mode = config.RAISE
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    for elem in ds.iterall():   # forces conversion (and validation) of every value
        elem.value
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    print(path, ds.SOPClassUID, ds.Modality, ds.Rows, ds.Columns, frames,
          len(ds.PixelData), str(ds.PatientName), ds.file_meta.TransferSyntaxUID, sep="|")
"#;

fn pydicom_available() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import pydicom"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn pydicom_reads_generated_files() {
    if let Err(why) = pydicom_available() {
        panic!(
            "pydicom is required for this interoperability test and is missing \
             (install it with `python3 -m pip install pydicom==3.0.2`): {why}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = StudySpec::new("CT", 21);
    let ct = ct_series(&dir.path().join("ct"), &spec, 2, 64, 96, 1).unwrap();
    let dx = dx_image(&dir.path().join("dx.dcm"), &spec, 50, 40, 1).unwrap();
    let us = us_multiframe(&dir.path().join("us.dcm"), &spec, 3, 5, 7, 1).unwrap();
    let large = large_instance(&dir.path().join("large.dcm"), &spec, 1 << 20, 1).unwrap();

    let files = [&ct[0], &ct[1], &dx, &us, &large];
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .env("PYTHONIOENCODING", "utf-8")
        .args(files.iter().map(|g| &g.path))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pydicom rejected a generated file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), files.len(), "{stdout}");

    let expected = [
        ("1.2.840.10008.5.1.4.1.1.2", "CT", 64, 96, 1, 64 * 96 * 2),
        ("1.2.840.10008.5.1.4.1.1.2", "CT", 64, 96, 1, 64 * 96 * 2),
        ("1.2.840.10008.5.1.4.1.1.1.1", "DX", 50, 40, 1, 50 * 40 * 2),
        (
            "1.2.840.10008.5.1.4.1.1.3.1",
            "US",
            5,
            7,
            3,
            3 * 5 * 7 * 3 + 1,
        ),
        ("1.2.840.10008.5.1.4.1.1.7.3", "CT", 512, 512, 2, 1 << 20),
    ];
    for ((line, g), (sop, modality, rows, cols, frames, pixel_len)) in
        lines.iter().zip(files).zip(expected)
    {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 9, "{line}");
        assert_eq!(fields[0], g.path.to_str().unwrap());
        assert_eq!(fields[1], sop, "{line}");
        assert_eq!(fields[2], modality, "{line}");
        assert_eq!(fields[3], rows.to_string(), "{line}");
        assert_eq!(fields[4], cols.to_string(), "{line}");
        assert_eq!(fields[5], frames.to_string(), "{line}");
        assert_eq!(fields[6], pixel_len.to_string(), "{line}");
        assert_eq!(fields[7], "测试^患者", "UTF-8 patient name: {line}");
        assert_eq!(fields[8], "1.2.840.10008.1.2.1", "{line}");
    }
}
