//! Connections for reading the index while the group commit writes it.
//!
//! The index is in WAL mode: a reader sees the last committed state and never waits for a
//! writer, and a writer never waits for readers — but only across *connections*. With one
//! connection behind one lock, every lookup waited for whatever held it: a check before a
//! seal (is this UID stored? who owns this study?) sat behind a whole commit, its WAL fsync
//! included, on the path to a C-STORE's answer; a QIDO search did too.
//!
//! So the writer keeps its own connection (`Store::db`), and lookups borrow one of these:
//! opened on first need, `query_only`, returned to the pool when dropped (a few are kept, the
//! rest closed). Each lookup is its own read transaction, so it sees every commit that ended
//! before it started: the same answers as before, without the wait.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::StoreError;

/// Idle connections kept for the next lookups (more are opened when needed, and closed after).
const KEEP: usize = 8;

/// Read-only connections to one index.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A connection for lookups, until the guard is dropped.
    pub(crate) fn get(&self) -> Result<Reader<'_>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        Ok(Reader {
            conn: Some(conn),
            pool: self,
        })
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "query_only", true)?;
        crate::query::register_functions(&conn)?;
        Ok(conn)
    }
}

/// A borrowed read-only connection.
pub(crate) struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Readers,
}

impl Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Taken only in `drop`.
        self.conn.as_ref().expect("a reader's connection")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < KEEP {
                idle.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{NewInstance, PartialInfo, Stored};
    use std::sync::Arc;

    /// Lookups read the index on connections of their own: one made while the writer's
    /// connection is held (a commit in progress, its fsync included) answers without
    /// waiting, and sees what was committed before it.
    #[test]
    fn a_lookup_does_not_wait_for_a_commit_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::Store::small_pool_for_tests(dir.path()).unwrap());
        let bytes = b"object 1.7";
        let mut p = store
            .open_partial(PartialInfo {
                source_site: "township-a".into(),
                study_uid: "1.2.9".into(),
                sop_uid: "1.7".into(),
                size: bytes.len() as u64,
            })
            .unwrap();
        p.write(bytes).unwrap();
        let inst = NewInstance {
            sop_uid: "1.7".into(),
            study_uid: "1.2.9".into(),
            series_uid: "1.2.9.1".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            modality: "CT".into(),
            source_site: "township-a".into(),
            source_identity: "township-a-device".into(),
            priority: 0,
        };
        let stored = store
            .commit(p, *blake3::hash(bytes).as_bytes(), &inst, &[])
            .unwrap();
        assert!(matches!(stored, Stored::New { .. }));

        let writer = store.db();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::spawn(move || {
            let found = s.instance("township-a", "1.7").unwrap().is_some();
            let owner = s.study_owner("1.2.9").unwrap();
            tx.send((found, owner)).unwrap();
        });
        // Not a timing bound: with one shared connection the lookup cannot return while the
        // writer is held, and this fails after half a minute instead of hanging.
        let answer = rx.recv_timeout(std::time::Duration::from_secs(30));
        drop(writer);
        let (found, owner) = answer.expect("the lookup waited for the writer's connection");
        assert!(found);
        assert_eq!(owner.as_deref(), Some("township-a"));
    }
}
