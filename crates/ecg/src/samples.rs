//! Where a cart's samples come from: the simulator, a DICOM recording replayed, a device driver.

use crate::model::{Block, Calibration, SampleRate, LEAD_COUNT};

/// A source of 12-lead samples, read block by block in real time by `yilian ecg stream`.
pub trait Samples: Send {
    fn rate(&self) -> SampleRate;
    fn calibration(&self) -> [Calibration; LEAD_COUNT];
    /// The next `per_lead` samples of every lead; fewer at the end of a finite source, `None`
    /// once it is exhausted.
    fn next_block(&mut self, per_lead: usize) -> Option<Block>;
}

/// A recording played back (e.g. a DICOM ECG read from a file).
pub struct Replay {
    rate: SampleRate,
    calibration: [Calibration; LEAD_COUNT],
    block: Block,
    at: usize,
}

impl Replay {
    pub fn new(rate: SampleRate, calibration: [Calibration; LEAD_COUNT], block: Block) -> Replay {
        Replay {
            rate,
            calibration,
            block,
            at: 0,
        }
    }
}

impl Samples for Replay {
    fn rate(&self) -> SampleRate {
        self.rate
    }

    fn calibration(&self) -> [Calibration; LEAD_COUNT] {
        self.calibration
    }

    fn next_block(&mut self, per_lead: usize) -> Option<Block> {
        let n = per_lead.min(self.block.per_lead() - self.at);
        if n == 0 {
            return None;
        }
        let mut samples = Vec::with_capacity(n * LEAD_COUNT);
        for lead in crate::model::Lead::ALL {
            samples.extend_from_slice(&self.block.lead(lead)[self.at..self.at + n]);
        }
        self.at += n;
        Block::from_lead_major(samples)
    }
}

impl Samples for crate::simulate::Simulator {
    fn rate(&self) -> SampleRate {
        self.spec().rate
    }

    fn calibration(&self) -> [Calibration; LEAD_COUNT] {
        crate::simulate::Simulator::calibration(self)
    }

    /// Endless.
    fn next_block(&mut self, per_lead: usize) -> Option<Block> {
        Some(crate::simulate::Simulator::next_block(self, per_lead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_gives_its_samples_in_blocks_then_ends() {
        let interleaved: Vec<i16> = (0..12 * 50).map(|i| i as i16).collect();
        let whole = Block::from_interleaved(&interleaved).unwrap();
        let mut r = Replay::new(
            SampleRate::Hz500,
            [Calibration::default(); 12],
            whole.clone(),
        );
        let mut got = r.next_block(20).unwrap();
        while let Some(b) = r.next_block(20) {
            got.extend(&b);
        }
        assert_eq!(got, whole);
        assert!(r.next_block(20).is_none());
    }
}
