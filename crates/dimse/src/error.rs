//! Errors: what a peer did wrong ([`ProtocolError`], [`CommandError`]), what the caller did
//! wrong ([`UsageError`]), and what ended an association in the driver ([`DimseError`]).

use crate::negotiation::Reject;
use std::time::Duration;

/// A command set that cannot be decoded into a DIMSE message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The bytes end inside an element.
    #[error("command set truncated inside element (0000,{element:04X})")]
    Truncated {
        /// The element being read (0 before its tag was read).
        element: u16,
    },
    /// An element outside group 0000.
    #[error("element ({group:04X},{element:04X}) is not part of a command set (group 0000)")]
    NotCommandGroup {
        /// Its group.
        group: u16,
        /// Its element.
        element: u16,
    },
    /// A value of the wrong length for its VR (e.g. a US that is not 2 bytes).
    #[error("element (0000,{element:04X}) has length {length}, expected {expected}")]
    BadLength {
        /// The element.
        element: u16,
        /// Its length.
        length: u32,
        /// What its VR requires.
        expected: u32,
    },
    /// A text or UID value that is not ASCII.
    #[error("element (0000,{element:04X}) is not ASCII text")]
    NotText {
        /// The element.
        element: u16,
    },
    /// A field the command requires is absent.
    #[error("{command} lacks required field {field}")]
    Missing {
        /// The command (e.g. "C-STORE-RQ").
        command: &'static str,
        /// The field (e.g. "Affected SOP Instance UID (0000,1000)").
        field: &'static str,
    },
    /// A Command Field this crate does not handle (N-* services, unknown values).
    #[error("unsupported command field 0x{0:04X}")]
    UnsupportedCommand(u16),
    /// An enumerated value out of range (e.g. Priority).
    #[error("element (0000,{element:04X}) has invalid value {value}")]
    InvalidValue {
        /// The element.
        element: u16,
        /// Its value.
        value: u16,
    },
}

/// The peer broke the protocol. The association is aborted (A-ABORT is queued) when this
/// is reported in [`crate::Aborted::ByUs`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A PDU longer than the maximum we advertise (or accept before negotiation).
    #[error("PDU of {length} bytes exceeds our maximum of {max}")]
    PduTooLarge {
        /// The PDU length field.
        length: u32,
        /// Our maximum.
        max: u32,
    },
    /// A PDU type that does not exist.
    #[error("unrecognized PDU type 0x{0:02X}")]
    UnrecognizedPdu(u8),
    /// A PDU that is not allowed in this state.
    #[error("unexpected {pdu} in state {state}")]
    UnexpectedPdu {
        /// Which PDU.
        pdu: &'static str,
        /// Which state.
        state: &'static str,
    },
    /// A PDU whose structure does not decode.
    #[error("malformed {pdu}: {detail}")]
    MalformedPdu {
        /// Which PDU.
        pdu: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A PDV on a presentation context that was not accepted.
    #[error("P-DATA on presentation context {0}, which was not accepted")]
    UnknownContext(u8),
    /// A data set fragment with no command announcing a data set before it.
    #[error("data set fragment on context {0} without a command announcing one")]
    DataWithoutCommand(u8),
    /// A data set fragment on another context than its command.
    #[error("data set fragment on context {got}, but the command was on context {expected}")]
    DataOnWrongContext {
        /// The command's context.
        expected: u8,
        /// The fragment's context.
        got: u8,
    },
    /// A command fragment while the previous command's data set is still expected.
    #[error("command fragment on context {0} while a data set is still expected")]
    CommandDuringDataSet(u8),
    /// Command fragments on two contexts interleaved.
    #[error("command fragment on context {got} inside a command begun on context {expected}")]
    CommandOnWrongContext {
        /// The context the command began on.
        expected: u8,
        /// The fragment's context.
        got: u8,
    },
    /// A command set larger than our cap.
    #[error("command set larger than {max} bytes")]
    CommandTooLarge {
        /// The cap.
        max: usize,
    },
    /// A command set whose elements do not decode.
    #[error("command set: {0}")]
    MalformedCommand(CommandError),
}

/// The caller used the association wrongly (a bug in the caller, not in the peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The action is not possible in the current state.
    #[error("{action} is not possible in state {state}")]
    WrongState {
        /// What was attempted.
        action: &'static str,
        /// The state.
        state: &'static str,
    },
    /// No accepted presentation context has this id.
    #[error("presentation context {0} was not accepted")]
    UnknownContext(u8),
    /// `send_data` without a preceding command that announced a data set on that context.
    #[error("data set on context {0} without a command announcing it")]
    NoDataSetOpen(u8),
    /// A command while a data set is still being sent.
    #[error("command while the data set on context {0} is unfinished")]
    DataSetOpen(u8),
    /// An AE title that is empty, longer than 16 characters or not printable ASCII.
    #[error("invalid AE title {0:?}")]
    InvalidAeTitle(String),
    /// More than 128 presentation contexts proposed.
    #[error("at most 128 presentation contexts can be proposed, got {0}")]
    TooManyContexts(usize),
    /// The PDU could not be encoded (e.g. a UID too long for its field).
    #[error("cannot encode PDU: {0}")]
    Encode(String),
}

/// Why a driven association ([`crate::scp::serve`], [`crate::scu::StoreScu`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum DimseError {
    /// Reading or writing the socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of the association.
    #[error("the peer closed the connection during the association")]
    ConnectionClosed,
    /// Nothing moved for too long.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// What we waited for.
        waiting_for: &'static str,
        /// How long.
        after: Duration,
    },
    /// The peer broke the protocol; we aborted.
    #[error("protocol error (association aborted): {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer aborted the association.
    #[error("the peer aborted the association ({0})")]
    AbortedByPeer(crate::AbortSource),
    /// The peer rejected our association request.
    #[error("association rejected: {0}")]
    Rejected(Reject),
    /// Misuse of the state machine (a bug).
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// The peer accepted no presentation context for what we want to send.
    #[error("no accepted presentation context for {abstract_syntax} in {transfer_syntax}")]
    NoContext {
        /// The SOP class.
        abstract_syntax: String,
        /// The transfer syntax we have.
        transfer_syntax: String,
    },
    /// The peer accepted the SOP class only in other transfer syntaxes than the data set's
    /// (Explicit VR LE goes out as Implicit VR LE when the peer took that; nothing else is
    /// transcoded).
    #[error("{sop_class}: the peer accepted {accepted:?}, but the data set is in {have}")]
    TransferSyntaxNotAccepted {
        /// The SOP class.
        sop_class: String,
        /// The data set's transfer syntax.
        have: String,
        /// What the peer accepted for the class.
        accepted: Vec<String>,
    },
    /// The data set to send could not be read; nothing of it was sent (the association is
    /// still usable).
    #[error("the data set to send could not be read: {0}")]
    DataUnreadable(std::io::Error),
    /// Reading the data set failed after part of it was sent: a data set cannot be cut
    /// short in DIMSE, so the association was aborted.
    #[error("reading the data set failed midway (association aborted): {0}")]
    DataCutShort(std::io::Error),
    /// A response that does not answer our request.
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
}
