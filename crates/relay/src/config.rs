//! The relay's configuration: one TOML file, every key optional.
//!
//! ```toml
//! listen = "127.0.0.1:4433"        # UDP address for QUIC
//! data_dir = "yilian-data"         # spool, index, audit log
//! topology = "topology.toml"       # alliance topology (default: the embedded example)
//!
//! [tls]                            # default: the embedded development certificates
//! cert = "county-relay.pem"
//! key = "county-relay.key"
//! ca = "ca.pem"
//!
//! [transport]
//! congestion = "bbr"               # bbr | cubic | newreno
//!
//! [limits]
//! max_instance_bytes = 8589934592  # larger offers are refused
//!
//! [spool]
//! checkpoint_bytes = 16777216      # fsync (and tell the sender) at least every this many bytes
//! checkpoint_interval = "1s"       # … or this often on slow links
//!
//! [delivery]
//! concurrent_per_reader = 8        # instances in flight to one reader
//!
//! [log]
//! stats_interval = "30s"           # counters and queue depths in the log
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use yilian_route::Topology;
use yilian_transport::{Congestion, TlsFiles, TlsPem, Tuning};

/// The file as written by an administrator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSection {
    pub congestion: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_instance_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    pub checkpoint_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub checkpoint_interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    pub concurrent_per_reader: Option<usize>,
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
    #[error("config: unknown congestion controller {0:?} (use bbr, cubic or newreno)")]
    Congestion(String),
}

/// Everything the relay runs with, resolved.
#[derive(Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: TlsPem,
    pub topology: Arc<Topology>,
    pub tuning: Tuning,
    pub max_instance_bytes: u64,
    pub checkpoint_bytes: u64,
    pub checkpoint_interval: Duration,
    pub concurrent_per_reader: usize,
    pub stats_interval: Duration,
}

/// Defaults used where the file says nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4433";

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
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
        let tls = match self.tls {
            Some(t) => TlsFiles {
                cert: at(t.cert),
                key: at(t.key),
                ca: at(t.ca),
            }
            .load()?,
            None => default_tls(),
        };
        let topology = match self.topology {
            Some(p) => {
                let p = at(p);
                Topology::load(&p).map_err(|source| ConfigError::Topology { path: p, source })?
            }
            None => default_topology(),
        };
        let mut tuning = Tuning::default();
        if let Some(c) = self.transport.congestion {
            tuning.congestion = c
                .parse::<Congestion>()
                .map_err(|_| ConfigError::Congestion(c.clone()))?;
        }
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
            topology: Arc::new(topology),
            tuning,
            max_instance_bytes: self.limits.max_instance_bytes.unwrap_or(8 << 30),
            checkpoint_bytes: self.spool.checkpoint_bytes.unwrap_or(16 << 20),
            checkpoint_interval: self
                .spool
                .checkpoint_interval
                .unwrap_or(Duration::from_secs(1)),
            concurrent_per_reader: self.delivery.concurrent_per_reader.unwrap_or(8).max(1),
            stats_interval: self.log.stats_interval.unwrap_or(Duration::from_secs(30)),
        })
    }
}
