//! Removing what was forwarded: a township gateway keeps each image for a while after the
//! county relay acknowledged it (the township's local copy), then removes it, so its disk does
//! not fill up.
//!
//! An instance is removed only when **every** outbox entry for it was delivered before the
//! cut-off: one still pending, or refused for good (`failed_at`: the relay never took it, so
//! this is the only copy), keeps it. The rows go first, in one transaction with an audit entry
//! per instance (action `prune`); the object file goes after, and only when no other instance
//! row shares its content. A crash in between leaves an object file nothing refers to, never
//! an index row without its file; [`Store::sweep_unreferenced_objects`] removes those (the
//! gateway runs it at start, after the sealed uploads of the last run were committed and
//! before its door opens). Each batch first settles the sealed commits (`settle.rs`): a pooled
//! copy left behind would otherwise be committed again after a crash, bringing back what was
//! pruned.

use rusqlite::params;

use crate::store::Store;
use crate::{AuditAction, AuditEvent, StoreError};

/// At most this many instances per transaction (a long backlog is removed in several).
const BATCH: i64 = 500;

/// Up to `?2` instances to remove, in row order after row `?3`, every outbox entry of which
/// was delivered at or before `?1`. Each instance's entries are probed through
/// `outbox_by_instance` (without that index, each probe read the whole outbox: a prune was
/// quadratic, under the index's lock). A prune goes on after the last row the previous batch
/// removed, so instances kept (pending, refused, recent) are read once per prune, not once
/// per batch.
pub(crate) const VICTIMS: &str =
    "SELECT i.id, i.hash, i.size, i.source_site, i.study_uid, i.sop_uid
     FROM instances i
     WHERE i.id > ?3
       AND EXISTS (SELECT 1 FROM outbox o WHERE o.instance_id = i.id)
       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.instance_id = i.id
           AND (o.delivered_at IS NULL OR o.delivered_at > ?1
                OR o.failed_at IS NOT NULL))
     ORDER BY i.id LIMIT ?2";

/// The rows of one pruned instance `?1` (its outbox entries through `outbox_by_instance`;
/// the key checks of the instance's own delete use the same index).
pub(crate) const REMOVE_INSTANCE: [&str; 3] = [
    "DELETE FROM catalog WHERE instance_id = ?1",
    "DELETE FROM outbox WHERE instance_id = ?1",
    "DELETE FROM instances WHERE id = ?1",
];

/// An object file no row refers to any more, and its size.
type Orphan = ([u8; 32], u64);

/// An instance to remove.
struct Victim {
    id: i64,
    hash: Vec<u8>,
    size: i64,
    site: String,
    study: String,
    sop: String,
}

/// What a prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub instances: u64,
    pub bytes: u64,
}

impl Store {
    /// Remove the instances whose every outbox entry was delivered at or before
    /// `delivered_before` (milliseconds since the epoch), `actor` named in the audit.
    pub fn prune_delivered(
        &self,
        delivered_before: i64,
        actor: &str,
    ) -> Result<Pruned, StoreError> {
        let mut total = Pruned::default();
        let mut after = 0;
        loop {
            let (removed, files, last) = self.prune_batch(delivered_before, actor, after)?;
            after = last;
            for (hash, size) in &files {
                total.bytes += size;
                let path = self.object_path(hash);
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(path = %path.display(), "cannot remove a pruned object: {e}");
                    }
                }
            }
            total.instances += removed;
            if removed < BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// One transaction: the rows of up to [`BATCH`] instances after row `after`; returns how
    /// many, the object files no row refers to any more (hash, size), and the last row removed.
    fn prune_batch(
        &self,
        delivered_before: i64,
        actor: &str,
        after: i64,
    ) -> Result<(u64, Vec<Orphan>, i64), StoreError> {
        // Every sealed commit indexed so far has handed its pooled name to the settler (under
        // the index's lock): settled, none of them can bring a pruned instance back at the next
        // start (`settle.rs`). The bulk before the lock, so that commits do not wait for it;
        // then what was committed meanwhile, under it.
        self.settler.settle()?;
        let mut db = self.db();
        self.settler.settle()?;
        let tx = db.transaction()?;
        let victims: Vec<Victim> = {
            let mut st = tx.prepare_cached(VICTIMS)?;
            let rows = st.query_map(params![delivered_before, BATCH, after], |r| {
                Ok(Victim {
                    id: r.get(0)?,
                    hash: r.get(1)?,
                    size: r.get(2)?,
                    site: r.get(3)?,
                    study: r.get(4)?,
                    sop: r.get(5)?,
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut files = Vec::new();
        for Victim {
            id,
            hash,
            size,
            site,
            study,
            sop,
        } in &victims
        {
            for sql in REMOVE_INSTANCE {
                tx.prepare_cached(sql)?.execute([id])?;
            }
            crate::audit::insert(
                &tx,
                &AuditEvent {
                    actor: actor.to_string(),
                    site: Some(site.clone()),
                    action: AuditAction::Prune,
                    study_uid: Some(study.clone()),
                    sop_uid: Some(sop.clone()),
                    outcome: "ok".into(),
                    detail: Some("forwarded and kept for the retention period".into()),
                },
            )?;
            let shared: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM instances WHERE hash = ?1)",
                [hash],
                |r| r.get(0),
            )?;
            let hash: Option<[u8; 32]> = hash.as_slice().try_into().ok();
            if let (false, Some(h)) = (shared, hash) {
                files.push((h, (*size).max(0) as u64));
            }
        }
        tx.commit()?;
        let last = victims.last().map_or(after, |v| v.id);
        Ok((victims.len() as u64, files, last))
    }
}

impl Store {
    /// Remove the object files no instance row refers to (left by a crash between a prune's
    /// transaction and its file removals). Only while nothing is being committed: a sealed
    /// upload's file is linked into `objects/` a moment before its row exists.
    pub fn sweep_unreferenced_objects(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        let objects = &self.objects;
        for fan in std::fs::read_dir(objects).map_err(StoreError::io("list", objects))? {
            let fan = fan.map_err(StoreError::io("list", objects))?.path();
            if !fan.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&fan).map_err(StoreError::io("list", &fan))? {
                let path = entry.map_err(StoreError::io("list", &fan))?.path();
                let Some(hash) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| hex::decode(s).ok())
                else {
                    continue;
                };
                let referenced: bool = self.db().query_row(
                    "SELECT EXISTS (SELECT 1 FROM instances WHERE hash = ?1)",
                    [&hash],
                    |r| r.get(0),
                )?;
                if !referenced {
                    std::fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
