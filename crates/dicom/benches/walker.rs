//! Throughput of the walker: skipping a large native Pixel Data value in 64 KiB chunks (the
//! relay's hot path), and walking a header-heavy stream (many small elements and sequences).
//! Run with `cargo bench -p yilian-dicom`. The skip benchmark should be far above 2 GB/s: each
//! 64 KiB chunk inside a value costs O(1).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use yilian_dicom::{Limits, Walker};

#[path = "../tests/common/build.rs"]
#[allow(dead_code)]
mod build;

use build::{header, item, part10, routing, Ds, Enc, EXPLICIT_LE, PIXEL_DATA};

const CHUNK: usize = 64 * 1024;
const PIXEL_LEN: u32 = 512 * 1024 * 1024;

fn skip_pixel_data(c: &mut Criterion) {
    let mut head = part10(EXPLICIT_LE, &routing(Enc::ExplicitLe).bytes());
    head.extend(header(Enc::ExplicitLe, PIXEL_DATA, "OW", PIXEL_LEN));
    let chunk = vec![0x5Au8; CHUNK];
    let mut group = c.benchmark_group("walker");
    group.throughput(Throughput::Bytes(u64::from(PIXEL_LEN)));
    group.bench_function("skip 512 MiB pixel data in 64 KiB chunks", |b| {
        b.iter(|| {
            let mut w = Walker::new(Limits::default());
            w.feed(&head).expect("header");
            for _ in 0..(PIXEL_LEN as usize / CHUNK) {
                w.feed(black_box(&chunk)).expect("pixels");
            }
            black_box(w.finish().expect("complete"))
        })
    });
    group.finish();
}

fn header_heavy(c: &mut Criterion) {
    let mut ds = routing(Enc::ExplicitLe);
    for i in 0..2000u16 {
        let inner = Ds::new(Enc::ExplicitLe)
            .text((0x0008, 0x1150), "UI", "1.2.840.10008.5.1.4.1.1.2")
            .text((0x0008, 0x1155), "UI", "1.2.3.4.5.6.7.8.9");
        ds = ds
            .text((0x0029, 0x1000 + i), "LO", "a private text value")
            .seq(
                (0x0031, 0x1000 + i),
                vec![item(inner, i % 2 == 0)],
                i % 3 == 0,
            );
    }
    let file = part10(EXPLICIT_LE, &ds.pixels(1024).bytes());
    let mut group = c.benchmark_group("walker");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.bench_function("header-heavy stream in 16 KiB chunks", |b| {
        b.iter(|| {
            let mut w = Walker::new(Limits::default());
            for chunk in file.chunks(16 * 1024) {
                w.feed(black_box(chunk)).expect("chunk");
            }
            black_box(w.finish().expect("complete"))
        })
    });
    group.finish();
}

criterion_group!(benches, skip_pixel_data, header_heavy);
criterion_main!(benches);
