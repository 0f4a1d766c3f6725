//! The association state machine (PS3.8 §9), sans-IO, for both roles.
//!
//! Bytes in ([`Association::handle_input`]), events out ([`Association::poll_event`]), bytes
//! out ([`Association::poll_transmit`]). Input is parsed lazily: `poll_event` decodes only as
//! far as the next event, so a driver that stops calling it (because a consumer is busy) holds
//! at most one PDU plus what it last read. Protocol violations by the peer queue an A-ABORT,
//! close the association and surface as [`Event::Aborted`] with [`Aborted::ByUs`].

use crate::command_set::{element, CommandSet, NO_DATA_SET};
use crate::error::{ProtocolError, UsageError};
use crate::message::Message;
use crate::negotiation::{
    AcceptPolicy, AssociateRequest, ContextOutcome, Negotiated, NegotiatedContext, ProposedContext,
    Reject, RejectReason, RejectResult, RoleSelection, APPLICATION_CONTEXT,
};
use crate::outbox::Outbox;
use crate::pdu::{self, clean, Pdv, PDU_HEADER, P_DATA_TF};
use crate::transfer_syntaxes::IMPLICIT_VR_LITTLE_ENDIAN;
use bytes::buf::Limit;
use bytes::{BufMut, Bytes, BytesMut};
use dicom_ul::pdu as ul;
use std::collections::VecDeque;
use std::fmt;

/// The maximum PDU length we advertise and accept by default: 256 KiB. Any received PDU whose
/// length field exceeds the configured maximum is refused with an A-ABORT before a byte of its
/// body is buffered, so a peer can never make us allocate more than this per association.
pub const DEFAULT_MAX_PDU_LENGTH: u32 = 256 * 1024;

/// The largest command set we reassemble (64 KiB; real ones are a few hundred bytes).
pub const DEFAULT_MAX_COMMAND_LENGTH: usize = 64 * 1024;

/// yilian's Implementation Class UID and Version Name (one definition, in `yilian-dicom`).
pub use yilian_dicom::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

/// Limits and identity of our side.
#[derive(Debug, Clone)]
pub struct AssociationConfig {
    /// Maximum PDU length we advertise and accept (clamped to 1 KiB ..= 16 MiB).
    pub max_pdu_length: u32,
    /// Maximum command set length we reassemble.
    pub max_command_length: usize,
    /// Our Implementation Class UID.
    pub implementation_class_uid: String,
    /// Our Implementation Version Name.
    pub implementation_version_name: String,
}

impl Default for AssociationConfig {
    fn default() -> Self {
        AssociationConfig {
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            max_command_length: DEFAULT_MAX_COMMAND_LENGTH,
            implementation_class_uid: IMPLEMENTATION_CLASS_UID.to_string(),
            implementation_version_name: IMPLEMENTATION_VERSION_NAME.to_string(),
        }
    }
}

impl AssociationConfig {
    fn max_pdu(&self) -> u32 {
        self.max_pdu_length.clamp(1024, 16 << 20)
    }
}

/// Which side of the association we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the A-ASSOCIATE-RQ (SCU side).
    Requestor,
    /// We received it (SCP side).
    Acceptor,
}

/// Where the association is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Acceptor: waiting for the A-ASSOCIATE-RQ.
    AwaitingRequest,
    /// Acceptor: the request was reported; call `accept` or `reject`.
    AwaitingDecision,
    /// Requestor: waiting for A-ASSOCIATE-AC or -RJ.
    AwaitingAcceptance,
    /// P-DATA flows both ways.
    Established,
    /// We sent A-RELEASE-RQ; waiting for A-RELEASE-RP.
    AwaitingReleaseResponse,
    /// The peer sent A-RELEASE-RQ; call `confirm_release` (we may still send P-DATA first).
    PeerRequestedRelease,
    /// Released, rejected or aborted: only queued output remains.
    Closed,
}

impl State {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            State::AwaitingRequest => "awaiting A-ASSOCIATE-RQ",
            State::AwaitingDecision => "awaiting the acceptor's decision",
            State::AwaitingAcceptance => "awaiting A-ASSOCIATE-AC",
            State::Established => "established",
            State::AwaitingReleaseResponse => "awaiting A-RELEASE-RP",
            State::PeerRequestedRelease => "release requested by the peer",
            State::Closed => "closed",
        }
    }
}

/// Who aborted, as the A-ABORT says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortSource {
    /// Source 0: the service user (the peer application).
    ServiceUser,
    /// Source 2: the peer's upper layer, with its reason code.
    ServiceProvider(u8),
    /// Source 1 (reserved).
    Reserved,
}

impl fmt::Display for AbortSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortSource::ServiceUser => f.write_str("service user"),
            AbortSource::ServiceProvider(r) => write!(f, "service provider, reason {r}"),
            AbortSource::Reserved => f.write_str("reserved source"),
        }
    }
}

/// How an association was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aborted {
    /// The peer sent A-ABORT.
    ByPeer(AbortSource),
    /// The peer broke the protocol; we queued A-ABORT.
    ByUs(ProtocolError),
}

/// What happened on the association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Acceptor: a requestor asks; answer with [`Association::accept`] or
    /// [`Association::reject`].
    AssociateRequested(Box<AssociateRequest>),
    /// Requestor: the peer accepted (some contexts may be rejected, see
    /// [`NegotiatedContext::outcome`]).
    Accepted(Box<Negotiated>),
    /// Requestor: the peer rejected. Acceptor: we rejected a request on our own (application
    /// context or protocol version not supported).
    Rejected(Reject),
    /// A complete command.
    Command {
        /// Its presentation context.
        context_id: u8,
        /// The message.
        message: Message,
    },
    /// A command whose elements decoded but which is not a valid message (e.g. a missing
    /// required field). Its data set, if announced, follows as [`Event::Data`].
    BadCommand {
        /// Its presentation context.
        context_id: u8,
        /// What is wrong.
        error: crate::error::CommandError,
        /// Its Message ID, if present.
        message_id: Option<u16>,
        /// Its Command Field, if present.
        command_field: Option<u16>,
        /// Whether a data set follows.
        has_data: bool,
    },
    /// A fragment of the current command's data set, as soon as its PDV arrived (never
    /// buffered: a 1 GiB instance streams through in PDU-sized slices).
    Data {
        /// Its presentation context.
        context_id: u8,
        /// The fragment (a slice of the received PDU).
        bytes: Bytes,
        /// The data set's last fragment.
        last: bool,
    },
    /// The peer asks to release; answer with [`Association::confirm_release`].
    ReleaseRequested,
    /// The release completed (we received A-RELEASE-RP).
    Released,
    /// The association was aborted.
    Aborted(Aborted),
}

/// What a requestor proposes.
#[derive(Debug, Clone)]
pub struct Request {
    /// Our AE title.
    pub calling_ae: String,
    /// The peer's AE title.
    pub called_ae: String,
    /// (abstract syntax, transfer syntaxes) per context; IDs are assigned 1, 3, 5, …
    pub contexts: Vec<(String, Vec<String>)>,
    /// Role selections to propose.
    pub roles: Vec<RoleSelection>,
}

/// One association, either side. See the module documentation.
#[derive(Debug)]
pub struct Association {
    role: Role,
    state: State,
    config: AssociationConfig,
    input: BytesMut,
    /// Remaining PDV items of the P-DATA-TF being delivered.
    items: Bytes,
    events: VecDeque<Event>,
    out: Outbox,
    negotiated: Option<Negotiated>,
    /// Acceptor: the request awaiting a decision.
    request: Option<AssociateRequest>,
    /// Requestor: what we proposed.
    proposed: Vec<ProposedContext>,
    /// A command being reassembled: (context, fragments so far).
    rx_command: Option<(u8, BytesMut)>,
    /// A data set is expected on this context.
    rx_data: Option<u8>,
    /// We are sending a data set on this context.
    tx_data: Option<u8>,
    /// Acceptor in a release collision: answer the peer's RQ once its RP arrived.
    release_collision: bool,
}

impl Association {
    /// An acceptor waiting for an A-ASSOCIATE-RQ.
    pub fn accept_incoming(config: AssociationConfig) -> Self {
        Self::new(Role::Acceptor, State::AwaitingRequest, config)
    }

    /// A requestor; its A-ASSOCIATE-RQ is queued for [`poll_transmit`](Self::poll_transmit).
    pub fn request(config: AssociationConfig, request: Request) -> Result<Self, UsageError> {
        check_ae(&request.calling_ae)?;
        check_ae(&request.called_ae)?;
        if request.contexts.len() > 128 {
            return Err(UsageError::TooManyContexts(request.contexts.len()));
        }
        let mut this = Self::new(Role::Requestor, State::AwaitingAcceptance, config);
        this.proposed = request
            .contexts
            .iter()
            .enumerate()
            .map(|(i, (abstract_syntax, ts))| ProposedContext {
                id: (2 * i + 1) as u8,
                abstract_syntax: abstract_syntax.clone(),
                transfer_syntaxes: ts.clone(),
            })
            .collect();
        let mut user_variables = this.our_user_variables();
        user_variables.splice(2..2, role_items(&request.roles));
        let rq = ul::AssociationRQ {
            protocol_version: 1,
            calling_ae_title: request.calling_ae.clone(),
            called_ae_title: request.called_ae.clone(),
            application_context_name: APPLICATION_CONTEXT.to_string(),
            presentation_contexts: this
                .proposed
                .iter()
                .map(|p| ul::PresentationContextProposed {
                    id: p.id,
                    abstract_syntax: p.abstract_syntax.clone(),
                    transfer_syntaxes: p.transfer_syntaxes.clone(),
                })
                .collect(),
            user_variables,
        };
        let bytes = pdu::encode_control(&ul::Pdu::AssociationRQ(rq)).map_err(UsageError::Encode)?;
        this.out.control(bytes);
        Ok(this)
    }

    fn new(role: Role, state: State, config: AssociationConfig) -> Self {
        Association {
            role,
            state,
            config,
            input: BytesMut::new(),
            items: Bytes::new(),
            events: VecDeque::new(),
            out: Outbox::default(),
            negotiated: None,
            request: None,
            proposed: Vec::new(),
            rx_command: None,
            rx_data: None,
            tx_data: None,
            release_collision: false,
        }
    }

    fn our_user_variables(&self) -> Vec<ul::UserVariableItem> {
        vec![
            ul::UserVariableItem::MaxLength(self.config.max_pdu()),
            ul::UserVariableItem::ImplementationClassUID(
                self.config.implementation_class_uid.clone(),
            ),
            ul::UserVariableItem::ImplementationVersionName(
                self.config.implementation_version_name.clone(),
            ),
        ]
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Closed (released, rejected or aborted)?
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The negotiation outcome, once established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The accepted presentation context with this ID.
    pub fn context(&self, id: u8) -> Option<&NegotiatedContext> {
        self.negotiated.as_ref().and_then(|n| n.context(id))
    }

    /// The transfer syntax accepted for this presentation context (empty if there is none).
    pub fn transfer_syntax_of(&self, id: u8) -> String {
        self.context(id)
            .and_then(|c| c.transfer_syntax())
            .unwrap_or_default()
            .to_string()
    }

    /// Is a data set expected from the peer (a command announced one, its last fragment has
    /// not arrived)?
    pub fn receiving_data_set(&self) -> bool {
        self.rx_data.is_some()
    }

    /// Bytes received but not yet turned into events.
    pub fn buffered_input(&self) -> usize {
        self.input.len() + self.items.len()
    }

    /// Feed bytes received from the peer (any split). Ignored once closed.
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.state != State::Closed {
            self.input.extend_from_slice(data);
        }
    }

    /// The input buffer, for a driver that reads straight into it (`AsyncReadExt::read_buf`)
    /// instead of copying through [`Association::handle_input`]. The read is limited so that it
    /// never crosses the end of the PDU under way: first its 6-byte header, then exactly the
    /// rest of it, into room reserved for the whole PDU. A PDU's bytes are thus never moved
    /// once read (no buffer grows under them), and data set fragments are slices of the very
    /// bytes read from the socket. Bytes read after the association closed are ignored like
    /// those given to `handle_input`.
    pub fn input_buffer(&mut self) -> Limit<&mut BytesMut> {
        if self.state == State::Closed {
            self.input.clear();
        }
        let have = self.input.len();
        let want = match pdu::peek_header(&self.input) {
            // A PDU larger than allowed has already failed the association (`poll_event`).
            Some((_, length)) => (PDU_HEADER + length as usize).saturating_sub(have),
            None => PDU_HEADER.saturating_sub(have),
        };
        // Nothing of this PDU left to read (input waiting for a decision): read on anyway.
        let want = if want == 0 { FALLBACK_READ } else { want };
        self.make_room(want);
        (&mut self.input).limit(want)
    }

    /// Room for `more` bytes after the input, without moving what it holds when that is more
    /// than a header: a buffer too small is replaced by one of the right size (copying the
    /// few bytes it held), never grown by `realloc` (which would copy all of its capacity).
    fn make_room(&mut self, more: usize) {
        if self.input.capacity() - self.input.len() >= more {
            return;
        }
        let mut fresh = BytesMut::with_capacity(self.input.len() + more);
        fresh.extend_from_slice(&self.input);
        self.input = fresh;
    }

    /// The next event, decoding input only as far as needed. `None`: feed more input (or, if
    /// closed, nothing more will happen).
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            // Closed: nothing more. Awaiting our decision: whatever follows the request waits
            // until `accept` (a requestor may not send before the AC anyway).
            if matches!(self.state, State::Closed | State::AwaitingDecision) {
                return None;
            }
            if !self.items.is_empty() {
                match self.next_pdv_event() {
                    Ok(Some(event)) => return Some(event),
                    Ok(None) => continue,
                    Err(e) => {
                        self.fail(e);
                        continue;
                    }
                }
            }
            let (pdu_type, length) = pdu::peek_header(&self.input)?;
            let max = self.config.max_pdu();
            if length > max {
                self.fail(ProtocolError::PduTooLarge { length, max });
                continue;
            }
            let whole = PDU_HEADER + length as usize;
            if self.input.len() < whole {
                // Room only up to the (capped) PDU size announced.
                self.make_room(whole - self.input.len());
                return None;
            }
            let pdu_bytes = self.input.split_to(whole).freeze();
            if let Err(e) = self.handle_pdu(pdu_type, pdu_bytes) {
                self.fail(e);
            }
        }
    }

    /// The next bytes to send, in order. Concatenated, they are the PDU stream.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.poll()
    }

    /// Is output waiting?
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Acceptor: accept the pending request under `policy`; the A-ASSOCIATE-AC is queued.
    pub fn accept(&mut self, policy: &AcceptPolicy) -> Result<&Negotiated, UsageError> {
        let request = match (self.state, self.request.take()) {
            (State::AwaitingDecision, Some(r)) => r,
            _ => return Err(self.wrong_state("accept")),
        };
        let (contexts, roles) = policy.negotiate(&request);
        let results = contexts
            .iter()
            .map(|c| {
                let proposed = request.contexts.iter().find(|p| p.id == c.id);
                let ts = match &c.outcome {
                    ContextOutcome::Accepted { transfer_syntax } => transfer_syntax.clone(),
                    _ => proposed
                        .and_then(|p| p.transfer_syntaxes.first().cloned())
                        .unwrap_or_else(|| IMPLICIT_VR_LITTLE_ENDIAN.to_string()),
                };
                ul::PresentationContextResult {
                    id: c.id,
                    reason: match c.outcome {
                        ContextOutcome::Accepted { .. } => {
                            ul::PresentationContextResultReason::Acceptance
                        }
                        ContextOutcome::UserRejection => {
                            ul::PresentationContextResultReason::UserRejection
                        }
                        ContextOutcome::NoReason => ul::PresentationContextResultReason::NoReason,
                        ContextOutcome::AbstractSyntaxNotSupported => {
                            ul::PresentationContextResultReason::AbstractSyntaxNotSupported
                        }
                        ContextOutcome::TransferSyntaxesNotSupported => {
                            ul::PresentationContextResultReason::TransferSyntaxesNotSupported
                        }
                    },
                    transfer_syntax: ts,
                }
            })
            .collect();
        let mut user_variables = self.our_user_variables();
        user_variables.splice(2..2, role_items(&roles));
        let ac = ul::AssociationAC {
            protocol_version: 1,
            calling_ae_title: request.calling_ae.clone(),
            called_ae_title: request.called_ae.clone(),
            application_context_name: APPLICATION_CONTEXT.to_string(),
            presentation_contexts: results,
            user_variables,
        };
        let bytes = pdu::encode_control(&ul::Pdu::AssociationAC(ac)).map_err(UsageError::Encode)?;
        self.out.control(bytes);
        self.out.set_peer_max(request.max_pdu_length);
        self.state = State::Established;
        Ok(self.negotiated.insert(Negotiated {
            calling_ae: request.calling_ae,
            called_ae: request.called_ae,
            contexts,
            peer_max_pdu_length: request.max_pdu_length,
            peer_implementation_class_uid: request.implementation_class_uid,
            peer_implementation_version_name: request.implementation_version_name,
            roles,
        }))
    }

    /// Acceptor: reject the pending request; the A-ASSOCIATE-RJ is queued and the association
    /// closes.
    pub fn reject(&mut self, reject: Reject) -> Result<(), UsageError> {
        if self.state != State::AwaitingDecision {
            return Err(self.wrong_state("reject"));
        }
        self.send_reject(reject);
        Ok(())
    }

    fn send_reject(&mut self, reject: Reject) {
        let rj = ul::AssociationRJ {
            result: match reject.result {
                RejectResult::Permanent => ul::AssociationRJResult::Permanent,
                RejectResult::Transient => ul::AssociationRJResult::Transient,
            },
            source: rj_source(reject.reason),
        };
        if let Ok(bytes) = pdu::encode_control(&ul::Pdu::AssociationRJ(rj)) {
            self.out.control(bytes);
        }
        self.request = None;
        self.close();
    }

    /// Send a command on an accepted context. If it announces a data set, follow with
    /// [`send_data`](Self::send_data) until `last`.
    pub fn send_message(&mut self, context_id: u8, message: &Message) -> Result<(), UsageError> {
        self.check_can_send("send_message", context_id)?;
        if let Some(open) = self.tx_data {
            return Err(UsageError::DataSetOpen(open));
        }
        self.out
            .pdvs(context_id, true, Bytes::from(message.encode()), true);
        if message.has_data_set() {
            self.tx_data = Some(context_id);
        }
        Ok(())
    }

    /// Send (part of) the data set announced by the last command on `context_id`; fragmented
    /// into PDVs within the peer's maximum PDU length, packed with pending PDVs when they fit.
    pub fn send_data(&mut self, context_id: u8, data: Bytes, last: bool) -> Result<(), UsageError> {
        self.check_can_send("send_data", context_id)?;
        if self.tx_data != Some(context_id) {
            return Err(UsageError::NoDataSetOpen(context_id));
        }
        self.out.pdvs(context_id, false, data, last);
        if last {
            self.tx_data = None;
        }
        Ok(())
    }

    fn check_can_send(&self, action: &'static str, context_id: u8) -> Result<(), UsageError> {
        match self.state {
            State::Established | State::AwaitingReleaseResponse | State::PeerRequestedRelease => {}
            _ => return Err(self.wrong_state(action)),
        }
        if self.context(context_id).is_none() {
            return Err(UsageError::UnknownContext(context_id));
        }
        Ok(())
    }

    /// Ask to release (A-RELEASE-RQ); [`Event::Released`] follows the peer's A-RELEASE-RP.
    pub fn release(&mut self) -> Result<(), UsageError> {
        if self.state != State::Established {
            return Err(self.wrong_state("release"));
        }
        self.control(ul::Pdu::ReleaseRQ);
        self.state = State::AwaitingReleaseResponse;
        Ok(())
    }

    /// Answer the peer's A-RELEASE-RQ (A-RELEASE-RP); the association closes.
    pub fn confirm_release(&mut self) -> Result<(), UsageError> {
        if self.state != State::PeerRequestedRelease {
            return Err(self.wrong_state("confirm_release"));
        }
        self.control(ul::Pdu::ReleaseRP);
        self.close();
        Ok(())
    }

    /// Abort (A-ABORT, source service user). Nothing more is read.
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.control(ul::Pdu::AbortRQ {
                source: ul::AbortRQSource::ServiceUser,
            });
            self.close();
        }
    }

    fn control(&mut self, pdu: ul::Pdu) {
        if let Ok(bytes) = pdu::encode_control(&pdu) {
            self.out.control(bytes);
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.input = BytesMut::new();
        self.items = Bytes::new();
        self.rx_command = None;
        self.rx_data = None;
    }

    /// The peer broke the protocol: queue A-ABORT, close, report.
    fn fail(&mut self, error: ProtocolError) {
        use ul::AbortRQServiceProviderReason as R;
        let reason = match &error {
            ProtocolError::UnrecognizedPdu(_) => R::UnrecognizedPdu,
            ProtocolError::UnexpectedPdu { .. } => R::UnexpectedPdu,
            ProtocolError::PduTooLarge { .. } | ProtocolError::MalformedPdu { .. } => {
                R::InvalidPduParameter
            }
            _ => R::ReasonNotSpecified,
        };
        self.control(ul::Pdu::AbortRQ {
            source: ul::AbortRQSource::ServiceProvider(reason),
        });
        self.close();
        self.events.push_back(Event::Aborted(Aborted::ByUs(error)));
    }

    fn wrong_state(&self, action: &'static str) -> UsageError {
        UsageError::WrongState {
            action,
            state: self.state.name(),
        }
    }

    fn unexpected(&self, pdu_type: u8) -> ProtocolError {
        ProtocolError::UnexpectedPdu {
            pdu: pdu::pdu_name(pdu_type),
            state: self.state.name(),
        }
    }

    fn handle_pdu(&mut self, pdu_type: u8, whole: Bytes) -> Result<(), ProtocolError> {
        if pdu_type == P_DATA_TF {
            return match self.state {
                State::Established | State::AwaitingReleaseResponse => {
                    self.items = whole.slice(PDU_HEADER..);
                    Ok(())
                }
                _ => Err(self.unexpected(pdu_type)),
            };
        }
        let pdu = pdu::decode_control(&whole)?;
        match (self.state, pdu) {
            (_, ul::Pdu::AbortRQ { source }) => {
                self.close();
                let source = match source {
                    ul::AbortRQSource::ServiceUser => AbortSource::ServiceUser,
                    ul::AbortRQSource::ServiceProvider(r) => {
                        AbortSource::ServiceProvider(provider_reason_code(&r))
                    }
                    ul::AbortRQSource::Reserved => AbortSource::Reserved,
                };
                self.events
                    .push_back(Event::Aborted(Aborted::ByPeer(source)));
            }
            (State::AwaitingRequest, ul::Pdu::AssociationRQ(rq)) => self.on_request(rq),
            (State::AwaitingAcceptance, ul::Pdu::AssociationAC(ac)) => self.on_accepted(ac),
            (State::AwaitingAcceptance, ul::Pdu::AssociationRJ(rj)) => {
                self.close();
                self.events.push_back(Event::Rejected(reject_from(&rj)));
            }
            (State::Established, ul::Pdu::ReleaseRQ) => {
                if self.rx_command.is_some() || self.rx_data.is_some() {
                    return Err(self.unexpected(pdu_type));
                }
                self.state = State::PeerRequestedRelease;
                self.events.push_back(Event::ReleaseRequested);
            }
            (State::AwaitingReleaseResponse, ul::Pdu::ReleaseRQ) => {
                // Release collision (PS3.8 §7.2.2): the requestor answers at once, the
                // acceptor once its own request is answered.
                if self.role == Role::Requestor {
                    self.control(ul::Pdu::ReleaseRP);
                } else {
                    self.release_collision = true;
                }
            }
            (State::AwaitingReleaseResponse, ul::Pdu::ReleaseRP) => {
                if self.release_collision {
                    self.control(ul::Pdu::ReleaseRP);
                }
                self.close();
                self.events.push_back(Event::Released);
            }
            _ => return Err(self.unexpected(pdu_type)),
        }
        Ok(())
    }

    fn on_request(&mut self, rq: ul::AssociationRQ) {
        let mut request = AssociateRequest {
            calling_ae: clean(&rq.calling_ae_title),
            called_ae: clean(&rq.called_ae_title),
            contexts: rq
                .presentation_contexts
                .iter()
                .map(|p| ProposedContext {
                    id: p.id,
                    abstract_syntax: clean(&p.abstract_syntax),
                    transfer_syntaxes: p.transfer_syntaxes.iter().map(|t| clean(t)).collect(),
                })
                .collect(),
            max_pdu_length: 0,
            implementation_class_uid: String::new(),
            implementation_version_name: None,
            roles: Vec::new(),
        };
        let mut saw_max = false;
        for item in &rq.user_variables {
            match item {
                ul::UserVariableItem::MaxLength(m) => {
                    request.max_pdu_length = *m;
                    saw_max = true;
                }
                ul::UserVariableItem::ImplementationClassUID(uid) => {
                    request.implementation_class_uid = clean(uid)
                }
                ul::UserVariableItem::ImplementationVersionName(v) => {
                    request.implementation_version_name = Some(clean(v))
                }
                ul::UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles) => {
                    request.roles.push(RoleSelection {
                        sop_class: clean(uid),
                        scu: roles.scu,
                        scp: roles.scp,
                    })
                }
                _ => {}
            }
        }
        if !saw_max {
            request.max_pdu_length = FALLBACK_PEER_MAX;
        }
        if rq.protocol_version & 1 == 0 {
            let reject = Reject {
                result: RejectResult::Permanent,
                reason: RejectReason::ProtocolVersionNotSupported,
            };
            self.send_reject(reject);
            self.events.push_back(Event::Rejected(reject));
        } else if clean(&rq.application_context_name) != APPLICATION_CONTEXT {
            let reject = Reject {
                result: RejectResult::Permanent,
                reason: RejectReason::ApplicationContextNotSupported,
            };
            self.send_reject(reject);
            self.events.push_back(Event::Rejected(reject));
        } else {
            self.state = State::AwaitingDecision;
            self.request = Some(request.clone());
            self.events
                .push_back(Event::AssociateRequested(Box::new(request)));
        }
    }

    fn on_accepted(&mut self, ac: ul::AssociationAC) {
        let mut peer_max = FALLBACK_PEER_MAX;
        let mut class_uid = String::new();
        let mut version = None;
        let mut roles = Vec::new();
        for item in &ac.user_variables {
            match item {
                ul::UserVariableItem::MaxLength(m) => peer_max = *m,
                ul::UserVariableItem::ImplementationClassUID(uid) => class_uid = clean(uid),
                ul::UserVariableItem::ImplementationVersionName(v) => version = Some(clean(v)),
                ul::UserVariableItem::ScuScpRoleSelectionSubItem(uid, r) => {
                    roles.push(RoleSelection {
                        sop_class: clean(uid),
                        scu: r.scu,
                        scp: r.scp,
                    })
                }
                _ => {}
            }
        }
        let contexts = self
            .proposed
            .iter()
            .map(|p| {
                let result = ac.presentation_contexts.iter().find(|r| r.id == p.id);
                let outcome = match result {
                    None => ContextOutcome::NoReason,
                    Some(r) => match r.reason {
                        ul::PresentationContextResultReason::Acceptance => {
                            ContextOutcome::Accepted {
                                transfer_syntax: clean(&r.transfer_syntax),
                            }
                        }
                        ul::PresentationContextResultReason::UserRejection => {
                            ContextOutcome::UserRejection
                        }
                        ul::PresentationContextResultReason::NoReason => ContextOutcome::NoReason,
                        ul::PresentationContextResultReason::AbstractSyntaxNotSupported => {
                            ContextOutcome::AbstractSyntaxNotSupported
                        }
                        ul::PresentationContextResultReason::TransferSyntaxesNotSupported => {
                            ContextOutcome::TransferSyntaxesNotSupported
                        }
                    },
                };
                NegotiatedContext {
                    id: p.id,
                    abstract_syntax: p.abstract_syntax.clone(),
                    outcome,
                }
            })
            .collect();
        let negotiated = Negotiated {
            calling_ae: clean(&ac.calling_ae_title),
            called_ae: clean(&ac.called_ae_title),
            contexts,
            peer_max_pdu_length: peer_max,
            peer_implementation_class_uid: class_uid,
            peer_implementation_version_name: version,
            roles,
        };
        self.out.set_peer_max(peer_max);
        self.state = State::Established;
        self.negotiated = Some(negotiated.clone());
        self.events.push_back(Event::Accepted(Box::new(negotiated)));
    }

    /// Turn the next PDV of the current P-DATA-TF into an event (or into command bytes).
    fn next_pdv_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        let Some(Pdv {
            context_id,
            command,
            last,
            data,
        }) = pdu::next_pdv(&mut self.items)?
        else {
            return Ok(None);
        };
        if self.context(context_id).is_none() {
            return Err(ProtocolError::UnknownContext(context_id));
        }
        if !command {
            if self.rx_command.is_some() {
                return Err(ProtocolError::DataWithoutCommand(context_id));
            }
            return match self.rx_data {
                None => Err(ProtocolError::DataWithoutCommand(context_id)),
                Some(expected) if expected != context_id => {
                    Err(ProtocolError::DataOnWrongContext {
                        expected,
                        got: context_id,
                    })
                }
                Some(_) => {
                    if last {
                        self.rx_data = None;
                    }
                    Ok(Some(Event::Data {
                        context_id,
                        bytes: data,
                        last,
                    }))
                }
            };
        }
        if self.rx_data.is_some() {
            return Err(ProtocolError::CommandDuringDataSet(context_id));
        }
        let max = self.config.max_command_length;
        let buffer = match &mut self.rx_command {
            Some((expected, _)) if *expected != context_id => {
                return Err(ProtocolError::CommandOnWrongContext {
                    expected: *expected,
                    got: context_id,
                });
            }
            Some((_, buffer)) => buffer,
            None => &mut self.rx_command.insert((context_id, BytesMut::new())).1,
        };
        if buffer.len() + data.len() > max {
            return Err(ProtocolError::CommandTooLarge { max });
        }
        buffer.extend_from_slice(&data);
        if !last {
            return Ok(None);
        }
        let Some((_, bytes)) = self.rx_command.take() else {
            return Ok(None);
        };
        let set = CommandSet::decode(&bytes).map_err(ProtocolError::MalformedCommand)?;
        let has_data =
            matches!(set.us(element::COMMAND_DATA_SET_TYPE), Ok(Some(t)) if t != NO_DATA_SET);
        if has_data {
            self.rx_data = Some(context_id);
        }
        Ok(Some(match Message::from_command_set(&set) {
            Ok(message) => Event::Command {
                context_id,
                message,
            },
            Err(error) => Event::BadCommand {
                context_id,
                error,
                message_id: set.us(element::MESSAGE_ID).ok().flatten(),
                command_field: set.us(element::COMMAND_FIELD).ok().flatten(),
                has_data,
            },
        }))
    }
}

/// What we assume when a peer does not say its maximum PDU length (it must; 16 KiB is what
/// the oldest implementations used).
const FALLBACK_PEER_MAX: u32 = 16 * 1024;
/// A read when the input already holds the PDU under way (it waits for a decision).
const FALLBACK_READ: usize = 64 * 1024;

fn check_ae(ae: &str) -> Result<(), UsageError> {
    let ok = !ae.trim().is_empty()
        && ae.len() <= 16
        && ae.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(UsageError::InvalidAeTitle(ae.to_string()))
    }
}

fn role_items(roles: &[RoleSelection]) -> Vec<ul::UserVariableItem> {
    roles
        .iter()
        .map(|r| {
            ul::UserVariableItem::ScuScpRoleSelectionSubItem(
                r.sop_class.clone(),
                ul::RequestorRoles {
                    scu: r.scu,
                    scp: r.scp,
                },
            )
        })
        .collect()
}

fn provider_reason_code(r: &ul::AbortRQServiceProviderReason) -> u8 {
    use ul::AbortRQServiceProviderReason as R;
    match r {
        R::ReasonNotSpecified => 0,
        R::UnrecognizedPdu => 1,
        R::UnexpectedPdu => 2,
        R::Reserved => 3,
        R::UnrecognizedPduParameter => 4,
        R::UnexpectedPduParameter => 5,
        R::InvalidPduParameter => 6,
    }
}

fn rj_source(reason: RejectReason) -> ul::AssociationRJSource {
    use ul::AssociationRJServiceProviderASCEReason as Acse;
    use ul::AssociationRJServiceProviderPresentationReason as Pres;
    use ul::AssociationRJServiceUserReason as User;
    use ul::AssociationRJSource as S;
    match reason {
        RejectReason::NoReasonGiven => S::ServiceUser(User::NoReasonGiven),
        RejectReason::ApplicationContextNotSupported => {
            S::ServiceUser(User::ApplicationContextNameNotSupported)
        }
        RejectReason::CallingAeNotRecognized => S::ServiceUser(User::CallingAETitleNotRecognized),
        RejectReason::CalledAeNotRecognized => S::ServiceUser(User::CalledAETitleNotRecognized),
        RejectReason::ProviderNoReasonGiven => S::ServiceProviderASCE(Acse::NoReasonGiven),
        RejectReason::ProtocolVersionNotSupported => {
            S::ServiceProviderASCE(Acse::ProtocolVersionNotSupported)
        }
        RejectReason::TemporaryCongestion => {
            S::ServiceProviderPresentation(Pres::TemporaryCongestion)
        }
        RejectReason::LocalLimitExceeded => {
            S::ServiceProviderPresentation(Pres::LocalLimitExceeded)
        }
        RejectReason::Other(1, r) => S::ServiceUser(User::Reserved(r)),
        RejectReason::Other(2, _) => S::ServiceProviderASCE(Acse::NoReasonGiven),
        RejectReason::Other(_, r) => S::ServiceProviderPresentation(Pres::Reserved(r)),
    }
}

fn reject_from(rj: &ul::AssociationRJ) -> Reject {
    use ul::AssociationRJServiceProviderASCEReason as Acse;
    use ul::AssociationRJServiceProviderPresentationReason as Pres;
    use ul::AssociationRJServiceUserReason as User;
    use ul::AssociationRJSource as S;
    let reason = match &rj.source {
        S::ServiceUser(User::NoReasonGiven) => RejectReason::NoReasonGiven,
        S::ServiceUser(User::ApplicationContextNameNotSupported) => {
            RejectReason::ApplicationContextNotSupported
        }
        S::ServiceUser(User::CallingAETitleNotRecognized) => RejectReason::CallingAeNotRecognized,
        S::ServiceUser(User::CalledAETitleNotRecognized) => RejectReason::CalledAeNotRecognized,
        S::ServiceUser(User::Reserved(r)) => RejectReason::Other(1, *r),
        S::ServiceProviderASCE(Acse::NoReasonGiven) => RejectReason::ProviderNoReasonGiven,
        S::ServiceProviderASCE(Acse::ProtocolVersionNotSupported) => {
            RejectReason::ProtocolVersionNotSupported
        }
        S::ServiceProviderPresentation(Pres::TemporaryCongestion) => {
            RejectReason::TemporaryCongestion
        }
        S::ServiceProviderPresentation(Pres::LocalLimitExceeded) => {
            RejectReason::LocalLimitExceeded
        }
        S::ServiceProviderPresentation(Pres::Reserved(r)) => RejectReason::Other(3, *r),
    };
    Reject {
        result: match rj.result {
            ul::AssociationRJResult::Permanent => RejectResult::Permanent,
            ul::AssociationRJResult::Transient => RejectResult::Transient,
        },
        reason,
    }
}
