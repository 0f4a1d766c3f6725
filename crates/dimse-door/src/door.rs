//! The door itself: admission, C-STORE into the ingest path, and the listener loop.
//!
//! The protocol is `yilian-dimse`'s (sans-IO association, tokio driver); this file only
//! decides and translates:
//!
//! * **Admission**: the called AE title must be the relay's (`[dimse] ae_title`); the calling
//!   AE title must be an `[[ae]]` of the topology in force, calling from an allowed address,
//!   acting as a declared identity that is not on the deny list. Anything else is rejected at
//!   association with the standard reason (calling / called AE title not recognized) and
//!   audited.
//! * **C-STORE**: the data set streams into an [`Upload`] of unknown size, behind the file meta
//!   information synthesized from the association (SOP class and instance from the command,
//!   the presentation context's transfer syntax, the calling AE as source): the stored file is
//!   that meta plus the data set exactly as received. The C-STORE-RSP says success only after
//!   the ingest path said the instance is durable; otherwise the failure status that fits
//!   (out of resources, cannot understand, duplicate SOP instance, not authorized, processing
//!   failure) with the reason as Error Comment. An association that dies mid-instance (A-ABORT,
//!   a dropped connection, a stalled peer) leaves nothing: the scratch partial is removed.
//! * **Completeness**: each stored instance re-arms its study's quiet period
//!   (`yilian_ingest::quiet`).
//! * Routine DIMSE uploads are not paused for an urgent upload of the same site (a console
//!   waiting on a TCP window it cannot see would time out); they still wait for their lease.

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};
use yilian_dimse::scp::{Admitted, ScpConfig, ScpHandler, StoreOutcome, StoreRequest, StoreSink};
use yilian_dimse::{part10, AcceptPolicy, AssociateRequest, Reject, Status};
use yilian_ingest::{ConnId, Door, Event, Ingest, Opened, Principal, Upload, UploadSpec};
use yilian_proto::{Refusal, RefuseCode};
use yilian_route::{Priority, Role, Topology};
use yilian_store::{AuditAction, AuditEvent};

/// Associations served at once, all callers together.
pub const MAX_ASSOCIATIONS: usize = 256;

/// Who may call, and as whom.
#[derive(Clone, Debug)]
pub enum Callers {
    /// The relay: calling AE titles are the `[[ae]]` of the topology in force, each acting as
    /// its declared identity (a device stores, a reader's workstation queries).
    Topology,
    /// A township gateway: every caller (or only the listed AE titles) stores as the
    /// gateway's own identity.
    Fixed {
        /// The identity every caller acts as (its door is set per association).
        principal: Principal,
        /// Calling AE titles allowed; `None`: any.
        allowed: Option<Vec<String>>,
    },
}

/// The door's settings.
#[derive(Clone, Debug)]
pub struct DoorConfig {
    /// Our AE title: what callers must put as called AE title.
    pub ae_title: String,
    /// A peer silent this long mid-operation is aborted.
    pub idle_timeout: std::time::Duration,
    /// Who may call.
    pub callers: Callers,
}

/// The DIMSE front door's handler (one per relay or gateway, shared by every association).
pub struct DimseDoor {
    ingest: Arc<Ingest>,
    config: DoorConfig,
    policy: Arc<AcceptPolicy>,
    associations: Arc<Semaphore>,
}

impl DimseDoor {
    pub fn new(ingest: Arc<Ingest>, config: DoorConfig) -> DimseDoor {
        DimseDoor {
            ingest,
            config,
            policy: Arc::new(accept_policy()),
            associations: Arc::new(Semaphore::new(MAX_ASSOCIATIONS)),
        }
    }

    /// Who may call.
    pub fn callers(&self) -> &Callers {
        &self.config.callers
    }

    /// The ingest path it feeds.
    pub fn ingest(&self) -> &Arc<Ingest> {
        &self.ingest
    }

    /// The association slots (shared by the plain and the TLS port).
    pub(crate) fn associations(&self) -> Arc<Semaphore> {
        self.associations.clone()
    }

    /// The driver's settings.
    pub fn scp_config(&self) -> ScpConfig {
        ScpConfig {
            stall_timeout: self.config.idle_timeout,
            ..ScpConfig::default()
        }
    }

    /// Serve DIMSE on `listener` until the task is dropped.
    pub async fn run(self: Arc<Self>, listener: yilian_dimse::tcp::Listener) {
        let scp = Arc::new(self.scp_config());
        loop {
            let (stream, peer) = accept(&listener, "DIMSE").await;
            let Ok(permit) = self.associations.clone().try_acquire_owned() else {
                // Served by the driver too: it rejects with "temporary congestion".
                warn!(%peer, "DIMSE: {MAX_ASSOCIATIONS} associations at once; rejecting");
                let door = self.clone();
                let scp = scp.clone();
                tokio::spawn(async move {
                    let busy = Busy(door);
                    if let Err(e) = yilian_dimse::scp::serve(stream, peer, &busy, &scp).await {
                        debug!(%peer, "DIMSE (busy): {e}");
                    }
                });
                continue;
            };
            let door = self.clone();
            let scp = scp.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match yilian_dimse::scp::serve(stream, peer, &*door, &scp).await {
                    Ok(s) => info!(
                        %peer, calling_ae = %s.calling_ae, stored = s.stored,
                        failed = s.store_failures, cut_off = s.stores_aborted, echoes = s.echoes,
                        "DIMSE association ended"
                    ),
                    Err(e) => warn!(%peer, "DIMSE association failed: {e}"),
                }
            });
        }
    }

    /// The principal an AE title acts as, if it may call from `peer` now.
    fn principal(
        &self,
        topology: &Topology,
        calling_ae: &str,
        peer: SocketAddr,
    ) -> Result<Principal, String> {
        if let Callers::Fixed { principal, allowed } = &self.config.callers {
            if let Some(list) = allowed {
                if !list.iter().any(|a| a.trim() == calling_ae.trim()) {
                    return Err(format!(
                        "calling AE title {calling_ae:?} is not in this gateway's list (--calling-ae)"
                    ));
                }
            }
            return Ok(Principal {
                door: Door::Dimse {
                    calling_ae: calling_ae.trim().to_string(),
                },
                ..principal.clone()
            });
        }
        let Some(ae) = topology.ae(calling_ae) else {
            return Err(format!(
                "calling AE title {calling_ae:?} is not declared: add an [[ae]] with this title to the topology"
            ));
        };
        if !ae.allows(peer.ip()) {
            return Err(format!(
                "AE {calling_ae:?} may not call from {}: its [[ae]] addresses do not list it",
                peer.ip()
            ));
        }
        let Some(id) = topology.identity(&ae.identity) else {
            return Err(format!("AE {calling_ae:?} acts as an undeclared identity"));
        };
        if let Some(r) = topology
            .revocations()
            .find(|r| r.serial.is_none() && r.name.as_deref() == Some(id.name.as_str()))
        {
            return Err(format!("identity {} is revoked: {}", id.name, r.reason));
        }
        Ok(Principal {
            name: id.name.clone(),
            site: id.site.clone(),
            role: id.role,
            department: id.department.clone(),
            door: Door::Dimse {
                calling_ae: calling_ae.trim().to_string(),
            },
        })
    }

    pub(crate) async fn audit_association(
        &self,
        request: &AssociateRequest,
        peer: SocketAddr,
        outcome: &str,
        detail: String,
    ) {
        let topology = self.ingest.topology();
        let ae = topology.ae(&request.calling_ae);
        let identity = ae.and_then(|a| topology.identity(&a.identity));
        self.ingest
            .audit(AuditEvent {
                actor: match identity {
                    Some(i) => format!("{} (AE {})", i.name, request.calling_ae.trim()),
                    None => format!("AE {}", request.calling_ae.trim()),
                },
                site: identity.map(|i| i.site.clone()),
                action: AuditAction::Connect,
                study_uid: None,
                sop_uid: None,
                outcome: outcome.to_string(),
                detail: Some(format!("DIMSE from {peer}: {detail}")),
            })
            .await;
    }
}

impl ScpHandler for DimseDoor {
    type Sink = DimseSink;

    async fn find<R: yilian_dimse::scp::Responder>(
        &self,
        request: &yilian_dimse::scp::FindRequest,
        responder: &mut R,
    ) -> yilian_dimse::scp::FindOutcome {
        crate::find::find(&self.ingest, &self.config.ae_title, request, responder).await
    }

    async fn get<S: yilian_dimse::scp::GetSession>(
        &self,
        request: &yilian_dimse::scp::GetRequest,
        session: &mut S,
    ) -> yilian_dimse::scp::RetrieveOutcome {
        crate::retrieve::get(&self.ingest, request, session).await
    }

    async fn move_to<P: yilian_dimse::scp::MoveProgress>(
        &self,
        request: &yilian_dimse::scp::MoveRequest,
        progress: &mut P,
    ) -> yilian_dimse::scp::RetrieveOutcome {
        crate::retrieve::move_to(&self.ingest, &self.config.ae_title, request, progress).await
    }

    async fn admit(
        &self,
        request: &AssociateRequest,
        peer: SocketAddr,
    ) -> Result<Admitted, Reject> {
        if request.called_ae.trim() != self.config.ae_title.trim() {
            let why = format!(
                "called AE title {:?} is not this relay's ({:?}); set the console's destination AE title to {:?}",
                request.called_ae, self.config.ae_title, self.config.ae_title
            );
            warn!(%peer, calling_ae = %request.calling_ae, "DIMSE association rejected: {why}");
            self.audit_association(request, peer, "called-ae-not-recognized", why)
                .await;
            return Err(Reject::called_ae_not_recognized());
        }
        let topology = self.ingest.topology();
        match self.principal(&topology, &request.calling_ae, peer) {
            Ok(p) => {
                info!(%peer, calling_ae = %request.calling_ae, identity = %p.name, site = %p.site, "DIMSE association accepted");
                self.audit_association(request, peer, "ok", format!("as {} of {}", p.name, p.site))
                    .await;
                Ok(Admitted {
                    policy: self.policy.clone(),
                })
            }
            Err(why) => {
                warn!(%peer, calling_ae = %request.calling_ae, "DIMSE association rejected: {why}");
                self.audit_association(request, peer, "calling-ae-not-recognized", why)
                    .await;
                Err(Reject::calling_ae_not_recognized())
            }
        }
    }

    async fn begin_store(&self, request: &StoreRequest) -> Result<DimseSink, StoreOutcome> {
        // The topology in force now (it may have changed since the association began).
        let topology = self.ingest.topology();
        let principal = self
            .principal(&topology, &request.calling_ae, request.peer)
            .map_err(|why| StoreOutcome::with(Status::NOT_AUTHORIZED, why))?;
        let principal = Arc::new(principal);
        if principal.role != Role::Device && principal.role != Role::Relay {
            let r = yilian_ingest::refusal(
                RefuseCode::Unauthorized,
                format!(
                    "AE {} acts as {}, a {} identity, which may not send images; declare the console's AE with a device identity",
                    request.calling_ae, principal.name, principal.role
                ),
            );
            self.ingest
                .refused(&principal, None, Some(request.sop_instance.clone()), &r)
                .await;
            return Err(outcome_for(&r));
        }
        let prefix = part10::file_meta(
            &request.sop_class,
            &request.sop_instance,
            &request.transfer_syntax,
            Some(request.calling_ae.trim()),
        );
        let spec = UploadSpec {
            sop_uid: request.sop_instance.clone(),
            study_uid: None,
            size: None,
            priority: Priority::Routine,
            facts: None,
            hash: None,
            prefix: Some(Bytes::from(prefix)),
        };
        let conn: ConnId = yilian_ingest::next_conn();
        let refused = |r: Refusal| {
            let (ingest, principal) = (self.ingest.clone(), principal.clone());
            let sop = request.sop_instance.clone();
            async move {
                ingest.refused(&principal, None, Some(sop), &r).await;
                outcome_for(&r)
            }
        };
        let mut up = match self.ingest.begin(principal.clone(), spec, conn).await {
            Ok(u) => u,
            Err(r) => return Err(refused(r).await),
        };
        if let Err(r) = up.lease().await {
            up.close().await;
            return Err(refused(r).await);
        }
        match up.open().await {
            Ok(Opened::At(_)) => {}
            Ok(Opened::AlreadyStored(_)) => {
                // Not for an upload of unknown size; a scratch upload is checked at commit.
            }
            Err(r) => {
                up.close().await;
                return Err(refused(r).await);
            }
        }
        Ok(DimseSink {
            ingest: self.ingest.clone(),
            principal,
            up,
        })
    }
}

/// One C-STORE data set on its way into the ingest path.
pub struct DimseSink {
    ingest: Arc<Ingest>,
    principal: Arc<Principal>,
    up: Upload,
}

impl DimseSink {
    /// The upload's final event (holds and checkpoints do not concern a C-STORE).
    async fn outcome(&mut self) -> Result<(), Refusal> {
        loop {
            match self.up.next_event().await {
                Event::Hold(_) | Event::Checkpoint(_) => continue,
                Event::Stored(_) => return Ok(()),
                Event::Refused(r) => return Err(r),
            }
        }
    }

    async fn refused(&self, r: &Refusal) -> StoreOutcome {
        self.ingest
            .refused(
                &self.principal,
                self.up.study_uid().map(str::to_string),
                Some(self.up.spec().sop_uid.clone()),
                r,
            )
            .await;
        outcome_for(r)
    }
}

impl StoreSink for DimseSink {
    async fn data(&mut self, bytes: Bytes) -> Result<(), StoreOutcome> {
        if self.up.data(bytes).await {
            return Ok(());
        }
        // The writer refused the instance (malformed, disk full…): its reason is the answer.
        let r = match self.outcome().await {
            Err(r) => r,
            Ok(()) => yilian_ingest::refusal(
                RefuseCode::Internal,
                "stored before the end of its data set",
            ),
        };
        Err(self.refused(&r).await)
    }

    async fn finish(mut self) -> StoreOutcome {
        self.up.finish(None).await;
        let outcome = match self.outcome().await {
            // Its study's quiet period starts again (the ingest path sees to it).
            Ok(()) => StoreOutcome::success(),
            Err(r) => self.refused(&r).await,
        };
        self.up.close().await;
        outcome
    }

    async fn abort(self) {
        debug!(sop_uid = %self.up.spec().sop_uid, "C-STORE cut off: nothing of it is kept");
        self.up.close().await;
    }
}

/// Storage (every SOP class and transfer syntax), verification, and Query/Retrieve (Patient and
/// Study Root FIND, MOVE, GET) in Explicit or Implicit VR Little Endian.
fn accept_policy() -> AcceptPolicy {
    let mut policy = AcceptPolicy::default_storage();
    for class in yilian_dimse::sop_classes::QUERY_RETRIEVE {
        policy = policy.with(
            class.uid,
            &[
                yilian_dimse::transfer_syntaxes::EXPLICIT_VR_LITTLE_ENDIAN,
                yilian_dimse::transfer_syntaxes::IMPLICIT_VR_LITTLE_ENDIAN,
            ],
        );
    }
    policy
}

/// The C-STORE status for a refusal, with its reason as Error Comment.
pub fn outcome_for(r: &Refusal) -> StoreOutcome {
    StoreOutcome::with(
        Status(yilian_ingest::dicom_status(r.code)),
        r.reason.clone(),
    )
}

/// Rejects every association: too many at once.
struct Busy(Arc<DimseDoor>);

impl ScpHandler for Busy {
    type Sink = DimseSink;

    async fn admit(
        &self,
        request: &AssociateRequest,
        peer: SocketAddr,
    ) -> Result<Admitted, Reject> {
        self.0
            .audit_association(
                request,
                peer,
                "busy",
                format!("{MAX_ASSOCIATIONS} associations at once"),
            )
            .await;
        Err(Reject::busy())
    }

    async fn begin_store(&self, _: &StoreRequest) -> Result<DimseSink, StoreOutcome> {
        Err(StoreOutcome::from(Status::OUT_OF_RESOURCES))
    }
}

/// The next connection on `listener`; a failed accept (out of file descriptors…) is logged
/// and tried again a moment later, never the end of the door.
pub(crate) async fn accept(
    listener: &yilian_dimse::tcp::Listener,
    door: &str,
) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(s) => return s,
            Err(e) => {
                warn!("{door} accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
