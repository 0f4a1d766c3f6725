//! The forwarder: the local outbox of `upstream`, sent to the county relay.
//!
//! It connects to the local hub as the reader `upstream` (every instance a console stores is
//! routed there by the synthetic topology), so it wakes as soon as an instance is durable at
//! the gateway. It then reads the outbox (`Store::pending_for`), hands the stored objects to
//! the client's `send` (resumable uploads, retries, urgent first at the relay, outages) and
//! settles each one from the send report ([`classify`]):
//!
//! * acknowledged by the relay (stored, or already there): delivered (`mark_delivered`);
//! * refused for good (conflict, malformed, unauthorized, too large…): set aside as failed
//!   (`record_failure`, permanent), so it does not loop, with an audit entry (`deliver`,
//!   `refused`) and an error log naming its SOP Instance UID and the relay's reason (never
//!   patient data). The object stays in the gateway's spool and is never pruned: it is the only
//!   copy;
//! * unroutable at the relay: parked for a few minutes, then offered again (the relay's
//!   administrator may add a rule in the meantime);
//! * anything else (the link is down, the relay's disk is full, a passing failure): stays
//!   pending and is offered again after a capped backoff. Meanwhile the DIMSE door keeps
//!   accepting: consoles never notice the WAN.
//!
//! Up to [`MAX_BATCHES`] `send` runs go at once, each on its own connection: an instance that
//! arrives while a long series is being forwarded is offered at once instead of after it, so
//! when the county relay's rules make it urgent (a stroke CT) the relay holds the routine
//! uploads of this site and the urgent one takes the link.
//!
//! Study manifests: a study is complete at the gateway once it went quiet (the local ingest's
//! quiet period records its manifest and tells connected readers, i.e. us). The forwarder then
//! sends that manifest upstream (`yilian_client::send_manifests`), so county readers are told
//! the study is complete. A manifest that could not be sent is retried; the studies waiting
//! for theirs are recorded on disk (`studies.rs`) and taken up again after a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};
use yilian_client::{
    Backoff, ClientConfig, ClientError, FileOutcome, FileReport, Progress, SendOptions, SendReport,
    StudyReport,
};
use yilian_ingest::hub::Job;
use yilian_ingest::Ingest;
use yilian_proto::RefuseCode;
use yilian_store::{AuditAction, AuditEvent, DeliveryFailure, InstanceRecord, ManifestStatus};

use crate::studies::StudyBook;

/// `send` runs at once (each with its own connection).
pub const MAX_BATCHES: usize = 3;
/// Instances in one `send` run.
pub const MAX_BATCH_FILES: usize = 500;
/// Instances a `send` run offers at once.
pub const CONCURRENCY: usize = 16;
/// A `send` run stops retrying a dead link after this long without an acknowledgement; the
/// forwarder then starts over (everything acknowledged stays acknowledged, uploads resume at
/// the relay's offsets), so a link that comes back is noticed within [`RETRY_MAX`].
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(20);
/// Longest wait between two tries while the link is down.
pub const RETRY_MAX: Duration = Duration::from_secs(10);
/// Wait after the relay refused this gateway itself (certificate, identity): the alliance
/// administrator must act; retrying often would only fill the logs.
pub const REFUSED_RETRY: Duration = Duration::from_secs(120);
/// An instance the relay cannot route waits this long before it is offered again.
pub const PARK: Duration = Duration::from_secs(300);
/// Arrivals are gathered this long before a `send` run starts (a console sends a series
/// image after image).
const GATHER: Duration = Duration::from_millis(100);
/// The outbox is looked at again at least this often, whatever happens.
const RESCAN: Duration = Duration::from_secs(30);

/// What to do with one forwarded file, from the `send` report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The relay holds it (stored now or before): delivered.
    Delivered,
    /// The relay refused it for good (`code`: the relay's refusal code, or `unreadable` when
    /// the gateway could not read its own copy): marked handled, audited, logged.
    Refused { code: String, reason: String },
    /// Offered again after a backoff (link down, relay busy or full, a passing failure).
    Retry { reason: String },
    /// Offered again in [`PARK`]: the relay cannot route it (its topology must change).
    Park { reason: String },
}

/// The verdict on one file of a `send` report.
pub fn classify(r: &FileReport) -> Verdict {
    match &r.outcome {
        FileOutcome::Stored { .. } | FileOutcome::AlreadyStored => Verdict::Delivered,
        // A DICOMDIR: the console cannot have stored one (the door refuses them); never retry.
        FileOutcome::Skipped { reason } => Verdict::Refused {
            code: "skipped".into(),
            reason: reason.clone(),
        },
        FileOutcome::Failed { reason } => match r.refused {
            Some(RefuseCode::Unroutable) => Verdict::Park {
                reason: reason.clone(),
            },
            Some(code) if code.is_retryable() => Verdict::Retry {
                reason: reason.clone(),
            },
            Some(code) => Verdict::Refused {
                code: code.to_string(),
                reason: reason.clone(),
            },
            // `send` could not read it as DICOM (it has no UIDs): trying again cannot help.
            None if r.sop_uid.is_none() => Verdict::Refused {
                code: "unreadable".into(),
                reason: reason.clone(),
            },
            // The link (gave up for now), a local read error: try again.
            None => Verdict::Retry {
                reason: reason.clone(),
            },
        },
    }
}

/// The forwarder's settings and shared state.
pub struct Forwarder {
    pub ingest: Arc<Ingest>,
    /// The county relay (its `give_up_after` is replaced by [`GIVE_UP_AFTER`]).
    pub client: ClientConfig,
    /// The local reader whose outbox is forwarded.
    pub reader: String,
    /// The gateway's site (every local instance comes from it).
    pub site: String,
    /// Studies waiting for their manifest to reach the relay.
    pub book: StudyBook,
}

/// One `send` run's instances and outcome.
type BatchDone = (
    Vec<InstanceRecord>,
    Vec<PathBuf>,
    Result<SendReport, ClientError>,
);
/// One manifest run: the studies and instances sent, and the outcome.
type ManifestsDone = (
    BTreeMap<String, Vec<String>>,
    Result<Vec<StudyReport>, ClientError>,
);

#[derive(Default)]
struct State {
    /// New work may be waiting in the outbox.
    dirty: bool,
    /// SOP Instance UID → Study Instance UID of the instances in a `send` run now.
    in_flight: HashMap<String, String>,
    /// Instances the relay could not route, until when they wait.
    parked: HashMap<String, Instant>,
    /// No `send` run starts before this (backoff after a link failure).
    link_not_before: Option<Instant>,
    link_backoff: Backoff,
    /// Studies complete at the gateway whose manifest must go upstream.
    due: BTreeSet<String>,
    /// Studies whose manifest is being sent now.
    sending: BTreeSet<String>,
    manifest_not_before: Option<Instant>,
    manifest_backoff: Backoff,
}

/// Logs what `send` says (link down, paused for an urgent study) instead of drawing bars.
struct LogProgress;

impl Progress for LogProgress {
    fn status(&self, message: &str) {
        info!("forwarding: {message}");
    }
    fn paused(&self, on: bool) {
        if on {
            info!(
                "forwarding paused: an urgent study of this site has the link to the county relay"
            );
        } else {
            info!("forwarding continues");
        }
    }
}

impl Forwarder {
    fn client(&self) -> ClientConfig {
        ClientConfig {
            give_up_after: GIVE_UP_AFTER,
            ..self.client.clone()
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&yilian_store::Store) -> T + Send + 'static,
    ) -> Option<T> {
        let store = self.ingest.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(t) => Some(t),
            Err(e) => {
                warn!("forwarder: a blocking task failed: {e}");
                None
            }
        }
    }

    /// Forward until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let (mut session, mut jobs, _) = self.ingest.hub.connect_reader(&self.reader);
        let mut st = State {
            dirty: true,
            ..State::default()
        };
        self.recover(&mut st).await;
        let mut batches: JoinSet<BatchDone> = JoinSet::new();
        let mut manifests: JoinSet<ManifestsDone> = JoinSet::new();
        loop {
            let now = Instant::now();
            let link_ready = st.link_not_before.is_none_or(|t| t <= now);
            if st.dirty && link_ready && batches.len() < MAX_BATCHES {
                st.dirty = false;
                self.start_batch(&mut st, &mut batches).await;
            }
            let manifests_ready = st.manifest_not_before.is_none_or(|t| t <= now);
            if manifests.is_empty() && !st.due.is_empty() && manifests_ready {
                self.start_manifests(&mut st, &mut manifests).await;
            }
            let wake = self.next_wake(&st, batches.len(), manifests.is_empty());
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => {
                        let mut stored = self.on_job(job, &mut st).await;
                        while let Ok(job) = jobs.try_recv() {
                            stored |= self.on_job(job, &mut st).await;
                        }
                        if stored && batches.len() < MAX_BATCHES {
                            tokio::time::sleep(GATHER).await;
                            while let Ok(job) = jobs.try_recv() {
                                self.on_job(job, &mut st).await;
                            }
                        }
                    }
                    None => {
                        // Our session was replaced or closed: connect again.
                        self.ingest.hub.disconnect_reader(&self.reader, session);
                        let (s, j, _) = self.ingest.hub.connect_reader(&self.reader);
                        (session, jobs) = (s, j);
                        st.dirty = true;
                    }
                },
                Some(done) = batches.join_next(), if !batches.is_empty() => match done {
                    Ok(done) => self.batch_done(done, &mut st).await,
                    Err(e) => {
                        warn!("forwarding run failed: {e}");
                        st.in_flight.clear();
                        st.dirty = true;
                    }
                },
                Some(done) = manifests.join_next(), if !manifests.is_empty() => match done {
                    Ok(done) => self.manifests_done(done, &mut st).await,
                    Err(e) => {
                        warn!("sending study manifests failed: {e}");
                        st.due.append(&mut st.sending);
                    }
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    st.parked.retain(|_, until| *until > now);
                    st.dirty = true;
                }
            }
        }
    }

    /// When to look again if nothing happens.
    fn next_wake(&self, st: &State, batches: usize, no_manifest_run: bool) -> Instant {
        let now = Instant::now();
        let mut wake = now + RESCAN;
        if st.dirty && batches < MAX_BATCHES {
            if let Some(t) = st.link_not_before.filter(|t| *t > now) {
                wake = wake.min(t);
            }
        }
        if no_manifest_run && !st.due.is_empty() {
            if let Some(t) = st.manifest_not_before.filter(|t| *t > now) {
                wake = wake.min(t);
            }
        }
        if batches < MAX_BATCHES {
            if let Some(t) = st.parked.values().min() {
                wake = wake.min((*t).max(now + GATHER));
            }
        }
        wake
    }

    /// At start: every study with instances still to forward gets its record; every recorded
    /// study either has its manifest sent again (complete here) or its quiet period re-armed.
    async fn recover(&self, st: &mut State) {
        let (reader, site, book) = (self.reader.clone(), self.site.clone(), self.book.clone());
        let r = self
            .blocking(move |store| -> Result<_, String> {
                let pending = store.pending_for(&reader).map_err(|e| e.to_string())?;
                let studies: BTreeSet<String> = pending
                    .iter()
                    .map(|p| p.instance.study_uid.clone())
                    .collect();
                book.ensure(studies.iter().map(String::as_str))
                    .map_err(|e| e.to_string())?;
                let mut due = Vec::new();
                let mut quiet = Vec::new();
                for study in book.list().map_err(|e| e.to_string())? {
                    let stored = store
                        .study_instances(&study)
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .filter(|i| i.source_site == site)
                        .count();
                    match store.manifest_status(&study).map_err(|e| e.to_string())? {
                        ManifestStatus::Complete { instances } if instances as usize >= stored => {
                            due.push(study)
                        }
                        _ if stored > 0 => quiet.push(study),
                        _ => book.remove(&study).map_err(|e| e.to_string())?,
                    }
                }
                Ok((pending.len(), due, quiet))
            })
            .await;
        match r {
            Some(Ok((pending, due, quiet))) => {
                if pending > 0 || !due.is_empty() || !quiet.is_empty() {
                    info!(
                        instances = pending,
                        manifests = due.len(),
                        studies_waiting_quiet = quiet.len(),
                        "forwarding what was left from before"
                    );
                }
                for study in &quiet {
                    self.ingest.study_activity(&self.site, study);
                }
                st.due.extend(due);
            }
            Some(Err(e)) => error!("cannot read what is left to forward: {e}"),
            None => {}
        }
    }

    /// A hub job; returns whether an instance was stored.
    async fn on_job(&self, job: Job, st: &mut State) -> bool {
        match job {
            Job::Stored(_) | Job::Live(_) => {
                st.dirty = true;
                true
            }
            Job::Study(study) => {
                let book = self.book.clone();
                let s = study.clone();
                let complete = self
                    .blocking(move |store| -> Result<bool, String> {
                        let c = matches!(
                            store.manifest_status(&s).map_err(|e| e.to_string())?,
                            ManifestStatus::Complete { .. }
                        );
                        if c {
                            book.ensure([s.as_str()]).map_err(|e| e.to_string())?;
                        }
                        Ok(c)
                    })
                    .await;
                match complete {
                    Some(Ok(true)) => {
                        debug!(study_uid = %study, "study complete here; its manifest goes upstream");
                        st.due.insert(study);
                    }
                    Some(Ok(false)) | None => {}
                    Some(Err(e)) => warn!(study_uid = %study, "cannot check the study: {e}"),
                }
                false
            }
        }
    }

    async fn start_batch(&self, st: &mut State, batches: &mut JoinSet<BatchDone>) {
        let reader = self.reader.clone();
        let pending = match self.blocking(move |s| s.pending_for(&reader)).await {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                warn!("cannot read the outbox: {e}; trying again");
                st.link_not_before = Some(Instant::now() + Duration::from_secs(1));
                st.dirty = true;
                return;
            }
            None => return,
        };
        let now = Instant::now();
        let mut items: Vec<InstanceRecord> = pending
            .into_iter()
            .map(|p| p.instance)
            .filter(|i| {
                !st.in_flight.contains_key(&i.sop_uid)
                    && st.parked.get(&i.sop_uid).is_none_or(|t| *t <= now)
            })
            .collect();
        if items.len() > MAX_BATCH_FILES {
            items.truncate(MAX_BATCH_FILES);
            st.dirty = true;
        }
        if items.is_empty() {
            return;
        }
        // Recorded before anything of the study leaves: after a crash its manifest still goes.
        let book = self.book.clone();
        let studies: BTreeSet<String> = items.iter().map(|i| i.study_uid.clone()).collect();
        match self
            .blocking(move |_| book.ensure(studies.iter().map(String::as_str)))
            .await
        {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                warn!("cannot record the studies being forwarded: {e}; trying again");
                st.link_not_before = Some(Instant::now() + Duration::from_secs(1));
                st.dirty = true;
                return;
            }
            None => return,
        }
        for i in &items {
            st.parked.remove(&i.sop_uid);
            st.in_flight.insert(i.sop_uid.clone(), i.study_uid.clone());
        }
        let paths: Vec<PathBuf> = items
            .iter()
            .map(|i| self.ingest.store.object_path(&i.hash))
            .collect();
        debug!(instances = items.len(), "forwarding to the county relay");
        let opts = SendOptions {
            client: self.client(),
            priority: 0,
            concurrency: CONCURRENCY,
            manifests: false,
        };
        batches.spawn(async move {
            let report = yilian_client::send(&paths, &opts, Arc::new(LogProgress)).await;
            (items, paths, report)
        });
    }

    async fn batch_done(&self, (items, paths, report): BatchDone, st: &mut State) {
        for i in &items {
            st.in_flight.remove(&i.sop_uid);
        }
        st.dirty = true;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                let delay = match &e {
                    ClientError::Refused(why) => {
                        error!(
                            relay = %self.client.relay,
                            "the county relay refused this gateway: {why}. Everything stays spooled here; ask the alliance administrator (certificate, topology). Trying again in {} s",
                            REFUSED_RETRY.as_secs()
                        );
                        REFUSED_RETRY
                    }
                    _ => {
                        let delay = st.link_backoff.next_delay().min(RETRY_MAX);
                        warn!(
                            relay = %self.client.relay, pending = items.len(),
                            "county relay not reachable ({e}); instances stay spooled here, trying again in {:.1} s",
                            delay.as_secs_f32()
                        );
                        delay
                    }
                };
                st.link_not_before = Some(Instant::now() + delay);
                return;
            }
        };
        let by_path: HashMap<&PathBuf, &FileReport> =
            report.files.iter().map(|f| (&f.path, f)).collect();
        let mut settled: Vec<(InstanceRecord, Option<(String, String)>)> = Vec::new();
        let mut retry = 0usize;
        let mut last_reason = String::new();
        for (item, path) in items.into_iter().zip(&paths) {
            let verdict =
                by_path
                    .get(path)
                    .map(|f| classify(f))
                    .unwrap_or_else(|| Verdict::Retry {
                        reason: "not in the send report".into(),
                    });
            match verdict {
                Verdict::Delivered => settled.push((item, None)),
                Verdict::Refused { code, reason } => settled.push((item, Some((code, reason)))),
                Verdict::Retry { reason } => {
                    retry += 1;
                    last_reason = reason;
                }
                Verdict::Park { reason } => {
                    warn!(
                        sop_uid = %item.sop_uid, study_uid = %item.study_uid,
                        "the county relay cannot route this instance: {reason}; offering it again in {} s",
                        PARK.as_secs()
                    );
                    st.parked
                        .insert(item.sop_uid.clone(), Instant::now() + PARK);
                }
            }
        }
        let delivered = settled.iter().filter(|(_, r)| r.is_none()).count();
        for (item, refused) in &settled {
            if let Some((code, reason)) = refused {
                error!(
                    sop_uid = %item.sop_uid, study_uid = %item.study_uid, code = %code,
                    "the county relay refused this instance for good: {reason}; it is kept in the gateway's spool and not forwarded again"
                );
            }
        }
        // Acknowledged: delivered. Refused for good: set aside as failed (and audited), so
        // that it is never pruned — the gateway holds the only copy.
        let reader = self.reader.clone();
        let relay = self.client.relay.clone();
        let failed = self
            .blocking(move |store| {
                settled
                    .iter()
                    .filter_map(|(item, refused)| {
                        let (study, sop) = (&item.study_uid, &item.sop_uid);
                        let r = match refused {
                            None => store.mark_delivered(&reader, study, sop),
                            Some((code, reason)) => store
                                .record_failure(
                                    &reader,
                                    study,
                                    sop,
                                    &DeliveryFailure {
                                        status: None,
                                        reason: format!(
                                            "{code}: refused by the county relay {relay}; not forwarded again: {reason}"
                                        ),
                                        permanent: true,
                                    },
                                )
                                .map(|_| ()),
                        };
                        r.err().map(|e| format!("{sop}: {e}"))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        for f in &failed {
            // Still pending: offered again, and the relay answers "already stored".
            warn!("cannot record a forwarded instance as delivered: {f}");
        }
        if delivered > 0 {
            info!(
                instances = delivered,
                bytes = report.bytes_sent,
                "forwarded to the county relay"
            );
        }
        if retry > 0 {
            let delay = st.link_backoff.next_delay().min(RETRY_MAX);
            warn!(
                instances = retry,
                "not forwarded yet ({last_reason}); they stay spooled here, trying again in {:.1} s",
                delay.as_secs_f32()
            );
            st.link_not_before = Some(Instant::now() + delay);
        } else {
            st.link_backoff.reset();
            st.link_not_before = None;
        }
    }

    async fn start_manifests(&self, st: &mut State, runs: &mut JoinSet<ManifestsDone>) {
        let studies: Vec<String> = std::mem::take(&mut st.due).into_iter().collect();
        let site = self.site.clone();
        let all = studies.clone();
        let listed = self
            .blocking(move |store| {
                let mut m = BTreeMap::new();
                for study in studies {
                    match store.study_instances(&study) {
                        Ok(v) => {
                            let sops: Vec<String> = v
                                .into_iter()
                                .filter(|i| i.source_site == site)
                                .map(|i| i.sop_uid)
                                .collect();
                            m.insert(study, Ok(sops));
                        }
                        Err(e) => {
                            m.insert(study, Err(e.to_string()));
                        }
                    }
                }
                m
            })
            .await;
        let Some(listed) = listed else {
            st.due.extend(all);
            st.manifest_not_before = Some(Instant::now() + Duration::from_secs(1));
            return;
        };
        let mut send = BTreeMap::new();
        for (study, sops) in listed {
            match sops {
                Ok(sops) if !sops.is_empty() => {
                    st.sending.insert(study.clone());
                    send.insert(study, sops);
                }
                Ok(_) => {
                    // Nothing of it is held any more: forget it (a record that stays is
                    // found empty again when the gateway next starts).
                    if let Err(e) = self.book.remove(&study) {
                        warn!(study_uid = %study, "cannot forget a study that has nothing left to send: {e}");
                    }
                }
                Err(e) => {
                    warn!(study_uid = %study, "cannot list the study's instances: {e}");
                    st.due.insert(study);
                    st.manifest_not_before = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
        if send.is_empty() {
            return;
        }
        let client = self.client();
        runs.spawn(async move {
            let r = yilian_client::send_manifests(&client, &send, &LogProgress).await;
            (send, r)
        });
    }

    async fn manifests_done(&self, (sent, result): ManifestsDone, st: &mut State) {
        let sent_studies: BTreeSet<String> = sent.keys().cloned().collect();
        for s in &sent_studies {
            st.sending.remove(s);
        }
        let reports = match result {
            Ok(r) => r,
            Err(e) => {
                let delay = match &e {
                    ClientError::Refused(_) => REFUSED_RETRY,
                    _ => st.manifest_backoff.next_delay().min(RETRY_MAX),
                };
                warn!(
                    studies = sent.len(),
                    "study manifests not sent ({e}); trying again in {:.1} s",
                    delay.as_secs_f32()
                );
                st.due.extend(sent_studies);
                st.manifest_not_before = Some(Instant::now() + delay);
                return;
            }
        };
        let mut failed = 0;
        for r in reports {
            if r.manifest_delivered {
                info!(
                    study_uid = %r.study_uid, instances = r.instances, status = %r.status,
                    "study manifest sent to the county relay"
                );
            } else if let Some(code) = r.refused {
                error!(
                    study_uid = %r.study_uid, code = %code,
                    "the county relay refused the study's manifest for good: {}", r.status
                );
                self.ingest
                    .audit(AuditEvent {
                        actor: format!("{} (forwarding to {})", self.reader, self.client.relay),
                        site: Some(self.site.clone()),
                        action: AuditAction::Manifest,
                        study_uid: Some(r.study_uid.clone()),
                        sop_uid: None,
                        outcome: code.to_string(),
                        detail: Some(format!(
                            "manifest refused by the county relay; not sent again: {}",
                            r.status
                        )),
                    })
                    .await;
            } else {
                failed += 1;
                debug!(study_uid = %r.study_uid, "manifest not sent: {}", r.status);
                st.due.insert(r.study_uid);
                continue;
            }
            // Keep the record while an instance of the study is still on its way (its
            // manifest may grow again) or a newer manifest is due.
            let busy = st.in_flight.values().any(|s| *s == r.study_uid);
            if !busy && !st.due.contains(&r.study_uid) {
                if let Err(e) = self.book.remove(&r.study_uid) {
                    warn!(study_uid = %r.study_uid, "cannot forget the study's record: {e}");
                }
            }
        }
        if failed > 0 {
            let delay = st.manifest_backoff.next_delay().min(RETRY_MAX);
            warn!(
                studies = failed,
                "study manifests not delivered; trying again in {:.1} s",
                delay.as_secs_f32()
            );
            st.manifest_not_before = Some(Instant::now() + delay);
        } else {
            st.manifest_backoff.reset();
            st.manifest_not_before = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: FileOutcome, refused: Option<RefuseCode>, sop: bool) -> FileReport {
        FileReport {
            path: PathBuf::from("objects/ab/ab.dcm"),
            sop_uid: sop.then(|| "1.2.3.4".to_string()),
            study_uid: sop.then(|| "1.2.3".to_string()),
            size: 10,
            outcome,
            refused,
        }
    }

    fn failed(refused: Option<RefuseCode>) -> FileReport {
        report(
            FileOutcome::Failed {
                reason: "why".into(),
            },
            refused,
            true,
        )
    }

    #[test]
    fn acknowledged_files_are_delivered() {
        assert_eq!(
            classify(&report(FileOutcome::Stored { resumed_from: 0 }, None, true)),
            Verdict::Delivered
        );
        assert_eq!(
            classify(&report(
                FileOutcome::Stored { resumed_from: 77 },
                None,
                true
            )),
            Verdict::Delivered
        );
        assert_eq!(
            classify(&report(FileOutcome::AlreadyStored, None, true)),
            Verdict::Delivered
        );
    }

    #[test]
    fn refusals_for_good_are_handled_once_and_never_retried() {
        for code in [
            RefuseCode::Conflict,
            RefuseCode::Malformed,
            RefuseCode::NotDicom,
            RefuseCode::Truncated,
            RefuseCode::Unauthorized,
            RefuseCode::TooLarge,
            RefuseCode::Mismatch,
        ] {
            match classify(&failed(Some(code))) {
                Verdict::Refused { code: c, reason } => {
                    assert_eq!(c, code.to_string());
                    assert_eq!(reason, "why");
                }
                v => panic!("{code}: {v:?}"),
            }
        }
        // The gateway cannot read its own copy as DICOM.
        assert!(matches!(
            classify(&failed(None).clone_without_uids()),
            Verdict::Refused { code, .. } if code == "unreadable"
        ));
        assert!(matches!(
            classify(&report(
                FileOutcome::Skipped {
                    reason: "DICOMDIR".into()
                },
                None,
                false
            )),
            Verdict::Refused { .. }
        ));
    }

    #[test]
    fn passing_failures_and_the_link_are_retried_unroutable_is_parked() {
        for code in [
            RefuseCode::StorageFull,
            RefuseCode::Busy,
            RefuseCode::Internal,
            RefuseCode::TimedOut,
            RefuseCode::HashMismatch,
            RefuseCode::Superseded,
        ] {
            assert!(
                matches!(classify(&failed(Some(code))), Verdict::Retry { .. }),
                "{code}"
            );
        }
        // Gave up on a dead link, or never sent: no relay verdict.
        assert!(matches!(classify(&failed(None)), Verdict::Retry { .. }));
        assert!(matches!(
            classify(&failed(Some(RefuseCode::Unroutable))),
            Verdict::Park { .. }
        ));
    }

    trait WithoutUids {
        fn clone_without_uids(&self) -> FileReport;
    }
    impl WithoutUids for FileReport {
        fn clone_without_uids(&self) -> FileReport {
            FileReport {
                sop_uid: None,
                study_uid: None,
                ..self.clone()
            }
        }
    }
}
