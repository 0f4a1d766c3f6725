use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use yilian_dicom::Catalog;
use yilian_proto::Hash;

use crate::audit::{self, AuditAction, AuditEvent, AuditRecord};
use crate::fsmode::private_dir;
use crate::group::{Done, GroupCommit, GroupStats, InstanceJob, Job};
use crate::partial::{self, Partial, PartialInfo};
use crate::partials::PartialRegistry;
use crate::records::{InstanceRecord, NewInstance};
use crate::StoreError;

pub(crate) use crate::fsmode::sync_dir;

/// The durable spool of one relay. Cheap to share behind an `Arc`; every method is blocking.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    pub(crate) objects: PathBuf,
    partial: PathBuf,
    /// Partials that are never resumed (`open_scratch`).
    scratch: PathBuf,
    scratch_seq: std::sync::atomic::AtomicU64,
    /// Empty durable files for uploads of unknown size (`sealed.rs`).
    pool: crate::sealed::Pool,
    /// Buffers of the direct writes into pooled files (`direct.rs`).
    pub(crate) buffers: Arc<crate::direct::Buffers>,
    /// Sealed uploads found at open, not yet committed again.
    leftovers: Mutex<Vec<(PathBuf, Vec<u8>)>>,
    pub(crate) partials: Arc<PartialRegistry>,
    /// The writer's connection (the group commit, and changes outside it).
    pub(crate) db: Mutex<Connection>,
    /// Connections for lookups, which must not wait for a commit (`readers.rs`).
    readers: crate::readers::Readers,
    pub(crate) group: GroupCommit,
    /// Folder fsyncs of sealed commits, made in bulk after the answer (`settle.rs`).
    pub(crate) settler: Arc<crate::settle::Settler>,
}

/// Closing a store settles what its sealed commits left to settle (`settle.rs`).
impl Drop for Store {
    fn drop(&mut self) {
        self.settler.close();
    }
}

/// Limits of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bytes of unfinished uploads (declared sizes) one source site may leave at the relay.
    pub partial_bytes_per_site: u64,
    /// Empty files kept ready for uploads of unknown size (C-STORE, STOW-RS), made when the
    /// store opens and refilled in the background ([`STOCK`](crate::STOCK) by default).
    pub ready_files: usize,
    /// How long after a sealed commit its object's folder is fsync'ed and its pooled copy
    /// removed, together with the commits that came meanwhile ([`SETTLE_AFTER`] by default;
    /// see [`Store::settle`]).
    ///
    /// [`SETTLE_AFTER`]: crate::SETTLE_AFTER
    pub settle_after: std::time::Duration,
}

impl StoreOptions {
    /// The defaults, with `ready_files` files kept made (a test that opens many stores keeps a
    /// batch: making the default stock for each, then removing it, only slows it down).
    pub fn with_ready_files(ready_files: usize) -> Self {
        StoreOptions {
            ready_files,
            ..Default::default()
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            partial_bytes_per_site: 64 << 30,
            ready_files: crate::STOCK,
            settle_after: crate::SETTLE_AFTER,
        }
    }
}

/// One verified partial for [`Store::commit_many`].
#[derive(Debug)]
pub struct InstanceCommit {
    pub partial: Partial,
    pub hash: Hash,
    pub instance: NewInstance,
    /// Readers that get an outbox entry.
    pub readers: Vec<String>,
    /// The catalog attributes (see [`Store::commit_with_catalog`]).
    pub catalog: Catalog,
}

/// The outcome of [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored; these readers got an outbox entry. `study_complete` is the study's
    /// instance count when this instance was the last one its manifest was missing.
    New {
        record: InstanceRecord,
        readers: Vec<String>,
        study_complete: Option<u32>,
    },
    /// The same content was already stored under this SOP Instance UID (from the same site).
    AlreadyStored(InstanceRecord),
}

/// Create the 256 folders of `objects/` (`00` … `ff`) that do not exist yet, and make them
/// durable: a store creates them once, so no commit pays for a new folder (a new inode, and
/// an fsync of `objects/`) on the path to an acknowledgement.
fn fan_out(objects: &Path) -> Result<(), StoreError> {
    let mut created = false;
    for b in 0..=255u8 {
        let dir = objects.join(hex::encode([b]));
        if !dir.is_dir() {
            private_dir(&dir)?;
            created = true;
        }
    }
    if created {
        sync_dir(objects)?;
    }
    Ok(())
}

impl Store {
    /// Open (creating if needed) the spool under `root`, with default limits.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Self::open_with(root, StoreOptions::default())
    }

    /// A store whose pool keeps one batch ready (tests open many stores).
    #[cfg(test)]
    pub(crate) fn small_pool_for_tests(root: &Path) -> Result<Store, StoreError> {
        Self::open_with(root, StoreOptions::with_ready_files(32))
    }

    /// Open (creating if needed) the spool under `root`. Its folders are 0700 and its files
    /// 0600: they hold patient data.
    pub fn open_with(root: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let objects = root.join("objects");
        let partial = root.join("partial");
        let scratch = root.join("scratch");
        for d in [root, &objects, &partial, &scratch] {
            private_dir(d)?;
        }
        sync_dir(root)?;
        fan_out(&objects)?;
        let cleared = partial::clear_scratch(&scratch)?;
        if cleared > 0 {
            tracing::info!(
                files = cleared,
                "removed unfinished uploads that cannot be resumed (scratch)"
            );
        }
        let (pool, leftovers) =
            crate::sealed::Pool::open(&scratch.join("ready"), options.ready_files)?;
        let partials = Arc::new(PartialRegistry::load(
            &partial,
            options.partial_bytes_per_site,
        )?);
        let index = root.join("index.sqlite");
        let db = crate::db::open(&index)?;
        Ok(Store {
            root: root.to_path_buf(),
            objects,
            partial,
            scratch,
            scratch_seq: std::sync::atomic::AtomicU64::new(0),
            pool,
            buffers: Default::default(),
            leftovers: Mutex::new(leftovers),
            partials,
            db: Mutex::new(db),
            readers: crate::readers::Readers::new(&index),
            group: GroupCommit::default(),
            settler: Arc::new(crate::settle::Settler::new(options.settle_after)),
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

    /// A connection for lookups: it sees every commit that ended before the lookup started,
    /// and never waits for one in progress.
    pub(crate) fn read(&self) -> Result<crate::readers::Reader<'_>, StoreError> {
        self.readers.get()
    }

    /// The instance `source_site` stored under this SOP Instance UID. UIDs are scoped by
    /// site: another site's instance with the same UID is not visible here.
    pub fn instance(
        &self,
        source_site: &str,
        sop_uid: &str,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        let db = self.read()?;
        let mut st = db.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM instances WHERE source_site = ?1 AND sop_uid = ?2"
        ))?;
        let rec = st
            .query_row([source_site, sop_uid], row_to_record)
            .optional()?
            .transpose()?;
        Ok(rec)
    }

    /// The site a study belongs to (the first to send an instance of it or its manifest).
    pub fn study_owner(&self, study_uid: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read()?
            .prepare_cached("SELECT owner_site FROM studies WHERE study_uid = ?1")?
            .query_row([study_uid], |r| r.get(0))
            .optional()?)
    }

    /// Every stored instance of a study.
    pub fn study_instances(&self, study_uid: &str) -> Result<Vec<InstanceRecord>, StoreError> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM instances WHERE study_uid = ?1 ORDER BY sop_uid"
        ))?;
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
    ///
    /// Fails with [`StoreError::PartialQuota`] when the site's unfinished uploads would pass
    /// [`StoreOptions::partial_bytes_per_site`] even after its oldest idle ones are removed.
    pub fn open_partial(&self, info: PartialInfo) -> Result<Partial, StoreError> {
        partial::open(&self.partial, info, &self.partials, &self.buffers)
    }

    /// Open a partial that is never resumed: for an upload whose size or study is known only
    /// at its end (a C-STORE). It is committed like any partial; one left by a crash is
    /// removed when the store opens.
    pub fn open_scratch(&self, source_site: &str, sop_uid: &str) -> Result<Partial, StoreError> {
        let n = self
            .scratch_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        partial::open_scratch(
            &self.scratch,
            &self.pool,
            source_site,
            sop_uid,
            n,
            &self.partials,
            &self.buffers,
        )
    }

    /// Direct-write buffers (1 MiB each) held by uploads now: only uploads whose bytes are
    /// flowing hold one; one that waits for its data gave its buffer back.
    pub fn write_buffers_in_use(&self) -> usize {
        self.buffers.in_use()
    }

    /// Sealed uploads that were not committed when the store last closed (a crash), with their
    /// tags: each must be committed again ([`Store::adopt_sealed`]). Returned once.
    pub fn sealed_leftovers(&self) -> Vec<(PathBuf, Vec<u8>)> {
        std::mem::take(&mut *self.leftovers.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A sealed upload left by a crash, as a partial to commit again (its bytes are on disk).
    pub fn adopt_sealed(
        &self,
        path: &Path,
        source_site: &str,
        sop_uid: &str,
    ) -> Result<Partial, StoreError> {
        partial::adopt_sealed(path, source_site, sop_uid, &self.partials)
    }

    /// Make the object names of sealed commits durable now and remove their pooled copies
    /// (`settle.rs`; a thread does it on its own about a second after a commit, and closing
    /// the store does it too); returns how many pooled copies went.
    pub fn settle(&self) -> Result<usize, StoreError> {
        self.settler.settle()
    }

    /// Close the store as a crash would: pooled copies waiting for a settle stay (for tests
    /// of what the next start recovers).
    #[doc(hidden)]
    pub fn crash(self) {
        self.settler.abandon();
    }

    /// Pooled copies of committed sealed uploads waiting for a settle (and pooled copies
    /// removed by settles so far).
    pub fn unsettled(&self) -> (usize, u64) {
        (self.settler.waiting(), self.settler.settled())
    }

    /// Remove unfinished uploads nobody resumed for `max_age`; returns how many.
    pub fn sweep_partials(&self, max_age: Duration) -> usize {
        self.partials.sweep(&self.partial, max_age)
    }

    /// Declared bytes and count of `site`'s unfinished uploads.
    pub fn partial_usage(&self, site: &str) -> (u64, usize) {
        self.partials.usage(site)
    }

    /// Make a verified partial a stored instance: fsync, rename into `objects/`, fsync the
    /// directory, then one transaction adds the instance, an outbox entry per reader, a
    /// catalog row with what `inst` says (UIDs, modality; see [`Store::commit_with_catalog`])
    /// and the audit entry. Only after this returns may the upload be acknowledged. Concurrent calls
    /// share their fsyncs (group commit, see `group.rs`); each returns only once its own
    /// instance is durable.
    pub fn commit(
        &self,
        partial: Partial,
        hash: Hash,
        inst: &NewInstance,
        readers: &[String],
    ) -> Result<Stored, StoreError> {
        self.commit_job(partial, hash, inst, readers, None)
    }

    /// [`Store::commit`] that also records the instance's catalog attributes (what C-FIND and
    /// QIDO match on; [`Store::find`]) in the same transaction. The relay passes
    /// `meta.catalog_with_default(site_default)` from the walker's metadata. UIDs, SOP class
    /// and modality are taken from `inst`, the rest from `catalog`.
    pub fn commit_with_catalog(
        &self,
        partial: Partial,
        hash: Hash,
        inst: &NewInstance,
        readers: &[String],
        catalog: &Catalog,
    ) -> Result<Stored, StoreError> {
        self.commit_job(
            partial,
            hash,
            inst,
            readers,
            Some(Box::new(catalog.clone())),
        )
    }

    /// Commit several verified partials in one batch of the group commit, on this one thread;
    /// one outcome per instance, in order. Each is what [`Store::commit_with_catalog`] would
    /// have answered for it alone.
    pub fn commit_many(&self, commits: Vec<InstanceCommit>) -> Vec<Result<Stored, StoreError>> {
        let jobs = commits
            .into_iter()
            .map(|c| {
                Job::Instance(Box::new(InstanceJob {
                    partial: c.partial,
                    hash: c.hash,
                    inst: c.instance,
                    readers: c.readers,
                    catalog: Some(Box::new(c.catalog)),
                }))
            })
            .collect();
        self.submit_many(jobs)
            .into_iter()
            .map(|d| match d {
                Done::Instance(r) => r,
                _ => Err(StoreError::Corrupt("group commit mixed up two jobs".into())),
            })
            .collect()
    }

    fn commit_job(
        &self,
        partial: Partial,
        hash: Hash,
        inst: &NewInstance,
        readers: &[String],
        catalog: Option<Box<Catalog>>,
    ) -> Result<Stored, StoreError> {
        match self.submit(Job::Instance(Box::new(InstanceJob {
            partial,
            hash,
            inst: inst.clone(),
            readers: readers.to_vec(),
            catalog,
        }))) {
            Done::Instance(r) => r,
            _ => Err(StoreError::Corrupt("group commit mixed up two jobs".into())),
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

/// The columns [`row_to_record`] reads, in order (prefix them with a table alias by hand).
pub(crate) const RECORD_COLUMNS: &str = "sop_uid, study_uid, series_uid, sop_class_uid, \
    modality, source_site, source_identity, size, hash, priority, stored_at, id";

pub(crate) fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    let hash: Vec<u8> = r.get(8)?;
    let size: i64 = r.get(7)?;
    let Ok(hash) = <Hash>::try_from(hash.as_slice()) else {
        return Ok(Err(StoreError::Corrupt(
            "instance hash is not 32 bytes".into(),
        )));
    };
    Ok(Ok(InstanceRecord {
        id: r.get(11)?,
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
