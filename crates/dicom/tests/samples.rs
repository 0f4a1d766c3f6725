//! Real sample files from pydicom 3.0.2, checked against dicom-object (the oracle).

mod common;

use common::oracle;
use common::pydicom;
use yilian_dicom::validate_file;

#[test]
fn survey() {
    for path in pydicom::all_samples() {
        let o = oracle::read(&path);
        let w = validate_file(&path);
        let name = path.display().to_string();
        let short = name.rsplit("data/").next().unwrap_or(&name);
        println!(
            "{short}\n   oracle: {}\n   walker: {}",
            match &o { Ok(e) => format!("ok routable={}", e.routable()), Err(e) => format!("ERR {e}") },
            match &w { Ok(_) => "ok".to_string(), Err(e) => format!("ERR {e}") },
        );
        if let (Ok(e), Ok(m)) = (&o, &w) {
            let r = std::panic::catch_unwind(|| e.assert_matches(m, short));
            if r.is_err() { println!("   MISMATCH"); }
        }
    }
}
