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
    /// Everything that was waiting in the reader's outbox when it subscribed is delivered.
    BacklogDelivered { instances: u64 },
    /// Every instance of this study (per its manifest) routed to this reader was delivered.
    StudyComplete { study_uid: String, instances: u32 },
}

/// First frame of every stream a client opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Offer(Offer),
    Manifest(Manifest),
    Subscribe(Subscribe),
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
