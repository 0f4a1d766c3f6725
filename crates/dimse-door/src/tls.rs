//! DICOM TLS: the same door behind mutual TLS with the alliance certificates.
//!
//! Every peer presents a certificate from the alliance CA (the handshake refuses anyone
//! else). Its identity (`urn:yilian:peer:…`) must be the identity its calling AE title acts as
//! in the topology: a stolen AE title is not enough, and a certificate cannot speak for
//! another identity's AE. The deny list (`[[revoked]]` by name) applies as on the plain port;
//! the server configuration (the relay builds it with the alliance CA's CRLs, as for QUIC, and
//! replaces it when it reloads them: [`TlsConfig`]) refuses revoked certificates in the
//! handshake.

use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use yilian_dimse::scp::{Admitted, ScpHandler, StoreOutcome, StoreRequest};
use yilian_dimse::{AssociateRequest, Reject};
use yilian_transport::identity_from_cert;

use crate::door::{Callers, DimseDoor, DimseSink};

/// DICOM TLS's state shared with the relay: the TLS configuration new connections are accepted
/// with, and the live associations with their certificates. The relay replaces the
/// configuration when it reloads its CRLs (SIGHUP, or a changed file) — a certificate revoked
/// since is refused from the next handshake on — and ends the live associations the new lists
/// revoke ([`TlsConfig::end_where`]).
#[derive(Debug)]
pub struct TlsConfig {
    config: RwLock<Arc<ServerConfig>>,
    live: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    next: u64,
    associations: HashMap<u64, LiveAssociation>,
}

#[derive(Debug)]
struct LiveAssociation {
    identity: String,
    peer: SocketAddr,
    certificate: CertificateDer<'static>,
    end: Arc<Notify>,
}

/// A live association [`TlsConfig::end_where`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    pub identity: String,
    pub peer: SocketAddr,
    pub reason: String,
}

impl TlsConfig {
    pub fn new(config: Arc<ServerConfig>) -> TlsConfig {
        TlsConfig {
            config: RwLock::new(config),
            live: Mutex::new(Live::default()),
        }
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Put `config` in force for the connections that come next.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// End every live association for which `revoked(identity, certificate)` gives a reason
    /// (its connection is dropped: the peer sees the association cut, nothing of a C-STORE in
    /// progress is kept or acknowledged).
    pub fn end_where(
        &self,
        mut revoked: impl FnMut(&str, &CertificateDer<'static>) -> Option<String>,
    ) -> Vec<Ended> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut ended = Vec::new();
        for a in live.associations.values() {
            if let Some(reason) = revoked(&a.identity, &a.certificate) {
                a.end.notify_one();
                ended.push(Ended {
                    identity: a.identity.clone(),
                    peer: a.peer,
                    reason,
                });
            }
        }
        ended
    }

    fn register(
        self: &Arc<Self>,
        identity: &str,
        peer: SocketAddr,
        certificate: CertificateDer<'static>,
    ) -> Registered {
        let end = Arc::new(Notify::new());
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.next += 1;
        let id = live.next;
        live.associations.insert(
            id,
            LiveAssociation {
                identity: identity.to_string(),
                peer,
                certificate,
                end: end.clone(),
            },
        );
        Registered {
            config: self.clone(),
            id,
            end,
        }
    }
}

/// A live association's entry, removed when it ends.
struct Registered {
    config: Arc<TlsConfig>,
    id: u64,
    end: Arc<Notify>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.config
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .associations
            .remove(&self.id);
    }
}

/// One TLS connection's handler: the door, with the certificate's identity.
struct Bound {
    door: Arc<DimseDoor>,
    identity: String,
}

impl ScpHandler for Bound {
    type Sink = DimseSink;

    async fn admit(
        &self,
        request: &AssociateRequest,
        peer: SocketAddr,
    ) -> Result<Admitted, Reject> {
        if matches!(self.door.callers(), Callers::Topology) {
            let topology = self.door.ingest().topology();
            let acts_as = topology.ae(&request.calling_ae).map(|a| a.identity.clone());
            if acts_as.as_deref() != Some(self.identity.as_str()) {
                let why = format!(
                    "the certificate of {} may not call as AE {:?} (that AE acts as {})",
                    self.identity,
                    request.calling_ae,
                    acts_as.unwrap_or_else(|| "nobody: it is not declared".into())
                );
                warn!(%peer, "DICOM TLS association rejected: {why}");
                self.door
                    .audit_association(request, peer, "certificate-mismatch", why)
                    .await;
                return Err(Reject::calling_ae_not_recognized());
            }
        }
        self.door.admit(request, peer).await
    }

    async fn begin_store(&self, request: &StoreRequest) -> Result<DimseSink, StoreOutcome> {
        self.door.begin_store(request).await
    }

    async fn find<R: yilian_dimse::scp::Responder>(
        &self,
        request: &yilian_dimse::scp::FindRequest,
        responder: &mut R,
    ) -> yilian_dimse::scp::FindOutcome {
        self.door.find(request, responder).await
    }

    async fn get<S: yilian_dimse::scp::GetSession>(
        &self,
        request: &yilian_dimse::scp::GetRequest,
        session: &mut S,
    ) -> yilian_dimse::scp::RetrieveOutcome {
        self.door.get(request, session).await
    }

    async fn move_to<P: yilian_dimse::scp::MoveProgress>(
        &self,
        request: &yilian_dimse::scp::MoveRequest,
        progress: &mut P,
    ) -> yilian_dimse::scp::RetrieveOutcome {
        self.door.move_to(request, progress).await
    }
}

impl DimseDoor {
    /// Serve DICOM TLS on `listener` until the task is dropped; each connection is accepted
    /// with the configuration in force when it arrives.
    pub async fn run_tls(
        self: Arc<Self>,
        listener: yilian_dimse::tcp::Listener,
        config: Arc<TlsConfig>,
    ) {
        let scp = Arc::new(self.scp_config());
        loop {
            let (stream, peer) = crate::door::accept(&listener, "DICOM TLS").await;
            let (door, scp, cell) = (self.clone(), scp.clone(), config.clone());
            tokio::spawn(async move {
                // Whole socket reads under TLS (rustls alone reads 4 KiB at a time).
                let tls = match yilian_dimse::tls::accept(
                    yilian_transport::read_ahead::ReadAhead::new(stream),
                    cell.current(),
                    yilian_dimse::tls::DEFAULT_HANDSHAKE_TIMEOUT,
                )
                .await
                {
                    Ok(t) => t,
                    Err(e) => return warn!(%peer, "DICOM TLS handshake failed: {e}"),
                };
                let Some(certificate) = yilian_dimse::tls::peer_certificates(&tls)
                    .and_then(|c| c.first())
                    .map(|c| c.clone().into_owned())
                else {
                    return warn!(%peer, "DICOM TLS: no client certificate");
                };
                let identity = match identity_from_cert(&certificate) {
                    Ok(id) => id.name,
                    Err(e) => {
                        return warn!(%peer, "DICOM TLS: the certificate names no alliance identity: {e}")
                    }
                };
                let Ok(_permit) = door.associations().try_acquire_owned() else {
                    return warn!(%peer, "DICOM TLS: too many associations at once; dropping");
                };
                let registered = cell.register(&identity, peer, certificate);
                let bound = Bound { door, identity };
                tokio::select! {
                    served = yilian_dimse::scp::serve(tls, peer, &bound, &scp) => match served {
                        Ok(s) => {
                            info!(%peer, identity = %bound.identity, calling_ae = %s.calling_ae, stored = s.stored, "DICOM TLS association ended")
                        }
                        Err(e) => debug!(%peer, "DICOM TLS association failed: {e}"),
                    },
                    // Its certificate was revoked meanwhile: the connection is dropped.
                    () = registered.end.notified() => {
                        warn!(%peer, identity = %bound.identity, "DICOM TLS association cut: its certificate was revoked");
                    }
                }
                drop(registered);
            });
        }
    }
}
