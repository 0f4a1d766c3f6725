//! WADO-RS metadata (PS3.18 §10.4.1.1.2): the header of each instance in the DICOM JSON model.
//!
//! Each instance's file is read up to its Pixel Data (dicom-rs, `read_until`), never the pixels,
//! and its data set serialized with `dicom-json` (text decoded with the file's Specific
//! Character Set, so a GB18030 name comes out as UTF-8). Pixel Data is not inlined: frames
//! are retrieved separately (a later step of issue 17). The file meta group is not part of
//! the data set; the Transfer Syntax UID (0002,0010) is added, as viewers need it.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use serde_json::Value;

/// One instance's metadata, or why it could not be read.
pub fn instance(path: &Path) -> Result<Value, String> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let mut v = dicom_json::to_value(&*obj).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut v {
        map.insert(
            "00020010".into(),
            serde_json::json!({"vr": "UI", "Value": [ts]}),
        );
    }
    Ok(v)
}
