//! Hold / Resume: a receiver pauses a sender (urgent traffic from the same site needs the link).

use bytes::Bytes;
use yilian_proto::{
    FrameDecoder, InstanceRef, Offer, Receiver, ReceiverEvent, Request, Sender, SenderEvent,
};

fn offer(size: u64) -> Offer {
    Offer {
        instance: InstanceRef {
            study_uid: "1.2.3".into(),
            sop_uid: "1.2.3.4".into(),
        },
        size,
        priority: 0,
        hash: None,
        facts: None,
    }
}

/// Move every queued frame of `s` into `r`'s decoder (the offer first).
fn start(size: u64) -> (Sender, Receiver) {
    let mut s = Sender::new(offer(size));
    let mut dec = FrameDecoder::new();
    while let Some(b) = s.poll_transmit() {
        dec.push(b);
    }
    let Some(Request::Offer(o)) = dec.next_frame::<Request>("offer").unwrap() else {
        panic!("no offer");
    };
    let r = Receiver::new(o, dec, u64::MAX).unwrap();
    (s, r)
}

fn to_sender(r: &mut Receiver, s: &mut Sender) -> Vec<SenderEvent> {
    while let Some(b) = r.poll_transmit() {
        s.handle_input(b).unwrap();
    }
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn hold_pauses_and_resume_continues_exactly_once_each() {
    let (mut s, mut r) = start(10);
    r.accept(0).unwrap();
    assert_eq!(
        to_sender(&mut r, &mut s),
        [SenderEvent::Accepted { offset: 0 }]
    );
    s.data_sent(4).unwrap();
    r.handle_input(Bytes::from_static(b"abcd")).unwrap();
    r.hold(true);
    r.hold(true); // no second frame
    assert!(r.is_holding());
    assert_eq!(to_sender(&mut r, &mut s), [SenderEvent::Held]);
    assert!(s.is_held());
    r.hold(false);
    r.hold(false);
    assert_eq!(to_sender(&mut r, &mut s), [SenderEvent::Resumed]);
    assert!(!s.is_held());
    // The transfer completes normally afterwards.
    s.data_sent(6).unwrap();
    r.handle_input(Bytes::from_static(b"efghij")).unwrap();
    let h = *blake3::hash(b"abcdefghij").as_bytes();
    s.finish(h).unwrap();
    while let Some(b) = s.poll_transmit() {
        r.handle_input(b).unwrap();
    }
    let evs: Vec<ReceiverEvent> = std::iter::from_fn(|| r.poll_event()).collect();
    assert!(matches!(evs.last(), Some(ReceiverEvent::Finish(x)) if *x == h));
    r.stored(h).unwrap();
    assert_eq!(to_sender(&mut r, &mut s), [SenderEvent::Stored { hash: h }]);
    // Once done, hold is a no-op: nothing is sent.
    r.hold(true);
    assert!(r.poll_transmit().is_none());
}

#[test]
fn hold_before_accept_is_kept_until_resume() {
    let (mut s, mut r) = start(3);
    r.hold(true);
    r.accept(0).unwrap();
    assert_eq!(
        to_sender(&mut r, &mut s),
        [SenderEvent::Held, SenderEvent::Accepted { offset: 0 }]
    );
    assert!(s.is_held());
    r.hold(false);
    assert_eq!(to_sender(&mut r, &mut s), [SenderEvent::Resumed]);
}
