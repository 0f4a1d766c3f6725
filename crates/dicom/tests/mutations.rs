//! ~20,000 deterministic pseudo-random mutations (bit flips, hostile lengths, cuts, splices,
//! insertions) of valid streams: the walker must never panic, and must give the same result
//! whatever the chunking. (The cargo-fuzz target in `fuzz/` does the same, deeper.)

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::build::*;
use common::prng::Prng;
use common::{outcome, walk, walk_random};

const MUTATIONS_PER_BASE: usize = 4000;

fn bases() -> Vec<(&'static str, Vec<u8>)> {
    let nested = |enc: Enc| {
        let leaf = Ds::new(enc).text((0x0008, 0x0100), "SH", "CODE");
        let mid = Ds::new(enc).seq((0x0040, 0xA730), vec![item(leaf, true)], false);
        routing(enc).seq(
            (0x0008, 0x1140),
            vec![item(mid.clone(), false), item(mid, true)],
            true,
        )
    };
    let frames: [&[u8]; 3] = [&[0xFF, 0xD8, 0, 1], &[7; 40], &[0xFF, 0xD9]];
    vec![
        (
            "explicit LE",
            part10(EXPLICIT_LE, &nested(Enc::ExplicitLe).pixels(64).bytes()),
        ),
        (
            "implicit LE",
            part10(IMPLICIT_LE, &nested(Enc::Implicit).pixels(64).bytes()),
        ),
        (
            "explicit BE",
            part10(EXPLICIT_BE, &nested(Enc::ExplicitBe).pixels(64).bytes()),
        ),
        (
            "encapsulated, no group length",
            part10_with(
                &Meta::new(JPEG_BASELINE).without_group_length(),
                &nested(Enc::ExplicitLe)
                    .un_seq((0x0009, 0x1010), vec![item(Ds::new(Enc::Implicit), false)])
                    .encapsulated(PIXEL_DATA, &frames)
                    .bytes(),
            ),
        ),
        (
            "deflated",
            part10(DEFLATED, &nested(Enc::ExplicitLe).pixels(64).bytes()),
        ),
    ]
}

/// Values that stress length and tag handling.
const INTERESTING: [u32; 10] = [
    0,
    1,
    0xFFFF_FFFF,
    0xFFFF_FFFE,
    0x7FFF_FFFF,
    0xE000_FFFE,
    0xE00D_FFFE,
    0xE0DD_FFFE,
    0x0010_7FE0,
    0x0000_0102,
];

fn mutate(base: &[u8], rng: &mut Prng) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..rng.range(1, 3) {
        let len = b.len().max(1);
        match rng.below(7) {
            0 => {
                for _ in 0..rng.range(1, 4) {
                    let i = rng.below(len);
                    if let Some(byte) = b.get_mut(i) {
                        *byte ^= 1 << rng.below(8);
                    }
                }
            }
            1 => {
                let i = rng.below(len);
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                for (k, byte) in v.iter().enumerate() {
                    if let Some(slot) = b.get_mut(i + k) {
                        *slot = *byte;
                    }
                }
            }
            2 => b.truncate(rng.below(len)),
            3 => {
                // Splice: overwrite with a copy of another range.
                let (from, to) = (rng.below(len), rng.below(len));
                let n = rng.range(1, 64).min(b.len().saturating_sub(from.max(to)));
                let piece = b[from..from + n].to_vec();
                b[to..to + n].copy_from_slice(&piece);
            }
            4 => {
                // Insert a copy of another range.
                let (from, at) = (rng.below(len), rng.below(len));
                let n = rng.range(1, 64).min(b.len().saturating_sub(from));
                let piece = b[from..from + n].to_vec();
                let at = at.min(b.len());
                b.splice(at..at, piece);
            }
            5 => {
                let at = rng.below(len).min(b.len());
                let n = rng.range(1, 32).min(b.len() - at);
                b.drain(at..at + n);
            }
            _ => {
                let at = rng.below(len).min(b.len());
                let noise: Vec<u8> = (0..rng.range(1, 16))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                b.splice(at..at, noise);
            }
        }
    }
    b
}

#[test]
fn mutated_streams_never_panic_and_ignore_chunking() {
    let mut rng = Prng::new(0x5EED_D1C0);
    let (mut accepted, mut refused) = (0usize, 0usize);
    for (name, base) in bases() {
        assert!(walk(&base).is_ok(), "{name}: the base stream is valid");
        for n in 0..MUTATIONS_PER_BASE {
            let mutant = mutate(&base, &mut rng);
            let seed = rng.next_u64();
            let result = catch_unwind(AssertUnwindSafe(|| {
                (
                    outcome(&walk(&mutant)),
                    outcome(&walk_random(&mutant, seed, 64)),
                )
            }));
            let Ok((whole, chunked)) = result else {
                panic!("{name} mutant #{n} panicked; bytes: {mutant:02X?}");
            };
            if name == "deflated" {
                // Inside a deflate stream an error may surface from the inflater or from the
                // structure first depending on the chunking; accept/refuse must still agree.
                assert_eq!(
                    whole.starts_with("Ok"),
                    chunked.starts_with("Ok"),
                    "{name} #{n}"
                );
            } else {
                assert_eq!(whole, chunked, "{name} mutant #{n}: {mutant:02X?}");
            }
            if whole.starts_with("Ok") {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    assert_eq!(accepted + refused, 5 * MUTATIONS_PER_BASE);
    // Most mutations break something; some (e.g. a flipped bit in a value) do not.
    assert!(refused > accepted, "accepted {accepted}, refused {refused}");
    assert!(accepted > 100, "accepted {accepted}");
}
