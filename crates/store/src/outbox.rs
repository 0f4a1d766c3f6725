//! Per-reader persistent outboxes, delivered in priority order.
//!
//! An entry is **pending** until it is delivered ([`Store::mark_delivered`]) or failed for good
//! ([`Store::record_failure`] with a permanent failure: a DIMSE peer refused the instance, e.g.
//! status 0xA900). A failed entry leaves the pending queue (and the queue depths) but keeps its
//! last status and reason ([`Store::failed_for`]); [`Store::retry_failed`] puts it back.
//! Transient failures only count attempts and remember the last status and reason.

use rusqlite::{params, OptionalExtension};

use crate::records::InstanceRecord;
use crate::store::row_to_record;
use crate::{Store, StoreError};

/// An outbox entry with its instance: the record's columns (as `row_to_record` reads them),
/// then the entry's sequence and priority.
const PENDING: &str = "SELECT i.sop_uid, i.study_uid, i.series_uid, i.sop_class_uid, i.modality,
        i.source_site, i.source_identity, i.size, i.hash, i.priority, i.stored_at,
        i.id, o.seq, o.priority
    FROM outbox o JOIN instances i ON i.id = o.instance_id";

/// [`PENDING`] plus the failure columns: attempts (14), last status (15), last reason (16),
/// failed at (17).
const PENDING_FAILED: &str =
    "SELECT i.sop_uid, i.study_uid, i.series_uid, i.sop_class_uid, i.modality,
        i.source_site, i.source_identity, i.size, i.hash, i.priority, i.stored_at,
        i.id, o.seq, o.priority, o.attempts, o.last_status, o.last_reason, o.failed_at
    FROM outbox o JOIN instances i ON i.id = o.instance_id";

/// [`PENDING`] for one instance `(study_uid ?2, sop_uid ?3)` of reader `?1`, found from the
/// instance (`instances_by_study`), then the reader's entry of it (`UNIQUE(reader,
/// instance_id)`): two index probes however long the reader's queue. (With a plain `JOIN`,
/// SQLite walked the reader's whole pending queue; `CROSS JOIN` keeps the order written.)
pub(crate) const PENDING_ONE: &str =
    "SELECT i.sop_uid, i.study_uid, i.series_uid, i.sop_class_uid, i.modality,
        i.source_site, i.source_identity, i.size, i.hash, i.priority, i.stored_at,
        i.id, o.seq, o.priority
    FROM instances i CROSS JOIN outbox o ON o.instance_id = i.id
    WHERE o.reader = ?1 AND i.study_uid = ?2 AND i.sop_uid = ?3
        AND o.delivered_at IS NULL AND o.failed_at IS NULL";

/// Whether [`PENDING_ONE`] finds the entry.
pub(crate) const IS_PENDING: &str = "SELECT COUNT(*)
    FROM instances i CROSS JOIN outbox o ON o.instance_id = i.id
    WHERE o.reader = ?1 AND i.study_uid = ?2 AND i.sop_uid = ?3
        AND o.delivered_at IS NULL AND o.failed_at IS NULL";

/// Reader `?1`'s failed entries back to pending; `?2`, a SOP Instance UID, limits it to that
/// instance (found through the catalog's index on it: `instances` has none on the UID alone).
pub(crate) const RETRY_FAILED: &str = "UPDATE outbox SET failed_at = NULL
    WHERE reader = ?1 AND delivered_at IS NULL AND failed_at IS NOT NULL
        AND (?2 IS NULL OR instance_id IN (SELECT instance_id FROM catalog WHERE sop_uid = ?2))";

/// Pending entries and bytes per reader. The readers are found by hopping through the
/// outbox's index one reader at a time (a recursive `MIN(reader) > previous`), then each
/// reader's pending range of `outbox_pending` is read: the work follows the readers and what
/// is pending, not every entry ever delivered (a plain `GROUP BY` read them all at every
/// stats tick).
pub(crate) const QUEUE_DEPTHS: &str = "WITH RECURSIVE readers(name) AS (
        SELECT MIN(reader) FROM outbox
        UNION ALL
        SELECT (SELECT MIN(reader) FROM outbox WHERE reader > name) FROM readers
        WHERE name IS NOT NULL
    )
    SELECT r.name, COUNT(*), COALESCE(SUM(i.size), 0)
    FROM readers r CROSS JOIN outbox o ON o.reader = r.name AND o.delivered_at IS NULL
         CROSS JOIN instances i ON i.id = o.instance_id
    WHERE r.name IS NOT NULL AND o.failed_at IS NULL
    GROUP BY r.name ORDER BY r.name";

/// One instance waiting for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub seq: i64,
    pub reader: String,
    pub priority: u8,
    pub instance: InstanceRecord,
}

/// Why one delivery attempt failed, as [`Store::record_failure`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The peer's status (e.g. a DIMSE status such as 0xA900), if it answered with one.
    pub status: Option<u16>,
    /// In words for an administrator (who refused, why; never patient data).
    pub reason: String,
    /// Refused for good: the entry leaves the pending queue (kept as failed).
    pub permanent: bool,
}

/// An outbox entry that failed for good: what was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedItem {
    pub seq: i64,
    pub reader: String,
    pub instance: InstanceRecord,
    /// Attempts recorded (transient failures and the final one).
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_reason: String,
    /// When it failed for good (ms since the Unix epoch).
    pub failed_at_ms: i64,
}

/// Pending entries per reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    pub reader: String,
    pub instances: u64,
    pub bytes: u64,
}

impl Store {
    /// Everything not yet delivered to `reader`, urgent first, then in arrival order.
    pub fn pending_for(&self, reader: &str) -> Result<Vec<OutboxItem>, StoreError> {
        let db = self.read()?;
        let mut st = db.prepare_cached(&format!(
            "{PENDING} WHERE o.reader = ?1 AND o.delivered_at IS NULL AND o.failed_at IS NULL
             ORDER BY o.priority DESC, o.seq"
        ))?;
        let rows = st.query_map([reader], |r| {
            Ok((row_to_record(r)?, r.get::<_, i64>(12)?, r.get::<_, u8>(13)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rec, seq, priority) = row?;
            out.push(OutboxItem {
                seq,
                reader: reader.to_string(),
                priority,
                instance: rec?,
            });
        }
        Ok(out)
    }

    /// The outbox entry of the instance `(study_uid, sop_uid)` for `reader`, if it waits there.
    pub fn pending_one(
        &self,
        reader: &str,
        study_uid: &str,
        sop_uid: &str,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let db = self.read()?;
        let mut st = db.prepare_cached(PENDING_ONE)?;
        let row = st
            .query_row(params![reader, study_uid, sop_uid], |r| {
                Ok((row_to_record(r)?, r.get::<_, i64>(12)?, r.get::<_, u8>(13)?))
            })
            .optional()?;
        let Some((rec, seq, priority)) = row else {
            return Ok(None);
        };
        Ok(Some(OutboxItem {
            seq,
            reader: reader.to_string(),
            priority,
            instance: rec?,
        }))
    }

    /// Whether the instance `(study_uid, sop_uid)` is waiting in `reader`'s outbox (routed to
    /// it and not yet delivered).
    pub fn is_pending(
        &self,
        reader: &str,
        study_uid: &str,
        sop_uid: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 =
            self.read()?
                .query_row(IS_PENDING, params![reader, study_uid, sop_uid], |r| {
                    r.get(0)
                })?;
        Ok(n > 0)
    }

    /// The reader acknowledged the instance `(study_uid, sop_uid)` (verified, durable on its
    /// side; within a study, which belongs to one site, a SOP Instance UID is unique). Audited.
    /// Concurrent calls share one SQLite commit (group commit).
    pub fn mark_delivered(
        &self,
        reader: &str,
        study_uid: &str,
        sop_uid: &str,
    ) -> Result<(), StoreError> {
        match self.submit(crate::group::Job::Delivered {
            reader: reader.to_string(),
            study_uid: study_uid.to_string(),
            sop_uid: sop_uid.to_string(),
        }) {
            crate::group::Done::Delivered(r) => r,
            _ => Err(StoreError::Corrupt("group commit mixed up two jobs".into())),
        }
    }

    /// Record a failed delivery attempt of the pending instance `(study_uid, sop_uid)` to
    /// `reader`, and audit it (action `deliver`, outcome `refused` when permanent, else
    /// `retry`; the reason as detail) in the same transaction. A permanent failure takes the
    /// entry out of the pending queue. Returns false (and records nothing) when no such entry
    /// is pending.
    pub fn record_failure(
        &self,
        reader: &str,
        study_uid: &str,
        sop_uid: &str,
        failure: &DeliveryFailure,
    ) -> Result<bool, StoreError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let now = crate::db::now();
        let changed = tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_status = ?4, last_reason = ?5,
                 failed_at = CASE WHEN ?6 THEN ?7 ELSE NULL END
             WHERE reader = ?1 AND delivered_at IS NULL AND failed_at IS NULL AND instance_id IN
                 (SELECT id FROM instances WHERE study_uid = ?2 AND sop_uid = ?3)",
            params![
                reader,
                study_uid,
                sop_uid,
                failure.status,
                failure.reason,
                failure.permanent,
                now
            ],
        )?;
        if changed == 0 {
            return Ok(false);
        }
        crate::audit::insert(
            &tx,
            &crate::AuditEvent {
                actor: reader.to_string(),
                site: None,
                action: crate::AuditAction::Deliver,
                study_uid: Some(study_uid.to_string()),
                sop_uid: Some(sop_uid.to_string()),
                outcome: if failure.permanent {
                    "refused"
                } else {
                    "retry"
                }
                .into(),
                detail: Some(failure.reason.clone()),
            },
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The entries of `reader` that failed for good, oldest failure first.
    pub fn failed_for(&self, reader: &str) -> Result<Vec<FailedItem>, StoreError> {
        let db = self.read()?;
        let mut st = db.prepare_cached(&format!(
            "{PENDING_FAILED} WHERE o.reader = ?1 AND o.delivered_at IS NULL
                 AND o.failed_at IS NOT NULL
             ORDER BY o.failed_at, o.seq"
        ))?;
        let rows = st.query_map([reader], |r| {
            Ok((
                row_to_record(r)?,
                r.get::<_, i64>(12)?,
                r.get::<_, u32>(14)?,
                r.get::<_, Option<u16>>(15)?,
                r.get::<_, Option<String>>(16)?,
                r.get::<_, i64>(17)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rec, seq, attempts, last_status, last_reason, failed_at_ms) = row?;
            out.push(FailedItem {
                seq,
                reader: reader.to_string(),
                instance: rec?,
                attempts,
                last_status,
                last_reason: last_reason.unwrap_or_default(),
                failed_at_ms,
            });
        }
        Ok(out)
    }

    /// Put `reader`'s failed entries back into its pending queue (after the administrator
    /// fixed what the peer refused); `sop_uid` limits it to one instance. The attempt count and
    /// last status stay. Returns how many entries are pending again.
    pub fn retry_failed(&self, reader: &str, sop_uid: Option<&str>) -> Result<usize, StoreError> {
        let n = self.db().execute(RETRY_FAILED, params![reader, sop_uid])?;
        Ok(n)
    }

    /// Pending instances and bytes per reader (readers with nothing pending are omitted).
    pub fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let db = self.read()?;
        let mut st = db.prepare_cached(QUEUE_DEPTHS)?;
        let rows = st.query_map([], |r| {
            Ok(QueueDepth {
                reader: r.get(0)?,
                instances: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
