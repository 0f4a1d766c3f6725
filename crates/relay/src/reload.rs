//! Reloading the topology and the CRL files while the relay runs.
//!
//! Triggers: SIGHUP (the CLI calls [`crate::Relay::reload`]) or a change of one of the files,
//! seen by polling their modification time, size and inode every [`POLL_INTERVAL`] (no file
//! notification dependency; a change must also hold still for [`SETTLE`], so a file an editor
//! is still writing is not read half-written).
//!
//! A reload reads everything first — topology file, CRL files, the TLS configuration built
//! from them — and changes nothing if any of it fails: the error names the file and the
//! problem, and the relay keeps running on the previous state. Then, in this order, new
//! handshakes get the new CRLs (QUIC: `Endpoint::set_server_config`; DICOM TLS: the door's
//! `TlsConfig`, `dicom_tls.rs`; HTTPS: `yilian_web::TlsSwitch`), every reader of the topology
//! gets the new one (routing, admission), and the live connections the new files no longer
//! admit are closed with the reason (`revocation.rs`; DICOM TLS associations: `dicom_tls.rs`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quinn::Endpoint;
use tracing::{error, info, warn};
use yilian_route::{Topology, TopologyError};
use yilian_transport::{CrlError, Crls, TransportError};

use crate::ctx::Ctx;
use crate::reload_state::stamps;
use crate::revocation::close_no_longer_admitted;

/// How often the watched files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How long a changed file must stay unchanged before it is read.
const SETTLE: Duration = Duration::from_millis(250);

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("topology file {}: {source}", path.display())]
    Topology {
        path: PathBuf,
        source: TopologyError,
    },
    #[error("{0}")]
    Crl(#[from] CrlError),
    #[error("cannot build the TLS configuration with the new revocation lists: {0}")]
    Tls(#[from] TransportError),
    #[error("the reload task failed: {0}")]
    Task(String),
}

/// What a successful reload put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// The topology file read, if the relay has one (else the embedded example stays).
    pub topology: Option<PathBuf>,
    /// Identities it declares.
    pub identities: usize,
    /// Its `[[revoked]]` entries.
    pub deny_list: usize,
    /// CRL files read.
    pub crl_files: usize,
    /// Certificates they revoke.
    pub crl_revoked: usize,
    /// Live connections closed because the new files no longer admit them.
    pub closed: usize,
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.topology {
            Some(p) => write!(f, "topology {}", p.display())?,
            None => f.write_str("embedded topology")?,
        }
        write!(
            f,
            " ({} identities, {} revoked in [[revoked]]), {} CRL file(s) revoking {} certificate(s); closed {} live connection(s) no longer admitted",
            self.identities, self.deny_list, self.crl_files, self.crl_revoked, self.closed
        )
    }
}

/// Log a reload's outcome (the administrator's only feedback).
pub fn log_reload(trigger: &str, outcome: &Result<ReloadSummary, ReloadError>) {
    match outcome {
        Ok(summary) => info!("reloaded ({trigger}): {summary}"),
        Err(e) => error!(
            "reload ({trigger}) failed; still running with the previous topology and revocation lists: {e}"
        ),
    }
}

/// Warn about CRLs past their next update (they still apply).
pub(crate) fn warn_out_of_date(crls: &Crls) {
    for (path, next_update) in crls.out_of_date(time::OffsetDateTime::now_utc()) {
        warn!(
            crl = %path.display(),
            "this revocation list should have been replaced on {next_update}: it still applies, \
             but ask the alliance CA for the current one"
        );
    }
}

/// Read the topology and CRL files again and put them in force; see the module docs.
pub(crate) async fn reload(
    ctx: &Arc<Ctx>,
    endpoint: &Endpoint,
) -> Result<ReloadSummary, ReloadError> {
    let _one = ctx.current.one_at_a_time.lock().await;
    // Stamped before reading: a change during the read is seen again by the next poll.
    ctx.current.set_read_stamps(stamps(&ctx.current.files));
    let config = &ctx.config;
    let (path, crl_paths, tls, tuning) = (
        config.topology_path.clone(),
        config.crl_paths.clone(),
        config.tls.clone(),
        config.tuning.clone(),
    );
    let loaded = tokio::task::spawn_blocking(move || {
        let topology = match &path {
            Some(p) => Some(Topology::load(p).map_err(|source| ReloadError::Topology {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let crls = Crls::load(&crl_paths, &tls)?;
        let server = yilian_transport::server_config_with_crls(&tls, &tuning, &crls)?;
        let dicom = crate::dicom_tls::server_config(&tls, &crls)?;
        let https = yilian_transport::https_server_config(&tls, &crls)?;
        Ok::<_, ReloadError>((topology, crls, server, dicom, https))
    })
    .await
    .map_err(|e| ReloadError::Task(e.to_string()))?;
    let (topology, crls, server, dicom, https) = loaded?;

    endpoint.set_server_config(Some(server));
    if let Some(d) = &ctx.dicom_tls {
        d.replace(dicom);
    }
    if let Some(h) = &ctx.http_tls {
        h.replace(https);
    }
    let topology = topology.map(Arc::new).unwrap_or_else(|| ctx.topology());
    ctx.ingest.set_topology(topology.clone());
    warn_out_of_date(&crls);
    let closed = close_no_longer_admitted(ctx, &topology, &crls).await
        + crate::dicom_tls::end_no_longer_admitted(ctx, &topology, &crls).await;
    Ok(ReloadSummary {
        topology: config.topology_path.clone(),
        identities: topology.identities().count(),
        deny_list: topology.revocations().count(),
        crl_files: config.crl_paths.len(),
        crl_revoked: crls.revoked_count(),
        closed,
    })
}

/// Poll the watched files; reload when one changed (and then held still).
pub(crate) async fn watch(ctx: Arc<Ctx>, endpoint: Endpoint) {
    let files = ctx.current.files.clone();
    if files.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let seen = stamps(&files);
        if seen == ctx.current.read_stamps() {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        if stamps(&files) != seen {
            continue; // still being written: look again at the next tick
        }
        log_reload("file changed", &reload(&ctx, &endpoint).await);
    }
}
