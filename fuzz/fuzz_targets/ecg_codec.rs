//! `yilian_ecg::codec`: arbitrary bytes decoded as an encoded block, and read as samples to
//! encode.
//!
//! Properties: `decode` never panics; a block it accepts re-encodes (within
//! `max_encoded_len`) and decodes to itself; the input read as little-endian `i16` samples
//! (lead-major, cut to a multiple of 12 and to `MAX_SAMPLES_PER_LEAD` per lead) round-trips
//! through `encode` → `decode` within the bound, and every truncation of that encoding is
//! refused.
//! Run: `cd fuzz && cargo fuzz run ecg_codec` (nightly, or `RUSTC_BOOTSTRAP=1`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use yilian_ecg::codec::{decode, encode, max_encoded_len, MAX_SAMPLES_PER_LEAD};
use yilian_ecg::{Block, LEAD_COUNT};

fuzz_target!(|input: &[u8]| {
    // 1. As an encoded block.
    if let Ok(block) = decode(input) {
        let mut again = Vec::new();
        encode(&block, &mut again);
        assert!(again.len() <= max_encoded_len(block.per_lead()));
        assert_eq!(
            decode(&again).as_ref(),
            Ok(&block),
            "re-encoding changed the block"
        );
    }

    // 2. As samples.
    let samples: Vec<i16> = input
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let per_lead = (samples.len() / LEAD_COUNT).min(MAX_SAMPLES_PER_LEAD);
    let Some(block) = Block::from_lead_major(samples[..per_lead * LEAD_COUNT].to_vec()) else {
        return;
    };
    let mut bytes = Vec::new();
    encode(&block, &mut bytes);
    assert!(bytes.len() <= max_encoded_len(per_lead), "over the bound");
    assert_eq!(decode(&bytes).as_ref(), Ok(&block), "round trip");
    // A few truncations (all of them for small blocks).
    let step = (bytes.len() / 64).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "a truncation at {cut} decoded"
        );
    }
});
