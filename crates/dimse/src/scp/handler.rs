//! What an SCP application implements: admission, storage sinks, and query hooks.

use crate::message::Priority;
use crate::negotiation::{AcceptPolicy, AssociateRequest, Reject};
use crate::scu::StoreOptions;
use crate::status::Status;
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncRead;

/// An accepted association: what to accept.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The accept policy (shared: building [`AcceptPolicy::default_storage`] once is enough).
    pub policy: Arc<AcceptPolicy>,
}

/// A C-STORE-RQ about to stream its data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    /// Affected SOP Class UID.
    pub sop_class: String,
    /// Affected SOP Instance UID.
    pub sop_instance: String,
    /// The transfer syntax of the data set (the presentation context's).
    pub transfer_syntax: String,
    /// The peer's AE title.
    pub calling_ae: String,
    /// Our AE title as the peer called it.
    pub called_ae: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Priority.
    pub priority: Priority,
    /// Message ID.
    pub message_id: u16,
    /// Move Originator AE title, when a C-MOVE caused this store.
    pub move_originator_ae: Option<String>,
    /// Move Originator Message ID.
    pub move_originator_message_id: Option<u16>,
}

/// The result of an operation: the status of its (final) response and an optional Error
/// Comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Status.
    pub status: Status,
    /// Error Comment (at most 64 characters are sent).
    pub comment: Option<String>,
}

/// The outcome of a store.
pub type StoreOutcome = Outcome;

/// Why a sink refused data: the status to answer with.
pub type StoreFailure = Outcome;

/// The final outcome of a C-FIND.
pub type FindOutcome = Outcome;

impl Outcome {
    /// Success, no comment.
    pub fn success() -> Self {
        Outcome {
            status: Status::SUCCESS,
            comment: None,
        }
    }

    /// A status with a comment.
    pub fn with(status: Status, comment: impl Into<String>) -> Self {
        Outcome {
            status,
            comment: Some(comment.into()),
        }
    }
}

impl From<Status> for Outcome {
    fn from(status: Status) -> Self {
        Outcome {
            status,
            comment: None,
        }
    }
}

/// Where one instance's data set goes, fragment by fragment.
///
/// The driver calls [`data`](Self::data) for each fragment as it arrives and does not read
/// the socket again until it returns (backpressure), then [`finish`](Self::finish) after the
/// last one; the C-STORE-RSP carries `finish`'s status, so a sink should say success only once
/// the instance is durable. If the association dies first (A-ABORT, TCP drop, timeout),
/// [`abort`](Self::abort) is called instead. If `data` fails, `abort` is called, the rest of
/// the data set is read and discarded, and the failure is the response.
pub trait StoreSink: Send {
    /// The next fragment of the data set (Part 10 file meta not included).
    fn data(&mut self, bytes: Bytes) -> impl Future<Output = Result<(), StoreFailure>> + Send;
    /// The whole data set arrived: make it durable and say how it went.
    fn finish(self) -> impl Future<Output = StoreOutcome> + Send;
    /// The data set will not be completed: drop what was written.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// A C-FIND-RQ with its identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindRequest {
    /// The information model (Affected SOP Class UID).
    pub sop_class: String,
    /// The identifier's transfer syntax (the context's).
    pub transfer_syntax: String,
    /// The identifier (query keys), encoded in `transfer_syntax`.
    pub identifier: Bytes,
    /// The peer's AE title.
    pub calling_ae: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Priority.
    pub priority: Priority,
    /// Message ID.
    pub message_id: u16,
}

/// Why a [`Responder`] cannot send more results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Interrupted {
    /// The peer sent C-CANCEL-RQ for this request: stop; the driver answers with Cancel.
    #[error("cancelled by the peer")]
    Cancelled,
    /// The association ended (abort, drop, timeout): stop; the driver reports it.
    #[error("the association ended")]
    AssociationEnded,
}

/// Sends pending C-FIND responses for a handler, one at a time, as results are found (never
/// collecting them): each call writes a pending response with its identifier and checks
/// whether the peer cancelled.
pub trait Responder: Send {
    /// Send one match (an identifier encoded in the request's transfer syntax).
    fn pending(
        &mut self,
        identifier: Bytes,
    ) -> impl Future<Output = Result<(), Interrupted>> + Send;
}

/// A C-GET-RQ with its identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRequest {
    /// The information model (Affected SOP Class UID).
    pub sop_class: String,
    /// The identifier's transfer syntax (the context's).
    pub transfer_syntax: String,
    /// The identifier (keys of what to retrieve), encoded in `transfer_syntax`.
    pub identifier: Bytes,
    /// The peer's AE title.
    pub calling_ae: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Priority (the C-STORE sub-operations carry it too).
    pub priority: Priority,
    /// Message ID.
    pub message_id: u16,
}

/// A C-MOVE-RQ with its identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveRequest {
    /// The information model (Affected SOP Class UID).
    pub sop_class: String,
    /// The identifier's transfer syntax (the context's).
    pub transfer_syntax: String,
    /// The identifier (keys of what to retrieve), encoded in `transfer_syntax`.
    pub identifier: Bytes,
    /// The peer's AE title: the Move Originator of the C-STORE sub-operations.
    pub calling_ae: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Priority.
    pub priority: Priority,
    /// Message ID: the Move Originator Message ID of the C-STORE sub-operations.
    pub message_id: u16,
    /// Move Destination: the AE title to send the instances to (the handler resolves it;
    /// unknown: answer [`Status::MOVE_DESTINATION_UNKNOWN`]).
    pub destination: String,
}

impl MoveRequest {
    /// Store options for the sub-operations of this C-MOVE: its priority, and Move Originator
    /// AE Title (0000,1030) / Message ID (0000,1031) set to the requestor's.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            priority: self.priority,
            move_originator: Some((self.calling_ae.clone(), self.message_id)),
        }
    }
}

/// The final outcome of a C-GET or C-MOVE, as the handler sees it.
///
/// The driver derives the final status from the sub-operation counts when the handler says
/// [`Status::SUCCESS`]: any failed or warning sub-operation makes it 0xB000 (warning), all
/// failed 0xA702 (refused: unable to perform sub-operations); a C-CANCEL noticed makes it
/// 0xFE00. Any other status the handler returns (0xA801 move destination unknown, 0xC001
/// unable to process, 0xA900 identifier does not match…) is sent as is.
pub type RetrieveOutcome = Outcome;

/// Why a sub-operation was not sent (it counts as failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSent {
    /// C-GET: the requestor did not take the SCP role for this SOP class (it must propose an
    /// SCP/SCU Role Selection item with SCP for every storage class it wants to receive).
    #[error("the peer did not take the SCP role for {sop_class}: it cannot receive it in a C-GET")]
    NoScpRole {
        /// The SOP class.
        sop_class: String,
    },
    /// No accepted presentation context for the SOP class in the data set's transfer syntax
    /// (only Explicit → Implicit VR Little Endian is transcoded; compressed data never is).
    #[error(
        "no accepted presentation context for {sop_class} in {transfer_syntax} (accepted for \
         it: {accepted:?})"
    )]
    NoContext {
        /// The SOP class.
        sop_class: String,
        /// The data set's transfer syntax.
        transfer_syntax: String,
        /// The transfer syntaxes accepted for the class (empty: none).
        accepted: Vec<String>,
    },
    /// The data could not be read before anything was sent.
    #[error("the data set could not be read: {0}")]
    Unreadable(String),
    /// Anything else the handler reports (e.g. a C-MOVE destination that refused the
    /// association or went away).
    #[error("{0}")]
    Other(String),
}

/// What became of one C-STORE sub-operation of a C-GET or C-MOVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubOperation {
    /// The storage SCP answered the C-STORE-RQ with this status (success, warning or
    /// failure) and comment.
    Answered(Outcome),
    /// Not sent (counted as failed).
    NotSent(NotSent),
}

/// How a sub-operation counts in the responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Number of Completed Sub-operations.
    Completed,
    /// Number of Warning Sub-operations.
    Warning,
    /// Number of Failed Sub-operations (and its UID goes to the Failed SOP Instance UID
    /// List).
    Failed,
}

impl SubOperation {
    /// How it counts: success → completed, warning → warning, anything else → failed.
    pub fn counted(&self) -> Counted {
        match self {
            SubOperation::Answered(o) => match o.status.category() {
                crate::status::Category::Success => Counted::Completed,
                crate::status::Category::Warning => Counted::Warning,
                _ => Counted::Failed,
            },
            SubOperation::NotSent(_) => Counted::Failed,
        }
    }

    /// The outcome of a [`crate::scu::StoreScu`] store, for a C-MOVE handler: an answer, or
    /// "not sent" for the errors that leave the sub-association usable (no context, transfer
    /// syntax not accepted, data unreadable before sending). `None` for errors that ended the
    /// sub-association (the handler decides: stop, or reconnect).
    pub fn from_store(
        result: &Result<crate::scu::StoreResult, crate::error::DimseError>,
    ) -> Option<SubOperation> {
        use crate::error::DimseError as E;
        Some(match result {
            Ok(r) => SubOperation::Answered(Outcome {
                status: r.status,
                comment: r.comment.clone(),
            }),
            Err(E::NoContext {
                abstract_syntax,
                transfer_syntax,
            }) => SubOperation::NotSent(NotSent::NoContext {
                sop_class: abstract_syntax.clone(),
                transfer_syntax: transfer_syntax.clone(),
                accepted: Vec::new(),
            }),
            Err(E::TransferSyntaxNotAccepted {
                sop_class,
                have,
                accepted,
            }) => SubOperation::NotSent(NotSent::NoContext {
                sop_class: sop_class.clone(),
                transfer_syntax: have.clone(),
                accepted: accepted.clone(),
            }),
            Err(E::DataUnreadable(e)) => SubOperation::NotSent(NotSent::Unreadable(e.to_string())),
            Err(_) => return None,
        })
    }
}

/// C-GET: sends C-STORE sub-operations to the requestor **on the same association**, one at
/// a time, for a handler ([`ScpHandler::get`]).
///
/// Between sub-operations the driver sends pending C-GET-RSPs (0xFF00) with the counts, and
/// notices C-CANCEL-RQ. Nothing is buffered: each data set streams from its reader in pieces
/// of the requestor's maximum PDU length.
pub trait GetSession: Send {
    /// How many instances the handler is about to send (Number of Remaining Sub-operations
    /// before the first). Call it before the first [`store`](Self::store); calling it again
    /// corrects the total.
    fn expect(&mut self, instances: usize);

    /// Send one instance as a C-STORE sub-operation and wait for the requestor's
    /// C-STORE-RSP. `data` is the data set (no Part 10 file meta) encoded in
    /// `transfer_syntax`; it goes out on an accepted presentation context for `sop_class` in
    /// exactly that syntax, on which the requestor took the SCP role. If there is none, the
    /// sub-operation is not sent: [`SubOperation::NotSent`] (counted as failed; the
    /// association goes on).
    ///
    /// `Err(Interrupted::Cancelled)`: the requestor cancelled (this instance was not sent;
    /// stop and return). `Err(Interrupted::AssociationEnded)`: stop; the driver reports why.
    /// A C-CANCEL that arrives during a sub-operation lets it finish; the next call says
    /// `Cancelled`.
    fn store<R: AsyncRead + Send + Unpin>(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        data: R,
    ) -> impl Future<Output = Result<SubOperation, Interrupted>> + Send;

    /// Count an instance as failed without sending it (e.g. its stored copy is gone).
    fn skip(
        &mut self,
        sop_instance: &str,
        reason: NotSent,
    ) -> impl Future<Output = Result<(), Interrupted>> + Send;
}

/// C-MOVE: how a handler reports the sub-operations it performs on its own association to
/// the Move Destination ([`ScpHandler::move_to`]). Each report becomes a pending C-MOVE-RSP
/// with the counts (unless none remain: the final response follows).
pub trait MoveProgress: Send {
    /// How many instances the handler is about to send (see [`GetSession::expect`]).
    fn expect(&mut self, instances: usize);

    /// One sub-operation is done. `Err(Interrupted::Cancelled)`: the requestor sent
    /// C-CANCEL-RQ: stop (release the sub-association) and return.
    fn report(
        &mut self,
        sop_instance: &str,
        result: SubOperation,
    ) -> impl Future<Output = Result<(), Interrupted>> + Send;

    /// Has the requestor cancelled (or gone)? Checks without waiting, e.g. before opening the
    /// sub-association or between long sub-operations.
    fn check(&mut self) -> impl Future<Output = Result<(), Interrupted>> + Send;
}

/// An SCP application. The driver ([`super::serve`]) owns the protocol; the handler decides.
///
/// Methods take `&self` (one handler serves many concurrent associations). The Q/R hooks have
/// default implementations answering "SOP class not supported" (0x0122).
///
/// # C-GET and C-MOVE
/// Both hand the handler the request's identifier as bytes in its transfer syntax (like
/// C-FIND); the handler resolves it to instances (the relay: through its catalog and the
/// reader's authorisation) and streams each one:
///
/// * [`get`](Self::get): through a [`GetSession`], whose `store` sends a C-STORE sub-operation
///   *on this association*, on a context whose requestor took the SCP role (SCP/SCU role
///   selection, see [`AcceptPolicy::with_requestor_scp_role`]), and returns its status; the
///   driver sends pending C-GET-RSPs with counts in between and the final response with the
///   Failed SOP Instance UID List.
/// * [`move_to`](Self::move_to): the handler knows the topology (Move Destination AE → host
///   and port; unknown → [`Status::MOVE_DESTINATION_UNKNOWN`]), opens its own
///   [`crate::scu::StoreScu`] association there, stores each instance with
///   [`MoveRequest::store_options`] (Move Originator AE Title and Message ID) and reports each
///   result through a [`MoveProgress`], which sends the pending C-MOVE-RSPs.
///
/// A C-CANCEL-RQ surfaces as [`Interrupted::Cancelled`] after the current sub-operation; the
/// final response is then Cancel (0xFE00) with the counts.
///
/// [`AcceptPolicy::with_requestor_scp_role`]: crate::AcceptPolicy::with_requestor_scp_role
pub trait ScpHandler: Send + Sync {
    /// Where C-STORE data sets go.
    type Sink: StoreSink;

    /// Accept (with a policy) or reject an association request.
    fn admit(
        &self,
        request: &AssociateRequest,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Admitted, Reject>> + Send;

    /// A C-STORE-RQ arrived: open a sink, or refuse at once (the data set is then read and
    /// discarded, and the refusal is the response; the association continues).
    fn begin_store(
        &self,
        request: &StoreRequest,
    ) -> impl Future<Output = Result<Self::Sink, StoreOutcome>> + Send;

    /// A C-FIND-RQ: send each match through `responder`, then return the final status
    /// (success, or a failure). Default: SOP class not supported.
    fn find<R: Responder>(
        &self,
        request: &FindRequest,
        responder: &mut R,
    ) -> impl Future<Output = FindOutcome> + Send {
        let _ = (request, responder);
        async { Outcome::from(crate::status::Status::SOP_CLASS_NOT_SUPPORTED) }
    }

    /// A C-GET-RQ: send each instance through `session`, then return the final outcome (see
    /// [`RetrieveOutcome`] for how the status is derived). Default: SOP class not supported.
    fn get<S: GetSession>(
        &self,
        request: &GetRequest,
        session: &mut S,
    ) -> impl Future<Output = RetrieveOutcome> + Send {
        let _ = (request, session);
        async { Outcome::from(crate::status::Status::SOP_CLASS_NOT_SUPPORTED) }
    }

    /// A C-MOVE-RQ: resolve the destination, send each instance there on an association of
    /// your own, report each result through `progress`, then return the final outcome.
    /// Default: SOP class not supported.
    fn move_to<P: MoveProgress>(
        &self,
        request: &MoveRequest,
        progress: &mut P,
    ) -> impl Future<Output = RetrieveOutcome> + Send {
        let _ = (request, progress);
        async { Outcome::from(crate::status::Status::SOP_CLASS_NOT_SUPPORTED) }
    }
}
