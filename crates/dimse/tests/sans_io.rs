//! The association state machine and the command codec without sockets.

mod rng;

use bytes::{Bytes, BytesMut};
use rng::Rng;
use yilian_dimse::command_set::{element, CommandSet};
use yilian_dimse::message::command_field;
use yilian_dimse::sop_classes::{CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, VERIFICATION};
use yilian_dimse::transfer_syntaxes::{
    EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT,
    JPEG_2000_LOSSLESS, JPEG_BASELINE,
};
use yilian_dimse::*;

const UNKNOWN_CLASS: &str = "1.2.3.4.5.6.7";

fn drain(from: &mut Association) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = from.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

fn events(a: &mut Association) -> Vec<Event> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn pump(from: &mut Association, to: &mut Association) -> Vec<Event> {
    let bytes = drain(from);
    to.handle_input(&bytes);
    events(to)
}

fn request(contexts: Vec<(&str, Vec<&str>)>, roles: Vec<RoleSelection>) -> Association {
    Association::request(
        AssociationConfig::default(),
        Request {
            calling_ae: "MODALITY".into(),
            called_ae: "YILIAN".into(),
            contexts: contexts
                .into_iter()
                .map(|(a, t)| (a.to_string(), t.into_iter().map(String::from).collect()))
                .collect(),
            roles,
        },
    )
    .expect("valid request")
}

/// Requestor and acceptor, associated under `policy`.
fn associate(
    contexts: Vec<(&str, Vec<&str>)>,
    roles: Vec<RoleSelection>,
    policy: &AcceptPolicy,
) -> (Association, Association, Negotiated) {
    let mut scu = request(contexts, roles);
    let mut scp = Association::accept_incoming(AssociationConfig::default());
    let ev = pump(&mut scu, &mut scp);
    assert!(
        matches!(ev.as_slice(), [Event::AssociateRequested(_)]),
        "{ev:?}"
    );
    scp.accept(policy).expect("accept");
    let ev = pump(&mut scp, &mut scu);
    let [Event::Accepted(n)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    let n = (**n).clone();
    (scu, scp, n)
}

fn store_rq(id: u16) -> Message {
    Message::StoreRq(StoreRq {
        message_id: id,
        sop_class: CT_IMAGE_STORAGE.into(),
        sop_instance: "1.2.3.4".into(),
        priority: Priority::Medium,
        move_originator_ae: None,
        move_originator_message_id: None,
    })
}

#[test]
fn negotiation_picks_our_preference_and_rejects_with_reasons() {
    let (_, _, n) = associate(
        vec![
            (CT_IMAGE_STORAGE, vec![IMPLICIT, JPEG_BASELINE, EXPLICIT]),
            (MR_IMAGE_STORAGE, vec![JPEG_2000_LOSSLESS]),
            (UNKNOWN_CLASS, vec![IMPLICIT]),
            (CT_IMAGE_STORAGE, vec!["1.2.3.999"]),
            (VERIFICATION, vec![IMPLICIT]),
        ],
        vec![],
        &AcceptPolicy::default_storage(),
    );
    let outcome = |id: u8| {
        n.contexts
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(
        outcome(1),
        ContextOutcome::Accepted {
            transfer_syntax: EXPLICIT.into()
        },
        "Explicit VR LE preferred when proposed with Implicit"
    );
    assert_eq!(
        outcome(3),
        ContextOutcome::Accepted {
            transfer_syntax: JPEG_2000_LOSSLESS.into()
        },
        "a compressed syntax proposed alone is accepted as is"
    );
    assert_eq!(outcome(5), ContextOutcome::AbstractSyntaxNotSupported);
    assert_eq!(outcome(7), ContextOutcome::TransferSyntaxesNotSupported);
    assert_eq!(
        outcome(9),
        ContextOutcome::Accepted {
            transfer_syntax: IMPLICIT.into()
        }
    );
    assert_eq!(n.peer_max_pdu_length, DEFAULT_MAX_PDU_LENGTH);
    assert_eq!(n.peer_implementation_class_uid, IMPLEMENTATION_CLASS_UID);
    assert_eq!(n.find_context(CT_IMAGE_STORAGE, &[EXPLICIT]), Some(1));
    assert_eq!(n.find_context(CT_IMAGE_STORAGE, &[IMPLICIT]), None);
}

#[test]
fn role_selection_is_echoed_for_accepted_classes_when_allowed() {
    let roles = vec![
        RoleSelection {
            sop_class: CT_IMAGE_STORAGE.into(),
            scu: false,
            scp: true,
        },
        RoleSelection {
            sop_class: UNKNOWN_CLASS.into(),
            scu: false,
            scp: true,
        },
    ];
    let contexts = || {
        vec![
            (CT_IMAGE_STORAGE, vec![EXPLICIT]),
            (UNKNOWN_CLASS, vec![EXPLICIT]),
        ]
    };
    let (_, _, n) = associate(contexts(), roles.clone(), &AcceptPolicy::default_storage());
    assert_eq!(
        n.roles,
        vec![RoleSelection {
            sop_class: CT_IMAGE_STORAGE.into(),
            scu: false,
            scp: true
        }],
        "granted for the accepted storage class only"
    );
    let policy = AcceptPolicy::new().with(CT_IMAGE_STORAGE, &[EXPLICIT]);
    let (_, _, n) = associate(contexts(), roles, &policy);
    assert_eq!(n.roles.len(), 1);
    assert!(!n.roles[0].scp, "SCP role refused by a policy without it");
}

#[test]
fn unknown_calling_ae_is_rejected_permanently() {
    let mut scu = request(vec![(VERIFICATION, vec![IMPLICIT])], vec![]);
    let mut scp = Association::accept_incoming(AssociationConfig::default());
    let ev = pump(&mut scu, &mut scp);
    let [Event::AssociateRequested(rq)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(rq.calling_ae, "MODALITY");
    assert_eq!(rq.called_ae, "YILIAN");
    scp.reject(Reject::calling_ae_not_recognized()).unwrap();
    assert!(scp.is_closed());
    let bytes = drain(&mut scp);
    // A-ASSOCIATE-RJ: type 3, result 1 (permanent), source 1 (service user), reason 3.
    assert_eq!(&bytes[..2], &[0x03, 0x00]);
    assert_eq!(&bytes[7..10], &[1, 1, 3]);
    scu.handle_input(&bytes);
    let ev = events(&mut scu);
    assert_eq!(
        ev,
        vec![Event::Rejected(Reject::calling_ae_not_recognized())]
    );
    assert_eq!(Reject::called_ae_not_recognized().codes(), (1, 7));
}

#[test]
fn command_codec_round_trips() {
    let messages = vec![
        Message::EchoRq(EchoRq {
            message_id: 1,
            sop_class: VERIFICATION.into(),
        }),
        Message::EchoRsp(EchoRsp {
            responding_to: 1,
            sop_class: Some(VERIFICATION.into()),
            status: Status::SUCCESS,
        }),
        Message::StoreRq(StoreRq {
            message_id: 7,
            sop_class: CT_IMAGE_STORAGE.into(),
            sop_instance: "1.2.826.0.1.3680043.2.1125.1".into(),
            priority: Priority::High,
            move_originator_ae: Some("MOVER".into()),
            move_originator_message_id: Some(99),
        }),
        Message::StoreRsp(StoreRsp {
            responding_to: 7,
            sop_class: Some(CT_IMAGE_STORAGE.into()),
            sop_instance: Some("1.2.3".into()),
            status: Status::OUT_OF_RESOURCES,
            error_comment: Some("disk full".into()),
        }),
        Message::FindRq(FindRq {
            message_id: 3,
            sop_class: sop_classes::STUDY_ROOT_QR_FIND.into(),
            priority: Priority::Low,
        }),
        Message::FindRsp(FindRsp {
            responding_to: 3,
            sop_class: Some(sop_classes::STUDY_ROOT_QR_FIND.into()),
            status: Status::PENDING,
            has_identifier: true,
            error_comment: None,
        }),
        Message::GetRq(GetRq {
            message_id: 4,
            sop_class: sop_classes::PATIENT_ROOT_QR_GET.into(),
            priority: Priority::Medium,
        }),
        Message::GetRsp(RetrieveRsp {
            responding_to: 4,
            sop_class: None,
            status: Status::SUBOPERATIONS_FAILED,
            counts: SubOperations {
                remaining: Some(0),
                completed: Some(5),
                failed: Some(1),
                warning: Some(0),
            },
            has_identifier: true,
            error_comment: None,
        }),
        Message::MoveRq(MoveRq {
            message_id: 5,
            sop_class: sop_classes::STUDY_ROOT_QR_MOVE.into(),
            priority: Priority::Medium,
            destination: "READER".into(),
        }),
        Message::MoveRsp(RetrieveRsp {
            responding_to: 5,
            sop_class: Some(sop_classes::STUDY_ROOT_QR_MOVE.into()),
            status: Status::MOVE_DESTINATION_UNKNOWN,
            counts: SubOperations::default(),
            has_identifier: false,
            error_comment: None,
        }),
        Message::CancelRq(CancelRq { responding_to: 3 }),
    ];
    for m in messages {
        let bytes = m.encode();
        assert_eq!(bytes.len() % 2, 0);
        // Command Group Length = everything after its own element.
        let set = CommandSet::decode(&bytes).unwrap();
        let gl = u32::from_le_bytes(set.raw(element::GROUP_LENGTH).unwrap().try_into().unwrap());
        assert_eq!(gl as usize, bytes.len() - 12, "{}", m.name());
        assert_eq!(Message::decode(&bytes).unwrap(), m, "{}", m.name());
    }
}

#[test]
fn command_codec_tolerates_unknown_elements_and_rejects_malformed() {
    let mut set = CommandSet::new();
    set.put_us(element::COMMAND_FIELD, command_field::C_ECHO_RQ);
    set.put_us(element::MESSAGE_ID, 9);
    set.put_uid(element::AFFECTED_SOP_CLASS_UID, VERIFICATION);
    set.put_us(element::COMMAND_DATA_SET_TYPE, 0x0101);
    set.put_text(0x4000, "unknown element"); // a retired / private-ish element
    let decoded = Message::decode(&set.encode()).unwrap();
    assert!(matches!(
        decoded,
        Message::EchoRq(EchoRq { message_id: 9, .. })
    ));

    // Missing Affected SOP Instance UID in a C-STORE-RQ.
    let mut store = CommandSet::decode(&store_rq(1).encode()).unwrap();
    let bytes = {
        let mut s = CommandSet::new();
        for el in [
            element::COMMAND_FIELD,
            element::MESSAGE_ID,
            element::AFFECTED_SOP_CLASS_UID,
            element::COMMAND_DATA_SET_TYPE,
        ] {
            let raw = store.raw(el).unwrap().to_vec();
            if raw.len() == 2 {
                s.put_us(el, u16::from_le_bytes([raw[0], raw[1]]));
            } else {
                s.put_uid(
                    el,
                    std::str::from_utf8(&raw).unwrap().trim_end_matches('\0'),
                );
            }
        }
        s.encode()
    };
    assert!(matches!(
        Message::decode(&bytes),
        Err(CommandError::Missing {
            command: "C-STORE-RQ",
            ..
        })
    ));
    // A US of the wrong length.
    store.put_text(element::MESSAGE_ID, "abc");
    assert!(matches!(
        Message::from_command_set(&store),
        Err(CommandError::BadLength { .. })
    ));
    // Truncated, other group, unknown command.
    let good = store_rq(1).encode();
    assert!(matches!(
        Message::decode(&good[..good.len() - 3]),
        Err(CommandError::Truncated { .. })
    ));
    let mut other_group = good.clone();
    other_group[12] = 0x08;
    assert!(matches!(
        Message::decode(&other_group),
        Err(CommandError::NotCommandGroup { group: 8, .. })
    ));
    let mut n_action = CommandSet::new();
    n_action.put_us(element::COMMAND_FIELD, 0x0130);
    n_action.put_us(element::COMMAND_DATA_SET_TYPE, 0x0101);
    assert_eq!(
        Message::decode(&n_action.encode()),
        Err(CommandError::UnsupportedCommand(0x0130))
    );
}

/// Split a PDU stream into (type, length) headers and check each against `max`.
fn pdus(stream: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let len = u32::from_be_bytes(stream[pos + 2..pos + 6].try_into().unwrap()) as usize;
        out.push((stream[pos], len));
        pos += 6 + len;
    }
    assert_eq!(pos, stream.len());
    out
}

#[test]
fn data_is_fragmented_within_the_peers_max_and_small_pdvs_share_a_pdu() {
    let config = AssociationConfig {
        max_pdu_length: 4096,
        ..AssociationConfig::default()
    };
    let mut scu = request(vec![(CT_IMAGE_STORAGE, vec![EXPLICIT])], vec![]);
    let mut scp = Association::accept_incoming(config);
    pump(&mut scu, &mut scp);
    scp.accept(&AcceptPolicy::default_storage()).unwrap();
    pump(&mut scp, &mut scu);

    // A command and a small data set: one PDU.
    scu.send_message(1, &store_rq(1)).unwrap();
    scu.send_data(1, Bytes::from_static(b"small"), true)
        .unwrap();
    let stream = drain(&mut scu);
    assert_eq!(pdus(&stream).len(), 1, "command and data packed together");
    scp.handle_input(&stream);
    let ev = events(&mut scp);
    assert!(matches!(ev[0], Event::Command { context_id: 1, .. }));
    assert_eq!(
        ev[1],
        Event::Data {
            context_id: 1,
            bytes: Bytes::from_static(b"small"),
            last: true
        }
    );

    // A large data set: every PDU within the acceptor's 4096, data intact and in order.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    scu.send_message(1, &store_rq(2)).unwrap();
    scu.send_data(1, Bytes::from(data[..30_000].to_vec()), false)
        .unwrap();
    scu.send_data(1, Bytes::from(data[30_000..].to_vec()), true)
        .unwrap();
    let stream = drain(&mut scu);
    let headers = pdus(&stream);
    assert!(
        headers.iter().all(|(t, l)| *t == 4 && *l <= 4096),
        "{headers:?}"
    );
    assert!(headers.len() >= 100_000 / 4096);
    scp.handle_input(&stream);
    let mut got = Vec::new();
    let mut lasts = 0;
    for e in events(&mut scp) {
        if let Event::Data { bytes, last, .. } = e {
            got.extend_from_slice(&bytes);
            lasts += last as usize;
        }
    }
    assert_eq!(got, data);
    assert_eq!(lasts, 1);
}

#[test]
fn oversized_pdu_is_aborted_on_its_header() {
    let mut scp = Association::accept_incoming(AssociationConfig::default());
    // An A-ASSOCIATE-RQ header claiming 1 GiB: refused before any body arrives.
    scp.handle_input(&[0x01, 0x00, 0x40, 0x00, 0x00, 0x00]);
    let ev = events(&mut scp);
    assert_eq!(
        ev,
        vec![Event::Aborted(Aborted::ByUs(ProtocolError::PduTooLarge {
            length: 1 << 30,
            max: DEFAULT_MAX_PDU_LENGTH
        }))]
    );
    let out = drain(&mut scp);
    assert_eq!(out[0], 0x07, "A-ABORT sent");
    assert!(scp.is_closed());
    assert_eq!(scp.buffered_input(), 0);
}

fn established() -> (Association, Association) {
    let (scu, scp, _) = associate(
        vec![
            (CT_IMAGE_STORAGE, vec![EXPLICIT]),
            (MR_IMAGE_STORAGE, vec![EXPLICIT]),
        ],
        vec![],
        &AcceptPolicy::default_storage(),
    );
    (scu, scp)
}

fn pdata(pdvs: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let body: Vec<u8> = pdvs
        .iter()
        .flat_map(|(ctx, control, data)| {
            let mut v = ((data.len() + 2) as u32).to_be_bytes().to_vec();
            v.push(*ctx);
            v.push(*control);
            v.extend_from_slice(data);
            v
        })
        .collect();
    let mut out = vec![0x04, 0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn assert_aborts(scp: &mut Association, input: &[u8], expected: ProtocolError) {
    scp.handle_input(input);
    let ev = events(scp);
    assert_eq!(
        ev.last(),
        Some(&Event::Aborted(Aborted::ByUs(expected))),
        "{ev:?}"
    );
    assert_eq!(drain(scp)[0], 0x07);
}

#[test]
fn data_before_command_aborts() {
    let (_, mut scp) = established();
    assert_aborts(
        &mut scp,
        &pdata(&[(1, 0b10, b"pixels")]),
        ProtocolError::DataWithoutCommand(1),
    );
}

#[test]
fn unknown_context_aborts() {
    let (_, mut scp) = established();
    assert_aborts(
        &mut scp,
        &pdata(&[(9, 0b11, &store_rq(1).encode())]),
        ProtocolError::UnknownContext(9),
    );
}

#[test]
fn data_on_another_context_aborts() {
    let (_, mut scp) = established();
    let cmd = store_rq(1).encode();
    assert_aborts(
        &mut scp,
        &pdata(&[(1, 0b11, &cmd), (3, 0b10, b"x")]),
        ProtocolError::DataOnWrongContext {
            expected: 1,
            got: 3,
        },
    );
}

#[test]
fn oversized_command_aborts() {
    let (_, mut scp) = established();
    let chunk = vec![0u8; 60_000];
    assert_aborts(
        &mut scp,
        &[pdata(&[(1, 0b01, &chunk)]), pdata(&[(1, 0b01, &chunk)])].concat(),
        ProtocolError::CommandTooLarge {
            max: DEFAULT_MAX_COMMAND_LENGTH,
        },
    );
}

#[test]
fn undecodable_command_aborts_but_missing_field_is_reported() {
    let (_, mut scp) = established();
    assert!(matches!(
        {
            scp.handle_input(&pdata(&[(1, 0b11, &[1, 2, 3])]));
            events(&mut scp).pop()
        },
        Some(Event::Aborted(Aborted::ByUs(
            ProtocolError::MalformedCommand(_)
        )))
    ));

    let (_, mut scp) = established();
    let mut set = CommandSet::new();
    set.put_us(element::COMMAND_FIELD, command_field::C_STORE_RQ);
    set.put_us(element::MESSAGE_ID, 5);
    set.put_us(element::COMMAND_DATA_SET_TYPE, 0);
    scp.handle_input(&pdata(&[(1, 0b11, &set.encode()), (1, 0b10, b"ds")]));
    let ev = events(&mut scp);
    assert!(matches!(
        &ev[0],
        Event::BadCommand {
            message_id: Some(5),
            command_field: Some(command_field::C_STORE_RQ),
            has_data: true,
            ..
        }
    ));
    assert!(matches!(&ev[1], Event::Data { last: true, .. }));
    assert!(!scp.is_closed());
}

#[test]
fn release_both_directions_and_abort() {
    let (mut scu, mut scp) = established();
    scu.release().unwrap();
    assert_eq!(pump(&mut scu, &mut scp), vec![Event::ReleaseRequested]);
    scp.confirm_release().unwrap();
    assert_eq!(pump(&mut scp, &mut scu), vec![Event::Released]);
    assert!(scu.is_closed() && scp.is_closed());

    let (mut scu, mut scp) = established();
    scp.release().unwrap();
    assert_eq!(pump(&mut scp, &mut scu), vec![Event::ReleaseRequested]);
    scu.confirm_release().unwrap();
    assert_eq!(pump(&mut scu, &mut scp), vec![Event::Released]);

    let (mut scu, mut scp) = established();
    scu.abort();
    assert_eq!(
        pump(&mut scu, &mut scp),
        vec![Event::Aborted(Aborted::ByPeer(AbortSource::ServiceUser))]
    );
    assert!(scp.is_closed());
}

/// Found by `fuzz/fuzz_targets/dimse.rs`: an association closed by `confirm_release` (or by a
/// rejection) kept the bytes that had arrived after the A-RELEASE-RQ (or the A-ASSOCIATE-RQ),
/// although nothing more is read once closed. This replays the fuzzer's input: an A-RELEASE-RQ
/// with a 7-byte body, one more byte in the same read.
#[test]
fn release_and_reject_drop_the_input_that_follows() {
    let (mut scu, mut scp) = established();
    scu.handle_input(&[5, 0, 0, 0, 0, 7, 0, 0, 0xff, 7, 0x14, 0xff, 0x97, 0]);
    assert_eq!(events(&mut scu), vec![Event::ReleaseRequested]);
    scu.confirm_release().unwrap();
    assert!(scu.is_closed());
    assert_eq!(scu.buffered_input(), 0);
    assert_eq!(drain(&mut scu), [6, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    // The acceptor side of the same.
    scp.handle_input(&[5, 0, 0, 0, 0, 4, 0, 0, 0, 0, 4, 0]);
    assert_eq!(events(&mut scp), vec![Event::ReleaseRequested]);
    scp.confirm_release().unwrap();
    assert_eq!(scp.buffered_input(), 0);

    // Rejected with a P-DATA-TF already read behind the request.
    let mut scu = request(vec![(VERIFICATION, vec![IMPLICIT])], vec![]);
    let mut scp = Association::accept_incoming(AssociationConfig::default());
    let mut input = drain(&mut scu);
    input.extend_from_slice(&pdata(&[(1, 0b11, b"early")]));
    scp.handle_input(&input);
    assert!(matches!(
        events(&mut scp).as_slice(),
        [Event::AssociateRequested(_)]
    ));
    assert!(scp.buffered_input() > 0);
    scp.reject(Reject::busy()).unwrap();
    assert!(scp.is_closed());
    assert_eq!(scp.buffered_input(), 0);
    assert_eq!(events(&mut scp), vec![]);
}

#[test]
fn usage_errors_are_typed() {
    let (mut scu, _) = established();
    assert_eq!(
        scu.send_data(1, Bytes::new(), true),
        Err(UsageError::NoDataSetOpen(1))
    );
    assert_eq!(
        scu.send_message(7, &store_rq(1)),
        Err(UsageError::UnknownContext(7))
    );
    scu.send_message(1, &store_rq(1)).unwrap();
    assert_eq!(
        scu.send_message(1, &store_rq(2)),
        Err(UsageError::DataSetOpen(1))
    );
    assert!(matches!(
        Association::request(
            AssociationConfig::default(),
            Request {
                calling_ae: "A_TITLE_MUCH_TOO_LONG".into(),
                called_ae: "X".into(),
                contexts: vec![],
                roles: vec![],
            }
        ),
        Err(UsageError::InvalidAeTitle(_))
    ));
}

#[test]
fn random_splits_of_a_stream_give_identical_events() {
    // A whole requestor stream: RQ, then (after acceptance) echo, two stores, release.
    let mut scu = request(
        vec![
            (VERIFICATION, vec![IMPLICIT]),
            (CT_IMAGE_STORAGE, vec![EXPLICIT, IMPLICIT]),
        ],
        vec![],
    );
    let mut stream = drain(&mut scu);
    let mut reference = Association::accept_incoming(AssociationConfig::default());
    reference.handle_input(&stream);
    let mut expected = events(&mut reference);
    reference.accept(&AcceptPolicy::default_storage()).unwrap();
    scu.handle_input(&drain(&mut reference));
    events(&mut scu);
    scu.send_message(
        1,
        &Message::EchoRq(EchoRq {
            message_id: 1,
            sop_class: VERIFICATION.into(),
        }),
    )
    .unwrap();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for id in 2..4u16 {
        scu.send_message(3, &store_rq(id)).unwrap();
        let size = 50_000 + rng.below(600_000);
        let data: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
        let half = size / 2;
        scu.send_data(3, Bytes::copy_from_slice(&data[..half]), false)
            .unwrap();
        scu.send_data(3, Bytes::copy_from_slice(&data[half..]), true)
            .unwrap();
    }
    scu.release().unwrap();
    let rest = drain(&mut scu);
    reference.handle_input(&rest);
    expected.extend(events(&mut reference));
    stream.extend_from_slice(&rest);
    assert!(matches!(expected.last(), Some(Event::ReleaseRequested)));

    let rq_len = stream.len() - rest.len();
    for round in 0..40 {
        let mut scp = Association::accept_incoming(AssociationConfig::default());
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < stream.len() {
            // 1-byte feeds in some rounds, random sizes in others.
            let n = if round % 4 == 0 {
                1 + rng.below(3)
            } else {
                1 + rng.below(70_000)
            };
            let end = (pos + n).min(stream.len());
            // The acceptor decides once the request is complete.
            scp.handle_input(&stream[pos..end]);
            pos = end;
            got.extend(events(&mut scp));
            if pos >= rq_len && scp.state() == State::AwaitingDecision {
                scp.accept(&AcceptPolicy::default_storage()).unwrap();
                got.extend(events(&mut scp));
            }
        }
        // Data event boundaries are PDV boundaries, whatever the feed: compare exactly.
        assert_eq!(got, expected, "round {round}");
    }
    let _ = BytesMut::new();
}

#[test]
fn mutated_and_random_input_never_panics() {
    let mut rng = Rng(0xF00D_FACE_0000_0042);
    let valid = drain(&mut request(
        vec![
            (CT_IMAGE_STORAGE, vec![EXPLICIT, IMPLICIT]),
            (VERIFICATION, vec![IMPLICIT]),
        ],
        vec![RoleSelection {
            sop_class: CT_IMAGE_STORAGE.into(),
            scu: true,
            scp: true,
        }],
    ));
    for _ in 0..3000 {
        let mut input = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(input.len());
            input[i] = rng.next() as u8;
        }
        let mut scp = Association::accept_incoming(AssociationConfig::default());
        scp.handle_input(&input);
        let _ = events(&mut scp);
        // Random PDUs of every type, on an acceptor and on a requestor.
        let len = rng.below(200);
        let mut pdu = vec![1 + rng.below(7) as u8, 0];
        pdu.extend_from_slice(&(len as u32).to_be_bytes());
        pdu.extend((0..len).map(|_| rng.next() as u8));
        let mut scp = Association::accept_incoming(AssociationConfig::default());
        scp.handle_input(&pdu);
        let _ = events(&mut scp);
        let mut scu = request(vec![(VERIFICATION, vec![IMPLICIT])], vec![]);
        scu.handle_input(&pdu);
        let _ = events(&mut scu);
        let (_, mut est) = established();
        est.handle_input(&pdu);
        let _ = events(&mut est);
    }
}

#[test]
fn retrieve_responses_carry_sub_operation_counts() {
    let pending = RetrieveRsp {
        responding_to: 7,
        sop_class: Some(sop_classes::STUDY_ROOT_QR_GET.into()),
        status: Status::PENDING,
        counts: SubOperations::pending(3, 1, 1, 0),
        has_identifier: false,
        error_comment: None,
    };
    let bytes = Message::GetRsp(pending.clone()).encode();
    let set = CommandSet::decode(&bytes).unwrap();
    assert_eq!(set.us(element::COMMAND_FIELD).unwrap(), Some(0x8010));
    assert_eq!(set.us(element::REMAINING_SUBOPERATIONS).unwrap(), Some(3));
    assert_eq!(set.us(element::COMPLETED_SUBOPERATIONS).unwrap(), Some(1));
    assert_eq!(set.us(element::FAILED_SUBOPERATIONS).unwrap(), Some(1));
    assert_eq!(set.us(element::WARNING_SUBOPERATIONS).unwrap(), Some(0));
    assert_eq!(set.us(element::STATUS).unwrap(), Some(0xFF00));
    assert_eq!(
        set.us(element::COMMAND_DATA_SET_TYPE).unwrap(),
        Some(0x0101)
    );
    assert_eq!(Message::decode(&bytes).unwrap(), Message::GetRsp(pending));

    // Final warning with the Failed SOP Instance UID List: no remaining count, a data set.
    let last = RetrieveRsp {
        responding_to: 7,
        sop_class: Some(sop_classes::STUDY_ROOT_QR_MOVE.into()),
        status: Status::SUBOPERATIONS_FAILED,
        counts: SubOperations::final_counts(Status::SUBOPERATIONS_FAILED, 0, 2, 1, 0),
        has_identifier: true,
        error_comment: None,
    };
    let bytes = Message::MoveRsp(last.clone()).encode();
    let set = CommandSet::decode(&bytes).unwrap();
    assert_eq!(set.us(element::COMMAND_FIELD).unwrap(), Some(0x8021));
    assert_eq!(set.us(element::REMAINING_SUBOPERATIONS).unwrap(), None);
    assert_eq!(set.us(element::COMPLETED_SUBOPERATIONS).unwrap(), Some(2));
    assert_eq!(set.us(element::FAILED_SUBOPERATIONS).unwrap(), Some(1));
    assert_ne!(
        set.us(element::COMMAND_DATA_SET_TYPE).unwrap(),
        Some(0x0101)
    );
    assert_eq!(Message::decode(&bytes).unwrap(), Message::MoveRsp(last));

    // Cancel keeps the remaining count (what was not started).
    let cancel = SubOperations::final_counts(Status::CANCEL, 4, 1, 0, 0);
    assert_eq!(cancel.remaining, Some(4));
    assert_eq!(
        SubOperations::final_counts(Status::SUCCESS, 4, 1, 0, 0).remaining,
        None
    );
}

#[test]
fn failed_sop_instance_uid_list_encodings() {
    use yilian_dimse::identifier::{
        failed_sop_instance_uid_list as encode, parse_failed_sop_instance_uid_list as parse,
        MAX_LIST_LENGTH,
    };
    use yilian_dimse::transfer_syntaxes::{
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN,
    };
    let uids = vec!["1.2.3".to_string(), "1.2.45".to_string()];
    // "1.2.3\1.2.45" is 12 bytes: even, no padding.
    let (implicit, n) = encode(&uids, IMPLICIT).unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        &implicit[..],
        b"\x08\x00\x58\x00\x0c\x00\x00\x001.2.3\\1.2.45"
    );
    let (explicit, _) = encode(&uids, EXPLICIT).unwrap();
    assert_eq!(&explicit[..], b"\x08\x00\x58\x00UI\x0c\x001.2.3\\1.2.45");
    let (big, _) = encode(&uids, EXPLICIT_VR_BIG_ENDIAN).unwrap();
    assert_eq!(&big[..], b"\x00\x08\x00\x58UI\x00\x0c1.2.3\\1.2.45");
    // Encapsulated syntaxes encode data sets as Explicit VR LE.
    assert_eq!(encode(&uids, JPEG_BASELINE).unwrap().0, explicit);
    for (bytes, ts) in [
        (&implicit, IMPLICIT),
        (&explicit, EXPLICIT),
        (&big, EXPLICIT_VR_BIG_ENDIAN),
    ] {
        assert_eq!(parse(bytes, ts).unwrap(), uids);
    }
    // Odd lengths are padded with NUL (UI), which the parser drops.
    let one = vec!["1.2.3".to_string()];
    let (odd, _) = encode(&one, EXPLICIT).unwrap();
    assert_eq!(&odd[6..8], &6u16.to_le_bytes());
    assert_eq!(odd.last(), Some(&0));
    assert_eq!(parse(&odd, EXPLICIT).unwrap(), one);
    // The list is found after other elements (here QueryRetrieveLevel, CS).
    let mut with_other = b"\x08\x00\x52\x00CS\x06\x00STUDY ".to_vec();
    with_other.extend_from_slice(&explicit);
    assert_eq!(parse(&with_other, EXPLICIT).unwrap(), uids);
    // Nothing to say, or a syntax we do not write: no identifier.
    assert!(encode(&[], EXPLICIT).is_none());
    assert!(encode(&uids, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN).is_none());
    // Capped at what a UI element holds: later UIDs are left out.
    let many: Vec<String> = (0..3000)
        .map(|i| format!("1.2.826.0.1.3680043.2.1125.{i:010}"))
        .collect();
    let (capped, n) = encode(&many, EXPLICIT).unwrap();
    assert!(n < many.len() && n > 1000, "{n}");
    assert!(capped.len() - 8 <= MAX_LIST_LENGTH);
    assert_eq!(parse(&capped, EXPLICIT).unwrap(), many[..n].to_vec());
    // Truncated input is not a list.
    assert!(parse(&explicit[..10], EXPLICIT).is_none());
}
