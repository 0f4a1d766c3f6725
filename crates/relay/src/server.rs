//! The relay: QUIC endpoint, peer admission, stream dispatch, manifests, stats.

use bytes::BytesMut;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tracing::{debug, info, warn};
use yilian_proto::{
    encode_frame, valid_uid, FrameDecoder, Manifest, ManifestReply, Refusal, RefuseCode, Request,
};
use yilian_store::{AuditAction, ManifestStatus, Store};
use yilian_transport::{explain, peer_identity, PeerIdentity, Role};

use crate::config::RelayConfig;
use crate::delivery::{audit, reader_session};
use crate::hub::Hub;
use crate::ingest::{upload, Leases};
use crate::metrics::Metrics;

/// Application close codes the relay uses (the reason text says more).
pub mod close {
    pub const UNKNOWN_IDENTITY: u32 = 1;
    pub const SHUTDOWN: u32 = 4;
}

/// How long a new stream may take to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of a running relay.
pub(crate) struct Ctx {
    pub config: RelayConfig,
    pub store: Arc<Store>,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub leases: Leases,
    pub urgent: crate::urgency::UrgentBoard,
    pub budget: Arc<crate::budget::DeliveryBudget>,
}

/// Errors starting the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot open the data directory: {0}")]
    Store(#[from] yilian_store::StoreError),
    #[error("cannot listen: {0}")]
    Transport(#[from] yilian_transport::TransportError),
    #[error("cannot create the QUIC reset key {0}: {1}")]
    ResetKey(std::path::PathBuf, String),
}

/// A bound relay. [`Relay::run`] serves until [`Relay::close`].
pub struct Relay {
    ctx: Arc<Ctx>,
    endpoint: Endpoint,
}

impl Relay {
    /// Open the spool and bind the QUIC endpoint.
    pub fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
        let store = Arc::new(Store::open(&config.data_dir)?);
        let reset_key = reset_key(&config.data_dir)?;
        let endpoint = yilian_transport::server_endpoint_with_reset_key(
            config.listen,
            &config.tls,
            &config.tuning,
            Some(&reset_key),
        )?;
        let budget = crate::budget::DeliveryBudget::new(
            config.delivery_buffer_budget,
            config.tuning.send_window,
        );
        Ok(Relay {
            ctx: Arc::new(Ctx {
                config,
                store,
                hub: Hub::default(),
                metrics: Arc::new(Metrics::default()),
                leases: Leases::default(),
                urgent: Default::default(),
                budget: Arc::new(budget),
            }),
            endpoint,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.metrics.clone()
    }

    pub fn store(&self) -> Arc<Store> {
        self.ctx.store.clone()
    }

    /// Stop accepting and close every connection.
    pub fn close(&self) {
        self.endpoint
            .close(VarInt::from_u32(close::SHUTDOWN), b"relay shutting down");
    }

    /// Serve until closed.
    pub async fn run(&self) {
        let stats = tokio::spawn(log_stats(self.ctx.clone()));
        while let Some(incoming) = self.endpoint.accept().await {
            tokio::spawn(admit(self.ctx.clone(), incoming));
        }
        stats.abort();
        self.endpoint.wait_idle().await;
    }
}

/// The relay's stateless-reset key, created once and kept in the data directory so that a
/// restarted relay can reset the connections its previous run left (clients then resume
/// within a round trip instead of waiting for their idle timeout).
fn reset_key(data_dir: &std::path::Path) -> Result<Vec<u8>, RelayError> {
    let path = data_dir.join("quic-reset.key");
    if let Ok(k) = std::fs::read(&path) {
        if k.len() == 32 {
            return Ok(k);
        }
    }
    let mut k = vec![0u8; 32];
    urandom(&mut k).map_err(|e| RelayError::ResetKey(path.clone(), e))?;
    let tmp = data_dir.join("quic-reset.key.tmp");
    std::fs::write(&tmp, &k)
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| RelayError::ResetKey(path.clone(), e.to_string()))?;
    Ok(k)
}

fn urandom(buf: &mut [u8]) -> Result<(), String> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| format!("no randomness: {e}"))
}

async fn log_stats(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(ctx.config.stats_interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let m = ctx.metrics.snapshot();
        let store = ctx.store.clone();
        let depths = tokio::task::spawn_blocking(move || store.queue_depths())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let queues: Vec<String> = depths
            .iter()
            .map(|d| format!("{}={}/{}B", d.reader, d.instances, d.bytes))
            .collect();
        info!(
            bytes_in = m.bytes_in, bytes_out = m.bytes_out, bytes_out_shared = m.bytes_out_shared,
            stored = m.instances_stored,
            delivered = m.instances_delivered, refused = m.instances_refused,
            uploads = m.uploads_active, deliveries = m.deliveries_active,
            readers = ?ctx.hub.connected_readers(), queues = ?queues,
            "relay stats"
        );
    }
}

/// Handshake, identity check against the topology, then serve the connection's streams.
async fn admit(ctx: Arc<Ctx>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            Metrics::add(&ctx.metrics.connections_refused, 1);
            warn!(%remote, "refused a connection: {}", explain(&e));
            return;
        }
    };
    let peer = match peer_identity(&conn) {
        Ok(p) => p,
        Err(e) => {
            Metrics::add(&ctx.metrics.connections_refused, 1);
            warn!(%remote, "refused a connection: {e}");
            conn.close(
                VarInt::from_u32(close::UNKNOWN_IDENTITY),
                format!("refused: {e}").as_bytes(),
            );
            return;
        }
    };
    let known = ctx.config.topology.identity(&peer.name).is_some_and(|id| {
        id.site == peer.site && id.role == peer.role && id.department == peer.department
    });
    if !known {
        Metrics::add(&ctx.metrics.connections_refused, 1);
        let reason = format!(
            "unknown identity {peer}: it is not declared in this relay's topology (the alliance administrator must add it)"
        );
        warn!(%remote, "refused a connection: {reason}");
        audit(
            &ctx,
            &peer,
            AuditAction::Connect,
            None,
            None,
            "unknown-identity",
            None,
        )
        .await;
        conn.close(VarInt::from_u32(close::UNKNOWN_IDENTITY), reason.as_bytes());
        return;
    }
    info!(peer = %peer, %remote, "peer connected");
    audit(
        &ctx,
        &peer,
        AuditAction::Connect,
        None,
        None,
        "ok",
        Some(remote.to_string()),
    )
    .await;
    let peer = Arc::new(peer);
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(
                    ctx.clone(),
                    conn.clone(),
                    peer.clone(),
                    send,
                    recv,
                ));
            }
            Err(e) => {
                debug!(peer = %peer.name, "connection ended: {e}");
                break;
            }
        }
    }
}

async fn serve_stream(
    ctx: Arc<Ctx>,
    conn: Connection,
    peer: Arc<PeerIdentity>,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let mut dec = FrameDecoder::new();
    let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, async {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if let Some(req) = dec.next_frame::<Request>("request")? {
                return Ok(req);
            }
            buf.reserve(4096);
            match recv.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    return Err(yilian_proto::ProtoError::UnexpectedEnd {
                        state: "waiting for the first frame",
                    })
                }
                Ok(_) => dec.push(buf.split().freeze()),
            }
        }
    })
    .await;
    let req = match first {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let r = Refusal {
                code: RefuseCode::Malformed,
                reason: e.to_string(),
            };
            let _ = send
                .write_chunk(encode_frame(&yilian_proto::Reply::Refused(r)))
                .await;
            let _ = send.finish();
            return;
        }
        Err(_) => {
            let _ = send.reset(VarInt::from_u32(1));
            return;
        }
    };
    match req {
        Request::Offer(offer) => upload(ctx, peer, send, recv, offer, dec).await,
        Request::Manifest(m) => manifest(&ctx, &peer, &mut send, m).await,
        Request::Subscribe(sub) => {
            if peer.role == Role::Reader {
                reader_session(ctx, conn, peer, send, recv, sub).await;
            } else {
                let r = Refusal {
                    code: RefuseCode::Unauthorized,
                    reason: format!(
                        "{} is not a reader identity and cannot subscribe",
                        peer.name
                    ),
                };
                let _ = send
                    .write_chunk(encode_frame(&yilian_proto::Reply::Refused(r)))
                    .await;
                let _ = send.finish();
            }
        }
    }
}

async fn manifest(ctx: &Arc<Ctx>, peer: &PeerIdentity, send: &mut SendStream, m: Manifest) {
    let reply = if !matches!(peer.role, Role::Device | Role::Relay) {
        ManifestReply::Refused(Refusal {
            code: RefuseCode::Unauthorized,
            reason: "only devices and relays send study manifests".into(),
        })
    } else if !valid_uid(&m.study_uid) || m.sop_uids.iter().any(|u| !valid_uid(u)) {
        ManifestReply::Refused(Refusal {
            code: RefuseCode::Malformed,
            reason: "the manifest holds invalid UIDs".into(),
        })
    } else {
        let store = ctx.store.clone();
        let site = peer.site.clone();
        let m2 = m.clone();
        match tokio::task::spawn_blocking(move || store.record_manifest(&site, &m2)).await {
            Ok(Ok(ManifestStatus::Complete { instances })) => {
                info!(study_uid = %m.study_uid, instances, "study complete");
                ctx.hub.study_progress(&m.study_uid);
                ManifestReply::Complete
            }
            Ok(Ok(ManifestStatus::Pending { missing })) => ManifestReply::Pending { missing },
            Ok(Ok(ManifestStatus::NoManifest)) | Ok(Err(_)) | Err(_) => {
                ManifestReply::Refused(Refusal {
                    code: RefuseCode::Internal,
                    reason: "the relay could not record the manifest; try again".into(),
                })
            }
        }
    };
    audit(
        ctx,
        peer,
        AuditAction::Manifest,
        Some(m.study_uid.clone()),
        None,
        match &reply {
            ManifestReply::Complete => "complete",
            ManifestReply::Pending { .. } => "pending",
            ManifestReply::Refused(_) => "refused",
        },
        Some(format!("{} instances listed", m.sop_uids.len())),
    )
    .await;
    let _ = send.write_chunk(encode_frame(&reply)).await;
    let _ = send.finish();
}

/// After an instance of `study_uid` was stored: if the study is now complete, tell readers.
pub(crate) async fn study_progress(ctx: &Arc<Ctx>, study_uid: &str) {
    let store = ctx.store.clone();
    let s = study_uid.to_string();
    let status = tokio::task::spawn_blocking(move || store.manifest_status(&s)).await;
    if let Ok(Ok(ManifestStatus::Complete { instances })) = status {
        info!(study_uid, instances, "study complete");
        ctx.hub.study_progress(study_uid);
    }
}
