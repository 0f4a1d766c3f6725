//! The disk's durable ceiling, measured in the same run as the receivers it bounds.
//!
//! A receiver that answers each file only once it is durable can go no faster than this disk
//! makes the same files durable with the same number of files in flight. So this writes the
//! corpus with nothing else: its bytes already in memory, no network, no parsing, no hashing,
//! no index; `writers` threads each take the next file, write it whole into a file created
//! (empty, its folder entry synced) before the clock starts, in pieces with kernel write-back
//! started every [`WRITEBACK_EVERY`] bytes (as the relay's spool writer does, so the final
//! fsync finds little left), `fsync` it, and take the next.
//! That is the most generous model of a durable receiver (yilian's sealed uploads also write
//! into files created ahead, `crates/store/src/sealed.rs`), so a target above it cannot be met
//! on this disk by any durable receiver.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Write-back is started after this many bytes (the spool writer's figure).
pub const WRITEBACK_EVERY: usize = 4 << 20;

/// `bytes` into `f` in pieces of [`WRITEBACK_EVERY`], write-back started after each, then
/// one fsync.
fn write_durably(f: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut at = 0usize;
    for piece in bytes.chunks(WRITEBACK_EVERY) {
        f.write_all(piece)?;
        if piece.len() == WRITEBACK_EVERY {
            // SAFETY: a valid descriptor; the range is what was just written.
            let r = unsafe {
                libc::sync_file_range(
                    f.as_raw_fd(),
                    at as i64,
                    piece.len() as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        at += piece.len();
    }
    f.sync_all()
}

/// Files made durable per second, and bytes.
#[derive(Clone, Copy, Debug)]
pub struct Ceiling {
    pub files_per_s: f64,
    pub mb_per_s: f64,
}

/// Write `files` into `dir` (created; left in place, since removing many files just before
/// another measurement slows that one's file creation on ext4 without a journal) with
/// `writers` threads, each file written and fsync'ed before its thread takes the next.
pub fn durable_ceiling(dir: &Path, files: &[PathBuf], writers: usize) -> Result<Ceiling> {
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let targets: Vec<PathBuf> = (0..data.len()).map(|i| dir.join(i.to_string())).collect();
    for t in &targets {
        std::fs::File::create(t).with_context(|| format!("creating {}", t.display()))?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    // Nothing else dirty is left for the measured fsyncs to write.
    let synced = std::process::Command::new("sync").status()?;
    anyhow::ensure!(synced.success(), "sync failed");

    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..writers.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(bytes) = data.get(i) else {
                            return Ok(());
                        };
                        let path = &targets[i];
                        let mut f = std::fs::OpenOptions::new()
                            .write(true)
                            .open(path)
                            .with_context(|| format!("opening {}", path.display()))?;
                        write_durably(&mut f, bytes)
                            .with_context(|| format!("writing {}", path.display()))?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        }
        Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let bytes: usize = data.iter().map(Vec::len).sum();
    Ok(Ceiling {
        files_per_s: data.len() as f64 / secs,
        mb_per_s: bytes as f64 / 1e6 / secs,
    })
}
