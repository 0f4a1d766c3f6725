//! The registry of partial uploads: which exist, which are in use, how much each site holds.
//!
//! Partials are what a township's interrupted uploads leave at the relay so that they can
//! resume. Left alone they would pile up forever (a sender that gives up, a device that offers
//! and resets in a loop), so the registry bounds them two ways:
//! * a **cap per site** in bytes (declared sizes): opening a new partial that would pass it
//!   first removes that site's oldest partials not in use; if that is not enough the upload is
//!   refused ([`StoreError::PartialQuota`]);
//! * a **retention period**: [`Store::sweep_partials`](crate::Store::sweep_partials) removes
//!   partials not in use whose last write is older than it.
//!
//! A partial is in use from `open` until its [`Partial`](crate::Partial) is dropped, and is
//! never removed while in use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::partial::{remove_file, remove_files, PartialInfo};
use crate::StoreError;

#[derive(Debug)]
struct Entry {
    site: String,
    size: u64,
    in_use: bool,
    touched: SystemTime,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct PartialRegistry {
    entries: Mutex<HashMap<String, Entry>>,
    cap_per_site: u64,
}

impl PartialRegistry {
    /// The registry of the partials already in `dir` (left by an earlier run): leftovers of an
    /// interrupted write (temporary sidecars, a part without sidecar or the reverse) are removed.
    pub(crate) fn load(dir: &Path, cap_per_site: u64) -> Result<Self, StoreError> {
        let mut entries = HashMap::new();
        let listing = std::fs::read_dir(dir).map_err(StoreError::io("list", dir))?;
        let mut parts = Vec::new();
        for e in listing {
            let e = e.map_err(StoreError::io("list", dir))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(key) = name.strip_suffix(".part") {
                parts.push(key.to_string());
            } else if name.ends_with(".tmp") {
                remove_file(&e.path());
            }
        }
        for key in parts {
            let part = dir.join(format!("{key}.part"));
            let sidecar = dir.join(format!("{key}.json"));
            let info: Option<PartialInfo> = std::fs::read(&sidecar)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let Some(info) = info else {
                remove_files(&part, &sidecar);
                continue;
            };
            let touched = std::fs::metadata(&part)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            entries.insert(
                key,
                Entry {
                    site: info.source_site,
                    size: info.size,
                    in_use: false,
                    touched,
                },
            );
        }
        // Sidecars whose part is gone.
        if let Ok(listing) = std::fs::read_dir(dir) {
            for e in listing.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(key) = name.strip_suffix(".json") {
                    if !entries.contains_key(key) {
                        remove_file(&e.path());
                    }
                }
            }
        }
        Ok(Self {
            entries: Mutex::new(entries),
            cap_per_site,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserve the partial `key` for `info`, making room within the site's cap.
    pub(crate) fn claim(
        &self,
        dir: &Path,
        key: &str,
        info: &PartialInfo,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.get(key).is_some_and(|e| e.in_use) {
            return Err(StoreError::Corrupt(format!(
                "partial upload {key} is already open (two uploads of one instance at once)"
            )));
        }
        let used = |g: &HashMap<String, Entry>| -> u64 {
            g.iter()
                .filter(|(k, e)| e.site == info.source_site && k.as_str() != key)
                .map(|(_, e)| e.size)
                .sum()
        };
        if used(&g).saturating_add(info.size) > self.cap_per_site {
            // Oldest idle partials of this site first.
            let mut idle: Vec<(SystemTime, String)> = g
                .iter()
                .filter(|(k, e)| e.site == info.source_site && !e.in_use && k.as_str() != key)
                .map(|(k, e)| (e.touched, k.clone()))
                .collect();
            idle.sort();
            for (_, k) in idle {
                if used(&g).saturating_add(info.size) <= self.cap_per_site {
                    break;
                }
                tracing::info!(site = %info.source_site, "removing an old unfinished upload to make room (limits.partial_bytes_per_site)");
                remove_files(
                    &dir.join(format!("{k}.part")),
                    &dir.join(format!("{k}.json")),
                );
                g.remove(&k);
            }
            let used = used(&g);
            if used.saturating_add(info.size) > self.cap_per_site {
                return Err(StoreError::PartialQuota {
                    site: info.source_site.clone(),
                    used,
                    wanted: info.size,
                    cap: self.cap_per_site,
                });
            }
        }
        g.insert(
            key.to_string(),
            Entry {
                site: info.source_site.clone(),
                size: info.size,
                in_use: true,
                touched: SystemTime::now(),
            },
        );
        Ok(())
    }

    /// The partial is no longer open (kept for a resumed upload unless forgotten).
    pub(crate) fn release(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.in_use = false;
            e.touched = SystemTime::now();
        }
    }

    /// The partial's files are gone (stored, discarded).
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Remove partials not in use and untouched for `max_age`; returns how many.
    pub(crate) fn sweep(&self, dir: &Path, max_age: Duration) -> usize {
        let now = SystemTime::now();
        let mut g = self.lock();
        let old: Vec<String> = g
            .iter()
            .filter(|(_, e)| {
                !e.in_use && now.duration_since(e.touched).unwrap_or_default() >= max_age
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            remove_files(
                &dir.join(format!("{k}.part")),
                &dir.join(format!("{k}.json")),
            );
            g.remove(k);
        }
        old.len()
    }

    /// Declared bytes of the partials of `site`, and how many there are.
    pub(crate) fn usage(&self, site: &str) -> (u64, usize) {
        let g = self.lock();
        let mine = g.values().filter(|e| e.site == site);
        let n = mine.clone().count();
        (mine.map(|e| e.size).sum(), n)
    }
}
