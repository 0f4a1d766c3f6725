//! The relay: QUIC endpoint, peer admission, stream dispatch, manifests, stats.

use bytes::BytesMut;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;
use tracing::{debug, info, warn};
use yilian_proto::{encode_frame, FrameDecoder, Refusal, RefuseCode, Request};
use yilian_route::Topology;
use yilian_store::{AuditAction, Store, StoreOptions};
use yilian_transport::{explain_handshake_failure, peer_identity, peer_serial, PeerIdentity, Role};

use crate::audit::record as audit;
use crate::config::RelayConfig;
use crate::ctx::Ctx;
use crate::delivery::reader_session;
use crate::dev_certs::DevCertsRefused;
use crate::manifest::manifest;
use crate::quic_upload::upload;
use crate::reload::{ReloadError, ReloadSummary};
use crate::reload_state::Reloadable;
use crate::subscriptions::{
    answers, refusal, taken_over_reason, Claim, Subscription, PROBE_WINDOW,
};
use yilian_ingest::{GateConfig, Ingest, IngestConfig, Metrics};

pub use crate::close;

/// How long a new stream may take to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors starting the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot open the data directory: {0}")]
    Store(#[from] yilian_store::StoreError),
    #[error("cannot listen: {0}")]
    Transport(#[from] yilian_transport::TransportError),
    #[error("cannot create the QUIC reset key {0}: {1}")]
    ResetKey(std::path::PathBuf, String),
    #[error(transparent)]
    DevCerts(#[from] DevCertsRefused),
    #[error("cannot listen for DICOM (DIMSE) on {0}: {1}")]
    Dimse(SocketAddr, std::io::Error),
    #[error("cannot serve DICOM TLS on {0}: the [tls] certificates do not load: {1}")]
    DimseTls(SocketAddr, String),
    #[error("cannot serve HTTPS on {0}: {1}")]
    Http(SocketAddr, String),
    #[error(transparent)]
    Tokens(#[from] yilian_web::token::TokenError),
}

/// A bound relay. [`Relay::run`] serves until [`Relay::close`].
pub struct Relay {
    ctx: Arc<Ctx>,
    endpoint: Endpoint,
    /// The DIMSE listener, when `[dimse] listen` is set.
    dimse: std::sync::Mutex<Option<std::net::TcpListener>>,
    dimse_addr: Option<SocketAddr>,
    /// The DICOM TLS listener and its configuration, when `[dimse] tls_listen` is set.
    dimse_tls: std::sync::Mutex<Option<(std::net::TcpListener, Arc<yilian_dimse_door::TlsConfig>)>>,
    /// The HTTPS front door (DICOMweb), when `[http] listen` is set and bound.
    http: std::sync::Mutex<Option<HttpDoor>>,
    http_addr: Option<SocketAddr>,
}

/// What the HTTPS front door is started with.
struct HttpDoor {
    listener: std::net::TcpListener,
    tls: Arc<yilian_web::TlsSwitch>,
    state: Arc<yilian_web::WebState>,
}

impl Relay {
    /// Open the spool and bind the QUIC endpoint.
    ///
    /// Refuses to serve the development certificates on a network address unless
    /// `allow_dev_certs` (see `dev_certs.rs`).
    pub fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
        crate::dev_certs::check_and_warn(&config)?;
        raise_fd_limit();
        let store = Arc::new(Store::open_with(
            &config.data_dir,
            StoreOptions {
                partial_bytes_per_site: config.limits.partial_bytes_per_site,
                ready_files: config.ready_files,
                ..StoreOptions::default()
            },
        )?);
        let reset_key = reset_key(&config.data_dir)?;
        let ingest = Arc::new(Ingest::new(
            store,
            config.topology.clone(),
            IngestConfig {
                max_instance_bytes: config.limits.max_instance_bytes,
                checkpoint_bytes: config.checkpoint_bytes,
                checkpoint_interval: config.checkpoint_interval,
                gate: GateConfig {
                    uploads_per_identity: config.limits.uploads_per_identity,
                    idle_timeout: config.limits.upload_idle_timeout,
                    ..GateConfig::default()
                },
                min_free_bytes: config.limits.min_free_bytes,
                quiet_period: config.dimse.quiet_period,
            },
        ));
        let endpoint = yilian_transport::server_endpoint_with_reset_key(
            config.listen,
            &config.tls,
            &config.tuning,
            Some(&reset_key),
            &config.crls,
        )?;
        crate::reload::warn_out_of_date(&config.crls);
        let dimse = match config.dimse.listen {
            Some(addr) => {
                Some(std::net::TcpListener::bind(addr).map_err(|e| RelayError::Dimse(addr, e))?)
            }
            None => None,
        };
        let dimse_addr =
            match &dimse {
                Some(l) => Some(l.local_addr().map_err(|e| {
                    RelayError::Dimse(config.dimse.listen.unwrap_or(config.listen), e)
                })?),
                None => None,
            };
        let dimse_tls = match config.dimse.tls_listen {
            Some(addr) => {
                let tls = crate::dicom_tls::server_config(&config.tls, &config.crls)
                    .map_err(|e| RelayError::DimseTls(addr, e.to_string()))?;
                let l =
                    std::net::TcpListener::bind(addr).map_err(|e| RelayError::Dimse(addr, e))?;
                Some((l, Arc::new(yilian_dimse_door::TlsConfig::new(tls))))
            }
            None => None,
        };
        let dicom_tls = dimse_tls.as_ref().map(|(_, c)| c.clone());
        let budget = crate::budget::DeliveryBudget::new(
            config.delivery_buffer_budget,
            config.tuning.send_window,
        );
        let ecg = crate::ecg::EcgSessions::new(config.ecg.clone());
        let http = http_door(&config, &ingest)?;
        let http_addr = http.as_ref().and_then(|h| h.listener.local_addr().ok());
        let http_tls = http.as_ref().map(|h| h.tls.clone());
        Ok(Relay {
            ctx: Arc::new(Ctx {
                current: Reloadable::new(&config),
                config,
                ingest,
                connections: Arc::default(),
                subscriptions: Arc::default(),
                budget: Arc::new(budget),
                dicom_tls,
                ecg,
                uplinks: Arc::default(),
                http_tls,
            }),
            endpoint,
            dimse: std::sync::Mutex::new(dimse),
            dimse_addr,
            dimse_tls: std::sync::Mutex::new(dimse_tls),
            http: std::sync::Mutex::new(http),
            http_addr,
        })
    }

    /// The HTTPS address (DICOMweb at `/dicomweb`), when HTTPS is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The DIMSE address, when DIMSE is on.
    pub fn dimse_addr(&self) -> Option<SocketAddr> {
        self.dimse_addr
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.ctx.ingest.metrics.clone()
    }

    pub fn store(&self) -> Arc<Store> {
        self.ctx.ingest.store.clone()
    }

    /// Stop accepting and close every connection.
    pub fn close(&self) {
        self.endpoint
            .close(VarInt::from_u32(close::SHUTDOWN), b"relay shutting down");
    }

    /// Serve until closed. Reloads the topology and CRL files when they change.
    pub async fn run(&self) {
        // Uploads acknowledged before a crash but not yet committed (`yilian_ingest::sealed`).
        yilian_ingest::sealed::recover(&self.ctx.ingest).await;
        // Studies sent without a manifest before the last stop (their quiet period restarts).
        self.ctx.ingest.rearm_quiet_studies().await;
        let stats = tokio::spawn(log_stats(self.ctx.clone()));
        let ticks = tokio::spawn(tick(self.ctx.clone()));
        let sweeps = tokio::spawn(sweep_partials(self.ctx.clone()));
        let uplink_orders = tokio::spawn(crate::uplink::renew_orders(self.ctx.uplinks.clone()));
        let watch = tokio::spawn(crate::reload::watch(
            self.ctx.clone(),
            self.endpoint.clone(),
        ));
        // Push AEs of the topology in force (reloads add and remove them).
        let egress = tokio::spawn(crate::dimse_egress::run(self.ctx.clone()));
        let dimse = &self.ctx.config.dimse;
        // One door for the plain and the TLS port (they share the association slots).
        let door = Arc::new(yilian_dimse_door::DimseDoor::new(
            self.ctx.ingest.clone(),
            yilian_dimse_door::DoorConfig {
                ae_title: dimse.ae_title.clone(),
                idle_timeout: dimse.idle_timeout,
                callers: yilian_dimse_door::Callers::Topology,
            },
        ));
        let mut doors = Vec::new();
        let plain = self.dimse.lock().unwrap_or_else(|p| p.into_inner()).take();
        match plain.map(yilian_dimse::tcp::Listener::from_std) {
            Some(Ok(listener)) => doors.push(tokio::spawn(door.clone().run(listener))),
            Some(Err(e)) => warn!("DICOM (DIMSE) listener failed: {e}; DIMSE is off"),
            None => {}
        }
        let tls = self
            .dimse_tls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((l, config)) = tls {
            match yilian_dimse::tcp::Listener::from_std(l) {
                Ok(listener) => doors.push(tokio::spawn(door.clone().run_tls(listener, config))),
                Err(e) => warn!("DICOM TLS listener failed: {e}; DICOM TLS is off"),
            }
        }
        let http = self.http.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = http {
            match yilian_web::WebServer::from_std(h.listener, h.tls, h.state) {
                Ok(web) => doors.push(tokio::spawn(web.run())),
                Err(e) => warn!("HTTPS listener failed: {e}; HTTPS is off"),
            }
        }
        while let Some(incoming) = self.endpoint.accept().await {
            tokio::spawn(admit(self.ctx.clone(), incoming));
        }
        stats.abort();
        ticks.abort();
        sweeps.abort();
        uplink_orders.abort();
        watch.abort();
        egress.abort();
        for d in doors {
            d.abort();
        }
        self.endpoint.wait_idle().await;
        // Object names of the last sealed commits made durable, their pooled copies removed.
        yilian_ingest::sealed::settle(&self.ctx.ingest).await;
    }

    /// Read the topology and CRL files again and put them in force (what SIGHUP does); on any
    /// error nothing changes. Closes the live connections the new files no longer admit. Log
    /// the outcome with [`crate::reload::log_reload`].
    pub async fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        crate::reload::reload(&self.ctx, &self.endpoint).await
    }

    /// The topology in force now.
    pub fn topology(&self) -> Arc<Topology> {
        self.ctx.topology()
    }
}

/// Bind the HTTPS front door of `[http]`: its listener, TLS and token key. The default address
/// being taken (another relay on this machine) is not fatal: the relay runs without HTTPS.
fn http_door(config: &RelayConfig, ingest: &Arc<Ingest>) -> Result<Option<HttpDoor>, RelayError> {
    let Some(addr) = config.http.listen else {
        return Ok(None);
    };
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) if config.http.default_listen && e.kind() == std::io::ErrorKind::AddrInUse => {
            warn!(
                "HTTPS (DICOMweb) is off: the default address {addr} is in use (another relay on this machine?); set [http] listen or --http-listen to serve it elsewhere"
            );
            return Ok(None);
        }
        Err(e) => return Err(RelayError::Http(addr, e.to_string())),
    };
    let tls = yilian_transport::https_server_config(&config.tls, &config.crls)
        .map_err(|e| RelayError::Http(addr, e.to_string()))?;
    let tokens = yilian_web::token::Tokens::open(&config.data_dir)?;
    Ok(Some(HttpDoor {
        listener,
        tls: Arc::new(yilian_web::TlsSwitch::new(tls)),
        state: Arc::new(yilian_web::WebState {
            ingest: ingest.clone(),
            tokens,
            viewer_dir: config.http.viewer_dir.clone(),
            cors_origins: config.http.cors_origins.clone(),
        }),
    }))
}

/// Once a second: the gate's clock (idle uploads), free space.
async fn tick(ctx: Arc<Ctx>) {
    let every = (ctx.ingest.gate_config().idle_timeout / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        ctx.ingest.tick();
        let c = ctx.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || c.ingest.storage.check()).await {
            warn!("free-space check failed: {e}");
        }
    }
}

/// At start and every hour: remove unfinished uploads nobody resumed within
/// `limits.partial_retention`.
async fn sweep_partials(ctx: Arc<Ctx>) {
    let retention = ctx.config.limits.partial_retention;
    let mut t =
        tokio::time::interval(Duration::from_secs(3600).min(retention.max(Duration::from_secs(1))));
    loop {
        t.tick().await;
        let store = ctx.ingest.store.clone();
        match tokio::task::spawn_blocking(move || store.sweep_partials(retention)).await {
            Ok(0) => {}
            Ok(n) => {
                info!(removed = n, retention = ?retention, "removed unfinished uploads nobody resumed (limits.partial_retention)")
            }
            Err(e) => warn!("sweeping unfinished uploads failed: {e}"),
        }
    }
}

/// Raise the soft limit on open files to the hard limit: every upload holds two, every
/// delivery one (per-identity caps bound how many one peer can make the relay hold).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid out-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                warn!("cannot raise the open-files limit; set `ulimit -n` higher for busy relays");
            }
        }
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
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&k)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(data_dir)?.sync_all()
    };
    write().map_err(|e| RelayError::ResetKey(path.clone(), e.to_string()))?;
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
        let m = ctx.ingest.metrics.snapshot();
        let store = ctx.ingest.store.clone();
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
            in_gate = ctx.ingest.uploads_in_gate(),
            storage_full = ctx.ingest.storage.is_full(),
            connections = ctx.connections.len(),
            ecg_sessions = ctx.ecg.count(),
            readers = ?ctx.ingest.hub.connected_readers(), queues = ?queues,
            "relay stats"
        );
        if m.audit_failures > 0 {
            tracing::error!(
                audit_failures = m.audit_failures,
                "audit entries could not be written since start (see the errors above)"
            );
        }
    }
}

/// Handshake, identity check against the topology, then serve the connection's streams.
async fn admit(ctx: Arc<Ctx>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            Metrics::add(&ctx.ingest.metrics.connections_refused, 1);
            warn!(%remote, "refused a connection: {}", explain_handshake_failure(&e));
            return;
        }
    };
    let (peer, serial) = match peer_identity(&conn).and_then(|p| Ok((p, peer_serial(&conn)?))) {
        Ok(p) => p,
        Err(e) => {
            Metrics::add(&ctx.ingest.metrics.connections_refused, 1);
            warn!(%remote, "refused a connection: {e}");
            conn.close(
                VarInt::from_u32(close::UNKNOWN_IDENTITY),
                format!("refused: {e}").as_bytes(),
            );
            return;
        }
    };
    let peer = Arc::new(peer);
    // Registered before the check: a reload that swaps the topology after the check finds the
    // connection in its sweep.
    let _registered = ctx
        .connections
        .register(peer.clone(), serial.clone(), conn.clone());
    if let Err(refusal) = crate::revocation::admission(&ctx.topology(), &peer, &serial) {
        let detail = crate::revocation::audit_detail(&refusal, &serial);
        refuse_connection(
            &ctx,
            &conn,
            &peer,
            refusal.code,
            &refusal.reason,
            refusal.outcome,
            detail,
        )
        .await;
        return;
    }
    let open = ctx.connections.count(&peer.name);
    let cap = ctx.config.limits.connections_per_identity;
    if open > cap {
        let reason = format!(
            "{} already has {} connections open to this relay (limits.connections_per_identity = {cap}); close some first (is `yilian send` running many times at once with this certificate?)",
            peer.name,
            open - 1
        );
        let detail = Some(remote.to_string());
        refuse_connection(
            &ctx,
            &conn,
            &peer,
            close::TOO_MANY,
            &reason,
            "too-many-connections",
            detail,
        )
        .await;
        return;
    }
    let conn_id = yilian_ingest::next_conn();
    info!(
        peer = %peer, %serial, %remote,
        connections = open,
        "peer connected"
    );
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
    // After a cut link heals, a probe leaves within a second (QUIC's own backs off to
    // minutes).
    ctx.config.tuning.revive(&conn);
    if peer.role == Role::Device {
        // Live ECG frames a cart sends as datagrams (see `ecg.rs`).
        tokio::spawn(crate::ecg::serve_datagrams(
            ctx.clone(),
            conn.clone(),
            peer.clone(),
        ));
    }
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(
                    ctx.clone(),
                    conn.clone(),
                    conn_id,
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

/// Close an admitted connection with `reason` (what the peer's `send`/`read` shows), counted,
/// logged and audited.
async fn refuse_connection(
    ctx: &Arc<Ctx>,
    conn: &Connection,
    peer: &PeerIdentity,
    code: u32,
    reason: &str,
    outcome: &str,
    detail: Option<String>,
) {
    Metrics::add(&ctx.ingest.metrics.connections_refused, 1);
    warn!(remote = %conn.remote_address(), "refused a connection: {reason}");
    audit(ctx, peer, AuditAction::Connect, None, None, outcome, detail).await;
    conn.close(VarInt::from_u32(code), reason.as_bytes());
}

async fn serve_stream(
    ctx: Arc<Ctx>,
    conn: Connection,
    conn_id: u64,
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
            refuse_stream(&peer, &mut send, r).await;
            return;
        }
        Err(_) => {
            debug!(peer = %peer.name, "a stream sent no request within {FIRST_FRAME_TIMEOUT:?}: reset");
            // The stream is being dropped; a peer that already reset it needs nothing more.
            let _ = send.reset(VarInt::from_u32(1));
            return;
        }
    };
    match req {
        Request::Offer(offer) => {
            // While the site has an urgent ECG live, this connection is told to yield.
            let _uploading = ctx.uplinks.uploading(conn_id, &peer.site, conn.clone());
            upload(ctx, conn_id, peer, send, recv, offer, dec).await
        }
        Request::Manifest(m) => manifest(&ctx, &peer, &mut send, recv, m, dec).await,
        Request::EcgSource => crate::ecg::serve_source(ctx, peer, send, recv, dec).await,
        Request::EcgWatch => crate::ecg::serve_watch(ctx, peer, send, recv, dec).await,
        Request::Subscribe(sub) => {
            let pushed = ctx
                .topology()
                .push_ae_for(&peer.name)
                .map(|ae| ae.title.clone());
            if let Some(title) = pushed {
                // One outbox, one deliverer: the DIMSE egress drains it. Closing the connection
                // (a final close code) tells `read` to stop with the reason instead of retrying.
                let reason = format!(
                    "{} is delivered by DIMSE to AE {title} ([[ae]] push = true in the topology) and cannot subscribe over QUIC; remove push from that AE to read with this identity",
                    peer.name
                );
                warn!(peer = %peer.name, "subscription refused: {reason}");
                audit(
                    &ctx,
                    &peer,
                    AuditAction::Subscribe,
                    None,
                    None,
                    "push-ae",
                    Some(format!("AE {title}")),
                )
                .await;
                conn.close(VarInt::from_u32(close::PUSH_READER), reason.as_bytes());
            } else if peer.role == Role::Reader {
                // Held for the session's lifetime: this connection is the reader's one
                // subscription until it ends.
                let Some(_subscribed) = subscribe(&ctx, &conn, conn_id, &peer, &mut send).await
                else {
                    return;
                };
                reader_session(ctx, conn, peer, send, recv, sub).await;
            } else {
                let r = Refusal {
                    code: RefuseCode::Unauthorized,
                    reason: format!(
                        "{} is not a reader identity and cannot subscribe",
                        peer.name
                    ),
                };
                refuse_stream(&peer, &mut send, r).await;
            }
        }
    }
}

/// Take `peer`'s one subscription for `conn` (`subscriptions.rs`): at once if nobody holds it,
/// from a holder that no longer answers, or not at all (`None`: the connection was closed with
/// the reason, which names where and since when the holder is connected; audited).
async fn subscribe(
    ctx: &Arc<Ctx>,
    conn: &Connection,
    conn_id: u64,
    peer: &PeerIdentity,
    send: &mut SendStream,
) -> Option<Subscription> {
    let remote = conn.remote_address();
    let mut holder = match ctx
        .subscriptions
        .claim(&peer.name, conn_id, remote, conn.clone())
    {
        Claim::Granted(s) => return Some(s),
        Claim::Again => {
            let r = Refusal {
                code: RefuseCode::Busy,
                reason: "this connection is already subscribed".into(),
            };
            refuse_stream(peer, send, r).await;
            return None;
        }
        Claim::Held(h) => h,
    };
    if !answers(&holder.conn).await {
        let reason = taken_over_reason(&peer.name, remote);
        match ctx.subscriptions.take_over(
            &peer.name,
            &holder,
            conn_id,
            remote,
            conn.clone(),
            &reason,
        ) {
            Ok(s) => {
                info!(
                    reader = %peer.name, %remote, previous = %holder.remote,
                    "the reader's previous connection did not answer for {} s: closed it, this one takes over the subscription",
                    PROBE_WINDOW.as_secs()
                );
                return Some(s);
            }
            Err(h) => holder = h,
        }
    }
    let reason = refusal(&peer.name, &holder, SystemTime::now());
    warn!(reader = %peer.name, %remote, "subscription refused: {reason}");
    audit(
        ctx,
        peer,
        AuditAction::Subscribe,
        None,
        None,
        "already-subscribed",
        Some(format!("{remote}; held by {}", holder.remote)),
    )
    .await;
    conn.close(
        VarInt::from_u32(close::SUBSCRIBED_ELSEWHERE),
        reason.as_bytes(),
    );
    None
}

/// Tell the peer why its stream is refused, and end it. A peer that is already gone cannot be
/// told: that is logged, not an error of the relay's.
async fn refuse_stream(peer: &PeerIdentity, send: &mut SendStream, r: Refusal) {
    warn!(peer = %peer.name, code = %r.code, "stream refused: {}", r.reason);
    let told = send
        .write_chunk(encode_frame(&yilian_proto::Reply::Refused(r)))
        .await
        .map_err(|e| e.to_string())
        .and_then(|_| send.finish().map_err(|e| e.to_string()));
    if let Err(e) = told {
        debug!(peer = %peer.name, "could not tell the peer: {e}");
    }
}
