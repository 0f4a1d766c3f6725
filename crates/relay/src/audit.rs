//! Writing the audit trail from async code, without ever losing a failure.
//!
//! An audit entry that cannot be written (a full disk, a broken index) is not dropped: it is
//! logged as an error with what it would have said, counted (`audit_failures`, shown in the
//! periodic stats line), and the relay keeps serving — refusing to deliver a stroke CT
//! because the audit log is full would hurt a patient more than the gap hurts the audit.

use std::sync::Arc;
use tracing::error;
use yilian_store::{AuditAction, AuditEvent};
use yilian_transport::PeerIdentity;

use crate::metrics::Metrics;
use crate::server::Ctx;

/// Append an audit entry for something `peer` did.
pub(crate) async fn record(
    ctx: &Arc<Ctx>,
    peer: &PeerIdentity,
    action: AuditAction,
    study: Option<String>,
    sop: Option<String>,
    outcome: &str,
    detail: Option<String>,
) {
    let ev = AuditEvent {
        actor: peer.name.clone(),
        site: Some(peer.site.clone()),
        action,
        study_uid: study,
        sop_uid: sop,
        outcome: outcome.to_string(),
        detail,
    };
    write(ctx, ev).await;
}

/// Append `ev`; a failure is logged, counted and surfaced in the stats.
pub(crate) async fn write(ctx: &Arc<Ctx>, ev: AuditEvent) {
    let store = ctx.store.clone();
    let e2 = ev.clone();
    let r = tokio::task::spawn_blocking(move || store.audit(&e2)).await;
    let failure = match r {
        Ok(Ok(())) => return,
        Ok(Err(e)) => {
            ctx.storage.notice(&e);
            e.to_string()
        }
        Err(e) => e.to_string(),
    };
    Metrics::add(&ctx.metrics.audit_failures, 1);
    error!(
        actor = %ev.actor, action = %ev.action, outcome = %ev.outcome,
        study_uid = ?ev.study_uid, sop_uid = ?ev.sop_uid,
        "AUDIT ENTRY NOT WRITTEN: {failure}"
    );
}
