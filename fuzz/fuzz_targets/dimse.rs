//! The DICOM Upper Layer and DIMSE parsers (`yilian_dimse`) fed bytes from an untrusted peer:
//!
//! * an acceptor [`Association`] (the relay's front door) reads the bytes as the requestor's
//!   PDU stream; it accepts the association under a storage policy as soon as it is asked,
//!   answers C-ECHO, C-STORE (once its data set ended), C-FIND, C-GET and C-MOVE, and confirms
//!   a release, exactly as a driver would;
//! * a requestor [`Association`] (the storage SCU) that sent its A-ASSOCIATE-RQ reads the bytes
//!   as the acceptor's answer, sends a C-ECHO once accepted and answers C-STOREs (C-GET);
//! * [`part10::parse_file_meta`], [`CommandSet::decode`] / [`Message::decode`] and
//!   [`identifier::parse_failed_sop_instance_uid_list`] read the bytes directly.
//!
//! Properties: nothing panics; each association is fed the stream whole and in seeded chunk
//! splits (through `handle_input`, or through `input_buffer` as the tokio driver reads), and
//! both runs report the same events and send the same PDUs (control PDUs byte for byte, P-DATA
//! as the same PDV values; how PDVs are packed into PDUs may follow the feed); what we send is
//! well framed and within the peer's maximum PDU length; a parsed file meta group parses the
//! same from the prefix it claims, and our writer's group parses back; a decoded message
//! re-encodes to a fixed point.
//!
//! The first 8 bytes of the input seed the chunk sizes; the first byte also chooses what valid
//! opening precedes the rest (nothing, an A-ASSOCIATE-RQ for the acceptor and an A-ASSOCIATE-AC
//! for the requestor, plus a C-STORE-RQ or C-ECHO-RQ command), so that the fuzzer reaches
//! P-DATA, commands and data sets at once, and whether the limits are tight.
//! Run: `cd fuzz && cargo fuzz run dimse` (nightly, or `RUSTC_BOOTSTRAP=1`).
#![no_main]

use bytes::BufMut;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use yilian_dimse::command_set::{element, CommandSet};
use yilian_dimse::sop_classes::{
    CT_IMAGE_STORAGE, PATIENT_ROOT_QR_GET, STUDY_ROOT_QR_FIND, STUDY_ROOT_QR_MOVE, VERIFICATION,
};
use yilian_dimse::transfer_syntaxes::{
    EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT,
    IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT, JPEG_BASELINE,
};
use yilian_dimse::{
    identifier, part10, AcceptPolicy, Association, AssociationConfig, EchoRq, EchoRsp, Event,
    FindRsp, Message, Priority, Request, RetrieveRsp, RoleSelection, Status, StoreRq, StoreRsp,
    SubOperations,
};

#[path = "shared/sizes.rs"]
mod sizes;
use sizes::Sizes;

/// Valid openings, built once with the crate's own encoders.
struct Openings {
    /// The requestor's A-ASSOCIATE-RQ (contexts 1 CT, 3 Verification, 5 Find, 7 Get, 9 Move).
    rq: Vec<u8>,
    /// The acceptor's A-ASSOCIATE-AC to it.
    ac: Vec<u8>,
    /// A P-DATA-TF with a C-STORE-RQ on context 1 (its data set follows).
    store: Vec<u8>,
    /// A P-DATA-TF with a C-ECHO-RQ on context 3.
    echo: Vec<u8>,
}

/// The relay's storage policy, plus the query/retrieve classes (built once: it is large).
fn policy() -> &'static AcceptPolicy {
    static POLICY: OnceLock<AcceptPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        AcceptPolicy::default_storage()
            .with(STUDY_ROOT_QR_FIND, &[EXPLICIT, IMPLICIT])
            .with(PATIENT_ROOT_QR_GET, &[EXPLICIT, IMPLICIT])
            .with(STUDY_ROOT_QR_MOVE, &[EXPLICIT, IMPLICIT])
    })
}

fn requestor(config: AssociationConfig) -> Association {
    let contexts = [
        (CT_IMAGE_STORAGE, vec![EXPLICIT, IMPLICIT, JPEG_BASELINE]),
        (VERIFICATION, vec![IMPLICIT]),
        (STUDY_ROOT_QR_FIND, vec![IMPLICIT]),
        (PATIENT_ROOT_QR_GET, vec![EXPLICIT]),
        (STUDY_ROOT_QR_MOVE, vec![IMPLICIT]),
    ];
    Association::request(
        config,
        Request {
            calling_ae: "MODALITY".into(),
            called_ae: "YILIAN".into(),
            contexts: contexts
                .iter()
                .map(|(a, t)| (a.to_string(), t.iter().map(|s| s.to_string()).collect()))
                .collect(),
            roles: vec![RoleSelection {
                sop_class: CT_IMAGE_STORAGE.into(),
                scu: true,
                scp: true,
            }],
        },
    )
    .expect("a valid request")
}

fn pdata(context_id: u8, control: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, 0];
    out.extend_from_slice(&(value.len() as u32 + 6).to_be_bytes());
    out.extend_from_slice(&(value.len() as u32 + 2).to_be_bytes());
    out.extend_from_slice(&[context_id, control]);
    out.extend_from_slice(value);
    out
}

fn openings() -> &'static Openings {
    static OPENINGS: OnceLock<Openings> = OnceLock::new();
    OPENINGS.get_or_init(|| {
        let mut scu = requestor(AssociationConfig::default());
        let rq = drain(&mut scu);
        let mut scp = Association::accept_incoming(AssociationConfig::default());
        scp.handle_input(&rq);
        assert!(matches!(
            scp.poll_event(),
            Some(Event::AssociateRequested(_))
        ));
        scp.accept(policy()).expect("accept");
        let ac = drain(&mut scp);
        let store = Message::StoreRq(StoreRq {
            message_id: 1,
            sop_class: CT_IMAGE_STORAGE.into(),
            sop_instance: "1.2.3.4".into(),
            priority: Priority::Medium,
            move_originator_ae: None,
            move_originator_message_id: None,
        });
        let echo = Message::EchoRq(EchoRq {
            message_id: 2,
            sop_class: VERIFICATION.into(),
        });
        Openings {
            rq,
            ac,
            store: pdata(1, 0b11, &store.encode()),
            echo: pdata(3, 0b11, &echo.encode()),
        }
    })
}

fn drain(a: &mut Association) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = a.poll_transmit() {
        out.extend_from_slice(&b);
    }
    out
}

/// The driver's side: what a relay (or SCU) does on each event, at once.
#[derive(Default)]
struct Driver {
    /// A request whose data set is arriving: answered after its last fragment.
    open: Option<(u8, Message)>,
}

impl Driver {
    fn react(&mut self, a: &mut Association, event: &Event) {
        match event {
            Event::AssociateRequested(_) => {
                let _ = a.accept(policy());
            }
            Event::Accepted(_) => {
                let echo = Message::EchoRq(EchoRq {
                    message_id: 1,
                    sop_class: VERIFICATION.into(),
                });
                let _ = a.send_message(3, &echo);
            }
            Event::Command {
                context_id,
                message,
            } => {
                if message.message_id().is_none() {
                    return; // a response or a C-CANCEL: nothing to answer
                }
                if message.has_data_set() {
                    self.open = Some((*context_id, message.clone()));
                } else {
                    answer(a, *context_id, message);
                }
            }
            Event::Data {
                context_id,
                last: true,
                ..
            } => {
                if let Some((id, message)) = self.open.take() {
                    if id == *context_id {
                        answer(a, id, &message);
                    }
                }
            }
            Event::ReleaseRequested => {
                let _ = a.confirm_release();
            }
            _ => {}
        }
    }
}

fn answer(a: &mut Association, context_id: u8, request: &Message) {
    let response = match request {
        Message::EchoRq(m) => Message::EchoRsp(EchoRsp {
            responding_to: m.message_id,
            sop_class: Some(m.sop_class.clone()),
            status: Status::SUCCESS,
        }),
        Message::StoreRq(m) => Message::StoreRsp(StoreRsp {
            responding_to: m.message_id,
            sop_class: Some(m.sop_class.clone()),
            sop_instance: Some(m.sop_instance.clone()),
            status: Status::SUCCESS,
            error_comment: None,
        }),
        Message::FindRq(m) => Message::FindRsp(FindRsp {
            responding_to: m.message_id,
            sop_class: Some(m.sop_class.clone()),
            status: Status::SUCCESS,
            has_identifier: false,
            error_comment: None,
        }),
        Message::GetRq(m) => Message::GetRsp(RetrieveRsp {
            responding_to: m.message_id,
            sop_class: Some(m.sop_class.clone()),
            status: Status::SUCCESS,
            counts: SubOperations::final_counts(Status::SUCCESS, 0, 0, 0, 0),
            has_identifier: false,
            error_comment: None,
        }),
        Message::MoveRq(m) => Message::MoveRsp(RetrieveRsp {
            responding_to: m.message_id,
            sop_class: Some(m.sop_class.clone()),
            status: Status::MOVE_DESTINATION_UNKNOWN,
            counts: SubOperations::default(),
            has_identifier: false,
            error_comment: Some(format!("unknown {:?}", m.destination)),
        }),
        _ => return,
    };
    let _ = a.send_message(context_id, &response);
}

/// What we sent, independent of how PDVs were packed: control PDUs byte for byte, and each
/// command or data set as (context, command?, value, ended?).
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Control(Vec<u8>),
    Value(u8, bool, Vec<u8>, bool),
}

/// Split our output into PDUs and PDVs; panics if it is not well framed or exceeds `max`.
fn sent(stream: &[u8], max: usize) -> Vec<Sent> {
    let mut out: Vec<Sent> = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        assert!(rest.len() >= 6, "truncated PDU header in our output");
        let length = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]) as usize;
        assert!(rest.len() >= 6 + length, "truncated PDU in our output");
        let (pdu, tail) = rest.split_at(6 + length);
        rest = tail;
        if pdu[0] != 0x04 {
            assert!((1..=7).contains(&pdu[0]), "PDU type {}", pdu[0]);
            out.push(Sent::Control(pdu.to_vec()));
            continue;
        }
        assert!(length <= max, "P-DATA-TF of {length} over the peer's {max}");
        let mut items = &pdu[6..];
        assert!(!items.is_empty(), "empty P-DATA-TF");
        while !items.is_empty() {
            assert!(items.len() >= 6, "truncated PDV header in our output");
            let l = u32::from_be_bytes([items[0], items[1], items[2], items[3]]) as usize;
            assert!(
                l >= 2 && items.len() >= 4 + l,
                "bad PDV length in our output"
            );
            let (context_id, control) = (items[4], items[5]);
            let value = &items[6..4 + l];
            items = &items[4 + l..];
            let (command, last) = (control & 1 != 0, control & 2 != 0);
            match out.last_mut() {
                Some(Sent::Value(c, k, v, ended))
                    if !*ended && *c == context_id && *k == command =>
                {
                    v.extend_from_slice(value);
                    *ended = last;
                }
                _ => out.push(Sent::Value(context_id, command, value.to_vec(), last)),
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Feed {
    Whole,
    /// `handle_input`, chunks from the seed.
    Chunks(u64),
    /// `input_buffer` (reads never cross a PDU), chunks from the seed.
    Buffer(u64),
}

/// Feed `stream` to `a` as `feed` says, reacting to every event; the events and what we sent.
fn run(mut a: Association, stream: &[u8], feed: Feed) -> (Vec<Event>, Vec<Sent>) {
    let mut driver = Driver::default();
    let mut events = Vec::new();
    let mut output = drain(&mut a);
    let mut poll = |a: &mut Association, output: &mut Vec<u8>| {
        while let Some(event) = a.poll_event() {
            driver.react(a, &event);
            events.push(event);
        }
        output.extend_from_slice(&drain(a));
    };
    match feed {
        Feed::Whole => {
            a.handle_input(stream);
            poll(&mut a, &mut output);
        }
        Feed::Chunks(seed) => {
            let mut sizes = Sizes(seed);
            let mut rest = stream;
            while !rest.is_empty() {
                let n = sizes.next(97).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                a.handle_input(chunk);
                poll(&mut a, &mut output);
                rest = tail;
            }
        }
        Feed::Buffer(seed) => {
            let mut sizes = Sizes(seed);
            let mut rest = stream;
            while !rest.is_empty() {
                let mut buf = a.input_buffer();
                let n = sizes.next(97).min(rest.len()).min(buf.remaining_mut());
                assert!(n > 0, "input_buffer offered no room");
                buf.put_slice(&rest[..n]);
                rest = &rest[n..];
                poll(&mut a, &mut output);
            }
        }
    }
    // (Through `input_buffer`, bytes read after the close sit there until the next read.)
    if a.is_closed() && !matches!(feed, Feed::Buffer(_)) {
        assert_eq!(a.buffered_input(), 0, "a closed association holds input");
    }
    let max = match a.negotiated().map(|n| n.peer_max_pdu_length) {
        None | Some(0) => 1 << 20,
        Some(m) => (m as usize).max(8),
    };
    (events, sent(&output, max))
}

fn associations(data: &[u8], seed: u64) {
    let o = openings();
    let config = if seed & 4 == 0 {
        AssociationConfig::default()
    } else {
        AssociationConfig {
            max_pdu_length: 1024 + ((seed >> 8) % 4096) as u32,
            max_command_length: 16 + ((seed >> 24) % 512) as usize,
            ..AssociationConfig::default()
        }
    };
    let mode = seed & 3;
    let chunked = if seed & 8 == 0 {
        Feed::Chunks(seed | 1)
    } else {
        Feed::Buffer(seed | 1)
    };

    // Acceptor: the relay's front door.
    let mut stream = Vec::new();
    if mode != 0 {
        stream.extend_from_slice(&o.rq);
    }
    match mode {
        2 => stream.extend_from_slice(&o.store),
        3 => stream.extend_from_slice(&o.echo),
        _ => {}
    }
    stream.extend_from_slice(data);
    let fresh = || Association::accept_incoming(config.clone());
    let whole = run(fresh(), &stream, Feed::Whole);
    let split = run(fresh(), &stream, chunked);
    assert_eq!(whole, split, "acceptor: whole and chunked differ");

    // Requestor: the storage SCU reading the acceptor's answer.
    let mut stream = Vec::new();
    if mode != 0 {
        stream.extend_from_slice(&o.ac);
    }
    stream.extend_from_slice(data);
    let whole = run(requestor(config.clone()), &stream, Feed::Whole);
    let split = run(requestor(config.clone()), &stream, chunked);
    assert_eq!(whole, split, "requestor: whole and chunked differ");
}

fn parsers(data: &[u8]) {
    // Part 10 framing.
    if let Ok(meta) = part10::parse_file_meta(data) {
        let end = meta.data_set_offset as usize;
        assert!(end <= data.len());
        let again = part10::parse_file_meta(&data[..end]).expect("the prefix it claims");
        assert_eq!(again, meta);
        let small = |s: &str| s.len() < 1000;
        if small(&meta.sop_class)
            && small(&meta.sop_instance)
            && small(&meta.transfer_syntax)
            && meta.source_ae.as_deref().is_none_or(small)
        {
            let written = part10::file_meta(
                &meta.sop_class,
                &meta.sop_instance,
                &meta.transfer_syntax,
                meta.source_ae.as_deref(),
            );
            let back = part10::parse_file_meta(&written).expect("our own meta group");
            assert_eq!(
                (&back.sop_class, &back.sop_instance, &back.transfer_syntax),
                (&meta.sop_class, &meta.sop_instance, &meta.transfer_syntax)
            );
            assert_eq!(back.source_ae, meta.source_ae);
            assert_eq!(back.data_set_offset as usize, written.len());
        }
    }

    // Command sets and messages.
    if let Ok(set) = CommandSet::decode(data) {
        for e in [
            element::AFFECTED_SOP_CLASS_UID,
            element::COMMAND_FIELD,
            element::MESSAGE_ID,
            element::MOVE_DESTINATION,
            element::STATUS,
            element::OFFENDING_ELEMENT,
            element::ERROR_COMMENT,
            element::AFFECTED_SOP_INSTANCE_UID,
        ] {
            let _ = (set.us(e), set.text(e), set.tags(e));
        }
        let again = CommandSet::decode(&set.encode()).expect("our own encoding");
        assert_eq!(
            again.raw(element::COMMAND_FIELD),
            set.raw(element::COMMAND_FIELD)
        );
        if let Ok(m) = Message::from_command_set(&set) {
            let once = Message::decode(&m.encode()).expect("our own encoding");
            let twice = Message::decode(&once.encode()).expect("our own encoding");
            assert_eq!(once, twice, "re-encoding is not a fixed point");
            assert_eq!(once.command_field(), m.command_field());
        }
    }

    // Identifiers (C-GET/C-MOVE final responses).
    for ts in [IMPLICIT, EXPLICIT, EXPLICIT_VR_BIG_ENDIAN, JPEG_BASELINE] {
        let Some(uids) = identifier::parse_failed_sop_instance_uid_list(data, ts) else {
            continue;
        };
        let clean =
            |u: &String| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !uids.is_empty() && uids.iter().all(clean) {
            if let Some((bytes, n)) = identifier::failed_sop_instance_uid_list(&uids, ts) {
                let back = identifier::parse_failed_sop_instance_uid_list(&bytes, ts);
                assert_eq!(back.as_deref(), Some(&uids[..n]));
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let (seed, data) = input.split_at(input.len().min(8));
    let mut seed_bytes = [0u8; 8];
    seed_bytes[..seed.len()].copy_from_slice(seed);
    let seed = u64::from_le_bytes(seed_bytes);
    associations(data, seed);
    parsers(data);
});
