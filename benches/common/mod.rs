//! Helpers shared by the end-to-end benches: scratch space on a real disk.
#![allow(dead_code)]

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
