//! Direct writes for sealed uploads: bytes that must be on the disk before the answer do not
//! pass through the page cache.
//!
//! A sealed upload (C-STORE, STOW-RS: `sealed.rs`) is acknowledged after one fsync of its
//! whole file, so every byte of it goes to the disk before the answer anyway. Written through
//! the page cache, each byte is first copied into a page the kernel must find (and, on a host
//! that hands a virtual machine its free memory back, fault in), then written back by the
//! fsync. Written with `O_DIRECT`, the bytes go from one of a few reused, aligned buffers to the
//! device, and the fsync has only the metadata left. Measured on this kind of machine (512 KiB
//! files, write + fsync): about 100 µs of CPU per file direct, against 160–260 µs through a
//! page cache that reuses pages and 800–1,300 µs through one that takes fresh memory
//! (BENCHMARKING.md).
//!
//! # The model
//! A [`DirectWriter`] gathers an upload's bytes in an aligned buffer of [`CAP`] bytes and
//! writes each full buffer at its aligned offset. [`DirectWriter::finish`] writes what is left:
//! its aligned part directly, then the last few bytes (less than one block) through the page
//! cache, so the file ends at the upload's exact length without a truncate; the seal's fsync
//! that follows makes both durable. Nothing in between reads the file: a sealed upload has no
//! live readers (its size is unknown until its end) and is never resumed.
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
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffers").finish_non_exhaustive()
    }
}

impl Buffers {
    fn take(&self) -> Aligned {
        let reused = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        reused.unwrap_or_else(Aligned::new)
    }

    fn give_back(&self, buf: Aligned) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < KEEP {
            free.push(buf);
        }
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

/// Writes an upload into an empty file, directly (see the module docs). Its buffer goes back
/// to the store's [`Buffers`] when it is dropped.
pub(crate) struct DirectWriter {
    /// Always `Some` until the writer is dropped.
    buf: Option<Aligned>,
    /// Bytes of `buf` not yet written.
    filled: usize,
    /// The file offset of `buf[0]`: a multiple of [`ALIGN`].
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
            buf: Some(buffers.take()),
            filled: 0,
            at: 0,
            buffers: buffers.clone(),
        })
    }

    fn gathered(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b.bytes()[..self.filled],
            None => &[],
        }
    }

    /// Append `bytes` (the file's length so far is `at + filled`).
    pub(crate) fn write(&mut self, file: &File, bytes: &[u8]) -> Result<(), DirectError> {
        let Some(buf) = &mut self.buf else {
            return Err(DirectError::Refused { taken: 0 });
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
                    }
                    Err(e) if refused(&e) => return Err(DirectError::Refused { taken }),
                    Err(e) => return Err(DirectError::Io(e)),
                }
            }
        }
        Ok(())
    }

    /// Write what is gathered; afterwards the file holds every byte (the last partial block
    /// through the page cache, see the module docs) and is no longer in direct mode.
    pub(crate) fn finish(self, file: &File) -> std::io::Result<()> {
        let gathered = self.gathered();
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
        self.at = 0;
    }

    /// Bytes gathered and not yet in the file.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.filled
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

    /// A seeded generator of lengths (no test-time randomness: a failure names its seed).
    struct Lengths(u64);

    impl Lengths {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % below.max(1)
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

    /// Whether `dir` is on a filesystem known to take direct writes (ext4, XFS, btrfs).
    #[cfg(target_os = "linux")]
    fn takes_direct_writes(dir: &std::path::Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(p) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: a NUL-terminated path and a zeroed statfs for the call to fill.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(p.as_ptr(), &mut st) } != 0 {
            return false;
        }
        const EXT4: i64 = 0xEF53;
        const XFS: i64 = 0x5846_5342;
        const BTRFS: i64 = 0x9123_683E;
        matches!(st.f_type as i64, EXT4 | XFS | BTRFS)
    }

    #[cfg(not(target_os = "linux"))]
    fn takes_direct_writes(_dir: &std::path::Path) -> bool {
        false
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
        let mut lengths = Lengths(7);
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
