//! Lossless codec for one [`Block`]: 12 leads × n `i16` samples.
//!
//! Every encoded block decodes alone: no state is carried from one block to the next, so a
//! viewer that joins late or misses a block decodes the next one.
//!
//! # Format (version 1)
//!
//! ```text
//! version      u8 = 1
//! per_lead     LEB128 (shortest form), samples per lead; decode caps it (MAX_SAMPLES_PER_LEAD)
//! if per_lead > 0:
//!   modes      6 bytes: one nibble per lead, lead 2j in the low nibble of byte j
//!              bits 0–1: temporal order p (0–3); bit 2: limb prediction (III, aVR, aVL, aVF
//!              only); bit 3: every residual of the lead is 0 (nothing in the stream)
//!   residuals  one bit stream (LSB first, zero-padded to a byte), lead by lead (but those of
//!              bit 3), in sub-blocks of 16 samples (the last one shorter): a 4-bit code, then
//!              the sub-block's values
//! ```
//!
//! Per lead, the encoder picks the mode that minimises the residuals' magnitude:
//! * **limb prediction** (derived leads only): `r = x − f(I, II)` with `f` the integer
//!   Einthoven/Goldberger relation of [`derived_limb_leads`]; on carts that compute III, aVR,
//!   aVL and aVF from I and II the residual is 0 (or ±1 when they round differently);
//!   otherwise `r = x`;
//! * **temporal prediction** of order p on `r`: `e[t] = r[t] − P_p(r)[t]` with `P_0 = 0`,
//!   `P_1 = r[t−1]`, `P_2 = 2r[t−1] − r[t−2]`, `P_3 = 3r[t−1] − 3r[t−2] + r[t−3]` (the first
//!   samples use the highest order their history allows: `e[0] = r[0]`).
//!
//! All arithmetic wraps in `i16`, so every input, `i16::MIN` and `i16::MAX` included, is exact.
//! Each residual is zigzag-mapped to `u = 0, 1, 2 …` (0, −1, 1, −2 …) and its sub-block's code
//! says how it is written:
//! * `0`: every value of the sub-block is 0, nothing more is written;
//! * `1..=14`: Rice with `k = code − 1`: `q = u >> k` in unary (`q` one bits then a zero), then
//!   the low `k` bits; a `q` of 24 or more is an escape: 24 one bits, then `u` in 16 bits;
//! * `15`: verbatim, every `u` in 16 bits.
//!
//! The encoder computes each candidate code's exact cost and always has verbatim at hand, so the
//! worst case (white noise, alternating extremes) is bounded by [`max_encoded_len`]:
//! `1 + len(per_lead) + 6 + 24·n + 6·⌈n/16⌉` bytes for n > 0 samples per lead, i.e. at most
//! 2 bytes per sample plus 4 bits per lead per 16 samples plus a header of at most 9 bytes for
//! `n ≤ 4096`.

use thiserror::Error;

use crate::model::{derived_limb_leads, Block, LEAD_COUNT};

/// The format version this build writes and reads.
pub const VERSION: u8 = 1;

/// Largest block [`decode`] accepts, in samples per lead (8.2 s at 500 Hz, 4.1 s at 1000 Hz):
/// at most 96 KiB of samples are allocated for one block. Split longer runs before encoding
/// ([`encode`] writes any size; [`decode_with_limit`] reads past the cap when a caller trusts
/// the source).
pub const MAX_SAMPLES_PER_LEAD: usize = 4096;

/// Samples per lead sharing one Rice parameter.
pub const SUB_BLOCK: usize = 16;

/// Unary prefixes this long are an escape to 16 raw bits.
const ESCAPE_Q: u32 = 24;
/// Code of an all-zero sub-block.
const CODE_ZERO: u32 = 0;
/// Code of a verbatim sub-block.
const CODE_VERBATIM: u32 = 15;
/// Largest Rice parameter.
const MAX_K: u32 = 13;
/// Mode bit: predicted from I and II.
const LIMB: u8 = 4;
/// Mode bit: every residual of the lead is zero.
const ZERO_LEAD: u8 = 8;
/// Bytes of predictor modes.
const MODE_BYTES: usize = LEAD_COUNT / 2;
/// The derived limb leads (III, aVR, aVL, aVF), by block index.
const DERIVED: std::ops::Range<usize> = 2..6;

/// Why bytes are not an encoded block.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ends before the block does (empty input included).
    #[error("encoded ECG block truncated")]
    Truncated,
    /// Written by another version of the codec.
    #[error("ECG codec version {0}, this build reads version {VERSION}")]
    Version(u8),
    /// The sample count's varint is malformed (overlong or over 64 bits).
    #[error("malformed sample count")]
    BadLength,
    /// More samples per lead than the decoder accepts.
    #[error("{per_lead} samples per lead, more than the limit of {limit}")]
    TooLarge { per_lead: u64, limit: usize },
    /// A lead's predictor nibble is not a valid mode for that lead.
    #[error("lead {lead}: invalid predictor mode {mode:#x}")]
    BadMode { lead: usize, mode: u8 },
    /// A Rice code gives a value beyond 16 bits.
    #[error("residual out of range")]
    BadResidual,
    /// Bytes remain after the block.
    #[error("{0} bytes after the encoded block")]
    TrailingBytes(usize),
    /// The padding bits of the last byte are not zero.
    #[error("non-zero padding bits")]
    BadPadding,
}

/// The largest encoding of a block with `per_lead` samples per lead.
pub fn max_encoded_len(per_lead: usize) -> usize {
    let head = 1 + varint_len(per_lead as u64);
    if per_lead == 0 {
        return head;
    }
    head + MODE_BYTES + 24 * per_lead + 6 * per_lead.div_ceil(SUB_BLOCK)
}

/// Appends the encoding of `block` to `out`.
pub fn encode(block: &Block, out: &mut Vec<u8>) {
    let n = block.per_lead();
    out.reserve(max_encoded_len(n).min(1 << 20));
    out.push(VERSION);
    put_varint(out, n as u64);
    if n == 0 {
        return;
    }
    let samples = block.lead_major();
    let lead = |l: usize| &samples[l * n..(l + 1) * n];
    let (lead_i, lead_ii) = (lead(0), lead(1));

    let mut modes = [0u8; LEAD_COUNT];
    let mut residuals: Vec<Vec<u16>> = Vec::with_capacity(LEAD_COUNT);
    let mut base = vec![0i16; n];
    let mut scratch = vec![0u16; n];
    for (l, mode) in modes.iter_mut().enumerate() {
        let x = lead(l);
        let mut best = (u64::MAX, 0u8);
        let mut best_u = vec![0u16; n];
        let spatial_options: &[bool] = if DERIVED.contains(&l) {
            &[false, true]
        } else {
            &[false]
        };
        for &spatial in spatial_options {
            if spatial {
                limb_residual(l, x, lead_i, lead_ii, &mut base);
            } else {
                base.copy_from_slice(x);
            }
            for order in 0..4u8 {
                let cost = temporal_residual(&base, order, &mut scratch);
                if cost < best.0 {
                    best = (cost, order | if spatial { LIMB } else { 0 });
                    best_u.copy_from_slice(&scratch);
                }
            }
        }
        // A zero cost means every residual is 0: the lead is the nibble alone.
        *mode = best.1 | if best.0 == 0 { ZERO_LEAD } else { 0 };
        residuals.push(best_u);
    }
    for pair in modes.chunks_exact(2) {
        out.push(pair[0] | (pair[1] << 4));
    }
    let mut w = BitWriter::new(out);
    for (r, mode) in residuals.iter().zip(modes) {
        if mode & ZERO_LEAD != 0 {
            continue;
        }
        for sub in r.chunks(SUB_BLOCK) {
            put_sub_block(&mut w, sub);
        }
    }
    w.finish();
}

/// Decodes one block, at most [`MAX_SAMPLES_PER_LEAD`] samples per lead.
pub fn decode(bytes: &[u8]) -> Result<Block, CodecError> {
    decode_with_limit(bytes, MAX_SAMPLES_PER_LEAD)
}

/// Decodes one block of at most `max_per_lead` samples per lead (what the caller lets it
/// allocate: 24 bytes per sample per lead).
pub fn decode_with_limit(bytes: &[u8], max_per_lead: usize) -> Result<Block, CodecError> {
    let (&version, rest) = bytes.split_first().ok_or(CodecError::Truncated)?;
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let (per_lead, rest) = get_varint(rest)?;
    if per_lead > max_per_lead as u64 {
        return Err(CodecError::TooLarge {
            per_lead,
            limit: max_per_lead,
        });
    }
    let n = per_lead as usize;
    if n == 0 {
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes(rest.len()));
        }
        return Ok(Block::default());
    }
    if rest.len() < MODE_BYTES {
        return Err(CodecError::Truncated);
    }
    let (mode_bytes, stream) = rest.split_at(MODE_BYTES);
    let mut modes = [0u8; LEAD_COUNT];
    for (j, &b) in mode_bytes.iter().enumerate() {
        modes[2 * j] = b & 0x0f;
        modes[2 * j + 1] = b >> 4;
    }
    for (lead, &mode) in modes.iter().enumerate() {
        if mode & LIMB != 0 && !DERIVED.contains(&lead) {
            return Err(CodecError::BadMode { lead, mode });
        }
    }
    // Every sub-block needs its 4-bit code: refuse a stream too short before allocating.
    let coded_leads = modes.iter().filter(|&&m| m & ZERO_LEAD == 0).count();
    let min_bits = coded_leads * n.div_ceil(SUB_BLOCK) * 4;
    if stream.len() * 8 < min_bits {
        return Err(CodecError::Truncated);
    }

    let mut samples = vec![0i16; LEAD_COUNT * n];
    let mut r = BitReader::new(stream);
    let mut u = [0u16; SUB_BLOCK];
    for (l, &mode) in modes.iter().enumerate() {
        let (done, rest) = samples.split_at_mut(l * n);
        let x = &mut rest[..n];
        // Residuals first, then undo the temporal, then the limb prediction.
        let coded = if mode & ZERO_LEAD != 0 { 0 } else { n };
        for start in (0..coded).step_by(SUB_BLOCK) {
            let len = SUB_BLOCK.min(n - start);
            get_sub_block(&mut r, &mut u[..len])?;
            for (dst, &v) in x[start..start + len].iter_mut().zip(&u[..len]) {
                *dst = unzigzag(v);
            }
        }
        undo_temporal(x, mode & 3);
        if mode & LIMB != 0 {
            let (lead_i, lead_ii) = (&done[..n], &done[n..2 * n]);
            for t in 0..n {
                let pred = derived_limb_leads(lead_i[t], lead_ii[t])[l - DERIVED.start];
                x[t] = x[t].wrapping_add(pred);
            }
        }
    }
    r.finish()?;
    Block::from_lead_major(samples).ok_or(CodecError::Truncated)
}

/// `out = x − f(I, II)` for derived lead `l`.
fn limb_residual(l: usize, x: &[i16], lead_i: &[i16], lead_ii: &[i16], out: &mut [i16]) {
    for t in 0..x.len() {
        let pred = derived_limb_leads(lead_i[t], lead_ii[t])[l - DERIVED.start];
        out[t] = x[t].wrapping_sub(pred);
    }
}

/// The temporal prediction of `r[t]` from its past (order reduced at the start).
#[inline]
fn predict(r: &[i16], t: usize, order: u8) -> i16 {
    match order.min(t.min(3) as u8) {
        0 => 0,
        1 => r[t - 1],
        2 => r[t - 1].wrapping_mul(2).wrapping_sub(r[t - 2]),
        _ => r[t - 1]
            .wrapping_sub(r[t - 2])
            .wrapping_mul(3)
            .wrapping_add(r[t - 3]),
    }
}

/// Zigzagged residuals of `r` under temporal order `order` into `out`; returns their sum (the
/// cost the encoder minimises).
fn temporal_residual(r: &[i16], order: u8, out: &mut [u16]) -> u64 {
    let mut sum = 0u64;
    for t in 0..r.len() {
        let u = zigzag(r[t].wrapping_sub(predict(r, t, order)));
        out[t] = u;
        sum += u64::from(u);
    }
    sum
}

/// In place: residuals → values, in time order.
fn undo_temporal(x: &mut [i16], order: u8) {
    for t in 0..x.len() {
        let p = predict(x, t, order);
        x[t] = x[t].wrapping_add(p);
    }
}

#[inline]
fn zigzag(v: i16) -> u16 {
    ((v << 1) ^ (v >> 15)) as u16
}

#[inline]
fn unzigzag(u: u16) -> i16 {
    ((u >> 1) as i16) ^ -((u & 1) as i16)
}

/// Bits to write `sub` with Rice parameter `k`.
fn rice_cost(sub: &[u16], k: u32) -> u64 {
    sub.iter()
        .map(|&u| {
            let q = u32::from(u) >> k;
            u64::from(if q < ESCAPE_Q {
                q + 1 + k
            } else {
                ESCAPE_Q + 16
            })
        })
        .sum()
}

fn put_sub_block(w: &mut BitWriter<'_>, sub: &[u16]) {
    let sum: u64 = sub.iter().map(|&u| u64::from(u)).sum();
    if sum == 0 {
        w.put(CODE_ZERO, 4);
        return;
    }
    // Rice's best k is at most about log2 of the mean (less when one outlier, escaped, lifts
    // the mean): try every k up to there, exactly; verbatim bounds the rest.
    let mean = sum / sub.len() as u64;
    let guess = 64 - mean.leading_zeros(); // bit length of the mean
    let lo = 0;
    let hi = (guess + 1).min(MAX_K);
    let mut best = (16 * sub.len() as u64, CODE_VERBATIM);
    for k in lo..=hi {
        let c = rice_cost(sub, k);
        if c < best.0 {
            best = (c, k + 1);
        }
    }
    let code = best.1;
    w.put(code, 4);
    if code == CODE_VERBATIM {
        for &u in sub {
            w.put(u32::from(u), 16);
        }
        return;
    }
    let k = code - 1;
    for &u in sub {
        let u = u32::from(u);
        let q = u >> k;
        if q < ESCAPE_Q {
            // q ones and a zero, then the low k bits.
            w.put((1 << q) - 1, q + 1);
            w.put(u & ((1 << k) - 1), k);
        } else {
            w.put((1 << ESCAPE_Q) - 1, ESCAPE_Q);
            w.put(u, 16);
        }
    }
}

fn get_sub_block(r: &mut BitReader<'_>, out: &mut [u16]) -> Result<(), CodecError> {
    let code = r.get(4)?;
    match code {
        CODE_ZERO => out.fill(0),
        CODE_VERBATIM => {
            for u in out.iter_mut() {
                *u = r.get(16)? as u16;
            }
        }
        _ => {
            let k = code - 1;
            for u in out.iter_mut() {
                let v = match r.unary()? {
                    Some(q) => (q << k) | r.get(k)?,
                    None => r.get(16)?,
                };
                *u = u16::try_from(v).map_err(|_| CodecError::BadResidual)?;
            }
        }
    }
    Ok(())
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 `u64` in its shortest form.
fn get_varint(bytes: &[u8]) -> Result<(u64, &[u8]), CodecError> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        let shift = 7 * i as u32;
        if i >= 10 || (i == 9 && b > 1) {
            return Err(CodecError::BadLength);
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(CodecError::BadLength);
            }
            return Ok((v, &bytes[i + 1..]));
        }
    }
    Err(CodecError::Truncated)
}

/// Bits LSB first into a byte vector.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            bits: 0,
        }
    }

    /// The low `n` (≤ 32) bits of `v`.
    #[inline]
    fn put(&mut self, v: u32, n: u32) {
        let mask = (1u64 << n) - 1;
        self.acc |= (u64::from(v) & mask) << self.bits;
        self.bits += n;
        if self.bits >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.bits -= 32;
        }
    }

    /// Writes the last bits, zero-padded to a byte.
    fn finish(mut self) {
        while self.bits > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits = self.bits.saturating_sub(8);
        }
    }
}

/// Bits LSB first from a byte slice.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    bits: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            bits: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        while self.bits <= 56 {
            let Some(&b) = self.data.get(self.pos) else {
                break;
            };
            self.acc |= u64::from(b) << self.bits;
            self.pos += 1;
            self.bits += 8;
        }
    }

    /// `n` (≤ 32) bits.
    #[inline]
    fn get(&mut self, n: u32) -> Result<u32, CodecError> {
        if self.bits < n {
            self.refill();
            if self.bits < n {
                return Err(CodecError::Truncated);
            }
        }
        let v = (self.acc & ((1u64 << n) - 1)) as u32;
        self.acc >>= n;
        self.bits -= n;
        Ok(v)
    }

    /// A unary count below [`ESCAPE_Q`], or `None` for the escape.
    #[inline]
    fn unary(&mut self) -> Result<Option<u32>, CodecError> {
        if self.bits <= ESCAPE_Q {
            self.refill();
        }
        // Bits above `self.bits` are zero, so this never counts past the buffer.
        let ones = self.acc.trailing_ones();
        if ones >= ESCAPE_Q {
            self.acc >>= ESCAPE_Q;
            self.bits -= ESCAPE_Q;
            return Ok(None);
        }
        if ones >= self.bits {
            return Err(CodecError::Truncated);
        }
        self.acc >>= ones + 1;
        self.bits -= ones + 1;
        Ok(Some(ones))
    }

    /// Only zero padding (less than a byte) may remain.
    fn finish(self) -> Result<(), CodecError> {
        let left = self.data.len() - self.pos + (self.bits / 8) as usize;
        if left > 0 {
            return Err(CodecError::TrailingBytes(left));
        }
        if self.acc != 0 {
            return Err(CodecError::BadPadding);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Lead, SampleRate};
    use crate::simulate::{SimSpec, Simulator};

    /// xorshift64* for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn enc(block: &Block) -> Vec<u8> {
        let mut out = Vec::new();
        encode(block, &mut out);
        out
    }

    #[track_caller]
    fn round_trip(block: &Block) -> Vec<u8> {
        let bytes = enc(block);
        assert!(
            bytes.len() <= max_encoded_len(block.per_lead()),
            "{} bytes for {} per lead, bound {}",
            bytes.len(),
            block.per_lead(),
            max_encoded_len(block.per_lead())
        );
        assert_eq!(decode(&bytes).as_ref(), Ok(block));
        bytes
    }

    fn block(per_lead: usize, mut f: impl FnMut(usize, usize) -> i16) -> Block {
        let mut v = Vec::with_capacity(per_lead * LEAD_COUNT);
        for l in 0..LEAD_COUNT {
            for t in 0..per_lead {
                v.push(f(l, t));
            }
        }
        Block::from_lead_major(v).unwrap()
    }

    fn real_block() -> (Block, u32) {
        let real = crate::testdata::real_ecg();
        assert_eq!(real.file_labels.len(), 12, "{:?}", real.file_labels);
        (
            Block::from_lead_major(real.lead_major).unwrap(),
            real.rate_hz,
        )
    }

    fn slice(b: &Block, start: usize, len: usize) -> Block {
        block(len, |l, t| b.lead(Lead::ALL[l])[start + t])
    }

    fn modes(bytes: &[u8]) -> [u8; LEAD_COUNT] {
        let (_, rest) = get_varint(&bytes[1..]).unwrap();
        let mut m = [0; LEAD_COUNT];
        for j in 0..MODE_BYTES {
            m[2 * j] = rest[j] & 15;
            m[2 * j + 1] = rest[j] >> 4;
        }
        m
    }

    #[test]
    fn simulator_round_trips_with_every_option() {
        for rate in [SampleRate::Hz500, SampleRate::Hz1000] {
            for st in [false, true] {
                for (noise, wander, mains) in [
                    (0.0, 0.0, None),
                    (10.0, 100.0, None),
                    (50.0, 300.0, Some(50.0)),
                ] {
                    for bpm in [40.0, 72.0, 180.0] {
                        let mut sim = Simulator::new(SimSpec {
                            rate,
                            heart_rate_bpm: bpm,
                            seed: 7,
                            st_elevation: st,
                            noise_uv: noise,
                            baseline_wander_uv: wander,
                            mains_hz: mains,
                        });
                        let mut raw = 0;
                        let mut coded = 0;
                        for size in [1, 20, 40, 500, 1000, MAX_SAMPLES_PER_LEAD] {
                            let b = sim.next_block(size);
                            raw += 2 * LEAD_COUNT * size;
                            coded += round_trip(&b).len();
                        }
                        // Even noisy simulations compress: 16-bit samples of far fewer bits.
                        assert!(raw > 2 * coded, "{raw} raw bytes gave {coded}");
                    }
                }
            }
        }
    }

    #[test]
    fn derived_leads_cost_almost_nothing() {
        let mut sim = Simulator::new(SimSpec::default());
        let b = sim.next_block(500);
        let bytes = round_trip(&b);
        let m = modes(&bytes);
        for l in DERIVED {
            assert_eq!(m[l] & 4, 4, "lead {l} not predicted from I and II: {m:?}");
        }
        // The same block with III…aVF zeroed costs about the same: they are free.
        let mut zeroed = b.lead_major().to_vec();
        zeroed[2 * 500..6 * 500].fill(0);
        let z = enc(&Block::from_lead_major(zeroed).unwrap());
        assert!(bytes.len() <= z.len() + 4 * 4 * 500 / 16 / 8 + 1);
    }

    #[test]
    fn real_record_round_trips_and_compresses() {
        let (b, rate) = real_block();
        assert_eq!(rate, 1000);
        assert_eq!(b.per_lead(), 10_000);
        for (size, min_ratio) in [(40, 2.5), (1000, 3.0), (MAX_SAMPLES_PER_LEAD, 3.0)] {
            let mut raw = 0;
            let mut coded = 0;
            let mut start = 0;
            while start < b.per_lead() {
                let len = size.min(b.per_lead() - start);
                let part = slice(&b, start, len);
                let bytes = round_trip(&part);
                if len == size {
                    let m = modes(&bytes);
                    for l in DERIVED {
                        assert_eq!(m[l] & 4, 4, "lead {l} at {start}: {m:?}");
                    }
                }
                raw += 24 * len;
                coded += bytes.len();
                start += len;
            }
            let ratio = raw as f64 / coded as f64;
            assert!(ratio >= min_ratio, "{size}-sample blocks: ratio {ratio:.2}");
        }
    }

    #[test]
    fn extremes_round_trip_within_the_bound() {
        let n = MAX_SAMPLES_PER_LEAD;
        let mut rng = Rng(0x1234_5678);
        let cases: Vec<Block> = vec![
            block(n, |_, _| i16::MIN),
            block(n, |_, _| i16::MAX),
            block(n, |_, t| if t % 2 == 0 { i16::MIN } else { i16::MAX }),
            block(n, |l, t| if (t + l) % 3 == 0 { i16::MAX } else { i16::MIN }),
            block(n, |_, _| 1234),
            block(n, |l, _| -(l as i16) * 1000),
            block(n, |_, t| (t as i16).wrapping_mul(4099)), // a wrapping ramp
            block(n, |_, _| rng.next() as i16),             // white noise
            block(1, |_, _| i16::MIN),
            block(1, |l, _| l as i16 * 2731 - 16000),
            block(2, |_, t| if t == 0 { i16::MAX } else { i16::MIN }),
            block(0, |_, _| 0),
            block(17, |_, _| 0),
        ];
        for b in &cases {
            round_trip(b);
        }
        assert_eq!(enc(&cases[11]), vec![VERSION, 0]);
        // A constant block costs its first samples and 4 bits per 16 samples per lead; an
        // all-zero one only its header.
        assert!(enc(&cases[4]).len() <= 9 + 6 * n / 16 + 12 * 8);
        assert_eq!(enc(&cases[12]).len(), 2 + MODE_BYTES);
    }

    #[test]
    fn thousands_of_random_blocks_round_trip() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..4000 {
            let n = match rng.below(50) {
                0..=4 => 0,
                5..=9 => 1 + rng.below(3) as usize,
                10 => 1000 + rng.below(3097) as usize,
                _ => rng.below(300) as usize,
            };
            let kind = rng.below(6);
            let scale = 1u64 << rng.below(17);
            let mut walk = [0i16; LEAD_COUNT];
            let mut b = block(n, |l, _| {
                let step = (rng.below(2 * scale + 1) as i64 - scale as i64) as i16;
                match kind {
                    0 => rng.next() as i16,
                    1 => step,
                    2 | 3 => {
                        walk[l] = walk[l].wrapping_add(step);
                        walk[l]
                    }
                    4 => [i16::MIN, i16::MAX, 0, -1, 1][rng.below(5) as usize],
                    _ => (rng.below(7) as i16 - 3).wrapping_mul(scale as i16),
                }
            });
            if kind == 3 && n > 0 {
                // Derived limb leads as a cart computes them, give or take one.
                let mut v = b.lead_major().to_vec();
                for t in 0..n {
                    let d = derived_limb_leads(v[t], v[n + t]);
                    for (k, &x) in d.iter().enumerate() {
                        let jitter = rng.below(3) as i16 - 1;
                        v[(2 + k) * n + t] = x.wrapping_add(jitter);
                    }
                }
                b = Block::from_lead_major(v).unwrap();
            }
            let bytes = round_trip(&b);
            if case % 20 == 0 && bytes.len() < 4000 {
                for cut in 0..bytes.len() {
                    assert!(decode(&bytes[..cut]).is_err(), "case {case} cut {cut}");
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut sim = Simulator::new(SimSpec {
            st_elevation: true,
            ..SimSpec::default()
        });
        let (real, _) = real_block();
        let blocks = [
            sim.next_block(20),
            sim.next_block(500),
            slice(&real, 3000, 40),
            block(33, |l, t| if (t * 7 + l) % 5 == 0 { i16::MIN } else { 3 }),
            block(1, |_, _| 0),
            block(0, |_, _| 0),
        ];
        for b in &blocks {
            let bytes = round_trip(b);
            for cut in 0..bytes.len() {
                let err = decode(&bytes[..cut]).expect_err("a truncated block decoded");
                assert!(
                    matches!(err, CodecError::Truncated | CodecError::BadPadding),
                    "cut {cut} of {}: {err:?}",
                    bytes.len()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), Err(CodecError::TrailingBytes(1)));
        }
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        assert_eq!(decode(&[]), Err(CodecError::Truncated));
        assert_eq!(decode(&[2, 0]), Err(CodecError::Version(2)));
        assert_eq!(decode(&[0, 0]), Err(CodecError::Version(0)));
        assert_eq!(decode(&[VERSION]), Err(CodecError::Truncated));
        assert_eq!(decode(&[VERSION, 0x80]), Err(CodecError::Truncated));
        assert_eq!(decode(&[VERSION, 0x80, 0x00]), Err(CodecError::BadLength));
        // 4097 per lead: refused before anything is allocated.
        assert_eq!(
            decode(&[VERSION, 0x81, 0x20]),
            Err(CodecError::TooLarge {
                per_lead: 4097,
                limit: MAX_SAMPLES_PER_LEAD
            })
        );
        let huge = [
            VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            decode(&huge),
            Err(CodecError::TooLarge {
                per_lead: u64::MAX,
                ..
            })
        ));
        let over = [
            VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert_eq!(decode(&over), Err(CodecError::BadLength));
        // 4096 per lead claimed, a few bytes given: truncated, not a 96 KiB allocation.
        assert_eq!(
            decode(&[VERSION, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0]),
            Err(CodecError::Truncated)
        );

        let b = block(16, |l, t| (l * 16 + t) as i16);
        let good = enc(&b);
        // Limb prediction on lead I (low nibble of the first mode byte) or V6.
        let mut bad = good.clone();
        bad[2] |= LIMB;
        assert_eq!(
            decode(&bad),
            Err(CodecError::BadMode {
                lead: 0,
                mode: bad[2] & 15
            })
        );
        let mut bad = good.clone();
        bad[7] |= LIMB << 4;
        assert!(matches!(
            decode(&bad),
            Err(CodecError::BadMode { lead: 11, .. })
        ));
        // A lead marked all-zero leaves its bits to the next: the stream no longer fits.
        let mut bad = good.clone();
        bad[2] |= ZERO_LEAD;
        assert!(decode(&bad).is_err());

        // A Rice code whose value exceeds 16 bits: k = 13, q = 23.
        let mut w_out = vec![VERSION, 1, 0, 0, 0, 0, 0, 0];
        let mut w = BitWriter::new(&mut w_out);
        w.put(14, 4);
        w.put((1 << 23) - 1, 24);
        w.put(0, 13);
        w.finish();
        assert_eq!(decode(&w_out), Err(CodecError::BadResidual));

        // Non-zero padding.
        let mut padded = enc(&block(1, |_, _| 0));
        assert_eq!(padded.len(), 2 + MODE_BYTES); // every lead all-zero
        let mut odd = enc(&block(1, |l, _| if l == 11 { 1 } else { 0 }));
        // V6 alone: code 1 (k = 0) and "110" for u = 2: 7 bits, 1 padding bit.
        assert_eq!(odd.len(), 2 + MODE_BYTES + 1);
        *odd.last_mut().unwrap() |= 0x80;
        assert_eq!(decode(&odd), Err(CodecError::BadPadding));
        padded.push(0);
        assert_eq!(decode(&padded), Err(CodecError::TrailingBytes(1)));
    }

    #[test]
    fn larger_blocks_need_a_larger_limit() {
        let mut sim = Simulator::new(SimSpec::default());
        let b = sim.next_block(MAX_SAMPLES_PER_LEAD + 1);
        let bytes = enc(&b);
        assert!(matches!(decode(&bytes), Err(CodecError::TooLarge { .. })));
        assert_eq!(decode_with_limit(&bytes, 5000), Ok(b));
    }

    #[test]
    fn blocks_decode_alone() {
        let mut sim = Simulator::new(SimSpec::default());
        let encoded: Vec<(Block, Vec<u8>)> = (0..10)
            .map(|_| {
                let b = sim.next_block(20);
                let e = enc(&b);
                (b, e)
            })
            .collect();
        // Any one, in any order.
        for (b, e) in encoded.iter().rev().step_by(3) {
            assert_eq!(decode(e).as_ref(), Ok(b));
        }
    }
}
