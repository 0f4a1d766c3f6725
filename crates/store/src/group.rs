//! Group commit: concurrent commits share their fsyncs.
//!
//! Making one small instance durable costs three journal commits on ext4 (the file's data, the
//! rename into `objects/`, the SQLite WAL). With one fsync per file the disk here manages
//! ≈ 250–300 files/s; a CT series arrives faster than that. So commits are batched:
//!
//! * every caller queues its [`Job`] (or several at once, [`Store::submit_many`]: one batch
//!   holds them all) and waits on its own slot;
//! * one caller at a time is the **leader**: it takes everything queued, makes it durable
//!   together (write-back started for all files first, then `fdatasync` each — after the first
//!   one the journal holds the others' allocations, so the rest are cheap; all renames, then one
//!   fsync per directory touched; one SQLite transaction for all rows), fills every slot, and
//!   hands leadership to the oldest caller still queued;
//! * nobody's slot is filled before the batch is durable, so the rule "acknowledged only after
//!   fsync" holds for every member of a batch.
//!
//! Batches form by themselves: while a leader waits for the disk, new commits queue up behind
//! it. A lone commit is not delayed (no timer).

use rusqlite::{params, Transaction};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::audit::{self, AuditAction, AuditEvent};
use crate::partial::Partial;
use crate::records::{InstanceRecord, NewInstance};
use crate::store::{sync_dir, Store, Stored};
use crate::StoreError;
use yilian_dicom::Catalog;
use yilian_proto::Hash;

/// One durable change.
pub(crate) enum Job {
    /// A verified partial becomes a stored instance with an outbox entry per reader.
    Instance(Box<InstanceJob>),
    /// A reader acknowledged an instance.
    Delivered {
        reader: String,
        study_uid: String,
        sop_uid: String,
    },
    /// A site declares (more of) a study's instances.
    Manifest(Box<ManifestJob>),
}

pub(crate) struct ManifestJob {
    pub(crate) source_site: String,
    pub(crate) study_uid: String,
    pub(crate) sop_uids: Vec<String>,
}

pub(crate) struct InstanceJob {
    pub(crate) partial: Partial,
    pub(crate) hash: Hash,
    pub(crate) inst: NewInstance,
    pub(crate) readers: Vec<String>,
    /// The catalog attributes (None: only what `inst` says).
    pub(crate) catalog: Option<Box<Catalog>>,
}

/// The outcome of one [`Job`].
pub(crate) enum Done {
    Instance(Result<Stored, StoreError>),
    Delivered(Result<(), StoreError>),
    /// The manifest was recorded (its status is read after the batch).
    Manifest(Result<(), StoreError>),
}

enum SlotState {
    Waiting,
    /// The previous leader finished: this caller leads the next batch.
    Lead,
    Done(Box<Done>),
}

struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, s: SlotState) {
        *self.lock() = s;
        self.cv.notify_one();
    }
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    batches: std::sync::atomic::AtomicU64,
    jobs: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<(Job, Arc<Slot>)>,
    leader: bool,
}

/// How well commits were grouped (for logs and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Batches made durable.
    pub batches: u64,
    /// Jobs (instances stored, deliveries recorded) in those batches.
    pub jobs: u64,
}

impl GroupCommit {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn stats(&self) -> GroupStats {
        use std::sync::atomic::Ordering::Relaxed;
        GroupStats {
            batches: self.batches.load(Relaxed),
            jobs: self.jobs.load(Relaxed),
        }
    }
}

impl Store {
    /// Queue `job`, wait until it is durable (or failed), and return its outcome.
    pub(crate) fn submit(&self, job: Job) -> Done {
        let mut done = self.submit_many(vec![job]);
        done.pop().unwrap_or_else(|| {
            Done::Instance(Err(StoreError::Corrupt("group commit lost a job".into())))
        })
    }

    /// Queue `jobs` together (one batch holds them all), wait until they are durable (or
    /// failed), and return their outcomes in order. One thread waits for many commits: the
    /// ingest path hands over every sealed upload that is ready at once.
    pub(crate) fn submit_many(&self, jobs: Vec<Job>) -> Vec<Done> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let slots: Vec<Arc<Slot>> = jobs
            .iter()
            .map(|_| {
                Arc::new(Slot {
                    state: Mutex::new(SlotState::Waiting),
                    cv: Condvar::new(),
                })
            })
            .collect();
        {
            let mut q = self.group.queue();
            q.jobs.extend(jobs.into_iter().zip(slots.iter().cloned()));
            if !q.leader {
                q.leader = true;
                slots[0].set(SlotState::Lead);
            }
        }
        // The jobs were queued under one lock, so the batch that takes one takes them all,
        // and only the first of them can be handed the lead.
        slots.iter().map(|slot| self.await_slot(slot)).collect()
    }

    /// Wait for `slot`'s outcome, leading a batch when handed the lead.
    fn await_slot(&self, slot: &Slot) -> Done {
        loop {
            let state = {
                let mut st = slot.lock();
                loop {
                    match std::mem::replace(&mut *st, SlotState::Waiting) {
                        SlotState::Waiting => {
                            st = slot.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                        other => break other,
                    }
                }
            };
            match state {
                SlotState::Done(d) => return *d,
                // Run one batch (which holds this slot's job unless a previous leader already
                // did), then hand the lead to the oldest job still queued; the slot is filled.
                _ => {
                    let batch = std::mem::take(&mut self.group.queue().jobs);
                    self.run_batch(batch);
                    let mut q = self.group.queue();
                    match q.jobs.first() {
                        Some((_, next)) => next.set(SlotState::Lead),
                        None => q.leader = false,
                    }
                }
            }
        }
    }

    fn run_batch(&self, batch: Vec<(Job, Arc<Slot>)>) {
        use std::sync::atomic::Ordering::Relaxed;
        if batch.is_empty() {
            return;
        }
        self.group.batches.fetch_add(1, Relaxed);
        self.group.jobs.fetch_add(batch.len() as u64, Relaxed);
        let (jobs, slots): (Vec<Job>, Vec<Arc<Slot>>) = batch.into_iter().unzip();
        // A panic fails the batch's jobs (below) instead of leaving their callers waiting.
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.make_durable(jobs)))
                .unwrap_or_default();
        let mut results = results.into_iter();
        for slot in slots {
            let done = results.next().unwrap_or_else(|| {
                Done::Instance(Err(StoreError::Corrupt(
                    "the commit was aborted by an internal error".into(),
                )))
            });
            slot.set(SlotState::Done(Box::new(done)));
        }
    }

    /// Make every job durable together; one outcome per job, in order.
    fn make_durable(&self, jobs: Vec<Job>) -> Vec<Done> {
        let mut plan: Vec<Plan> = Vec::with_capacity(jobs.len());
        let mut batch = BatchState::default();
        for (i, job) in jobs.into_iter().enumerate() {
            plan.push(match job {
                Job::Delivered {
                    reader,
                    study_uid,
                    sop_uid,
                } => Plan::Delivered {
                    reader,
                    study_uid,
                    sop_uid,
                },
                Job::Instance(j) => self.plan_instance(i, *j, &mut batch),
                Job::Manifest(m) => match self.claim(&m.study_uid, &m.source_site, &mut batch) {
                    Ok(()) => Plan::Manifest(m),
                    Err(e) => Plan::ManifestFailed(e),
                },
            });
        }

        // 1. File data: start write-back of every new file, then wait for each. A sealed
        // upload's file is durable already (its seal was an fsync): nothing to do. A pooled
        // file committed without a seal may hold its last bytes in its direct writer.
        for p in &mut plan {
            if let Plan::Store { partial, .. } = p {
                if let Err(e) = partial.complete_writes() {
                    *p = Plan::Failed(e);
                    continue;
                }
                if !partial.is_durable() {
                    start_writeback(&partial.file);
                }
            }
        }
        for p in &mut plan {
            if let Plan::Store { partial, .. } = p {
                if partial.is_durable() {
                    continue;
                }
                if let Err(e) = partial
                    .file
                    .sync_data()
                    .map_err(StoreError::io("fsync", &partial.path))
                {
                    *p = Plan::Failed(e);
                }
            }
        }
        // 2. Rename into objects/, then one fsync per directory touched. A sealed upload's
        // pooled name still holds its file: the fsync of its object's folder is left to the
        // settler, after the answer and shared with later commits (`settle.rs`).
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let mut deferred: BTreeSet<PathBuf> = BTreeSet::new();
        let mut created = false;
        for p in &mut plan {
            if let Plan::Store { partial, hash, .. } = p {
                match self.place(partial, hash, &mut created) {
                    Ok(dir) if self.keeps_pooled(partial, hash) => {
                        deferred.insert(dir);
                    }
                    Ok(dir) => {
                        dirs.insert(dir);
                    }
                    Err(e) => *p = Plan::Failed(e),
                }
            }
        }
        if created {
            if let Err(e) = sync_dir(&self.objects) {
                fail_stores(&mut plan, &e);
            }
        }
        for dir in &dirs {
            if let Err(e) = sync_dir(dir) {
                fail_stores_in(&mut plan, dir, &e, self);
            }
        }
        // 3. One transaction for every row.
        let now = crate::db::now();
        let mut db = self.db();
        let outcome = db.transaction().map_err(StoreError::from).and_then(|tx| {
            let mut rows = Vec::with_capacity(plan.len());
            for p in &plan {
                rows.push(write_rows(&tx, p, now)?);
            }
            tx.commit()?;
            Ok(rows)
        });
        if outcome.is_ok() {
            // Handed over while the index is still held: a prune (which settles first, under
            // the same lock) cannot see these rows without their pooled names handed over.
            let pooled: Vec<PathBuf> = plan
                .iter()
                .filter_map(|p| match p {
                    Plan::Store { partial, hash, .. } if self.keeps_pooled(partial, hash) => {
                        Some(partial.path.clone())
                    }
                    _ => None,
                })
                .collect();
            if !pooled.is_empty() {
                self.settler.defer(deferred, pooled);
            }
        }
        drop(db);
        let rows = match outcome {
            Ok(rows) => rows,
            Err(e) => {
                let shared = Arc::new(e);
                return plan
                    .into_iter()
                    .map(|p| match p {
                        Plan::Delivered { .. } => {
                            Done::Delivered(Err(StoreError::Batch(shared.clone())))
                        }
                        Plan::Manifest(_) | Plan::ManifestFailed(_) => {
                            Done::Manifest(Err(StoreError::Batch(shared.clone())))
                        }
                        _ => Done::Instance(Err(StoreError::Batch(shared.clone()))),
                    })
                    .collect();
            }
        };
        let mut records: HashMap<usize, InstanceRecord> = HashMap::new();
        let mut out = Vec::with_capacity(plan.len());
        for (i, (p, row)) in plan.into_iter().zip(rows).enumerate() {
            out.push(match p {
                Plan::Delivered { .. } => Done::Delivered(Ok(())),
                Plan::Manifest(_) => Done::Manifest(Ok(())),
                Plan::ManifestFailed(e) => Done::Manifest(Err(e)),
                Plan::Failed(e) => Done::Instance(Err(e)),
                Plan::Done(s) => Done::Instance(Ok(s)),
                Plan::SameAs(j) => Done::Instance(match records.get(&j) {
                    Some(r) => Ok(Stored::AlreadyStored(r.clone())),
                    None => Err(StoreError::Corrupt(
                        "the same instance arrived twice and the first copy failed".into(),
                    )),
                }),
                Plan::Store {
                    partial,
                    hash,
                    inst,
                    readers,
                    ..
                } => {
                    let record = InstanceRecord {
                        id: row.id,
                        sop_uid: inst.sop_uid,
                        study_uid: inst.study_uid,
                        series_uid: inst.series_uid,
                        sop_class_uid: inst.sop_class_uid,
                        modality: inst.modality,
                        source_site: inst.source_site,
                        source_identity: inst.source_identity,
                        size: partial.len(),
                        hash,
                        priority: inst.priority,
                        stored_at_ms: now,
                    };
                    records.insert(i, record.clone());
                    Done::Instance(Ok(Stored::New {
                        record,
                        readers,
                        study_complete: row.study_complete,
                    }))
                }
            });
        }
        out
    }

    /// Decide what to do with one verified partial.
    fn plan_instance(&self, i: usize, job: InstanceJob, batch: &mut BatchState) -> Plan {
        let InstanceJob {
            partial,
            hash,
            inst,
            readers,
            catalog,
        } = job;
        let key = (inst.source_site.clone(), inst.sop_uid.clone());
        if let Some(&(j, h)) = batch.fresh.get(&key) {
            partial.discard();
            return if h == hash {
                Plan::SameAs(j)
            } else {
                Plan::Failed(StoreError::Conflict {
                    sop_uid: inst.sop_uid,
                })
            };
        }
        match self.instance(&inst.source_site, &inst.sop_uid) {
            Err(e) => Plan::Failed(e),
            Ok(Some(existing)) if existing.hash == hash && self.keeps_pooled(&partial, &hash) => {
                // A sealed file committed before a crash (or a stop) that came before its
                // settle: the object's name may not have survived. Made again from the pooled
                // name (a name already there is the same file), which goes only once that
                // folder is settled.
                match self.relink(&partial, &hash) {
                    Ok(dir) => {
                        self.settler.defer([dir], vec![partial.path.clone()]);
                        self.partials.forget(&partial.key);
                        Plan::Done(Stored::AlreadyStored(existing))
                    }
                    // The pooled file stays, for a later attempt.
                    Err(e) => Plan::Failed(e),
                }
            }
            Ok(Some(existing)) => {
                if existing.hash == hash {
                    if partial.path == self.object_path(&hash) {
                        // Adopted from its object name: that is the stored instance itself.
                        self.partials.forget(&partial.key);
                    } else {
                        partial.discard();
                    }
                    Plan::Done(Stored::AlreadyStored(existing))
                } else {
                    partial.discard();
                    Plan::Failed(StoreError::Conflict {
                        sop_uid: inst.sop_uid,
                    })
                }
            }
            Ok(None) => {
                if let Err(e) = self.claim(&inst.study_uid, &inst.source_site, batch) {
                    // Refused for good: another site's study.
                    partial.discard();
                    return Plan::Failed(e);
                }
                batch.fresh.insert(key, (i, hash));
                Plan::Store {
                    partial,
                    hash,
                    inst,
                    readers,
                    catalog,
                }
            }
        }
    }

    /// Whether `site` may add to `study_uid`: it owns it, or nobody does yet (then it will,
    /// once the batch commits). Decided here, in the group commit's one leader, so that two
    /// sites can never both claim a study.
    fn claim(&self, study_uid: &str, site: &str, batch: &mut BatchState) -> Result<(), StoreError> {
        let owner = match batch.claims.get(study_uid) {
            Some(o) => Some(o.clone()),
            None => self.study_owner(study_uid)?,
        };
        match owner {
            Some(o) if o != site => Err(StoreError::StudyOwned {
                study_uid: study_uid.to_string(),
                owner: o,
            }),
            _ => {
                batch.claims.insert(study_uid.to_string(), site.to_string());
                Ok(())
            }
        }
    }

    /// Rename a durable partial to its content address; returns the directory to fsync.
    fn place(
        &self,
        partial: &Partial,
        hash: &Hash,
        created: &mut bool,
    ) -> Result<PathBuf, StoreError> {
        let dest = self.object_path(hash);
        let dir = dest
            .parent()
            .ok_or_else(|| StoreError::Corrupt("object path without parent".into()))?
            .to_path_buf();
        // A sealed upload may already be acknowledged: its pooled file stays (it is what a
        // restart commits again) until the index holds the instance; a link, not a move.
        let place = || {
            if partial.sealable {
                link_into(&partial.path, &dest)
            } else {
                std::fs::rename(&partial.path, &dest)
            }
        };
        // `objects/00`…`ff` are made when the store opens; one found missing is made again.
        let placed = match place() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                crate::fsmode::private_dir(&dir)?;
                *created = true;
                place()
            }
            r => r,
        };
        let what = if partial.sealable { "link" } else { "rename" };
        placed.map_err(StoreError::io(what, &dest))?;
        if !partial.sealable {
            crate::partial::remove_file(&partial.sidecar);
        }
        self.partials.forget(&partial.key);
        Ok(dir)
    }

    /// Whether `partial` is a sealed upload whose pooled name still holds its file apart from
    /// its object name: that name keeps it safe until the object's folder is settled.
    fn keeps_pooled(&self, partial: &Partial, hash: &Hash) -> bool {
        partial.sealable && partial.path != self.object_path(hash)
    }

    /// Give a sealed file its object name again if it lacks it; returns the folder to settle.
    fn relink(&self, partial: &Partial, hash: &Hash) -> Result<PathBuf, StoreError> {
        let mut created = false;
        let dir = self.place(partial, hash, &mut created)?;
        if created {
            sync_dir(&self.objects)?;
        }
        Ok(dir)
    }
}

/// A second name for `from`; one already there (a commit again after a crash) is fine.
fn link_into(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// What one job turns into inside a batch.
enum Plan {
    Store {
        partial: Partial,
        hash: Hash,
        inst: NewInstance,
        readers: Vec<String>,
        catalog: Option<Box<Catalog>>,
    },
    /// Identical to job `j` of the same batch.
    SameAs(usize),
    Done(Stored),
    Failed(StoreError),
    Delivered {
        reader: String,
        study_uid: String,
        sop_uid: String,
    },
    Manifest(Box<ManifestJob>),
    ManifestFailed(StoreError),
}

/// What the jobs of one batch decided so far (a later job must see an earlier one's effect).
#[derive(Default)]
struct BatchState {
    /// Instances to be stored by this batch: (site, SOP UID) → (job index, hash).
    fresh: HashMap<(String, String), (usize, Hash)>,
    /// Study owners decided by this batch.
    claims: HashMap<String, String>,
}

/// What one job's rows produced.
#[derive(Default)]
struct Rows {
    /// Id of a newly stored instance.
    id: i64,
    /// The study's instance count, if this instance completed its manifest.
    study_complete: Option<u32>,
}

fn fail_stores(plan: &mut [Plan], e: &StoreError) {
    let shared = Arc::new(StoreError::Corrupt(e.to_string()));
    for p in plan.iter_mut() {
        if matches!(p, Plan::Store { .. }) {
            *p = Plan::Failed(StoreError::Batch(shared.clone()));
        }
    }
}

fn fail_stores_in(plan: &mut [Plan], dir: &std::path::Path, e: &StoreError, store: &Store) {
    let shared = Arc::new(StoreError::Corrupt(e.to_string()));
    for p in plan.iter_mut() {
        if let Plan::Store { hash, .. } = p {
            if store.object_path(hash).parent() == Some(dir) {
                *p = Plan::Failed(StoreError::Batch(shared.clone()));
            }
        }
    }
}

/// Rows of one job, inside the batch's transaction.
fn write_rows(tx: &Transaction<'_>, p: &Plan, now: i64) -> Result<Rows, StoreError> {
    let mut rows = Rows::default();
    match p {
        Plan::Store {
            partial,
            hash,
            inst,
            readers,
            catalog,
        } => {
            let size = partial.len();
            claim_study(tx, &inst.study_uid, &inst.source_site, now)?;
            // Statements of the hot path are prepared once per connection (`prepare_cached`):
            // parsing them again for every instance cost more than running them.
            tx.prepare_cached(
                "INSERT INTO instances (sop_uid, study_uid, series_uid, sop_class_uid, modality,
                     source_site, source_identity, size, hash, priority, stored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                inst.sop_uid,
                inst.study_uid,
                inst.series_uid,
                inst.sop_class_uid,
                inst.modality,
                inst.source_site,
                inst.source_identity,
                size as i64,
                &hash[..],
                inst.priority,
                now
            ])?;
            rows.id = tx.last_insert_rowid();
            crate::catalog::insert(tx, rows.id, inst, catalog.as_deref())?;
            let mut outbox = tx.prepare_cached(
                "INSERT OR IGNORE INTO outbox (reader, instance_id, priority, enqueued_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for reader in readers {
                outbox.execute(params![reader, rows.id, inst.priority, now])?;
            }
            rows.study_complete =
                crate::manifest::instance_stored(tx, &inst.study_uid, &inst.sop_uid, now)?;
            audit::insert(
                tx,
                &AuditEvent {
                    actor: inst.source_identity.clone(),
                    site: Some(inst.source_site.clone()),
                    action: AuditAction::Receive,
                    study_uid: Some(inst.study_uid.clone()),
                    sop_uid: Some(inst.sop_uid.clone()),
                    outcome: "ok".into(),
                    detail: Some(format!("{} bytes, {} readers", size, readers.len())),
                },
            )?;
        }
        Plan::Delivered {
            reader,
            study_uid,
            sop_uid,
        } => {
            let changed = tx.execute(
                "UPDATE outbox SET delivered_at = ?4
                 WHERE reader = ?1 AND delivered_at IS NULL AND instance_id IN
                     (SELECT id FROM instances WHERE study_uid = ?2 AND sop_uid = ?3)",
                params![reader, study_uid, sop_uid, now],
            )?;
            if changed > 0 {
                audit::insert(
                    tx,
                    &AuditEvent {
                        actor: reader.clone(),
                        site: None,
                        action: AuditAction::Deliver,
                        study_uid: Some(study_uid.clone()),
                        sop_uid: Some(sop_uid.clone()),
                        outcome: "ok".into(),
                        detail: None,
                    },
                )?;
            }
        }
        Plan::Manifest(m) => {
            claim_study(tx, &m.study_uid, &m.source_site, now)?;
            crate::manifest::record(tx, &m.source_site, &m.study_uid, &m.sop_uids, now)?;
        }
        Plan::SameAs(_) | Plan::Done(_) | Plan::Failed(_) | Plan::ManifestFailed(_) => {}
    }
    Ok(rows)
}

/// Record `site` as the owner of `study_uid` if nobody owns it yet (the plan checked that no
/// other site does).
fn claim_study(
    tx: &Transaction<'_>,
    study_uid: &str,
    site: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO studies (study_uid, owner_site, claimed_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![study_uid, site, now])?;
    Ok(())
}

/// Ask the kernel to start writing a file back now, so the fsyncs that follow overlap.
fn start_writeback(file: &std::fs::File) {
    start_writeback_range(file, 0, 0);
}

/// Start write-back of `len` bytes at `from` (`len` 0: to the end) without waiting for it.
#[cfg(target_os = "linux")]
pub(crate) fn start_writeback_range(file: &std::fs::File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is valid for the lifetime of `file`; sync_file_range only schedules
    // write-back. A failure is harmless: the fdatasync that follows does the whole job.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_writeback_range(_file: &std::fs::File, _from: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PartialInfo;

    fn new_instance(site: &str, sop: &str) -> NewInstance {
        NewInstance {
            sop_uid: sop.into(),
            // One study per site: a study belongs to one site.
            study_uid: format!(
                "1.2.9.{}",
                site.len() + site.as_bytes()[site.len() - 1] as usize
            ),
            series_uid: "1.2.9.1".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            modality: "CT".into(),
            source_site: site.into(),
            source_identity: format!("{site}-device"),
            priority: 0,
        }
    }

    fn job(s: &Store, site: &str, sop: &str, bytes: &[u8]) -> Job {
        let mut p = s
            .open_partial(PartialInfo {
                source_site: site.into(),
                study_uid: "1.2.9".into(),
                sop_uid: sop.into(),
                size: bytes.len() as u64,
            })
            .unwrap();
        p.write(bytes).unwrap();
        Job::Instance(Box::new(InstanceJob {
            partial: p,
            hash: *blake3::hash(bytes).as_bytes(),
            inst: new_instance(site, sop),
            readers: vec!["county-radiology".into()],
            catalog: None,
        }))
    }

    /// Jobs queued while a leader is busy are made durable together, in one batch, and each
    /// caller gets its own outcome (new, duplicate within the batch, conflict within the batch).
    #[test]
    fn followers_queued_behind_a_leader_share_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::Store::small_pool_for_tests(dir.path()).unwrap());
        for (sop, bytes) in [("1.4", &b"four"[..]), ("1.5", b"five")] {
            let j = job(&store, "township-a", sop, bytes);
            assert!(matches!(
                store.submit(j),
                Done::Instance(Ok(Stored::New { .. }))
            ));
        }
        let before = store.group_stats();
        // Pretend a leader is busy: every submit below queues as a follower.
        store.group.queue().leader = true;
        let mut handles = Vec::new();
        let cases: Vec<(&str, &str, &[u8])> = vec![
            ("township-a", "1.1", b"one"),
            ("township-a", "1.2", b"two"),
            ("township-a", "1.4", b"four"), // the same instance again: same content
            ("township-a", "1.5", b"other"), // same UID, different content: conflict
            ("township-b", "1.3", b"three"), // another site's UIDs are its own
        ];
        for (site, sop, bytes) in cases {
            let s = store.clone();
            let j = job(&s, site, sop, bytes);
            handles.push(std::thread::spawn(move || s.submit(j)));
            // Queue them in this order (the outcome of a duplicate depends on the order).
            while store.group.queue().jobs.len() < handles.len() {
                std::thread::yield_now();
            }
        }
        // Now lead: one batch with all five.
        let batch = std::mem::take(&mut store.group.queue().jobs);
        assert_eq!(batch.len(), 5);
        store.run_batch(batch);
        store.group.queue().leader = false;
        let outcomes: Vec<Done> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let kinds: Vec<&str> = outcomes
            .iter()
            .map(|d| match d {
                Done::Instance(Ok(Stored::New { .. })) => "new",
                Done::Instance(Ok(Stored::AlreadyStored(_))) => "same",
                Done::Instance(Err(StoreError::Conflict { .. })) => "conflict",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["new", "new", "same", "conflict", "new"]);
        assert_eq!(
            store.group_stats(),
            GroupStats {
                batches: before.batches + 1,
                jobs: before.jobs + 5
            }
        );
        // Everything in the batch is in the index, the objects are in place, the outbox filled.
        for (site, sop, bytes) in [
            ("township-a", "1.1", &b"one"[..]),
            ("township-a", "1.2", b"two"),
            ("township-b", "1.3", b"three"),
        ] {
            let rec = store.instance(site, sop).unwrap().unwrap();
            assert_eq!(std::fs::read(store.object_path(&rec.hash)).unwrap(), bytes);
        }
        assert_eq!(store.pending_for("county-radiology").unwrap().len(), 5);
        // Partials of the refused and duplicate jobs are gone.
        let left = std::fs::read_dir(dir.path().join("partial"))
            .unwrap()
            .count();
        assert_eq!(left, 0);
    }

    /// Several jobs handed over at once by one thread form one batch, and their outcomes come
    /// back in their order (new, already stored, conflict).
    #[test]
    fn jobs_submitted_together_are_one_batch_with_outcomes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::small_pool_for_tests(dir.path()).unwrap();
        for (sop, bytes) in [("1.5", &b"five"[..]), ("1.6", b"six")] {
            let j = job(&store, "township-a", sop, bytes);
            assert!(matches!(
                store.submit(j),
                Done::Instance(Ok(Stored::New { .. }))
            ));
        }
        let before = store.group_stats();
        let jobs = vec![
            job(&store, "township-a", "1.1", b"one"),
            job(&store, "township-a", "1.2", b"two"),
            job(&store, "township-a", "1.6", b"six"), // stored already, same content
            job(&store, "township-a", "1.5", b"other"), // same UID, other content: conflict
        ];
        let kinds: Vec<&str> = store
            .submit_many(jobs)
            .iter()
            .map(|d| match d {
                Done::Instance(Ok(Stored::New { record, .. })) if record.sop_uid == "1.1" => {
                    "new 1.1"
                }
                Done::Instance(Ok(Stored::New { record, .. })) if record.sop_uid == "1.2" => {
                    "new 1.2"
                }
                Done::Instance(Ok(Stored::AlreadyStored(r))) if r.sop_uid == "1.6" => "same 1.6",
                Done::Instance(Err(StoreError::Conflict { sop_uid })) if sop_uid == "1.5" => {
                    "conflict 1.5"
                }
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["new 1.1", "new 1.2", "same 1.6", "conflict 1.5"]);
        assert_eq!(
            store.group_stats(),
            GroupStats {
                batches: before.batches + 1,
                jobs: before.jobs + 4
            }
        );
        assert!(store.submit_many(Vec::new()).is_empty());
        assert!(!store.group.queue().leader, "the leader stepped down");
    }

    /// A seeded model of callers that hand over one job or several at once, with pauses of
    /// random length between them, over many seeds: nobody waits forever (leadership always
    /// passes to a caller that is waiting, also to one whose jobs were queued as a group),
    /// every caller gets exactly its own outcomes, in order, and everything lands.
    #[test]
    fn single_and_grouped_submits_interleaved_all_land() {
        for seed in 1..=24u64 {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(crate::Store::small_pool_for_tests(dir.path()).unwrap());
            let threads: Vec<_> = (0..5u64)
                .map(|t| {
                    let s = store.clone();
                    std::thread::spawn(move || {
                        let mut rng = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                            ^ t.wrapping_mul(0xD1B5_4A32_D192_ED03))
                            | 1;
                        let mut next = move || {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            rng
                        };
                        let mut sent = 0usize;
                        for k in 0..6 {
                            let n = 1 + (next() % 5) as usize;
                            let sops: Vec<String> =
                                (0..n).map(|i| format!("1.{t}.{k}.{i}")).collect();
                            let jobs: Vec<Job> = sops
                                .iter()
                                .map(|sop| job(&s, "township-a", sop, sop.as_bytes()))
                                .collect();
                            for _ in 0..next() % 3 {
                                std::thread::yield_now();
                            }
                            let done = if n == 1 && next() % 2 == 0 {
                                jobs.into_iter().map(|j| s.submit(j)).collect()
                            } else {
                                s.submit_many(jobs)
                            };
                            assert_eq!(done.len(), n);
                            for (d, sop) in done.iter().zip(&sops) {
                                match d {
                                    Done::Instance(Ok(Stored::New { record, .. })) => {
                                        assert_eq!(&record.sop_uid, sop, "seed {seed}")
                                    }
                                    _ => panic!("seed {seed}: the commit of {sop} failed"),
                                }
                            }
                            sent += n;
                        }
                        sent
                    })
                })
                .collect();
            // A caller left waiting would hang the join: fail instead (not a timing bound,
            // a seed finishes in well under a second).
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let sent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
                // After a timeout nobody listens any more: the test has failed already.
                tx.send(sent).ok();
            });
            let sent = rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("seed {seed}: a caller waits forever (or panicked)"));
            assert_eq!(store.group_stats().jobs, sent as u64, "seed {seed}");
            assert!(!store.group.queue().leader, "seed {seed}: a leader is left");
            assert!(store.group.queue().jobs.is_empty(), "seed {seed}");
            assert_eq!(
                store.pending_for("county-radiology").unwrap().len(),
                sent,
                "seed {seed}"
            );
        }
    }

    /// Leadership passes on: a follower still queued when the leader's batch is done leads
    /// the next batch itself (nobody waits forever).
    #[test]
    fn a_queued_follower_takes_over_as_leader() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::Store::small_pool_for_tests(dir.path()).unwrap());
        store.group.queue().leader = true;
        let s = store.clone();
        let j = job(&s, "township-a", "1.9", b"nine");
        let follower = std::thread::spawn(move || s.submit(j));
        while store.group.queue().jobs.is_empty() {
            std::thread::yield_now();
        }
        // The "leader" finishes an (empty) batch and hands over, as `submit` does.
        {
            let q = store.group.queue();
            q.jobs[0].1.set(SlotState::Lead);
        }
        assert!(matches!(
            follower.join().unwrap(),
            Done::Instance(Ok(Stored::New { .. }))
        ));
        assert!(!store.group.queue().leader, "the last leader stepped down");
        assert!(store.instance("township-a", "1.9").unwrap().is_some());
    }

    /// Many threads committing at once: every one returns only its own, durable outcome.
    #[test]
    fn concurrent_commits_and_deliveries_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::Store::small_pool_for_tests(dir.path()).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let s = store.clone();
                std::thread::spawn(move || {
                    for k in 0..8 {
                        let sop = format!("1.{t}.{k}");
                        let bytes = format!("instance {sop}");
                        let j = job(&s, "township-a", &sop, bytes.as_bytes());
                        match s.submit(j) {
                            Done::Instance(Ok(Stored::New { record, .. })) => {
                                assert_eq!(record.sop_uid, sop);
                                s.mark_delivered("county-radiology", &record.study_uid, &sop)
                                    .unwrap();
                            }
                            _ => panic!("commit of {sop} failed"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = store.group_stats();
        assert_eq!(stats.jobs, 256);
        drop(store);
        let store = crate::Store::small_pool_for_tests(dir.path()).unwrap();
        assert!(store.pending_for("county-radiology").unwrap().is_empty());
        assert_eq!(
            store.audit_entries(AuditAction::Deliver).unwrap().len(),
            128
        );
        assert_eq!(
            store.audit_entries(AuditAction::Receive).unwrap().len(),
            128
        );
    }
}
