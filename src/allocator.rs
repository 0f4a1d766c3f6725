//! The C allocator, tuned for the relay.
//!
//! glibc gives threads their own arenas, up to 8 per core. The relay allocates a delivery's
//! file reads on blocking-pool threads and frees them on whichever thread QUIC acknowledges
//! them; freed memory goes back to the arena of the thread that allocated it and is reused
//! only by threads attached to that arena. With many readers that kept the relay's RSS at
//! about twice its live buffers (memory_2gib, 10 readers, 2 GiB: +105 MiB with glibc's
//! default, +54 MiB with two arenas; BENCHMARKING.md). One arena per core keeps freed
//! memory reusable by everyone. `MALLOC_ARENA_MAX` in the environment still wins.

use std::sync::OnceLock;

static LIMIT: OnceLock<Option<usize>> = OnceLock::new();

/// Limit glibc's arenas to one per core (at least two). Call before any other thread starts.
pub fn limit_arenas() {
    LIMIT.get_or_init(set_limit);
}

/// The limit [`limit_arenas`] set, or `None` when the environment or the platform decides.
pub fn arena_limit() -> Option<usize> {
    LIMIT.get().copied().flatten()
}

fn set_limit() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return None;
        }
        let arenas = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 64);
        // SAFETY: mallopt only changes allocator parameters; it is called at start-up,
        // before the runtime's threads exist, and the value is in range.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int) };
        (ok == 1).then_some(arenas)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}
