//! Chunking invariance: feeding a stream in chunks of 1, 7, 4096 or random sizes gives exactly
//! the result (metadata or error, with its offset and message) of feeding it whole.

mod common;

use common::build::*;
use common::pydicom::sample;
use common::{outcome, walk, walk_chunked, walk_random};

fn assert_invariant(bytes: &[u8], what: &str) -> String {
    let whole = outcome(&walk(bytes));
    for size in [1, 7, 4096] {
        assert_eq!(
            outcome(&walk_chunked(bytes, size)),
            whole,
            "{what}: chunks of {size}"
        );
    }
    for seed in 1..=8 {
        let max = [2, 16, 300, 70_000][seed as usize % 4];
        assert_eq!(
            outcome(&walk_random(bytes, seed, max)),
            whole,
            "{what}: random chunks, seed {seed}, up to {max}"
        );
    }
    whole
}

fn synthetic() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for ts in [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED] {
        out.push((format!("sample {ts}"), sample_file(ts)));
        let enc = Enc::of(if ts == DEFLATED { EXPLICIT_LE } else { ts });
        let inner = Ds::new(enc).text((0x0008, 0x0100), "SH", "CODE");
        let nested = Ds::new(enc).seq((0x0040, 0xA730), vec![item(inner, false)], true);
        let ds = routing(enc)
            .seq(
                (0x0008, 0x1140),
                vec![item(nested.clone(), true), item(nested, false)],
                false,
            )
            .pixels(3000);
        out.push((
            format!("nested, no group length, {ts}"),
            part10_with(&Meta::new(ts).without_group_length(), &ds.bytes()),
        ));
    }
    let frames: [&[u8]; 2] = [&[1; 5000], &[2; 30]];
    let ds = routing(Enc::ExplicitLe).encapsulated(PIXEL_DATA, &frames);
    out.push(("encapsulated".into(), part10(JPEG_BASELINE, &ds.bytes())));
    out
}

fn sample_file(ts: &str) -> Vec<u8> {
    common::build::sample(ts, 20_000)
}

#[test]
fn synthetic_streams_and_their_truncations() {
    for (what, bytes) in synthetic() {
        let whole = assert_invariant(&bytes, &what);
        assert!(whole.starts_with("Ok("), "{what}: {whole}");
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            let r = assert_invariant(&bytes[..cut], &format!("{what} cut at {cut}"));
            assert!(r.starts_with("Err("), "{what} cut at {cut}: {r}");
        }
    }
}

#[test]
fn pydicom_samples_valid_and_broken() {
    for name in [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "image_dfl.dcm",
        "examples_ybr_color.dcm",
        "waveform_ecg.dcm",
        "liver_1frame.dcm",
        "chrX2.dcm",
        "MR_truncated.dcm",
        "badVR.dcm",
        "no_meta.dcm",
        "SC_rgb_jpeg.dcm",
        "nested_priv_SQ.dcm",
        "UN_sequence.dcm",
    ] {
        let bytes = std::fs::read(sample(name)).expect("read sample");
        assert_invariant(&bytes, name);
    }
}
