//! Free space: refuse new uploads before the disk is full, keep serving when it is.
//!
//! A relay whose disk fills must not lose or corrupt anything acknowledged, must keep
//! delivering what it holds, and must resume ingest by itself once space returns. So:
//! * below `min_free_bytes` free, new uploads are refused ("relay storage full"), uploads in
//!   progress stop writing (what they acknowledged stays), and nothing new is accepted until
//!   free space is back above the threshold (checked every second);
//! * the relay keeps a **ballast** file in its data directory (a quarter of `min_free_bytes`,
//!   at most 64 MiB). When a write fails for lack of space anyway (the disk filled faster
//!   than the check, or something else filled it), the ballast is deleted at once, so that
//!   deliveries, their acknowledgements and the audit log (a few SQLite pages each) keep
//!   working on a full disk. It is recreated once space returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tracing::{error, info, warn};

const BALLAST_MAX: u64 = 64 << 20;

/// See the module docs.
pub struct Storage {
    dir: PathBuf,
    min_free: u64,
    ballast: PathBuf,
    ballast_bytes: u64,
    full: AtomicBool,
    free: AtomicU64,
    /// Serialises ballast creation and removal.
    lock: Mutex<()>,
}

impl Storage {
    pub fn new(dir: &Path, min_free: u64) -> Storage {
        let s = Storage {
            dir: dir.to_path_buf(),
            min_free,
            ballast: dir.join("ballast"),
            ballast_bytes: (min_free / 4).min(BALLAST_MAX),
            full: AtomicBool::new(false),
            free: AtomicU64::new(u64::MAX),
            lock: Mutex::new(()),
        };
        s.check();
        s
    }

    /// Whether new data may not be written now.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Bytes free at the last check.
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// What a refused upload is told.
    pub fn refusal_text(&self) -> String {
        format!(
            "relay storage full: the relay's disk has {} free and keeps at least {} free (limits.min_free_bytes); new uploads are refused until space returns — nothing acknowledged is lost; the upload is retried (tell the alliance administrator)",
            human(self.free()),
            human(self.min_free)
        )
    }

    /// If `e` is a lack of space, act on it ([`Storage::out_of_space`]); whether it was.
    pub fn notice(&self, e: &yilian_store::StoreError) -> bool {
        let full = e.is_out_of_space();
        if full {
            self.out_of_space();
        }
        full
    }

    /// A write failed for lack of space: stop ingest and free the ballast so that deliveries
    /// and the index keep working.
    pub fn out_of_space(&self) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if !self.full.swap(true, Ordering::Relaxed) {
            error!(
                data = %self.dir.display(),
                "relay storage full: a write failed for lack of space; new uploads are refused until space returns"
            );
        }
        match std::fs::remove_file(&self.ballast) {
            Ok(()) => info!("released the storage ballast so that deliveries continue"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!("cannot release the storage ballast: {e}"),
        }
    }

    /// Look at free space (every second): set or clear the full state.
    pub fn check(&self) {
        let Some(free) = free_bytes(&self.dir) else {
            return;
        };
        self.free.store(free, Ordering::Relaxed);
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let have_ballast = self.ballast.exists();
        let need = self.min_free + if have_ballast { 0 } else { self.ballast_bytes };
        if self.is_full() {
            if free >= need {
                if !have_ballast {
                    if let Err(e) = make_ballast(&self.ballast, self.ballast_bytes) {
                        warn!("cannot recreate the storage ballast: {e}");
                        return;
                    }
                }
                self.full.store(false, Ordering::Relaxed);
                info!(free = %human(free), "storage available again: the relay accepts uploads");
            }
        } else if free < self.min_free {
            self.full.store(true, Ordering::Relaxed);
            error!(
                free = %human(free), min_free = %human(self.min_free),
                "relay storage full: new uploads are refused until space returns"
            );
        } else if !have_ballast && free >= need {
            if let Err(e) = make_ballast(&self.ballast, self.ballast_bytes) {
                warn!("cannot create the storage ballast: {e}");
            }
        }
    }
}

fn make_ballast(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

pub fn human(b: u64) -> String {
    const MIB: u64 = 1 << 20;
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    }
}
