//! Real sample files shipped inside pydicom 3.0.2 (offline). The lookups fail the test, never
//! skip it, when pydicom is missing.

use std::path::PathBuf;
use std::process::Command;

const INSTALL: &str = "pip install pydicom==3.0.2";

fn python(code: &str) -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(&python)
        .arg("-c")
        .arg(code)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}); the sample files come from pydicom: {INSTALL}"));
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
    let code = format!(
        "{PRELUDE}p = d.get_testdata_file({name:?})\n\
         if p is None:\n    fs = d.get_charset_files({name:?})\n    p = fs[0] if fs else None\n\
         print(p if p else '')"
    );
    let path = python(&code).trim().to_owned();
    assert!(
        !path.is_empty(),
        "pydicom 3.0.2 has no sample named {name} ({INSTALL})"
    );
    PathBuf::from(path)
}

/// Every bundled test and charset file (DICOM or not).
pub fn all_samples() -> Vec<PathBuf> {
    let code = format!(
        "{PRELUDE}import os\n\
         for p in sorted(d.get_testdata_files() + d.get_charset_files()):\n\
         \x20   if os.path.isfile(p): print(p)"
    );
    python(&code).lines().map(PathBuf::from).collect()
}
