//! Per-reader persistent outboxes, delivered in priority order.

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

/// One instance waiting for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub seq: i64,
    pub reader: String,
    pub priority: u8,
    pub instance: InstanceRecord,
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
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "{PENDING} WHERE o.reader = ?1 AND o.delivered_at IS NULL
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
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "{PENDING} WHERE o.reader = ?1 AND i.study_uid = ?2 AND i.sop_uid = ?3
                 AND o.delivered_at IS NULL"
        ))?;
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
        let n: i64 = self.db().query_row(
            "SELECT COUNT(*) FROM outbox o JOIN instances i ON i.id = o.instance_id
             WHERE o.reader = ?1 AND i.study_uid = ?2 AND i.sop_uid = ?3
                 AND o.delivered_at IS NULL",
            params![reader, study_uid, sop_uid],
            |r| r.get(0),
        )?;
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

    /// Pending instances and bytes per reader (readers with nothing pending are omitted).
    pub fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT o.reader, COUNT(*), COALESCE(SUM(i.size), 0)
             FROM outbox o JOIN instances i ON i.id = o.instance_id
             WHERE o.delivered_at IS NULL GROUP BY o.reader ORDER BY o.reader",
        )?;
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
