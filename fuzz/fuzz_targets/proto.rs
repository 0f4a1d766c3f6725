//! yilian/1 decoding from an untrusted peer: control frames, and both transfer state machines
//! fed arbitrary bytes in arbitrary splits, and the relay's datagrams as a sender reads them.
//! Must never panic, never buffer more than a frame.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use yilian_proto::{FrameDecoder, InstanceRef, Offer, Receiver, RelayDatagram, Request, Sender};

fuzz_target!(|input: &[u8]| {
    let Some((&split, data)) = input.split_first() else { return };
    let cut = (split as usize).min(data.len());
    let (a, b) = data.split_at(cut);

    // A datagram from the relay (the uplink yield order), as `send` reads it.
    if let Ok(d) = RelayDatagram::decode(data) {
        assert_eq!(RelayDatagram::decode(&d.encode()), Ok(d));
    }

    // The first frame of a stream, as the relay reads it.
    let mut d = FrameDecoder::new();
    d.push(Bytes::copy_from_slice(a));
    let _ = d.next_frame::<Request>("request");
    d.push(Bytes::copy_from_slice(b));
    while let Ok(Some(_)) = d.next_frame::<Request>("request") {}
    let _ = d.take_rest();

    // A relay receiving an offered transfer, accepted at `split`, then arbitrary input.
    let offer = Offer {
        instance: InstanceRef { study_uid: "1.2".into(), sop_uid: "1.2.3".into() },
        size: u64::from(split) * 7,
        priority: 0,
        hash: None,
        facts: None,
    };
    if let Ok(mut r) = Receiver::new(offer.clone(), FrameDecoder::new(), 1 << 20) {
        let _ = r.accept(u64::from(split).min(offer.size));
        for part in [a, b] {
            if r.handle_input(Bytes::copy_from_slice(part)).is_err() {
                break;
            }
            while r.poll_event().is_some() {}
        }
        let _ = r.handle_end();
        while r.poll_transmit().is_some() {}
    }

    // A sender reading arbitrary replies.
    let mut s = Sender::new(offer);
    for part in [a, b] {
        if s.handle_input(Bytes::copy_from_slice(part)).is_err() {
            break;
        }
        while s.poll_event().is_some() {}
    }
    let _ = s.data_sent(u64::from(split));
    let _ = s.finish([0; 32]);
});
