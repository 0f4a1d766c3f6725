//! A live ECG session as the relay sees it: arbitrary bytes drive a session, its viewers' ring
//! and its recorder.
//!
//! Two readings of the input, chosen by the first byte's low bit: the cart's frames as raw
//! control frames (`SourceMsg`, cut in chunks of the size the second byte says), or a valid
//! `Start` followed by frames built from the bytes (sample counts, sequence and sample
//! numbers sometimes wrong, payloads sometimes corrupted) to reach deep into the checks.
//!
//! Frames may also come as datagrams (the live path), before their stream copy and ahead of it.
//!
//! Properties: nothing panics; the recorder's objects follow each other without gaps, each
//! within its sample limit, and decode to exactly the samples the session accepted (the
//! stream's, whatever the datagrams did); without datagrams, a viewer that reads after every
//! frame gets every accepted frame.
//! Run: `cd fuzz && cargo fuzz run ecg_session` (nightly, or `RUSTC_BOOTSTRAP=1`).
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use yilian_ecg::fanout::Next;
use yilian_ecg::live::{Live, LiveConfig, Routing};
use yilian_ecg::session::check_start;
use yilian_ecg::wire::{Frame, SessionId, SourceMsg, Start};
use yilian_ecg::{codec, Block, Calibration, SampleRate, LEAD_COUNT};
use yilian_proto::FrameDecoder;

fn valid_start() -> Start {
    Start::standard(
        SessionId([1; 16]),
        SampleRate::Hz500,
        &[Calibration::default(); LEAD_COUNT],
    )
}

/// Frames built from `bytes`: mostly valid, sometimes not.
fn built_frames(bytes: &[u8]) -> Vec<SourceMsg> {
    let mut out = Vec::new();
    let (mut seq, mut sample) = (0u64, 0u64);
    let mut rest = bytes;
    while let Some((&op, tail)) = rest.split_first() {
        let n = usize::from(op % 40) + 1;
        let take = tail.len().min(n * 2);
        let mut samples: Vec<i16> = tail[..take]
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        samples.resize(n * LEAD_COUNT, op as i16);
        rest = &tail[take..];
        let block = Block::from_lead_major(samples).expect("a multiple of 12");
        let mut data = Vec::new();
        codec::encode(&block, &mut data);
        if op & 0x40 != 0 && !data.is_empty() {
            let i = usize::from(op) % data.len();
            data[i] ^= 0x5a;
        }
        let frame_seq = if op & 0x80 != 0 { seq + 1 } else { seq };
        let first = if op == 0x3f { sample + 1 } else { sample };
        out.push(SourceMsg::Frame(Frame {
            seq: frame_seq,
            first_sample: first,
            device_time_us: first * 2000,
            data,
        }));
        seq += 1;
        sample += n as u64;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let msgs: Vec<SourceMsg> = if mode & 1 == 0 {
        let Some((&chunk, rest)) = rest.split_first() else {
            return;
        };
        let mut dec = FrameDecoder::new();
        for piece in rest.chunks(usize::from(chunk).max(1)) {
            dec.push(Bytes::copy_from_slice(piece));
        }
        std::iter::from_fn(|| dec.next_frame::<SourceMsg>("ecg").ok().flatten()).collect()
    } else {
        let mut v = vec![SourceMsg::Start(Box::new(valid_start()))];
        v.extend(built_frames(rest));
        v
    };
    let mut msgs = msgs.into_iter();
    let Some(SourceMsg::Start(start)) = msgs.next() else {
        return;
    };
    let Ok(accepted) = check_start(&start) else {
        return;
    };
    let routing = Routing {
        site: "township-a".into(),
        device: "cart".into(),
        destinations: vec!["county/cardiology".into()],
        readers: vec!["county-cardiology".into()],
        urgent: false,
    };
    let config = LiveConfig {
        max_object: Duration::from_secs(1),
        ..LiveConfig::default()
    };
    let max_object = u64::from(accepted.rate.hz());
    let mut live = Live::new(accepted, routing, &config, Duration::ZERO);
    let mut viewer = live.join();
    let mut accepted_samples = Block::default();
    let (mut frames, mut seen) = (0u64, 0u64);
    let mut now = Duration::ZERO;
    let mut segments = Vec::new();
    // Bits 1 and 2 of the first byte: each frame also comes as a datagram before its stream
    // copy, and the next frame's datagram comes ahead of it.
    let (datagrams, ahead) = (mode & 2 != 0, mode & 4 != 0);
    let msgs: Vec<SourceMsg> = msgs.collect();
    for (i, msg) in msgs.iter().enumerate() {
        let SourceMsg::Frame(f) = msg.clone() else { break };
        now += Duration::from_millis(40);
        if datagrams {
            live.datagram(f.clone());
        }
        if ahead {
            if let Some(SourceMsg::Frame(next)) = msgs.get(i + 1) {
                live.datagram(next.clone());
            }
        }
        let data = f.data.clone();
        match live.frame(f, now) {
            Ok(cut) => {
                if live.session().next_seq() > frames {
                    frames += 1;
                    let b = codec::decode(&data).expect("an accepted frame decodes");
                    if accepted_samples.is_empty() {
                        accepted_samples = b;
                    } else {
                        accepted_samples.extend(&b);
                    }
                }
                segments.extend(cut);
            }
            Err(_) => break,
        }
        while let Next::Frame(_) = live.next(&mut viewer) {
            seen += 1;
        }
    }
    segments.extend(live.end());
    let mut recorded = Block::default();
    let mut next_seq = None;
    for s in &segments {
        if let Some(n) = next_seq {
            assert_eq!(s.first_seq, n, "objects cover the frames without gaps");
        }
        next_seq = Some(s.end_seq);
        assert!(s.samples <= max_object, "within the object limit");
        let b = s.decode().expect("accepted frames decode");
        assert_eq!(b.per_lead() as u64, s.samples);
        if recorded.is_empty() {
            recorded = b;
        } else {
            recorded.extend(&b);
        }
    }
    assert_eq!(recorded, accepted_samples, "the recording is what was accepted");
    if !datagrams && !ahead {
        assert_eq!(seen, frames, "a viewer reading everything gets every frame");
    }
});
