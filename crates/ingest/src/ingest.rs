//! [`Ingest`]: the state every front door shares (store, gate, hub, free space, metrics, the
//! topology in force), and the checks every upload passes before it enters the gate.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use yilian_proto::{Refusal, RefuseCode};
use yilian_route::Topology;
use yilian_store::{AuditAction, AuditEvent, ManifestStatus, Store, StoreError};

use crate::gate::GateConfig;
use crate::gate_handle::GateHandle;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::principal::Principal;
use crate::quiet::QuietStudies;
use crate::refusal::{refusal, store_refusal};
use crate::storage::Storage;

/// Limits and tuning of ingest (from the relay's `[limits]` and checkpoint settings).
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Largest instance accepted, in bytes.
    pub max_instance_bytes: u64,
    /// fsync a resumable upload's partial after this many bytes…
    pub checkpoint_bytes: u64,
    /// …or this long, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Leases, holds, idle expiry, per-identity caps.
    pub gate: GateConfig,
    /// Below this much free space in the data directory, uploads are refused as storage full.
    pub min_free_bytes: u64,
    /// A study sent without a manifest (C-STORE) is complete after this long without a new
    /// instance (`quiet.rs`).
    pub quiet_period: Duration,
}

/// The one ingest path. See the crate docs.
pub struct Ingest {
    pub store: Arc<Store>,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub(crate) gate: Arc<GateHandle>,
    pub storage: Arc<Storage>,
    pub config: IngestConfig,
    topology: RwLock<Arc<Topology>>,
    quiet: Mutex<QuietStudies>,
    /// Sealed uploads waiting for their commit (`sealed.rs`).
    pub(crate) sealed: Mutex<crate::sealed::SealedQueue>,
}

impl Ingest {
    /// Ingest into `store`, routing by `topology` until [`Ingest::set_topology`].
    pub fn new(store: Arc<Store>, topology: Arc<Topology>, config: IngestConfig) -> Ingest {
        let storage = Arc::new(Storage::new(store.root(), config.min_free_bytes));
        Ingest {
            store,
            hub: Hub::default(),
            metrics: Arc::new(Metrics::default()),
            gate: Arc::new(GateHandle::new(config.gate)),
            storage,
            config,
            topology: RwLock::new(topology),
            quiet: Mutex::new(QuietStudies::default()),
            sealed: Mutex::new(Default::default()),
        }
    }

    /// The topology in force now.
    pub fn topology(&self) -> Arc<Topology> {
        // A poisoned lock still holds a whole Arc: writers only swap it.
        self.topology
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Route by `topology` from now on (a reload).
    pub fn set_topology(&self, topology: Arc<Topology>) {
        *self.topology.write().unwrap_or_else(|p| p.into_inner()) = topology;
    }

    /// Expire idle uploads, lapse urgency, complete quiet studies (call about once a second).
    pub fn tick(self: &Arc<Self>) {
        self.gate.tick();
        let due = self
            .quiet
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .due(self.config.quiet_period, Instant::now());
        if !due.is_empty() {
            let me = self.clone();
            tokio::spawn(async move {
                for (site, study) in due {
                    me.complete_quiet_study(&site, &study).await;
                }
            });
        }
    }

    /// An instance of `study` from `site` was stored through a front door without manifests:
    /// the study is complete once it stays quiet for the quiet period.
    pub fn study_activity(&self, site: &str, study: &str) {
        self.quiet
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .touch(site, study, Instant::now());
    }

    /// At start: studies with instances no manifest lists (stored without one, or late after
    /// their quiet period completed them) wait for their quiet period again, counted from
    /// their last instance (the timers live in memory).
    pub async fn rearm_quiet_studies(&self) {
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.studies_awaiting_manifest()).await;
        let studies = match found {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return warn!("cannot list studies waiting for their quiet period: {e}"),
            Err(e) => return warn!("listing studies waiting for their quiet period failed: {e}"),
        };
        let now = Instant::now();
        let mut quiet = self.quiet.lock().unwrap_or_else(|p| p.into_inner());
        for (site, study, ago_ms) in &studies {
            let last = now
                .checked_sub(Duration::from_millis(*ago_ms))
                .unwrap_or(now);
            quiet.touch(site, study, last);
        }
        if !studies.is_empty() {
            info!(
                studies = studies.len(),
                "studies with instances no manifest lists wait for their quiet period again"
            );
        }
    }

    /// The quiet period of `study` passed: what `site` stored of it becomes its manifest.
    async fn complete_quiet_study(&self, site: &str, study: &str) {
        let store = self.store.clone();
        let (s, st) = (site.to_string(), study.to_string());
        let r = tokio::task::spawn_blocking(move || {
            let uids: Vec<String> = store
                .study_instances(&st)?
                .into_iter()
                .filter(|i| i.source_site == s)
                .map(|i| i.sop_uid)
                .collect();
            let n = uids.len();
            store
                .record_manifest(&s, &st, &uids)
                .map(|status| (n, status))
        })
        .await;
        match r {
            Ok(Ok((n, ManifestStatus::Complete { .. }))) => {
                info!(study_uid = %study, %site, instances = n, "study complete (quiet period)");
                self.hub.study_progress(study);
            }
            Ok(Ok((_, status))) => {
                info!(study_uid = %study, %site, ?status, "quiet period passed; the study's manifest still lists missing instances");
            }
            Ok(Err(e)) => {
                warn!(study_uid = %study, %site, "cannot complete a quiet study: {e}");
                self.storage.notice(&e);
            }
            Err(e) => warn!(study_uid = %study, "completing a quiet study failed: {e}"),
        }
    }

    /// Uploads in the gate now (waiting or writing).
    pub fn uploads_in_gate(&self) -> usize {
        self.gate.len()
    }

    /// The gate's settings.
    pub fn gate_config(&self) -> GateConfig {
        self.gate.config()
    }

    /// Refused if another site sent `study_uid` first.
    pub async fn check_study_owner(&self, site: &str, study_uid: &str) -> Result<(), Refusal> {
        let store = self.store.clone();
        let s = study_uid.to_string();
        let owner = tokio::task::spawn_blocking(move || store.study_owner(&s))
            .await
            .map_err(|e| refusal(RefuseCode::Internal, e.to_string()))?;
        match owner {
            Ok(Some(owner)) if owner != site => Err(self.store_refusal(&StoreError::StudyOwned {
                study_uid: study_uid.to_string(),
                owner,
            })),
            Ok(_) => Ok(()),
            Err(e) => Err(self.store_refusal(&e)),
        }
    }

    /// What a store failure means for the sender ([`crate::store_refusal`]).
    pub fn store_refusal(&self, e: &StoreError) -> Refusal {
        store_refusal(&self.storage, e)
    }

    /// Log, count and audit a refused upload (every front door calls this once per refusal).
    pub async fn refused(
        &self,
        principal: &Principal,
        study: Option<String>,
        sop: Option<String>,
        r: &Refusal,
    ) {
        Metrics::add(&self.metrics.instances_refused, 1);
        warn!(peer = %principal, sop_uid = ?sop, code = %r.code, "upload refused: {}", r.reason);
        self.audit(AuditEvent {
            actor: principal.actor(),
            site: Some(principal.site.clone()),
            action: AuditAction::Receive,
            study_uid: study,
            sop_uid: sop,
            outcome: r.code.to_string(),
            detail: Some(r.reason.clone()),
        })
        .await;
    }

    /// Append an audit entry; a failure is logged, counted and surfaced in the stats, never
    /// dropped silently (`audit.rs`).
    pub async fn audit(&self, ev: AuditEvent) {
        crate::audit::write(&self.store, &self.storage, &self.metrics, ev).await;
    }
}
