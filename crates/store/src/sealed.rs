//! Sealed uploads: durable with one fsync, before they are committed.
//!
//! A C-STORE waits for its answer before the console sends the next instance, so one
//! association's rate is one over the time from the last byte to "durable". A commit costs
//! three journal commits on ext4 (the file's data, the rename into `objects/`, the SQLite WAL);
//! sealing costs one:
//!
//! * uploads of unknown size write into **pooled** files: `scratch/ready/<n>`, created empty in
//!   batches whose folder entries were made durable together (one folder fsync per batch);
//! * the upload's bytes go into it with direct writes, past the page cache (`direct.rs`);
//! * at the end of a verified upload the file is **sealed**: what the relay needs to commit it
//!   again (who sent it, as an opaque tag) goes into an extended attribute, then one `fsync`
//!   makes data, size and attribute durable. The upload may be acknowledged now;
//! * the commit follows (group commit: rename into `objects/`, index, outbox, audit);
//! * at start, a sealed file still in the pool is one whose commit did not happen (a crash, a
//!   kill -9): [`Store::sealed_leftovers`] lists them with their tags, and the ingest path
//!   commits them again ([`Store::adopt_sealed`]). An unsealed file with data is an upload cut
//!   off mid-way: removed. Empty ones stay in the pool.
//!
//! Without extended attributes (a filesystem that refuses `user.*` attributes) there is no
//! pool: uploads of unknown size are committed before they are acknowledged, as before.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fsmode::{private_options, sync_dir};
use crate::StoreError;

/// The extended attribute holding a sealed upload's tag.
const ATTR: &str = "user.yilian.sealed";
/// Files created at a time (one folder fsync each).
const BATCH: usize = 32;
/// Empty files the pool keeps ready by default ([`StoreOptions::ready_files`]): a burst (a CT
/// series of a few hundred slices from several consoles at once) finds its files made.
/// Creating a file costs ext4 an inode search, and on a filesystem without a journal that
/// search skips every inode freed in the last half minute: after a mass delete (a prune,
/// another program's files) creating the files during a burst took up to two fifths of the
/// relay's CPU in a four-association C-STORE profile, and four associations ran at 0.90 of
/// storescp's rate against 0.95 with the files made beforehand (BENCHMARKING.md). The stock is
/// made when the store opens and stays on disk across restarts.
///
/// [`StoreOptions::ready_files`]: crate::StoreOptions::ready_files
pub const STOCK: usize = 512;

/// Below this many free files a refill starts in the background, at the lowest CPU priority,
/// and waits for the uploads to pause ([`QUIET`]) before each batch while two batches or more
/// are left: creating files in the pool's folder holds that folder's lock, which the commits
/// (removing pooled names) need, so a refill in the middle of a burst slows the burst down.
/// An upload that finds the pool empty makes a batch itself.
fn low_water(stock: usize) -> usize {
    stock - stock / 16
}

/// A pause in the uploads this long lets a refill make its next batch.
const QUIET: Duration = Duration::from_millis(50);

/// A sealed upload found in the pool at start: its file and its tag.
pub(crate) type Leftover = (PathBuf, Vec<u8>);

/// The pool of empty, durable scratch files.
#[derive(Debug)]
pub(crate) struct Pool {
    stock: Arc<Stock>,
    /// Whether the filesystem keeps our extended attributes (no pool otherwise).
    pub(crate) enabled: bool,
    /// Free files to keep (at least a batch).
    target: usize,
    /// The last background refill: joined when the pool is dropped, so that no thread still
    /// creates files in a store that was closed (and perhaps is being removed).
    refill: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The pool's files, shared with its background refill.
#[derive(Debug)]
struct Stock {
    dir: PathBuf,
    free: Mutex<VecDeque<PathBuf>>,
    next: Mutex<u64>,
    /// A background refill is under way.
    refilling: AtomicBool,
    /// Files taken so far (a refill waits until this stops moving).
    takes: AtomicU64,
    /// The pool is being dropped: a refill stops.
    closing: AtomicBool,
}

impl Pool {
    /// Open the pool in `dir`: empty files are kept, sealed ones returned as leftovers,
    /// anything else (an upload cut off mid-way) removed. A pool with fewer than `stock` free
    /// files is filled up at once (to a batch at least).
    pub(crate) fn open(dir: &Path, stock: usize) -> Result<(Pool, Vec<Leftover>), StoreError> {
        crate::fsmode::private_dir(dir)?;
        let enabled = xattrs_work(dir);
        let mut free = VecDeque::new();
        let mut leftovers = Vec::new();
        let mut next = 0u64;
        let mut removed = 0usize;
        for entry in std::fs::read_dir(dir).map_err(StoreError::io("list", dir))? {
            let path = entry.map_err(StoreError::io("list", dir))?.path();
            if let Some(n) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
            let len = std::fs::metadata(&path)
                .map_err(StoreError::io("stat", &path))?
                .len();
            match read_tag(&path) {
                Some(tag) if len > 0 => leftovers.push((path, tag)),
                _ if len == 0 && enabled => free.push_back(path),
                _ => {
                    std::fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(
                files = removed,
                "removed uploads cut off before they were complete"
            );
        }
        leftovers.sort();
        let pool = Pool {
            stock: Arc::new(Stock {
                dir: dir.to_path_buf(),
                free: Mutex::new(free),
                next: Mutex::new(next),
                refilling: AtomicBool::new(false),
                takes: AtomicU64::new(0),
                closing: AtomicBool::new(false),
            }),
            enabled,
            target: stock.max(BATCH),
            refill: Mutex::new(None),
        };
        if enabled {
            while pool.stock.free_len() < pool.target {
                pool.stock.add_batch()?;
            }
        }
        Ok((pool, leftovers))
    }

    /// An empty pooled file, open for writing; `None` without a pool. Below [`low_water`]
    /// free files, a refill starts in the background; an empty pool refills here.
    pub(crate) fn take(&self) -> Result<Option<(PathBuf, File)>, StoreError> {
        if !self.enabled {
            return Ok(None);
        }
        loop {
            let (popped, left) = {
                let mut free = self.stock.free.lock().unwrap_or_else(|p| p.into_inner());
                let popped = free.pop_front();
                self.stock.takes.fetch_add(1, Ordering::Relaxed);
                (popped, free.len())
            };
            if left < low_water(self.target) {
                self.refill_in_background();
            }
            match popped {
                Some(path) => {
                    match private_options().read(true).write(true).open(&path) {
                        Ok(f) => return Ok(Some((path, f))),
                        // Gone (removed by hand?): take the next.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(StoreError::io("open", &path)(e)),
                    }
                }
                None => self.stock.refill_if_empty()?,
            }
        }
    }

    /// Start one batch on a thread of its own, unless one is under way.
    fn refill_in_background(&self) {
        if self.stock.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let (stock, target) = (self.stock.clone(), self.target);
        let spawned = std::thread::Builder::new()
            .name("yilian-pool".into())
            .spawn(move || {
                lowest_priority();
                stock.refill_to(target);
                stock.refilling.store(false, Ordering::Release);
            });
        match spawned {
            // The previous refill has ended (it cleared `refilling`): replacing its handle
            // only detaches a finished thread.
            Ok(handle) => {
                *self.refill.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            }
            Err(e) => {
                tracing::warn!("could not start the pool's refill: {e}");
                self.stock.refilling.store(false, Ordering::Release);
            }
        }
    }

    /// Free files in the pool now.
    #[cfg(test)]
    pub(crate) fn free_files(&self) -> usize {
        self.stock
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stock.closing.store(true, Ordering::Release);
        let handle = self
            .refill
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::warn!("the pool's refill thread panicked");
            }
        }
    }
}

/// Run the calling thread at the lowest CPU priority (nice 19: on Linux a thread has its own).
#[cfg(target_os = "linux")]
fn lowest_priority() {
    // SAFETY: setpriority on the calling thread (who = 0), no pointers.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) } != 0 {
        tracing::debug!(
            "cannot lower the pool refill's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lowest_priority() {}

impl Stock {
    fn free_len(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Batches until `target` files are free, each after a pause in the uploads unless the
    /// pool is nearly empty (see [`low_water`]); stops when the pool is dropped.
    fn refill_to(&self, target: usize) {
        while !self.closing.load(Ordering::Acquire) {
            let free = self.free_len();
            if free >= target {
                return;
            }
            if free >= 2 * BATCH {
                let before = self.takes.load(Ordering::Relaxed);
                std::thread::sleep(QUIET);
                if self.takes.load(Ordering::Relaxed) != before {
                    continue; // the uploads are taking files: wait for a pause
                }
            }
            if let Err(e) = self.add_batch() {
                tracing::warn!("refilling the pool of upload files failed (uploads create their own until it works again): {e}");
                return;
            }
        }
    }

    /// A batch, unless another thread refilled while we waited for the counter.
    fn refill_if_empty(&self) -> Result<(), StoreError> {
        let next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if !self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return Ok(());
        }
        self.create_batch(next)
    }

    /// A batch of empty files.
    fn add_batch(&self) -> Result<(), StoreError> {
        let next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        self.create_batch(next)
    }

    /// Create [`BATCH`] empty files and make their folder entries durable; then they are free.
    fn create_batch(&self, mut next: std::sync::MutexGuard<'_, u64>) -> Result<(), StoreError> {
        let mut made = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let path = self.dir.join(next.to_string());
            *next += 1;
            private_options()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(StoreError::io("create", &path))?;
            made.push(path);
        }
        drop(next);
        sync_dir(&self.dir)?;
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(made);
        Ok(())
    }
}

/// Seal `file` (at `path`): its tag in an extended attribute, then one fsync for data, size
/// and attribute.
pub(crate) fn seal(file: &File, path: &Path, tag: &[u8]) -> Result<(), StoreError> {
    set_tag(file, tag).map_err(StoreError::io("tag", path))?;
    file.sync_all().map_err(StoreError::io("fsync", path))
}

#[cfg(target_os = "linux")]
fn set_tag(file: &File, tag: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(ATTR).map_err(std::io::Error::other)?;
    // SAFETY: valid fd, NUL-terminated name, pointer and length of a live slice.
    let r = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            tag.as_ptr().cast(),
            tag.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_tag(_file: &File, _tag: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "extended attributes are not supported here",
    ))
}

/// The tag of a sealed file, if it has one.
#[cfg(target_os = "linux")]
pub(crate) fn read_tag(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = std::ffi::CString::new(ATTR).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: NUL-terminated strings and a live buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn read_tag(_path: &Path) -> Option<Vec<u8>> {
    None
}

/// Whether `user.*` extended attributes can be set and read back in `dir`.
fn xattrs_work(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    let ok = (|| -> Option<bool> {
        let f = private_options()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&probe)
            .ok()?;
        set_tag(&f, b"probe").ok()?;
        Some(read_tag(&probe).as_deref() == Some(b"probe"))
    })()
    .unwrap_or(false);
    if let Err(e) = std::fs::remove_file(&probe) {
        tracing::debug!("removing the extended attribute probe: {e}");
    }
    if !ok {
        tracing::warn!(dir = %dir.display(), "this filesystem does not keep extended attributes: C-STOREs are committed before they are acknowledged (slower)");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ok() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// An upload takes a file that is ready: the pool starts with its stock, and taking it
    /// below the low-water mark refills it on another thread; every file is distinct, empty,
    /// and found free again when the pool is opened anew.
    #[test]
    fn the_pool_keeps_a_stock_refilled_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let (pool, leftovers) = Pool::open(&ready, STOCK).unwrap();
        assert!(pool.enabled, "this filesystem keeps no user.* attributes");
        assert!(leftovers.is_empty());
        assert_eq!(pool.free_files(), STOCK, "the stock is made at open");

        // Down to the mark: no refill yet.
        let mut taken = Vec::new();
        let low = low_water(STOCK);
        for _ in 0..STOCK - low {
            taken.push(pool.take().unwrap().unwrap().0);
        }
        assert!(!pool.stock.refilling.load(Ordering::Acquire));
        assert_eq!(pool.free_files(), low);
        // One more, below the mark: the stock is made again without another take.
        taken.push(pool.take().unwrap().unwrap().0);
        wait_for("the background refill", || pool.free_files() >= STOCK);

        // Take them all and more: an empty pool refills where it is asked.
        for _ in 0..STOCK + 3 * BATCH {
            taken.push(pool.take().unwrap().unwrap().0);
        }
        let distinct: std::collections::BTreeSet<_> = taken.iter().collect();
        assert_eq!(distinct.len(), taken.len(), "no file handed out twice");
        wait_for("refills to settle", || {
            !pool.stock.refilling.load(Ordering::Acquire)
        });
        let free = pool.free_files();
        drop(pool);
        // A refill started by the last take has ended with the pool: the folder can go.
        let (short, _) = Pool::open(&dir.path().join("short"), BATCH).unwrap();
        short.take().unwrap().unwrap();
        drop(short);
        std::fs::remove_dir_all(dir.path().join("short")).unwrap();
        let (again, leftovers) = Pool::open(&ready, STOCK).unwrap();
        assert!(leftovers.is_empty());
        // The taken files are still empty (nothing was written): free again.
        assert_eq!(again.free_files(), free + taken.len());
    }

    /// The pool's waits (a refill waiting for a pause in the takes, takers refilling an empty
    /// pool themselves, the drop stopping a refill) over seeded interleavings: several threads
    /// take files in bursts with seeded pauses between them, some long enough for the refill
    /// to run, some not. Every take gets a file, no file is handed out twice, the refill fills
    /// the pool back once the takes stop, and dropping the pool in the middle of a refill
    /// returns.
    #[test]
    fn takes_and_refills_interleaved_never_hand_out_a_file_twice_nor_wait_forever() {
        const TARGET: usize = 4 * BATCH;
        for seed in 0..6u64 {
            let dir = tempfile::tempdir().unwrap();
            let ready = dir.path().join("ready");
            let (pool, _) = Pool::open(&ready, TARGET).unwrap();
            assert_eq!(pool.free_files(), TARGET);
            let pool = Arc::new(pool);
            let takers: Vec<_> = (0..3u64)
                .map(|t| {
                    let pool = pool.clone();
                    std::thread::spawn(move || {
                        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t + 1);
                        let mut next = move |below: u64| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x % below
                        };
                        let mut got = Vec::new();
                        for _ in 0..6 {
                            // A burst (up to a whole pool), then a pause: none, short, or
                            // longer than the refill's wait for quiet.
                            for _ in 0..1 + next(TARGET as u64) {
                                got.push(pool.take().unwrap().unwrap().0);
                            }
                            let pause = match next(3) {
                                0 => 0,
                                1 => next(10),
                                _ => QUIET.as_millis() as u64 + next(40),
                            };
                            std::thread::sleep(Duration::from_millis(pause));
                        }
                        got
                    })
                })
                .collect();
            let mut taken = Vec::new();
            for t in takers {
                taken.extend(t.join().unwrap());
            }
            let distinct: std::collections::BTreeSet<_> = taken.iter().collect();
            assert_eq!(
                distinct.len(),
                taken.len(),
                "seed {seed}: a file handed out twice"
            );
            for p in &taken {
                assert_eq!(std::fs::metadata(p).unwrap().len(), 0, "seed {seed}");
            }
            // Quiet now: a refill (started by the last takes, or by one more) fills it back.
            if !pool.stock.refilling.load(Ordering::Acquire) && pool.free_files() >= TARGET {
                pool.take().unwrap().unwrap();
            }
            wait_for("the refill after the takes stopped", || {
                pool.free_files() >= TARGET
            });
            // Below the mark again, then dropped while its refill waits for quiet or creates.
            for _ in 0..TARGET / 2 {
                pool.take().unwrap().unwrap();
            }
            let pool = Arc::into_inner(pool).expect("every taker has ended");
            drop(pool); // joins the refill: returns
        }
    }
}
