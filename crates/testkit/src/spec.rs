//! The study a fixture belongs to, and deterministic UIDs under the test root.

/// UID root of every generated fixture. Everything below it is synthetic test data.
pub const TEST_UID_ROOT: &str = "1.2.826.0.1.3680043.10.1234";

/// Implementation Class UID written in the file meta of generated files.
pub const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1234.0.1";

/// Implementation Version Name written in the file meta of generated files.
pub const IMPLEMENTATION_VERSION_NAME: &str = "YILIAN_TESTKIT";

/// Patient and study attributes shared by every instance generated for one study.
///
/// [`StudySpec::new`] makes a deterministic synthetic study; fields are public so a test can
/// change any of them (e.g. `body_part = Some("HEAD".into())` for a stroke CT).
///
/// `modality` is written by [`crate::large_instance`], whose SOP class (multi-frame secondary
/// capture) accepts any modality. The IOD-specific generators write the modality their SOP class
/// requires (`CT`, `DX`, `US`) whatever `modality` says; [`crate::Generated::modality`] tells
/// what was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudySpec {
    /// Patient's Name (0010,0010), DICOM PN (`family^given`); written with
    /// Specific Character Set `ISO_IR 192` (UTF-8).
    pub patient_name: String,
    /// Patient ID (0010,0020).
    pub patient_id: String,
    /// Accession Number (0008,0050), at most 16 characters.
    pub accession: String,
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// Modality (0008,0060) for [`crate::large_instance`].
    pub modality: String,
    /// Body Part Examined (0018,0015), if any.
    pub body_part: Option<String>,
}

impl StudySpec {
    /// A synthetic study, the same for the same `(modality, seed)`:
    /// patient `测试^患者`, id `TEST<seed>`, accession `A<seed>`, study UID
    /// `<TEST_UID_ROOT>.1.<seed>`, and a body part typical of the modality (CT and DX: `CHEST`,
    /// MR: `HEAD`, US: `ABDOMEN`, otherwise none).
    pub fn new(modality: &str, seed: u64) -> Self {
        let body_part = match modality.to_ascii_uppercase().as_str() {
            "CT" | "DX" | "CR" => Some("CHEST"),
            "MR" => Some("HEAD"),
            "US" => Some("ABDOMEN"),
            _ => None,
        };
        StudySpec {
            patient_name: "测试^患者".to_owned(),
            patient_id: format!("TEST{:010}", seed % 10_000_000_000),
            accession: format!("A{:012}", seed % 1_000_000_000_000),
            study_uid: format!("{TEST_UID_ROOT}.1.{seed}"),
            modality: modality.to_owned(),
            body_part: body_part.map(str::to_owned),
        }
    }
}

/// Which generator made a series; part of its UIDs so that two generators never collide.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SeriesKind {
    Ct = 1,
    Dx = 2,
    Us = 3,
    Large = 4,
}

/// UIDs of one generated series: deterministic in (study, generator, seed), at most 64
/// characters with up to 10-digit instance numbers.
#[derive(Clone, Debug)]
pub(crate) struct SeriesUids {
    pub series: String,
    pub frame_of_reference: String,
}

impl SeriesUids {
    pub(crate) fn new(spec: &StudySpec, kind: SeriesKind, seed: u64) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(spec.study_uid.as_bytes());
        hasher.update(&[kind as u8]);
        hasher.update(&seed.to_le_bytes());
        let hash = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        let n = u64::from_le_bytes(first) % 1_000_000_000_000_000;
        let kind = kind as u8;
        SeriesUids {
            series: format!("{TEST_UID_ROOT}.2.{kind}.{n}"),
            frame_of_reference: format!("{TEST_UID_ROOT}.4.{kind}.{n}"),
        }
    }

    /// SOP Instance UID of the `number`-th instance (1-based) of the series.
    pub(crate) fn instance(&self, number: u32) -> String {
        format!("{}.{number}", self.series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_short_enough() {
        let spec = StudySpec::new("CT", u64::MAX);
        assert!(spec.study_uid.len() <= 64);
        assert!(spec.accession.len() <= 16);
        for kind in [
            SeriesKind::Ct,
            SeriesKind::Dx,
            SeriesKind::Us,
            SeriesKind::Large,
        ] {
            let uids = SeriesUids::new(&spec, kind, u64::MAX);
            let instance = uids.instance(u32::MAX);
            for uid in [&uids.series, &uids.frame_of_reference, &instance] {
                assert!(uid.len() <= 64, "{uid}");
                assert!(uid
                    .split('.')
                    .all(|c| !c.is_empty() && (c == "0" || !c.starts_with('0'))));
            }
        }
    }

    #[test]
    fn series_uids_differ_by_kind_and_seed() {
        let spec = StudySpec::new("CT", 1);
        let a = SeriesUids::new(&spec, SeriesKind::Ct, 1).series;
        assert_eq!(a, SeriesUids::new(&spec, SeriesKind::Ct, 1).series);
        assert_ne!(a, SeriesUids::new(&spec, SeriesKind::Ct, 2).series);
        assert_ne!(a, SeriesUids::new(&spec, SeriesKind::Dx, 1).series);
        assert_ne!(
            a,
            SeriesUids::new(&StudySpec::new("CT", 2), SeriesKind::Ct, 1).series
        );
    }
}
