//! # DICOM Upper Layer + DIMSE for yilian
//!
//! The DICOM front door of the relay: C-ECHO and C-STORE as SCP (C-FIND through a handler
//! hook, C-MOVE/C-GET designed, see [`scp`]), and a storage SCU for egress. Built like
//! `quinn`: a **sans-IO core** that knows the protocol and nothing about sockets or clocks,
//! and a **thin tokio driver** that moves bytes and keeps time.
//!
//! ## The sans-IO core
//! [`Association`] is the state machine of one association (PS3.8), either role:
//!
//! ```text
//! bytes from the peer ──▶ handle_input ──▶ poll_event ──▶ Event (AssociateRequested, Command,
//!                                                          Data, ReleaseRequested, Aborted…)
//! accept / reject / send_message / send_data / release / abort ──▶ poll_transmit ──▶ bytes
//! ```
//!
//! * **Commands** (group 0000, always Implicit VR Little Endian) are reassembled (at most
//!   [`DEFAULT_MAX_COMMAND_LENGTH`]) and decoded into typed [`Message`]s by our own small
//!   codec ([`command_set`], [`message`]).
//! * **Data sets are never buffered.** Every data PDV is reported as [`Event::Data`] the moment
//!   its PDU is decoded, as a zero-copy slice of that PDU. Input is decoded lazily: a driver
//!   that stops calling `poll_event` while a consumer is busy holds at most one PDU (≤ the
//!   [`DEFAULT_MAX_PDU_LENGTH`] of 256 KiB we advertise) plus one read.
//! * **Limits before allocation.** A PDU longer than our advertised maximum is refused with
//!   A-ABORT on its header alone. Data without a command announcing it, PDVs on unaccepted
//!   contexts, interleaved commands: A-ABORT ([`ProtocolError`], [`Aborted::ByUs`]).
//! * **Sending** fragments commands and data sets into PDVs within the *peer's* maximum PDU
//!   length and packs several PDVs into one PDU when they fit; large values leave as slices of
//!   the caller's [`bytes::Bytes`], not copies ([`outbox`]).
//! * **No clock**: ARTIM, idle and stall timers belong to the driver.
//!
//! dicom-ul supplies the PDU types and the codec of the control PDUs (A-ASSOCIATE, A-RELEASE,
//! A-ABORT); P-DATA-TF is framed here because its values must stay zero-copy.
//!
//! ## Negotiation
//! An acceptor's user sees [`AssociateRequest`] and answers with an [`AcceptPolicy`]
//! (per abstract syntax, transfer syntaxes in our preference order; SCP role for requestors,
//! echoed for C-GET) or a [`Reject`]. [`AcceptPolicy::default_storage`] accepts Verification
//! and every Storage SOP class of [`sop_classes`] with every syntax of [`transfer_syntaxes`],
//! storing data as the peer holds it.
//!
//! ## The driver
//! [`scp::serve`] runs one association on any `AsyncRead + AsyncWrite` stream (TCP, later
//! TLS) for an [`scp::ScpHandler`]: C-ECHO answered by the driver, C-STORE data handed to the
//! handler's [`scp::StoreSink`] PDV by PDV (the socket is not read while the sink is busy), the
//! C-STORE-RSP sent only once the sink's `finish` says the instance is durable. Every await on
//! the socket is bounded by a timeout. [`scu::StoreScu`] is the client side. [`part10`] reads
//! and writes the Part 10 file framing (File Meta Information) by hand.
//!
//! ## Errors
//! What the peer did wrong: [`ProtocolError`] (abort) and [`CommandError`] (answered with a
//! failure status when the command can be answered, see [`scp`]); what the caller did wrong:
//! [`UsageError`]; what ended a driven association: [`DimseError`].

#![warn(missing_docs)]

mod association;
pub mod command_set;
mod conn;
mod error;
pub mod identifier;
pub mod message;
mod negotiation;
pub(crate) mod outbox;
pub mod part10;
pub mod pdu;
pub mod scp;
pub mod scu;
pub mod sop_classes;
pub mod status;
pub mod tcp;
pub mod transfer_syntaxes;

pub use association::{
    AbortSource, Aborted, Association, AssociationConfig, Event, Request, Role, State,
    DEFAULT_MAX_COMMAND_LENGTH, DEFAULT_MAX_PDU_LENGTH, IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
};
pub use error::{CommandError, DimseError, ProtocolError, UsageError};
pub use message::{
    CancelRq, EchoRq, EchoRsp, FindRq, FindRsp, GetRq, Message, MoveRq, Priority, RetrieveRsp,
    StoreRq, StoreRsp, SubOperations,
};
pub use negotiation::{
    AcceptPolicy, AssociateRequest, ContextOutcome, Negotiated, NegotiatedContext, ProposedContext,
    Reject, RejectReason, RejectResult, RoleSelection, APPLICATION_CONTEXT,
};
pub use status::Status;
