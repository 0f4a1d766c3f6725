//! # yilian/1, sans-IO
//!
//! This crate is the wire protocol of yilian and nothing else: no sockets, no tokio, no clock.
//! Like `quinn-proto`, it is a set of state machines that take bytes in (`handle_input`), give
//! bytes out (`poll_transmit`) and report what happened (`poll_event`); a thin driver (the relay,
//! the `send` and `read` clients) moves bytes between these machines and QUIC streams.
//!
//! ## The model
//! QUIC already gives reliable, ordered, flow-controlled streams. What it does not give is
//! *durability across connections*: a township uplink drops, a relay is restarted, a sender is
//! killed. yilian/1 adds exactly that, per DICOM instance:
//!
//! * Every instance moves on its **own bidirectional stream** (many in parallel), as a *transfer*:
//!   ```text
//!   sender                                   receiver
//!   Request::Offer{instance, size, hash?, facts?} →
//!                                         ← Reply::Accept{offset} | Have{hash} | Refused
//!                                         ← Reply::Hold | Resume     (any time: urgent first)
//!   raw bytes [offset, size)              →
//!                                         ← Reply::Checkpoint{durable}   (any number, any time)
//!   Finish{hash}                          →
//!                                         ← Reply::Stored{hash} | Refused
//!   ```
//!   The receiver chooses `offset`: how much of this instance it already holds durably from an
//!   earlier, interrupted attempt. A re-sent instance that is already stored is answered `Have`.
//!   Raw bytes are not framed: after `Accept`, exactly `size - offset` bytes follow, so the
//!   driver can move them without copying (`bytes::Bytes` in, slices out). An uploader
//!   declares the header facts routing needs (`facts`: modality, SOP class, body part) so the
//!   relay can hold routine uploads for an urgent one before their data crosses the link.
//! * The same transfer is used both ways: a device uploading to the relay ([`Sender`] on the
//!   device, [`Receiver`] on the relay) and the relay delivering to a reader ([`Sender`] on the
//!   relay, [`Receiver`] on the reader). Cut-through delivery works because the offer carries
//!   the size and the final hash travels in `Finish`, which the relay sends only once its own copy
//!   is verified and durable.
//! * Other streams begin with [`Request::Manifest`] (the sender says which instances make a
//!   study; large studies travel in pieces, see [`encode_manifest`]) or [`Request::Subscribe`]
//!   (a reader asks for everything routed to it; the relay answers with [`Notice`]s on that
//!   stream: the backlog is dealt with, naming what it could not deliver in this session
//!   ([`NotDelivered`]); a study is complete).
//!
//! * The relay may send a device small **datagrams** outside any stream ([`RelayDatagram`]):
//!   today the uplink yield order, a lease renewed while the device's site has an urgent live
//!   ECG, so that its uploads keep the township uplink's queue empty.
//!
//! Control frames are `u32` big-endian length + a postcard-encoded message, at most
//! [`MAX_FRAME_LEN`] bytes. Every decoder rejects oversized or malformed frames with a typed
//! [`ProtoError`] instead of allocating or panicking.

mod datagram;
mod error;
mod frame;
mod manifest;
mod message;
mod receiver;
mod sender;

pub use datagram::{RelayDatagram, MAX_RELAY_DATAGRAM};
pub use error::ProtoError;
pub use frame::{encode_frame, FrameDecoder, MAX_FRAME_LEN};
pub use manifest::{
    encode_manifest, encode_manifest_reply, ManifestAnswer, ManifestAssembler, ManifestError,
    ManifestOutcome, MANIFEST_PART_UIDS,
};
pub use message::{
    Finish, Hash, InstanceFacts, InstanceRef, Manifest, ManifestPart, ManifestReply, NotDelivered,
    Notice, Offer, Refusal, RefuseCode, Reply, Request, Subscribe,
};
pub use receiver::{Receiver, ReceiverEvent};
pub use sender::{Sender, SenderEvent};

/// Whether `uid` is a valid DICOM UID: digits and dots, at most 64 characters. Every peer checks
/// UIDs it receives with this before using them (they become file names).
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.')
}

/// ALPN protocol identifier of this protocol version.
pub const ALPN: &[u8] = b"yilian/1";
