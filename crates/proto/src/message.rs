use serde::{Deserialize, Serialize};
use std::fmt;

/// BLAKE3 digest of a whole instance file.
pub type Hash = [u8; 32];

/// Names one DICOM instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceRef {
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// SOP Instance UID (0008,0018).
    pub sop_uid: String,
}

/// First frame of a transfer: what the sender wants to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub instance: InstanceRef,
    /// Size of the whole file in bytes.
    pub size: u64,
    /// 0 = routine, 1 = urgent. A request only: the relay's rules may raise it.
    pub priority: u8,
    /// The whole file's hash, when the sender knows it up front (the relay knows it when it
    /// delivers a stored instance; an uploader learns it while streaming and sends it in Finish).
    pub hash: Option<Hash>,
    /// What the sender read from the instance's header, so that the relay can tell an urgent
    /// upload from a routine one before any data crosses the link (urgent first).
    pub facts: Option<InstanceFacts>,
}

/// Header facts an uploader declares with its offer. They only steer the link until the relay
/// has read the header itself: routing, storage and delivery always use the header received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFacts {
    /// Modality (0008,0060), e.g. `CT`; `None` if the file has none (common for Secondary
    /// Capture in the wild).
    pub modality: Option<String>,
    /// SOP Class UID (0008,0016), if present.
    pub sop_class_uid: Option<String>,
    /// Body Part Examined (0018,0015), if present.
    pub body_part: Option<String>,
}

/// Last frame of a transfer from the sender: the hash of all bytes `[0, size)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finish {
    pub hash: Hash,
}

/// A study manifest: which instances make the study, as the sender knows it.
///
/// A study may hold thousands of instances, more than one frame carries, so a manifest
/// travels in pieces (see `manifest.rs`): this header, then [`ManifestPart`] frames carrying
/// exactly `instances` SOP Instance UIDs in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub study_uid: String,
    /// How many SOP Instance UIDs the following [`ManifestPart`] frames carry.
    pub instances: u32,
}

/// One piece of a manifest's SOP Instance UIDs (at most [`MANIFEST_PART_UIDS`] of them).
///
/// [`MANIFEST_PART_UIDS`]: crate::MANIFEST_PART_UIDS
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPart {
    pub sop_uids: Vec<String>,
}

/// The relay's answer to a manifest: zero or more [`ManifestReply::Missing`] pieces, then one
/// final frame ([`ManifestReply::Complete`], [`ManifestReply::Pending`] or
/// [`ManifestReply::Refused`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManifestReply {
    /// A piece of the list of instances the relay still misses.
    Missing { sop_uids: Vec<String> },
    /// Final: every instance of the study's manifest is stored; readers are told the study is
    /// complete.
    Complete { instances: u32 },
    /// Final: the relay still misses `missing` instances (listed in the `Missing` pieces).
    Pending { missing: u32 },
    /// Final: the manifest was not accepted.
    Refused(Refusal),
}

impl ManifestReply {
    /// Whether this is the last frame of the answer.
    pub fn is_final(&self) -> bool {
        !matches!(self, ManifestReply::Missing { .. })
    }
}

/// A reader's subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// The reader will leave once the backlog is delivered.
    pub once: bool,
}

/// What the relay tells a subscribed reader on the subscription stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// The reader's backlog (what waited in its outbox, or was arriving for it, when it
    /// subscribed) has been dealt with: `instances` of it were delivered; the rest failed
    /// [`NotDelivered::ATTEMPTS`] times in this session and count as not delivered this
    /// session. They stay in the outbox: the relay keeps retrying while the reader stays, and
    /// delivers them on a later session. `not_delivered` lists at most
    /// [`NotDelivered::MAX_LISTED`] of them; `not_delivered_total` counts them all.
    BacklogDelivered {
        instances: u64,
        not_delivered: Vec<NotDelivered>,
        not_delivered_total: u64,
    },
    /// Every instance of this study (per its manifest) routed to this reader was delivered.
    StudyComplete { study_uid: String, instances: u32 },
}

/// A backlog instance the relay could not deliver in this session, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotDelivered {
    pub instance: InstanceRef,
    /// Delivery attempts made in this session.
    pub attempts: u32,
    /// The last failure, in words for the people at the reader (at most
    /// [`NotDelivered::MAX_REASON`] bytes), e.g. the reader's own refusal ("cannot create
    /// received/1.2.3: No space left on device").
    pub reason: String,
}

impl NotDelivered {
    /// Failed attempts after which a backlog instance counts as not delivered this session
    /// (the relay goes on retrying it with backoff while the reader stays).
    pub const ATTEMPTS: u32 = 3;
    /// Entries listed in one [`Notice::BacklogDelivered`]: with the longest UIDs and reasons
    /// the frame stays under [`crate::MAX_FRAME_LEN`] (≈ 34 KB).
    pub const MAX_LISTED: usize = 100;
    /// Longest reason carried, in bytes.
    pub const MAX_REASON: usize = 200;

    /// An entry; `reason` is cut to [`NotDelivered::MAX_REASON`] bytes (at a character
    /// boundary, with "…" when cut).
    pub fn new(instance: InstanceRef, attempts: u32, reason: &str) -> Self {
        NotDelivered {
            instance,
            attempts,
            reason: truncate(reason, Self::MAX_REASON),
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary, ending in "…" when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    const MORE: &str = "…";
    let mut end = max.saturating_sub(MORE.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &s[..end])
}

/// First frame of every stream a client opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Offer(Offer),
    Manifest(Manifest),
    Subscribe(Subscribe),
    /// A live ECG session from a cart: the rest of the stream is the ECG sub-protocol's
    /// source side (`yilian-ecg`'s `SourceMsg` / `SourceReply` frames).
    EcgSource,
    /// A viewer of live ECG sessions: the rest of the stream is the ECG sub-protocol's
    /// watcher side (`yilian-ecg`'s `WatchMsg` / `WatchReply` frames).
    EcgWatch,
}

/// Frames from the receiver of a transfer to its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Send the bytes from `offset` on.
    Accept {
        offset: u64,
    },
    /// Already held, identical: nothing to send.
    Have {
        hash: Hash,
    },
    /// The receiver holds `[0, durable)` durably.
    Checkpoint {
        durable: u64,
    },
    /// Verified against `hash` and durable: the instance is acknowledged.
    Stored {
        hash: Hash,
    },
    Refused(Refusal),
    /// Pause sending data (an urgent upload from the same site needs the link); keep the
    /// stream open and wait for [`Reply::Resume`].
    Hold,
    /// Continue after a [`Reply::Hold`].
    Resume,
}

/// Why a transfer, manifest or subscription was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: RefuseCode,
    /// One sentence for the person at the other end: what is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

/// Machine-readable class of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RefuseCode {
    /// Not a DICOM Part 10 file.
    NotDicom,
    /// Structurally broken DICOM.
    Malformed,
    /// The file ends before its declared content does.
    Truncated,
    /// Larger than the receiver accepts.
    TooLarge,
    /// The bytes received do not hash to what the sender announced.
    HashMismatch,
    /// A different instance with the same SOP Instance UID is already stored.
    Conflict,
    /// The offer's UIDs do not match the file's content.
    Mismatch,
    /// This peer may not do this (role, site).
    Unauthorized,
    /// No rule and no default route for this instance.
    Unroutable,
    /// A newer transfer of the same instance took over.
    Superseded,
    /// The receiver failed (I/O error); try again later.
    Internal,
    /// The receiver's storage is full: nothing new is accepted until space returns; what was
    /// acknowledged is safe. Try again later.
    StorageFull,
    /// Too many uploads or connections at once from this peer; try again when some finished.
    Busy,
    /// The upload was accepted but no data came for too long; it was dropped (what arrived is
    /// kept). Offer it again to resume.
    TimedOut,
}

impl RefuseCode {
    /// Whether sending the same bytes again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            RefuseCode::HashMismatch
                | RefuseCode::Superseded
                | RefuseCode::Internal
                | RefuseCode::StorageFull
                | RefuseCode::Busy
                | RefuseCode::TimedOut
        )
    }
}

impl fmt::Display for RefuseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RefuseCode::NotDicom => "not-dicom",
            RefuseCode::Malformed => "malformed",
            RefuseCode::Truncated => "truncated",
            RefuseCode::TooLarge => "too-large",
            RefuseCode::HashMismatch => "hash-mismatch",
            RefuseCode::Conflict => "conflict",
            RefuseCode::Mismatch => "mismatch",
            RefuseCode::Unauthorized => "unauthorized",
            RefuseCode::Unroutable => "unroutable",
            RefuseCode::Superseded => "superseded",
            RefuseCode::Internal => "internal",
            RefuseCode::StorageFull => "storage-full",
            RefuseCode::Busy => "busy",
            RefuseCode::TimedOut => "timed-out",
        };
        f.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_frame, FrameDecoder, MAX_FRAME_LEN};

    #[test]
    fn a_full_backlog_notice_fits_one_frame() {
        let uid = |d: char| std::iter::repeat_n(d, 64).collect::<String>();
        // Longest UIDs, and a reason of multi-byte characters far over the limit.
        let entry = NotDelivered::new(
            InstanceRef {
                study_uid: uid('1'),
                sop_uid: uid('2'),
            },
            u32::MAX,
            &"磁盘已满".repeat(500),
        );
        assert!(entry.reason.len() <= NotDelivered::MAX_REASON);
        assert!(entry.reason.ends_with('…'));
        let n = Notice::BacklogDelivered {
            instances: u64::MAX,
            not_delivered: vec![entry; NotDelivered::MAX_LISTED],
            not_delivered_total: u64::MAX,
        };
        let frame = encode_frame(&n);
        assert!(
            frame.len() - 4 <= MAX_FRAME_LEN as usize,
            "{} bytes",
            frame.len()
        );
        let mut dec = FrameDecoder::new();
        dec.push(frame);
        assert_eq!(dec.next_frame::<Notice>("notice").unwrap(), Some(n));
    }

    #[test]
    fn short_reasons_are_kept_whole() {
        let r = NotDelivered::new(
            InstanceRef {
                study_uid: "1.2".into(),
                sop_uid: "1.2.3".into(),
            },
            3,
            "no space left",
        );
        assert_eq!(r.reason, "no space left");
        assert_eq!(truncate("abcdef", 4), "a…");
    }
}
