//! WADO-RS metadata (PS3.18 §10.4.1.1.2): the header of each instance in the DICOM JSON model,
//! with bulk data by reference.
//!
//! Each instance's file is read up to its Pixel Data (dicom-rs, `read_until`), never the pixels,
//! and its data set serialized with `dicom-json` (text decoded with the file's Specific
//! Character Set, so a GB18030 name comes out as UTF-8). The file meta group is not part of
//! the data set; the Transfer Syntax UID (0002,0010) is added, as viewers need it.
//!
//! **Bulk data** (PS3.18 §F.2.7): a top-level binary value longer than [`INLINE_BINARY_MAX`]
//! is given as a `BulkDataURI` (`…/instances/{uid}/bulk/{tag}`, answered by [`bulk_value`]),
//! and so is Pixel Data (its bulk data are the instance's frames). Small binary values stay
//! inline (`InlineBinary`), as the standard allows.

use std::path::Path;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use serde_json::{json, Value};

/// Binary values up to this many bytes stay inline; longer ones are given by URI.
pub const INLINE_BINARY_MAX: usize = 1024;

/// One instance's metadata, or why it could not be read. `instance_url`: the instance's
/// WADO-RS URL, under which its bulk data are referenced (`None`: binary values inline).
pub fn instance(path: &Path, instance_url: Option<&str>) -> Result<Value, String> {
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
    let Value::Object(map) = &mut v else {
        return Ok(v);
    };
    map.insert("00020010".into(), json!({"vr": "UI", "Value": [ts]}));
    let Some(url) = instance_url else {
        return Ok(v);
    };
    for (tag, attr) in map.iter_mut() {
        let long = attr
            .get("InlineBinary")
            .and_then(Value::as_str)
            // Base64: 4 characters per 3 bytes.
            .is_some_and(|b| b.len() / 4 * 3 > INLINE_BINARY_MAX);
        if long {
            let vr = attr.get("vr").cloned().unwrap_or(json!("UN"));
            *attr = json!({"vr": vr, "BulkDataURI": format!("{url}/bulk/{tag}")});
        }
    }
    // Pixel Data, which the read stopped at: referenced if the file has it.
    let pixels = yilian_dicom::inspect_file(path)
        .ok()
        .and_then(|m| m.pixel_data);
    if let Some(p) = pixels {
        let wide = map
            .get("00280100")
            .and_then(|a| a["Value"][0].as_u64())
            .is_some_and(|bits| bits > 8);
        let vr = if p.length.is_some() && wide {
            "OW"
        } else {
            "OB"
        };
        map.insert(
            "7FE00010".into(),
            json!({"vr": vr, "BulkDataURI": format!("{url}/bulk/7FE00010")}),
        );
    }
    Ok(v)
}

/// Why a bulk data value is not given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BulkError {
    #[error("{0:?} is not a tag (eight hexadecimal digits, e.g. 60003000)")]
    BadTag(String),
    #[error("the instance has no binary value at {0}")]
    NoSuchValue(String),
    #[error("the stored file cannot be read: {0}")]
    Read(String),
}

/// The tag a bulk data path segment names (`60003000`).
pub fn bulk_tag(text: &str) -> Result<Tag, BulkError> {
    let bad = || BulkError::BadTag(text.to_string());
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let n = u32::from_str_radix(text, 16).map_err(|_| bad())?;
    Ok(Tag((n >> 16) as u16, n as u16))
}

/// The bytes of the top-level binary value `tag` (not Pixel Data: its bulk data are the
/// frames) of the instance at `path`, little endian as the DICOM JSON model has them.
pub fn bulk_value(path: &Path, tag: Tag) -> Result<Vec<u8>, BulkError> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| BulkError::Read(e.to_string()))?;
    let name = format!("{:04X}{:04X}", tag.0, tag.1);
    let element = obj
        .element_opt(tag)
        .ok()
        .flatten()
        .ok_or_else(|| BulkError::NoSuchValue(name.clone()))?;
    use dicom_core::VR::*;
    if !matches!(element.vr(), OB | OD | OF | OL | OV | OW | UN) {
        return Err(BulkError::NoSuchValue(name));
    }
    element
        .to_bytes()
        .map(|b| b.into_owned())
        .map_err(|_| BulkError::NoSuchValue(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_tags_are_eight_hex_digits() {
        assert_eq!(bulk_tag("60003000"), Ok(Tag(0x6000, 0x3000)));
        assert_eq!(bulk_tag("7fe00010"), Ok(Tag(0x7FE0, 0x0010)));
        for bad in ["6000300", "6000300G", "600030000", "", "+0003000"] {
            assert!(bulk_tag(bad).is_err(), "{bad}");
        }
    }
}
