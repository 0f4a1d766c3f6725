//! The SQLite index: schema and connection settings.

use rusqlite::Connection;
use std::path::Path;

use crate::StoreError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    modality TEXT NOT NULL,
    source_site TEXT NOT NULL,
    source_identity TEXT NOT NULL,
    size INTEGER NOT NULL,
    hash BLOB NOT NULL,
    priority INTEGER NOT NULL,
    stored_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_by_study ON instances(study_uid);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    reader TEXT NOT NULL,
    sop_uid TEXT NOT NULL REFERENCES instances(sop_uid),
    priority INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE(reader, sop_uid)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(reader, delivered_at, priority DESC, seq);
CREATE TABLE IF NOT EXISTS manifests (
    study_uid TEXT PRIMARY KEY,
    source_site TEXT NOT NULL,
    sop_uids TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    complete_at INTEGER
);
CREATE TABLE IF NOT EXISTS study_notices (
    reader TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY(reader, study_uid)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    site TEXT,
    action TEXT NOT NULL,
    study_uid TEXT,
    sop_uid TEXT,
    outcome TEXT NOT NULL,
    detail TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // WAL + FULL: every commit is fsync'ed before it returns; readers never block the writer.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
