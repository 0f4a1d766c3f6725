//! # DICOM Upper Layer + DIMSE for yilian
//!
//! The DICOM front door of the relay: C-ECHO and C-STORE as SCP, C-FIND, C-GET and C-MOVE
//! through handler hooks (see [`scp`]), a storage SCU for egress, and DICOM TLS ([`tls`]).
//! Built like
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
//! [`scp::serve`] runs one association on any `AsyncRead + AsyncWrite` stream (TCP, or TLS
//! from [`tls`]) for an [`scp::ScpHandler`]: C-ECHO answered by the driver, C-STORE data handed to the
//! handler's [`scp::StoreSink`] PDV by PDV (the socket is not read while the sink is busy), the
//! C-STORE-RSP sent only once the sink's `finish` says the instance is durable. Every await on
//! the socket is bounded by a timeout. [`scu::StoreScu`] is the client side. [`part10`] reads
//! and writes the Part 10 file framing (File Meta Information) by hand.
//!
//! ## Retrieval: C-GET and C-MOVE
//! The handler gets the request's identifier as bytes in the context's transfer syntax (as for
//! C-FIND) and resolves it to instances itself (the relay: its catalog and the reader's
//! authorisation); each instance is then *streamed* from an `AsyncRead`, never held whole.
//!
//! * **C-GET** ([`scp::ScpHandler::get`], [`scp::GetSession`]): `session.store(class,
//!   instance, syntax, reader)` sends a C-STORE-RQ sub-operation **on the same association**,
//!   on an accepted context for that class in exactly that syntax on which the requestor took
//!   the SCP role (SCP/SCU Role Selection; [`AcceptPolicy::default_storage`] grants it), streams
//!   the data set in PDUs within the requestor's maximum, waits for the C-STORE-RSP and returns
//!   its status. No such context: the sub-operation is not sent and counts as failed, with the
//!   reason ([`scp::NotSent`]); the association goes on. Between sub-operations the driver
//!   sends pending C-GET-RSPs (0xFF00, remaining/completed/failed/warning).
//! * **C-MOVE** ([`scp::ScpHandler::move_to`], [`scp::MoveProgress`]): the handler resolves the
//!   Move Destination (unknown: 0xA801), opens its own [`scu::StoreScu`] association there,
//!   stores with [`scp::MoveRequest::store_options`] (Move Originator AE Title and Message ID)
//!   and reports each result; each report becomes a pending C-MOVE-RSP.
//! * **C-CANCEL** is noticed between sub-operations and while waiting for a C-STORE-RSP; the
//!   current sub-operation finishes, the next is refused ([`scp::Interrupted::Cancelled`]),
//!   and the final response is Cancel (0xFE00) with the counts and what remains.
//! * **The final response** carries the counts and a status derived from them (success;
//!   0xB000 if any failed or warned; 0xA702 if all failed), or the handler's own failure, and,
//!   when some failed, the Failed SOP Instance UID List (0008,0058) as its identifier
//!   ([`identifier`]).
//!
//! ## DICOM TLS
//! [`tls`] wraps accepted or connected streams with rustls (ring): the server requires a
//! client certificate from the given CA (mutual TLS, refused in the handshake otherwise, within
//! a timeout), the client presents one; configurations come as rustls configs or PEM files.
//! The driver and the SCU run over the TLS stream unchanged; [`tls::peer_certificates`] gives
//! the verified chain for the caller to map to an identity.
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
pub mod tls;
mod transcode;
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
