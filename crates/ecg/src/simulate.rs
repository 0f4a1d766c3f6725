//! A synthetic 12-lead ECG, deterministic from a seed: for tests, benches and demos.
//!
//! # Model
//!
//! The heart is a moving dipole `d(t) = (x, y, z)` in millivolts (x to the patient's left,
//! y toward the feet, z anterior). As in McSharry's ECGSYN, each beat's dipole is a sum of
//! Gaussian waves (P, Q, R, S, T; T asymmetric) on each component, centred on the beat's R
//! peak. The P wave's lead (PR interval) shortens a little with rate; the T wave's position and
//! width scale with √RR (Bazett), so QT ≈ 400 ms at 60 bpm. QRS lasts ≈ 95 ms; the R wave in II
//! is ≈ 1.3 mV, with a frontal axis of ≈ 50°.
//!
//! RR intervals vary a little from beat to beat (≈ 2 % random, plus ≈ 1.5 % respiratory sinus
//! arrhythmia at 0.25 Hz) around `60 / heart_rate_bpm`.
//!
//! Leads are projections of `d`: `I = x`, `II = x·cos 60° + y·sin 60°` (frontal plane), and
//! `V1`…`V6 = 1.5 · (x·cos α + z·sin α)` with α = 115°, 95°, 75°, 60°, 35°, 5° in the
//! horizontal plane (the precordial electrodes lie closer to the heart, hence the gain).
//! On these, per lead: Gaussian noise (`noise_uv`, standard deviation), baseline wander (a
//! 0.3 Hz sinusoid of 50–100 % of `baseline_wander_uv`, phase per lead) and, with `mains_hz`,
//! 20 µV of mains interference. I, II and V1–V6 are then quantised at 2.5 µV per unit (I and
//! II clamped to ±16,383 so the derived leads stay in range), and III, aVR, aVL, aVF are
//! derived from the integer I and II by [`derived_limb_leads`] (`III = II − I`,
//! `aVR = −⌊(I + II)/2⌋`, `aVL = ⌊(2I − II)/2⌋`, `aVF = ⌊(2II − I)/2⌋`), exactly as a cart
//! does.
//!
//! `st_elevation` adds an anterior STEMI: an injury current dipole `(0, −0.15, 0.22)` mV
//! from the J point (≈ 50 ms after R) to the end of T, which raises the ST segment by
//! ≈ 0.3 mV in V1–V4 and lowers it by ≈ 0.13 mV in II, III and aVF (reciprocal depression).
//!
//! The random draws (RR intervals, noise) do not depend on `st_elevation`, so a plain and a
//! STEMI simulation with the same seed differ only by the injury current.

use crate::model::{derived_limb_leads, Block, Calibration, SampleRate, LEAD_COUNT};
use std::collections::VecDeque;
use std::f64::consts::PI;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSpec {
    /// Samples per second per lead.
    pub rate: SampleRate,
    /// Mean heart rate (beats per minute), 20–300.
    pub heart_rate_bpm: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// An anterior STEMI pattern.
    pub st_elevation: bool,
    /// Gaussian noise per lead, standard deviation in µV.
    pub noise_uv: f64,
    /// Baseline wander amplitude in µV (0.3 Hz).
    pub baseline_wander_uv: f64,
    /// Mains interference at this frequency (20 µV), if any.
    pub mains_hz: Option<f64>,
}

impl Default for SimSpec {
    /// 500 Hz, 72 bpm, 10 µV of noise, 100 µV of wander, no mains, no STEMI, seed 1.
    fn default() -> Self {
        SimSpec {
            rate: SampleRate::Hz500,
            heart_rate_bpm: 72.0,
            seed: 1,
            st_elevation: false,
            noise_uv: 10.0,
            baseline_wander_uv: 100.0,
            mains_hz: None,
        }
    }
}

/// µV per sample unit of every simulated lead.
pub const SIM_SENSITIVITY_UV: f64 = 2.5;
/// Mains interference amplitude (µV).
const MAINS_UV: f64 = 20.0;
/// Baseline wander frequency (Hz).
const WANDER_HZ: f64 = 0.3;
/// Horizontal-plane angles of V1…V6 (degrees from the left, toward anterior).
const V_ANGLES: [f64; 6] = [115.0, 95.0, 75.0, 60.0, 35.0, 5.0];
/// Gain of the precordial leads.
const V_GAIN: f64 = 1.5;
/// The leads drawn independently (I, II, V1…V6); the other four are derived.
const INDEPENDENT: usize = 8;

/// SplitMix64: small, fast, good enough for simulation.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// One Gaussian wave of the dipole: centre and widths in seconds relative to R, amplitude per
/// component in mV.
struct Wave {
    centre: f64,
    sigma_before: f64,
    sigma_after: f64,
    amp: [f64; 3],
}

impl Wave {
    fn add(&self, dt: f64, d: &mut [f64; 3]) {
        let s = if dt < self.centre {
            self.sigma_before
        } else {
            self.sigma_after
        };
        let z = (dt - self.centre) / s;
        if z.abs() > 6.0 {
            return;
        }
        let g = (-0.5 * z * z).exp();
        for (c, a) in d.iter_mut().zip(self.amp) {
            *c += a * g;
        }
    }
}

/// One beat: its R peak time and the RR interval that led to it (seconds).
#[derive(Clone, Copy, Debug)]
struct Beat {
    r: f64,
    rr: f64,
}

impl Beat {
    /// Dipole (mV) of this beat at time `t`.
    fn dipole(&self, t: f64, st_elevation: bool, d: &mut [f64; 3]) {
        let dt = t - self.r;
        if !(-0.4..=1.2).contains(&dt) {
            return;
        }
        let s = self.rr.clamp(0.2, 3.0).sqrt();
        let pr = 0.12 + 0.04 * self.rr.min(1.5);
        let t_centre = -0.045 + 0.30 * s;
        let waves = [
            Wave {
                centre: -pr,
                sigma_before: 0.022,
                sigma_after: 0.022,
                amp: [0.06, 0.12, 0.02],
            },
            Wave {
                centre: -0.030,
                sigma_before: 0.010,
                sigma_after: 0.010,
                amp: [-0.15, -0.02, 0.15],
            },
            Wave {
                centre: 0.0,
                sigma_before: 0.012,
                sigma_after: 0.012,
                amp: [0.90, 1.00, -0.15],
            },
            Wave {
                centre: 0.034,
                sigma_before: 0.011,
                sigma_after: 0.011,
                amp: [-0.15, -0.25, -0.50],
            },
            Wave {
                centre: t_centre,
                sigma_before: 0.06 * s,
                sigma_after: 0.04 * s,
                amp: [0.22, 0.20, 0.12],
            },
        ];
        for w in &waves {
            w.add(dt, d);
        }
        if st_elevation {
            // Injury current: on from the J point, off after the T peak.
            let on = sigmoid((dt - 0.045) / 0.006);
            let off = sigmoid(-(dt - (t_centre + 0.05 * s)) / (0.03 * s));
            let g = on * off;
            d[1] += -0.15 * g;
            d[2] += 0.22 * g;
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A deterministic 12-lead ECG source.
#[derive(Clone, Debug)]
pub struct Simulator {
    spec: SimSpec,
    rng: SplitMix,
    /// Index of the next sample.
    next_sample: u64,
    /// Beats that may still shape a coming sample, in time order.
    beats: VecDeque<Beat>,
    /// Per independent lead: wander amplitude factor and phase.
    wander: [(f64, f64); INDEPENDENT],
    mains_phase: f64,
}

impl Simulator {
    /// A simulator at time 0. The heart rate is clamped to 20–300 bpm.
    pub fn new(spec: SimSpec) -> Simulator {
        let mut rng = SplitMix(spec.seed ^ 0x5EED_EC61_2DEA_D5ED);
        let mut wander = [(0.0, 0.0); INDEPENDENT];
        for w in wander.iter_mut() {
            *w = (0.5 + 0.5 * rng.unit(), 2.0 * PI * rng.unit());
        }
        let mains_phase = 2.0 * PI * rng.unit();
        let rr = 60.0 / spec.heart_rate_bpm.clamp(20.0, 300.0);
        let first = Beat {
            r: 0.3 + rng.unit() * rr,
            rr,
        };
        let mut beats = VecDeque::new();
        beats.push_back(first);
        Simulator {
            spec,
            rng,
            next_sample: 0,
            beats,
            wander,
            mains_phase,
        }
    }

    /// The spec it runs.
    pub fn spec(&self) -> &SimSpec {
        &self.spec
    }

    /// Every lead: [`SIM_SENSITIVITY_UV`] µV per unit, baseline 0.
    pub fn calibration(&self) -> [Calibration; LEAD_COUNT] {
        [Calibration {
            sensitivity_uv: SIM_SENSITIVITY_UV,
            baseline_uv: 0.0,
        }; LEAD_COUNT]
    }

    /// The next `per_lead` samples of every lead; consecutive blocks continue one signal, so
    /// the samples do not depend on how they are cut into blocks.
    pub fn next_block(&mut self, per_lead: usize) -> Block {
        let mut samples = vec![0i16; per_lead * LEAD_COUNT];
        for i in 0..per_lead {
            let v = self.next_sample_values();
            for (lead, &s) in v.iter().enumerate() {
                samples[lead * per_lead + i] = s;
            }
        }
        // The length is 12 × per_lead by construction.
        Block::from_lead_major(samples).unwrap_or_default()
    }

    /// Draws the next beat's RR interval.
    fn schedule(&mut self) {
        let Some(&last) = self.beats.back() else {
            return;
        };
        let mean = 60.0 / self.spec.heart_rate_bpm.clamp(20.0, 300.0);
        let jitter = (0.02 * self.rng.gauss()).clamp(-0.06, 0.06);
        let rsa = 0.015 * (2.0 * PI * 0.25 * last.r).sin();
        let rr = mean * (1.0 + jitter + rsa);
        self.beats.push_back(Beat { r: last.r + rr, rr });
    }

    fn next_sample_values(&mut self) -> [i16; LEAD_COUNT] {
        let fs = f64::from(self.spec.rate.hz());
        let t = self.next_sample as f64 / fs;
        self.next_sample += 1;
        while self.beats.back().is_some_and(|b| b.r < t + 0.5) {
            self.schedule();
        }
        while self.beats.len() > 1 && self.beats.front().is_some_and(|b| b.r + 1.3 < t) {
            self.beats.pop_front();
        }
        let mut d = [0.0f64; 3];
        for b in &self.beats {
            b.dipole(t, self.spec.st_elevation, &mut d);
        }
        let (x, y, z) = (d[0], d[1], d[2]);
        // mV → µV, per independent lead: I, II, V1…V6.
        let mut uv = [0.0f64; INDEPENDENT];
        uv[0] = 1000.0 * x;
        uv[1] = 1000.0 * (0.5 * x + 0.75f64.sqrt() * y);
        for (k, angle) in V_ANGLES.iter().enumerate() {
            let a = angle.to_radians();
            uv[2 + k] = 1000.0 * V_GAIN * (x * a.cos() + z * a.sin());
        }
        let mains = self
            .spec
            .mains_hz
            .map(|f| MAINS_UV * (2.0 * PI * f * t + self.mains_phase).sin())
            .unwrap_or(0.0);
        let mut q = [0i16; INDEPENDENT];
        for (k, v) in uv.iter().enumerate() {
            let (amp, phase) = self.wander[k];
            let wander =
                self.spec.baseline_wander_uv * amp * (2.0 * PI * WANDER_HZ * t + phase).sin();
            let noise = self.spec.noise_uv * self.rng.gauss();
            let units = ((v + wander + noise + mains) / SIM_SENSITIVITY_UV).round();
            let lim = if k < 2 { 16_383.0 } else { 32_767.0 };
            q[k] = units.clamp(-lim, lim) as i16;
        }
        let [iii, avr, avl, avf] = derived_limb_leads(q[0], q[1]);
        [
            q[0], q[1], iii, avr, avl, avf, q[2], q[3], q[4], q[5], q[6], q[7],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lead;

    fn spec(bpm: f64, rate: SampleRate) -> SimSpec {
        SimSpec {
            rate,
            heart_rate_bpm: bpm,
            ..SimSpec::default()
        }
    }

    #[test]
    fn limb_relations_hold_on_every_sample() {
        for (st, mains) in [(false, None), (true, Some(50.0)), (false, Some(60.0))] {
            let mut sim = Simulator::new(SimSpec {
                st_elevation: st,
                mains_hz: mains,
                noise_uv: 40.0,
                ..spec(90.0, SampleRate::Hz1000)
            });
            let b = sim.next_block(5000);
            let (i, ii) = (b.lead(Lead::I), b.lead(Lead::II));
            for t in 0..b.per_lead() {
                let (a, c) = (i32::from(i[t]), i32::from(ii[t]));
                assert_eq!(i32::from(b.lead(Lead::III)[t]), c - a);
                assert_eq!(i32::from(b.lead(Lead::AVR)[t]), -((a + c).div_euclid(2)));
                assert_eq!(i32::from(b.lead(Lead::AVL)[t]), (2 * a - c).div_euclid(2));
                assert_eq!(i32::from(b.lead(Lead::AVF)[t]), (2 * c - a).div_euclid(2));
            }
        }
    }

    #[test]
    fn seeds_are_deterministic_and_differ() {
        let a = Simulator::new(SimSpec::default()).next_block(2000);
        let b = Simulator::new(SimSpec::default()).next_block(2000);
        let c = Simulator::new(SimSpec {
            seed: 2,
            ..SimSpec::default()
        })
        .next_block(2000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn block_sizes_do_not_change_the_signal() {
        let whole = Simulator::new(SimSpec::default()).next_block(3000);
        let mut sim = Simulator::new(SimSpec::default());
        let mut pieces = Block::default();
        for size in [1usize, 20, 0, 500, 7, 1000].iter().cycle() {
            let left = 3000 - pieces.per_lead();
            if left == 0 {
                break;
            }
            pieces.extend(&sim.next_block((*size).min(left)));
        }
        assert_eq!(pieces, whole);
    }

    /// R peaks of a clean lead II: local maxima above 0.6 mV, 200 ms apart.
    fn r_peaks(b: &Block, fs: usize) -> Vec<usize> {
        let ii = b.lead(Lead::II);
        let mut peaks: Vec<usize> = Vec::new();
        for t in 1..ii.len() - 1 {
            let v = f64::from(ii[t]) * SIM_SENSITIVITY_UV;
            if v > 600.0 && ii[t] >= ii[t - 1] && ii[t] > ii[t + 1] {
                if peaks.last().is_some_and(|&p| t - p < fs / 5) {
                    continue;
                }
                peaks.push(t);
            }
        }
        peaks
    }

    #[test]
    fn amplitudes_and_intervals_are_realistic() {
        let clean = SimSpec {
            noise_uv: 0.0,
            baseline_wander_uv: 0.0,
            ..spec(60.0, SampleRate::Hz1000)
        };
        let b = Simulator::new(clean).next_block(10_000);
        let peaks = r_peaks(&b, 1000);
        assert!((9..=11).contains(&peaks.len()), "{peaks:?}");
        let ii = b.lead(Lead::II);
        for &p in &peaks {
            let r_mv = f64::from(ii[p]) * SIM_SENSITIVITY_UV / 1000.0;
            assert!((1.0..=1.5).contains(&r_mv), "R in II {r_mv} mV");
        }
        // QRS: where |II| departs from the isoelectric line by > 50 µV around R.
        let p = peaks[2];
        let active = |t: usize| f64::from(ii[t]).abs() * SIM_SENSITIVITY_UV > 50.0;
        let onset = (p - 80..p).find(|&t| active(t)).unwrap_or(p);
        let end = (p..p + 80).rev().find(|&t| active(t)).unwrap_or(p);
        let qrs = end - onset;
        assert!((70..=110).contains(&qrs), "QRS {qrs} ms");
        // T end: last sample of the beat with |II| > 50 µV before the next P.
        let t_end = (p + 150..p + 600).rev().find(|&t| active(t)).unwrap_or(p);
        let qt = t_end - onset;
        assert!((360..=450).contains(&qt), "QT {qt} ms at 60 bpm");
    }

    #[test]
    fn rr_intervals_follow_the_rate() {
        for bpm in [60.0, 72.0, 120.0, 150.0] {
            let clean = SimSpec {
                noise_uv: 0.0,
                baseline_wander_uv: 0.0,
                ..spec(bpm, SampleRate::Hz500)
            };
            let b = Simulator::new(clean).next_block(500 * 30);
            let peaks = r_peaks(&b, 500);
            let span = (peaks[peaks.len() - 1] - peaks[0]) as f64 / 500.0;
            let measured = 60.0 * (peaks.len() - 1) as f64 / span;
            assert!(
                (measured - bpm).abs() < 3.0,
                "{bpm} bpm measured {measured}"
            );
            let rr: Vec<usize> = peaks.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(rr.iter().min() != rr.iter().max(), "no RR variability");
        }
    }

    #[test]
    fn st_elevation_raises_v2_and_lowers_iii() {
        let plain = SimSpec {
            noise_uv: 0.0,
            baseline_wander_uv: 0.0,
            ..SimSpec::default()
        };
        let stemi = SimSpec {
            st_elevation: true,
            ..plain.clone()
        };
        let fs = 500;
        let a = Simulator::new(plain).next_block(fs * 10);
        let b = Simulator::new(stemi).next_block(fs * 10);
        let peaks = r_peaks(&a, fs);
        assert!(peaks.len() >= 10);
        // J point ≈ R + 50 ms; J + 60 ms, against the PR segment (R − 70 ms).
        let level = |blk: &Block, lead: Lead| {
            let x = blk.lead(lead);
            let diffs: Vec<f64> = peaks
                .iter()
                .filter(|&&p| p >= 35 && p + 55 < x.len())
                .map(|&p| f64::from(x[p + 55]) - f64::from(x[p - 35]))
                .collect();
            diffs.iter().sum::<f64>() * SIM_SENSITIVITY_UV / diffs.len() as f64 / 1000.0
        };
        let v2 = level(&b, Lead::V2) - level(&a, Lead::V2);
        let iii = level(&b, Lead::III) - level(&a, Lead::III);
        assert!((0.2..=0.4).contains(&v2), "ST in V2 raised by {v2} mV");
        assert!(iii < -0.08, "ST in III changed by {iii} mV");
        for lead in [Lead::V1, Lead::V3, Lead::V4] {
            let d = level(&b, lead) - level(&a, lead);
            assert!(d > 0.15, "ST in {} raised by {d} mV", lead.label());
        }
    }
}
