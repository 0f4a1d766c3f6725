//! Real sample files shipped inside pydicom 3.0.2 (offline). The lookups fail the test, never
//! skip it, when pydicom is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const INSTALL: &str = "pip install pydicom==3.0.2";

fn python(code: &str) -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(&python)
        .arg("-c")
        .arg(code)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}); the sample files come from pydicom: {INSTALL}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pydicom is needed for the sample files: {INSTALL}\n{python} said: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PRELUDE: &str = "import pydicom, pydicom.data as d\n\
assert pydicom.__version__ == '3.0.2', 'pydicom ' + pydicom.__version__ + ' found; the tests expect 3.0.2'\n";

/// The path of a sample: a test file (`CT_small.dcm`) or a charset file (`chrX2.dcm`).
pub fn sample(name: &str) -> PathBuf {
    all_samples()
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("pydicom 3.0.2 has no sample named {name} ({INSTALL})"))
}

/// Every bundled test and charset file (DICOM or not), asked of pydicom once per test binary.
pub fn all_samples() -> Vec<PathBuf> {
    static ALL: OnceLock<Vec<PathBuf>> = OnceLock::new();
    ALL.get_or_init(|| {
        let code = format!(
            "{PRELUDE}import os\n\
             for p in sorted(d.get_testdata_files() + d.get_charset_files()):\n\
             \x20   if os.path.isfile(p): print(p)"
        );
        python(&code).lines().map(PathBuf::from).collect()
    })
    .clone()
}

/// pydicom's decoding of a text attribute (by keyword) of a file: the oracle for character
/// sets dicom-rs does not decode (ISO 2022 code extensions with multi-byte sets).
pub fn decoded_text(path: &Path, keyword: &str) -> String {
    let code = format!(
        "{PRELUDE}ds = pydicom.dcmread({path:?}, stop_before_pixels=True)\n\
         print(str(ds.get({keyword:?}, '') or '').encode('utf-8').hex())",
        path = path.display().to_string(),
    );
    let hex = python(&code);
    let bytes: Vec<u8> = (0..hex.trim().len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.trim().get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
