//! Writing the audit trail from async code, without ever losing a failure.
//!
//! An audit entry that cannot be written (a full disk, a broken index) is not dropped: it is
//! logged as an error with what it would have said, counted (`audit_failures`, shown in the
//! periodic stats line), and the relay keeps serving — refusing to deliver a stroke CT
//! because the audit log is full would hurt a patient more than the gap hurts the audit.

use std::sync::Arc;
use tracing::error;
use yilian_store::{AuditEvent, Store};

use crate::metrics::Metrics;
use crate::storage::Storage;

/// Append `ev`; a failure is logged, counted and surfaced in the stats.
pub(crate) async fn write(
    store: &Arc<Store>,
    storage: &Storage,
    metrics: &Metrics,
    ev: AuditEvent,
) {
    let store = store.clone();
    let e2 = ev.clone();
    let r = tokio::task::spawn_blocking(move || store.audit(&e2)).await;
    let failure = match r {
        Ok(Ok(())) => return,
        Ok(Err(e)) => {
            storage.notice(&e);
            e.to_string()
        }
        Err(e) => e.to_string(),
    };
    Metrics::add(&metrics.audit_failures, 1);
    error!(
        actor = %ev.actor, action = %ev.action, outcome = %ev.outcome,
        study_uid = ?ev.study_uid, sop_uid = ?ev.sop_uid,
        "AUDIT ENTRY NOT WRITTEN: {failure}"
    );
}
