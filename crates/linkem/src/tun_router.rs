//! TUN devices and the userspace router that moves IP packets between two of them through
//! the two [`Link`](crate::Link)s of a [`LinkControl`].
//!
//! The router is one OS thread: `ppoll` on both TUN fds and a stop eventfd, with the timeout
//! set to the earliest due packet of the two delay lines (nanosecond timeout, 1 µs timer
//! slack). Packets are read in batches, offered to the model, copied into recycled buffers and
//! written to the other TUN when due. No task, timer or allocation per packet in the steady
//! state; memory is the in-flight delay line plus a bounded buffer pool.
//!
//! TUN devices are opened without `IFF_VNET_HDR`, so the kernel never hands the router a
//! GSO/TSO super-packet: every read is one IP packet of at most the device MTU, and the
//! model sees the packets a real link would carry.

use crate::control::{Direction, LinkControl};
use crate::model::DelayLine;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// `_IOW('T', 202, int)`.
const TUNSETIFF: u64 = 0x4004_54ca;
/// Packets read from one device per wake-up before delivering again.
const READ_BATCH: usize = 64;
/// Free packet buffers kept for reuse.
const POOL_MAX: usize = 4096;
/// Largest read (TUN MTU is 1500 here; 64 KiB covers any MTU).
const MAX_PACKET: usize = 65_536;

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TUN device (`IFF_TUN | IFF_NO_PI`, non-blocking). Closing it deletes the device.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
}

impl Tun {
    /// Create a TUN device in the calling thread's network namespace. `pattern` may contain
    /// `%d` for the kernel to pick a free number (e.g. `"ylk%d"`); at most 15 bytes.
    pub fn create(pattern: &str) -> io::Result<Tun> {
        let bytes = pattern.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {pattern:?} (1 to 15 bytes)"),
            ));
        }
        // SAFETY: a constant NUL-terminated path; the returned fd is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TUN | IFF_NO_PI,
            _pad: [0; 22],
        };
        for (dst, &src) in req.name.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        // SAFETY: TUNSETIFF takes a pointer to a struct ifreq, which IfReq lays out (40
        // bytes); the kernel writes the chosen name back into it.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let name: Vec<u8> = req
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        Ok(Tun {
            fd,
            name: String::from_utf8_lossy(&name).into_owned(),
        })
    }

    /// The name the device got when created (renaming it later does not change this).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The router thread; stops (and closes both TUN devices) when dropped.
#[derive(Debug)]
pub struct Router {
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Router {
    /// Start moving packets: read from `a` → up link → write to `b`, and `b` → down → `a`.
    pub fn spawn(a: Tun, b: Tun, control: LinkControl) -> io::Result<Router> {
        // SAFETY: plain eventfd creation; checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let stop = unsafe { OwnedFd::from_raw_fd(raw) };
        let stop_fd = stop.as_raw_fd();
        // The thread gets its own copy of the eventfd so either side may close first.
        // SAFETY: duplicating a valid fd.
        let dup = unsafe { libc::fcntl(stop_fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let thread_stop = unsafe { OwnedFd::from_raw_fd(dup) };
        let thread = std::thread::Builder::new()
            .name("linkem-router".into())
            .spawn(move || route(a, b, thread_stop, control))?;
        Ok(Router {
            stop,
            thread: Some(thread),
        })
    }

    /// CPU time the router thread has used so far (user + system), if it is running.
    pub fn cpu_time(&self) -> Option<Duration> {
        use std::os::unix::thread::JoinHandleExt;
        let thread = self.thread.as_ref()?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the pthread is alive (joined only in `stop`), `clock` is a valid out pointer.
        if unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) } != 0 {
            return None;
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid clock id and out pointer.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return None;
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// Stop the thread and wait for it (idempotent).
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes to our eventfd.
            unsafe {
                libc::write(
                    self.stop.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
            if thread.join().is_err() {
                tracing::error!("link emulator router thread panicked");
            }
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Packet {
    offered: Instant,
    data: Vec<u8>,
}

/// Per-direction state of the router.
struct Path {
    from: RawFd,
    to: RawFd,
    dir: Direction,
    line: DelayLine<Packet>,
    write_errors: u64,
}

fn route(a: Tun, b: Tun, stop: OwnedFd, control: LinkControl) {
    // Wake up within a microsecond of the due time instead of the default 50 µs slack.
    // SAFETY: prctl with integer arguments on the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
    let mut paths = [
        Path {
            from: a.fd.as_raw_fd(),
            to: b.fd.as_raw_fd(),
            dir: Direction::Up,
            line: DelayLine::new(),
            write_errors: 0,
        },
        Path {
            from: b.fd.as_raw_fd(),
            to: a.fd.as_raw_fd(),
            dir: Direction::Down,
            line: DelayLine::new(),
            write_errors: 0,
        },
    ];
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        for path in &mut paths {
            deliver_due(path, &control, &mut pool);
        }
        let next = paths.iter().filter_map(|p| p.line.next_due()).min();
        let mut fds = [
            pollfd(paths[0].from),
            pollfd(paths[1].from),
            pollfd(stop.as_raw_fd()),
        ];
        let timeout = next.map(|t| {
            let d = t.saturating_duration_since(Instant::now());
            libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        });
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: three valid pollfds, a valid or null timeout, no signal mask change.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout_ptr,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("link emulator router: poll failed: {e}");
            break;
        }
        if fds[2].revents != 0 {
            break;
        }
        for (i, path) in paths.iter_mut().enumerate() {
            if fds[i].revents & libc::POLLIN != 0 {
                read_batch(path, &control, &mut pool, &mut buf);
            }
        }
    }
    let errors: u64 = paths.iter().map(|p| p.write_errors).sum();
    if errors > 0 {
        tracing::debug!(errors, "link emulator router: TUN write errors");
    }
    drop((a, b));
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn read_batch(path: &mut Path, control: &LinkControl, pool: &mut Vec<Vec<u8>>, buf: &mut [u8]) {
    for _ in 0..READ_BATCH {
        // SAFETY: reading into a buffer of the given length from a valid fd.
        let n = unsafe { libc::read(path.from, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return,
                _ => {
                    tracing::debug!(dir = ?path.dir, "link emulator router: read: {e}");
                    return;
                }
            }
        }
        let len = n as usize;
        let now = Instant::now();
        let verdict = control.link(path.dir).offer(now, len);
        if let Some(at) = verdict.arrival() {
            let mut data = pool.pop().unwrap_or_default();
            data.clear();
            data.extend_from_slice(&buf[..len]);
            path.line.push(at, Packet { offered: now, data });
        }
    }
}

fn deliver_due(path: &mut Path, control: &LinkControl, pool: &mut Vec<Vec<u8>>) {
    let now = Instant::now();
    let mut link = None;
    while let Some((at, packet)) = path.line.pop_due(now) {
        let link = link.get_or_insert_with(|| control.link(path.dir));
        if link.confirm_delivery(packet.offered, at, packet.data.len()) {
            // SAFETY: writing an initialised buffer to a valid fd.
            let n = unsafe { libc::write(path.to, packet.data.as_ptr().cast(), packet.data.len()) };
            if n < 0 {
                path.write_errors += 1;
            }
        }
        if pool.len() < POOL_MAX {
            pool.push(packet.data);
        }
    }
}
