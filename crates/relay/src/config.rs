//! The relay's configuration: one TOML file, every key optional.
//!
//! ```toml
//! listen = "127.0.0.1:4433"        # UDP address for QUIC
//! data_dir = "yilian-data"         # spool, index, audit log
//! topology = "topology.toml"       # alliance topology (default: the embedded example); its
//!                                  # [[revoked]] entries are the deny list. Reloaded on SIGHUP
//!                                  # and when the file changes (polled every 2 s)
//! allow_dev_certs = false          # true = serve the DEVELOPMENT certificates on a network
//!                                  # address anyway (a lab without patient data only; top of
//!                                  # the file, before any [section])
//!
//! [tls]                            # default: the embedded development certificates
//! cert = "county-relay.pem"
//! key = "county-relay.key"
//! ca = "ca.pem"
//! crl = ["alliance.crl"]           # revocation lists from the alliance CA (PEM or DER);
//!                                  # reloaded like the topology
//!
//! [transport]                      # defaults suit township links up to a county ↔ province
//! congestion = "bdp"               # bdp | bbr | cubic | newreno (BENCHMARKING.md: the choice)
//! stream_window = 8388608          # bytes one upload may have in flight (≥ rate × RTT: 8 MiB
//!                                  # carries 1 Gbit/s at 60 ms, 100 Mbit/s at 600 ms)
//! connection_window = 33554432     # bytes all uploads of one connection may have in flight
//! send_window = 16777216           # unacknowledged bytes the relay buffers per delivery connection
//! keep_alive = "5s"                # keeps NAT mappings open (they expire after 30 s or more)
//! idle_timeout = "60s"             # a silent connection survives outages this long; after
//!                                  # that clients reconnect and resume at acknowledged offsets
//!
//! [limits]                         # what one peer may take; refusals say which key to raise
//! max_instance_bytes = 8589934592  # larger offers are refused
//! connections_per_identity = 16    # QUIC connections one certificate may hold open at once
//! uploads_per_identity = 64        # uploads one certificate may have in progress at once
//! upload_idle_timeout = "120s"     # an accepted upload that sends nothing this long is dropped
//!                                  # (what arrived is kept for its resumption)
//! partial_retention = "7d"         # unfinished uploads nobody resumed are removed after this
//! partial_bytes_per_site = 68719476736  # unfinished uploads one site may leave (64 GiB)
//! max_manifest_instances = 100000  # instances one study's manifest may list
//! min_free_bytes = 1073741824      # below this much free disk, new uploads are refused
//!
//! [spool]
//! checkpoint_bytes = 16777216      # fsync (and tell the sender) at least every this many bytes
//! checkpoint_interval = "1s"       # … or this often on slow links
//! ready_files = 512                # empty files kept made for uploads of unknown size (C-STORE,
//!                                  # STOW-RS), so a burst does not wait for file creations
//!
//! [delivery]
//! concurrent_per_reader = 8        # instances in flight to one reader
//! buffer_budget = 16777216         # bytes of delivery buffers all connected readers share: each
//!                                  # reader connection may hold budget / readers unacknowledged
//!                                  # (at least 1 MiB, at most transport.send_window)
//!
//! [dimse]                          # DICOM DIMSE for consoles and workstations (off by default)
//! listen = "0.0.0.0:11112"         # TCP address; callers are the [[ae]] of the topology
//! ae_title = "YILIAN"              # the relay's own AE title (what callers put as called AE)
//! tls_listen = "0.0.0.0:2762"      # optional: DICOM TLS with the [tls] certificates
//! quiet_period = "30s"             # a study with no new instance from a device for this long
//!                                  # is complete (C-STORE has no "study done")
//! idle_timeout = "60s"             # a peer silent this long mid-association is aborted
//! egress_associations = 4          # associations in parallel to each push AE ([[ae]] with
//!                                  # push = true: the relay C-STOREs its reader's outbox to it)
//!
//! [ecg]                            # live ECG timing; see config_ecg.rs (all optional)
//! grace = "60s"                    # a cart that went away may come back this long
//!
//! [http]                           # HTTPS: DICOMweb for viewers at /dicomweb
//! listen = "127.0.0.1:8443"        # the default; "off" for none (config_http.rs)
//!
//! [log]
//! stats_interval = "30s"           # counters and queue depths in the log
//! ```
//!
//! # Development certificates
//! Without `[tls]` the relay serves the development certificates of `certs-dev/`, whose private
//! keys are published with the source: anyone can present them and be any identity. The relay
//! therefore refuses to start with them — or with a `[tls] ca` that is the development CA (the
//! certificate is compared, not the path) — on an address that is not loopback, unless the file
//! says `allow_dev_certs = true`; it then warns at every start (`dev_certs.rs`).
//!
//! # Reloading
//! The topology file and the CRL files are watched (`reload.rs`): on SIGHUP, or a change seen
//! by polling every 2 s, they are read again. A file that does not load changes nothing (the
//! error names it); otherwise new handshakes use the new CRLs, routing uses the new rules, and
//! live connections the new files no longer admit (revoked, or no longer declared) are closed
//! with the reason. Everything else in this file is read at start only.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use yilian_route::Topology;
use yilian_transport::{Congestion, Crls, TlsFiles, TlsPem, Tuning};

/// The file as written by an administrator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub allow_dev_certs: bool,
    pub data_dir: Option<PathBuf>,
    pub topology: Option<PathBuf>,
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub transport: TransportSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub spool: SpoolSection,
    #[serde(default)]
    pub delivery: DeliverySection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub dimse: DimseSection,
    #[serde(default)]
    pub ecg: crate::config_ecg::EcgSection,
    #[serde(default)]
    pub http: crate::config_http::HttpSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimseSection {
    pub listen: Option<SocketAddr>,
    pub ae_title: Option<String>,
    pub tls_listen: Option<SocketAddr>,
    #[serde(default, with = "humantime_serde")]
    pub quiet_period: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    pub egress_associations: Option<usize>,
}

/// The DIMSE front door, resolved (`[dimse]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimseConfig {
    /// TCP address for plain DIMSE; `None`: no DIMSE.
    pub listen: Option<SocketAddr>,
    /// TCP address for DICOM TLS; `None`: none.
    pub tls_listen: Option<SocketAddr>,
    /// The relay's AE title.
    pub ae_title: String,
    /// Quiet period after which a DIMSE study is complete.
    pub quiet_period: Duration,
    /// A peer silent this long mid-association is aborted.
    pub idle_timeout: Duration,
    /// Associations in parallel to each push AE (DIMSE egress).
    pub egress_associations: usize,
}

/// Most associations in parallel to one push AE.
pub const MAX_EGRESS_ASSOCIATIONS: usize = 32;

impl Default for DimseConfig {
    fn default() -> Self {
        DimseConfig {
            listen: None,
            tls_listen: None,
            ae_title: "YILIAN".into(),
            quiet_period: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            egress_associations: 4,
        }
    }
}

impl DimseSection {
    fn resolve(self) -> Result<DimseConfig, ConfigError> {
        let d = DimseConfig::default();
        let c = DimseConfig {
            listen: self.listen,
            tls_listen: self.tls_listen,
            ae_title: self.ae_title.unwrap_or(d.ae_title),
            quiet_period: self.quiet_period.unwrap_or(d.quiet_period),
            idle_timeout: self.idle_timeout.unwrap_or(d.idle_timeout),
            egress_associations: self.egress_associations.unwrap_or(d.egress_associations),
        };
        if !(1..=MAX_EGRESS_ASSOCIATIONS).contains(&c.egress_associations) {
            return Err(ConfigError::Dimse(format!(
                "dimse.egress_associations = {} must be between 1 and {MAX_EGRESS_ASSOCIATIONS} (associations in parallel to each push AE; PACS often cap calls per AE)",
                c.egress_associations
            )));
        }
        if !yilian_route::is_valid_ae_title(&c.ae_title) {
            return Err(ConfigError::Dimse(format!(
                "dimse.ae_title = {:?} is not a valid AE title: 1 to 16 printable ASCII characters without backslash",
                c.ae_title
            )));
        }
        if c.quiet_period < Duration::from_secs(1) {
            return Err(ConfigError::Dimse(
                "dimse.quiet_period must be at least 1s (consoles pause between images)".into(),
            ));
        }
        if c.idle_timeout < Duration::from_secs(1) {
            return Err(ConfigError::Dimse(
                "dimse.idle_timeout must be at least 1s".into(),
            ));
        }
        Ok(c)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    #[serde(default)]
    pub crl: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSection {
    pub congestion: Option<String>,
    pub stream_window: Option<u64>,
    pub connection_window: Option<u64>,
    pub send_window: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub keep_alive: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_instance_bytes: Option<u64>,
    pub connections_per_identity: Option<usize>,
    pub uploads_per_identity: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub upload_idle_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub partial_retention: Option<Duration>,
    pub partial_bytes_per_site: Option<u64>,
    pub max_manifest_instances: Option<u32>,
    pub min_free_bytes: Option<u64>,
}

/// What one peer may take, resolved (see the `[limits]` keys in the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_instance_bytes: u64,
    pub connections_per_identity: usize,
    pub uploads_per_identity: usize,
    pub upload_idle_timeout: Duration,
    pub partial_retention: Duration,
    pub partial_bytes_per_site: u64,
    pub max_manifest_instances: u32,
    pub min_free_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instance_bytes: 8 << 30,
            connections_per_identity: 16,
            uploads_per_identity: 64,
            upload_idle_timeout: Duration::from_secs(120),
            partial_retention: Duration::from_secs(7 * 24 * 3600),
            partial_bytes_per_site: 64 << 30,
            max_manifest_instances: 100_000,
            min_free_bytes: 1 << 30,
        }
    }
}

impl LimitsSection {
    fn resolve(self) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let l = Limits {
            max_instance_bytes: self.max_instance_bytes.unwrap_or(d.max_instance_bytes),
            connections_per_identity: self
                .connections_per_identity
                .unwrap_or(d.connections_per_identity),
            uploads_per_identity: self.uploads_per_identity.unwrap_or(d.uploads_per_identity),
            upload_idle_timeout: self.upload_idle_timeout.unwrap_or(d.upload_idle_timeout),
            partial_retention: self.partial_retention.unwrap_or(d.partial_retention),
            partial_bytes_per_site: self
                .partial_bytes_per_site
                .unwrap_or(d.partial_bytes_per_site),
            max_manifest_instances: self
                .max_manifest_instances
                .unwrap_or(d.max_manifest_instances),
            min_free_bytes: self.min_free_bytes.unwrap_or(d.min_free_bytes),
        };
        let bad = |key: &str, why: String| Err(ConfigError::Limits(format!("limits.{key} {why}")));
        if l.connections_per_identity == 0 {
            return bad("connections_per_identity", "must be at least 1".into());
        }
        if l.uploads_per_identity == 0 {
            return bad("uploads_per_identity", "must be at least 1".into());
        }
        if l.upload_idle_timeout < Duration::from_secs(1) {
            return bad(
                "upload_idle_timeout",
                "must be at least 1s (township links drop for seconds at a time)".into(),
            );
        }
        if l.max_manifest_instances == 0 {
            return bad("max_manifest_instances", "must be at least 1".into());
        }
        if l.partial_bytes_per_site < l.max_instance_bytes {
            return bad(
                "partial_bytes_per_site",
                format!(
                    "({}) must be at least limits.max_instance_bytes ({}), or the largest instance could never upload",
                    l.partial_bytes_per_site, l.max_instance_bytes
                ),
            );
        }
        Ok(l)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    pub checkpoint_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub checkpoint_interval: Option<Duration>,
    pub ready_files: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    pub concurrent_per_reader: Option<usize>,
    pub buffer_budget: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    #[serde(default, with = "humantime_serde")]
    pub stats_interval: Option<Duration>,
}

/// Errors reading the configuration; each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("topology {path}: {source}")]
    Topology {
        path: PathBuf,
        source: yilian_route::TopologyError,
    },
    #[error("TLS material: {0}")]
    Tls(#[from] yilian_transport::TransportError),
    #[error("[tls] crl: {0}")]
    Crl(#[from] yilian_transport::CrlError),
    #[error("config: {0}")]
    Transport(String),
    #[error("config: unknown congestion controller {0:?} (use bbr, bdp, cubic or newreno)")]
    Congestion(String),
    #[error("config: {0}")]
    Limits(String),
    #[error("config: {0}")]
    Delivery(String),
    #[error("config: {0}")]
    Dimse(String),
    #[error("config: {0}")]
    Ecg(String),
    #[error("config: {0}")]
    Http(String),
}

/// Everything the relay runs with, resolved.
#[derive(Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: TlsPem,
    /// Where `tls` came from: `None` = the embedded defaults (no `[tls]`).
    pub tls_files: Option<TlsFiles>,
    /// `allow_dev_certs = true`: the development certificates may serve a network address.
    pub allow_dev_certs: bool,
    /// The topology at start. A running relay reloads it: read the current one from the relay,
    /// never from here.
    pub topology: Arc<Topology>,
    /// The topology file, watched and reloaded (`None`: the embedded default, never reloaded).
    pub topology_path: Option<PathBuf>,
    /// `[tls] crl`, watched and reloaded.
    pub crl_paths: Vec<PathBuf>,
    /// The CRLs at start (loaded from `crl_paths`).
    pub crls: Crls,
    pub tuning: Tuning,
    pub limits: Limits,
    pub checkpoint_bytes: u64,
    pub checkpoint_interval: Duration,
    /// Empty files the store keeps made for uploads of unknown size (`[spool] ready_files`).
    pub ready_files: usize,
    pub concurrent_per_reader: usize,
    /// Bytes of delivery buffers shared by all connected readers (`budget.rs`).
    pub delivery_buffer_budget: u64,
    pub stats_interval: Duration,
    /// The DIMSE front door (`[dimse]`).
    pub dimse: DimseConfig,
    /// Live ECG sessions (`[ecg]`).
    pub ecg: crate::ecg::EcgSettings,
    /// The HTTPS front door (`[http]`).
    pub http: crate::config_http::HttpConfig,
}

/// Defaults used where the file says nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4433";

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            let mut message = e.to_string();
            if message.contains("unknown field `allow_dev_certs`") {
                message.push_str(
                    "\nallow_dev_certs is a top-level key: write it at the top of the file, before any [section]",
                );
            }
            ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            }
        })
    }

    /// Resolve against the built-in defaults (`default_tls`, `default_topology`: the embedded
    /// development certificates and example topology). Relative paths are relative to `base`.
    pub fn resolve(
        self,
        base: &Path,
        default_tls: impl FnOnce() -> TlsPem,
        default_topology: impl FnOnce() -> Topology,
    ) -> Result<RelayConfig, ConfigError> {
        let at = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let (tls, tls_files, crl_paths) = match self.tls {
            Some(t) => {
                let files = TlsFiles {
                    cert: at(t.cert),
                    key: at(t.key),
                    ca: at(t.ca),
                };
                (
                    files.load()?,
                    Some(files),
                    t.crl.into_iter().map(at).collect(),
                )
            }
            None => (default_tls(), None, Vec::new()),
        };
        let crls = Crls::load(&crl_paths, &tls)?;
        let (topology, topology_path) = match self.topology {
            Some(p) => {
                let p = at(p);
                let t = Topology::load(&p).map_err(|source| ConfigError::Topology {
                    path: p.clone(),
                    source,
                })?;
                (t, Some(p))
            }
            None => (default_topology(), None),
        };
        let mut tuning = Tuning::default();
        let t = self.transport;
        if let Some(c) = t.congestion {
            tuning.congestion = c
                .parse::<Congestion>()
                .map_err(|_| ConfigError::Congestion(c.clone()))?;
        }
        let window = |name: &'static str, v: Option<u64>, default: u64| {
            match v {
            Some(v) if v < 64 * 1024 => Err(ConfigError::Transport(format!(
                "transport.{name} = {v} is too small: at least 65536 bytes (and at least rate × RTT of the slowest link you serve)"
            ))),
            Some(v) => Ok(v),
            None => Ok(default),
        }
        };
        tuning.stream_receive_window = window(
            "stream_window",
            t.stream_window,
            tuning.stream_receive_window,
        )?;
        tuning.receive_window = window(
            "connection_window",
            t.connection_window,
            tuning.receive_window,
        )?;
        tuning.send_window = window("send_window", t.send_window, tuning.send_window)?;
        if let Some(k) = t.keep_alive {
            tuning.keep_alive = k;
        }
        if let Some(i) = t.idle_timeout {
            tuning.idle_timeout = i;
        }
        if !tuning.keep_alive.is_zero()
            && !tuning.idle_timeout.is_zero()
            && tuning.keep_alive >= tuning.idle_timeout
        {
            return Err(ConfigError::Transport(format!(
                "transport.keep_alive ({:?}) must be shorter than transport.idle_timeout ({:?}), or connections time out between keep-alives",
                tuning.keep_alive, tuning.idle_timeout
            )));
        }
        let delivery_buffer_budget = match self.delivery.buffer_budget {
            Some(b) if b < crate::budget::FLOOR => {
                return Err(ConfigError::Delivery(format!(
                    "delivery.buffer_budget = {b} is too small: at least {} bytes (1 MiB)",
                    crate::budget::FLOOR
                )))
            }
            Some(b) => b,
            None => crate::budget::DEFAULT_BUDGET,
        };
        let default_listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4433)));
        Ok(RelayConfig {
            listen: self.listen.unwrap_or(default_listen),
            data_dir: self
                .data_dir
                .map(at)
                .unwrap_or_else(|| PathBuf::from("yilian-data")),
            tls,
            tls_files,
            allow_dev_certs: self.allow_dev_certs,
            topology: Arc::new(topology),
            topology_path,
            crl_paths,
            crls,
            tuning,
            limits: self.limits.resolve()?,
            checkpoint_bytes: self.spool.checkpoint_bytes.unwrap_or(16 << 20),
            checkpoint_interval: self
                .spool
                .checkpoint_interval
                .unwrap_or(Duration::from_secs(1)),
            ready_files: self.spool.ready_files.unwrap_or(yilian_store::STOCK),
            concurrent_per_reader: self.delivery.concurrent_per_reader.unwrap_or(8).max(1),
            delivery_buffer_budget,
            stats_interval: self.log.stats_interval.unwrap_or(Duration::from_secs(30)),
            dimse: self.dimse.resolve()?,
            ecg: self.ecg.resolve()?,
            http: self.http.resolve(base)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml_text: &str) -> Result<RelayConfig, ConfigError> {
        let file: ConfigFile = toml::from_str(toml_text).map_err(|e| ConfigError::Parse {
            path: "test.toml".into(),
            message: e.to_string(),
        })?;
        file.resolve(
            Path::new("."),
            || TlsPem {
                cert: String::new(),
                key: String::new(),
                ca: String::new(),
            },
            Topology::example,
        )
    }

    #[test]
    fn transport_section_sets_windows_timers_and_controller() {
        let c = resolve(
            "[transport]\ncongestion = \"cubic\"\nstream_window = 4194304\nconnection_window = 67108864\nsend_window = 8388608\nkeep_alive = \"10s\"\nidle_timeout = \"5m\"\n",
        )
        .unwrap();
        let t = &c.tuning;
        assert_eq!(t.congestion, Congestion::Cubic);
        assert_eq!(t.stream_receive_window, 4 << 20);
        assert_eq!(t.receive_window, 64 << 20);
        assert_eq!(t.send_window, 8 << 20);
        assert_eq!(t.keep_alive, Duration::from_secs(10));
        assert_eq!(t.idle_timeout, Duration::from_secs(300));
        // Nothing said: the defaults (each tuning has its own uplink yield handle).
        let resolved = resolve("").unwrap().tuning;
        let defaults = Tuning {
            uplink: resolved.uplink.clone(),
            ..Tuning::default()
        };
        assert_eq!(resolved, defaults);
    }

    #[test]
    fn spool_section_sets_checkpoints_and_ready_files() {
        let c = resolve(
            "[spool]\ncheckpoint_bytes = 1048576\ncheckpoint_interval = \"2s\"\nready_files = 64\n",
        )
        .unwrap();
        assert_eq!(c.checkpoint_bytes, 1 << 20);
        assert_eq!(c.checkpoint_interval, Duration::from_secs(2));
        assert_eq!(c.ready_files, 64);
        assert_eq!(resolve("").unwrap().ready_files, yilian_store::STOCK);
    }

    fn error(toml_text: &str) -> String {
        match resolve(toml_text) {
            Ok(_) => panic!("accepted: {toml_text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn limits_have_defaults_and_mistakes_are_explained() {
        let c = resolve("").unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.limits.upload_idle_timeout, Duration::from_secs(120));
        assert_eq!(c.limits.partial_retention, Duration::from_secs(7 * 86400));
        let c = resolve(
            "[limits]\nconnections_per_identity = 2\nuploads_per_identity = 3\nupload_idle_timeout = \"5s\"\npartial_retention = \"1h\"\nmin_free_bytes = 1000\nmax_manifest_instances = 10\n",
        )
        .unwrap();
        assert_eq!(c.limits.connections_per_identity, 2);
        assert_eq!(c.limits.uploads_per_identity, 3);
        assert_eq!(c.limits.upload_idle_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.partial_retention, Duration::from_secs(3600));
        assert_eq!(c.limits.min_free_bytes, 1000);
        assert_eq!(c.limits.max_manifest_instances, 10);
        let e = error("[limits]\nuploads_per_identity = 0\n");
        assert!(e.contains("limits.uploads_per_identity"), "{e}");
        let e = error("[limits]\nmax_instance_bytes = 100\npartial_bytes_per_site = 10\n");
        assert!(e.contains("partial_bytes_per_site"), "{e}");
        let e = error("[limits]\nupload_idle_timeout = \"10ms\"\n");
        assert!(e.contains("upload_idle_timeout"), "{e}");
    }

    /// README's configuration example is a real configuration: every key it shows exists,
    /// with a value of the right type (unknown keys are refused by the parser).
    #[test]
    fn readmes_configuration_example_parses() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .expect("README has a Configuration section");
        let block = section
            .split("```toml")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("with a toml block");
        let file: ConfigFile = toml::from_str(block).unwrap_or_else(|e| panic!("{e}"));
        let congestion = file.transport.congestion.clone().expect("shows congestion");
        assert!(congestion.parse::<Congestion>().is_ok(), "{congestion}");
        // Every choice its comment offers is one, and the default it names is the default.
        let line = block
            .lines()
            .find(|l| l.starts_with("congestion ="))
            .expect("a congestion line");
        let (_, comment) = line.split_once('#').expect("with the choices in a comment");
        for choice in comment.split('|') {
            let name = choice.split_whitespace().next().unwrap_or("");
            assert!(name.parse::<Congestion>().is_ok(), "{name:?} in {line:?}");
            if choice.contains("(default)") {
                assert_eq!(
                    name.parse::<Congestion>().ok(),
                    Some(Congestion::default()),
                    "{line:?}"
                );
            }
        }
        // The keys shown commented out (`# key = value`) are real keys too.
        let uncommented: String = block
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(
            uncommented,
            block.trim_end_matches('\n'),
            "some keys are commented out"
        );
        let all: ConfigFile = toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}"));
        all.http
            .resolve(Path::new("."))
            .expect("its commented [http] keys are valid");
        all.dimse
            .resolve()
            .expect("its commented [dimse] keys are valid");
        let limits = file.limits.resolve().expect("its limits are valid");
        assert_eq!(limits, Limits::default(), "README shows the defaults");
        let dimse = file.dimse.resolve().expect("its [dimse] is valid");
        assert!(dimse.listen.is_some(), "README shows how to turn DIMSE on");
        assert_eq!(dimse.ae_title, DimseConfig::default().ae_title);
        assert_eq!(dimse.quiet_period, DimseConfig::default().quiet_period);
        let http = file
            .http
            .resolve(Path::new("."))
            .expect("its [http] is valid");
        assert_eq!(
            http.listen,
            crate::config_http::HttpConfig::default().listen,
            "README shows the default HTTPS address"
        );
    }

    #[test]
    fn http_is_on_by_default_and_can_move_or_be_off() {
        let c = resolve("").unwrap();
        assert_eq!(c.http.listen, Some("127.0.0.1:8443".parse().unwrap()));
        assert!(c.http.default_listen, "a taken default port is not fatal");
        let c = resolve("[http]\nlisten = \"0.0.0.0:9443\"\n").unwrap();
        assert_eq!(c.http.listen, Some("0.0.0.0:9443".parse().unwrap()));
        assert!(!c.http.default_listen, "an address asked for must bind");
        let off = resolve("[http]\nlisten = \"off\"\n").unwrap();
        assert_eq!(off.http.listen, None);
        let e = error("[http]\nlisten = \"8443\"\n");
        assert!(e.contains("http.listen"), "{e}");
        assert!(
            resolve("[http]\nport = 1\n").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn http_viewer_dir_is_relative_to_the_file_and_cors_origins_are_checked() {
        let file: ConfigFile = toml::from_str(
            "[http]\nviewer_dir = \"ohif/dist\"\ncors_origins = [\"https://viewer.example\", \"*\"]\n",
        )
        .unwrap();
        let http = file.http.resolve(Path::new("/etc/yilian")).unwrap();
        assert_eq!(
            http.viewer_dir,
            Some(PathBuf::from("/etc/yilian/ohif/dist"))
        );
        assert_eq!(http.cors_origins.len(), 2);
        for bad in ["viewer.example", "https://viewer.example/", "https://a b"] {
            let e = error(&format!("[http]\ncors_origins = [{bad:?}]\n"));
            assert!(e.contains("cors_origins"), "{bad}: {e}");
        }
    }

    #[test]
    fn dimse_mistakes_are_explained() {
        let e = error("[dimse]\nae_title = \"A\\\\B\"\n");
        assert!(e.contains("ae_title"), "{e}");
        let e = error("[dimse]\nae_title = \"SEVENTEEN_CHARS_X\"\n");
        assert!(e.contains("ae_title"), "{e}");
        let e = error("[dimse]\nquiet_period = \"10ms\"\n");
        assert!(e.contains("quiet_period"), "{e}");
        assert!(
            resolve("[dimse]\nport = 104\n").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn transport_mistakes_are_explained() {
        let e = error("[transport]\nstream_window = 1000\n");
        assert!(e.to_string().contains("stream_window"), "{e}");
        let e = error("[transport]\nkeep_alive = \"90s\"\nidle_timeout = \"60s\"\n");
        assert!(e.to_string().contains("shorter than"), "{e}");
        let e = error("[transport]\ncongestion = \"vegas\"\n");
        assert!(e.to_string().contains("vegas"), "{e}");
        assert!(
            resolve("[transport]\nwindow = 5\n").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn dimse_egress_associations_default_to_four_and_are_checked() {
        assert_eq!(resolve("").unwrap().dimse.egress_associations, 4);
        let c = resolve("[dimse]\negress_associations = 2\n").unwrap();
        assert_eq!(c.dimse.egress_associations, 2);
        let e = error("[dimse]\negress_associations = 0\n");
        assert!(e.contains("dimse.egress_associations"), "{e}");
        let e = error("[dimse]\negress_associations = 1000\n");
        assert!(e.contains("between 1 and"), "{e}");
    }

    #[test]
    fn delivery_buffer_budget_is_read_and_checked() {
        assert_eq!(
            resolve("").unwrap().delivery_buffer_budget,
            crate::budget::DEFAULT_BUDGET
        );
        let c = resolve("[delivery]\nbuffer_budget = 67108864\n").unwrap();
        assert_eq!(c.delivery_buffer_budget, 64 << 20);
        let e = error("[delivery]\nbuffer_budget = 4096\n");
        assert!(e.contains("buffer_budget"), "{e}");
    }
}
