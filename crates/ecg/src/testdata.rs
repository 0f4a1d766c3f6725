//! The real 12-lead ECG that pydicom 3.0.2 ships (`waveform_ecg.dcm`: 12 channels, 1000 Hz,
//! 10 s, 1.25 µV per unit), read with dicom-object. Test and bench support only: this file uses
//! nothing of the crate, so `benches/ecg_codec.rs` includes it with `#[path]`.
//!
//! The file is found through pydicom (`get_testdata_file`), or at `$YILIAN_ECG_DCM`. When it is
//! missing, [`real_ecg`] panics with how to install it: a test on it must fail, never pass
//! silently.
#![allow(dead_code)]

use dicom_core::value::DicomValueType;
use dicom_core::{PrimitiveValue, Tag};
use dicom_object::InMemDicomObject;

/// Our lead order (the crate's `Lead::ALL` labels), to map the file's channels.
const LABELS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

const WAVEFORM_SEQUENCE: Tag = Tag(0x5400, 0x0100);
const CHANNELS: Tag = Tag(0x003A, 0x0005);
const SAMPLES: Tag = Tag(0x003A, 0x0010);
const SAMPLING_FREQUENCY: Tag = Tag(0x003A, 0x001A);
const CHANNEL_DEFINITIONS: Tag = Tag(0x003A, 0x0200);
const CHANNEL_SOURCE: Tag = Tag(0x003A, 0x0208);
const CODE_MEANING: Tag = Tag(0x0008, 0x0104);
const CHANNEL_SENSITIVITY: Tag = Tag(0x003A, 0x0210);
const CHANNEL_BASELINE: Tag = Tag(0x003A, 0x0213);
const WAVEFORM_BITS_ALLOCATED: Tag = Tag(0x5400, 0x1004);
const WAVEFORM_DATA: Tag = Tag(0x5400, 0x1010);

/// The first multiplex group of the record, as 12 leads in our order.
pub struct RealEcg {
    /// Samples per second per lead.
    pub rate_hz: u32,
    /// Samples per lead.
    pub per_lead: usize,
    /// Lead-major samples, 12 × `per_lead`, in our lead order.
    pub lead_major: Vec<i16>,
    /// µV per unit, per lead (our order).
    pub sensitivity_uv: [f64; 12],
    /// µV at sample 0, per lead (our order).
    pub baseline_uv: [f64; 12],
    /// The file's channel labels, in the file's order.
    pub file_labels: Vec<String>,
}

/// Where `waveform_ecg.dcm` is: `$YILIAN_ECG_DCM`, else pydicom's copy.
pub fn real_ecg_path() -> Result<std::path::PathBuf, String> {
    if let Ok(p) = std::env::var("YILIAN_ECG_DCM") {
        return Ok(p.into());
    }
    let how = "the real ECG record comes from pydicom 3.0.2: install it with \
               `pip install pydicom==3.0.2` (or set YILIAN_ECG_DCM to a copy of waveform_ecg.dcm)";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "from pydicom.data import get_testdata_file; \
             print(get_testdata_file('waveform_ecg.dcm') or '')",
        ])
        .output()
        .map_err(|e| format!("cannot run python3 ({e}); {how}"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || path.is_empty() {
        return Err(format!(
            "pydicom did not give waveform_ecg.dcm ({}); {how}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(path.into())
}

/// The record, or a panic that says how to get it.
pub fn real_ecg() -> RealEcg {
    let path = real_ecg_path().unwrap_or_else(|e| panic!("{e}"));
    read_real_ecg(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A channel label reduced to ours: `Lead I (Einthoven)` → `I`, `Lead aVR` → `aVR`.
fn our_index(label: &str) -> Option<usize> {
    let l = label.split('(').next().unwrap_or(label).trim();
    let l = l
        .strip_prefix("Lead ")
        .or_else(|| l.strip_prefix("lead "))
        .unwrap_or(l)
        .trim();
    LABELS.iter().position(|x| x.eq_ignore_ascii_case(l))
}

fn int(item: &InMemDicomObject, tag: Tag) -> Result<i64, String> {
    item.element(tag)
        .map_err(|e| format!("{tag}: {e}"))?
        .to_int::<i64>()
        .map_err(|e| format!("{tag}: {e}"))
}

fn float(item: &InMemDicomObject, tag: Tag) -> Result<f64, String> {
    item.element(tag)
        .map_err(|e| format!("{tag}: {e}"))?
        .to_float64()
        .map_err(|e| format!("{tag}: {e}"))
}

/// Reads the first multiplex group. Channels are mapped to our leads by label when the group
/// has 12 channels that name the 12 leads; otherwise the first 12 channels are taken in file
/// order (fewer than 12 is an error).
pub fn read_real_ecg(path: &std::path::Path) -> Result<RealEcg, String> {
    let obj = dicom_object::open_file(path).map_err(|e| e.to_string())?;
    let seq = obj
        .element(WAVEFORM_SEQUENCE)
        .map_err(|e| e.to_string())?
        .items()
        .ok_or("Waveform Sequence is not a sequence")?;
    let group = seq.first().ok_or("Waveform Sequence is empty")?;
    let channels = usize::try_from(int(group, CHANNELS)?).map_err(|e| e.to_string())?;
    let samples = usize::try_from(int(group, SAMPLES)?).map_err(|e| e.to_string())?;
    let rate_hz = float(group, SAMPLING_FREQUENCY)? as u32;
    if int(group, WAVEFORM_BITS_ALLOCATED)? != 16 {
        return Err("only 16-bit waveforms".into());
    }
    if channels < 12 {
        return Err(format!("{channels} channels, fewer than 12"));
    }
    let defs = group
        .element(CHANNEL_DEFINITIONS)
        .map_err(|e| e.to_string())?
        .items()
        .ok_or("Channel Definition Sequence is not a sequence")?;
    let mut file_labels = Vec::new();
    let mut sens = Vec::new();
    let mut base = Vec::new();
    for d in defs {
        let label = d
            .element(CHANNEL_SOURCE)
            .ok()
            .and_then(|e| e.items())
            .and_then(|items| items.first())
            .and_then(|code| code.element(CODE_MEANING).ok())
            .and_then(|e| e.to_str().ok())
            .map(|s| s.to_string())
            .unwrap_or_default();
        file_labels.push(label);
        sens.push(float(d, CHANNEL_SENSITIVITY)?);
        base.push(float(d, CHANNEL_BASELINE).unwrap_or(0.0));
    }
    let data: Vec<i16> = match obj_value(group)? {
        PrimitiveValue::U16(v) => v.iter().map(|&x| x as i16).collect(),
        PrimitiveValue::I16(v) => v.to_vec(),
        PrimitiveValue::U8(v) => v
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
        other => return Err(format!("Waveform Data as {:?}", other.value_type())),
    };
    if data.len() < channels * samples {
        return Err(format!(
            "Waveform Data has {} values, {channels} × {samples} expected",
            data.len()
        ));
    }
    // File channel feeding each of our leads.
    let by_label: Vec<Option<usize>> = file_labels.iter().map(|l| our_index(l)).collect();
    let mut source = [0usize; 12];
    let mapped = channels == 12 && {
        let mut seen = [false; 12];
        for (ch, ours) in by_label.iter().enumerate() {
            if let Some(o) = ours {
                seen[*o] = true;
                source[*o] = ch;
            }
        }
        seen.iter().all(|&s| s)
    };
    if !mapped {
        for (o, s) in source.iter_mut().enumerate() {
            *s = o;
        }
    }
    let mut lead_major = vec![0i16; 12 * samples];
    let mut sensitivity_uv = [0.0; 12];
    let mut baseline_uv = [0.0; 12];
    for (o, &ch) in source.iter().enumerate() {
        for t in 0..samples {
            lead_major[o * samples + t] = data[t * channels + ch];
        }
        sensitivity_uv[o] = sens.get(ch).copied().unwrap_or(1.0);
        baseline_uv[o] = base.get(ch).copied().unwrap_or(0.0);
    }
    Ok(RealEcg {
        rate_hz,
        per_lead: samples,
        lead_major,
        sensitivity_uv,
        baseline_uv,
        file_labels,
    })
}

fn obj_value(group: &InMemDicomObject) -> Result<&PrimitiveValue, String> {
    group
        .element(WAVEFORM_DATA)
        .map_err(|e| e.to_string())?
        .value()
        .primitive()
        .ok_or_else(|| "Waveform Data is not primitive".to_string())
}
