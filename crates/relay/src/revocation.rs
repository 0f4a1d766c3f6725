//! Who may be (and stay) connected: the identity must be declared in the topology and its
//! certificate must not be revoked.
//!
//! Two lists revoke certificates:
//! - the alliance CA's **CRLs** (`[tls] crl`): applied by TLS at the handshake, so a revoked
//!   certificate never completes one (the client reads "the relay refused our certificate: it
//!   has been revoked"); after a reload, live connections they now revoke are closed here;
//! - the topology's **deny list** (`[[revoked]]`, by identity name and/or certificate serial):
//!   applied at admission, right after the handshake, and to live connections after a reload.
//!
//! A refused or closed peer reads "certificate of NAME was revoked by the alliance
//! administrator: REASON; ask for a new certificate" (close code [`close::REVOKED`], which
//! clients treat as final: no retry), and the audit log records outcome `revoked`.

use std::sync::Arc;

use tracing::warn;
use yilian_route::Topology;
use yilian_store::AuditAction;
use yilian_transport::{CertSerial, Crls, PeerIdentity};

use crate::audit::record as audit;
use crate::close;
use crate::connections::Close;
use crate::ctx::Ctx;

/// The message a peer whose certificate was revoked reads.
pub(crate) fn revoked_reason(name: &str, reason: &str) -> String {
    format!(
        "certificate of {name} was revoked by the alliance administrator: {reason}; ask for a new certificate"
    )
}

/// Admission by the topology: declared exactly as the certificate says, and not on the deny
/// list. `Err` says how to close the connection.
pub(crate) fn admission(
    topology: &Topology,
    peer: &PeerIdentity,
    serial: &CertSerial,
) -> Result<(), Close> {
    let known = peer.declared_in(topology).is_some();
    if !known {
        return Err(Close {
            code: close::UNKNOWN_IDENTITY,
            reason: format!(
                "unknown identity {peer}: it is not declared in this relay's topology (the alliance administrator must add it)"
            ),
            outcome: "unknown-identity",
        });
    }
    match topology.revoked(&peer.name, serial) {
        Some(r) => Err(revoked(&peer.name, &r.reason)),
        None => Ok(()),
    }
}

fn revoked(name: &str, reason: &str) -> Close {
    Close {
        code: close::REVOKED,
        reason: revoked_reason(name, reason),
        outcome: "revoked",
    }
}

/// What the audit log keeps of a refusal: for a revocation, the certificate and the reason.
pub(crate) fn audit_detail(close: &Close, serial: &CertSerial) -> Option<String> {
    (close.outcome == "revoked").then(|| format!("serial {serial}: {}", close.reason))
}

/// After a reload: close every live connection that `topology` and `crls` no longer admit,
/// log and audit each. Returns how many were closed.
pub(crate) async fn close_no_longer_admitted(
    ctx: &Arc<Ctx>,
    topology: &Topology,
    crls: &Crls,
) -> usize {
    let closed = ctx.connections.close_where(|c| {
        admission(topology, &c.peer, &c.serial).err().or_else(|| {
            let file = crls.revokes_peer(&c.conn)?;
            warn!(
                peer = %c.peer, serial = %c.serial, crl = %file.display(),
                "a reloaded revocation list revokes a connected certificate"
            );
            Some(revoked(
                &c.peer.name,
                "listed in the alliance CA's revocation list",
            ))
        })
    });
    for (c, close) in &closed {
        warn!(peer = %c.peer, serial = %c.serial, "closed a live connection: {}", close.reason);
        audit(
            ctx,
            &c.peer,
            AuditAction::Connect,
            None,
            None,
            close.outcome,
            audit_detail(close, &c.serial),
        )
        .await;
    }
    closed.len()
}
