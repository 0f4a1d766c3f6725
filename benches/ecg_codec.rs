//! The live-ECG block codec (`yilian_ecg::codec`) against DEFLATE, on a real record and on
//! simulated ECG.
//!
//! ```text
//! cargo bench --bench ecg_codec            # < 1 minute
//! ```
//! Data: pydicom 3.0.2's `waveform_ecg.dcm` (real 12-lead, 1000 Hz, 10 s; `pip install
//! pydicom==3.0.2`, or `YILIAN_ECG_DCM=path`), and 60 s of `yilian_ecg::Simulator` output
//! (plain and anterior STEMI, at 500 and 1000 Hz, default noise and wander), each cut into
//! blocks of 40 ms and of 1 s.
//!
//! Per data set and block size: the compression ratio (raw `i16` bytes / encoded bytes), encode
//! and decode speed in MB/s of raw samples (best of several passes over every block), and the
//! same for DEFLATE (flate2, level 6, miniz_oxide) on each block's raw little-endian `i16`
//! bytes (lead-major, as the block holds them), measured in the same run; `ours/deflate` is our
//! ratio over DEFLATE's. Every block is checked to round-trip through both.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use flate2::Compression;
use yilian_ecg::{codec, Block, Lead, SampleRate, SimSpec, Simulator};

#[path = "../crates/ecg/src/testdata.rs"]
mod testdata;

/// Best seconds per call of `f` over ≥ 3 calls and ≥ `budget` in all.
fn best_time(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 3 || start.elapsed() < budget {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

fn cut(signal: &Block, per_block: usize) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < signal.per_lead() {
        let len = per_block.min(signal.per_lead() - start);
        let mut v = Vec::with_capacity(len * 12);
        for lead in Lead::ALL {
            v.extend_from_slice(&signal.lead(lead)[start..start + len]);
        }
        blocks.extend(Block::from_lead_major(v));
        start += len;
    }
    blocks
}

fn le_bytes(b: &Block) -> Vec<u8> {
    b.lead_major()
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect()
}

fn deflate(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
    e.write_all(raw).expect("deflate into a Vec");
    e.finish().expect("deflate into a Vec")
}

fn inflate(z: &[u8], out: &mut Vec<u8>) {
    out.clear();
    flate2::read::DeflateDecoder::new(z)
        .read_to_end(out)
        .expect("inflate");
}

struct Row {
    ratio: f64,
    enc_mbs: f64,
    dec_mbs: f64,
}

fn run(name: &str, signal: &Block, rate_hz: usize) {
    for (label, per_block) in [("40 ms", rate_hz / 25), ("1 s", rate_hz)] {
        let blocks = cut(signal, per_block);
        let raw_bytes: usize = blocks.iter().map(|b| b.lead_major().len() * 2).sum();
        let mb = raw_bytes as f64 / 1e6;
        let budget = Duration::from_millis(300);

        // Ours.
        let encoded: Vec<Vec<u8>> = blocks
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                codec::encode(b, &mut out);
                out
            })
            .collect();
        for (b, e) in blocks.iter().zip(&encoded) {
            assert_eq!(codec::decode(e).as_ref(), Ok(b), "{name}: round trip");
        }
        let ours_bytes: usize = encoded.iter().map(Vec::len).sum();
        let mut out = Vec::new();
        let enc = best_time(budget, || {
            for b in &blocks {
                out.clear();
                codec::encode(black_box(b), &mut out);
                black_box(&out);
            }
        });
        let dec = best_time(budget, || {
            for e in &encoded {
                black_box(codec::decode(black_box(e)).ok());
            }
        });
        let ours = Row {
            ratio: raw_bytes as f64 / ours_bytes as f64,
            enc_mbs: mb / enc,
            dec_mbs: mb / dec,
        };

        // DEFLATE on the raw bytes of each block.
        let raws: Vec<Vec<u8>> = blocks.iter().map(le_bytes).collect();
        let zs: Vec<Vec<u8>> = raws.iter().map(|r| deflate(r)).collect();
        let mut back = Vec::new();
        for (r, z) in raws.iter().zip(&zs) {
            inflate(z, &mut back);
            assert_eq!(&back, r, "{name}: inflate");
        }
        let z_bytes: usize = zs.iter().map(Vec::len).sum();
        let enc = best_time(budget, || {
            for r in &raws {
                black_box(deflate(black_box(r)));
            }
        });
        let dec = best_time(budget, || {
            for z in &zs {
                inflate(black_box(z), &mut back);
                black_box(&back);
            }
        });
        let reference = Row {
            ratio: raw_bytes as f64 / z_bytes as f64,
            enc_mbs: mb / enc,
            dec_mbs: mb / dec,
        };
        println!(
            "{name:<22} {label:>5} {:>6} | ours {:>5.2}× {:>7.1} {:>7.1} | deflate {:>5.2}× {:>6.1} {:>7.1} | ours/deflate {:>4.2}",
            blocks.len(),
            ours.ratio,
            ours.enc_mbs,
            ours.dec_mbs,
            reference.ratio,
            reference.enc_mbs,
            reference.dec_mbs,
            ours.ratio / reference.ratio,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bench" => {}
            "-h" | "--help" => {
                println!("cargo bench --bench ecg_codec   (no options: encodes and decodes real and synthetic ECG blocks, ours against deflate-6)");
                return;
            }
            other => {
                eprintln!(
                    "unknown option {other}: cargo bench --bench ecg_codec takes none (try --help)"
                );
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    println!(
        "{:<22} {:>5} {:>6} | ours ratio  enc MB/s dec MB/s | deflate-6 ratio enc MB/s dec MB/s | ratio of ratios",
        "data", "block", "blocks"
    );
    let real = testdata::real_ecg();
    let real_block = Block::from_lead_major(real.lead_major).expect("12 leads");
    run(
        &format!(
            "real {} Hz {} s",
            real.rate_hz,
            real.per_lead / real.rate_hz as usize
        ),
        &real_block,
        real.rate_hz as usize,
    );
    for rate in [SampleRate::Hz500, SampleRate::Hz1000] {
        for st in [false, true] {
            let spec = SimSpec {
                rate,
                st_elevation: st,
                ..SimSpec::default()
            };
            let fs = rate.hz() as usize;
            let signal = Simulator::new(spec).next_block(60 * fs);
            let name = format!("sim {} Hz 60 s{}", fs, if st { " STEMI" } else { "" });
            run(&name, &signal, fs);
        }
    }
    println!("({:.1} s)", started.elapsed().as_secs_f64());
}
