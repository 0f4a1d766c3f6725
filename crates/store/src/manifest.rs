//! Study manifests: a study is complete when every instance its owner listed is stored.
//!
//! A study belongs to the site that sent it first (its first instance or its manifest); only
//! that site may declare its manifest. The manifest is the union of every list that site sent
//! (a second run adding a series adds to it; nothing can shrink it), kept as entries with a
//! `stored` flag and a running `missing` count per study, so that a stored instance updates the
//! study's completeness in O(1) and a completion is known the moment it becomes true. A
//! reader is told a study is complete once per size of the manifest: again only if the owner
//! later lists more instances and those arrive too.

use rusqlite::{params, OptionalExtension, Transaction};

use crate::group::{Done, Job, ManifestJob};
use crate::{Store, StoreError};

/// Where a study stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestStatus {
    /// No manifest received yet.
    NoManifest,
    /// Manifest received; these instances are not stored yet.
    Pending { missing: Vec<String> },
    /// Every listed instance is stored.
    Complete { instances: u32 },
}

/// How many of a study's instances are routed to a reader, and how many of those are still
/// undelivered: the study's instances first (`instances_by_study`), then the reader's entry
/// of each (`UNIQUE(reader, instance_id)`). Asked at every delivery, so its work must follow
/// the study, not the reader's whole outbox (which a plain `JOIN` walked).
pub(crate) const ROUTED_IN_STUDY: &str = "SELECT COUNT(*), COALESCE(SUM(o.delivered_at IS NULL), 0)
     FROM instances i CROSS JOIN outbox o ON o.instance_id = i.id
     WHERE o.reader = ?1 AND i.study_uid = ?2";

impl Store {
    /// Record (add to) a study's manifest as declared by `source_site`, and return its status.
    /// Fails with [`StoreError::StudyOwned`] if another site sent the study first. Goes through
    /// the group commit, like every change that decides a study's owner.
    pub fn record_manifest(
        &self,
        source_site: &str,
        study_uid: &str,
        sop_uids: &[String],
    ) -> Result<ManifestStatus, StoreError> {
        match self.submit(Job::Manifest(Box::new(ManifestJob {
            source_site: source_site.to_string(),
            study_uid: study_uid.to_string(),
            sop_uids: sop_uids.to_vec(),
        }))) {
            Done::Manifest(r) => r?,
            _ => return Err(StoreError::Corrupt("group commit mixed up two jobs".into())),
        }
        self.manifest_status(study_uid)
    }

    /// Studies with stored instances their manifest does not list — no manifest at all (sent
    /// by C-STORE and not yet quiet, or whose sender never declared one), or instances that
    /// came after it (a late C-STORE after the quiet period completed the study) — with the
    /// site that sent them and how long ago (milliseconds) their last instance was stored: the
    /// quiet periods to re-arm at start.
    pub fn studies_awaiting_manifest(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let now = crate::db::now();
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT i.source_site, i.study_uid, MAX(i.stored_at) FROM instances i
             WHERE NOT EXISTS (SELECT 1 FROM manifest_entries e
                               WHERE e.study_uid = i.study_uid AND e.sop_uid = i.sop_uid)
             GROUP BY i.source_site, i.study_uid",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (site, study, at) = row?;
            out.push((site, study, now.saturating_sub(at).max(0) as u64));
        }
        Ok(out)
    }

    /// The status of a study.
    pub fn manifest_status(&self, study_uid: &str) -> Result<ManifestStatus, StoreError> {
        let db = self.db();
        let Some((listed, missing)) = completeness(&db, study_uid)? else {
            return Ok(ManifestStatus::NoManifest);
        };
        if missing == 0 {
            return Ok(ManifestStatus::Complete {
                instances: listed as u32,
            });
        }
        let mut st = db.prepare_cached(
            "SELECT sop_uid FROM manifest_entries WHERE study_uid = ?1 AND NOT stored ORDER BY sop_uid",
        )?;
        let missing = st
            .query_map([study_uid], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ManifestStatus::Pending { missing })
    }

    /// For a complete study: whether every one of its instances routed to `reader` is delivered
    /// and the reader was not yet told about a manifest this large. Records the notice as sent
    /// when it returns `Some` (the number of the study's instances routed to the reader).
    pub fn take_study_notice(
        &self,
        reader: &str,
        study_uid: &str,
    ) -> Result<Option<u32>, StoreError> {
        let db = self.db();
        let Some((listed, 0)) = completeness(&db, study_uid)? else {
            return Ok(None);
        };
        let (routed, undelivered): (i64, i64) =
            db.query_row(ROUTED_IN_STUDY, params![reader, study_uid], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if routed == 0 || undelivered > 0 {
            return Ok(None);
        }
        let told: Option<i64> = db
            .query_row(
                "SELECT instances FROM study_notices WHERE reader = ?1 AND study_uid = ?2",
                params![reader, study_uid],
                |r| r.get(0),
            )
            .optional()?;
        if told.is_some_and(|n| n >= listed) {
            return Ok(None);
        }
        db.execute(
            "INSERT INTO study_notices (reader, study_uid, sent_at, instances) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(reader, study_uid) DO UPDATE SET sent_at = excluded.sent_at,
                 instances = excluded.instances",
            params![reader, study_uid, crate::db::now(), listed],
        )?;
        Ok(Some(routed as u32))
    }
}

/// `(listed, missing)` of a study's manifest.
fn completeness(
    db: &rusqlite::Connection,
    study_uid: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(db
        .prepare_cached("SELECT listed, missing FROM manifests WHERE study_uid = ?1")?
        .query_row([study_uid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Add `sop_uids` to the manifest of `study_uid` (owned by `site`: the caller checked).
pub(crate) fn record(
    tx: &Transaction<'_>,
    site: &str,
    study_uid: &str,
    sop_uids: &[String],
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO manifests (study_uid, source_site, listed, missing, received_at)
         VALUES (?1, ?2, 0, 0, ?3)",
        params![study_uid, site, now],
    )?;
    let (mut added, mut missing) = (0i64, 0i64);
    {
        let mut stored = tx.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM instances
                            WHERE source_site = ?1 AND study_uid = ?2 AND sop_uid = ?3)",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO manifest_entries (study_uid, sop_uid, stored) VALUES (?1, ?2, ?3)",
        )?;
        for sop in sop_uids {
            let is_stored: bool = stored.query_row(params![site, study_uid, sop], |r| r.get(0))?;
            if insert.execute(params![study_uid, sop, is_stored])? > 0 {
                added += 1;
                if !is_stored {
                    missing += 1;
                }
            }
        }
    }
    tx.execute(
        "UPDATE manifests SET listed = listed + ?2, missing = missing + ?3, received_at = ?4
         WHERE study_uid = ?1",
        params![study_uid, added, missing, now],
    )?;
    mark_completion(tx, study_uid, now)?;
    Ok(())
}

/// An instance of `study_uid` was stored: if its manifest listed it, one fewer is missing.
/// Returns the manifest's size if this made the study complete.
pub(crate) fn instance_stored(
    tx: &Transaction<'_>,
    study_uid: &str,
    sop_uid: &str,
    now: i64,
) -> Result<Option<u32>, StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE manifest_entries SET stored = 1 WHERE study_uid = ?1 AND sop_uid = ?2 AND NOT stored",
        )?
        .execute(params![study_uid, sop_uid])?;
    if changed == 0 {
        return Ok(None);
    }
    tx.execute(
        "UPDATE manifests SET missing = missing - 1 WHERE study_uid = ?1",
        [study_uid],
    )?;
    let (listed, missing) = mark_completion(tx, study_uid, now)?;
    Ok((missing == 0).then_some(listed as u32))
}

/// Keep `complete_at` in step with the missing count; returns `(listed, missing)`.
fn mark_completion(
    tx: &Transaction<'_>,
    study_uid: &str,
    now: i64,
) -> Result<(i64, i64), StoreError> {
    tx.execute(
        "UPDATE manifests SET complete_at = CASE WHEN missing = 0 THEN COALESCE(complete_at, ?2)
                                                 ELSE NULL END
         WHERE study_uid = ?1",
        params![study_uid, now],
    )?;
    Ok(tx.query_row(
        "SELECT listed, missing FROM manifests WHERE study_uid = ?1",
        [study_uid],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
