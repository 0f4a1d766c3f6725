//! What an SCP application implements: admission, storage sinks, and query hooks.

use crate::message::Priority;
use crate::negotiation::{AcceptPolicy, AssociateRequest, Reject};
use crate::status::Status;
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// An SCP application. The driver ([`super::serve`]) owns the protocol; the handler decides.
///
/// Methods take `&self` (one handler serves many concurrent associations). The Q/R hooks have
/// default implementations answering "SOP class not supported" (0x0122).
///
/// # C-MOVE and C-GET (designed, not wired yet)
/// The driver answers C-MOVE-RQ and C-GET-RQ with 0x0122 today. Their hooks will follow the
/// C-FIND pattern: `fn retrieve_move<P: MoveProgress>(&self, &MoveRequest, &mut P) ->
/// RetrieveOutcome`, where the handler opens its own [`crate::scu::StoreScu`] association to the
/// Move Destination (resolved from topology) and reports counts through `P` (each becomes a
/// pending C-MOVE-RSP, a C-CANCEL surfaces as [`Interrupted::Cancelled`]); and
/// `fn retrieve_get<S: GetSession>(&self, &GetRequest, &mut S)`, where `S::store(sop_class,
/// sop_instance, transfer_syntax, data)` sends a C-STORE sub-operation *on this association*
/// (on a context whose requestor took the SCP role, see [`AcceptPolicy::with_requestor_scp_role`])
/// and returns its status, the driver sending pending C-GET-RSPs with counts in between.
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
}
