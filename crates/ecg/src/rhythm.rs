//! Heart rate from one lead, sans-IO, for a live viewer: push samples as they arrive, read
//! [`RateDetector::bpm`].
//!
//! R peaks are found in the spirit of Pan & Tompkins (1985), in integer arithmetic on the raw
//! samples (no drift over hours):
//! 1. **band-pass by differences**: a 20 ms moving sum (a zero at 50 Hz and its harmonics, and
//!    a low-pass), then the difference over 25 ms (a high-pass that removes baseline wander;
//!    together a band-pass peaking near 15 Hz, where the QRS has its energy);
//! 2. **squaring**, which favours the steep QRS over P and T waves;
//! 3. **moving-window integration** over 150 ms (one QRS becomes one hump);
//! 4. **adaptive threshold** on the hump peaks: signal and noise levels (`SPKI`, `NPKI`) learnt
//!    over the first 2 s, then tracked (`x ← 0.125·peak + 0.875·x`); a peak above
//!    `NPKI + 0.25·(SPKI − NPKI)` is a QRS, unless within the **200 ms refractory period** (a
//!    higher peak there moves the beat), or within 360 ms and under half the last QRS (a T
//!    wave); when no QRS came within 1.66 mean RR, the largest peak above half the threshold
//!    since the last beat is taken (search back).
//!
//! The calibration sets an absolute floor: a hump smaller than a 10 µV/ms slope held for
//! 20 ms is never a QRS, so a flat line or noise gives no rate. The rate is 60 / the median of
//! the last 8 RR intervals; intervals over 3 s are gaps (lead off), not beats; [`bpm`] is
//! `None` until 3 beats are seen, and again when no beat came for 3 s (or 2.5 median RR).
//!
//! [`bpm`]: RateDetector::bpm

use crate::model::{Calibration, SampleRate};
use std::collections::VecDeque;

/// RR intervals the rate is the median of.
const RR_KEPT: usize = 8;

/// An R-peak detector and heart-rate meter for one lead.
#[derive(Clone, Debug)]
pub struct RateDetector {
    fs: u64,
    /// Samples consumed.
    n: u64,
    /// Moving sum (low-pass).
    ma: Ring,
    /// Past moving sums, for the difference.
    diff: Ring,
    /// Squared differences, integrated.
    mwi: Ring,
    /// The two previous integrated values (n−1, n−2).
    prev: [i64; 2],
    /// The smallest hump a QRS may make.
    floor: f64,
    /// Learning phase: until this sample; the largest hump and the sum of the signal.
    learn_until: u64,
    learn_max: f64,
    learn_sum: f64,
    spki: f64,
    npki: f64,
    /// Last QRS: sample index (of the hump peak) and height.
    last_qrs: Option<(u64, f64)>,
    /// Largest peak since the last QRS above half the threshold, for search back.
    backup: Option<(u64, f64)>,
    rr: VecDeque<u64>,
    beats: u64,
}

/// A fixed window with a running sum.
#[derive(Clone, Debug)]
struct Ring {
    buf: Vec<i64>,
    pos: usize,
    sum: i64,
}

impl Ring {
    fn new(len: usize) -> Ring {
        Ring {
            buf: vec![0; len.max(1)],
            pos: 0,
            sum: 0,
        }
    }

    fn fill(&mut self, v: i64) {
        self.buf.fill(v);
        self.sum = v * self.buf.len() as i64;
    }

    /// Pushes `v`, returns the value it replaces (`len` samples ago).
    fn push(&mut self, v: i64) -> i64 {
        let old = std::mem::replace(&mut self.buf[self.pos], v);
        self.pos = (self.pos + 1) % self.buf.len();
        self.sum += v - old;
        old
    }
}

impl RateDetector {
    /// A detector for one lead sampled at `rate` with `calibration` (its baseline is irrelevant:
    /// only slopes count).
    pub fn new(rate: SampleRate, calibration: Calibration) -> RateDetector {
        let fs = u64::from(rate.hz());
        let ms = |v: u64| ((v * fs + 500) / 1000).max(1) as usize;
        let (m, d, w) = (ms(20), ms(25), ms(150));
        // Floor: a ramp of 10 µV/ms for 20 ms, through the same filters.
        let sens = calibration.sensitivity_uv.abs().max(1e-6);
        let slope = 10.0 / sens * 1000.0 / fs as f64; // units per sample
        let hump = (m as f64 * d as f64 * slope).powi(2);
        RateDetector {
            fs,
            n: 0,
            ma: Ring::new(m),
            diff: Ring::new(d),
            mwi: Ring::new(w),
            prev: [0; 2],
            floor: hump * ms(20) as f64,
            learn_until: 2 * fs,
            learn_max: 0.0,
            learn_sum: 0.0,
            spki: 0.0,
            npki: 0.0,
            last_qrs: None,
            backup: None,
            rr: VecDeque::with_capacity(RR_KEPT),
            beats: 0,
        }
    }

    /// Feeds the next samples of the lead.
    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            self.step(i64::from(s));
        }
    }

    /// Heart rate in beats per minute: `None` before 3 beats, or when no beat came recently.
    pub fn bpm(&self) -> Option<f64> {
        let (last, _) = self.last_qrs?;
        if self.rr.len() < 2 {
            return None;
        }
        let median = self.median_rr()?;
        let quiet = self.n.saturating_sub(last);
        if quiet > (3 * self.fs).max(median * 5 / 2) {
            return None;
        }
        Some(60.0 * self.fs as f64 / median as f64)
    }

    /// QRS complexes detected so far.
    pub fn beats(&self) -> u64 {
        self.beats
    }

    /// Samples consumed so far.
    pub fn samples(&self) -> u64 {
        self.n
    }

    fn median_rr(&self) -> Option<u64> {
        let mut v: Vec<u64> = self.rr.iter().copied().collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }

    fn mean_rr(&self) -> Option<f64> {
        if self.rr.is_empty() {
            return None;
        }
        Some(self.rr.iter().sum::<u64>() as f64 / self.rr.len() as f64)
    }

    fn step(&mut self, x: i64) {
        if self.n == 0 {
            // Start the filters as if the signal had always been there: no step at t = 0.
            self.ma.fill(x);
            let s = self.ma.sum;
            self.diff.fill(s);
        }
        self.ma.push(x);
        let lp = self.ma.sum;
        let before = self.diff.push(lp);
        let d = lp - before;
        // |d| ≤ 2 · 32768 · window, far from overflowing when squared and summed.
        self.mwi.push(d * d);
        let v = self.mwi.sum;
        let idx = self.n;
        self.n += 1;
        if idx < self.learn_until {
            self.learn_sum += v as f64;
        }
        // A local maximum at idx − 1.
        if idx >= 2 && self.prev[0] > self.prev[1] && self.prev[0] >= v {
            self.peak(idx - 1, self.prev[0] as f64);
        }
        self.prev = [v, self.prev[0]];
        if idx + 1 == self.learn_until {
            self.spki = self.learn_max / 3.0;
            self.npki = self.learn_sum / self.learn_until as f64 / 2.0;
        }
        self.search_back();
    }

    fn threshold(&self) -> f64 {
        (self.npki + 0.25 * (self.spki - self.npki)).max(self.floor)
    }

    fn peak(&mut self, idx: u64, v: f64) {
        if idx < self.learn_until {
            self.learn_max = self.learn_max.max(v);
            return;
        }
        let refractory = self.fs / 5;
        let t_window = self.fs * 36 / 100;
        let since = self.last_qrs.map(|(at, _)| idx.saturating_sub(at));
        if let (Some(since), Some((at, height))) = (since, self.last_qrs) {
            if since <= refractory {
                // Still the same complex: a higher hump moves the beat to it.
                if v > height {
                    self.last_qrs = Some((idx, v));
                    if let Some(rr) = self.rr.back_mut() {
                        *rr += idx.saturating_sub(at);
                    }
                    self.spki = 0.125 * v + 0.875 * self.spki;
                }
                return;
            }
        }
        let threshold = self.threshold();
        let t_wave = match (since, self.last_qrs) {
            (Some(since), Some((_, height))) => since < t_window && v < 0.5 * height,
            _ => false,
        };
        if v > threshold && !t_wave {
            self.spki = 0.125 * v + 0.875 * self.spki;
            self.qrs(idx, v);
        } else {
            self.npki = 0.125 * v + 0.875 * self.npki;
            if v > 0.5 * threshold && !t_wave && self.backup.is_none_or(|(_, b)| v > b) {
                self.backup = Some((idx, v));
            }
        }
    }

    /// No QRS for 1.66 mean RR: the best peak since the last one was a QRS.
    fn search_back(&mut self) {
        let (Some((last, _)), Some(mean), Some((idx, v))) =
            (self.last_qrs, self.mean_rr(), self.backup)
        else {
            return;
        };
        if self.n.saturating_sub(last) as f64 > 1.66 * mean {
            self.spki = 0.25 * v + 0.75 * self.spki;
            self.qrs(idx, v);
        }
    }

    fn qrs(&mut self, idx: u64, v: f64) {
        if let Some((at, _)) = self.last_qrs {
            let rr = idx.saturating_sub(at);
            if rr > 3 * self.fs {
                self.rr.clear();
            } else {
                if self.rr.len() == RR_KEPT {
                    self.rr.pop_front();
                }
                self.rr.push_back(rr);
            }
        }
        self.last_qrs = Some((idx, v));
        self.backup = None;
        self.beats += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lead;
    use crate::simulate::{SimSpec, Simulator};

    fn measure(spec: SimSpec, seconds: usize, chunk: usize) -> (Option<f64>, u64) {
        let fs = spec.rate.hz() as usize;
        let mut sim = Simulator::new(spec);
        let cal = sim.calibration()[Lead::II.index()];
        let mut det = RateDetector::new(sim.spec().rate, cal);
        for _ in 0..seconds * fs / chunk {
            let b = sim.next_block(chunk);
            det.push(b.lead(Lead::II));
        }
        (det.bpm(), det.beats())
    }

    #[test]
    fn simulated_rates_are_measured() {
        for rate in [SampleRate::Hz500, SampleRate::Hz1000] {
            for bpm in [60.0, 72.0, 120.0, 150.0] {
                for st in [false, true] {
                    let spec = SimSpec {
                        rate,
                        heart_rate_bpm: bpm,
                        st_elevation: st,
                        noise_uv: 20.0,
                        baseline_wander_uv: 200.0,
                        mains_hz: Some(50.0),
                        seed: bpm as u64,
                    };
                    let (got, beats) = measure(spec, 20, 20);
                    let got = got.unwrap_or_else(|| panic!("no rate at {bpm} bpm"));
                    assert!(
                        (got - bpm).abs() <= 3.0,
                        "{bpm} bpm at {} Hz (STEMI {st}): measured {got}",
                        rate.hz()
                    );
                    // All but the beats of the 2 s learning phase are counted.
                    let expected = bpm / 60.0 * 18.0;
                    assert!(
                        (beats as f64 - expected).abs() <= 2.0,
                        "{beats} beats, ≈ {expected} expected"
                    );
                }
            }
        }
    }

    #[test]
    fn no_rate_before_three_beats_or_on_a_flat_line() {
        let spec = SimSpec::default();
        let (rate, _) = measure(spec.clone(), 2, 10);
        assert_eq!(rate, None, "learning phase gives no rate");
        // A flat line with noise: never a QRS.
        let mut det = RateDetector::new(SampleRate::Hz500, Calibration::default());
        let mut x = 1u32;
        let noise: Vec<i16> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 9) as i16 - 4 // ±10 µV
            })
            .collect();
        det.push(&noise);
        assert_eq!(det.bpm(), None);
        assert_eq!(det.beats(), 0);
        // Asystole after a rhythm: the rate goes away.
        let mut sim = Simulator::new(spec);
        let mut det = RateDetector::new(SampleRate::Hz500, Calibration::default());
        det.push(sim.next_block(5000).lead(Lead::II));
        assert!(det.bpm().is_some());
        det.push(&vec![0i16; 2000]);
        assert_eq!(det.bpm(), None);
    }

    #[test]
    fn chunking_does_not_matter() {
        let (a, na) = measure(SimSpec::default(), 12, 1);
        let (b, nb) = measure(SimSpec::default(), 12, 500);
        assert_eq!((a, na), (b, nb));
    }

    #[test]
    fn real_record_rate() {
        // waveform_ecg.dcm: R peaks in II ≈ 984 ms apart (61 bpm), counted by hand.
        let real = crate::testdata::real_ecg();
        assert_eq!(real.rate_hz, 1000);
        let ii = &real.lead_major[real.per_lead..2 * real.per_lead];
        let cal = Calibration {
            sensitivity_uv: real.sensitivity_uv[1],
            baseline_uv: real.baseline_uv[1],
        };
        let mut det = RateDetector::new(SampleRate::Hz1000, cal);
        det.push(ii);
        let bpm = det.bpm().expect("a rate on the real record");
        assert!((bpm - 61.0).abs() <= 2.0, "real record: {bpm} bpm");
        assert!((7..=9).contains(&det.beats()), "{} beats", det.beats());
    }
}
