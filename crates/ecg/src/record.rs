//! A recorded segment of a session as a DICOM 12-lead ECG Waveform object.
//!
//! One object per [`Segment`] (one multiplex group of the 12 leads, at most
//! [`yilian_dicom::waveform::TWELVE_LEAD_MAX_SAMPLES`] samples per lead), all objects of a
//! session in one series of one study, named by [`crate::uids`] so that recording a segment
//! again gives the very same object.

use yilian_dicom::waveform::{
    write_twelve_lead_ecg, Channel, EcgRecording, MultiplexGroup, WaveformError,
};
use yilian_dicom::Phi;

use crate::codec::CodecError;
use crate::live::Routing;
use crate::model::{Lead, LEAD_COUNT};
use crate::recorder::Segment;
use crate::uids;
use crate::wire::Start;

/// 12-lead ECG Waveform Storage.
pub const TWELVE_LEAD_ECG: &str = yilian_dicom::waveform::TWELVE_LEAD_ECG_STORAGE;

/// Why a segment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("a frame of the recording cannot be decoded: {0}")]
    Codec(#[from] CodecError),
    #[error("the recording cannot be written as DICOM: {0}")]
    Dicom(#[from] WaveformError),
}

/// A written object.
#[derive(Debug)]
pub struct Made {
    pub sop_uid: String,
    pub study_uid: String,
    pub urgent: bool,
    /// The Part 10 file.
    pub bytes: Vec<u8>,
}

/// The DICOM object of `segment` of the session `start` describes; `complete`: the session
/// ended normally and this is its last object, or not its last (only a last object can be
/// incomplete: the one where the signal stops).
pub fn dicom(
    start: &Start,
    routing: &Routing,
    segment: &Segment,
    complete: bool,
) -> Result<Made, RecordError> {
    let block = segment.decode()?;
    let rate = f64::from(start.rate_hz);
    let channels = Lead::ALL
        .iter()
        .zip(&start.calibration)
        .map(|(lead, c)| Channel {
            baseline_uv: c.baseline_uv,
            ..Channel::new(lead.label(), c.sensitivity_uv)
        })
        .collect::<Vec<_>>();
    debug_assert_eq!(channels.len(), LEAD_COUNT);
    let session = start.session;
    let study_uid = start
        .patient
        .study_uid
        .clone()
        .filter(|u| yilian_proto::valid_uid(u))
        .unwrap_or_else(|| uids::study(session));
    let sop_uid = uids::instance(session, segment.first_sample);
    let first_us = segment.first_sample.saturating_mul(1_000_000) / u64::from(start.rate_hz);
    let p = &start.patient;
    let nonempty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let rec = EcgRecording {
        patient_name: p.name.clone(),
        patient_id: p.id.clone(),
        patient_birth_date: nonempty(p.birth_date.expose()).map(Phi::new),
        patient_sex: nonempty(&p.sex),
        accession_number: Phi::new(p.accession.expose().chars().take(16).collect()),
        study_uid: study_uid.clone(),
        series_uid: uids::series(session),
        sop_uid: sop_uid.clone(),
        series_number: 1,
        // Deterministic and increasing within the session (its first frame, from 1).
        instance_number: u32::try_from(segment.first_seq + 1).unwrap_or(u32::MAX),
        acquisition_datetime: dicom_datetime(start.started_unix_ms, first_us),
        // LO (64 characters), SH (16), LO: cut to fit, they only describe.
        institution: Some(cut(&routing.site, 64)),
        station_name: Some(cut(&routing.device, 16)),
        manufacturer: start.device.as_deref().map(|d| cut(d, 64)),
        groups: vec![MultiplexGroup {
            sampling_frequency: rate,
            channels,
            samples: block.interleaved(),
            label: Some("RHYTHM".into()),
        }],
        complete,
    };
    let mut bytes = Vec::new();
    write_twelve_lead_ecg(&rec, &mut bytes)?;
    Ok(Made {
        sop_uid,
        study_uid,
        urgent: routing.urgent,
        bytes,
    })
}

/// `s` cut to `max` characters, without trailing spaces.
fn cut(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// DICOM DT in UTC (`YYYYMMDDHHMMSS.FFFFFF+0000`) of `unix_ms` + `offset_us`.
pub fn dicom_datetime(unix_ms: u64, offset_us: u64) -> String {
    let total_us = unix_ms.saturating_mul(1000).saturating_add(offset_us);
    let secs = (total_us / 1_000_000) as i64;
    let micros = total_us % 1_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}.{micros:06}+0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_dicom_dt_in_utc() {
        assert_eq!(dicom_datetime(0, 0), "19700101000000.000000+0000");
        // 2026-12-06 08:24:55.123 UTC, plus 1.5 s.
        assert_eq!(
            dicom_datetime(1_796_545_495_123, 1_500_000),
            "20261206082456.623000+0000"
        );
        assert_eq!(
            dicom_datetime(951_782_400_000, 0),
            "20000229000000.000000+0000"
        );
    }
}
