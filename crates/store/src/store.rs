use rusqlite::{Connection, OptionalExtension};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use yilian_proto::Hash;

use crate::audit::{self, AuditAction, AuditEvent, AuditRecord};
use crate::group::{Done, GroupCommit, GroupStats, InstanceJob, Job};
use crate::partial::{self, Partial, PartialInfo};
use crate::records::{InstanceRecord, NewInstance};
use crate::StoreError;

/// The durable spool of one relay. Cheap to share behind an `Arc`; every method is blocking.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    pub(crate) objects: PathBuf,
    partial: PathBuf,
    pub(crate) db: Mutex<Connection>,
    pub(crate) group: GroupCommit,
}

/// The outcome of [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored; these readers got an outbox entry.
    New {
        record: InstanceRecord,
        readers: Vec<String>,
    },
    /// The same content was already stored under this SOP Instance UID.
    AlreadyStored(InstanceRecord),
}

impl Store {
    /// Open (creating if needed) the spool under `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let objects = root.join("objects");
        let partial = root.join("partial");
        for d in [root, &objects, &partial] {
            std::fs::create_dir_all(d).map_err(StoreError::io("create directory", d))?;
        }
        sync_dir(root)?;
        let db = crate::db::open(&root.join("index.sqlite"))?;
        Ok(Store {
            root: root.to_path_buf(),
            objects,
            partial,
            db: Mutex::new(db),
            group: GroupCommit::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored instance with this SOP Instance UID.
    pub fn instance(&self, sop_uid: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT sop_uid, study_uid, series_uid, sop_class_uid, modality, source_site,
                    source_identity, size, hash, priority, stored_at
             FROM instances WHERE sop_uid = ?1",
        )?;
        let rec = st
            .query_row([sop_uid], row_to_record)
            .optional()?
            .transpose()?;
        Ok(rec)
    }

    /// Every stored instance of a study.
    pub fn study_instances(&self, study_uid: &str) -> Result<Vec<InstanceRecord>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT sop_uid, study_uid, series_uid, sop_class_uid, modality, source_site,
                    source_identity, size, hash, priority, stored_at
             FROM instances WHERE study_uid = ?1 ORDER BY sop_uid",
        )?;
        let rows = st.query_map([study_uid], row_to_record)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// Path of a stored object.
    pub fn object_path(&self, hash: &Hash) -> PathBuf {
        let hex = hex::encode(hash);
        self.objects.join(&hex[..2]).join(format!("{hex}.dcm"))
    }

    /// Open (or resume) the partial upload described by `info`. A partial left by an earlier
    /// attempt with the same description resumes at its length; anything else starts at zero.
    pub fn open_partial(&self, info: PartialInfo) -> Result<Partial, StoreError> {
        partial::open(&self.partial, info)
    }

    /// Make a verified partial a stored instance: fsync, rename into `objects/`, fsync the
    /// directory, then one transaction adds the instance, an outbox entry per reader and the
    /// audit entry. Only after this returns may the upload be acknowledged. Concurrent calls
    /// share their fsyncs (group commit, see `group.rs`); each returns only once its own
    /// instance is durable.
    pub fn commit(
        &self,
        partial: Partial,
        hash: Hash,
        inst: &NewInstance,
        readers: &[String],
    ) -> Result<Stored, StoreError> {
        match self.submit(Job::Instance(Box::new(InstanceJob {
            partial,
            hash,
            inst: inst.clone(),
            readers: readers.to_vec(),
        }))) {
            Done::Instance(r) => r,
            Done::Delivered(_) => Err(StoreError::Corrupt("group commit mixed up two jobs".into())),
        }
    }

    /// How well commits have been grouped since the store was opened.
    pub fn group_stats(&self) -> GroupStats {
        self.group.stats()
    }

    /// Append an audit entry.
    pub fn audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        audit::insert(&self.db(), event)?;
        Ok(())
    }

    /// Number of audit entries (for tests and status).
    pub fn audit_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .db()
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Audit entries of one action, oldest first.
    pub fn audit_entries(&self, action: AuditAction) -> Result<Vec<AuditRecord>, StoreError> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT actor, outcome, sop_uid, detail FROM audit WHERE action = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([action.to_string()], |r| {
            Ok(AuditRecord {
                actor: r.get(0)?,
                outcome: r.get(1)?,
                sop_uid: r.get(2)?,
                detail: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

type RecordRow = Result<InstanceRecord, StoreError>;

pub(crate) fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    let hash: Vec<u8> = r.get(8)?;
    let size: i64 = r.get(7)?;
    let Ok(hash) = <Hash>::try_from(hash.as_slice()) else {
        return Ok(Err(StoreError::Corrupt(
            "instance hash is not 32 bytes".into(),
        )));
    };
    Ok(Ok(InstanceRecord {
        sop_uid: r.get(0)?,
        study_uid: r.get(1)?,
        series_uid: r.get(2)?,
        sop_class_uid: r.get(3)?,
        modality: r.get(4)?,
        source_site: r.get(5)?,
        source_identity: r.get(6)?,
        size: size as u64,
        hash,
        priority: r.get(9)?,
        stored_at_ms: r.get(10)?,
    }))
}

/// fsync a directory so a rename or a new entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}
