//! The SCP driver: one association on one stream, for an [`ScpHandler`].
//!
//! * **Admission** (ARTIM): the A-ASSOCIATE-RQ must arrive within
//!   [`ScpConfig::request_timeout`]; [`ScpHandler::admit`] accepts (with a policy) or rejects.
//! * **C-ECHO** is answered here.
//! * **C-STORE**: [`ScpHandler::begin_store`] opens a [`StoreSink`]; each data PDV goes to
//!   [`StoreSink::data`] as it arrives, and the socket is not read again until that returns
//!   (one PDU in flight at most). After the last fragment, [`StoreSink::finish`] decides the
//!   C-STORE-RSP, which is sent only then. A refusal (at `begin_store` or from `data`) does not
//!   abort the association: the rest of the data set is read and discarded and the refusal is
//!   the response. An association that dies mid-instance (A-ABORT, TCP drop, stall) ends with
//!   [`StoreSink::abort`].
//! * **C-FIND**: the identifier (capped at [`ScpConfig::max_identifier_length`]) is collected,
//!   then [`ScpHandler::find`] streams matches through a [`Responder`] (one pending response
//!   per match, C-CANCEL noticed between them).
//! * **C-GET / C-MOVE**: the identifier is collected the same way, then [`ScpHandler::get`]
//!   sends C-STORE sub-operations on this association through a [`GetSession`], or
//!   [`ScpHandler::move_to`] sends them on its own association and reports through a
//!   [`MoveProgress`]; the driver sends pending responses with the sub-operation counts,
//!   notices C-CANCEL, and sends the final response (status derived from the counts, Failed
//!   SOP Instance UID List). While a retrieval runs, only C-CANCEL (and, for C-GET, the
//!   C-STORE-RSPs) may arrive; anything else aborts. Handlers without these hooks answer
//!   0x0122 (SOP class not supported).
//! * **Bad commands**: a command set that does not decode as group-0000 elements is an
//!   A-ABORT (the stream cannot be trusted). A request that decodes but lacks a required field
//!   (or an unsupported command such as N-ACTION) is *answered*: its data set, if any, is
//!   discarded and the response carries 0xC000 "cannot understand" (0x0211 "unrecognized
//!   operation" for unsupported commands), so one odd message does not cost the peer its
//!   association. A bad command without a Message ID cannot be answered: A-ABORT.
//! * **Timeouts**: waiting for the next command [`ScpConfig::idle_timeout`]; while a command
//!   or data set is in flight, for every write, and for the C-STORE-RSP of a C-GET
//!   sub-operation, [`ScpConfig::stall_timeout`]. Either ends in A-ABORT (and `abort` of an
//!   open sink). Only the sink's and the retrieval hooks' own awaits are not bounded here:
//!   they own their I/O (reading instances, a C-MOVE's sub-association).

mod handler;
mod retrieve;

pub use crate::scu::StoreOptions;
pub use handler::{
    Admitted, Counted, FindOutcome, FindRequest, GetRequest, GetSession, Interrupted, MoveProgress,
    MoveRequest, NotSent, Outcome, Responder, RetrieveOutcome, ScpHandler, StoreFailure,
    StoreOutcome, StoreRequest, StoreSink, SubOperation,
};

use crate::association::{AbortSource, Aborted, Association, AssociationConfig, Event};
use crate::conn::Conn;
use crate::error::{DimseError, ProtocolError};
use crate::message::{command_field, EchoRsp, FindRsp, Message, RetrieveRsp, StoreRsp};
use crate::negotiation::Reject;
use crate::status::Status;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Limits and timers of the SCP driver.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Association limits and our implementation identity.
    pub association: AssociationConfig,
    /// ARTIM: how long a new connection may take to send its A-ASSOCIATE-RQ (30 s).
    pub request_timeout: Duration,
    /// How long an established association may sit between commands (120 s).
    pub idle_timeout: Duration,
    /// How long anything in flight (a command, a data set, a write) may stall (60 s).
    pub stall_timeout: Duration,
    /// Largest C-FIND/C-MOVE/C-GET identifier collected (1 MiB).
    pub max_identifier_length: usize,
}

impl Default for ScpConfig {
    fn default() -> Self {
        ScpConfig {
            association: AssociationConfig::default(),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(60),
            max_identifier_length: 1 << 20,
        }
    }
}

/// How an association ended (when it ended within the protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Released by the peer.
    Released,
    /// We rejected it (the handler, or an unsupported application context / version).
    Rejected(Reject),
    /// The peer aborted.
    AbortedByPeer(AbortSource),
}

/// What one association did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationSummary {
    /// The peer's AE title (empty if no request arrived).
    pub calling_ae: String,
    /// Our AE title as called.
    pub called_ae: String,
    /// C-ECHOs answered.
    pub echoes: u32,
    /// Instances stored (success or warning).
    pub stored: u32,
    /// C-STORE requests answered with a failure.
    pub store_failures: u32,
    /// Instances whose data set was cut off by the end of the association.
    pub stores_aborted: u32,
    /// C-FIND requests answered.
    pub finds: u32,
    /// C-GET requests answered.
    pub gets: u32,
    /// C-MOVE requests answered.
    pub moves: u32,
    /// How it ended.
    pub ended: Ended,
}

/// What the association is busy with between events.
enum Current<S> {
    Idle,
    /// A C-STORE data set streaming into a sink (or discarded after a refusal).
    Store {
        context_id: u8,
        rq: crate::message::StoreRq,
        sink: Option<S>,
        refused: Option<Outcome>,
    },
    /// An identifier being collected for a C-FIND.
    Find {
        context_id: u8,
        rq: crate::message::FindRq,
        identifier: BytesMut,
    },
    /// An identifier being collected for a C-GET or C-MOVE.
    Retrieve {
        context_id: u8,
        rq: RetrieveRq,
        identifier: BytesMut,
    },
    /// A data set to discard, then this response.
    Discard {
        context_id: u8,
        response: Option<Message>,
    },
}

enum RetrieveRq {
    Get(crate::message::GetRq),
    Move(crate::message::MoveRq),
}

/// Serve one association on `io` (already accepted; see [`crate::tcp`]).
///
/// `Ok` when the association ended within the protocol (released, rejected, aborted by the
/// peer); `Err` on timeouts, I/O errors, a dropped connection or a protocol violation (we
/// aborted). An open sink is aborted on every path that does not finish it.
pub async fn serve<IO, H>(
    io: IO,
    peer: SocketAddr,
    handler: &H,
    config: &ScpConfig,
) -> Result<AssociationSummary, DimseError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: ScpHandler,
{
    let mut conn = Conn::new(io, Association::accept_incoming(config.association.clone()));
    let mut summary = AssociationSummary {
        calling_ae: String::new(),
        called_ae: String::new(),
        echoes: 0,
        stored: 0,
        store_failures: 0,
        stores_aborted: 0,
        finds: 0,
        gets: 0,
        moves: 0,
        ended: Ended::Released,
    };
    let first = conn
        .next_event(config.request_timeout, "A-ASSOCIATE-RQ")
        .await;
    let request = match first {
        Ok(Some(Event::AssociateRequested(request))) => request,
        Ok(Some(Event::Rejected(reject))) => {
            conn.finish(config.stall_timeout).await?;
            summary.ended = Ended::Rejected(reject);
            return Ok(summary);
        }
        Ok(Some(Event::Aborted(Aborted::ByPeer(source)))) => {
            summary.ended = Ended::AbortedByPeer(source);
            return Ok(summary);
        }
        Ok(Some(Event::Aborted(Aborted::ByUs(e)))) => {
            let _ = conn.finish(config.stall_timeout).await;
            return Err(e.into());
        }
        Ok(_) => return Err(DimseError::ConnectionClosed),
        Err(e) => {
            if matches!(e, DimseError::Timeout { .. }) {
                conn.abort(config.stall_timeout).await;
            }
            return Err(e);
        }
    };
    summary.calling_ae = request.calling_ae.clone();
    summary.called_ae = request.called_ae.clone();
    match handler.admit(&request, peer).await {
        Ok(admitted) => {
            conn.assoc.accept(&admitted.policy)?;
        }
        Err(reject) => {
            conn.assoc.reject(reject)?;
            conn.finish(config.stall_timeout).await?;
            summary.ended = Ended::Rejected(reject);
            return Ok(summary);
        }
    }
    let mut current: Current<H::Sink> = Current::Idle;
    let result = run(&mut conn, peer, handler, config, &mut summary, &mut current).await;
    if let Current::Store {
        sink: Some(sink), ..
    } = std::mem::replace(&mut current, Current::Idle)
    {
        summary.stores_aborted += 1;
        sink.abort().await;
    }
    match result {
        Ok(ended) => {
            summary.ended = ended;
            Ok(summary)
        }
        Err(e) => {
            if matches!(
                e,
                DimseError::Timeout { .. }
                    | DimseError::Protocol(_)
                    | DimseError::UnexpectedResponse(_)
            ) {
                conn.abort(config.stall_timeout).await;
            }
            Err(e)
        }
    }
}

async fn run<IO, H>(
    conn: &mut Conn<IO>,
    peer: SocketAddr,
    handler: &H,
    config: &ScpConfig,
    summary: &mut AssociationSummary,
    current: &mut Current<H::Sink>,
) -> Result<Ended, DimseError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: ScpHandler,
{
    loop {
        let busy = !matches!(current, Current::Idle)
            || conn.assoc.buffered_input() > 0
            || conn.assoc.receiving_data_set();
        let (timeout, waiting_for) = if busy {
            (config.stall_timeout, "the rest of a message")
        } else {
            (config.idle_timeout, "the next command")
        };
        let Some(event) = conn.next_event(timeout, waiting_for).await? else {
            return Err(DimseError::ConnectionClosed);
        };
        match event {
            Event::Command {
                context_id,
                message,
            } => on_command(conn, peer, handler, summary, current, context_id, message).await?,
            Event::BadCommand {
                context_id,
                error,
                message_id,
                command_field: field,
                has_data,
            } => {
                tracing::warn!(%error, "bad DIMSE command from {}", summary.calling_ae);
                let Some(id) = message_id else {
                    return Err(ProtocolError::MalformedCommand(error).into());
                };
                let Some(response) = failure_response(field, id) else {
                    return Err(ProtocolError::MalformedCommand(error).into());
                };
                if has_data {
                    *current = Current::Discard {
                        context_id,
                        response: Some(response),
                    };
                } else {
                    conn.assoc.send_message(context_id, &response)?;
                }
            }
            Event::Data { bytes, last, .. } => {
                on_data(conn, peer, handler, config, summary, current, bytes, last).await?
            }
            Event::ReleaseRequested => {
                conn.assoc.confirm_release()?;
                conn.finish(config.stall_timeout).await?;
                return Ok(Ended::Released);
            }
            Event::Aborted(Aborted::ByPeer(source)) => return Ok(Ended::AbortedByPeer(source)),
            Event::Aborted(Aborted::ByUs(e)) => return Err(e.into()),
            Event::Released => return Ok(Ended::Released),
            Event::AssociateRequested(_) | Event::Accepted(_) | Event::Rejected(_) => {}
        }
    }
}

/// The failure response to an undecodable request (`None` for responses and unknown fields
/// we cannot answer in kind).
fn failure_response(field: Option<u16>, id: u16) -> Option<Message> {
    use command_field as cf;
    let status = Status::CANNOT_UNDERSTAND;
    let retrieve = |status| RetrieveRsp {
        responding_to: id,
        sop_class: None,
        status,
        counts: Default::default(),
        has_identifier: false,
        error_comment: None,
    };
    Some(match field? {
        cf::C_STORE_RQ => Message::StoreRsp(StoreRsp {
            responding_to: id,
            sop_class: None,
            sop_instance: None,
            status,
            error_comment: Some("cannot understand the C-STORE-RQ".into()),
        }),
        cf::C_ECHO_RQ => Message::EchoRsp(EchoRsp {
            responding_to: id,
            sop_class: None,
            status,
        }),
        cf::C_FIND_RQ => Message::FindRsp(FindRsp {
            responding_to: id,
            sop_class: None,
            status,
            has_identifier: false,
            error_comment: None,
        }),
        cf::C_GET_RQ => Message::GetRsp(retrieve(status)),
        cf::C_MOVE_RQ => Message::MoveRsp(retrieve(status)),
        _ => return None,
    })
}

async fn on_command<IO, H>(
    conn: &mut Conn<IO>,
    peer: SocketAddr,
    handler: &H,
    summary: &mut AssociationSummary,
    current: &mut Current<H::Sink>,
    context_id: u8,
    message: Message,
) -> Result<(), DimseError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: ScpHandler,
{
    let transfer_syntax = conn.assoc.transfer_syntax_of(context_id);
    match message {
        Message::EchoRq(rq) => {
            summary.echoes += 1;
            let rsp = Message::EchoRsp(EchoRsp {
                responding_to: rq.message_id,
                sop_class: Some(rq.sop_class),
                status: Status::SUCCESS,
            });
            conn.assoc.send_message(context_id, &rsp)?;
        }
        Message::StoreRq(rq) => {
            let request = StoreRequest {
                sop_class: rq.sop_class.clone(),
                sop_instance: rq.sop_instance.clone(),
                transfer_syntax,
                calling_ae: summary.calling_ae.clone(),
                called_ae: summary.called_ae.clone(),
                peer,
                priority: rq.priority,
                message_id: rq.message_id,
                move_originator_ae: rq.move_originator_ae.clone(),
                move_originator_message_id: rq.move_originator_message_id,
            };
            let (sink, refused) = match handler.begin_store(&request).await {
                Ok(sink) => (Some(sink), None),
                Err(outcome) => (None, Some(outcome)),
            };
            *current = Current::Store {
                context_id,
                rq,
                sink,
                refused,
            };
        }
        Message::FindRq(rq) => {
            *current = Current::Find {
                context_id,
                rq,
                identifier: BytesMut::new(),
            };
        }
        Message::GetRq(rq) => {
            *current = Current::Retrieve {
                context_id,
                rq: RetrieveRq::Get(rq),
                identifier: BytesMut::new(),
            };
        }
        Message::MoveRq(rq) => {
            *current = Current::Retrieve {
                context_id,
                rq: RetrieveRq::Move(rq),
                identifier: BytesMut::new(),
            };
        }
        Message::CancelRq(_) => {} // nothing of ours is in progress
        other => {
            tracing::warn!(
                "ignoring {} from {}: we are the SCP",
                other.name(),
                summary.calling_ae
            );
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn on_data<IO, H>(
    conn: &mut Conn<IO>,
    peer: SocketAddr,
    handler: &H,
    config: &ScpConfig,
    summary: &mut AssociationSummary,
    current: &mut Current<H::Sink>,
    bytes: Bytes,
    last: bool,
) -> Result<(), DimseError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: ScpHandler,
{
    match current {
        Current::Store { sink, refused, .. } => {
            if let Some(s) = sink.as_mut() {
                if let Err(failure) = s.data(bytes).await {
                    if let Some(s) = sink.take() {
                        s.abort().await;
                    }
                    *refused = Some(failure);
                }
            }
            if !last {
                return Ok(());
            }
            let Current::Store {
                context_id,
                rq,
                sink,
                refused,
            } = std::mem::replace(current, Current::Idle)
            else {
                return Ok(());
            };
            let outcome = match (sink, refused) {
                (Some(sink), _) => sink.finish().await,
                (None, Some(refused)) => refused,
                (None, None) => Outcome::from(Status::PROCESSING_FAILURE),
            };
            if outcome.status.is_done() {
                summary.stored += 1;
            } else {
                summary.store_failures += 1;
            }
            let rsp = Message::StoreRsp(StoreRsp {
                responding_to: rq.message_id,
                sop_class: Some(rq.sop_class),
                sop_instance: Some(rq.sop_instance),
                status: outcome.status,
                error_comment: outcome.comment,
            });
            conn.assoc.send_message(context_id, &rsp)?;
        }
        Current::Find { identifier, .. } => {
            if !collect_identifier(identifier, &bytes, last, config.max_identifier_length)? {
                return Ok(());
            }
            let Current::Find {
                context_id,
                rq,
                identifier,
            } = std::mem::replace(current, Current::Idle)
            else {
                return Ok(());
            };
            summary.finds += 1;
            find(
                conn,
                peer,
                handler,
                config,
                summary,
                context_id,
                rq,
                identifier.freeze(),
            )
            .await?;
        }
        Current::Retrieve { identifier, .. } => {
            if !collect_identifier(identifier, &bytes, last, config.max_identifier_length)? {
                return Ok(());
            }
            let Current::Retrieve {
                context_id,
                rq,
                identifier,
            } = std::mem::replace(current, Current::Idle)
            else {
                return Ok(());
            };
            let transfer_syntax = conn.assoc.transfer_syntax_of(context_id);
            let identifier = identifier.freeze();
            let request = match rq {
                RetrieveRq::Get(rq) => {
                    summary.gets += 1;
                    retrieve::Request::Get(GetRequest {
                        sop_class: rq.sop_class,
                        transfer_syntax: transfer_syntax.clone(),
                        identifier,
                        calling_ae: summary.calling_ae.clone(),
                        peer,
                        priority: rq.priority,
                        message_id: rq.message_id,
                    })
                }
                RetrieveRq::Move(rq) => {
                    summary.moves += 1;
                    retrieve::Request::Move(MoveRequest {
                        sop_class: rq.sop_class,
                        transfer_syntax: transfer_syntax.clone(),
                        identifier,
                        calling_ae: summary.calling_ae.clone(),
                        peer,
                        priority: rq.priority,
                        message_id: rq.message_id,
                        destination: rq.destination,
                    })
                }
            };
            let done = retrieve::retrieve(
                conn,
                handler,
                config.stall_timeout,
                context_id,
                transfer_syntax,
                request,
            )
            .await?;
            tracing::debug!(status = %done.status, "retrieval answered");
        }
        Current::Discard { .. } => {
            if !last {
                return Ok(());
            }
            if let Current::Discard {
                context_id,
                response: Some(response),
            } = std::mem::replace(current, Current::Idle)
            {
                conn.assoc.send_message(context_id, &response)?;
            }
        }
        Current::Idle => {} // the association validates order: not reached
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn find<IO, H>(
    conn: &mut Conn<IO>,
    peer: SocketAddr,
    handler: &H,
    config: &ScpConfig,
    summary: &AssociationSummary,
    context_id: u8,
    rq: crate::message::FindRq,
    identifier: Bytes,
) -> Result<(), DimseError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: ScpHandler,
{
    let transfer_syntax = conn.assoc.transfer_syntax_of(context_id);
    let request = FindRequest {
        sop_class: rq.sop_class.clone(),
        transfer_syntax,
        identifier,
        calling_ae: summary.calling_ae.clone(),
        peer,
        priority: rq.priority,
        message_id: rq.message_id,
    };
    let mut responder = FindResponder {
        conn,
        context_id,
        message_id: rq.message_id,
        sop_class: rq.sop_class.clone(),
        timeout: config.stall_timeout,
        interrupted: None,
        error: None,
    };
    let outcome = handler.find(&request, &mut responder).await;
    let FindResponder {
        conn,
        interrupted,
        error,
        ..
    } = responder;
    if let Some(e) = error {
        return Err(e);
    }
    let (status, comment) = match interrupted {
        Some(Interrupted::Cancelled) => (Status::CANCEL, None),
        _ => (outcome.status, outcome.comment),
    };
    conn.assoc.send_message(
        context_id,
        &Message::FindRsp(FindRsp {
            responding_to: rq.message_id,
            sop_class: Some(rq.sop_class),
            status,
            has_identifier: false,
            error_comment: comment,
        }),
    )?;
    Ok(())
}

/// The driver's [`Responder`] for one C-FIND.
struct FindResponder<'a, IO> {
    conn: &'a mut Conn<IO>,
    context_id: u8,
    message_id: u16,
    sop_class: String,
    timeout: Duration,
    interrupted: Option<Interrupted>,
    error: Option<DimseError>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> FindResponder<'_, IO> {
    async fn send(&mut self, identifier: Bytes) -> Result<(), DimseError> {
        let rsp = Message::FindRsp(FindRsp {
            responding_to: self.message_id,
            sop_class: Some(self.sop_class.clone()),
            status: Status::PENDING,
            has_identifier: true,
            error_comment: None,
        });
        self.conn.assoc.send_message(self.context_id, &rsp)?;
        self.conn
            .assoc
            .send_data(self.context_id, identifier, true)?;
        self.conn.flush(self.timeout).await?;
        for event in self.conn.try_read().await? {
            match event {
                Event::Command {
                    message: Message::CancelRq(c),
                    ..
                } if c.responding_to == self.message_id => {
                    self.interrupted = Some(Interrupted::Cancelled);
                }
                Event::Aborted(Aborted::ByPeer(source)) => {
                    return Err(DimseError::AbortedByPeer(source))
                }
                Event::Aborted(Aborted::ByUs(e)) => return Err(e.into()),
                other => {
                    // Synchronous operations only: nothing else may arrive mid-find.
                    let _ = other;
                    return Err(ProtocolError::UnexpectedPdu {
                        pdu: "command during C-FIND",
                        state: "C-FIND in progress",
                    }
                    .into());
                }
            }
        }
        Ok(())
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> Responder for FindResponder<'_, IO> {
    async fn pending(&mut self, identifier: Bytes) -> Result<(), Interrupted> {
        if let Some(i) = self.interrupted {
            return Err(i);
        }
        if let Err(e) = self.send(identifier).await {
            self.error = Some(e);
            self.interrupted = Some(Interrupted::AssociationEnded);
        }
        match self.interrupted {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

/// Add a fragment to a C-FIND / C-MOVE / C-GET identifier (capped at `max` bytes); `true`
/// once its last fragment is in.
fn collect_identifier(
    identifier: &mut bytes::BytesMut,
    fragment: &[u8],
    last: bool,
    max: usize,
) -> Result<bool, DimseError> {
    if identifier.len() + fragment.len() > max {
        return Err(DimseError::Protocol(ProtocolError::CommandTooLarge { max }));
    }
    identifier.extend_from_slice(fragment);
    Ok(last)
}
