//! A tiny deterministic PRNG (xorshift64*): fast enough to fill gigabytes, stable across
//! platforms and versions (fixtures must be byte-identical for a given seed). Also what seeded
//! model tests draw their interleavings from.

/// xorshift64* seeded through splitmix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, with `stream` separating independent uses of the same seed.
    pub fn new(seed: u64, stream: u64) -> Self {
        let state = splitmix64(seed ^ splitmix64(stream));
        // xorshift must not start at zero.
        Rng(if state == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            state
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// Fills `buf` with random bytes, each 8-byte group AND-ed with `mask` (little endian), so a
    /// buffer of `u16` samples can be limited to `BitsStored` bits.
    pub(crate) fn fill_masked(&mut self, buf: &mut [u8], mask: u64) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&(self.next_u64() & mask).to_le_bytes());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let bytes = (self.next_u64() & mask).to_le_bytes();
            tail.copy_from_slice(&bytes[..tail.len()]);
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn deterministic_and_seed_dependent() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1, 0);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1, 0);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(2, 0);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|&x| x != 0));
    }

    #[test]
    fn fill_masked_masks_and_fills_tails() {
        let mut buf = [0u8; 13];
        Rng::new(3, 3).fill_masked(&mut buf, 0x0FFF_0FFF_0FFF_0FFF);
        for pair in buf[..12].chunks_exact(2) {
            assert!(u16::from_le_bytes([pair[0], pair[1]]) <= 0x0FFF);
        }
        assert!(buf.iter().any(|&b| b != 0));
    }
}
