//! DICOM waveforms: 12-lead ECG objects written from a live session, and the samples of any
//! waveform object read back for a console to draw.
//!
//! ## The model
//! A waveform object (PS3.3 C.10.9) holds one or more **multiplex groups**: channels sampled
//! together at one frequency, their samples interleaved (sample 0 of every channel, then
//! sample 1, …). [`MultiplexGroup`] is exactly that, with 16-bit signed samples, and each
//! [`Channel`] says how a sample becomes a voltage (PS3.3 C.10.9.1.4.3, and pydicom's
//! `waveform_array`):
//!
//! ```text
//! µV = sample × sensitivity_uv × correction + baseline_uv
//! ```
//!
//! * [`write_twelve_lead_ecg`] turns an [`EcgRecording`] into a Part 10 file of the 12-Lead ECG
//!   Waveform Storage SOP Class (Explicit VR Little Endian, UTF-8 text), with every module the
//!   IOD requires (PS3.3 A.34.3.3): Patient, General Study, General Series (Modality `ECG`),
//!   General Equipment, Waveform Identification, Waveform, Acquisition Context (empty, type 2),
//!   SOP Common, and Waveform Annotation when a session ended abnormally. Each channel's source
//!   is coded from CID 3001 "ECG Leads" (MDC codes, e.g. `2:1` Lead I, `2:62` aVR), its
//!   sensitivity in UCUM `uV`. The IOD's limits ([`TWELVE_LEAD_MAX_GROUPS`],
//!   [`TWELVE_LEAD_MAX_CHANNELS`], [`TWELVE_LEAD_MAX_SAMPLES`], the frequency range) are checked
//!   first and refused with a [`WaveformError`]; [`max_seconds_per_object`] tells a recorder
//!   when to start the next object of the same series.
//! * [`read_waveforms`] / [`read_waveforms_file`] decode every multiplex group of any waveform
//!   object (12-lead, General ECG, Holter, hemodynamic, …): 8-, 16-, 32- and 64-bit samples,
//!   signed or unsigned, converted to `i16` when every value fits (refused otherwise, never
//!   clipped). Voltages are given in µV whatever the file's unit (`mV`, `V`); a channel that is
//!   not a voltage keeps the file's numbers and names its unit in [`Channel::other_unit`].
//!
//! An object stops short of a session that ended abnormally ([`EcgRecording::complete`] is
//! false): it then carries a Waveform Annotation (PS3.3 C.10.10) at the last sample of every
//! group, with the text [`INCOMPLETE_ANNOTATION`] — any viewer that shows annotations shows it.
//!
//! Patient name, ID, birth date and accession number are [`Phi`]; no error message carries
//! them or any other text value of the recording (attribute names and counts only).

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use crate::phi::Phi;
use crate::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

/// 12-Lead ECG Waveform Storage SOP Class UID.
pub const TWELVE_LEAD_ECG_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";

/// Most multiplex groups (Waveform Sequence items) in one 12-lead ECG object: 5
/// (PS3.3 A.34.3.4.3).
pub const TWELVE_LEAD_MAX_GROUPS: usize = 5;

/// Most channels in one multiplex group of a 12-lead ECG object, and in all its groups
/// together: 13 (PS3.3 A.34.3.4.4).
pub const TWELVE_LEAD_MAX_CHANNELS: usize = 13;

/// Most samples per channel in one multiplex group of a 12-lead ECG object: 16,384
/// (PS3.3 A.34.3.4.5) — 32.8 s at 500 Hz, 16.4 s at 1 kHz.
pub const TWELVE_LEAD_MAX_SAMPLES: usize = 16_384;

/// Lowest sampling frequency of a 12-lead ECG object, in Hz (PS3.3 A.34.3.4.6).
pub const TWELVE_LEAD_MIN_FREQUENCY: f64 = 200.0;

/// Highest sampling frequency of a 12-lead ECG object, in Hz (PS3.3 A.34.3.4.6).
pub const TWELVE_LEAD_MAX_FREQUENCY: f64 = 1000.0;

/// The Specific Character Set of every object written here: UTF-8.
pub const SPECIFIC_CHARACTER_SET: &str = "ISO_IR 192";

/// The Unformatted Text Value of the Waveform Annotation that marks a recording whose session
/// ended abnormally.
pub const INCOMPLETE_ANNOTATION: &str =
    "INCOMPLETE RECORDING: the live ECG session ended abnormally; the signal stops here.";

/// How many seconds one 12-lead ECG object can hold at `sampling_frequency` (Hz):
/// [`TWELVE_LEAD_MAX_SAMPLES`] / frequency (PS3.3 A.34.3.4.5 and A.34.3.4.6). A recorder splits
/// a longer session into several objects of one series. 0 for a frequency outside
/// [`TWELVE_LEAD_MIN_FREQUENCY`]..=[`TWELVE_LEAD_MAX_FREQUENCY`], which no 12-lead object may have.
pub fn max_seconds_per_object(sampling_frequency: f64) -> f64 {
    if (TWELVE_LEAD_MIN_FREQUENCY..=TWELVE_LEAD_MAX_FREQUENCY).contains(&sampling_frequency) {
        TWELVE_LEAD_MAX_SAMPLES as f64 / sampling_frequency
    } else {
        0.0
    }
}

/// Why a waveform could not be written or read. Messages name attributes, groups (1-based, as
/// in the Waveform Sequence) and channels (1-based), never a value of the recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaveformError {
    /// A 12-lead ECG object has no multiplex group, or more than the IOD allows.
    #[error(
        "a 12-lead ECG object holds 1 to {limit} multiplex groups, not {groups} (PS3.3 A.34.3.4.3)"
    )]
    GroupCount {
        /// Groups given.
        groups: usize,
        /// [`TWELVE_LEAD_MAX_GROUPS`].
        limit: usize,
    },
    /// A group has no channel, or more channels (in it or in all groups) than the IOD allows.
    #[error("multiplex group {group}: {channels} channels; a 12-lead ECG object holds 1 to {limit} per group and {limit} in all (PS3.3 A.34.3.4.4)")]
    ChannelCount {
        /// The group (1-based).
        group: usize,
        /// Channels in this group, or in all groups up to this one.
        channels: usize,
        /// [`TWELVE_LEAD_MAX_CHANNELS`].
        limit: usize,
    },
    /// A group has no sample, or more per channel than the IOD allows: split the session.
    #[error("multiplex group {group}: {samples} samples per channel; a 12-lead ECG object holds 1 to {limit} ({max_seconds:.3} s at {frequency} Hz) (PS3.3 A.34.3.4.5): split the recording into several objects")]
    SampleCount {
        /// The group (1-based).
        group: usize,
        /// Samples per channel given.
        samples: usize,
        /// [`TWELVE_LEAD_MAX_SAMPLES`].
        limit: usize,
        /// The group's sampling frequency.
        frequency: f64,
        /// [`max_seconds_per_object`] at that frequency.
        max_seconds: f64,
    },
    /// The sample buffer is not a whole number of frames (one sample of every channel).
    #[error(
        "multiplex group {group}: {samples} samples is not a multiple of its {channels} channels"
    )]
    RaggedSamples {
        /// The group (1-based).
        group: usize,
        /// Length of [`MultiplexGroup::samples`].
        samples: usize,
        /// Channels of the group.
        channels: usize,
    },
    /// A sampling frequency outside the IOD's range.
    #[error("multiplex group {group}: sampling frequency {frequency} Hz; a 12-lead ECG is sampled at {min} to {max} Hz (PS3.3 A.34.3.4.6)")]
    SamplingFrequency {
        /// The group (1-based).
        group: usize,
        /// The frequency given.
        frequency: f64,
        /// [`TWELVE_LEAD_MIN_FREQUENCY`].
        min: f64,
        /// [`TWELVE_LEAD_MAX_FREQUENCY`].
        max: f64,
    },
    /// A channel label that is not a lead of CID 3001 known here.
    #[error("multiplex group {group}, channel {channel}: lead {label:?} is not one of I, II, III, aVR, aVL, aVF, V1–V9, V2R–V9R (CID 3001)")]
    UnknownLead {
        /// The group (1-based).
        group: usize,
        /// The channel (1-based).
        channel: usize,
        /// The label given (a lead name, not patient data).
        label: String,
    },
    /// A channel's calibration cannot be written (not finite, zero, or not a voltage).
    #[error("multiplex group {group}, channel {channel}: {what}")]
    Calibration {
        /// The group (1-based).
        group: usize,
        /// The channel (1-based).
        channel: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A value of the recording does not fit its attribute (the value itself is not shown).
    #[error("{attribute}: {reason}")]
    InvalidValue {
        /// The attribute, e.g. `Patient's Name (0010,0010)`.
        attribute: &'static str,
        /// What is wrong, e.g. `longer than 64 characters`.
        reason: &'static str,
    },
    /// The object has no Waveform Sequence (5400,0100), or an empty one.
    #[error("not a waveform object: no Waveform Sequence (5400,0100) items")]
    NoWaveform,
    /// A multiplex group of the object lacks a required attribute or has an unusable value.
    #[error("multiplex group {group}: {attribute} {reason}")]
    BadGroup {
        /// The group (1-based).
        group: usize,
        /// The attribute, e.g. `Number of Waveform Samples (003A,0010)`.
        attribute: &'static str,
        /// What is wrong, e.g. `is missing`.
        reason: &'static str,
    },
    /// Waveform Data holds fewer bytes than samples × channels × bytes per sample.
    #[error("multiplex group {group}: Waveform Data (5400,1010) is truncated: {found} bytes where {expected} are declared — the copy is incomplete; send the original again")]
    Truncated {
        /// The group (1-based).
        group: usize,
        /// Bytes declared by the group's attributes.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A sample encoding this crate does not decode (e.g. audio µ-law `MB`, A-law `AB`).
    #[error("multiplex group {group}: {bits}-bit {interpretation:?} samples are not supported (signed or unsigned 8/16/32/64-bit linear are)")]
    UnsupportedSamples {
        /// The group (1-based).
        group: usize,
        /// Waveform Bits Allocated (5400,1004).
        bits: u16,
        /// Waveform Sample Interpretation (5400,1006).
        interpretation: String,
    },
    /// Samples whose values do not fit a 16-bit signed integer, so no exact `i16` exists.
    #[error("multiplex group {group}: {interpretation} samples outside −32768..=32767 cannot be given as 16-bit signed values")]
    NotRepresentable {
        /// The group (1-based).
        group: usize,
        /// Waveform Sample Interpretation (5400,1006).
        interpretation: String,
    },
    /// dicom-rs could not read or write the object.
    #[error("DICOM {operation} failed: {reason}")]
    Dicom {
        /// `read` or `write`.
        operation: &'static str,
        /// dicom-rs's message.
        reason: String,
    },
    /// Reading the file failed.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

/// One channel (lead) of a multiplex group, and how its samples become microvolts.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Lead name, e.g. `I`, `II`, `aVR`, `V1` (written as Channel Label, and coded from CID 3001
    /// into the Channel Source Sequence). Read: the Channel Label, else the Channel Source's code
    /// meaning (e.g. `Lead I (Einthoven)`), else empty.
    pub label: String,
    /// Channel Sensitivity (003A,0210): µV per sample unit (before [`Channel::correction`]).
    pub sensitivity_uv: f64,
    /// Channel Baseline (003A,0213): µV added after scaling.
    pub baseline_uv: f64,
    /// Channel Sensitivity Correction Factor (003A,0212), normally 1.0.
    pub correction: f64,
    /// `None`: the values above are in µV (a file's `mV` or `V` is converted). `Some(code)`: the
    /// channel is not a voltage (e.g. `mm[Hg]`); sensitivity and baseline are the file's numbers
    /// in that UCUM unit, or `1` and `0` with the code `1` when the file gives no sensitivity.
    /// Only `None` can be written.
    pub other_unit: Option<String>,
}

impl Channel {
    /// A voltage channel: `sensitivity_uv` µV per sample unit, baseline 0, correction 1.
    pub fn new(label: impl Into<String>, sensitivity_uv: f64) -> Channel {
        Channel {
            label: label.into(),
            sensitivity_uv,
            baseline_uv: 0.0,
            correction: 1.0,
            other_unit: None,
        }
    }

    /// The physical value of `sample`: sample × sensitivity × correction + baseline (µV for a
    /// voltage channel), computed in the order pydicom uses.
    pub fn physical(&self, sample: i16) -> f64 {
        f64::from(sample) * self.sensitivity_uv * self.correction + self.baseline_uv
    }
}

/// Channels sampled together at one frequency, samples interleaved by channel.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiplexGroup {
    /// Sampling Frequency (003A,001A), Hz.
    pub sampling_frequency: f64,
    /// The channels, in Waveform Data order.
    pub channels: Vec<Channel>,
    /// Multiplexed samples: sample 0 of every channel, then sample 1 of every channel, …
    pub samples: Vec<i16>,
    /// Multiplex Group Label (003A,0020), e.g. `RHYTHM`.
    pub label: Option<String>,
}

impl MultiplexGroup {
    /// Samples per channel (Number of Waveform Samples); 0 when there is no channel.
    pub fn samples_per_channel(&self) -> usize {
        self.samples
            .len()
            .checked_div(self.channels.len())
            .unwrap_or(0)
    }

    /// The samples of channel `index` (0-based), or `None` when there is no such channel.
    pub fn channel_samples(&self, index: usize) -> Option<Vec<i16>> {
        if index >= self.channels.len() {
            return None;
        }
        Some(
            self.samples
                .iter()
                .skip(index)
                .step_by(self.channels.len())
                .copied()
                .collect(),
        )
    }

    /// Seconds covered: samples per channel / sampling frequency.
    pub fn duration_seconds(&self) -> f64 {
        self.samples_per_channel() as f64 / self.sampling_frequency
    }
}

/// One 12-lead ECG object to write: who, which study/series/instance, when, on what, and the
/// signal. A long session becomes several recordings of one series (same `series_uid`,
/// increasing `instance_number`), each within [`max_seconds_per_object`].
#[derive(Debug, Clone, PartialEq)]
pub struct EcgRecording {
    /// Patient's Name (0010,0010), DICOM PN (`王^小东`); may be empty (type 2).
    pub patient_name: Phi<String>,
    /// Patient ID (0010,0020); may be empty (type 2).
    pub patient_id: Phi<String>,
    /// Patient's Birth Date (0010,0030), `YYYYMMDD`.
    pub patient_birth_date: Option<Phi<String>>,
    /// Patient's Sex (0010,0040): `M`, `F` or `O`.
    pub patient_sex: Option<String>,
    /// Accession Number (0008,0050), at most 16 characters; may be empty (type 2).
    pub accession_number: Phi<String>,
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// Series Instance UID (0020,000E).
    pub series_uid: String,
    /// SOP Instance UID (0008,0018).
    pub sop_uid: String,
    /// Series Number (0020,0011).
    pub series_number: u32,
    /// Instance Number (0020,0013): 1, 2, … for the objects of one session.
    pub instance_number: u32,
    /// Acquisition DateTime (0008,002A) of the first sample, DICOM DT with at least seconds:
    /// `YYYYMMDDHHMMSS[.FFFFFF][&ZZXX]`. Study, Content and Series date/time are taken from it.
    pub acquisition_datetime: String,
    /// Institution Name (0008,0080).
    pub institution: Option<String>,
    /// Station Name (1010,0008): the ECG cart.
    pub station_name: Option<String>,
    /// Manufacturer (0008,0070) of the ECG cart (type 2: empty when unknown).
    pub manufacturer: Option<String>,
    /// The signal: 1 to [`TWELVE_LEAD_MAX_GROUPS`] groups.
    pub groups: Vec<MultiplexGroup>,
    /// False when the session ended abnormally: the object then says so in a Waveform
    /// Annotation ([`INCOMPLETE_ANNOTATION`]).
    pub complete: bool,
}

/// A lead's code in CID 3001 "ECG Leads" (PS3.16), coding scheme `MDC` (ISO/IEEE 11073-10101).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadCode {
    /// Code Value, e.g. `2:1`.
    pub code_value: &'static str,
    /// Coding Scheme Designator: `MDC`.
    pub coding_scheme: &'static str,
    /// Code Meaning, e.g. `Lead I`.
    pub meaning: &'static str,
}

/// (label, MDC code, meaning) of the leads a recording may carry (CID 3001).
const LEADS: &[(&str, &str, &str)] = &[
    ("I", "2:1", "Lead I"),
    ("II", "2:2", "Lead II"),
    ("III", "2:61", "Lead III"),
    ("aVR", "2:62", "aVR, augmented voltage, right"),
    ("aVL", "2:63", "aVL, augmented voltage, left"),
    ("aVF", "2:64", "aVF, augmented voltage, foot"),
    ("V1", "2:3", "Lead V1"),
    ("V2", "2:4", "Lead V2"),
    ("V3", "2:5", "Lead V3"),
    ("V4", "2:6", "Lead V4"),
    ("V5", "2:7", "Lead V5"),
    ("V6", "2:8", "Lead V6"),
    ("V7", "2:9", "Lead V7"),
    ("V8", "2:66", "Lead V8"),
    ("V9", "2:67", "Lead V9"),
    ("V2R", "2:10", "Lead V2R"),
    ("V3R", "2:11", "Lead V3R"),
    ("V4R", "2:12", "Lead V4R"),
    ("V5R", "2:13", "Lead V5R"),
    ("V6R", "2:14", "Lead V6R"),
    ("V7R", "2:15", "Lead V7R"),
    ("V8R", "2:68", "Lead V8R"),
    ("V9R", "2:69", "Lead V9R"),
];

/// The CID 3001 code of a lead label (`I`, `II`, `III`, `aVR`, `aVL`, `aVF`, `V1`–`V9`,
/// `V2R`–`V9R`; ASCII case ignored), or `None`.
pub fn lead_code(label: &str) -> Option<LeadCode> {
    LEADS
        .iter()
        .find(|(l, _, _)| l.eq_ignore_ascii_case(label.trim()))
        .map(|&(_, code_value, meaning)| LeadCode {
            code_value,
            coding_scheme: "MDC",
            meaning,
        })
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes `rec` as a 12-Lead ECG Waveform Part 10 file (Explicit VR Little Endian, file meta
/// with yilian's implementation class UID and version name) to `out`. Everything is checked
/// before a byte is written: on an error `out` is untouched.
pub fn write_twelve_lead_ecg(
    rec: &EcgRecording,
    out: &mut impl Write,
) -> Result<(), WaveformError> {
    let dataset = twelve_lead_dataset(rec)?;
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME);
    let object = dataset.with_meta(meta).map_err(|e| WaveformError::Dicom {
        operation: "write",
        reason: e.to_string(),
    })?;
    let mut bytes = Vec::new();
    object
        .write_all(&mut bytes)
        .map_err(|e| WaveformError::Dicom {
            operation: "write",
            reason: e.to_string(),
        })?;
    out.write_all(&bytes)?;
    Ok(())
}

fn twelve_lead_dataset(rec: &EcgRecording) -> Result<InMemDicomObject, WaveformError> {
    check_limits(&rec.groups)?;
    uid("SOP Instance UID (0008,0018)", &rec.sop_uid)?;
    uid("Study Instance UID (0020,000D)", &rec.study_uid)?;
    uid("Series Instance UID (0020,000E)", &rec.series_uid)?;
    let (date, time) = split_datetime(&rec.acquisition_datetime)?;
    person_name(rec.patient_name.expose())?;
    text("Patient ID (0010,0020)", rec.patient_id.expose(), 64)?;
    text(
        "Accession Number (0008,0050)",
        rec.accession_number.expose(),
        16,
    )?;
    let birth_date = match &rec.patient_birth_date {
        Some(d) => {
            let d = d.expose().as_str();
            if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("Patient's Birth Date (0010,0030)", "not YYYYMMDD"));
            }
            d
        }
        None => "",
    };
    let sex = match rec.patient_sex.as_deref() {
        None => "",
        Some(s @ ("M" | "F" | "O")) => s,
        Some(_) => return Err(invalid("Patient's Sex (0010,0040)", "not M, F or O")),
    };
    let institution = opt_text("Institution Name (0008,0080)", &rec.institution, 64)?;
    let station = opt_text("Station Name (1010,0008)", &rec.station_name, 16)?;
    let manufacturer = opt_text("Manufacturer (0008,0070)", &rec.manufacturer, 64)?;

    let mut ds = InMemDicomObject::new_empty();
    let mut put = |tag: Tag, vr: VR, value: PrimitiveValue| {
        ds.put(DataElement::new(tag, vr, value));
    };
    // SOP Common (C.12.1)
    put(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        SPECIFIC_CHARACTER_SET.into(),
    );
    put(tags::SOP_CLASS_UID, VR::UI, TWELVE_LEAD_ECG_STORAGE.into());
    put(tags::SOP_INSTANCE_UID, VR::UI, rec.sop_uid.as_str().into());
    // General Study (C.7.2.1)
    put(tags::STUDY_DATE, VR::DA, date.into());
    put(tags::STUDY_TIME, VR::TM, time.into());
    put(
        tags::ACCESSION_NUMBER,
        VR::SH,
        rec.accession_number.expose().as_str().into(),
    );
    put(
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        PrimitiveValue::Empty,
    );
    put(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        rec.study_uid.as_str().into(),
    );
    put(tags::STUDY_ID, VR::SH, PrimitiveValue::Empty);
    // General Series (C.7.3.1)
    put(tags::SERIES_DATE, VR::DA, date.into());
    put(tags::SERIES_TIME, VR::TM, time.into());
    put(tags::MODALITY, VR::CS, "ECG".into());
    put(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        rec.series_uid.as_str().into(),
    );
    put(
        tags::SERIES_NUMBER,
        VR::IS,
        rec.series_number.to_string().into(),
    );
    // Waveform Identification (C.10.8)
    put(tags::CONTENT_DATE, VR::DA, date.into());
    put(tags::CONTENT_TIME, VR::TM, time.into());
    put(
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        rec.acquisition_datetime.as_str().into(),
    );
    put(
        tags::INSTANCE_NUMBER,
        VR::IS,
        rec.instance_number.to_string().into(),
    );
    // General Equipment (C.7.5.1)
    put(tags::MANUFACTURER, VR::LO, manufacturer.into());
    if !institution.is_empty() {
        put(tags::INSTITUTION_NAME, VR::LO, institution.into());
    }
    if !station.is_empty() {
        put(tags::STATION_NAME, VR::SH, station.into());
    }
    // Patient (C.7.1.1)
    put(
        tags::PATIENT_NAME,
        VR::PN,
        rec.patient_name.expose().as_str().into(),
    );
    put(
        tags::PATIENT_ID,
        VR::LO,
        rec.patient_id.expose().as_str().into(),
    );
    put(tags::PATIENT_BIRTH_DATE, VR::DA, birth_date.into());
    put(tags::PATIENT_SEX, VR::CS, sex.into());

    // Acquisition Context (C.7.6.14): type 2, no context recorded.
    ds.put(DataElement::new(
        tags::ACQUISITION_CONTEXT_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(Vec::<InMemDicomObject>::new()),
    ));
    // Waveform Annotation (C.10.10): only when the session ended abnormally.
    if !rec.complete {
        let items = rec
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| incomplete_annotation(g + 1, group))
            .collect::<Vec<_>>();
        ds.put(DataElement::new(
            tags::WAVEFORM_ANNOTATION_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(items),
        ));
    }
    // Waveform (C.10.9)
    let mut groups = Vec::with_capacity(rec.groups.len());
    for (g, group) in rec.groups.iter().enumerate() {
        groups.push(group_item(g + 1, group)?);
    }
    ds.put(DataElement::new(
        tags::WAVEFORM_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(groups),
    ));
    Ok(ds)
}

/// The content constraints of PS3.3 A.34.3.4 that concern the signal.
fn check_limits(groups: &[MultiplexGroup]) -> Result<(), WaveformError> {
    if groups.is_empty() || groups.len() > TWELVE_LEAD_MAX_GROUPS {
        return Err(WaveformError::GroupCount {
            groups: groups.len(),
            limit: TWELVE_LEAD_MAX_GROUPS,
        });
    }
    let mut total_channels = 0;
    for (g, group) in groups.iter().enumerate() {
        let g = g + 1;
        let channels = group.channels.len();
        total_channels += channels;
        if channels == 0 || channels > TWELVE_LEAD_MAX_CHANNELS {
            return Err(WaveformError::ChannelCount {
                group: g,
                channels,
                limit: TWELVE_LEAD_MAX_CHANNELS,
            });
        }
        if total_channels > TWELVE_LEAD_MAX_CHANNELS {
            return Err(WaveformError::ChannelCount {
                group: g,
                channels: total_channels,
                limit: TWELVE_LEAD_MAX_CHANNELS,
            });
        }
        let f = group.sampling_frequency;
        if !(TWELVE_LEAD_MIN_FREQUENCY..=TWELVE_LEAD_MAX_FREQUENCY).contains(&f) {
            return Err(WaveformError::SamplingFrequency {
                group: g,
                frequency: f,
                min: TWELVE_LEAD_MIN_FREQUENCY,
                max: TWELVE_LEAD_MAX_FREQUENCY,
            });
        }
        if group.samples.len() % channels != 0 {
            return Err(WaveformError::RaggedSamples {
                group: g,
                samples: group.samples.len(),
                channels,
            });
        }
        let per_channel = group.samples.len() / channels;
        if per_channel == 0 || per_channel > TWELVE_LEAD_MAX_SAMPLES {
            return Err(WaveformError::SampleCount {
                group: g,
                samples: per_channel,
                limit: TWELVE_LEAD_MAX_SAMPLES,
                frequency: f,
                max_seconds: max_seconds_per_object(f),
            });
        }
        if let Some(label) = &group.label {
            text("Multiplex Group Label (003A,0020)", label, 16)?;
        }
        for (c, ch) in group.channels.iter().enumerate() {
            let c = c + 1;
            if lead_code(&ch.label).is_none() {
                return Err(WaveformError::UnknownLead {
                    group: g,
                    channel: c,
                    label: ch.label.chars().take(16).collect(),
                });
            }
            let bad = |what| WaveformError::Calibration {
                group: g,
                channel: c,
                what,
            };
            if ch.other_unit.is_some() {
                return Err(bad(
                    "an ECG lead is a voltage: its calibration must be in µV",
                ));
            }
            if !ch.sensitivity_uv.is_finite() || ch.sensitivity_uv == 0.0 {
                return Err(bad("sensitivity must be a finite, non-zero number of µV"));
            }
            if !ch.correction.is_finite() || ch.correction == 0.0 {
                return Err(bad("correction factor must be finite and non-zero"));
            }
            if !ch.baseline_uv.is_finite() {
                return Err(bad("baseline must be a finite number of µV"));
            }
        }
    }
    Ok(())
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
        DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from(scheme),
        ),
        DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
    ])
}

/// One Waveform Sequence item. Limits and labels were checked by [`check_limits`].
fn group_item(g: usize, group: &MultiplexGroup) -> Result<InMemDicomObject, WaveformError> {
    let mut channels = Vec::with_capacity(group.channels.len());
    for (c, ch) in group.channels.iter().enumerate() {
        let lead = lead_code(&ch.label).ok_or_else(|| WaveformError::UnknownLead {
            group: g,
            channel: c + 1,
            label: ch.label.chars().take(16).collect(),
        })?;
        channels.push(InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::WAVEFORM_CHANNEL_NUMBER,
                VR::IS,
                PrimitiveValue::from((c + 1).to_string()),
            ),
            DataElement::new(
                tags::CHANNEL_LABEL,
                VR::SH,
                PrimitiveValue::from(ch.label.trim()),
            ),
            DataElement::new(
                tags::CHANNEL_SOURCE_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![code_item(
                    lead.code_value,
                    lead.coding_scheme,
                    lead.meaning,
                )]),
            ),
            DataElement::new(
                tags::CHANNEL_SENSITIVITY,
                VR::DS,
                PrimitiveValue::from(decimal(ch.sensitivity_uv)),
            ),
            DataElement::new(
                tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![code_item("uV", "UCUM", "microvolt")]),
            ),
            DataElement::new(
                tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR,
                VR::DS,
                PrimitiveValue::from(decimal(ch.correction)),
            ),
            DataElement::new(
                tags::CHANNEL_BASELINE,
                VR::DS,
                PrimitiveValue::from(decimal(ch.baseline_uv)),
            ),
            DataElement::new(tags::CHANNEL_SAMPLE_SKEW, VR::DS, PrimitiveValue::from("0")),
            DataElement::new(
                tags::WAVEFORM_BITS_STORED,
                VR::US,
                PrimitiveValue::from(16u16),
            ),
        ]));
    }
    let per_channel = group.samples_per_channel();
    let mut data = Vec::with_capacity(group.samples.len() * 2);
    for s in &group.samples {
        data.extend_from_slice(&s.to_le_bytes());
    }
    let mut item = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::WAVEFORM_ORIGINALITY,
            VR::CS,
            PrimitiveValue::from("ORIGINAL"),
        ),
        DataElement::new(
            tags::NUMBER_OF_WAVEFORM_CHANNELS,
            VR::US,
            PrimitiveValue::from(group.channels.len() as u16),
        ),
        DataElement::new(
            tags::NUMBER_OF_WAVEFORM_SAMPLES,
            VR::UL,
            PrimitiveValue::from(per_channel as u32),
        ),
        DataElement::new(
            tags::SAMPLING_FREQUENCY,
            VR::DS,
            PrimitiveValue::from(decimal(group.sampling_frequency)),
        ),
        DataElement::new(
            tags::CHANNEL_DEFINITION_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(channels),
        ),
        DataElement::new(
            tags::WAVEFORM_BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(16u16),
        ),
        DataElement::new(
            tags::WAVEFORM_SAMPLE_INTERPRETATION,
            VR::CS,
            PrimitiveValue::from("SS"),
        ),
        DataElement::new(tags::WAVEFORM_DATA, VR::OW, PrimitiveValue::U8(data.into())),
    ]);
    if let Some(label) = &group.label {
        item.put(DataElement::new(
            tags::MULTIPLEX_GROUP_LABEL,
            VR::SH,
            PrimitiveValue::from(label.trim()),
        ));
    }
    Ok(item)
}

/// A Waveform Annotation item at the last sample of group `g`, on all its channels.
fn incomplete_annotation(g: usize, group: &MultiplexGroup) -> InMemDicomObject {
    let channels: Vec<u16> = (1..=group.channels.len())
        .flat_map(|c| [g as u16, c as u16])
        .collect();
    InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::UNFORMATTED_TEXT_VALUE,
            VR::ST,
            PrimitiveValue::from(INCOMPLETE_ANNOTATION),
        ),
        DataElement::new(
            tags::REFERENCED_WAVEFORM_CHANNELS,
            VR::US,
            PrimitiveValue::U16(channels.into()),
        ),
        DataElement::new(
            tags::TEMPORAL_RANGE_TYPE,
            VR::CS,
            PrimitiveValue::from("POINT"),
        ),
        DataElement::new(
            tags::REFERENCED_SAMPLE_POSITIONS,
            VR::UL,
            PrimitiveValue::from(group.samples_per_channel() as u32),
        ),
    ])
}

/// A finite number as a DS value (at most 16 characters): the shortest exact form when it
/// fits, else the closest exponent form that does.
fn decimal(v: f64) -> String {
    let plain = format!("{v}");
    if plain.len() <= 16 {
        return plain;
    }
    (0..=15)
        .rev()
        .map(|p| format!("{v:.p$e}"))
        .find(|s| s.len() <= 16)
        .unwrap_or_else(|| "0".to_owned())
}

fn invalid(attribute: &'static str, reason: &'static str) -> WaveformError {
    WaveformError::InvalidValue { attribute, reason }
}

/// A UID: 1 to 64 characters, numeric components separated by dots, no leading zeros.
fn uid(attribute: &'static str, value: &str) -> Result<(), WaveformError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            attribute,
            "not a valid UID (digits and dots, at most 64 characters)",
        ))
    }
}

/// A single-valued text: at most `max` characters, no backslash, no control character.
fn text(attribute: &'static str, value: &str, max: usize) -> Result<(), WaveformError> {
    if value.chars().count() > max {
        return Err(invalid(attribute, "too long for its value representation"));
    }
    if value.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(invalid(
            attribute,
            "contains a backslash or a control character",
        ));
    }
    Ok(())
}

fn opt_text<'a>(
    attribute: &'static str,
    value: &'a Option<String>,
    max: usize,
) -> Result<&'a str, WaveformError> {
    match value {
        Some(v) => {
            text(attribute, v, max)?;
            Ok(v.trim())
        }
        None => Ok(""),
    }
}

/// A person name: up to three component groups (`=`) of at most 64 characters each.
fn person_name(value: &str) -> Result<(), WaveformError> {
    const NAME: &str = "Patient's Name (0010,0010)";
    if value.split('=').count() > 3 {
        return Err(invalid(NAME, "more than three component groups"));
    }
    for group in value.split('=') {
        text(NAME, group, 64)?;
    }
    Ok(())
}

/// Splits a DT of at least seconds into DA and TM (without the UTC offset).
fn split_datetime(dt: &str) -> Result<(&str, &str), WaveformError> {
    let bad = || {
        invalid(
            "Acquisition DateTime (0008,002A)",
            "not a DICOM DT with at least seconds (YYYYMMDDHHMMSS[.FFFFFF][&ZZXX])",
        )
    };
    let local = match dt.find(['+', '-']) {
        Some(at) => {
            let offset = &dt[at + 1..];
            if offset.len() != 4 || !offset.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            &dt[..at]
        }
        None => dt,
    };
    let (whole, fraction) = match local.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (local, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if let Some(f) = fraction {
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok((&local[..8], &local[8..]))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Every multiplex group of a waveform object given as the bytes of a Part 10 file (with or
/// without its 128-byte preamble). Pixel Data, if any, is not read.
pub fn read_waveforms(bytes: &[u8]) -> Result<Vec<MultiplexGroup>, WaveformError> {
    let object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|e| WaveformError::Dicom {
            operation: "read",
            reason: e.to_string(),
        })?;
    groups_of(&object)
}

/// Every multiplex group of the waveform object in the Part 10 file at `path`.
pub fn read_waveforms_file(path: impl AsRef<Path>) -> Result<Vec<MultiplexGroup>, WaveformError> {
    let object = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| WaveformError::Dicom {
            operation: "read",
            reason: e.to_string(),
        })?;
    groups_of(&object)
}

fn groups_of(object: &InMemDicomObject) -> Result<Vec<MultiplexGroup>, WaveformError> {
    let items = object
        .get(tags::WAVEFORM_SEQUENCE)
        .and_then(|e| e.items())
        .filter(|items| !items.is_empty())
        .ok_or(WaveformError::NoWaveform)?;
    items
        .iter()
        .enumerate()
        .map(|(g, item)| decode_group(g + 1, item))
        .collect()
}

fn decode_group(g: usize, item: &InMemDicomObject) -> Result<MultiplexGroup, WaveformError> {
    let bad = |attribute: &'static str, reason: &'static str| WaveformError::BadGroup {
        group: g,
        attribute,
        reason,
    };
    const CHANNELS: &str = "Number of Waveform Channels (003A,0005)";
    const SAMPLES: &str = "Number of Waveform Samples (003A,0010)";
    const FREQUENCY: &str = "Sampling Frequency (003A,001A)";
    const BITS: &str = "Waveform Bits Allocated (5400,1004)";
    const INTERPRETATION: &str = "Waveform Sample Interpretation (5400,1006)";
    const DEFINITIONS: &str = "Channel Definition Sequence (003A,0200)";
    const DATA: &str = "Waveform Data (5400,1010)";

    let int = |tag: Tag, name: &'static str| -> Result<u64, WaveformError> {
        item.get(tag)
            .ok_or_else(|| bad(name, "is missing"))?
            .to_int::<u64>()
            .map_err(|_| bad(name, "is not a number"))
    };
    let channels_n = int(tags::NUMBER_OF_WAVEFORM_CHANNELS, CHANNELS)?;
    let samples_n = int(tags::NUMBER_OF_WAVEFORM_SAMPLES, SAMPLES)?;
    if channels_n == 0 {
        return Err(bad(CHANNELS, "is zero"));
    }
    if samples_n == 0 {
        return Err(bad(SAMPLES, "is zero"));
    }
    let sampling_frequency = item
        .get(tags::SAMPLING_FREQUENCY)
        .ok_or_else(|| bad(FREQUENCY, "is missing"))?
        .to_float64()
        .map_err(|_| bad(FREQUENCY, "is not a number"))?;
    if !sampling_frequency.is_finite() || sampling_frequency <= 0.0 {
        return Err(bad(FREQUENCY, "is not a positive number"));
    }
    let bits = u16::try_from(int(tags::WAVEFORM_BITS_ALLOCATED, BITS)?)
        .map_err(|_| bad(BITS, "is out of range"))?;
    let interpretation = item
        .get(tags::WAVEFORM_SAMPLE_INTERPRETATION)
        .ok_or_else(|| bad(INTERPRETATION, "is missing"))?
        .to_str()
        .map_err(|_| bad(INTERPRETATION, "is not text"))?
        .trim()
        .to_owned();
    let label = item
        .get(tags::MULTIPLEX_GROUP_LABEL)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());

    let definitions = item
        .get(tags::CHANNEL_DEFINITION_SEQUENCE)
        .and_then(|e| e.items())
        .ok_or_else(|| bad(DEFINITIONS, "is missing"))?;
    if definitions.len() as u64 != channels_n {
        return Err(bad(
            DEFINITIONS,
            "does not have one item per channel (Number of Waveform Channels)",
        ));
    }
    let channels = definitions.iter().map(decode_channel).collect::<Vec<_>>();

    let data = item
        .get(tags::WAVEFORM_DATA)
        .ok_or_else(|| bad(DATA, "is missing"))?
        .value()
        .primitive()
        .and_then(little_endian)
        .ok_or_else(|| bad(DATA, "is not binary data"))?;
    let width = match bits {
        8 | 16 | 32 | 64 => u64::from(bits / 8),
        _ => {
            return Err(WaveformError::UnsupportedSamples {
                group: g,
                bits,
                interpretation,
            })
        }
    };
    let expected = samples_n
        .checked_mul(channels_n)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| bad(SAMPLES, "is too large"))?;
    let found = data.len() as u64;
    if found < expected {
        return Err(WaveformError::Truncated {
            group: g,
            expected,
            found,
        });
    }
    // Bytes past the declared samples are padding (an odd 8-bit count, or trailing fill).
    let data = &data[..expected as usize];
    let samples = decode_samples(g, bits, &interpretation, data)?;
    Ok(MultiplexGroup {
        sampling_frequency,
        channels,
        samples,
        label,
    })
}

/// A Channel Definition Sequence item. Sensitivity, correction and baseline default to 1, 1
/// and 0 as pydicom applies them; voltages are converted to µV.
fn decode_channel(def: &InMemDicomObject) -> Channel {
    let number = |tag: Tag| def.get(tag).and_then(|e| e.to_float64().ok());
    let first_item_text = |sequence: Tag, tag: Tag| {
        def.get(sequence)
            .and_then(|e| e.items())
            .and_then(|items| items.first())
            .and_then(|item| item.get(tag))
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let label = def
        .get(tags::CHANNEL_LABEL)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| first_item_text(tags::CHANNEL_SOURCE_SEQUENCE, tags::CODE_MEANING))
        .unwrap_or_default();
    let sensitivity = number(tags::CHANNEL_SENSITIVITY);
    let correction = number(tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR).unwrap_or(1.0);
    let baseline = number(tags::CHANNEL_BASELINE).unwrap_or(0.0);
    let unit = first_item_text(tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE, tags::CODE_VALUE);
    let (factor, other_unit) = match (sensitivity, unit.as_deref()) {
        (None, _) => (1.0, Some("1".to_owned())),
        (Some(_), Some("uV")) => (1.0, None),
        (Some(_), Some("mV")) => (1e3, None),
        (Some(_), Some("V")) => (1e6, None),
        (Some(_), Some("nV")) => (1e-3, None),
        (Some(_), other) => (1.0, Some(other.unwrap_or_default().to_owned())),
    };
    Channel {
        label,
        sensitivity_uv: sensitivity.unwrap_or(1.0) * factor,
        baseline_uv: baseline * factor,
        correction,
        other_unit,
    }
}

/// The value's bytes in little-endian order, whatever the primitive type dicom-rs chose.
fn little_endian(value: &PrimitiveValue) -> Option<Cow<'_, [u8]>> {
    fn le<const N: usize, T: Copy>(values: &[T], to: fn(T) -> [u8; N]) -> Cow<'static, [u8]> {
        Cow::Owned(values.iter().flat_map(|&v| to(v)).collect())
    }
    Some(match value {
        PrimitiveValue::U8(b) => Cow::Borrowed(&b[..]),
        PrimitiveValue::U16(v) => le(v, u16::to_le_bytes),
        PrimitiveValue::I16(v) => le(v, i16::to_le_bytes),
        PrimitiveValue::U32(v) => le(v, u32::to_le_bytes),
        PrimitiveValue::I32(v) => le(v, i32::to_le_bytes),
        PrimitiveValue::U64(v) => le(v, u64::to_le_bytes),
        PrimitiveValue::I64(v) => le(v, i64::to_le_bytes),
        _ => return None,
    })
}

/// Little-endian samples of `bits` and `interpretation` as `i16`, refused unless exact.
fn decode_samples(
    g: usize,
    bits: u16,
    interpretation: &str,
    data: &[u8],
) -> Result<Vec<i16>, WaveformError> {
    fn exact<const N: usize, T: TryInto<i16>>(
        data: &[u8],
        from: fn([u8; N]) -> T,
    ) -> Option<Vec<i16>> {
        data.chunks_exact(N)
            .map(|c| {
                let mut word = [0u8; N];
                word.copy_from_slice(c);
                from(word).try_into().ok()
            })
            .collect()
    }
    let samples = match (bits, interpretation) {
        (8, "SB") => Some(data.iter().map(|&b| i16::from(b as i8)).collect()),
        (8, "UB") => Some(data.iter().map(|&b| i16::from(b)).collect()),
        (16, "SS") => exact(data, i16::from_le_bytes),
        (16, "US") => exact(data, u16::from_le_bytes),
        (32, "SL") => exact(data, i32::from_le_bytes),
        (32, "UL") => exact(data, u32::from_le_bytes),
        (64, "SV") => exact(data, i64::from_le_bytes),
        (64, "UV") => exact(data, u64::from_le_bytes),
        _ => {
            return Err(WaveformError::UnsupportedSamples {
                group: g,
                bits,
                interpretation: interpretation.chars().take(16).collect(),
            })
        }
    };
    samples.ok_or_else(|| WaveformError::NotRepresentable {
        group: g,
        interpretation: interpretation.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_fits_ds() {
        assert_eq!(decimal(500.0), "500");
        assert_eq!(decimal(1.25), "1.25");
        assert_eq!(decimal(-0.5), "-0.5");
        let third = decimal(1.0 / 3.0);
        assert!(third.len() <= 16, "{third}");
        assert!((third.parse::<f64>().unwrap_or(0.0) - 1.0 / 3.0).abs() < 1e-12);
        let big = decimal(1e300);
        assert!(big.len() <= 16, "{big}");
        assert_eq!(big.parse::<f64>().ok(), Some(1e300));
    }

    #[test]
    fn datetime_splits_and_refuses() {
        assert_eq!(
            split_datetime("20261205093015.123&0800".replace('&', "+").as_str()).ok(),
            Some(("20261205", "093015.123"))
        );
        assert_eq!(
            split_datetime("20261205093015").ok(),
            Some(("20261205", "093015"))
        );
        for bad in [
            "2026120509",
            "20261205093015.",
            "20261205093015+08",
            "x0261205093015",
        ] {
            assert!(split_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uids_checked() {
        assert!(uid("x", "1.2.840.10008.5.1.4.1.1.9.1.1").is_ok());
        assert!(uid("x", "2.25.0").is_ok());
        for bad in ["", "1..2", "1.02", "1.2.", "1.a", &"1".repeat(65)] {
            assert!(uid("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lead_codes() {
        let avr = lead_code("aVR").map(|c| c.code_value);
        assert_eq!(avr, Some("2:62"));
        assert_eq!(lead_code("AVR").map(|c| c.code_value), Some("2:62"));
        assert_eq!(lead_code("III").map(|c| c.code_value), Some("2:61"));
        assert_eq!(lead_code("V6").map(|c| c.code_value), Some("2:8"));
        assert_eq!(lead_code("V4R").map(|c| c.code_value), Some("2:12"));
        assert!(lead_code("X1").is_none());
    }

    #[test]
    fn samples_decode_exactly_or_refuse() {
        assert_eq!(
            decode_samples(1, 8, "SB", &[0x80, 0x7F, 0xFF]).ok(),
            Some(vec![-128, 127, -1])
        );
        assert_eq!(
            decode_samples(1, 8, "UB", &[0x80, 0xFF]).ok(),
            Some(vec![128, 255])
        );
        assert_eq!(
            decode_samples(1, 16, "US", &[0xFF, 0x7F, 0x00, 0x00]).ok(),
            Some(vec![32767, 0])
        );
        assert!(matches!(
            decode_samples(1, 16, "US", &[0x00, 0x80]),
            Err(WaveformError::NotRepresentable { group: 1, .. })
        ));
        assert_eq!(
            decode_samples(1, 32, "SL", &(-32768i32).to_le_bytes()).ok(),
            Some(vec![-32768])
        );
        assert!(matches!(
            decode_samples(2, 8, "MB", &[0]),
            Err(WaveformError::UnsupportedSamples { group: 2, .. })
        ));
    }

    #[test]
    fn max_seconds() {
        assert_eq!(max_seconds_per_object(500.0), 32.768);
        assert_eq!(max_seconds_per_object(1000.0), 16.384);
        assert_eq!(max_seconds_per_object(100.0), 0.0);
        assert_eq!(max_seconds_per_object(f64::NAN), 0.0);
    }
}
