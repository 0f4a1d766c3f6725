//! An IP-level impaired path between two network namespaces: A (the clinic side) and B (the
//! hospital side), each with a TUN device `lnk0`, joined by the userspace [`Router`] through
//! the two links of a [`LinkControl`] (up = A → B, down = B → A).
//!
//! Any program runs unmodified on either side (`ip netns exec`, see
//! [`NetnsPair::command_a`]), TCP included — which is what a fair comparison of yilian QUIC
//! with DCMTK over TCP on the *same* impaired path needs. Needs root (CAP_NET_ADMIN and
//! CAP_SYS_ADMIN) and `/dev/net/tun`.
//!
//! Creating a pair also (host-wide, once) adds the requested TCP congestion control
//! algorithms to `net.ipv4.tcp_allowed_congestion_control`: a namespace may only choose from
//! that list.

use crate::control::{LinkControl, PathStats};
use crate::spec::{LinkSpec, SpecError};
use crate::tun_router::{Router, Tun};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Name of the TUN device inside each namespace.
pub const DEVICE: &str = "lnk0";
const ALLOWED_CC: &str = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";
const AVAILABLE_CC: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

static PAIRS: AtomicU32 = AtomicU32::new(0);

/// One end of a namespace pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client (clinic) side; packets from A to B cross the *up* link.
    A,
    /// The server (hospital) side; packets from B to A cross the *down* link.
    B,
}

/// Why a namespace pair cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Not root, no `/dev/net/tun`, no `ip`: says what is needed.
    #[error("{0}")]
    Requirements(String),
    /// The namespace name prefix cannot be used.
    #[error("invalid namespace prefix {0:?}: use 1 to 24 of [A-Za-z0-9_], no '-'")]
    BadPrefix(String),
    /// A command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// The TUN device could not be created.
    #[error("cannot create a TUN device through /dev/net/tun: {0}")]
    Tun(io::Error),
    /// A congestion control algorithm the kernel does not offer.
    #[error(
        "TCP congestion control {algo:?} is not available in this kernel (available: {available}); \
         `modprobe tcp_{algo}` did not help"
    )]
    CongestionControl {
        /// The algorithm asked for.
        algo: String,
        /// What the kernel offers.
        available: String,
    },
    /// A sysctl could not be read or written.
    #[error("sysctl {key} in {ns}: {source}")]
    Sysctl {
        /// The key (`net.ipv4.…`).
        key: String,
        /// The namespace (or "host").
        ns: String,
        /// Why.
        source: io::Error,
    },
    /// A thread could not enter a namespace.
    #[error("cannot enter network namespace {ns}: {source}")]
    Enter {
        /// The namespace.
        ns: String,
        /// Why.
        source: io::Error,
    },
    /// The router thread could not start.
    #[error("cannot start the router thread: {0}")]
    Router(io::Error),
    /// A link spec failed validation.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Settings of a pair before it is created; see [`NetnsPair::builder`].
#[derive(Clone, Debug)]
pub struct NetnsBuilder {
    prefix: String,
    up: LinkSpec,
    down: LinkSpec,
    seed: u64,
    cc: [String; 2],
    sysctls: [Vec<(String, String)>; 2],
}

impl NetnsBuilder {
    /// Impairments of A → B (`up`) and B → A (`down`).
    pub fn links(mut self, up: LinkSpec, down: LinkSpec) -> Self {
        self.up = up;
        self.down = down;
        self
    }
    /// Seed of both links (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// TCP congestion control of one namespace (default `cubic`, what devices in the field
    /// mostly run).
    pub fn congestion_control(mut self, side: Side, algo: &str) -> Self {
        self.cc[side as usize] = algo.to_string();
        self
    }
    /// Another sysctl (`net.ipv4.tcp_rmem`, …) for one namespace, applied after the defaults.
    pub fn sysctl(mut self, side: Side, key: &str, value: &str) -> Self {
        self.sysctls[side as usize].push((key.to_string(), value.to_string()));
        self
    }
    /// Make the namespaces, devices and router.
    pub fn create(self) -> Result<NetnsPair, NetnsError> {
        NetnsPair::create_with(self)
    }
}

/// Two network namespaces joined by an emulated link; deleted on drop.
#[derive(Debug)]
pub struct NetnsPair {
    ns: [String; 2],
    addr: [Ipv4Addr; 2],
    control: LinkControl,
    router: Option<Router>,
}

impl NetnsPair {
    /// A pair with perfect links and `cubic` on both sides; see [`NetnsPair::builder`].
    ///
    /// Namespaces are named `{prefix}-{pid}-{n}-a` / `-b`; stale ones with the same prefix
    /// left by dead processes are deleted first.
    pub fn create(prefix: &str) -> Result<NetnsPair, NetnsError> {
        NetnsPair::builder(prefix).create()
    }

    /// Settings for a new pair.
    pub fn builder(prefix: &str) -> NetnsBuilder {
        NetnsBuilder {
            prefix: prefix.to_string(),
            up: LinkSpec::ideal(),
            down: LinkSpec::ideal(),
            seed: 0,
            cc: ["cubic".to_string(), "cubic".to_string()],
            sysctls: [Vec::new(), Vec::new()],
        }
    }

    /// Check that this process can create namespace pairs: root, `/dev/net/tun`, `ip`.
    pub fn check_requirements() -> Result<(), NetnsError> {
        let mut missing = Vec::new();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            missing
                .push("root (CAP_NET_ADMIN and CAP_SYS_ADMIN: run the tests as root, as CI does)");
        }
        if !Path::new("/dev/net/tun").exists() {
            missing.push("/dev/net/tun (load the tun module or give the container the device)");
        }
        if !Path::new("/proc/sys/net/ipv4").exists() {
            missing.push("/proc/sys/net (procfs with network sysctls)");
        }
        if Command::new(ip()).arg("-V").output().is_err() {
            missing.push("the `ip` command (apt-get install iproute2)");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NetnsError::Requirements(format!(
                "an emulated path between network namespaces needs: {}",
                missing.join("; ")
            )))
        }
    }

    fn create_with(b: NetnsBuilder) -> Result<NetnsPair, NetnsError> {
        if b.prefix.is_empty()
            || b.prefix.len() > 24
            || !b
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(NetnsError::BadPrefix(b.prefix));
        }
        NetnsPair::check_requirements()?;
        let control = LinkControl::new(b.up, b.down, b.seed)?;
        cleanup_stale(&b.prefix);
        let cc: Vec<&str> = b.cc.iter().map(String::as_str).collect();
        allow_congestion_control(&cc)?;

        let pid = std::process::id();
        let n = PAIRS.fetch_add(1, Ordering::Relaxed);
        let ns = [
            format!("{}-{pid}-{n}-a", b.prefix),
            format!("{}-{pid}-{n}-b", b.prefix),
        ];
        let subnet = (n % 250) as u8;
        let addr = [
            Ipv4Addr::new(10, 201, subnet, 1),
            Ipv4Addr::new(10, 201, subnet, 2),
        ];
        // From here on, dropping `pair` deletes whatever was made.
        let mut pair = NetnsPair {
            ns: ns.clone(),
            addr,
            control,
            router: None,
        };
        let mut created = Vec::new();
        for side in [Side::A, Side::B] {
            let i = side as usize;
            let name = &ns[i];
            run_ip(&["netns", "add", name])?;
            created.push(name.clone());
            run_ip(&["-n", name, "link", "set", "lo", "up"])?;
            let mut sysctls = vec![
                (
                    "net.ipv4.tcp_congestion_control".to_string(),
                    b.cc[i].clone(),
                ),
                ("net.ipv4.tcp_no_metrics_save".to_string(), "1".to_string()),
            ];
            sysctls.extend(b.sysctls[i].iter().cloned());
            for (key, value) in &sysctls {
                pair.set_sysctl(side, key, value)?;
            }
        }
        let tuns = [
            Tun::create("ylk%d").map_err(NetnsError::Tun)?,
            Tun::create("ylk%d").map_err(NetnsError::Tun)?,
        ];
        for side in [Side::A, Side::B] {
            let i = side as usize;
            let (name, tun) = (&ns[i], &tuns[i]);
            run_ip(&["link", "set", tun.name(), "netns", name])?;
            run_ip(&["-n", name, "link", "set", tun.name(), "name", DEVICE])?;
            // No IPv6 on the emulated link: no router solicitations or MLD reports in the
            // counters, only the traffic of the test.
            if Path::new("/proc/sys/net/ipv6").exists() {
                pair.set_sysctl(side, &format!("net.ipv6.conf.{DEVICE}.disable_ipv6"), "1")?;
            }
            let (local, peer) = (addr[i], addr[1 - i]);
            run_ip(&[
                "-n",
                name,
                "addr",
                "add",
                &local.to_string(),
                "peer",
                &format!("{peer}/32"),
                "dev",
                DEVICE,
            ])?;
            run_ip(&["-n", name, "link", "set", DEVICE, "up"])?;
        }
        let [a, b_tun] = tuns;
        pair.router =
            Some(Router::spawn(a, b_tun, pair.control.clone()).map_err(NetnsError::Router)?);
        tracing::debug!(a = %pair.ns[0], b = %pair.ns[1], "namespace pair ready");
        Ok(pair)
    }

    /// Namespace of the A (client) side.
    pub fn ns_a(&self) -> &str {
        &self.ns[0]
    }
    /// Namespace of the B (server) side.
    pub fn ns_b(&self) -> &str {
        &self.ns[1]
    }
    /// Namespace of `side`.
    pub fn ns(&self, side: Side) -> &str {
        &self.ns[side as usize]
    }
    /// Address of the A side (reachable from B).
    pub fn addr_a(&self) -> Ipv4Addr {
        self.addr[0]
    }
    /// Address of the B side (reachable from A).
    pub fn addr_b(&self) -> Ipv4Addr {
        self.addr[1]
    }
    /// Address of `side`.
    pub fn addr(&self, side: Side) -> Ipv4Addr {
        self.addr[side as usize]
    }

    /// `ip netns exec <ns A> <program>`: add arguments, environment, then spawn.
    pub fn command_a(&self, program: impl AsRef<OsStr>) -> Command {
        self.command(Side::A, program)
    }
    /// `ip netns exec <ns B> <program>`.
    pub fn command_b(&self, program: impl AsRef<OsStr>) -> Command {
        self.command(Side::B, program)
    }
    /// `ip netns exec <ns> <program>` for `side`.
    pub fn command(&self, side: Side, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(ip());
        c.args(["netns", "exec", self.ns(side)]).arg(program);
        c
    }

    /// Run `f` on a thread inside `side`'s namespace and wait for it: sockets it creates
    /// belong to that namespace (and stay there when used from other threads).
    pub fn run_in<F, R>(&self, side: Side, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let ns = self.ns(side);
        let file = open_ns(ns)?;
        std::thread::scope(|s| {
            let thread = s.spawn(move || -> Result<R, NetnsError> {
                enter(&file, ns)?;
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Start a thread inside `side`'s namespace (e.g. a server) and return its handle once it
    /// has entered the namespace.
    pub fn spawn_in<F, R>(&self, side: Side, f: F) -> Result<std::thread::JoinHandle<R>, NetnsError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let ns = self.ns(side).to_string();
        let file = open_ns(&ns)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("in-{ns}"))
            .spawn(move || {
                let entered = enter(&file, &ns);
                let ok = entered.is_ok();
                let _ = tx.send(entered);
                if !ok {
                    // The caller got the error; nothing to run.
                    std::panic::panic_any("namespace not entered");
                }
                f()
            })
            .map_err(|source| NetnsError::Enter {
                ns: self.ns(side).to_string(),
                source,
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(thread),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetnsError::Enter {
                ns: self.ns(side).to_string(),
                source: io::Error::other("thread ended before entering the namespace"),
            }),
        }
    }

    /// Read a sysctl (`net.ipv4.tcp_congestion_control`) inside `side`'s namespace.
    pub fn sysctl(&self, side: Side, key: &str) -> Result<String, NetnsError> {
        let path = sysctl_path(key);
        let ns = self.ns(side).to_string();
        let read = self.run_in(side, move || std::fs::read_to_string(path))?;
        read.map(|s| s.trim().to_string())
            .map_err(|source| NetnsError::Sysctl {
                key: key.to_string(),
                ns,
                source,
            })
    }

    /// Write a sysctl inside `side`'s namespace.
    pub fn set_sysctl(&self, side: Side, key: &str, value: &str) -> Result<(), NetnsError> {
        let path = sysctl_path(key);
        let ns = self.ns(side).to_string();
        let value = value.to_string();
        self.run_in(side, move || std::fs::write(path, value))?
            .map_err(|source| NetnsError::Sysctl {
                key: key.to_string(),
                ns,
                source,
            })
    }

    /// Change the TCP congestion control of `side` (new connections), allowing it host-wide
    /// first if needed.
    pub fn set_congestion_control(&self, side: Side, algo: &str) -> Result<(), NetnsError> {
        allow_congestion_control(&[algo])?;
        self.set_sysctl(side, "net.ipv4.tcp_congestion_control", algo)
    }

    /// The links (cut, restore, specs, counters) — the same control the UDP proxy offers.
    pub fn control(&self) -> &LinkControl {
        &self.control
    }
    /// Cut both directions now for `duration`.
    pub fn cut_for(&self, duration: Duration) {
        self.control.cut_for(duration);
    }
    /// Cut both directions until [`NetnsPair::restore`].
    pub fn cut_now(&self) {
        self.control.cut_now();
    }
    /// End every cut in force.
    pub fn restore(&self) {
        self.control.restore();
    }
    /// Replace both directions' specs.
    pub fn set_specs(&self, up: LinkSpec, down: LinkSpec) -> Result<(), SpecError> {
        self.control.set_specs(up, down)
    }
    /// Counters of both directions.
    pub fn stats(&self) -> PathStats {
        self.control.stats()
    }
    /// CPU time used by the router thread so far.
    pub fn router_cpu_time(&self) -> Option<Duration> {
        self.router.as_ref()?.cpu_time()
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Stopping the router closes both TUN fds, which deletes the devices.
        if let Some(mut router) = self.router.take() {
            router.stop();
        }
        for ns in &self.ns {
            if Path::new("/run/netns").join(ns).exists() {
                if let Err(e) = run_ip(&["netns", "del", ns]) {
                    tracing::warn!("cannot delete network namespace {ns}: {e}");
                }
            }
        }
    }
}

/// Delete namespaces named `{prefix}-{pid}-…` whose process is gone (left by crashed runs).
/// Returns the names deleted.
pub fn cleanup_stale(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut deleted = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match run_ip(&["netns", "del", &name]) {
            Ok(()) => deleted.push(name),
            Err(e) => tracing::warn!("cannot delete stale namespace {name}: {e}"),
        }
    }
    deleted
}

/// Make sure every algorithm in `algos` may be chosen by a namespace: load it if the kernel
/// does not list it as available, then add it to the host's allowed list.
pub fn allow_congestion_control(algos: &[&str]) -> Result<(), NetnsError> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .map_err(|source| NetnsError::Sysctl {
                key: path.trim_start_matches("/proc/sys/").replace('/', "."),
                ns: "host".into(),
                source,
            })
    };
    let mut allowed = read(ALLOWED_CC)?;
    let mut changed = false;
    for &algo in algos {
        if allowed.iter().any(|a| a == algo) {
            continue;
        }
        if !read(AVAILABLE_CC)?.iter().any(|a| a == algo) {
            // Best effort: many kernels build algorithms as modules.
            let _ = Command::new("modprobe").arg(format!("tcp_{algo}")).output();
            let available = read(AVAILABLE_CC)?;
            if !available.iter().any(|a| a == algo) {
                return Err(NetnsError::CongestionControl {
                    algo: algo.to_string(),
                    available: available.join(" "),
                });
            }
        }
        allowed.push(algo.to_string());
        changed = true;
    }
    if changed {
        std::fs::write(ALLOWED_CC, allowed.join(" ")).map_err(|source| NetnsError::Sysctl {
            key: "net.ipv4.tcp_allowed_congestion_control".into(),
            ns: "host".into(),
            source,
        })?;
        tracing::info!(allowed = %allowed.join(" "), "host TCP congestion control allowed list extended");
    }
    Ok(())
}

fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn open_ns(ns: &str) -> Result<File, NetnsError> {
    File::open(Path::new("/run/netns").join(ns)).map_err(|source| NetnsError::Enter {
        ns: ns.to_string(),
        source,
    })
}

fn enter(file: &File, ns: &str) -> Result<(), NetnsError> {
    // SAFETY: setns on the calling thread with a namespace fd we hold open.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NetnsError::Enter {
            ns: ns.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The `ip` binary (root's PATH has it; fall back to the usual places).
fn ip() -> &'static str {
    for path in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] {
        if Path::new(path).exists() {
            return path;
        }
    }
    "ip"
}

fn run_ip(args: &[&str]) -> Result<(), NetnsError> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new(ip())
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
