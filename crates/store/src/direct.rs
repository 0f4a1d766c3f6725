//! Direct writes: bytes that must be on the disk before the answer do not pass through the
//! page cache.
//!
//! Every upload is made durable before it is acknowledged: a sealed one (C-STORE, STOW-RS:
//! `sealed.rs`) by one fsync of its whole file, a resumable one (yilian/1) by its checkpoints
//! and its commit. So every byte of it goes to the disk before the answer anyway. Written
//! through the page cache, each byte is first copied into a page the kernel must find (and, on
//! a host that hands a virtual machine its free memory back, fault in), then written back by
//! the fsync. Written with `O_DIRECT`, the bytes go from one of a few reused, aligned buffers
//! to the device, and the fsync has only the metadata left. Measured on this kind of machine
//! (512 KiB files, write + fsync): about 100 µs of CPU per file direct, against 160–260 µs
//! through a page cache that reuses pages and 800–1,300 µs through one that takes fresh
//! memory (BENCHMARKING.md).
//!
//! # The model
//! A [`DirectWriter`] gathers an upload's bytes in an aligned buffer of [`CAP`] bytes and
//! writes each full buffer at its aligned offset. [`DirectWriter::finish`] writes what is left:
//! its aligned part directly, then the last few bytes (less than one block) through the page
//! cache, so the file ends at the upload's exact length without a truncate; the fsync that
//! follows (a seal, a commit) makes both durable.
//!
//! A resumable upload is read while it is written (live readers) and made durable at
//! checkpoints, so it can also [`flush`](DirectWriter::flush): the whole blocks gathered go
//! directly, the last partial block through the page cache, and that block stays gathered, so
//! the next direct write covers it again from its aligned start, the same bytes in front of
//! the new ones (the kernel writes a cached page back and drops it before a direct write over
//! it). Until a flush, the last [`DirectWriter::unwritten`] bytes of the upload are only in
//! the buffer: readers take those from memory (`yilian-ingest`'s live instance). An upload
//! that waits for its data is [parked](DirectWriter::park): flushed, its buffer back in the
//! store's [`Buffers`], so waiting uploads hold no megabyte each.
//!
//! Where the filesystem refuses `O_DIRECT` (tmpfs on older kernels, some network
//! filesystems), or refuses a direct write (a device with larger blocks), the writer falls back
//! to the page cache for the rest of the upload: slower, never wrong.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// Alignment of offsets, lengths and buffers of direct writes: the largest logical block
/// size of common devices (512 and 4096).
pub(crate) const ALIGN: usize = 4096;
/// Bytes gathered before a direct write: one write for most CT slices. Each direct write
/// waits for the device; 256 KiB (a CT slice mostly written while the rest arrives) was tried
/// and ran four C-STORE associations of the bench's corpus 5–10 % slower, at more CPU per GB
/// (BENCHMARKING.md).
pub(crate) const CAP: usize = 1 << 20;
/// Buffers kept for later uploads (more in flight at once are allocated, then freed).
const KEEP: usize = 32;

/// A [`CAP`]-byte buffer aligned to [`ALIGN`].
struct Aligned(NonNull<u8>);

// SAFETY: the buffer is plain memory owned by this value alone.
unsafe impl Send for Aligned {}

/// The layout of a buffer, checked when the crate is compiled.
const LAYOUT: Layout = match Layout::from_size_align(CAP, ALIGN) {
    Ok(l) => l,
    Err(_) => panic!("CAP and ALIGN must make a valid layout"),
};

impl Aligned {
    fn new() -> Aligned {
        // Zeroed, so every byte of it is initialized (a buffer is made once and reused).
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(LAYOUT) };
        match NonNull::new(p) {
            Some(p) => Aligned(p),
            None => std::alloc::handle_alloc_error(LAYOUT),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: CAP bytes allocated (zeroed, so initialized) for this value alone.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), CAP) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), CAP) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { dealloc(self.0.as_ptr(), LAYOUT) }
    }
}

/// The store's buffers for direct writes: reused, so that their pages stay the process's.
#[derive(Default)]
pub(crate) struct Buffers {
    free: Mutex<Vec<Aligned>>,
    /// Buffers held by writers now.
    in_use: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffers").finish_non_exhaustive()
    }
}

impl Buffers {
    fn take(&self) -> Aligned {
        self.in_use
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reused = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        reused.unwrap_or_else(Aligned::new)
    }

    fn give_back(&self, buf: Aligned) {
        self.in_use
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < KEEP {
            free.push(buf);
        }
    }

    /// Buffers held by writers now (uploads whose bytes are flowing).
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Buffers kept now.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Switch `O_DIRECT` on or off for `file`; `false` if the filesystem refuses it.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a valid fd, reading then setting its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_file: &File, on: bool) -> bool {
    !on
}

/// Whether an error of a direct write means "not this way" (then the page cache does it).
fn refused(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Writes an upload into an empty file, directly (see the module docs). Its buffer is taken
/// from the store's [`Buffers`] at the first write and goes back when the writer is parked or
/// dropped.
pub(crate) struct DirectWriter {
    /// The buffer while bytes flow; `None` before the first write and while parked.
    buf: Option<Aligned>,
    /// While parked: the gathered bytes (less than a block, in the file already).
    parked: Vec<u8>,
    /// Bytes gathered (in `buf`, or in `parked`).
    filled: usize,
    /// Of the gathered bytes, how many are in the file already ([`DirectWriter::flush`]).
    flushed: usize,
    /// The file offset of the first gathered byte: a multiple of [`ALIGN`].
    at: u64,
    buffers: Arc<Buffers>,
}

/// Why a direct write did not happen.
#[derive(Debug)]
pub(crate) enum DirectError {
    /// The filesystem or the device refused it: what the writer gathered and the call's bytes
    /// from `taken` on must go through the page cache ([`DirectWriter::fall_back`]).
    Refused { taken: usize },
    /// The write failed: the upload fails.
    Io(std::io::Error),
}

impl std::fmt::Debug for DirectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectWriter")
            .field("filled", &self.filled)
            .field("flushed", &self.flushed)
            .field("at", &self.at)
            .finish()
    }
}

impl DirectWriter {
    /// Direct writes into `file`, which must be empty; `None` where the filesystem refuses
    /// them.
    pub(crate) fn start(file: &File, buffers: &Arc<Buffers>) -> Option<DirectWriter> {
        if !set_direct(file, true) {
            return None;
        }
        Some(DirectWriter {
            buf: None,
            parked: Vec::new(),
            filled: 0,
            flushed: 0,
            at: 0,
            buffers: buffers.clone(),
        })
    }

    fn gathered(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b.bytes()[..self.filled],
            None => &self.parked,
        }
    }

    /// Append `bytes` (the file's length so far is `at + filled`).
    pub(crate) fn write(&mut self, file: &File, bytes: &[u8]) -> Result<(), DirectError> {
        let buf = match &mut self.buf {
            Some(b) => b,
            None => {
                let mut b = self.buffers.take();
                b.bytes_mut()[..self.parked.len()].copy_from_slice(&self.parked);
                self.parked.clear();
                self.buf.insert(b)
            }
        };
        let mut taken = 0;
        while taken < bytes.len() {
            let n = (CAP - self.filled).min(bytes.len() - taken);
            buf.bytes_mut()[self.filled..self.filled + n].copy_from_slice(&bytes[taken..taken + n]);
            self.filled += n;
            taken += n;
            if self.filled == CAP {
                match file.write_all_at(buf.bytes(), self.at) {
                    Ok(()) => {
                        self.at += CAP as u64;
                        self.filled = 0;
                        self.flushed = 0;
                    }
                    Err(e) if refused(&e) => return Err(DirectError::Refused { taken }),
                    Err(e) => return Err(DirectError::Io(e)),
                }
            }
        }
        Ok(())
    }

    /// Bytes gathered and not in the file yet: the file holds the upload's first
    /// `length - unwritten()` bytes.
    pub(crate) fn unwritten(&self) -> usize {
        self.filled - self.flushed
    }

    /// How many of the upload's first bytes the file holds now.
    pub(crate) fn in_file(&self) -> u64 {
        self.at + self.flushed as u64
    }

    /// The bytes counted by [`unwritten`](Self::unwritten).
    pub(crate) fn unwritten_bytes(&self) -> &[u8] {
        &self.gathered()[self.flushed..]
    }

    /// Put every gathered byte into the file and go on writing directly: the whole blocks
    /// directly, the last partial block through the page cache. That block stays gathered,
    /// so the next direct write covers it again from its aligned start (with the same bytes
    /// in front of the new ones). For a resumable upload's checkpoint and before it waits for
    /// data. `Refused`: everything gathered must go through the page cache
    /// ([`DirectWriter::fall_back`]).
    pub(crate) fn flush(&mut self, file: &File) -> Result<(), DirectError> {
        if self.flushed == self.filled {
            return Ok(());
        }
        let Some(buf) = &mut self.buf else {
            // Parked bytes were flushed before the buffer went back.
            return Ok(());
        };
        let whole = self.filled / ALIGN * ALIGN;
        if whole > 0 {
            match file.write_all_at(&buf.bytes()[..whole], self.at) {
                Ok(()) => {}
                Err(e) if refused(&e) => return Err(DirectError::Refused { taken: 0 }),
                Err(e) => return Err(DirectError::Io(e)),
            }
            buf.bytes_mut().copy_within(whole..self.filled, 0);
            self.at += whole as u64;
            self.filled -= whole;
        }
        if self.filled > 0 {
            if !set_direct(file, false) {
                return Err(DirectError::Io(std::io::Error::other(
                    "cannot switch the file back from direct writes",
                )));
            }
            file.write_all_at(&buf.bytes()[..self.filled], self.at)
                .map_err(DirectError::Io)?;
            if !set_direct(file, true) {
                // Later "direct" writes go through the page cache: slower, never wrong.
                tracing::debug!("cannot switch direct writes back on after a flush");
            }
        }
        self.flushed = self.filled;
        Ok(())
    }

    /// [`flush`](Self::flush), then give the buffer back to the store until the next write
    /// (an upload that waits for its data holds no buffer); the last partial block is kept
    /// aside (less than [`ALIGN`] bytes).
    pub(crate) fn park(&mut self, file: &File) -> Result<(), DirectError> {
        self.flush(file)?;
        if let Some(b) = self.buf.take() {
            self.parked.extend_from_slice(&b.bytes()[..self.filled]);
            self.buffers.give_back(b);
        }
        Ok(())
    }

    /// Write what is gathered; afterwards the file holds every byte (the last partial block
    /// through the page cache, see the module docs) and is no longer in direct mode.
    pub(crate) fn finish(self, file: &File) -> std::io::Result<()> {
        let gathered = self.gathered();
        if self.flushed == self.filled {
            // All in the file already (or nothing written).
            if !set_direct(file, false) {
                return Err(std::io::Error::other(
                    "cannot switch the file back from direct writes",
                ));
            }
            return Ok(());
        }
        let whole = gathered.len() / ALIGN * ALIGN;
        let mut done = 0;
        if whole > 0 {
            match file.write_all_at(&gathered[..whole], self.at) {
                Ok(()) => done = whole,
                Err(e) if refused(&e) => {}
                Err(e) => return Err(e),
            }
        }
        self.through_page_cache(file, &gathered[done..], self.at + done as u64)
    }

    /// Back to the page cache after a refused direct write: what was gathered, then `rest`.
    pub(crate) fn fall_back(self, file: &File, rest: &[u8]) -> std::io::Result<()> {
        let end = self.at + self.filled as u64;
        self.through_page_cache(file, self.gathered(), self.at)?;
        file.write_all_at(rest, end)
    }

    fn through_page_cache(&self, file: &File, bytes: &[u8], at: u64) -> std::io::Result<()> {
        if !set_direct(file, false) {
            return Err(std::io::Error::other(
                "cannot switch the file back from direct writes",
            ));
        }
        file.write_all_at(bytes, at)
    }

    /// Drop what is gathered: the file was cut back to empty.
    pub(crate) fn reset(&mut self) {
        self.filled = 0;
        self.flushed = 0;
        self.at = 0;
        self.parked.clear();
    }

    /// Bytes gathered and not yet written by a full buffer (some may be flushed).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.filled
    }

    /// Whether the writer holds a buffer now.
    #[cfg(test)]
    pub(crate) fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.buffers.give_back(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;
    use yilian_testkit::takes_direct_writes;

    /// Lengths below `below` from the testkit's seeded generator (a failure names its seed).
    struct Lengths(yilian_testkit::Rng);

    impl Lengths {
        fn new(seed: u64) -> Lengths {
            Lengths(yilian_testkit::Rng::new(seed, 0))
        }

        fn next(&mut self, below: usize) -> usize {
            self.0.below(below as u64) as usize
        }
    }

    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 12) as u8)
            .collect()
    }

    fn empty_file(dir: &std::path::Path, name: &str) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    fn is_direct(file: &File) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL on a valid fd.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_DIRECT != 0
    }

    /// A pooled upload of the store writes directly and lands byte-exact: longer than a
    /// buffer with a tail, sealed, committed; the buffer goes back for the next upload.
    #[test]
    fn a_pooled_upload_writes_directly_and_is_stored_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::small_pool_for_tests(dir.path()).unwrap();
        let data = content(2 * CAP + 777, 9);
        let mut p = store.open_scratch("township-a", "1.2.3").unwrap();
        assert!(
            p.is_sealable(),
            "this filesystem keeps no user.* attributes"
        );
        if takes_direct_writes(dir.path()) {
            assert!(p.direct.is_some(), "direct writes not started");
        }
        for piece in data.chunks(100_000) {
            p.write(piece).unwrap();
        }
        assert_eq!(p.len(), data.len() as u64);
        p.seal(b"tag").unwrap();
        assert!(p.direct.is_none(), "the seal completes the direct writes");
        let hash = *blake3::hash(&data).as_bytes();
        let stored = store
            .commit(
                p,
                hash,
                &crate::NewInstance {
                    sop_uid: "1.2.3".into(),
                    study_uid: "1.2".into(),
                    series_uid: "1.2.1".into(),
                    sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
                    modality: "CT".into(),
                    source_site: "township-a".into(),
                    source_identity: "township-a-device".into(),
                    priority: 0,
                },
                &["county-radiology".to_string()],
            )
            .unwrap();
        assert!(matches!(stored, crate::Stored::New { .. }));
        assert!(std::fs::read(store.object_path(&hash)).unwrap() == data);
        if takes_direct_writes(dir.path()) {
            assert_eq!(
                store.buffers.kept(),
                1,
                "the buffer is kept for the next upload"
            );
        }
    }

    /// Whatever the lengths (empty, one byte, a block, a buffer and one byte, several
    /// buffers and a tail) and however they arrive in pieces, the file holds exactly the
    /// bytes, in order, at exactly their length; it leaves direct mode at the end, and the
    /// buffer goes back to the store.
    #[test]
    fn bytes_in_any_pieces_land_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let buffers = Arc::new(Buffers::default());
        let fixed = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            CAP - 1,
            CAP,
            CAP + 1,
            3 * CAP + 4097,
        ];
        let mut lengths = Lengths::new(7);
        let random: Vec<usize> = (0..12).map(|_| lengths.next(3 * CAP)).collect();
        let mut direct_seen = false;
        for (case, &len) in fixed.iter().chain(&random).enumerate() {
            let data = content(len, case as u8);
            let file = empty_file(dir.path(), &format!("f{case}"));
            let Some(mut w) = DirectWriter::start(&file, &buffers) else {
                // This filesystem refuses O_DIRECT: the partial writes through the page cache
                // (`fall_back` is covered below). ext4, XFS and btrfs never do.
                assert!(
                    !takes_direct_writes(dir.path()),
                    "direct writes not started"
                );
                assert!(!set_direct(&file, true));
                continue;
            };
            direct_seen = true;
            #[cfg(target_os = "linux")]
            assert!(is_direct(&file));
            let mut at = 0;
            while at < len {
                // Pieces from 1 byte to a little over a buffer, like the network's chunks.
                let n = (1 + lengths.next(CAP + ALIGN)).min(len - at);
                w.write(&file, &data[at..at + n]).unwrap();
                at += n;
                assert!(w.pending() < CAP, "a full buffer is written at once");
            }
            w.finish(&file).unwrap();
            #[cfg(target_os = "linux")]
            assert!(!is_direct(&file), "case {case}: still in direct mode");
            file.sync_all().unwrap();
            let back = std::fs::read(dir.path().join(format!("f{case}"))).unwrap();
            assert_eq!(back.len(), len, "case {case}: length");
            assert!(back == data, "case {case} ({len} bytes): content differs");
        }
        if direct_seen {
            assert_eq!(buffers.kept(), 1, "one buffer, reused by every writer");
        }
    }

    /// Flushes and parks at any moment, between pieces of any length: after each one the
    /// file (read through another open file, as a live reader reads it) holds exactly the
    /// bytes so far; a parked writer holds no buffer and takes one again at its next write;
    /// writes go on directly, and the end is byte-exact.
    #[test]
    fn flushes_and_parks_anywhere_leave_the_file_exact_and_go_on_directly() {
        let dir = tempfile::tempdir().unwrap();
        let buffers = Arc::new(Buffers::default());
        let mut lengths = Lengths::new(23);
        for case in 0..6u8 {
            let len = CAP / 2 + lengths.next(3 * CAP);
            let data = content(len, case);
            let name = format!("f{case}");
            let file = empty_file(dir.path(), &name);
            let Some(mut w) = DirectWriter::start(&file, &buffers) else {
                assert!(
                    !takes_direct_writes(dir.path()),
                    "direct writes not started"
                );
                return;
            };
            let mut at = 0;
            let mut flushes = 0;
            while at < len {
                let n = (1 + lengths.next(CAP / 3)).min(len - at);
                w.write(&file, &data[at..at + n]).unwrap();
                at += n;
                assert!(w.holds_buffer());
                assert_eq!(w.unwritten_bytes(), &data[at - w.unwritten()..at]);
                match lengths.next(4) {
                    0 => w.flush(&file).unwrap(),
                    1 => {
                        w.park(&file).unwrap();
                        assert!(!w.holds_buffer(), "case {case}: parked with a buffer");
                    }
                    _ => continue,
                }
                flushes += 1;
                assert_eq!(w.unwritten(), 0);
                #[cfg(target_os = "linux")]
                assert!(is_direct(&file), "case {case}: a flush left direct mode");
                let back = std::fs::read(dir.path().join(&name)).unwrap();
                assert_eq!(back.len(), at, "case {case}: length after a flush");
                assert!(back == data[..at], "case {case}: content after a flush");
            }
            assert!(flushes > 0);
            w.finish(&file).unwrap();
            file.sync_all().unwrap();
            let back = std::fs::read(dir.path().join(&name)).unwrap();
            assert!(back == data, "case {case} ({len} bytes): content differs");
        }
        assert_eq!(buffers.kept(), 1, "one buffer, reused by every writer");
    }

    /// After a refused direct write, what was gathered and the rest of the call go through
    /// the page cache at the right offsets, and later bytes follow them.
    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let buffers = Arc::new(Buffers::default());
        let file = empty_file(dir.path(), "f");
        let Some(mut w) = DirectWriter::start(&file, &buffers) else {
            assert!(!set_direct(&file, true));
            return;
        };
        let data = content(2 * CAP + 5000, 3);
        // One buffer written directly, part of the next gathered.
        w.write(&file, &data[..CAP + 300]).unwrap();
        assert_eq!(w.pending(), 300);
        // The next direct write is refused (as a device with larger blocks would refuse it):
        // what was gathered and the call's bytes go through the page cache.
        w.fall_back(&file, &data[CAP + 300..CAP + 400 + 1000])
            .unwrap();
        // The rest as a buffered partial would write it.
        file.write_all_at(&data[CAP + 1400..], (CAP + 1400) as u64)
            .unwrap();
        #[cfg(target_os = "linux")]
        assert!(!is_direct(&file));
        assert!(std::fs::read(dir.path().join("f")).unwrap() == data);
        assert_eq!(buffers.kept(), 1);
    }
}
