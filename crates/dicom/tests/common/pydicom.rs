//! Real sample files shipped inside pydicom 3.0.2 (offline). The lookups fail the test, never
//! skip it, when pydicom is missing.

use std::path::PathBuf;
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
