//! Append-only audit trail (fields after DICOM PS3.15 A.5: who, what, which study, outcome).

use std::fmt;

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// A peer connected (or was refused).
    Connect,
    /// An instance upload was stored (or refused).
    Receive,
    /// An instance was delivered to a reader.
    Deliver,
    /// A study manifest was recorded.
    Manifest,
    /// A reader subscribed.
    Subscribe,
    /// A reader searched the catalog (C-FIND; later QIDO).
    Query,
    /// A reader retrieved instances (C-MOVE, C-GET; later WADO).
    Retrieve,
    /// An instance was removed after its retention period (a gateway's forwarded copy).
    Prune,
    /// A cart streamed a live ECG session (started, refused, recorded).
    EcgStream,
    /// A reader watched a live ECG session (or was refused).
    EcgWatch,
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuditAction::Connect => "connect",
            AuditAction::Receive => "receive",
            AuditAction::Deliver => "deliver",
            AuditAction::Manifest => "manifest",
            AuditAction::Subscribe => "subscribe",
            AuditAction::Query => "query",
            AuditAction::Retrieve => "retrieve",
            AuditAction::Prune => "prune",
            AuditAction::EcgStream => "ecg-stream",
            AuditAction::EcgWatch => "ecg-watch",
        })
    }
}

/// One audit entry. `detail` must never hold patient names or IDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub actor: String,
    pub site: Option<String>,
    pub action: AuditAction,
    pub study_uid: Option<String>,
    pub sop_uid: Option<String>,
    /// "ok" or the refusal code.
    pub outcome: String,
    pub detail: Option<String>,
}

/// An audit entry as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub actor: String,
    pub outcome: String,
    pub sop_uid: Option<String>,
    pub detail: Option<String>,
}

pub(crate) fn insert(tx: &rusqlite::Connection, e: &AuditEvent) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (at, actor, site, action, study_uid, sop_uid, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(rusqlite::params![
        crate::db::now(),
        e.actor,
        e.site,
        e.action.to_string(),
        e.study_uid,
        e.sop_uid,
        e.outcome,
        e.detail
    ])?;
    Ok(())
}
