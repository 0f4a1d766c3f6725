//! Settling: the folder entries of sealed commits are made durable in bulk, after the answer.
//!
//! A sealed upload (C-STORE, STOW-RS) is durable in the pool before it is committed
//! (`sealed.rs`): its pooled name, data, size and tag survive a crash. Its commit links it to
//! its content address (`objects/ab/<hash>.dcm`) and indexes it. That link survives a crash
//! only once `objects/ab` is fsync'ed, and content addresses scatter over 256 folders, so
//! fsyncing them in the commit cost one folder fsync (a metadata write and a cache flush) per
//! instance: about half of the disk's flushes on the STOW-RS path (BENCHMARKING.md).
//!
//! Nothing needs that link to be durable *before* the answer, because the pooled name still
//! holds the same file: a crash before the folders are synced leaves the pooled file, which the
//! next start commits again; the index already holds the instance, and its object name, if
//! the crash lost it, is made again from the pooled file (`group.rs`, `plan_instance`). So:
//!
//! * the group commit links, indexes, and hands the folders and pooled names to the
//!   [`Settler`] ([`Settler::defer`]) instead of fsyncing the folders;
//! * the settler fsyncs every folder it was handed, then removes the pooled names, in that
//!   order: a pooled name goes only when the object's name is on disk;
//! * it does so [`SETTLE_AFTER`] after the first name it was handed, or at once when
//!   [`PENDING_MAX`] names wait (this bounds what a crash leaves to commit again), before a
//!   prune removes anything (a pruned instance must not come back from a pooled name), and
//!   when the store closes.
//!
//! Settles run one at a time. A folder that cannot be fsync'ed keeps everything handed over
//! waiting (the pooled names stay): the next settle tries again.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::fsmode::sync_dir;
use crate::StoreError;

/// How long the first name handed over waits for its folder's fsync (more come meanwhile
/// and share it). It bounds nothing an acknowledgement depends on, only how many pooled names
/// wait: what a crash leaves for the next start to commit again.
pub const SETTLE_AFTER: Duration = Duration::from_secs(1);
/// A settle starts at once when this many pooled names wait.
pub const PENDING_MAX: usize = 1024;
/// After a failed settle, the settler waits this long before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What waits for a settle.
#[derive(Debug, Default)]
struct Pending {
    /// Folders holding new object names.
    dirs: BTreeSet<PathBuf>,
    /// Pooled names to remove once `dirs` are durable.
    pooled: Vec<PathBuf>,
    /// When the oldest of them was handed over.
    since: Option<Instant>,
}

/// Folder fsyncs of sealed commits, deferred and shared (see the module docs).
#[derive(Debug)]
pub(crate) struct Settler {
    /// How long the first name handed over waits ([`SETTLE_AFTER`] by default).
    after: Duration,
    pending: Mutex<Pending>,
    /// Wakes the settler's thread (something handed over, or the store closing).
    wake: Condvar,
    /// Held for a whole settle: one at a time, so that a settle that returns leaves nothing
    /// handed over before it unsettled.
    running: Mutex<()>,
    closing: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Pooled names removed after their folders were synced (for tests and logs).
    settled: AtomicU64,
}

impl Settler {
    pub(crate) fn new(after: Duration) -> Settler {
        Settler {
            after,
            pending: Default::default(),
            wake: Condvar::new(),
            running: Mutex::new(()),
            closing: AtomicBool::new(false),
            thread: Mutex::new(None),
            settled: AtomicU64::new(0),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand over the folders of new object names and the pooled names that hold the same
    /// files; a thread settles them later (started at the first call).
    pub(crate) fn defer(
        self: &Arc<Self>,
        dirs: impl IntoIterator<Item = PathBuf>,
        pooled: Vec<PathBuf>,
    ) {
        let mut p = self.pending();
        let before = p.pooled.len();
        p.dirs.extend(dirs);
        p.pooled.extend(pooled);
        if p.since.is_none() && !(p.pooled.is_empty() && p.dirs.is_empty()) {
            p.since = Some(Instant::now());
        }
        let full = before < PENDING_MAX && p.pooled.len() >= PENDING_MAX;
        drop(p);
        self.start_thread();
        if full {
            self.wake.notify_all();
        }
    }

    fn start_thread(self: &Arc<Self>) {
        let mut t = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_some() || self.closing.load(Ordering::Acquire) {
            return;
        }
        let me = self.clone();
        match std::thread::Builder::new()
            .name("yilian-settle".into())
            .spawn(move || me.run())
        {
            Ok(h) => *t = Some(h),
            // Without the thread, names wait for the next prune or the close, which settle
            // too; a crash meanwhile leaves more to commit again, never less.
            Err(e) => tracing::warn!("cannot start the settling thread: {e}"),
        }
    }

    /// The thread: wait until a settle is due, settle, again, until the store closes.
    fn run(&self) {
        loop {
            {
                let mut p = self.pending();
                loop {
                    if self.closing.load(Ordering::Acquire) {
                        return;
                    }
                    let due = match p.since {
                        None => None,
                        Some(_) if p.pooled.len() >= PENDING_MAX => break,
                        Some(since) => {
                            let due = since + self.after;
                            if Instant::now() >= due {
                                break;
                            }
                            Some(due)
                        }
                    };
                    p = match due {
                        None => self.wake.wait(p).unwrap_or_else(|e| e.into_inner()),
                        Some(due) => {
                            let left = due.saturating_duration_since(Instant::now());
                            self.wake
                                .wait_timeout(p, left)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        }
                    };
                }
            }
            if let Err(e) = self.settle() {
                tracing::warn!(
                    "cannot make new object names durable yet ({e}); their pooled copies stay, trying again in {} s",
                    RETRY_AFTER.as_secs()
                );
                let p = self.pending();
                if !self.closing.load(Ordering::Acquire) {
                    drop(self.wake.wait_timeout(p, RETRY_AFTER));
                }
            }
        }
    }

    /// Fsync every folder handed over so far, then remove the pooled names; returns how many.
    /// On an error nothing is removed and everything stays handed over.
    pub(crate) fn settle(&self) -> Result<usize, StoreError> {
        let _one = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let taken = std::mem::take(&mut *self.pending());
        for dir in &taken.dirs {
            if let Err(e) = sync_dir(dir) {
                let mut p = self.pending();
                p.dirs.extend(taken.dirs);
                p.pooled.extend(taken.pooled);
                p.since = match (p.since, taken.since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                return Err(e);
            }
        }
        for name in &taken.pooled {
            crate::partial::remove_file(name);
        }
        self.settled
            .fetch_add(taken.pooled.len() as u64, Ordering::Relaxed);
        Ok(taken.pooled.len())
    }

    /// Pooled names waiting for a settle.
    pub(crate) fn waiting(&self) -> usize {
        self.pending().pooled.len()
    }

    /// Pooled names removed by settles so far.
    pub(crate) fn settled(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Stop the thread, then settle what is left.
    pub(crate) fn close(&self) {
        self.stop_thread();
        if let Err(e) = self.settle() {
            tracing::warn!(
                "cannot make new object names durable at close ({e}); their pooled copies stay and are committed again at the next start"
            );
        }
    }

    /// Stop the thread and forget what waits, as a crash would (tests of the recovery).
    pub(crate) fn abandon(&self) {
        self.stop_thread();
        *self.pending() = Pending::default();
    }

    fn stop_thread(&self) {
        self.closing.store(true, Ordering::Release);
        {
            // Under the lock, so the thread is either waiting (and woken) or not yet waiting
            // (and sees `closing`).
            let _p = self.pending();
            self.wake.notify_all();
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::warn!("the settling thread panicked");
            }
        }
    }
}
