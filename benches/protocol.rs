//! Micro-benchmarks of the per-byte work on yilian's data path (criterion).
//!
//! ```text
//! cargo bench --bench protocol                 # everything, < 2 minutes
//! cargo bench --bench protocol -- walker       # one group (criterion filter)
//! ```
//!
//! Every group reports bytes/s (`Throughput::Bytes`), so each figure compares directly with the
//! end-to-end throughput of `benches/e2e_throughput.rs`: anything here that is not far above
//! the QUIC figures there is a candidate bottleneck.
//!
//! * `receiver`: the sans-IO [`Receiver`] of one transfer (what the relay runs per upload and a
//!   reader per delivery): offer → accept → 1 GiB of 256 KiB `Bytes` chunks → `Finish` →
//!   `Stored`, every event polled. Measures the state machine and the `Bytes` splitting only.
//! * `frame_decoder`: control frames (`Accept`, `Checkpoint`, `Stored`) decoded from
//!   packet-sized (1200-byte) pieces, as a sender sees its reply stream.
//! * `blake3`: `Hasher::update` over 256 KiB chunks (what the sender, the relay's spool writer
//!   and every reader do to every byte), single-threaded as in the code.
//! * `walker`: `yilian_dicom::Walker::feed` + `finish` over a generated 512×512 CT slice (header
//!   parsing dominates) and over a 256 MiB multi-frame instance chunked 256 KiB (pixel data is
//!   skipped by counting, so this should be far above any I/O rate).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use yilian_proto::{
    encode_frame, Finish, FrameDecoder, InstanceRef, Offer, Receiver, ReceiverEvent, Reply,
};
use yilian_testkit::StudySpec;

const CHUNK: usize = 256 * 1024;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Deterministic, incompressible-looking bytes (xorshift).
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn offer(size: u64) -> Offer {
    Offer {
        instance: InstanceRef {
            study_uid: "1.2.826.0.1.3680043.10.1234.1.1".into(),
            sop_uid: "1.2.826.0.1.3680043.10.1234.2.4.1.1".into(),
        },
        size,
        priority: 0,
        hash: None,
        facts: None,
    }
}

/// One whole transfer through the receiver state machine; returns the data bytes seen.
fn receive(chunk: &Bytes, chunks: u64, finish: &Bytes, hash: [u8; 32]) -> u64 {
    let size = chunk.len() as u64 * chunks;
    let mut rx = Receiver::new(offer(size), FrameDecoder::new(), u64::MAX).expect("offer");
    rx.accept(0).expect("accept");
    while rx.poll_transmit().is_some() {}
    let mut seen = 0u64;
    for _ in 0..chunks {
        rx.handle_input(chunk.clone()).expect("data");
        while let Some(ev) = rx.poll_event() {
            if let ReceiverEvent::Data { bytes, .. } = ev {
                seen += bytes.len() as u64;
            }
        }
    }
    rx.handle_input(finish.clone()).expect("finish");
    match rx.poll_event() {
        Some(ReceiverEvent::Finish(h)) => assert_eq!(h, hash),
        other => panic!("expected Finish, got {other:?}"),
    }
    rx.stored(hash).expect("stored");
    while rx.poll_transmit().is_some() {}
    assert!(rx.is_done());
    seen
}

fn bench_receiver(c: &mut Criterion) {
    let chunk = Bytes::from(pseudo_random(CHUNK, 1));
    let chunks = GIB / CHUNK as u64;
    let hash = [7u8; 32];
    let finish = encode_frame(&Finish { hash });
    let mut g = c.benchmark_group("receiver");
    g.throughput(Throughput::Bytes(GIB));
    g.bench_function("1GiB_in_256KiB_chunks", |b| {
        b.iter(|| black_box(receive(black_box(&chunk), chunks, &finish, hash)))
    });
    g.finish();
}

fn bench_frame_decoder(c: &mut Criterion) {
    // A reply stream: Accept, then many checkpoints, then Stored.
    let mut stream = Vec::new();
    stream.extend_from_slice(&encode_frame(&Reply::Accept { offset: 0 }));
    let mut frames = 1u64;
    for i in 0..10_000u64 {
        stream.extend_from_slice(&encode_frame(&Reply::Checkpoint {
            durable: i * 16 * MIB,
        }));
        frames += 1;
        if i % 100 == 0 {
            stream.extend_from_slice(&encode_frame(&Reply::Stored {
                hash: [i as u8; 32],
            }));
            frames += 1;
        }
    }
    let pieces: Vec<Bytes> = stream.chunks(1200).map(Bytes::copy_from_slice).collect();
    let mut g = c.benchmark_group("frame_decoder");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function(format!("{frames}_small_frames_in_1200B_pieces"), |b| {
        b.iter(|| {
            let mut dec = FrameDecoder::new();
            let mut n = 0u64;
            for p in &pieces {
                dec.push(p.clone());
                while let Some(r) = dec.next_frame::<Reply>("reply").expect("frame") {
                    black_box(&r);
                    n += 1;
                }
            }
            assert_eq!(n, frames);
            n
        })
    });
    g.finish();
}

fn bench_blake3(c: &mut Criterion) {
    let data = pseudo_random(CHUNK, 2);
    let chunks = 64 * MIB / CHUNK as u64;
    let mut g = c.benchmark_group("blake3");
    g.throughput(Throughput::Bytes(64 * MIB));
    g.bench_function("update_64MiB_in_256KiB_chunks", |b| {
        b.iter(|| {
            let mut h = blake3::Hasher::new();
            for _ in 0..chunks {
                h.update(black_box(&data));
            }
            h.finalize()
        })
    });
    g.finish();
}

fn walk(bytes: &[u8], chunk: usize) -> yilian_dicom::Metadata {
    let mut w = yilian_dicom::Walker::new(Default::default());
    for c in bytes.chunks(chunk) {
        w.feed(c).expect("valid DICOM");
    }
    w.finish().expect("complete DICOM")
}

fn bench_walker(c: &mut Criterion) {
    // Fixtures are generated, read into memory, and the temporary folder removed at once.
    let dir = tempfile::tempdir().expect("temp dir");
    let ct = yilian_testkit::ct_series(dir.path(), &StudySpec::new("CT", 11), 1, 512, 512, 11)
        .expect("CT slice");
    let ct = std::fs::read(&ct[0].path).expect("read CT slice");
    let large = yilian_testkit::large_instance(
        &dir.path().join("large.dcm"),
        &StudySpec::new("CT", 12),
        256 * MIB,
        12,
    )
    .expect("large instance");
    let large = std::fs::read(&large.path).expect("read large instance");
    drop(dir);

    let mut g = c.benchmark_group("walker");
    g.throughput(Throughput::Bytes(ct.len() as u64));
    g.bench_function("ct_slice_512x512_chunks_256KiB", |b| {
        b.iter(|| walk(black_box(&ct), CHUNK))
    });
    g.bench_function("ct_slice_512x512_chunks_1200B", |b| {
        b.iter(|| walk(black_box(&ct), 1200))
    });
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("large_instance_256MiB_chunks_256KiB", |b| {
        b.iter(|| walk(black_box(&large), CHUNK))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_receiver, bench_frame_decoder, bench_blake3, bench_walker
}
criterion_main!(benches);
