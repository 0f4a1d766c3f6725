//! What the filesystem under a test's folder can do.

use std::path::Path;

/// Whether `dir` is on a filesystem known to take direct (`O_DIRECT`) writes: ext4, XFS,
/// btrfs. Tests of direct writes check them there and accept buffered ones elsewhere (tmpfs
/// on older kernels, network filesystems).
#[cfg(target_os = "linux")]
pub fn takes_direct_writes(dir: &Path) -> bool {
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
pub fn takes_direct_writes(_dir: &Path) -> bool {
    false
}
