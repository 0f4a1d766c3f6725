//! Study manifests: a study is complete when every instance its sender listed is stored.

use rusqlite::{params, OptionalExtension};
use yilian_proto::Manifest;

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

impl Store {
    /// Record (or replace) a study's manifest and return its status.
    pub fn record_manifest(
        &self,
        source_site: &str,
        manifest: &Manifest,
    ) -> Result<ManifestStatus, StoreError> {
        let json = serde_json::to_string(&manifest.sop_uids)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.db().execute(
            "INSERT INTO manifests (study_uid, source_site, sop_uids, received_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(study_uid) DO UPDATE SET sop_uids = excluded.sop_uids,
                 received_at = excluded.received_at, complete_at = NULL",
            params![manifest.study_uid, source_site, json, crate::db::now()],
        )?;
        self.manifest_status(&manifest.study_uid)
    }

    /// The status of a study; marks it complete the first time it is.
    pub fn manifest_status(&self, study_uid: &str) -> Result<ManifestStatus, StoreError> {
        let db = self.db();
        let json: Option<String> = db
            .query_row(
                "SELECT sop_uids FROM manifests WHERE study_uid = ?1",
                [study_uid],
                |r| r.get(0),
            )
            .optional()?;
        let Some(json) = json else {
            return Ok(ManifestStatus::NoManifest);
        };
        let listed: Vec<String> =
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut st = db.prepare_cached("SELECT 1 FROM instances WHERE sop_uid = ?1")?;
        let mut missing = Vec::new();
        for sop in &listed {
            if !st.exists([sop])? {
                missing.push(sop.clone());
            }
        }
        if missing.is_empty() {
            db.execute(
                "UPDATE manifests SET complete_at = ?2 WHERE study_uid = ?1 AND complete_at IS NULL",
                params![study_uid, crate::db::now()],
            )?;
            Ok(ManifestStatus::Complete {
                instances: listed.len() as u32,
            })
        } else {
            Ok(ManifestStatus::Pending { missing })
        }
    }

    /// For a complete study: whether every one of its instances routed to `reader` is delivered,
    /// and the notice was not sent yet. Records the notice as sent when it returns `Some`.
    pub fn take_study_notice(
        &self,
        reader: &str,
        study_uid: &str,
    ) -> Result<Option<u32>, StoreError> {
        let ManifestStatus::Complete { .. } = self.manifest_status(study_uid)? else {
            return Ok(None);
        };
        let db = self.db();
        let (routed, undelivered): (i64, i64) = db.query_row(
            "SELECT COUNT(*), COALESCE(SUM(o.delivered_at IS NULL), 0)
             FROM outbox o JOIN instances i ON i.sop_uid = o.sop_uid
             WHERE o.reader = ?1 AND i.study_uid = ?2",
            params![reader, study_uid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if routed == 0 || undelivered > 0 {
            return Ok(None);
        }
        let inserted = db.execute(
            "INSERT OR IGNORE INTO study_notices (reader, study_uid, sent_at) VALUES (?1, ?2, ?3)",
            params![reader, study_uid, crate::db::now()],
        )?;
        Ok((inserted > 0).then_some(routed as u32))
    }
}
