//! `yilian send`: collect files, check them, send each study's manifest (manifest.rs) and
//! upload them concurrently with resume.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Mutex as AsyncMutex, Notify};
use yilian_proto::{InstanceFacts, InstanceRef, RefuseCode};

use crate::connect::{self, Backoff, ClientConfig};
use crate::manifest;
use crate::upload::{upload_one, AbortOnDrop, UploadError};
use crate::write_order::WriteOrder;
use crate::{ClientError, Progress};

/// What `send` does beyond reaching the relay.
#[derive(Clone)]
pub struct SendOptions {
    pub client: ClientConfig,
    /// 0 = routine, 1 = urgent (the relay's rules may raise it).
    pub priority: u8,
    /// Instances in flight at once.
    pub concurrency: usize,
    /// Send each study's manifest (the list of its instances in this run) so the relay can tell
    /// readers when the study is complete. `yilian send` does (`true`): a run is a study. The
    /// township gateway does not: it forwards instances as they arrive and sends a study's
    /// manifest on its own ([`crate::send_manifests`]) once the study went quiet.
    pub manifests: bool,
}

/// How one file ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum FileOutcome {
    /// Acknowledged by the relay; `resumed_from` > 0 if an earlier attempt had sent part of it.
    Stored { resumed_from: u64 },
    /// The relay already held this exact instance.
    AlreadyStored,
    /// Not an instance, deliberately not sent (a DICOMDIR: the index of a CD or DVD export).
    Skipped { reason: String },
    /// Not sent, or refused: why, in words for the radiographer.
    Failed { reason: String },
}

impl FileOutcome {
    pub fn is_ok(&self) -> bool {
        !matches!(self, FileOutcome::Failed { .. })
    }
}

/// What the report says of a DICOMDIR.
const DICOMDIR_SKIPPED: &str =
    "a DICOMDIR is the index of a CD or DVD export, not an image: skipped (the images it lists are sent as files)";

#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub sop_uid: Option<String>,
    pub study_uid: Option<String>,
    pub size: u64,
    #[serde(flatten)]
    pub outcome: FileOutcome,
    /// When the file failed because the relay refused it: the relay's code (whether trying
    /// again can help: [`RefuseCode::is_retryable`]). Not in the JSON report.
    #[serde(skip)]
    pub refused: Option<RefuseCode>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StudyReport {
    pub study_uid: String,
    pub instances: usize,
    /// "complete", "pending: N missing", or why the manifest was not delivered or accepted.
    pub status: String,
    /// Whether the relay received and accepted the study's manifest (without it, its readers
    /// are never told the study is complete).
    pub manifest_delivered: bool,
    /// When the relay refused the manifest: its code (e.g. unauthorized: the study belongs to
    /// another site). Not in the JSON report.
    #[serde(skip)]
    pub refused: Option<RefuseCode>,
}

/// Everything `send` did.
#[derive(Clone, Debug, Serialize, Default)]
pub struct SendReport {
    pub files: Vec<FileReport>,
    pub studies: Vec<StudyReport>,
    /// Raw instance bytes written to the network (resends included).
    pub bytes_sent: u64,
    /// Total size of the files that were sent or found already stored.
    pub bytes_total: u64,
    /// QUIC connections made to the relay (1 if the link never dropped for long, or the
    /// connection migrated to a new address).
    pub connections: u64,
    /// Bytes in packets QUIC declared lost and sent again (what a lossy link cost).
    pub bytes_lost_in_transit: u64,
    /// UDP payload bytes sent, all headers, acknowledgements and retransmissions included.
    pub bytes_on_wire: u64,
}

impl SendReport {
    /// Every file acknowledged and every study's manifest delivered.
    pub fn all_ok(&self) -> bool {
        !self.files.is_empty()
            && self.files.iter().all(|f| f.outcome.is_ok())
            && self.studies.iter().all(|s| s.manifest_delivered)
    }
}

/// Every file under `paths` (folders recursively, in a stable order), skipping hidden files
/// (DICOMDIR files are listed: `send` reports them as skipped).
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ClientError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(ClientError::Output {
                path: p.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        for e in walkdir::WalkDir::new(p).sort_by_file_name() {
            let e = e.map_err(|e| ClientError::Output {
                path: p.clone(),
                source: e.into(),
            })?;
            let name = e.file_name().to_string_lossy();
            if e.file_type().is_file() && !name.starts_with('.') {
                out.push(e.into_path());
            }
        }
    }
    Ok(out)
}

pub(crate) struct Job {
    pub index: usize,
    pub path: PathBuf,
    pub instance: InstanceRef,
    /// Declared with the offer (urgent first before the relay has read the header).
    pub facts: InstanceFacts,
    pub size: u64,
    pub attempts: u32,
    /// Whether another file of this run has the same SOP Instance UID.
    pub shares_uid: bool,
    /// The whole file's hash, computed before the offer for such a file (the relay then
    /// answers at once whether it holds exactly this content).
    pub hash: Option<[u8; 32]>,
}

/// The uploads left, and the SOP Instance UIDs being uploaded now: two files with one UID are
/// never uploaded at once (the relay would make one wait for the other anyway); the second
/// goes once the first has its verdict, and then learns at once whether the relay holds the
/// same content.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    busy: HashSet<String>,
}

enum Take {
    Job(Box<Job>),
    /// Jobs are left, but each waits for an upload of its UID to end.
    Wait,
    Empty,
}

impl Queue {
    fn take(&mut self) -> Take {
        match self
            .jobs
            .iter()
            .position(|j| !self.busy.contains(&j.instance.sop_uid))
        {
            Some(i) => {
                let Some(job) = self.jobs.remove(i) else {
                    return Take::Empty;
                };
                self.busy.insert(job.instance.sop_uid.clone());
                Take::Job(Box::new(job))
            }
            None if self.jobs.is_empty() => Take::Empty,
            None => Take::Wait,
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Woken when an upload ends (a job waiting for its UID may go).
    queue_changed: Notify,
    results: Mutex<Vec<Option<FileOutcome>>>,
    /// The relay's code for each file it refused.
    refusals: Mutex<Vec<Option<RefuseCode>>>,
    paths: Vec<PathBuf>,
    /// The files of this run by SOP Instance UID, where more than one has it.
    same_uid: HashMap<String, Vec<usize>>,
    conn: AsyncMutex<Option<quinn::Connection>>,
    bytes_sent: AtomicU64,
    /// Uploads started so far (their order sets their stream priority).
    uploads: AtomicU64,
    /// Uploads write their data in start order (write_order.rs).
    write_order: WriteOrder,
    /// Every connection made, for the transport figures of the report.
    all_conns: Mutex<Vec<quinn::Connection>>,
    /// Knows when the relay last acknowledged anything (`--give-up-after` counts from there).
    watch: Arc<crate::stall::StallWatch>,
}

impl Shared {
    /// When to stop retrying a link that stays down: `give_up_after` past the last
    /// acknowledgement.
    fn give_up_at(&self, opts: &SendOptions) -> Instant {
        self.watch.last_acknowledgement() + opts.client.give_up_after
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record `outcome` for `job`.
    fn settle(&self, job: &Job, outcome: FileOutcome, progress: &dyn Progress) {
        progress.file_done(&job.path, outcome.is_ok(), &describe(&outcome));
        self.results.lock().unwrap_or_else(|p| p.into_inner())[job.index] = Some(outcome);
        self.release(job);
    }

    /// `job`'s upload ended (settled or back in the queue): another of its UID may go.
    fn release(&self, job: &Job) {
        self.queue().busy.remove(&job.instance.sop_uid);
        self.queue_changed.notify_waiters();
    }

    /// `job` goes back to the front of the queue (to be tried again).
    fn requeue(&self, job: Job) {
        {
            let mut q = self.queue();
            q.busy.remove(&job.instance.sop_uid);
            q.jobs.push_front(job);
        }
        self.queue_changed.notify_waiters();
    }

    /// Whether the file at `index` was acknowledged in this run.
    fn stored(&self, index: usize) -> bool {
        self.results.lock().unwrap_or_else(|p| p.into_inner())[index]
            .as_ref()
            .is_some_and(FileOutcome::is_ok)
    }

    /// Why `job` failed with a conflict: the relay holds another instance under its UID. If
    /// that is a file of this very run, say which one.
    fn conflict(&self, job: &Job, relay_says: &str) -> String {
        let winner = self.same_uid.get(&job.instance.sop_uid).and_then(|files| {
            files
                .iter()
                .copied()
                .find(|i| *i != job.index && self.stored(*i))
        });
        match winner {
            Some(i) => format!(
                "another file ({}) has the same SOP Instance UID but different content; the relay keeps the first one stored (one UID is one object, DICOM PS3.4): give this image a new UID or leave it out",
                self.paths[i].display()
            ),
            None => relay_says.to_string(),
        }
    }

    /// The link stayed down past `--give-up-after`: `job` and every queued upload fail with
    /// `reason` (what the relay acknowledged before stays stored and resumes next time).
    fn give_up(&self, job: Job, reason: &str, progress: &dyn Progress) {
        let failed = |job: &Job| {
            self.settle(
                job,
                FileOutcome::Failed {
                    reason: reason.to_string(),
                },
                progress,
            )
        };
        failed(&job);
        let rest: Vec<Job> = self.queue().jobs.drain(..).collect();
        rest.iter().for_each(failed);
    }
}

/// Upload `paths`. Returns the per-file report; `Err` only if the relay could not be reached at
/// all (or refused us), in which case nothing was acknowledged.
pub async fn send(
    paths: &[PathBuf],
    opts: &SendOptions,
    progress: Arc<dyn Progress>,
) -> Result<SendReport, ClientError> {
    tracing::debug!("send starts");
    let files = collect_files(paths)?;
    // Says so when the link goes quiet or uploads pause for an urgent study.
    let watch = crate::stall::StallWatch::new(progress);
    let progress: Arc<dyn Progress> = watch.clone();
    let mut report = SendReport::default();
    let mut jobs = VecDeque::new();
    let mut studies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_uid: HashMap<String, Vec<usize>> = HashMap::new();
    for path in files {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let index = report.files.len();
        let inspected = if path.file_name().is_some_and(|n| n == "DICOMDIR") {
            Err(yilian_dicom::DicomError::MediaDirectory)
        } else {
            yilian_dicom::inspect_file(&path)
        };
        match inspected {
            Ok(meta) => {
                let seen = by_uid.entry(meta.sop_instance_uid.clone()).or_default();
                seen.push(index);
                if seen.len() == 1 {
                    studies
                        .entry(meta.study_instance_uid.clone())
                        .or_default()
                        .push(meta.sop_instance_uid.clone());
                }
                report.files.push(FileReport {
                    path: path.clone(),
                    sop_uid: Some(meta.sop_instance_uid.clone()),
                    study_uid: Some(meta.study_instance_uid.clone()),
                    size,
                    outcome: FileOutcome::Failed {
                        reason: "not sent".into(),
                    },
                    refused: None,
                });
                jobs.push_back(Job {
                    index,
                    path,
                    instance: InstanceRef {
                        study_uid: meta.study_instance_uid,
                        sop_uid: meta.sop_instance_uid,
                    },
                    facts: InstanceFacts {
                        modality: meta.modality,
                        sop_class_uid: meta.sop_class_uid,
                        body_part: meta.body_part,
                    },
                    size,
                    attempts: 0,
                    shares_uid: false,
                    hash: None,
                });
            }
            // The index of a CD or DVD export, not an image (by name, or by its SOP class).
            Err(yilian_dicom::DicomError::MediaDirectory) => {
                let outcome = FileOutcome::Skipped {
                    reason: DICOMDIR_SKIPPED.into(),
                };
                progress.file_done(&path, true, &describe(&outcome));
                report.files.push(FileReport {
                    path,
                    sop_uid: None,
                    study_uid: None,
                    size,
                    outcome,
                    refused: None,
                });
            }
            Err(e) => {
                let reason = e.to_string();
                progress.file_done(&path, false, &reason);
                report.files.push(FileReport {
                    path,
                    sop_uid: None,
                    study_uid: None,
                    size,
                    outcome: FileOutcome::Failed { reason },
                    refused: None,
                });
            }
        }
    }
    // Smallest first: uploads cross the link one after another (stream priorities by upload
    // order, `yilian_transport::priority`), so this makes the most instances safe soonest;
    // a 2 GiB cine does not hold back the CT slices sent with it.
    jobs.make_contiguous().sort_by_key(|j| j.size);
    // Files sharing a UID: one is uploaded at a time (the queue sees to it), each offered
    // with its hash so that the relay's verdict on the others is immediate.
    by_uid.retain(|_, files| files.len() > 1);
    for j in jobs.iter_mut() {
        j.shares_uid = by_uid.contains_key(&j.instance.sop_uid);
    }
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    tracing::debug!(files = jobs.len(), bytes = total, "files read");
    progress.begin(jobs.len() as u64, total);
    if jobs.is_empty() {
        return Ok(report);
    }
    let endpoint = connect::endpoint(&opts.client)?;
    let first = connect::connect(
        &endpoint,
        &opts.client,
        progress.as_ref(),
        connect::Handover::Pipelined,
    )
    .await?;
    crate::uplink::obey(
        first.clone(),
        opts.client.tuning.uplink.clone(),
        progress.clone(),
    );
    if !opts.manifests {
        studies.clear();
    }
    let mut early_manifests = AbortOnDrop(tokio::spawn(manifest::send_all(
        first.clone(),
        studies.clone(),
    )));
    let workers = opts.concurrency.clamp(1, 64).min(jobs.len());
    let shared = Arc::new(Shared {
        results: Mutex::new(vec![None; report.files.len()]),
        refusals: Mutex::new(vec![None; report.files.len()]),
        paths: report.files.iter().map(|f| f.path.clone()).collect(),
        same_uid: by_uid,
        queue: Mutex::new(Queue {
            jobs,
            busy: HashSet::new(),
        }),
        queue_changed: Notify::new(),
        conn: AsyncMutex::new(Some(first.clone())),
        bytes_sent: AtomicU64::new(0),
        uploads: AtomicU64::new(0),
        write_order: WriteOrder::default(),
        all_conns: Mutex::new(vec![first.clone()]),
        watch: watch.clone(),
    });
    let _watchdog = AbortOnDrop(watch.spawn());
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (shared, opts, endpoint, progress) = (
            shared.clone(),
            opts.clone(),
            endpoint.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            worker(&shared, &opts, &endpoint, progress.as_ref()).await
        }));
    }
    let mut fatal = None;
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            fatal.get_or_insert(e);
        }
    }
    let results = std::mem::take(&mut *shared.results.lock().unwrap_or_else(|p| p.into_inner()));
    for (i, r) in results.into_iter().enumerate() {
        if let Some(o) = r {
            report.files[i].outcome = o;
        }
    }
    let refusals = std::mem::take(&mut *shared.refusals.lock().unwrap_or_else(|p| p.into_inner()));
    for (i, code) in refusals.into_iter().enumerate() {
        report.files[i].refused = code;
    }
    if let Some(e) = fatal {
        if report.files.iter().all(|f| !f.outcome.is_ok()) {
            return Err(e);
        }
        progress.status(&e.to_string());
    }
    report.bytes_sent = shared.bytes_sent.load(Ordering::Relaxed);
    report.bytes_total = report
        .files
        .iter()
        .filter(|f| {
            matches!(
                f.outcome,
                FileOutcome::Stored { .. } | FileOutcome::AlreadyStored
            )
        })
        .map(|f| f.size)
        .sum();
    // The manifests went out with the first offers. If that connection is gone (the link
    // dropped), their answers may never come: send again those without one.
    let conn = shared.conn.lock().await.clone();
    let first_alive = conn
        .as_ref()
        .is_some_and(|c| c.stable_id() == first.stable_id() && c.close_reason().is_none());
    let mut answers = if first_alive {
        (&mut early_manifests.0).await.unwrap_or_default()
    } else {
        manifest::Answers::new()
    };
    let acknowledged: HashSet<&str> = report
        .files
        .iter()
        .filter(|f| f.outcome.is_ok())
        .filter_map(|f| f.sop_uid.as_deref())
        .collect();
    for (study_uid, sops) in studies {
        let answer = match (answers.remove(&study_uid), &conn) {
            (Some(Ok(a)), _) => Ok(a),
            (_, Some(c)) => manifest::send_one(c, &study_uid, &sops).await,
            (_, None) => {
                Err("the link to the relay was down at the end (run again to confirm)".to_string())
            }
        };
        report.studies.push(StudyReport {
            instances: sops.len(),
            status: manifest::status(&answer, &acknowledged),
            manifest_delivered: manifest::delivered(&answer),
            refused: manifest::refused(&answer),
            study_uid,
        });
    }
    if let Some(c) = conn {
        connect::close(&endpoint, &c, b"done").await;
    }
    let conns = std::mem::take(&mut *shared.all_conns.lock().unwrap_or_else(|p| p.into_inner()));
    report.connections = conns.len() as u64;
    for c in conns {
        let st = c.stats();
        report.bytes_lost_in_transit += st.path.lost_bytes;
        report.bytes_on_wire += st.udp_tx.bytes;
    }
    Ok(report)
}

/// Retryable refusals are tried this many times per file.
const MAX_ATTEMPTS: u32 = 4;

async fn worker(
    shared: &Shared,
    opts: &SendOptions,
    endpoint: &quinn::Endpoint,
    progress: &dyn Progress,
) -> Result<(), ClientError> {
    let mut backoff = Backoff::default();
    let gave_up = |e: &dyn std::fmt::Display| {
        format!(
            "gave up: nothing acknowledged for {} while the link to the relay was down ({e}); \
             run the same command again to resume where it stopped",
            humantime::format_duration(opts.client.give_up_after)
        )
    };
    loop {
        // The upload's place in line (its stream priority, its turn to write) is taken with
        // the job, under the queue's lock.
        let changed = shared.queue_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let taken = {
            let mut queue = shared.queue();
            match queue.take() {
                Take::Job(job) => {
                    let seq = shared.uploads.fetch_add(1, Ordering::Relaxed);
                    Some((*job, seq, shared.write_order.join(seq)))
                }
                Take::Wait => None,
                Take::Empty => return Ok(()),
            }
        };
        let Some((mut job, seq, mut turn)) = taken else {
            // Every job left waits for an upload of its UID to end.
            changed.await;
            continue;
        };
        if job.shares_uid && job.hash.is_none() {
            let path = job.path.clone();
            match tokio::task::spawn_blocking(move || {
                crate::hashing::hash_prefix(&path, u64::MAX).map(|h| *h.finalize().as_bytes())
            })
            .await
            {
                Ok(Ok(h)) => job.hash = Some(h),
                Ok(Err(e)) => {
                    let reason = format!("cannot read {}: {e}", job.path.display());
                    shared.settle(&job, FileOutcome::Failed { reason }, progress);
                    continue;
                }
                Err(e) => return Err(ClientError::Connect(e.to_string())),
            }
        }
        let conn = match current_connection(shared, opts, endpoint, progress).await {
            Ok(c) => c,
            Err(ClientError::GaveUp(_, e)) => {
                shared.give_up(job, &gave_up(&e), progress);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let result = upload_one(
            &conn,
            &job,
            opts.priority,
            seq,
            &mut turn,
            progress,
            &shared.bytes_sent,
        )
        .await;
        // The outcome, and the relay's code when it refused the file.
        let outcome = match result {
            Ok(FileOutcome::Failed { reason }) => {
                // The relay holds another instance under this UID.
                backoff.reset();
                Some((
                    FileOutcome::Failed {
                        reason: shared.conflict(&job, &reason),
                    },
                    Some(RefuseCode::Conflict),
                ))
            }
            Ok(o) => {
                backoff.reset();
                Some((o, None))
            }
            Err(UploadError::Refused(r)) if r.code == RefuseCode::Conflict => Some((
                FileOutcome::Failed {
                    reason: shared.conflict(&job, &format!("refused by the relay: {}", r.reason)),
                },
                Some(r.code),
            )),
            // The relay's disk is full, or this identity has too many uploads there: it
            // heals with time (ingest resumes by itself once space returns), so wait and
            // offer again, like for a link that is down.
            Err(UploadError::Refused(r))
                if matches!(r.code, RefuseCode::StorageFull | RefuseCode::Busy) =>
            {
                let delay = backoff.next_delay();
                if Instant::now() + delay > shared.give_up_at(opts) {
                    Some((
                        FileOutcome::Failed {
                            reason: format!("refused by the relay: {}", r.reason),
                        },
                        Some(r.code),
                    ))
                } else {
                    progress.status(&format!(
                        "{}; retrying in {:.1} s",
                        r.reason,
                        delay.as_secs_f32()
                    ));
                    // This worker keeps the job while it waits: nobody offers it sooner.
                    tokio::time::sleep(delay).await;
                    shared.requeue(job);
                    continue;
                }
            }
            Err(UploadError::Refused(r))
                if r.code.is_retryable() && job.attempts + 1 < MAX_ATTEMPTS =>
            {
                job.attempts += 1;
                progress.status(&format!("{}: {r}; trying again", job.path.display()));
                None
            }
            Err(UploadError::Refused(r)) => Some((
                FileOutcome::Failed {
                    reason: format!("refused by the relay: {}", r.reason),
                },
                Some(r.code),
            )),
            Err(UploadError::Local(reason)) => Some((FileOutcome::Failed { reason }, None)),
            // Paused for an urgent upload: offer again at once (the relay holds us).
            Err(UploadError::Yielded) => None,
            Err(UploadError::Link(e)) => {
                if let Some(reason) = conn.close_reason().filter(connect::refused_for_good) {
                    // The relay closed us on purpose (e.g. unknown identity): say why, stop.
                    return Err(ClientError::Refused(yilian_transport::explain(&reason)));
                }
                // The link dropped: drop this connection, wait, resume on a new one.
                {
                    let mut c = shared.conn.lock().await;
                    if c.as_ref()
                        .is_some_and(|c| c.stable_id() == conn.stable_id())
                    {
                        *c = None;
                    }
                }
                let delay = backoff.next_delay();
                if Instant::now() + delay > shared.give_up_at(opts) {
                    shared.give_up(job, &gave_up(&e), progress);
                    return Ok(());
                }
                progress.status(&format!(
                    "link down ({e}); retrying in {:.1} s",
                    delay.as_secs_f32()
                ));
                tokio::time::sleep(delay).await;
                None
            }
        };
        match outcome {
            Some((o, code)) => {
                if code.is_some() {
                    shared.refusals.lock().unwrap_or_else(|p| p.into_inner())[job.index] = code;
                }
                shared.settle(&job, o, progress)
            }
            None => shared.requeue(job),
        }
    }
}

fn describe(o: &FileOutcome) -> String {
    match o {
        FileOutcome::Stored { resumed_from: 0 } => "stored".into(),
        FileOutcome::Stored { resumed_from } => format!("stored (resumed at byte {resumed_from})"),
        FileOutcome::AlreadyStored => "already stored at the relay".into(),
        FileOutcome::Skipped { reason } => reason.clone(),
        FileOutcome::Failed { reason } => reason.clone(),
    }
}

async fn current_connection(
    shared: &Shared,
    opts: &SendOptions,
    endpoint: &quinn::Endpoint,
    progress: &dyn Progress,
) -> Result<quinn::Connection, ClientError> {
    let mut c = shared.conn.lock().await;
    if let Some(conn) = c.as_ref() {
        if conn.close_reason().is_none() {
            return Ok(conn.clone());
        }
    }
    let conn = connect::connect_until(
        endpoint,
        &opts.client,
        progress,
        shared.give_up_at(opts),
        connect::Handover::Pipelined,
    )
    .await?;
    crate::uplink::obey(
        conn.clone(),
        opts.client.tuning.uplink.clone(),
        shared.watch.clone(),
    );
    *c = Some(conn.clone());
    shared
        .all_conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(conn.clone());
    Ok(conn)
}
