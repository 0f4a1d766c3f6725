//! The viewers' ring under many interleavings: a seeded model of frames pushed (of varying
//! lengths), viewers reading at random speeds (some stalling for long stretches), viewers
//! joining late, and the end of the session.
//!
//! Properties, for every seed: each viewer gets frames in strictly increasing order, each with
//! the bytes pushed for it; it is skipped ahead only by a `Missed` that counts exactly the
//! frames it did not get (received + missed = every frame from its first to the newest); after
//! the end every viewer reaches `Ended` and its last frame is the newest one; a viewer that
//! reads after every push misses nothing; a viewer past its join backlog is never handed a
//! frame further behind the newest than the lag allowed (plus the frames' own lengths).

use bytes::Bytes;
use yilian_ecg::fanout::{Cursor, Fanout, Next};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Viewer {
    cursor: Cursor,
    /// Frames pushed when it joined: those are its backlog.
    joined_at: u64,
    got: Vec<u64>,
    /// Frames counted as missed after its first frame (those before it are not in `got`'s span).
    missed: u64,
    /// Every frame counted as missed.
    skipped: u64,
    ended: bool,
    /// Reads per step (0: stalled).
    speed: u64,
    eager: bool,
}

/// The model's frames: (first sample, samples) by seq.
struct Frames(Vec<(u64, u64)>);

fn bytes_of(seq: u64) -> Bytes {
    Bytes::from(seq.to_be_bytes().to_vec())
}

fn read(fan: &Fanout, v: &mut Viewer, frames: &Frames, lag: u64, seed: u64) {
    let mut budget = v.speed;
    while budget > 0 {
        budget -= 1;
        match fan.next(&mut v.cursor) {
            Next::Frame(b) => {
                let seq = u64::from_be_bytes(b[..8].try_into().unwrap());
                assert_eq!(b, bytes_of(seq), "seed {seed}");
                if let Some(&last) = v.got.last() {
                    assert!(seq > last, "seed {seed}: {seq} after {last}");
                }
                if seq >= v.joined_at {
                    let &(nf, nn) = frames.0.last().unwrap();
                    let (f, n) = frames.0[seq as usize];
                    assert!(
                        nf + nn - f <= lag + nn + n,
                        "seed {seed}: a live viewer was handed frame {seq}, too far behind"
                    );
                }
                v.got.push(seq);
            }
            Next::Missed(n) => {
                assert!(n > 0, "seed {seed}");
                if !v.got.is_empty() {
                    v.missed += n;
                }
                v.skipped += n;
            }
            Next::Wait => break,
            Next::Ended(complete) => {
                assert!(complete, "seed {seed}");
                v.ended = true;
                break;
            }
        }
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed);
    // At least the most one step pushes (3 frames of 60): a viewer reading after every push
    // is then never behind.
    let lag = 180 + rng.below(200);
    // The ring keeps at least that much (10 s against 1 s in the relay).
    let keep = lag + rng.below(400);
    let mut fan = Fanout::new(keep, lag);
    let mut frames = Frames(Vec::new());
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut sample = 0u64;
    for step in 0..50 + rng.below(400) {
        for _ in 0..rng.below(4) {
            let n = 1 + rng.below(60);
            let seq = frames.0.len() as u64;
            fan.push(seq, sample, n, bytes_of(seq));
            frames.0.push((sample, n));
            sample += n;
        }
        if viewers.len() < 6 && (step == 0 || rng.below(20) == 0) {
            let eager = viewers.is_empty();
            viewers.push(Viewer {
                cursor: fan.join(),
                joined_at: frames.0.len() as u64,
                got: Vec::new(),
                missed: 0,
                skipped: 0,
                ended: false,
                speed: if eager { u64::MAX } else { rng.below(4) },
                eager,
            });
        }
        for v in viewers.iter_mut() {
            if !v.eager && rng.below(10) == 0 {
                v.speed = rng.below(4);
            }
            read(&fan, v, &frames, lag, seed);
        }
    }
    fan.end(true);
    let pushed = frames.0.len() as u64;
    for v in viewers.iter_mut() {
        v.speed = u64::MAX;
        read(&fan, v, &frames, lag, seed);
        assert!(
            v.ended,
            "seed {seed}: a viewer that read everything sees the end"
        );
        if let (Some(&first), Some(&last)) = (v.got.first(), v.got.last()) {
            assert_eq!(last, pushed - 1, "seed {seed}: it ends at the newest frame");
            assert_eq!(
                v.got.len() as u64 + v.missed,
                last - first + 1,
                "seed {seed}: received + missed = every frame from its first"
            );
        }
        if v.eager {
            assert_eq!(v.skipped, 0, "seed {seed}: an eager viewer misses nothing");
            if let Some(&first) = v.got.first() {
                assert_eq!(v.got, (first..pushed).collect::<Vec<_>>(), "seed {seed}");
            }
        }
    }
}

#[test]
fn viewers_at_any_speed_get_ordered_frames_and_count_what_they_missed() {
    let seeds: u64 = std::env::var("YILIAN_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    for seed in 0..seeds {
        run(seed);
    }
}
