//! Audit entries for what a certificate holder did, written through the ingest path's audit
//! writer (which never drops a failure silently).

use std::sync::Arc;
use yilian_store::{AuditAction, AuditEvent};
use yilian_transport::PeerIdentity;

use crate::ctx::Ctx;

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
    ctx.ingest
        .audit(AuditEvent {
            actor: peer.name.clone(),
            site: Some(peer.site.clone()),
            action,
            study_uid: study,
            sop_uid: sop,
            outcome: outcome.to_string(),
            detail,
        })
        .await;
}
