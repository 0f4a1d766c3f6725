//! 12-lead ECG waveform objects: written by yilian and read back by pydicom 3.0.2 (values,
//! labels, UTF-8 names, required attributes, the incomplete-session annotation), by DICOM's own
//! IOD checker `dciodvfy` (dicom3tools), and by our streaming walker; pydicom's real ECG read by
//! `read_waveforms`; the IOD's limits and damaged data refused with typed errors.
//!
//! pydicom, numpy and dciodvfy are required: a missing one fails the test with the install line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{walk_chunked, walk_random};
use yilian_dicom::waveform::{
    INCOMPLETE_ANNOTATION, TWELVE_LEAD_ECG_STORAGE, TWELVE_LEAD_MAX_CHANNELS,
    TWELVE_LEAD_MAX_GROUPS, TWELVE_LEAD_MAX_SAMPLES,
};
use yilian_dicom::{
    max_seconds_per_object, read_waveforms, read_waveforms_file, write_twelve_lead_ecg, Channel,
    EcgRecording, MultiplexGroup, Phi, WaveformError, IMPLEMENTATION_CLASS_UID,
};

const INSTALL: &str = "pip install pydicom==3.0.2 numpy";
const NAME: &str = "王^小东";
const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

// ---------------------------------------------------------------------------------------------
// Test data: a deterministic 12-lead signal.

/// `seconds` of `labels` at `frequency`: a sine per lead (its own frequency and amplitude), an
/// R-wave-like spike every 0.8 s, and the i16 extremes at fixed places.
fn group(labels: &[&str], frequency: f64, samples_per_channel: usize) -> MultiplexGroup {
    let channels: Vec<Channel> = labels
        .iter()
        .enumerate()
        .map(|(c, label)| {
            let mut ch = Channel::new(*label, [2.5, 1.25, 0.5, 1.0, 5.0, 0.25][c % 6]);
            ch.baseline_uv = [0.0, -100.0, 12.5][c % 3];
            ch.correction = if c == 5 { 0.98 } else { 1.0 };
            ch
        })
        .collect();
    let n = channels.len();
    let mut samples = Vec::with_capacity(samples_per_channel * n);
    for s in 0..samples_per_channel {
        let t = s as f64 / frequency;
        for c in 0..n {
            let amplitude = 400.0 + 150.0 * c as f64;
            let mut v = amplitude * (2.0 * std::f64::consts::PI * (1.1 + 0.1 * c as f64) * t).sin();
            if s % ((frequency * 0.8) as usize).max(1) == 3 {
                v += 9000.0 - 500.0 * c as f64; // spike
            }
            let mut v = v.round() as i16;
            match (s, c % 4) {
                (7, 0) => v = i16::MAX,
                (7, 1) => v = i16::MIN,
                (8, 2) => v = i16::MIN + 1,
                (9, 3) => v = -1,
                _ => {}
            }
            samples.push(v);
        }
    }
    MultiplexGroup {
        sampling_frequency: frequency,
        channels,
        samples,
        label: Some("RHYTHM".to_owned()),
    }
}

fn recording(groups: Vec<MultiplexGroup>, complete: bool) -> EcgRecording {
    EcgRecording {
        patient_name: Phi::new(NAME.to_owned()),
        patient_id: Phi::new("HN-0042".to_owned()),
        patient_birth_date: Some(Phi::new("19580214".to_owned())),
        patient_sex: Some("M".to_owned()),
        accession_number: Phi::new("ECG2026120501".to_owned()),
        study_uid: "2.25.111111111111111111111".to_owned(),
        series_uid: "2.25.222222222222222222222".to_owned(),
        sop_uid: "2.25.333333333333333333333".to_owned(),
        series_number: 7,
        instance_number: 2,
        acquisition_datetime: "20261205093015.250+0800".to_owned(),
        institution: Some("永顺县人民医院".to_owned()),
        station_name: Some("CART-03".to_owned()),
        manufacturer: Some("Yilian Test Cart".to_owned()),
        groups,
        complete,
    }
}

fn ten_seconds_at_500() -> EcgRecording {
    recording(vec![group(&LEADS, 500.0, 5000)], true)
}

fn write(rec: &EcgRecording) -> Vec<u8> {
    let mut out = Vec::new();
    write_twelve_lead_ecg(rec, &mut out).unwrap_or_else(|e| panic!("write: {e}"));
    out
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".dcm")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut file, bytes).expect("write temp file");
    file
}

// ---------------------------------------------------------------------------------------------
// pydicom through tests/py/waveform_check.py.

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/waveform_check.py")
}

fn python(args: &[&str]) -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(&python)
        .arg(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}); the oracle is pydicom: {INSTALL}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pydicom 3.0.2 and numpy are needed: {INSTALL}\n{python} said: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex from the script"))
        .collect();
    String::from_utf8(bytes).expect("UTF-8 from the script")
}

/// What pydicom read in one file.
#[derive(Debug, Default)]
struct Pydicom {
    warnings: Vec<String>,
    attrs: Vec<(String, String)>,
    missing: Vec<String>,
    /// (frequency, channels, samples, label)
    groups: Vec<(f64, usize, usize, Option<String>)>,
    /// [group][channel]
    labels: Vec<Vec<String>>,
    raw: Vec<Vec<Vec<i64>>>,
    phys: Vec<Vec<Vec<f64>>>,
    /// (text, referenced channels, sample positions, temporal range type)
    annotations: Vec<(String, String, String, String)>,
}

impl Pydicom {
    fn attr(&self, keyword: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }
}

fn pydicom_dump(path: &Path) -> Pydicom {
    let text = python(&["dump", &path.display().to_string()]);
    let mut d = Pydicom::default();
    let mut ended = false;
    for line in text.lines() {
        let mut f = line.split(' ');
        let kind = f.next().unwrap_or_default();
        let rest: Vec<&str> = f.collect();
        let idx = |i: usize| rest[i].parse::<usize>().expect("index");
        match kind {
            "warning" => d.warnings.push(unhex(rest[0])),
            "attr" => d.attrs.push((rest[0].to_owned(), unhex(rest[1]))),
            "missing" => d.missing.push(rest.join(" ")),
            "group" => {
                assert_eq!(idx(0), d.groups.len(), "groups in order");
                d.groups.push((
                    rest[1].parse().expect("frequency"),
                    idx(2),
                    idx(3),
                    (rest[4] != "-").then(|| unhex(rest[4])),
                ));
                d.labels.push(Vec::new());
                d.raw.push(Vec::new());
                d.phys.push(Vec::new());
            }
            "label" => d.labels[idx(0)].push(unhex(rest[2])),
            "raw" => d.raw[idx(0)].push(
                rest[2..]
                    .iter()
                    .map(|v| v.parse().expect("raw value"))
                    .collect(),
            ),
            "phys" => d.phys[idx(0)].push(
                rest[2..]
                    .iter()
                    .map(|v| v.parse().expect("physical value"))
                    .collect(),
            ),
            "annotation" => d.annotations.push((
                unhex(rest[0]),
                rest[1].to_owned(),
                rest[2].to_owned(),
                unhex(rest[3]),
            )),
            "end" => ended = true,
            other => panic!("unexpected line from the script: {other}"),
        }
    }
    assert!(ended, "the script stopped early:\n{text}");
    d
}

/// pydicom's arrays equal `groups` exactly: raw samples, and sample × sensitivity × correction
/// + baseline for the physical values; labels, frequencies and counts too.
fn assert_pydicom_agrees(py: &Pydicom, groups: &[MultiplexGroup], what: &str) {
    assert_eq!(py.groups.len(), groups.len(), "{what}: number of groups");
    for (g, group) in groups.iter().enumerate() {
        let (frequency, channels, samples, label) = &py.groups[g];
        assert_eq!(
            *frequency, group.sampling_frequency,
            "{what}: group {g} frequency"
        );
        assert_eq!(
            *channels,
            group.channels.len(),
            "{what}: group {g} channels"
        );
        assert_eq!(
            *samples,
            group.samples_per_channel(),
            "{what}: group {g} samples"
        );
        assert_eq!(label, &group.label, "{what}: group {g} label");
        for (c, ch) in group.channels.iter().enumerate() {
            assert_eq!(
                py.labels[g][c], ch.label,
                "{what}: group {g} channel {c} label"
            );
            let ours = group.channel_samples(c).expect("channel");
            let raw: Vec<i64> = ours.iter().map(|&s| i64::from(s)).collect();
            assert_eq!(
                py.raw[g][c], raw,
                "{what}: group {g} channel {c} raw samples"
            );
            let phys: Vec<f64> = ours.iter().map(|&s| ch.physical(s)).collect();
            assert_eq!(
                py.phys[g][c], phys,
                "{what}: group {g} channel {c} physical values"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing, checked by pydicom, dciodvfy and the walker.

#[test]
fn written_12_lead_reads_back_in_pydicom() {
    let rec = ten_seconds_at_500();
    let bytes = write(&rec);
    let file = write_temp(&bytes);
    let py = pydicom_dump(file.path());
    assert_eq!(py.warnings, Vec::<String>::new(), "pydicom warned");
    assert_eq!(
        py.missing,
        Vec::<String>::new(),
        "required attributes missing"
    );
    assert_pydicom_agrees(&py, &rec.groups, "written 12-lead");
    for (keyword, expected) in [
        ("SOPClassUID", TWELVE_LEAD_ECG_STORAGE),
        ("Modality", "ECG"),
        ("SpecificCharacterSet", "ISO_IR 192"),
        ("PatientName", NAME),
        ("PatientID", "HN-0042"),
        ("AccessionNumber", "ECG2026120501"),
        ("PatientBirthDate", "19580214"),
        ("StudyInstanceUID", rec.study_uid.as_str()),
        ("SeriesInstanceUID", rec.series_uid.as_str()),
        ("SOPInstanceUID", rec.sop_uid.as_str()),
        ("InstanceNumber", "2"),
        ("SeriesNumber", "7"),
        ("AcquisitionDateTime", "20261205093015.250+0800"),
        ("ContentDate", "20261205"),
        ("ContentTime", "093015.250"),
        ("StudyDate", "20261205"),
        ("InstitutionName", "永顺县人民医院"),
        ("TransferSyntaxUID", "1.2.840.10008.1.2.1"),
        ("ImplementationClassUID", IMPLEMENTATION_CLASS_UID),
    ] {
        assert_eq!(py.attr(keyword), Some(expected), "{keyword}");
    }
    assert!(
        py.annotations.is_empty(),
        "a complete recording has no annotation"
    );
    // The extremes went through unchanged.
    assert_eq!(py.raw[0][0][7], i64::from(i16::MAX));
    assert_eq!(py.raw[0][1][7], i64::from(i16::MIN));
}

#[test]
fn two_groups_13_channels_at_two_rates() {
    let twelve = group(&LEADS, 500.0, 5000);
    let mut rhythm = group(&["II"], 1000.0, 10_000);
    rhythm.label = None;
    let rec = recording(vec![twelve, rhythm], true);
    let bytes = write(&rec);
    let file = write_temp(&bytes);
    let py = pydicom_dump(file.path());
    assert_eq!(py.warnings, Vec::<String>::new());
    assert_eq!(py.missing, Vec::<String>::new());
    assert_pydicom_agrees(&py, &rec.groups, "two groups");
    // And our own reader gives back exactly what was written.
    assert_eq!(read_waveforms(&bytes).expect("read"), rec.groups);
}

#[test]
fn written_12_lead_passes_dciodvfy() {
    for rec in [
        ten_seconds_at_500(),
        recording(vec![group(&LEADS, 1000.0, TWELVE_LEAD_MAX_SAMPLES)], false),
    ] {
        let file = write_temp(&write(&rec));
        let out = Command::new("dciodvfy")
            .arg(file.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run dciodvfy ({e}): apt-get install dicom3tools (the IOD checker)")
            });
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            report.contains("TwelveLeadECG"),
            "dciodvfy did not check it as a 12-lead ECG:\n{report}"
        );
        let errors: Vec<&str> = report.lines().filter(|l| l.contains("Error")).collect();
        assert_eq!(errors, Vec::<&str>::new(), "dciodvfy:\n{report}");
    }
}

#[test]
fn walker_accepts_the_written_file_in_any_chunking() {
    let rec = ten_seconds_at_500();
    let bytes = write(&rec);
    let mut results = vec![walk_chunked(&bytes, 1), walk_chunked(&bytes, 4096)];
    results.extend((0..8).map(|seed| walk_random(&bytes, seed, 3000)));
    for r in results {
        let md = r.unwrap_or_else(|e| panic!("walker refused our ECG: {e}"));
        assert_eq!(md.sop_class_uid.as_deref(), Some(TWELVE_LEAD_ECG_STORAGE));
        assert_eq!(md.sop_instance_uid, rec.sop_uid);
        assert_eq!(md.study_instance_uid, rec.study_uid);
        assert_eq!(
            md.series_instance_uid.as_deref(),
            Some(rec.series_uid.as_str())
        );
        assert_eq!(md.modality.as_deref(), Some("ECG"));
        assert_eq!(md.transfer_syntax, "1.2.840.10008.1.2.1");
        assert_eq!(md.specific_character_set.as_deref(), Some("ISO_IR 192"));
        assert_eq!(md.patient.name.expose(), NAME);
        assert_eq!(md.patient.id.expose(), "HN-0042");
        assert_eq!(md.pixel_data, None);
    }
}

#[test]
fn incomplete_recording_says_so_to_pydicom() {
    let mut twelve = group(&LEADS, 500.0, 1234);
    twelve.label = None;
    let rhythm = group(&["II"], 1000.0, 2468);
    let rec = recording(vec![twelve, rhythm], false);
    let file = write_temp(&write(&rec));
    let py = pydicom_dump(file.path());
    assert_eq!(py.warnings, Vec::<String>::new());
    assert_eq!(py.missing, Vec::<String>::new());
    assert_pydicom_agrees(&py, &rec.groups, "incomplete");
    let all_channels_of = |g: usize, n: usize| {
        (1..=n)
            .map(|c| format!("{g},{c}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        py.annotations,
        vec![
            (
                INCOMPLETE_ANNOTATION.to_owned(),
                all_channels_of(1, 12),
                "1234".to_owned(),
                "POINT".to_owned()
            ),
            (
                INCOMPLETE_ANNOTATION.to_owned(),
                all_channels_of(2, 1),
                "2468".to_owned(),
                "POINT".to_owned()
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Reading real objects.

fn bundled_waveform_files() -> Vec<PathBuf> {
    python(&["list"]).lines().map(PathBuf::from).collect()
}

#[test]
fn pydicom_waveform_ecg_reads_like_pydicom() {
    let files = bundled_waveform_files();
    assert!(
        files
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == "waveform_ecg.dcm")),
        "pydicom 3.0.2 ships waveform_ecg.dcm ({INSTALL}); found {files:?}"
    );
    for path in &files {
        let name = path.display().to_string();
        let py = pydicom_dump(path);
        let from_path = read_waveforms_file(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = std::fs::read(path).expect("read sample");
        let from_bytes = read_waveforms(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(from_path, from_bytes, "{name}: path and bytes agree");
        assert_pydicom_agrees(&py, &from_path, &name);
    }
    // The real one in detail: 2 groups (rhythm 10 s, median beat 1.2 s) at 1 kHz, 12 leads.
    let ecg = read_waveforms_file(
        files
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == "waveform_ecg.dcm"))
            .expect("listed above"),
    )
    .expect("read waveform_ecg.dcm");
    let shape: Vec<_> = ecg
        .iter()
        .map(|g| {
            (
                g.label.clone(),
                g.sampling_frequency,
                g.channels.len(),
                g.samples_per_channel(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (Some("RHYTHM".to_owned()), 1000.0, 12, 10_000),
            (Some("MEDIAN BEAT".to_owned()), 1000.0, 12, 1200),
        ]
    );
    assert_eq!(ecg[0].channels[0].label, "Lead I (Einthoven)");
    assert_eq!(ecg[0].channels[0].sensitivity_uv, 1.25);
    assert_eq!(ecg[0].channels[0].other_unit, None);
}

/// The offset of the value of the first Number of Waveform Samples (003A,0010) UL element.
fn samples_value_offset(bytes: &[u8]) -> usize {
    let header = [0x3A, 0x00, 0x10, 0x00, b'U', b'L', 4, 0];
    bytes
        .windows(header.len())
        .position(|w| w == header)
        .expect("Number of Waveform Samples in the written file")
        + header.len()
}

fn set_samples(bytes: &mut [u8], samples: u32) {
    let at = samples_value_offset(bytes);
    bytes[at..at + 4].copy_from_slice(&samples.to_le_bytes());
}

#[test]
fn truncated_waveform_data_is_refused() {
    let rec = recording(vec![group(&LEADS, 500.0, 1000)], true);
    let mut bytes = write(&rec);
    // More samples declared than Waveform Data holds.
    set_samples(&mut bytes, 1001);
    match read_waveforms(&bytes) {
        Err(WaveformError::Truncated {
            group: 1,
            expected,
            found,
        }) => assert_eq!((expected, found), (1001 * 12 * 2, 1000 * 12 * 2)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    // A file cut anywhere: refused, never a panic, never a silent success.
    let whole = write(&rec);
    for cut in (0..whole.len() - 1).step_by(997).chain([whole.len() - 2]) {
        assert!(read_waveforms(&whole[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn padding_after_the_samples_is_tolerated() {
    let rec = recording(vec![group(&LEADS, 500.0, 1000)], true);
    let mut bytes = write(&rec);
    // Declare one sample fewer: the last 24 bytes of Waveform Data become padding.
    set_samples(&mut bytes, 999);
    let groups = read_waveforms(&bytes).expect("padding is not an error");
    assert_eq!(groups[0].samples, rec.groups[0].samples[..999 * 12]);
    assert_eq!(groups[0].samples_per_channel(), 999);
}

#[test]
fn non_waveform_objects_are_refused() {
    let ct = common::pydicom::sample("CT_small.dcm");
    assert!(matches!(
        read_waveforms_file(&ct),
        Err(WaveformError::NoWaveform)
    ));
    assert!(matches!(
        read_waveforms(b"not DICOM at all"),
        Err(WaveformError::Dicom { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The IOD's limits (PS3.3 A.34.3.4) and bad values.

fn refused(rec: &EcgRecording) -> WaveformError {
    let mut out = Vec::new();
    let err = write_twelve_lead_ecg(rec, &mut out).expect_err("must be refused");
    assert!(out.is_empty(), "nothing written on refusal");
    let message = err.to_string();
    for phi in [NAME, "HN-0042", "ECG2026120501", "19580214"] {
        assert!(!message.contains(phi), "patient data in {message:?}");
    }
    err
}

#[test]
fn longest_allowed_group_is_written_and_one_more_sample_is_refused() {
    assert_eq!(max_seconds_per_object(500.0), 32.768);
    let max = recording(vec![group(&LEADS, 500.0, TWELVE_LEAD_MAX_SAMPLES)], true);
    let groups = read_waveforms(&write(&max)).expect("16,384 samples are allowed");
    assert_eq!(groups[0].samples_per_channel(), TWELVE_LEAD_MAX_SAMPLES);

    let over = recording(
        vec![group(&LEADS, 500.0, TWELVE_LEAD_MAX_SAMPLES + 1)],
        true,
    );
    match refused(&over) {
        WaveformError::SampleCount {
            group: 1,
            samples,
            limit,
            max_seconds,
            ..
        } => assert_eq!(
            (samples, limit, max_seconds),
            (TWELVE_LEAD_MAX_SAMPLES + 1, 16_384, 32.768)
        ),
        other => panic!("expected SampleCount, got {other:?}"),
    }
}

#[test]
fn too_many_channels_or_groups_are_refused() {
    let fourteen: Vec<&str> = LEADS.iter().chain(&["V7", "V8"]).copied().collect();
    assert!(matches!(
        refused(&recording(vec![group(&fourteen, 500.0, 100)], true)),
        WaveformError::ChannelCount {
            group: 1,
            channels: 14,
            limit: TWELVE_LEAD_MAX_CHANNELS
        }
    ));
    // 12 + 2 channels in two groups: 14 in all.
    assert!(matches!(
        refused(&recording(
            vec![group(&LEADS, 500.0, 100), group(&["II", "V1"], 500.0, 100)],
            true
        )),
        WaveformError::ChannelCount {
            group: 2,
            channels: 14,
            ..
        }
    ));
    let six = (0..6).map(|_| group(&["II"], 500.0, 100)).collect();
    assert!(matches!(
        refused(&recording(six, true)),
        WaveformError::GroupCount {
            groups: 6,
            limit: TWELVE_LEAD_MAX_GROUPS
        }
    ));
    assert!(matches!(
        refused(&recording(Vec::new(), true)),
        WaveformError::GroupCount { groups: 0, .. }
    ));
}

#[test]
fn bad_frequency_lead_calibration_and_values_are_refused() {
    for frequency in [199.0, 1000.5, f64::NAN] {
        assert!(matches!(
            refused(&recording(vec![group(&LEADS, frequency, 100)], true)),
            WaveformError::SamplingFrequency { group: 1, .. }
        ));
    }
    assert!(matches!(
        refused(&recording(vec![group(&["II", "Pleth"], 500.0, 100)], true)),
        WaveformError::UnknownLead {
            group: 1,
            channel: 2,
            ..
        }
    ));
    let mut ragged = group(&LEADS, 500.0, 100);
    ragged.samples.pop();
    assert!(matches!(
        refused(&recording(vec![ragged], true)),
        WaveformError::RaggedSamples { group: 1, .. }
    ));
    let mut uncalibrated = group(&LEADS, 500.0, 100);
    uncalibrated.channels[3].sensitivity_uv = 0.0;
    assert!(matches!(
        refused(&recording(vec![uncalibrated], true)),
        WaveformError::Calibration {
            group: 1,
            channel: 4,
            ..
        }
    ));
    let mut pressure = group(&LEADS, 500.0, 100);
    pressure.channels[0].other_unit = Some("mm[Hg]".to_owned());
    assert!(matches!(
        refused(&recording(vec![pressure], true)),
        WaveformError::Calibration {
            group: 1,
            channel: 1,
            ..
        }
    ));

    let base = || recording(vec![group(&LEADS, 500.0, 100)], true);
    let mut long_accession = base();
    long_accession.accession_number = Phi::new("ECG2026120501-0001".to_owned());
    let mut bad_uid = base();
    bad_uid.sop_uid = "1.2.03".to_owned();
    let mut bad_time = base();
    bad_time.acquisition_datetime = "2026-12-05".to_owned();
    let mut bad_name = base();
    bad_name.patient_name = Phi::new("王\\小东".to_owned());
    for (rec, attribute) in [
        (long_accession, "Accession Number (0008,0050)"),
        (bad_uid, "SOP Instance UID (0008,0018)"),
        (bad_time, "Acquisition DateTime (0008,002A)"),
        (bad_name, "Patient's Name (0010,0010)"),
    ] {
        match refused(&rec) {
            WaveformError::InvalidValue { attribute: a, .. } => assert_eq!(a, attribute),
            other => panic!("expected InvalidValue for {attribute}, got {other:?}"),
        }
    }
}

#[test]
fn debug_of_a_recording_hides_patient_data() {
    let rec = ten_seconds_at_500();
    let mut rec = rec;
    rec.groups[0].samples.truncate(24);
    let debug = format!("{rec:?}");
    for phi in [NAME, "HN-0042", "ECG2026120501", "19580214"] {
        assert!(!debug.contains(phi), "{phi} in Debug");
    }
}
