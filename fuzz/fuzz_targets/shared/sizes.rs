//! Chunk sizes from a seed (xorshift64*), shared by the targets that feed in splits:
//! `#[path = "shared/sizes.rs"] mod sizes;`.

/// xorshift64*: chunk sizes from the seed.
pub struct Sizes(pub u64);

impl Sizes {
    /// The next size, in 1..=max.
    pub fn next(&mut self, max: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % max.max(1) as u64) as usize + 1
    }
}
