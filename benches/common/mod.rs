//! Helpers shared by the end-to-end benches: scratch space on a real disk.
#![allow(dead_code)]

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
