//! The stream model: leads, sampling rates, calibration, blocks of samples.

use serde::{Deserialize, Serialize};

/// Leads in a standard 12-lead ECG.
pub const LEAD_COUNT: usize = 12;

/// One lead of the standard 12-lead ECG, in the order every block carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Lead {
    I = 0,
    II,
    III,
    AVR,
    AVL,
    AVF,
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
}

impl Lead {
    /// All twelve, in block order.
    pub const ALL: [Lead; LEAD_COUNT] = [
        Lead::I,
        Lead::II,
        Lead::III,
        Lead::AVR,
        Lead::AVL,
        Lead::AVF,
        Lead::V1,
        Lead::V2,
        Lead::V3,
        Lead::V4,
        Lead::V5,
        Lead::V6,
    ];

    /// Position in a block (0..12).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The usual label: `I`, `II`, `III`, `aVR`, `aVL`, `aVF`, `V1` … `V6`.
    pub fn label(self) -> &'static str {
        match self {
            Lead::I => "I",
            Lead::II => "II",
            Lead::III => "III",
            Lead::AVR => "aVR",
            Lead::AVL => "aVL",
            Lead::AVF => "aVF",
            Lead::V1 => "V1",
            Lead::V2 => "V2",
            Lead::V3 => "V3",
            Lead::V4 => "V4",
            Lead::V5 => "V5",
            Lead::V6 => "V6",
        }
    }

    /// The lead with this label, case-insensitive, also in the forms files use: `Lead I`,
    /// `Lead I (Einthoven)`, `aVR, augmented voltage, right` (CID 3001 meanings).
    pub fn from_label(label: &str) -> Option<Lead> {
        let l = label.trim();
        let l = l
            .strip_prefix("Lead ")
            .or_else(|| l.strip_prefix("lead "))
            .or_else(|| l.strip_prefix("LEAD "))
            .unwrap_or(l);
        let token = l.split([' ', '(', ',']).next().unwrap_or_default().trim();
        Lead::ALL
            .into_iter()
            .find(|lead| lead.label().eq_ignore_ascii_case(token))
    }
}

/// Sampling rate of a session: 500 or 1000 samples per second per lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SampleRate {
    Hz500,
    Hz1000,
}

impl SampleRate {
    /// Samples per second per lead.
    pub fn hz(self) -> u32 {
        match self {
            SampleRate::Hz500 => 500,
            SampleRate::Hz1000 => 1000,
        }
    }

    /// `Some` for 500 and 1000.
    pub fn from_hz(hz: u32) -> Option<SampleRate> {
        match hz {
            500 => Some(SampleRate::Hz500),
            1000 => Some(SampleRate::Hz1000),
            _ => None,
        }
    }
}

/// How one lead's integer samples map to microvolts, as in DICOM's channel definition
/// (PS3.3 C.10.9.1.4.3, and pydicom's `waveform_array`):
/// `µV = sample × sensitivity_uv + baseline_uv` (Channel Sensitivity in µV, a correction factor
/// of 1; Channel Baseline is the offset of sample value 0 from true zero, in µV).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Microvolts per sample unit (Channel Sensitivity, units µV).
    pub sensitivity_uv: f64,
    /// Microvolts at sample value 0 (Channel Baseline).
    pub baseline_uv: f64,
}

impl Default for Calibration {
    /// 2.5 µV per unit, no offset: a common cart setting (±81.9 mV in int16).
    fn default() -> Self {
        Calibration {
            sensitivity_uv: 2.5,
            baseline_uv: 0.0,
        }
    }
}

impl Calibration {
    /// The sample value in microvolts.
    pub fn microvolts(&self, sample: i16) -> f64 {
        f64::from(sample) * self.sensitivity_uv + self.baseline_uv
    }
}

/// A run of consecutive samples of all twelve leads: `per_lead` samples of lead I, then of
/// lead II, … (lead-major). What the codec compresses and a frame carries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Block {
    per_lead: usize,
    samples: Vec<i16>,
}

impl Block {
    /// A block from lead-major samples; `None` unless `samples.len()` is a multiple of 12.
    pub fn from_lead_major(samples: Vec<i16>) -> Option<Block> {
        if !samples.len().is_multiple_of(LEAD_COUNT) {
            return None;
        }
        Some(Block {
            per_lead: samples.len() / LEAD_COUNT,
            samples,
        })
    }

    /// A block from multiplexed samples (sample 0 of every lead, then sample 1, …), as DICOM
    /// Waveform Data holds them; `None` unless `interleaved.len()` is a multiple of 12.
    pub fn from_interleaved(interleaved: &[i16]) -> Option<Block> {
        if !interleaved.len().is_multiple_of(LEAD_COUNT) {
            return None;
        }
        let per_lead = interleaved.len() / LEAD_COUNT;
        let mut samples = vec![0i16; interleaved.len()];
        for (i, chunk) in interleaved.chunks_exact(LEAD_COUNT).enumerate() {
            for (lead, &s) in chunk.iter().enumerate() {
                samples[lead * per_lead + i] = s;
            }
        }
        Some(Block { per_lead, samples })
    }

    /// Samples per lead.
    pub fn per_lead(&self) -> usize {
        self.per_lead
    }

    /// Whether the block holds no sample.
    pub fn is_empty(&self) -> bool {
        self.per_lead == 0
    }

    /// One lead's samples.
    pub fn lead(&self, lead: Lead) -> &[i16] {
        let i = lead.index() * self.per_lead;
        &self.samples[i..i + self.per_lead]
    }

    /// All samples, lead-major.
    pub fn lead_major(&self) -> &[i16] {
        &self.samples
    }

    /// The samples multiplexed (sample 0 of every lead, then sample 1, …).
    pub fn interleaved(&self) -> Vec<i16> {
        let mut out = Vec::with_capacity(self.samples.len());
        for i in 0..self.per_lead {
            for lead in 0..LEAD_COUNT {
                out.push(self.samples[lead * self.per_lead + i]);
            }
        }
        out
    }

    /// Append another block's samples after this one's.
    pub fn extend(&mut self, other: &Block) {
        let per_lead = self.per_lead + other.per_lead;
        let mut samples = Vec::with_capacity(per_lead * LEAD_COUNT);
        for lead in Lead::ALL {
            samples.extend_from_slice(self.lead(lead));
            samples.extend_from_slice(other.lead(lead));
        }
        *self = Block { per_lead, samples };
    }
}

/// III, aVR, aVL and aVF from I and II by Einthoven's and Goldberger's relations, in integers
/// as carts compute them: `III = II − I`, `aVR = −⌊(I + II)/2⌋`, `aVL = ⌊(2·I − II)/2⌋`,
/// `aVF = ⌊(2·II − I)/2⌋` (halves rounded down; pydicom's real record follows exactly this),
/// computed in `i32` and wrapped to `i16` (only |I|, |II| beyond 16,383 can wrap).
pub fn derived_limb_leads(i: i16, ii: i16) -> [i16; 4] {
    let (i, ii) = (i32::from(i), i32::from(ii));
    [
        (ii - i) as i16,
        (-((i + ii) >> 1)) as i16,
        ((2 * i - ii) >> 1) as i16,
        ((2 * ii - i) >> 1) as i16,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for lead in Lead::ALL {
            assert_eq!(Lead::from_label(lead.label()), Some(lead));
        }
        assert_eq!(Lead::from_label("Lead aVR"), Some(Lead::AVR));
        assert_eq!(Lead::from_label("v6"), Some(Lead::V6));
        assert_eq!(Lead::from_label("Lead I (Einthoven)"), Some(Lead::I));
        assert_eq!(
            Lead::from_label("aVR, augmented voltage, right"),
            Some(Lead::AVR)
        );
        assert_eq!(Lead::from_label("Lead V10"), None);
        assert_eq!(Lead::from_label("X"), None);
    }

    #[test]
    fn interleaving_round_trips_and_blocks_extend() {
        let interleaved: Vec<i16> = (0..36).collect();
        let b = Block::from_interleaved(&interleaved).unwrap();
        assert_eq!(b.per_lead(), 3);
        assert_eq!(b.lead(Lead::II), &[1, 13, 25]);
        assert_eq!(b.interleaved(), interleaved);
        let mut a = b.clone();
        a.extend(&b);
        assert_eq!(a.lead(Lead::V6), &[11, 23, 35, 11, 23, 35]);
        assert!(Block::from_interleaved(&[1, 2, 3]).is_none());
        assert!(Block::from_lead_major(vec![0; 13]).is_none());
    }

    #[test]
    fn derived_limb_leads_round_down() {
        assert_eq!(derived_limb_leads(100, 300), [200, -200, -50, 250]);
        assert_eq!(derived_limb_leads(1, 2), [1, -1, 0, 1]);
        assert_eq!(derived_limb_leads(-1, 0), [1, 1, -1, 0]);
        let [_, avr, _, _] = derived_limb_leads(i16::MIN, i16::MIN);
        assert_eq!(avr, i16::MIN); // 32,768 wraps
    }

    #[test]
    fn calibration_gives_microvolts() {
        let c = Calibration {
            sensitivity_uv: 2.5,
            baseline_uv: -5.0,
        };
        assert_eq!(c.microvolts(402), 1000.0);
    }
}
