//! Wiring: the local store and ingest, the DIMSE door, the forwarder, the clock, shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use yilian_client::ClientConfig;
use yilian_dimse_door::{Callers, DimseDoor, DoorConfig, MAX_ASSOCIATIONS};
use yilian_ingest::{GateConfig, Ingest, IngestConfig};
use yilian_store::Store;
use yilian_transport::PeerIdentity;

use crate::forward::Forwarder;
use crate::studies::StudyBook;
use crate::topology::Local;
use crate::GatewayError;

/// The AE title consoles call by default.
pub const DEFAULT_AE_TITLE: &str = "YILIAN_GW";
/// How long a shutdown waits for C-STOREs in progress.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What a gateway needs.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The county relay and this gateway's certificate (its identity: the site every console
    /// sends as).
    pub client: ClientConfig,
    /// The spool (objects, index, audit) and the forwarder's records.
    pub data_dir: PathBuf,
    /// TCP address of the DIMSE SCP.
    pub dimse_listen: SocketAddr,
    /// Our AE title (what consoles put as called AE title).
    pub ae_title: String,
    /// Calling AE titles allowed; `None`: any.
    pub calling_aes: Option<Vec<String>>,
    /// A study is complete once no instance of it arrived for this long.
    pub quiet_period: Duration,
    /// A DIMSE peer silent this long mid-operation is aborted.
    pub dimse_idle_timeout: Duration,
    /// Below this much free space in the data directory, C-STOREs are refused (out of
    /// resources) until space returns.
    pub min_free_bytes: u64,
    /// Largest instance accepted.
    pub max_instance_bytes: u64,
    /// How long an image the county relay acknowledged is kept here; then it is removed
    /// (`Store::prune_delivered`). Refused images are never removed.
    pub keep: Duration,
}

impl GatewayConfig {
    /// Defaults for everything but the relay, the certificate and the data folder.
    pub fn new(client: ClientConfig, data_dir: PathBuf) -> GatewayConfig {
        GatewayConfig {
            client,
            data_dir,
            dimse_listen: SocketAddr::from(([127, 0, 0, 1], 11112)),
            ae_title: DEFAULT_AE_TITLE.to_string(),
            calling_aes: None,
            quiet_period: Duration::from_secs(30),
            dimse_idle_timeout: Duration::from_secs(60),
            min_free_bytes: 1 << 30,
            max_instance_bytes: 8 << 30,
            keep: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A bound gateway (see the crate docs).
pub struct Gateway {
    config: GatewayConfig,
    identity: PeerIdentity,
    local: Local,
    ingest: Arc<Ingest>,
    book: StudyBook,
    listener: Mutex<Option<std::net::TcpListener>>,
    dimse_addr: SocketAddr,
}

impl Gateway {
    /// Read the certificate's identity, open the spool, bind the DIMSE port.
    pub fn bind(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let identity = config
            .client
            .tls
            .identity()
            .map_err(|e| GatewayError::Identity(format!("the gateway's certificate: {e}")))?;
        let local = Local::for_identity(&identity)?;
        if !yilian_route::is_valid_ae_title(&config.ae_title) {
            return Err(GatewayError::Config(format!(
                "AE title {:?} is not valid: 1-16 printable ASCII characters, no backslash",
                config.ae_title
            )));
        }
        for ae in config.calling_aes.iter().flatten() {
            if !yilian_route::is_valid_ae_title(ae) {
                return Err(GatewayError::Config(format!(
                    "calling AE title {ae:?} is not valid: 1-16 printable ASCII characters, no backslash"
                )));
            }
        }
        if config.quiet_period < Duration::from_secs(1) {
            return Err(GatewayError::Config(
                "the quiet period must be at least 1s (consoles pause between images)".into(),
            ));
        }
        let store = Arc::new(Store::open(&config.data_dir)?);
        let book = StudyBook::open(&config.data_dir.join("gateway").join("studies"))
            .map_err(|e| GatewayError::Config(format!("{}: {e}", config.data_dir.display())))?;
        let ingest = Arc::new(Ingest::new(
            store,
            Arc::new(local.topology.clone()),
            IngestConfig {
                max_instance_bytes: config.max_instance_bytes,
                checkpoint_bytes: 16 << 20,
                checkpoint_interval: Duration::from_secs(1),
                gate: GateConfig {
                    // Every console acts as the gateway's one identity.
                    uploads_per_identity: MAX_ASSOCIATIONS,
                    idle_timeout: config.dimse_idle_timeout * 2,
                    ..GateConfig::default()
                },
                min_free_bytes: config.min_free_bytes,
                quiet_period: config.quiet_period,
            },
        ));
        let listener = std::net::TcpListener::bind(config.dimse_listen)
            .map_err(|e| GatewayError::Listen(config.dimse_listen, e))?;
        let dimse_addr = listener
            .local_addr()
            .map_err(|e| GatewayError::Listen(config.dimse_listen, e))?;
        Ok(Gateway {
            config,
            identity,
            local,
            ingest,
            book,
            listener: Mutex::new(Some(listener)),
            dimse_addr,
        })
    }

    /// The DIMSE address bound.
    pub fn dimse_addr(&self) -> SocketAddr {
        self.dimse_addr
    }

    /// The identity of the certificate (consoles send as its site).
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }

    /// The local spool.
    pub fn store(&self) -> Arc<Store> {
        self.ingest.store.clone()
    }

    /// The local reader whose outbox is forwarded.
    pub fn upstream_reader(&self) -> &str {
        &self.local.reader
    }

    /// Serve until `shutdown` completes; then stop accepting associations, let the C-STOREs in
    /// progress finish (up to [`DRAIN_TIMEOUT`]) and stop forwarding (what was not forwarded
    /// stays spooled and goes after the next start, resuming where the relay stands).
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        // C-STOREs acknowledged before the last stop but not yet committed (sealed).
        yilian_ingest::sealed::recover(&self.ingest).await;
        // Files a crash left between a prune's rows and its file removals. Before the door
        // opens: a C-STORE's file is linked into the spool a moment before its row exists.
        let store = self.ingest.store.clone();
        match tokio::task::spawn_blocking(move || store.sweep_unreferenced_objects()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(
                files = n,
                "removed files a crash left behind while removing forwarded images"
            ),
            Ok(Err(e)) => warn!("sweeping the spool for unreferenced files failed: {e}"),
            Err(e) => warn!("sweeping the spool for unreferenced files failed: {e}"),
        }
        let std_listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let door = Arc::new(DimseDoor::new(
            self.ingest.clone(),
            DoorConfig {
                ae_title: self.config.ae_title.clone(),
                idle_timeout: self.config.dimse_idle_timeout,
                callers: Callers::Fixed {
                    principal: self.local.principal.clone(),
                    allowed: self.config.calling_aes.clone(),
                },
            },
        ));
        let door_task = match std_listener.map(yilian_dimse::tcp::Listener::from_std) {
            Some(Ok(l)) => Some(tokio::spawn(door.run(l))),
            Some(Err(e)) => {
                warn!("DIMSE listener failed: {e}");
                None
            }
            None => None,
        };
        let forwarder = Arc::new(Forwarder {
            ingest: self.ingest.clone(),
            client: self.config.client.clone(),
            reader: self.local.reader.clone(),
            site: self.identity.site.clone(),
            book: self.book.clone(),
        });
        let forward_task = tokio::spawn(forwarder.run());
        let tick_task = tokio::spawn(tick(self.ingest.clone()));
        let prune_task = tokio::spawn(prune(
            self.ingest.clone(),
            self.config.keep,
            format!("{} (retention)", self.identity.name),
        ));
        info!(
            dimse = %self.dimse_addr,
            ae_title = %self.config.ae_title,
            calling_aes = ?self.config.calling_aes,
            identity = %self.identity.name,
            site = %self.identity.site,
            relay = %self.config.client.relay,
            data = %self.config.data_dir.display(),
            quiet_period = ?self.config.quiet_period,
            keep = %humantime::format_duration(self.config.keep),
            "yilian gateway ready"
        );
        shutdown.await;
        info!("shutting down: no new associations; letting C-STOREs in progress finish");
        if let Some(t) = door_task {
            t.abort();
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.ingest.uploads_in_gate() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last C-STORE-RSP leaves right after its upload left the gate.
        tokio::time::sleep(Duration::from_millis(100)).await;
        forward_task.abort();
        tick_task.abort();
        prune_task.abort();
        let left = self.ingest.uploads_in_gate();
        if left > 0 {
            warn!(
                uploads = left,
                "stopped with C-STOREs still in progress (not acknowledged; the console sends them again)"
            );
        }
        yilian_ingest::sealed::settle(&self.ingest).await;
        info!("gateway stopped");
    }
}

/// The ingest's clock (quiet studies, idle uploads) and the free-space watch.
async fn tick(ingest: Arc<Ingest>) {
    let mut t = tokio::time::interval(Duration::from_millis(250));
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        ingest.tick();
        let i = ingest.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || i.storage.check()).await {
            warn!("free-space check failed: {e}");
        }
    }
}

/// Remove what the county relay acknowledged more than `keep` ago, looking every `keep / 4`
/// (between a second and an hour).
async fn prune(ingest: Arc<Ingest>, keep: Duration, actor: String) {
    let every = (keep / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let cutoff = now.saturating_sub(keep).as_millis() as i64;
        let (store, a) = (ingest.store.clone(), actor.clone());
        match tokio::task::spawn_blocking(move || store.prune_delivered(cutoff, &a)).await {
            Ok(Ok(p)) if p.instances > 0 => info!(
                instances = p.instances,
                bytes = p.bytes,
                keep = %humantime::format_duration(keep),
                "removed images the county relay acknowledged longer ago than --keep"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!("removing forwarded images failed: {e}; trying again later"),
            Err(e) => warn!("removing forwarded images failed: {e}"),
        }
    }
}
