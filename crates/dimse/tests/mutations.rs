//! The properties of `fuzz/fuzz_targets/dimse.rs` without libFuzzer, cheap enough for CI:
//! seeded mutations (bit flips, overwritten, inserted and duplicated bytes, truncations,
//! changed PDU and PDV length fields) of a valid association + C-ECHO + C-STORE + release
//! stream, fed to an acceptor (and of the acceptor's answers, fed to a requestor) whole and in
//! seeded random splits, through `handle_input` or `input_buffer`. Nothing may panic, and the
//! split runs must report exactly the events of the whole run.

mod rng;

use bytes::{BufMut, Bytes};
use rng::Rng;
use std::time::Instant;
use yilian_dimse::sop_classes::{CT_IMAGE_STORAGE, VERIFICATION};
use yilian_dimse::transfer_syntaxes::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use yilian_dimse::*;

fn drain(a: &mut Association) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = a.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

fn acceptor_config() -> AssociationConfig {
    AssociationConfig {
        max_pdu_length: 4096,
        ..AssociationConfig::default()
    }
}

fn requestor() -> Association {
    Association::request(
        AssociationConfig::default(),
        Request {
            calling_ae: "MODALITY".into(),
            called_ae: "YILIAN".into(),
            contexts: vec![
                (
                    CT_IMAGE_STORAGE.into(),
                    vec![
                        EXPLICIT_VR_LITTLE_ENDIAN.into(),
                        IMPLICIT_VR_LITTLE_ENDIAN.into(),
                    ],
                ),
                (VERIFICATION.into(), vec![IMPLICIT_VR_LITTLE_ENDIAN.into()]),
            ],
            roles: vec![RoleSelection {
                sop_class: CT_IMAGE_STORAGE.into(),
                scu: true,
                scp: true,
            }],
        },
    )
    .expect("a valid request")
}

/// The requestor's stream (RQ, C-ECHO-RQ, C-STORE-RQ with a 10 KB data set in PDUs within the
/// acceptor's 4 KiB, A-RELEASE-RQ) and the acceptor's (AC, C-ECHO-RSP, C-STORE-RSP,
/// A-RELEASE-RP), as a real exchange produces them.
fn valid_streams(policy: &AcceptPolicy) -> (Vec<u8>, Vec<u8>) {
    let mut scu = requestor();
    let mut scp = Association::accept_incoming(acceptor_config());
    let mut to_scp = drain(&mut scu);
    scp.handle_input(&to_scp);
    assert!(matches!(
        scp.poll_event(),
        Some(Event::AssociateRequested(_))
    ));
    scp.accept(policy).expect("accept");
    let mut to_scu = drain(&mut scp);
    scu.handle_input(&to_scu);
    assert!(matches!(scu.poll_event(), Some(Event::Accepted(_))));

    let echo = Message::EchoRq(EchoRq {
        message_id: 1,
        sop_class: VERIFICATION.into(),
    });
    scu.send_message(3, &echo).unwrap();
    let store = Message::StoreRq(StoreRq {
        message_id: 2,
        sop_class: CT_IMAGE_STORAGE.into(),
        sop_instance: "1.2.826.0.1.3680043.2.1125.1".into(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    });
    scu.send_message(1, &store).unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    scu.send_data(1, Bytes::copy_from_slice(&data[..3000]), false)
        .unwrap();
    scu.send_data(1, Bytes::copy_from_slice(&data[3000..]), true)
        .unwrap();
    scu.release().unwrap();
    let rest = drain(&mut scu);
    to_scp.extend_from_slice(&rest);
    scp.handle_input(&rest);
    let events: Vec<Event> = std::iter::from_fn(|| scp.poll_event()).collect();
    assert!(matches!(events.last(), Some(Event::ReleaseRequested)));

    scp.send_message(
        3,
        &Message::EchoRsp(EchoRsp {
            responding_to: 1,
            sop_class: Some(VERIFICATION.into()),
            status: Status::SUCCESS,
        }),
    )
    .unwrap();
    scp.send_message(
        1,
        &Message::StoreRsp(StoreRsp {
            responding_to: 2,
            sop_class: Some(CT_IMAGE_STORAGE.into()),
            sop_instance: Some("1.2.826.0.1.3680043.2.1125.1".into()),
            status: Status::SUCCESS,
            error_comment: None,
        }),
    )
    .unwrap();
    scp.confirm_release().unwrap();
    to_scu.extend_from_slice(&drain(&mut scp));
    (to_scp, to_scu)
}

/// Offsets of the length fields (PDU lengths, and PDV item lengths inside P-DATA-TF).
fn length_fields(stream: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 6 <= stream.len() {
        out.push(pos + 2);
        let len = u32::from_be_bytes(stream[pos + 2..pos + 6].try_into().unwrap()) as usize;
        if stream[pos] == 0x04 {
            let mut item = pos + 6;
            while item + 4 <= pos + 6 + len {
                out.push(item);
                item += 4 + u32::from_be_bytes(stream[item..item + 4].try_into().unwrap()) as usize;
            }
        }
        pos += 6 + len;
    }
    out
}

fn mutate(valid: &[u8], lengths: &[usize], rng: &mut Rng) -> Vec<u8> {
    let mut s = valid.to_vec();
    for _ in 0..1 + rng.below(3) {
        if s.is_empty() {
            break;
        }
        let i = rng.below(s.len());
        match rng.below(7) {
            0 => s[i] ^= 1 << rng.below(8),
            1 => s[i] = rng.next() as u8,
            2 => s.truncate(i),
            3 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                s.splice(i..i, bytes);
            }
            4 => {
                let n = 1 + rng.below(64.min(s.len() - i));
                let copy = s[i..i + n].to_vec();
                let at = rng.below(s.len() + 1);
                s.splice(at..at, copy);
            }
            _ => {
                // A length field: a near miss, a small value or anything.
                let at = lengths[rng.below(lengths.len())];
                if at + 4 > s.len() {
                    continue;
                }
                let old = u32::from_be_bytes(s[at..at + 4].try_into().unwrap());
                let new = match rng.below(4) {
                    0 => old.wrapping_add(1 + rng.below(8) as u32),
                    1 => old.wrapping_sub(1 + rng.below(8) as u32),
                    2 => rng.below(8) as u32,
                    _ => rng.next() as u32,
                };
                s[at..at + 4].copy_from_slice(&new.to_be_bytes());
            }
        }
    }
    s
}

/// Feed `stream` whole (`chunks` empty) or in the given chunk sizes, accepting and confirming
/// a release as soon as asked; the events.
fn run(
    mut a: Association,
    stream: &[u8],
    chunks: &[usize],
    buffer: bool,
    policy: &AcceptPolicy,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut poll = |a: &mut Association| {
        while let Some(e) = a.poll_event() {
            match &e {
                Event::AssociateRequested(_) => {
                    let _ = a.accept(policy);
                }
                Event::ReleaseRequested => {
                    let _ = a.confirm_release();
                }
                _ => {}
            }
            events.push(e);
        }
        drain(a);
    };
    if chunks.is_empty() {
        a.handle_input(stream);
        poll(&mut a);
        return events;
    }
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let mut n = (*sizes.next().unwrap()).min(rest.len());
        if buffer {
            let mut input = a.input_buffer();
            n = n.min(input.remaining_mut());
            input.put_slice(&rest[..n]);
        } else {
            a.handle_input(&rest[..n]);
        }
        rest = &rest[n..];
        poll(&mut a);
    }
    events
}

#[test]
fn mutated_streams_never_panic_and_split_like_whole() {
    let started = Instant::now();
    let policy = AcceptPolicy::default_storage();
    let (to_scp, to_scu) = valid_streams(&policy);
    let mut rng = Rng(0xD1C0_4D15_EA5E_0001);
    let mut aborted = 0;
    for round in 0..4000 {
        // Three rounds in four: the requestor's stream to an acceptor; else the answer.
        let to_acceptor = round % 4 != 3;
        let valid = if to_acceptor { &to_scp } else { &to_scu };
        let stream = mutate(valid, &length_fields(valid), &mut rng);
        let fresh = || {
            if to_acceptor {
                Association::accept_incoming(acceptor_config())
            } else {
                let mut a = requestor();
                drain(&mut a);
                a
            }
        };
        let whole = run(fresh(), &stream, &[], false, &policy);
        let max = [2, 7, 97, 1500, 9000][rng.below(5)];
        let chunks: Vec<usize> = (0..8).map(|_| 1 + rng.below(max)).collect();
        let split = run(fresh(), &stream, &chunks, round % 2 == 1, &policy);
        assert_eq!(whole, split, "round {round}, chunks {chunks:?}");
        aborted += usize::from(matches!(whole.last(), Some(Event::Aborted(_))));
    }
    // The mutations do reach the checks (and most streams still get somewhere).
    assert!(aborted > 400, "{aborted} aborted");
    eprintln!("4000 mutated streams in {:?}", started.elapsed());
}
