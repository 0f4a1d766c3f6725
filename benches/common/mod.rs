//! Helpers shared by the end-to-end benches: scratch space on a real disk.
#![allow(dead_code)]

pub mod disk;
pub mod proc;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Filesystem type of the mount holding `p` (longest matching mount point).
pub fn fs_type(p: &Path) -> Option<String> {
    let p = p.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_), Some(mnt), Some(ty)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mnt = mnt.replace("\\040", " ");
        if p.starts_with(&mnt) && best.as_ref().is_none_or(|(l, _)| mnt.len() >= *l) {
            best = Some((mnt.len(), ty.to_string()));
        }
    }
    best.map(|(_, t)| t)
}

/// Where scratch folders go: never a tmpfs (fsync must be real).
pub fn scratch_base() -> Result<PathBuf> {
    if let Ok(d) = std::env::var("YILIAN_BENCH_DIR") {
        std::fs::create_dir_all(&d).with_context(|| format!("YILIAN_BENCH_DIR={d}"))?;
        return Ok(d.into());
    }
    let tmp = std::env::temp_dir();
    match fs_type(&tmp).as_deref() {
        Some("tmpfs") | Some("ramfs") | None => {
            let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            Ok(d)
        }
        Some(_) => Ok(tmp),
    }
}

/// A bench's command-line flags: `--flag value` or `--flag=value`.
pub struct Flags {
    args: std::iter::Skip<std::env::Args>,
    usage: &'static str,
}

impl Flags {
    /// The process's arguments; `usage` is shown when a value is missing.
    pub fn new(usage: &'static str) -> Flags {
        Flags {
            args: std::env::args().skip(1),
            usage,
        }
    }

    /// The next flag (or word), with its value when given inline (`--flag=value`).
    pub fn next_flag(&mut self) -> Option<(String, Option<String>)> {
        let arg = self.args.next()?;
        Some(match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        })
    }

    /// The value of `flag`: the inline one, else the next argument.
    pub fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String> {
        inline
            .or_else(|| self.args.next())
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{}", self.usage))
    }
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A free UDP port on loopback (bound, then released).
pub fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// User + system CPU seconds of `pid`, children it reaped included.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, a)| a)
        .context("unexpected /proc stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += f.get(i).context("short /proc stat")?.parse::<u64>()?;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}

/// The median (the upper one of an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Ratios `a / b` taken within each run (what one run compares ran back to back on the same
/// machine state), their median and each one (`"1.23, 1.45"`): this box's speed drifts
/// between runs more than the ratios do. `pair(run)`: that run's `(a, b)`, if it has both.
pub fn within_run_ratios(runs: usize, pair: impl Fn(usize) -> Option<(f64, f64)>) -> (f64, String) {
    let per_run: Vec<f64> = (0..runs)
        .filter_map(|run| pair(run).map(|(a, b)| a / b))
        .collect();
    let shown = per_run
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    (median(per_run), shown)
}

/// `name`'s identity in `topology` (for issuing its certificate).
pub fn identity(
    topology: &yilian_route::Topology,
    name: &str,
) -> Result<yilian_transport::PeerIdentity> {
    let id = topology
        .identities()
        .find(|i| i.name == name)
        .ok_or_else(|| anyhow::anyhow!("the example topology has no identity {name}"))?;
    Ok(yilian_transport::PeerIdentity {
        name: id.name.clone(),
        site: id.site.clone(),
        role: id.role.as_str().parse()?,
        department: id.department.clone(),
    })
}

/// The emulated links the benches accept: 0.1–1000 Mbit/s, 1–5000 ms RTT, loss below 50 %.
pub fn check_link(rate_bps: u64, rtt: std::time::Duration, loss: f64) -> Result<()> {
    use std::time::Duration;
    anyhow::ensure!(
        (100_000..=1_000_000_000).contains(&rate_bps),
        "rate {rate_bps} bit/s: between 0.1 and 1000 Mbit/s"
    );
    anyhow::ensure!(
        (Duration::from_millis(1)..=Duration::from_secs(5)).contains(&rtt),
        "RTT {rtt:?}: between 1 and 5000 ms"
    );
    anyhow::ensure!(
        (0.0..0.5).contains(&loss),
        "loss {:.1} %: below 50 %",
        loss * 100.0
    );
    Ok(())
}
