//! C-GET and C-MOVE in the driver: the [`GetSession`] and [`MoveProgress`] handed to the
//! handler, the sub-operation counts, pending responses, C-CANCEL, and the final response.

use super::handler::{
    Counted, GetRequest, GetSession, Interrupted, MoveProgress, MoveRequest, NotSent, Outcome,
    ScpHandler, SubOperation,
};
use crate::association::{Aborted, Event};
use crate::conn::{read_piece, Conn};
use crate::error::{DimseError, ProtocolError};
use crate::identifier;
use crate::message::{Message, Priority, RetrieveRsp, StoreRq, SubOperations};
use crate::status::Status;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Counts of one C-GET or C-MOVE.
#[derive(Debug, Default)]
pub(super) struct Tally {
    expected: usize,
    completed: usize,
    failed: usize,
    warning: usize,
    /// UIDs of failed sub-operations, up to what the Failed SOP Instance UID List can hold.
    failed_uids: Vec<String>,
    failed_uids_len: usize,
}

fn saturate(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl Tally {
    fn done(&self) -> usize {
        self.completed + self.failed + self.warning
    }

    fn remaining(&self) -> usize {
        self.expected.saturating_sub(self.done())
    }

    fn count(&mut self, sop_instance: &str, result: &SubOperation) {
        match result.counted() {
            Counted::Completed => self.completed += 1,
            Counted::Warning => self.warning += 1,
            Counted::Failed => {
                self.failed += 1;
                let len = sop_instance.len() + 1;
                if self.failed_uids_len + len <= identifier::MAX_LIST_LENGTH + 1 {
                    self.failed_uids_len += len;
                    self.failed_uids.push(sop_instance.to_string());
                }
            }
        }
    }

    fn pending(&self) -> SubOperations {
        SubOperations::pending(
            saturate(self.remaining()),
            saturate(self.completed),
            saturate(self.failed),
            saturate(self.warning),
        )
    }

    /// The final status: Cancel if cancelled; the handler's if not success; else derived
    /// from the counts.
    fn final_status(&self, outcome: Outcome, cancelled: bool) -> (Status, Option<String>) {
        if cancelled {
            return (Status::CANCEL, None);
        }
        if outcome.status != Status::SUCCESS {
            return (outcome.status, outcome.comment);
        }
        if self.failed > 0 && self.completed == 0 && self.warning == 0 {
            let comment = format!("all {} sub-operations failed", self.failed);
            (Status::OUT_OF_RESOURCES_SUBOPERATIONS, Some(comment))
        } else if self.failed > 0 || self.warning > 0 {
            (Status::SUBOPERATIONS_FAILED, outcome.comment)
        } else {
            (Status::SUCCESS, outcome.comment)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Move,
}

/// The state of one C-GET or C-MOVE on the association.
struct Retrieval<'a, IO> {
    conn: &'a mut Conn<IO>,
    kind: Kind,
    context_id: u8,
    message_id: u16,
    sop_class: String,
    priority: Priority,
    timeout: Duration,
    tally: Tally,
    cancelled: bool,
    error: Option<DimseError>,
    next_sub_id: u16,
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> Retrieval<'_, IO> {
    fn response(&self, status: Status, counts: SubOperations, comment: Option<String>) -> Message {
        let rsp = RetrieveRsp {
            responding_to: self.message_id,
            sop_class: Some(self.sop_class.clone()),
            status,
            counts,
            has_identifier: false,
            error_comment: comment,
        };
        match self.kind {
            Kind::Get => Message::GetRsp(rsp),
            Kind::Move => Message::MoveRsp(rsp),
        }
    }

    /// What an event that arrives while a retrieval runs means: a C-CANCEL for it is noted;
    /// the end of the association or anything else is an error.
    fn on_event(&mut self, event: Event) -> Result<(), DimseError> {
        match event {
            Event::Command {
                message: Message::CancelRq(c),
                ..
            } => {
                if c.responding_to == self.message_id {
                    self.cancelled = true;
                }
                Ok(())
            }
            Event::Aborted(Aborted::ByPeer(source)) => Err(DimseError::AbortedByPeer(source)),
            Event::Aborted(Aborted::ByUs(e)) => Err(e.into()),
            _ => Err(ProtocolError::UnexpectedPdu {
                pdu: "a message other than C-CANCEL-RQ",
                state: match self.kind {
                    Kind::Get => "C-GET in progress",
                    Kind::Move => "C-MOVE in progress",
                },
            }
            .into()),
        }
    }

    /// Count a finished sub-operation; send a pending response if more remain; notice a
    /// C-CANCEL that is already there.
    async fn after(&mut self, sop_instance: &str, result: &SubOperation) -> Result<(), DimseError> {
        self.tally.count(sop_instance, result);
        if let SubOperation::NotSent(reason) = result {
            tracing::warn!(
                sop_instance,
                %reason,
                "{} sub-operation not sent",
                if self.kind == Kind::Get { "C-GET" } else { "C-MOVE" }
            );
        }
        if !self.cancelled && self.tally.remaining() > 0 {
            let rsp = self.response(Status::PENDING, self.tally.pending(), None);
            self.conn.assoc.send_message(self.context_id, &rsp)?;
            self.conn.flush(self.timeout).await?;
        }
        self.poll_cancel().await
    }

    async fn poll_cancel(&mut self) -> Result<(), DimseError> {
        for event in self.conn.try_read().await? {
            self.on_event(event)?;
        }
        Ok(())
    }

    fn gate(&self) -> Result<(), Interrupted> {
        if self.error.is_some() {
            Err(Interrupted::AssociationEnded)
        } else if self.cancelled {
            Err(Interrupted::Cancelled)
        } else {
            Ok(())
        }
    }

    fn fail(&mut self, e: DimseError) -> Interrupted {
        self.error = Some(e);
        Interrupted::AssociationEnded
    }

    /// One C-STORE sub-operation on this association (C-GET).
    async fn store_here<R: AsyncRead + Unpin>(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        data: R,
    ) -> Result<SubOperation, DimseError> {
        let Some(negotiated) = self.conn.assoc.negotiated() else {
            return Ok(SubOperation::NotSent(NotSent::Other(
                "no association".into(),
            )));
        };
        // As stored, or Explicit → Implicit VR LE if the workstation took only the latter.
        let Some(route) = crate::transcode::route(negotiated, sop_class, transfer_syntax) else {
            let accepted = negotiated
                .accepted()
                .filter(|(_, a, _)| *a == sop_class)
                .map(|(_, _, ts)| ts.to_string())
                .collect();
            return Ok(SubOperation::NotSent(NotSent::NoContext {
                sop_class: sop_class.to_string(),
                transfer_syntax: transfer_syntax.to_string(),
                accepted,
            }));
        };
        if !negotiated
            .roles
            .iter()
            .any(|r| r.sop_class == sop_class && r.scp)
        {
            return Ok(SubOperation::NotSent(NotSent::NoScpRole {
                sop_class: sop_class.to_string(),
            }));
        }
        let context_id = route.context_id;
        let mut data = crate::transcode::Outgoing::new(data, route.transcode);
        let piece = self.conn.piece_size();
        let first = match read_piece(&mut data, piece).await {
            Ok(first) => first,
            Err(e) => return Ok(SubOperation::NotSent(NotSent::Unreadable(e.to_string()))),
        };
        let id = self.next_sub_id;
        self.next_sub_id = self.next_sub_id.wrapping_add(1).max(1);
        self.conn.assoc.send_message(
            context_id,
            &Message::StoreRq(StoreRq {
                message_id: id,
                sop_class: sop_class.to_string(),
                sop_instance: sop_instance.to_string(),
                priority: self.priority,
                move_originator_ae: None,
                move_originator_message_id: None,
            }),
        )?;
        self.conn
            .send_data_set(context_id, first, &mut data, piece, self.timeout)
            .await?;
        loop {
            let event = self
                .conn
                .next_event(self.timeout, "the C-STORE-RSP of a C-GET sub-operation")
                .await?
                .ok_or(DimseError::ConnectionClosed)?;
            match event {
                Event::Command {
                    message: Message::StoreRsp(r),
                    ..
                } if r.responding_to == id => {
                    return Ok(SubOperation::Answered(Outcome {
                        status: r.status,
                        comment: r.error_comment,
                    }));
                }
                Event::Command {
                    message: Message::StoreRsp(r),
                    ..
                } => {
                    return Err(DimseError::UnexpectedResponse(format!(
                        "C-STORE-RSP to message {} while waiting for {id}",
                        r.responding_to
                    )))
                }
                other => self.on_event(other)?,
            }
        }
    }
}

/// The driver's [`GetSession`].
struct GetDriver<'a, IO>(Retrieval<'a, IO>);

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> GetSession for GetDriver<'_, IO> {
    fn expect(&mut self, instances: usize) {
        self.0.tally.expected = instances;
    }

    async fn store<R: AsyncRead + Send + Unpin>(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        data: R,
    ) -> Result<SubOperation, Interrupted> {
        let r = &mut self.0;
        r.gate()?;
        let result = match r
            .store_here(sop_class, sop_instance, transfer_syntax, data)
            .await
        {
            Ok(result) => result,
            Err(e) => return Err(r.fail(e)),
        };
        if let Err(e) = r.after(sop_instance, &result).await {
            return Err(r.fail(e));
        }
        Ok(result)
    }

    async fn skip(&mut self, sop_instance: &str, reason: NotSent) -> Result<(), Interrupted> {
        let r = &mut self.0;
        r.gate()?;
        if let Err(e) = r.after(sop_instance, &SubOperation::NotSent(reason)).await {
            return Err(r.fail(e));
        }
        Ok(())
    }
}

/// The driver's [`MoveProgress`].
struct MoveDriver<'a, IO>(Retrieval<'a, IO>);

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> MoveProgress for MoveDriver<'_, IO> {
    fn expect(&mut self, instances: usize) {
        self.0.tally.expected = instances;
    }

    async fn report(
        &mut self,
        sop_instance: &str,
        result: SubOperation,
    ) -> Result<(), Interrupted> {
        let r = &mut self.0;
        if r.error.is_some() {
            return Err(Interrupted::AssociationEnded);
        }
        if let Err(e) = r.after(sop_instance, &result).await {
            return Err(r.fail(e));
        }
        r.gate()
    }

    async fn check(&mut self) -> Result<(), Interrupted> {
        let r = &mut self.0;
        r.gate()?;
        if let Err(e) = r.poll_cancel().await {
            return Err(r.fail(e));
        }
        r.gate()
    }
}

/// What a finished retrieval did, for the association summary.
pub(super) struct Done {
    pub(super) status: Status,
}

/// Run a C-GET or C-MOVE whose identifier was collected: the handler, then the final
/// response.
#[allow(clippy::too_many_arguments)]
pub(super) async fn retrieve<IO, H>(
    conn: &mut Conn<IO>,
    handler: &H,
    timeout: Duration,
    context_id: u8,
    transfer_syntax: String,
    request: Request,
) -> Result<Done, DimseError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: ScpHandler,
{
    let (kind, message_id, sop_class, priority) = match &request {
        Request::Get(g) => (Kind::Get, g.message_id, g.sop_class.clone(), g.priority),
        Request::Move(m) => (Kind::Move, m.message_id, m.sop_class.clone(), m.priority),
    };
    let retrieval = Retrieval {
        conn,
        kind,
        context_id,
        message_id,
        sop_class,
        priority,
        timeout,
        tally: Tally::default(),
        cancelled: false,
        error: None,
        next_sub_id: 1,
    };
    let (outcome, mut r) = match &request {
        Request::Get(g) => {
            let mut session = GetDriver(retrieval);
            let outcome = handler.get(g, &mut session).await;
            (outcome, session.0)
        }
        Request::Move(m) => {
            let mut progress = MoveDriver(retrieval);
            let outcome = handler.move_to(m, &mut progress).await;
            (outcome, progress.0)
        }
    };
    if let Some(e) = r.error.take() {
        return Err(e);
    }
    // A C-CANCEL may still be waiting in the socket.
    r.poll_cancel().await?;
    let (status, comment) = r.tally.final_status(outcome, r.cancelled);
    let counts = SubOperations::final_counts(
        status,
        saturate(r.tally.remaining()),
        saturate(r.tally.completed),
        saturate(r.tally.failed),
        saturate(r.tally.warning),
    );
    let mut rsp = r.response(status, counts, comment);
    let list = if status != Status::SUCCESS {
        identifier::failed_sop_instance_uid_list(&r.tally.failed_uids, &transfer_syntax)
    } else {
        None
    };
    if list.is_some() {
        if let Message::GetRsp(x) | Message::MoveRsp(x) = &mut rsp {
            x.has_identifier = true;
        }
    }
    r.conn.assoc.send_message(context_id, &rsp)?;
    if let Some((bytes, _)) = list {
        r.conn.assoc.send_data(context_id, bytes, true)?;
    }
    r.conn.flush(timeout).await?;
    Ok(Done { status })
}

/// A C-GET or C-MOVE request with its identifier.
pub(super) enum Request {
    Get(GetRequest),
    Move(MoveRequest),
}
