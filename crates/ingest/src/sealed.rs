//! Acknowledge after one fsync, commit after: uploads of unknown size (C-STORE) written into
//! the store's pool of pre-created files (`yilian_store`'s `sealed.rs`).
//!
//! ```text
//! verified ──▶ checks (same UID stored? study owned by another site?) ──▶ seal (tag + fsync)
//!   (all on the spool writer's thread: `check_and_seal`)
//!          ──▶ Event::Stored (the front door acknowledges) ──▶ commit (group commit), lease held
//! ```
//!
//! The checks that a commit could still refuse for good are made before the seal, against
//! the index; the upload's lease of (site, SOP Instance UID) is held until the commit is done,
//! so no other upload of that instance can slip in between. A commit that fails after the
//! acknowledgement (a full disk) is tried again with backoff; the sealed file stays on disk
//! meanwhile, and a crash before the commit leaves it in the pool, where [`recover`] finds it
//! at the next start and commits it. Nothing acknowledged is lost either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};
use yilian_dicom::{Catalog, Walker};
use yilian_proto::{Hash, InstanceRef, Refusal, RefuseCode};
use yilian_route::Priority;
use yilian_store::{
    AuditAction, AuditEvent, InstanceCommit, NewInstance, Partial, Store, StoreError, Stored,
};

use crate::gate_handle::Ticket;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::principal::Principal;
use crate::refusal::{refusal, refusal_for};
use crate::routing::route_instance;
use crate::seal_tag::{self, SealTag};
use crate::spool_writer::Verified;

/// What sealing a verified upload came to.
pub(crate) enum Sealing {
    /// Durable: acknowledge, then commit.
    Sealed(Partial),
    /// The site already holds this very instance: acknowledge, nothing to commit.
    AlreadyStored,
}

/// The checks a commit could still refuse for good (the same UID stored with other content,
/// the study owned by another site), then the seal (tag + one fsync). Runs on the spool
/// writer's thread right after the upload is verified: no hand-off between the last byte and
/// the acknowledgement.
pub(crate) fn check_and_seal(
    store: &Store,
    principal: &Principal,
    requested: Priority,
    mut partial: Partial,
    hash: Hash,
    instance: &NewInstance,
) -> Result<Sealing, StoreError> {
    let (site, sop, study) = (
        &instance.source_site,
        &instance.sop_uid,
        &instance.study_uid,
    );
    let checked = match store.instance(site, sop) {
        Ok(Some(rec)) if rec.hash == hash => Ok(Some(Sealing::AlreadyStored)),
        Ok(Some(_)) => Err(StoreError::Conflict {
            sop_uid: sop.clone(),
        }),
        Ok(None) => match store.study_owner(study) {
            Ok(Some(owner)) if owner != *site => Err(StoreError::StudyOwned {
                study_uid: study.clone(),
                owner,
            }),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match checked {
        Ok(None) => {}
        Ok(Some(done)) => {
            partial.discard();
            return Ok(done);
        }
        Err(e) => {
            partial.discard();
            return Err(e);
        }
    }
    let tag = seal_tag::encode(&SealTag {
        principal: principal.clone(),
        priority: requested.as_u8(),
    });
    let sealed = partial.seal(&tag);
    match sealed {
        Ok(()) => Ok(Sealing::Sealed(partial)),
        Err(e) => {
            partial.discard();
            Err(e)
        }
    }
}

/// A sealed (durable, acknowledged) upload to commit.
pub(crate) struct CommitJob {
    ingest: Arc<Ingest>,
    partial: Partial,
    pending: Pending,
}

impl CommitJob {
    /// The commit of a verified and sealed upload.
    pub(crate) fn of(
        ingest: Arc<Ingest>,
        principal: Arc<Principal>,
        v: Verified,
        ticket: Option<Ticket>,
    ) -> CommitJob {
        let pending = Pending {
            principal,
            path: v.partial.path().to_path_buf(),
            hash: v.hash,
            instance: v.instance,
            readers: v.readers,
            catalog: v.catalog,
            ticket,
        };
        CommitJob {
            ingest,
            partial: v.partial,
            pending,
        }
    }
}

/// What a sealed upload's commit needs besides its partial (kept for a retry), and its lease.
struct Pending {
    principal: Arc<Principal>,
    path: PathBuf,
    hash: Hash,
    instance: NewInstance,
    readers: Vec<String>,
    catalog: Catalog,
    /// The lease of (site, SOP Instance UID), held until the commit is done.
    ticket: Option<Ticket>,
}

/// Sealed uploads waiting for their commit, and whether a task is draining them.
#[derive(Default)]
pub(crate) struct SealedQueue {
    jobs: Vec<(Partial, Pending)>,
    draining: bool,
}

/// Queue a sealed upload's commit; its lease goes once the commit is done.
///
/// One task drains the queue: it hands every sealed upload that is ready to one blocking
/// thread, which commits them in one batch of the group commit ([`Store::commit_many`]), while
/// the next ones queue up behind it. A commit per upload, each on a thread of its own that
/// waits in the group commit, cost a thread hand-off and a wake-up per instance, and made
/// batches of two or three.
pub(crate) fn commit_after_seal(job: CommitJob) {
    let CommitJob {
        ingest,
        partial,
        pending,
    } = job;
    let start = {
        let mut q = ingest.sealed.lock().unwrap_or_else(|p| p.into_inner());
        q.jobs.push((partial, pending));
        !std::mem::replace(&mut q.draining, true)
    };
    if start {
        tokio::spawn(drain(ingest));
    }
}

/// Commit what the queue holds, batch after batch, until it is empty.
async fn drain(ingest: Arc<Ingest>) {
    loop {
        let jobs = {
            let mut q = ingest.sealed.lock().unwrap_or_else(|p| p.into_inner());
            if q.jobs.is_empty() {
                q.draining = false;
                return;
            }
            std::mem::take(&mut q.jobs)
        };
        commit_batch(&ingest, jobs).await;
    }
}

/// One batch of sealed uploads; a failed one is tried again on its own, with backoff.
async fn commit_batch(ingest: &Arc<Ingest>, jobs: Vec<(Partial, Pending)>) {
    let (partials, pending): (Vec<Partial>, Vec<Pending>) = jobs.into_iter().unzip();
    let commits = partials
        .into_iter()
        .zip(&pending)
        .map(|(partial, p)| InstanceCommit {
            partial,
            hash: p.hash,
            instance: p.instance.clone(),
            readers: p.readers.clone(),
            catalog: p.catalog.clone(),
        })
        .collect();
    let store = ingest.store.clone();
    let results = match tokio::task::spawn_blocking(move || store.commit_many(commits)).await {
        Ok(r) => r,
        Err(e) => {
            // The files stay sealed: each is found again and committed on its own.
            warn!("committing acknowledged instances failed: {e}");
            Vec::new()
        }
    };
    let mut results = results.into_iter();
    for p in pending {
        let first = results.next();
        if let Some(Ok(stored)) = first {
            announce(ingest, &p.instance, stored, true);
            drop(p.ticket);
            continue;
        }
        let ingest = ingest.clone();
        tokio::spawn(async move {
            commit_sealed(&ingest, &p, first).await;
            drop(p.ticket);
        });
    }
}

/// Finish a sealed upload's commit whose first attempt (`first`, if it was made) failed: a
/// refusal for good is reported; anything else is tried again with backoff, the file staying
/// sealed meanwhile.
async fn commit_sealed(
    ingest: &Arc<Ingest>,
    p: &Pending,
    first: Option<Result<Stored, StoreError>>,
) {
    let mut attempt = first;
    let mut backoff = Duration::from_secs(1);
    loop {
        match attempt.take() {
            Some(Ok(stored)) => {
                announce(ingest, &p.instance, stored, true);
                return;
            }
            Some(Err(e @ (StoreError::Conflict { .. } | StoreError::StudyOwned { .. }))) => {
                // Only a race the checks before the seal could not see; the file stays sealed
                // (reported again at the next start) so nothing acknowledged is thrown away.
                error!(sop_uid = %p.instance.sop_uid, "an acknowledged instance cannot be committed: {e}; its file stays at {}", p.path.display());
                ingest
                    .audit(AuditEvent {
                        actor: p.principal.actor(),
                        site: Some(p.principal.site.clone()),
                        action: AuditAction::Receive,
                        study_uid: Some(p.instance.study_uid.clone()),
                        sop_uid: Some(p.instance.sop_uid.clone()),
                        outcome: "commit-refused".into(),
                        detail: Some(e.to_string()),
                    })
                    .await;
                return;
            }
            Some(Err(e)) => {
                ingest.storage.notice(&e);
                warn!(sop_uid = %p.instance.sop_uid, "committing an acknowledged instance failed: {e}; trying again in {} s", backoff.as_secs());
            }
            None => {
                warn!(sop_uid = %p.instance.sop_uid, "committing an acknowledged instance failed; trying again in {} s", backoff.as_secs())
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
        // The file is where the failed commit left it: still in the pool, or already linked
        // to its content address.
        let store = ingest.store.clone();
        let (path, object) = (p.path.clone(), store.object_path(&p.hash));
        let (site, sop) = (p.instance.source_site.clone(), p.instance.sop_uid.clone());
        let adopted = tokio::task::spawn_blocking(move || {
            let at = if path.exists() { path } else { object };
            store.adopt_sealed(&at, &site, &sop)
        })
        .await;
        let partial = match adopted {
            Ok(Ok(partial)) => partial,
            Ok(Err(e)) => {
                error!(sop_uid = %p.instance.sop_uid, "an acknowledged instance cannot be found again to commit it: {e}");
                return;
            }
            Err(e) => {
                error!(sop_uid = %p.instance.sop_uid, "committing an acknowledged instance failed: {e}");
                return;
            }
        };
        let store = ingest.store.clone();
        let (inst, rs, cat, hash) = (
            p.instance.clone(),
            p.readers.clone(),
            p.catalog.clone(),
            p.hash,
        );
        attempt = Some(
            match tokio::task::spawn_blocking(move || {
                store.commit_with_catalog(partial, hash, &inst, &rs, &cat)
            })
            .await
            {
                Ok(r) => r,
                Err(e) => Err(StoreError::Corrupt(format!("the commit task failed: {e}"))),
            },
        );
    }
}

/// After a commit: counters, the log, connected readers, a completed study; `quiet`: the
/// upload came without a manifest (C-STORE), so its study's quiet period starts again.
pub(crate) fn announce(ingest: &Ingest, instance: &NewInstance, stored: Stored, quiet: bool) {
    match stored {
        Stored::New {
            record,
            readers,
            study_complete,
        } => {
            Metrics::add(&ingest.metrics.instances_stored, 1);
            info!(
                sop_uid = %record.sop_uid, study_uid = %record.study_uid, modality = %record.modality,
                bytes = record.size, from = %record.source_identity, readers = ?readers,
                "instance stored"
            );
            ingest.hub.stored(
                &InstanceRef {
                    study_uid: record.study_uid.clone(),
                    sop_uid: record.sop_uid.clone(),
                },
                &readers,
            );
            if let Some(instances) = study_complete {
                info!(study_uid = %record.study_uid, instances, "study complete");
                ingest.hub.study_progress(&record.study_uid);
            }
        }
        Stored::AlreadyStored(_) => Metrics::add(&ingest.metrics.instances_deduplicated, 1),
    }
    if quiet {
        ingest.study_activity(&instance.source_site, &instance.study_uid);
    }
}

/// Make the object names of the sealed commits so far durable and remove their pooled copies
/// (the store does it on its own a second after a commit; call this at a stop).
pub async fn settle(ingest: &Arc<Ingest>) {
    let store = ingest.store.clone();
    match tokio::task::spawn_blocking(move || store.settle()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(
            "cannot make the last stored objects' names durable ({e}); their pooled copies stay and are committed again at the next start"
        ),
        Err(e) => warn!("settling the last stored objects failed: {e}"),
    }
}

/// Commit again the sealed uploads a crash left in the pool (call once at start).
pub async fn recover(ingest: &Arc<Ingest>) -> usize {
    let leftovers = ingest.store.sealed_leftovers();
    let n = leftovers.len();
    for (path, tag) in leftovers {
        if let Err(e) = recover_one(ingest, &path, &tag).await {
            error!(path = %path.display(), "an acknowledged upload found at start cannot be committed: {}", e.reason);
        }
    }
    if n > 0 {
        info!(
            instances = n,
            "committed uploads acknowledged before the last stop"
        );
    }
    n
}

async fn recover_one(ingest: &Arc<Ingest>, path: &Path, tag: &[u8]) -> Result<(), Refusal> {
    let tag = seal_tag::decode(tag)
        .map_err(|e| refusal(RefuseCode::Internal, format!("unreadable tag: {e}")))?;
    let principal = tag.principal;
    let requested = Priority::from_u8(tag.priority).unwrap_or_default();
    let p = path.to_path_buf();
    let topology = ingest.topology();
    let ae = match &principal.door {
        crate::principal::Door::Dimse { calling_ae } => Some(calling_ae.clone()),
        crate::principal::Door::Quic | crate::principal::Door::Https { .. } => None,
    };
    let charset = topology.default_charset(&principal.site, ae.as_deref());
    let principal2 = principal.clone();
    let read = tokio::task::spawn_blocking(move || read_whole(&p))
        .await
        .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))??;
    let (meta, hash) = read;
    let routed = route_instance(
        &topology,
        &principal2,
        &meta.sop_instance_uid,
        None,
        requested,
        &meta,
    )?;
    let catalog = meta.catalog_with_default(charset);
    let store = ingest.store.clone();
    let (p, site, sop) = (
        path.to_path_buf(),
        principal.site.clone(),
        meta.sop_instance_uid.clone(),
    );
    let partial = tokio::task::spawn_blocking(move || store.adopt_sealed(&p, &site, &sop))
        .await
        .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?
        .map_err(|e| ingest.store_refusal(&e))?;
    let pending = Pending {
        principal: Arc::new(principal),
        path: path.to_path_buf(),
        hash,
        instance: routed.instance,
        readers: routed.readers,
        catalog,
        ticket: None,
    };
    let store = ingest.store.clone();
    let (inst, rs, cat) = (
        pending.instance.clone(),
        pending.readers.clone(),
        pending.catalog.clone(),
    );
    let first = tokio::task::spawn_blocking(move || {
        store.commit_with_catalog(partial, hash, &inst, &rs, &cat)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("the commit task failed: {e}")));
    commit_sealed(ingest, &pending, Some(first.and_then(|r| r))).await;
    Ok(())
}

/// Walk and hash a whole sealed file.
fn read_whole(path: &PathBuf) -> Result<(yilian_dicom::Metadata, Hash), Refusal> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?;
    let mut walker = Walker::new(Default::default());
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?;
        if n == 0 {
            break;
        }
        walker.feed(&buf[..n]).map_err(|e| refusal_for(&e))?;
        hasher.update(&buf[..n]);
    }
    let meta = walker.finish().map_err(|e| refusal_for(&e))?;
    Ok((meta, *hasher.finalize().as_bytes()))
}
