//! What a reload replaces and how the watcher tells a file changed: the state `reload.rs`
//! works on, kept apart so that the shared context (`ctx.rs`) does not depend on the reload
//! logic.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::config::RelayConfig;

/// Identity of a file's content, cheaply: modification time, size, inode (`None`: missing).
pub(crate) type Stamp = Option<(SystemTime, u64, u64)>;

pub(crate) fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
        .collect()
}

/// What a reload replaces (the topology; the CRLs live in the TLS configurations of the QUIC
/// endpoint and of DICOM TLS),
/// shared by every task of the relay.
pub(crate) struct Reloadable {
    /// The topology file (if any), then the CRL files.
    pub(crate) files: Vec<PathBuf>,
    /// Their stamps when last read.
    read: Mutex<Vec<Stamp>>,
    /// Reloads (SIGHUP, polling) run one at a time.
    pub(crate) one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloadable {
    pub fn new(config: &RelayConfig) -> Reloadable {
        let files: Vec<PathBuf> = config
            .topology_path
            .iter()
            .chain(&config.crl_paths)
            .cloned()
            .collect();
        Reloadable {
            read: Mutex::new(stamps(&files)),
            files,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn read_stamps(&self) -> Vec<Stamp> {
        self.read.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_read_stamps(&self, s: Vec<Stamp>) {
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
}
