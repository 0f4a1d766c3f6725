//! A storage SCU: C-ECHO and C-STORE over one association, streaming each data set from an
//! `AsyncRead` (a file, a spool object) in PDU-sized pieces: memory stays at one PDU
//! whatever the instance size.
//!
//! Transfer syntaxes: [`storage_contexts`] proposes, for an uncompressed little endian data set,
//! both Explicit and Implicit VR Little Endian in one context (the stored one first); for any
//! other syntax, that syntax alone. [`StoreScu::store`] sends in the data set's own syntax, or,
//! for a data set in Explicit VR LE to a peer that accepted only Implicit VR LE for the class
//! (the syntax every peer must accept), transcoded to it while it streams (`transcode.rs`).
//! Otherwise it fails with [`DimseError::TransferSyntaxNotAccepted`] naming what was accepted,
//! before anything is sent (compressed data is never decompressed).

use crate::association::{Aborted, Association, AssociationConfig, Event, Request};
use crate::conn::{read_piece, Conn};
use crate::error::DimseError;
use crate::message::{EchoRq, Message, Priority, StoreRq};
use crate::negotiation::Negotiated;
use crate::sop_classes::VERIFICATION;
use crate::status::Status;
use crate::transcode::Outgoing;
use crate::transfer_syntaxes::{
    is_uncompressed_little_endian, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Who we are, whom we call, and how long anything may take.
#[derive(Debug, Clone)]
pub struct ScuConfig {
    /// Our AE title.
    pub calling_ae: String,
    /// The peer's AE title.
    pub called_ae: String,
    /// Association limits and identity.
    pub association: AssociationConfig,
    /// Bound on every socket wait (association, writes, responses): 60 s.
    pub timeout: Duration,
}

impl ScuConfig {
    /// Defaults for these AE titles.
    pub fn new(calling_ae: &str, called_ae: &str) -> Self {
        ScuConfig {
            calling_ae: calling_ae.to_string(),
            called_ae: called_ae.to_string(),
            association: AssociationConfig::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Presentation contexts to propose for (SOP class, transfer syntax) pairs, plus Verification:
/// uncompressed little endian data sets get Explicit and Implicit VR LE as alternatives (the
/// stored one first); other syntaxes are proposed alone. Duplicates are merged.
pub fn storage_contexts(pairs: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
    let mut contexts: Vec<(String, Vec<String>)> = vec![(
        VERIFICATION.to_string(),
        vec![
            EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
            IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
        ],
    )];
    for (class, ts) in pairs {
        let syntaxes: Vec<String> = if is_uncompressed_little_endian(ts) {
            let other = if *ts == EXPLICIT_VR_LITTLE_ENDIAN {
                IMPLICIT_VR_LITTLE_ENDIAN
            } else {
                EXPLICIT_VR_LITTLE_ENDIAN
            };
            vec![ts.to_string(), other.to_string()]
        } else {
            vec![ts.to_string()]
        };
        let exists = contexts
            .iter()
            .any(|(c, t)| c == class && t.first() == syntaxes.first());
        if !exists {
            contexts.push((class.to_string(), syntaxes));
        }
    }
    contexts
}

/// Options of one C-STORE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Priority (0000,0700).
    pub priority: Priority,
    /// Move Originator Application Entity Title (0000,1030) and Move Originator Message ID
    /// (0000,1031): set on the C-STOREs of a C-MOVE (the C-MOVE requestor's AE title and its
    /// C-MOVE-RQ's Message ID).
    pub move_originator: Option<(String, u16)>,
}

/// The result of one C-STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreResult {
    /// The peer's status.
    pub status: Status,
    /// Its Error Comment.
    pub comment: Option<String>,
    /// The transfer syntax the data set was sent in.
    pub transfer_syntax: String,
}

/// One SCU association.
pub struct StoreScu<IO> {
    conn: Conn<IO>,
    next_message_id: u16,
    timeout: Duration,
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> StoreScu<IO> {
    /// Associate over `io` proposing `contexts` (see [`storage_contexts`]).
    pub async fn connect(
        io: IO,
        config: &ScuConfig,
        contexts: Vec<(String, Vec<String>)>,
    ) -> Result<Self, DimseError> {
        let assoc = Association::request(
            config.association.clone(),
            Request {
                calling_ae: config.calling_ae.clone(),
                called_ae: config.called_ae.clone(),
                contexts,
                roles: Vec::new(),
            },
        )?;
        let mut conn = Conn::new(io, assoc);
        match conn.next_event(config.timeout, "A-ASSOCIATE-AC").await? {
            Some(Event::Accepted(_)) => {}
            Some(Event::Rejected(reject)) => return Err(DimseError::Rejected(reject)),
            Some(Event::Aborted(Aborted::ByPeer(s))) => return Err(DimseError::AbortedByPeer(s)),
            Some(Event::Aborted(Aborted::ByUs(e))) => {
                let _ = conn.flush(config.timeout).await;
                return Err(e.into());
            }
            _ => return Err(DimseError::ConnectionClosed),
        }
        Ok(StoreScu {
            conn,
            next_message_id: 1,
            timeout: config.timeout,
        })
    }

    /// What was negotiated.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conn.assoc.negotiated()
    }

    /// The transfer syntaxes the peer accepted for `sop_class`.
    pub fn accepted_transfer_syntaxes(&self, sop_class: &str) -> Vec<String> {
        self.negotiated()
            .map(|n| {
                n.accepted()
                    .filter(|(_, a, _)| *a == sop_class)
                    .map(|(_, _, ts)| ts.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    /// C-ECHO.
    pub async fn echo(&mut self) -> Result<Status, DimseError> {
        let context_id = self
            .negotiated()
            .and_then(|n| n.find_context(VERIFICATION, &[]))
            .ok_or_else(|| DimseError::NoContext {
                abstract_syntax: VERIFICATION.to_string(),
                transfer_syntax: String::new(),
            })?;
        let id = self.message_id();
        self.conn.assoc.send_message(
            context_id,
            &Message::EchoRq(EchoRq {
                message_id: id,
                sop_class: VERIFICATION.to_string(),
            }),
        )?;
        match self.response().await? {
            Message::EchoRsp(r) if r.responding_to == id => Ok(r.status),
            other => Err(DimseError::UnexpectedResponse(other.name().to_string())),
        }
    }

    /// C-STORE a data set (without file meta) read from `data`, encoded in `transfer_syntax`.
    pub async fn store<R: AsyncRead + Unpin>(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        data: R,
    ) -> Result<StoreResult, DimseError> {
        self.store_with(
            sop_class,
            sop_instance,
            transfer_syntax,
            &StoreOptions::default(),
            data,
        )
        .await
    }

    /// C-STORE with options: priority, and Move Originator AE Title / Message ID for the
    /// sub-operations of a C-MOVE (see [`crate::scp::MoveRequest::store_options`]).
    ///
    /// Errors that leave the association usable (nothing was sent): [`DimseError::NoContext`],
    /// [`DimseError::TransferSyntaxNotAccepted`], [`DimseError::DataUnreadable`]. A read error
    /// after part of the data set was sent aborts the association
    /// ([`DimseError::DataCutShort`]).
    pub async fn store_with<R: AsyncRead + Unpin>(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        options: &StoreOptions,
        data: R,
    ) -> Result<StoreResult, DimseError> {
        let route = self
            .negotiated()
            .and_then(|n| crate::transcode::route(n, sop_class, transfer_syntax));
        let Some(route) = route else {
            let accepted = self.accepted_transfer_syntaxes(sop_class);
            if accepted.is_empty() {
                return Err(DimseError::NoContext {
                    abstract_syntax: sop_class.to_string(),
                    transfer_syntax: transfer_syntax.to_string(),
                });
            }
            return Err(DimseError::TransferSyntaxNotAccepted {
                sop_class: sop_class.to_string(),
                have: transfer_syntax.to_string(),
                accepted,
            });
        };
        let context_id = route.context_id;
        let mut data = Outgoing::new(data, route.transcode);
        let piece = self.conn.piece_size();
        let first = read_piece(&mut data, piece)
            .await
            .map_err(DimseError::DataUnreadable)?;
        let id = self.message_id();
        let (move_originator_ae, move_originator_message_id) = match &options.move_originator {
            Some((ae, id)) => (Some(ae.clone()), Some(*id)),
            None => (None, None),
        };
        self.conn.assoc.send_message(
            context_id,
            &Message::StoreRq(StoreRq {
                message_id: id,
                sop_class: sop_class.to_string(),
                sop_instance: sop_instance.to_string(),
                priority: options.priority,
                move_originator_ae,
                move_originator_message_id,
            }),
        )?;
        self.conn
            .send_data_set(context_id, first, &mut data, piece, self.timeout)
            .await?;
        match self.response().await? {
            Message::StoreRsp(r) if r.responding_to == id => Ok(StoreResult {
                status: r.status,
                comment: r.error_comment,
                transfer_syntax: route.transfer_syntax,
            }),
            other => Err(DimseError::UnexpectedResponse(other.name().to_string())),
        }
    }

    async fn response(&mut self) -> Result<Message, DimseError> {
        loop {
            match self.conn.next_event(self.timeout, "a response").await? {
                Some(Event::Command { message, .. }) => return Ok(message),
                Some(Event::Aborted(Aborted::ByPeer(s))) => {
                    return Err(DimseError::AbortedByPeer(s))
                }
                Some(Event::Aborted(Aborted::ByUs(e))) => {
                    // Our A-ABORT goes out if it can; the error that caused it is what counts.
                    if let Err(f) = self.conn.flush(self.timeout).await {
                        tracing::debug!("sending our A-ABORT failed: {f}");
                    }
                    return Err(e.into());
                }
                Some(Event::Data { .. }) | Some(Event::BadCommand { .. }) => {}
                Some(other) => {
                    return Err(DimseError::UnexpectedResponse(format!("{other:?}")));
                }
                None => return Err(DimseError::ConnectionClosed),
            }
        }
    }

    /// Release the association (A-RELEASE-RQ, wait for -RP).
    pub async fn release(mut self) -> Result<(), DimseError> {
        self.conn.assoc.release()?;
        loop {
            match self.conn.next_event(self.timeout, "A-RELEASE-RP").await? {
                Some(Event::Released) | None => break,
                Some(Event::Aborted(Aborted::ByPeer(s))) => {
                    return Err(DimseError::AbortedByPeer(s))
                }
                Some(_) => {}
            }
        }
        self.conn.finish(self.timeout).await
    }

    /// Abort the association.
    pub async fn abort(mut self) {
        self.conn.abort(self.timeout).await;
    }
}
