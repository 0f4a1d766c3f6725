//! Association negotiation: what a requestor proposes ([`AssociateRequest`]), what an acceptor
//! is willing to accept ([`AcceptPolicy`]), the outcome ([`Negotiated`]) and rejections
//! ([`Reject`]). Pure functions; the state machine only carries them on the wire.

use crate::sop_classes;
use crate::transfer_syntaxes;
use std::collections::HashMap;
use std::fmt;

/// DICOM Application Context Name (PS3.7 Annex A.2.1).
pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// One presentation context proposed by the requestor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedContext {
    /// Presentation context ID (odd, 1..=255).
    pub id: u8,
    /// The abstract syntax (SOP class UID).
    pub abstract_syntax: String,
    /// The transfer syntaxes the requestor can use, in its order.
    pub transfer_syntaxes: Vec<String>,
}

/// SCP/SCU Role Selection (PS3.7 D.3.3.4): in a request, the roles the requestor proposes for
/// itself; in an acceptance, the roles the acceptor grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSelection {
    /// The SOP class.
    pub sop_class: String,
    /// The requestor may act as SCU.
    pub scu: bool,
    /// The requestor may act as SCP (e.g. receive C-STORE sub-operations of a C-GET).
    pub scp: bool,
}

/// A received A-ASSOCIATE-RQ, as the acceptor's user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateRequest {
    /// Calling AE title (the requestor), without padding.
    pub calling_ae: String,
    /// Called AE title (us), without padding.
    pub called_ae: String,
    /// The proposed presentation contexts.
    pub contexts: Vec<ProposedContext>,
    /// The requestor's maximum PDU length (what we may send it; 0 = no limit).
    pub max_pdu_length: u32,
    /// Its Implementation Class UID.
    pub implementation_class_uid: String,
    /// Its Implementation Version Name.
    pub implementation_version_name: Option<String>,
    /// Role selections it proposed.
    pub roles: Vec<RoleSelection>,
}

/// What became of one proposed presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextOutcome {
    /// Accepted with this transfer syntax.
    Accepted {
        /// The transfer syntax both sides will use.
        transfer_syntax: String,
    },
    /// Rejected: user rejection (result 1).
    UserRejection,
    /// Rejected: no reason (result 2).
    NoReason,
    /// Rejected: abstract syntax not supported (result 3).
    AbstractSyntaxNotSupported,
    /// Rejected: none of the proposed transfer syntaxes is supported (result 4).
    TransferSyntaxesNotSupported,
}

/// A negotiated presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedContext {
    /// Presentation context ID.
    pub id: u8,
    /// The abstract syntax.
    pub abstract_syntax: String,
    /// Accepted (with which transfer syntax) or why not.
    pub outcome: ContextOutcome,
}

impl NegotiatedContext {
    /// The transfer syntax, if accepted.
    pub fn transfer_syntax(&self) -> Option<&str> {
        match &self.outcome {
            ContextOutcome::Accepted { transfer_syntax } => Some(transfer_syntax),
            _ => None,
        }
    }
}

/// The outcome of a negotiation, for either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Calling AE title.
    pub calling_ae: String,
    /// Called AE title.
    pub called_ae: String,
    /// Every proposed context and what became of it.
    pub contexts: Vec<NegotiatedContext>,
    /// The peer's maximum PDU length (what we may send; 0 = no limit).
    pub peer_max_pdu_length: u32,
    /// The peer's Implementation Class UID.
    pub peer_implementation_class_uid: String,
    /// The peer's Implementation Version Name.
    pub peer_implementation_version_name: Option<String>,
    /// Roles granted to the requestor (only SOP classes for which it proposed a role).
    pub roles: Vec<RoleSelection>,
}

impl Negotiated {
    /// The accepted context with this ID.
    pub fn context(&self, id: u8) -> Option<&NegotiatedContext> {
        self.contexts
            .iter()
            .find(|c| c.id == id && c.transfer_syntax().is_some())
    }

    /// Accepted contexts: (id, abstract syntax, transfer syntax).
    pub fn accepted(&self) -> impl Iterator<Item = (u8, &str, &str)> {
        self.contexts.iter().filter_map(|c| {
            c.transfer_syntax()
                .map(|ts| (c.id, c.abstract_syntax.as_str(), ts))
        })
    }

    /// The first accepted context for `abstract_syntax` whose transfer syntax is one of
    /// `transfer_syntaxes` (in that preference order), or any transfer syntax if empty.
    pub fn find_context(&self, abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Option<u8> {
        let candidates = || self.accepted().filter(|(_, a, _)| *a == abstract_syntax);
        if transfer_syntaxes.is_empty() {
            return candidates().next().map(|(id, _, _)| id);
        }
        transfer_syntaxes
            .iter()
            .find_map(|want| candidates().find(|(_, _, ts)| ts == want))
            .map(|(id, _, _)| id)
    }
}

/// What an acceptor accepts: per abstract syntax, the transfer syntaxes in OUR preference
/// order; and whether requestors may take the SCP role (C-GET needs it for storage classes).
#[derive(Debug, Clone, Default)]
pub struct AcceptPolicy {
    syntaxes: HashMap<String, Vec<String>>,
    requestor_scp_role: bool,
}

impl AcceptPolicy {
    /// Accept nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept `abstract_syntax` with these transfer syntaxes, most preferred first.
    pub fn with(mut self, abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Self {
        self.syntaxes.insert(
            abstract_syntax.to_string(),
            transfer_syntaxes.iter().map(|s| s.to_string()).collect(),
        );
        self
    }

    /// Grant (or not) the SCP role to requestors that propose it in a role selection item.
    pub fn with_requestor_scp_role(mut self, allowed: bool) -> Self {
        self.requestor_scp_role = allowed;
        self
    }

    /// What a relay's storage SCP accepts: Verification (Implicit/Explicit VR LE) and every
    /// Storage SOP class of [`sop_classes::STORAGE`] with every transfer syntax of
    /// [`transfer_syntaxes::ALL`], in [`transfer_syntaxes::storage_preference`] order: Explicit VR
    /// LE over Implicit when both are proposed, and whatever compressed syntax is proposed
    /// (alone), so the data set is stored as the peer holds it. Requestors may take the SCP
    /// role (echoed back, for C-GET).
    pub fn default_storage() -> Self {
        let order = transfer_syntaxes::storage_preference();
        let mut policy = AcceptPolicy::new()
            .with(
                sop_classes::VERIFICATION,
                &[
                    transfer_syntaxes::EXPLICIT_VR_LITTLE_ENDIAN,
                    transfer_syntaxes::IMPLICIT_VR_LITTLE_ENDIAN,
                ],
            )
            .with_requestor_scp_role(true);
        for class in sop_classes::STORAGE {
            policy = policy.with(class.uid, &order);
        }
        policy
    }

    /// Does this policy know `abstract_syntax`?
    pub fn supports(&self, abstract_syntax: &str) -> bool {
        self.syntaxes.contains_key(abstract_syntax)
    }

    /// Decide every proposed context: per context, the first of OUR transfer syntaxes that the
    /// requestor proposed; abstract-syntax-not-supported or transfer-syntaxes-not-supported
    /// otherwise. Roles: SCU granted as proposed, SCP only if the policy allows it; only for
    /// SOP classes of accepted contexts.
    pub fn negotiate(
        &self,
        request: &AssociateRequest,
    ) -> (Vec<NegotiatedContext>, Vec<RoleSelection>) {
        let contexts: Vec<NegotiatedContext> = request
            .contexts
            .iter()
            .map(|proposed| {
                let outcome = match self.syntaxes.get(&proposed.abstract_syntax) {
                    None => ContextOutcome::AbstractSyntaxNotSupported,
                    Some(ours) => match ours
                        .iter()
                        .find(|ts| proposed.transfer_syntaxes.contains(ts))
                    {
                        Some(ts) => ContextOutcome::Accepted {
                            transfer_syntax: ts.clone(),
                        },
                        None => ContextOutcome::TransferSyntaxesNotSupported,
                    },
                };
                NegotiatedContext {
                    id: proposed.id,
                    abstract_syntax: proposed.abstract_syntax.clone(),
                    outcome,
                }
            })
            .collect();
        let roles = request
            .roles
            .iter()
            .filter(|r| {
                contexts
                    .iter()
                    .any(|c| c.abstract_syntax == r.sop_class && c.transfer_syntax().is_some())
            })
            .map(|r| RoleSelection {
                sop_class: r.sop_class.clone(),
                scu: r.scu,
                scp: r.scp && self.requestor_scp_role,
            })
            .collect();
        (contexts, roles)
    }
}

/// A-ASSOCIATE-RJ result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectResult {
    /// 1: rejected-permanent.
    Permanent,
    /// 2: rejected-transient.
    Transient,
}

/// A-ASSOCIATE-RJ source and reason (PS3.8 Table 9-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Source 1 (service user), reason 1.
    NoReasonGiven,
    /// Source 1, reason 2.
    ApplicationContextNotSupported,
    /// Source 1, reason 3.
    CallingAeNotRecognized,
    /// Source 1, reason 7.
    CalledAeNotRecognized,
    /// Source 2 (service provider, ACSE), reason 1.
    ProviderNoReasonGiven,
    /// Source 2, reason 2.
    ProtocolVersionNotSupported,
    /// Source 3 (service provider, presentation), reason 1.
    TemporaryCongestion,
    /// Source 3, reason 2.
    LocalLimitExceeded,
    /// Anything else a peer sent: (source, reason).
    Other(u8, u8),
}

/// An association rejection, sent (acceptor) or received (requestor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// Permanent or transient.
    pub result: RejectResult,
    /// Source and reason.
    pub reason: RejectReason,
}

impl Reject {
    /// Permanent, service user, calling AE title not recognized (1, 1, 3).
    pub fn calling_ae_not_recognized() -> Self {
        Reject {
            result: RejectResult::Permanent,
            reason: RejectReason::CallingAeNotRecognized,
        }
    }

    /// Permanent, service user, called AE title not recognized (1, 1, 7).
    pub fn called_ae_not_recognized() -> Self {
        Reject {
            result: RejectResult::Permanent,
            reason: RejectReason::CalledAeNotRecognized,
        }
    }

    /// Transient, service provider (presentation), temporary congestion (2, 3, 1): "busy".
    pub fn busy() -> Self {
        Reject {
            result: RejectResult::Transient,
            reason: RejectReason::TemporaryCongestion,
        }
    }

    /// (source, reason) codes.
    pub fn codes(&self) -> (u8, u8) {
        match self.reason {
            RejectReason::NoReasonGiven => (1, 1),
            RejectReason::ApplicationContextNotSupported => (1, 2),
            RejectReason::CallingAeNotRecognized => (1, 3),
            RejectReason::CalledAeNotRecognized => (1, 7),
            RejectReason::ProviderNoReasonGiven => (2, 1),
            RejectReason::ProtocolVersionNotSupported => (2, 2),
            RejectReason::TemporaryCongestion => (3, 1),
            RejectReason::LocalLimitExceeded => (3, 2),
            RejectReason::Other(s, r) => (s, r),
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (source, reason) = self.codes();
        let what = match self.reason {
            RejectReason::NoReasonGiven | RejectReason::ProviderNoReasonGiven => "no reason given",
            RejectReason::ApplicationContextNotSupported => "application context not supported",
            RejectReason::CallingAeNotRecognized => "calling AE title not recognized",
            RejectReason::CalledAeNotRecognized => "called AE title not recognized",
            RejectReason::ProtocolVersionNotSupported => "protocol version not supported",
            RejectReason::TemporaryCongestion => "temporary congestion",
            RejectReason::LocalLimitExceeded => "local limit exceeded",
            RejectReason::Other(..) => "other",
        };
        let result = match self.result {
            RejectResult::Permanent => "permanent",
            RejectResult::Transient => "transient",
        };
        write!(f, "{what} ({result}, source {source}, reason {reason})")
    }
}
