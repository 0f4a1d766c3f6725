//! The SQLite index: schema, its version, and connection settings.
//!
//! Schema 2 (this one) scopes instances by source site: a SOP Instance UID is unique within a
//! site, so one township cannot learn another's hash for a UID or squat a UID to block
//! another's image. A study belongs to the site that sent it first (`studies`); its manifest is
//! the union of what that site listed (`manifest_entries`), with a running count of what is
//! still missing so that a completion is known in O(1) per stored instance. Schema 1 (the first
//! release) is migrated in place on open.
//!
//! Schema 3 adds the catalog (`catalog`: one denormalised row per instance with the patient,
//! study, series and instance attributes C-FIND and QIDO match on; see `catalog.rs`). Schema 2
//! is migrated in place: every stored instance gets a catalog row with what the index already
//! knew (UIDs, SOP class, modality) and `complete = 0`.
//!
//! Schema 4 records failed delivery attempts on the outbox (`attempts`, `last_status`,
//! `last_reason`, `failed_at`): a DIMSE peer that refuses an instance for good (e.g. status
//! 0xA900) takes the entry out of the pending queue (`failed_at` set) with its status and reason
//! kept; transient failures only count and remember the last status. Schema 3 is migrated in
//! place (the columns are added; existing entries have no failures).
//!
//! Schema 5 indexes person names for wildcard searches (`catalog_names`: the lowercased whole
//! Patient's Name and each of its component groups, one row per key, see
//! `query::name_keys`): a search like `wang*` or `王*` reads a range of that index instead of
//! matching every instance row of the reader. Schema 4 is migrated in place (the keys of every
//! catalog row are computed and written).
//!
//! Indexes that only make lookups cheaper are added without a new schema number: every open
//! creates those missing (`CREATE INDEX IF NOT EXISTS`), and older code ignores them. So came
//! `outbox_by_instance` (an instance's outbox entries, whoever the reader: a prune's checks and
//! the key checks of an instance's delete read the whole outbox without it).

use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

use crate::StoreError;

/// The schema this code writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 5;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY,
    source_site TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    modality TEXT NOT NULL,
    source_identity TEXT NOT NULL,
    size INTEGER NOT NULL,
    hash BLOB NOT NULL,
    priority INTEGER NOT NULL,
    stored_at INTEGER NOT NULL,
    UNIQUE(source_site, sop_uid)
);
CREATE INDEX IF NOT EXISTS instances_by_study ON instances(study_uid, sop_uid);
-- Content-addressed objects: is a file still referred to (prune, sweep)?
CREATE INDEX IF NOT EXISTS instances_by_hash ON instances(hash);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY,
    owner_site TEXT NOT NULL,
    claimed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    reader TEXT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES instances(id),
    priority INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    delivered_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_reason TEXT,
    failed_at INTEGER,
    UNIQUE(reader, instance_id)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(reader, delivered_at, priority DESC, seq);
-- An instance's entries, whoever the reader (prune; the key checks of an instance's delete).
CREATE INDEX IF NOT EXISTS outbox_by_instance ON outbox(instance_id);
CREATE TABLE IF NOT EXISTS manifests (
    study_uid TEXT PRIMARY KEY,
    source_site TEXT NOT NULL,
    listed INTEGER NOT NULL,
    missing INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    complete_at INTEGER
);
CREATE TABLE IF NOT EXISTS manifest_entries (
    study_uid TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    stored INTEGER NOT NULL,
    PRIMARY KEY(study_uid, sop_uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS study_notices (
    reader TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    instances INTEGER NOT NULL DEFAULT 0,
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
CREATE TABLE IF NOT EXISTS catalog (
    instance_id INTEGER PRIMARY KEY REFERENCES instances(id),
    patient_name TEXT NOT NULL DEFAULT '',
    patient_id TEXT NOT NULL DEFAULT '',
    issuer_of_patient_id TEXT NOT NULL DEFAULT '',
    patient_birth_date TEXT NOT NULL DEFAULT '',
    patient_sex TEXT NOT NULL DEFAULT '',
    study_uid TEXT NOT NULL,
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '',
    referring_physician TEXT NOT NULL DEFAULT '',
    series_uid TEXT NOT NULL DEFAULT '',
    modality TEXT NOT NULL DEFAULT '',
    series_number INTEGER,
    series_description TEXT NOT NULL DEFAULT '',
    body_part TEXT NOT NULL DEFAULT '',
    sop_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL DEFAULT '',
    instance_number INTEGER,
    frames INTEGER,
    rows INTEGER,
    columns INTEGER,
    content_date TEXT NOT NULL DEFAULT '',
    specific_character_set TEXT NOT NULL DEFAULT '',
    text_guessed INTEGER NOT NULL DEFAULT 0,
    text_lossy INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS catalog_by_study ON catalog(study_uid);
CREATE TABLE IF NOT EXISTS catalog_names (
    key TEXT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES catalog(instance_id) ON DELETE CASCADE,
    PRIMARY KEY (key, instance_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS catalog_names_by_instance ON catalog_names(instance_id);
CREATE INDEX IF NOT EXISTS catalog_by_series ON catalog(series_uid);
CREATE INDEX IF NOT EXISTS catalog_by_sop ON catalog(sop_uid);
CREATE INDEX IF NOT EXISTS catalog_by_patient_id ON catalog(patient_id);
CREATE INDEX IF NOT EXISTS catalog_by_accession ON catalog(accession_number);
CREATE INDEX IF NOT EXISTS catalog_by_study_date ON catalog(study_date);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// Schema 1 → 2: instances get an id and are unique per (site, UID); the outbox refers to the
/// id; studies get an owner (the site that stored its earliest instance, or sent its manifest);
/// manifests become entries with a missing count. Runs in one transaction.
const MIGRATE_1_TO_2: &str = r#"
ALTER TABLE instances RENAME TO instances_v1;
ALTER TABLE outbox RENAME TO outbox_v1;
ALTER TABLE manifests RENAME TO manifests_v1;
ALTER TABLE study_notices RENAME TO study_notices_v1;
DROP INDEX IF EXISTS instances_by_study;
DROP INDEX IF EXISTS outbox_pending;
"#;

const MIGRATE_1_TO_2_COPY: &str = r#"
INSERT INTO instances (source_site, sop_uid, study_uid, series_uid, sop_class_uid, modality,
                       source_identity, size, hash, priority, stored_at)
    SELECT source_site, sop_uid, study_uid, series_uid, sop_class_uid, modality,
           source_identity, size, hash, priority, stored_at
    FROM instances_v1 ORDER BY stored_at;
INSERT OR IGNORE INTO studies (study_uid, owner_site, claimed_at)
    SELECT study_uid, source_site, stored_at FROM instances ORDER BY stored_at, id;
INSERT INTO outbox (seq, reader, instance_id, priority, enqueued_at, delivered_at)
    SELECT o.seq, o.reader, i.id, o.priority, o.enqueued_at, o.delivered_at
    FROM outbox_v1 o JOIN instances i ON i.sop_uid = o.sop_uid;
INSERT OR IGNORE INTO studies (study_uid, owner_site, claimed_at)
    SELECT study_uid, source_site, received_at FROM manifests_v1;
INSERT OR IGNORE INTO manifest_entries (study_uid, sop_uid, stored)
    SELECT m.study_uid, j.value,
           EXISTS (SELECT 1 FROM instances i
                   WHERE i.source_site = s.owner_site AND i.sop_uid = j.value)
    FROM manifests_v1 m JOIN studies s ON s.study_uid = m.study_uid, json_each(m.sop_uids) j
    WHERE m.source_site = s.owner_site;
INSERT INTO manifests (study_uid, source_site, listed, missing, received_at, complete_at)
    SELECT m.study_uid, m.source_site,
           (SELECT COUNT(*) FROM manifest_entries e WHERE e.study_uid = m.study_uid),
           (SELECT COUNT(*) FROM manifest_entries e WHERE e.study_uid = m.study_uid AND NOT e.stored),
           m.received_at, m.complete_at
    FROM manifests_v1 m JOIN studies s ON s.study_uid = m.study_uid
    WHERE m.source_site = s.owner_site;
INSERT INTO study_notices (reader, study_uid, sent_at, instances)
    SELECT n.reader, n.study_uid, n.sent_at, COALESCE(m.listed, 0)
    FROM study_notices_v1 n LEFT JOIN manifests m ON m.study_uid = n.study_uid;
DROP TABLE outbox_v1;
DROP TABLE instances_v1;
DROP TABLE manifests_v1;
DROP TABLE study_notices_v1;
"#;

/// Schema 2 → 3: a catalog row for every stored instance, with what schema 2 knew (the rest of
/// its attributes is only in the object file: `complete = 0`). The table itself comes from
/// `SCHEMA`. Idempotent.
const MIGRATE_2_TO_3: &str = r#"
INSERT OR IGNORE INTO catalog (instance_id, study_uid, series_uid, modality, sop_uid,
                               sop_class_uid, complete)
    SELECT id, study_uid, series_uid, modality, sop_uid, sop_class_uid, 0 FROM instances;
"#;

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    // The index holds patient-related metadata: readable by the relay's user only. SQLite
    // creates its -wal and -shm files with the database file's mode.
    crate::fsmode::create_private_file(path)?;
    let mut conn = Connection::open(path)?;
    // WAL + FULL: every commit is fsync'ed before it returns; readers never block the writer.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let old_instances: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'instances'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match (version, old_instances) {
        (SCHEMA_VERSION, _) | (0, None) => {}
        (0, Some(sql)) if sql.contains("sop_uid TEXT PRIMARY KEY") => {
            migrate_1_to_2(&mut conn)?;
            migrate_2_to_3(&mut conn)?;
            migrate_3_to_4(&mut conn)?;
            migrate_4_to_5(&mut conn)?;
        }
        (2, _) => {
            migrate_2_to_3(&mut conn)?;
            migrate_3_to_4(&mut conn)?;
            migrate_4_to_5(&mut conn)?;
        }
        (3, _) => {
            migrate_3_to_4(&mut conn)?;
            migrate_4_to_5(&mut conn)?;
        }
        (4, _) => migrate_4_to_5(&mut conn)?,
        (v, _) if v > SCHEMA_VERSION => {
            return Err(StoreError::Corrupt(format!(
                "the index was written by a newer yilian (schema {v}, this one knows {SCHEMA_VERSION}); run that version or a newer one"
            )))
        }
        _ => {}
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    crate::query::register_functions(&conn)?;
    Ok(conn)
}

/// Schema 4 → 5: the person-name keys of every catalog row (the table comes from `SCHEMA`).
fn migrate_4_to_5(conn: &mut Connection) -> Result<(), StoreError> {
    tracing::info!(
        "migrating the index from schema 4 to 5 (person names indexed for wildcard searches)"
    );
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    {
        let mut read = tx.prepare("SELECT instance_id, patient_name FROM catalog")?;
        let mut write =
            tx.prepare("INSERT OR IGNORE INTO catalog_names (key, instance_id) VALUES (?1, ?2)")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            for key in crate::query::name_keys(&name) {
                write.execute(rusqlite::params![key, id])?;
            }
        }
    }
    tx.pragma_update(None, "user_version", 5)?;
    tx.commit()?;
    Ok(())
}

/// Schema 3 → 4: the outbox's failure columns. A table created by a newer `SCHEMA` during an
/// earlier step of the same migration already has them: only missing columns are added.
fn migrate_3_to_4(conn: &mut Connection) -> Result<(), StoreError> {
    tracing::info!("migrating the index from schema 3 to 4 (failed deliveries on the outbox)");
    let tx = conn.transaction()?;
    let have: Vec<String> = {
        let mut st = tx.prepare("SELECT name FROM pragma_table_info('outbox')")?;
        let names = st.query_map([], |r| r.get::<_, String>(0))?;
        names.collect::<Result<_, _>>()?
    };
    for (column, decl) in [
        ("attempts", "INTEGER NOT NULL DEFAULT 0"),
        ("last_status", "INTEGER"),
        ("last_reason", "TEXT"),
        ("failed_at", "INTEGER"),
    ] {
        if !have.iter().any(|h| h == column) {
            tx.execute_batch(&format!("ALTER TABLE outbox ADD COLUMN {column} {decl};"))?;
        }
    }
    tx.pragma_update(None, "user_version", 4)?;
    tx.commit()?;
    Ok(())
}

fn migrate_2_to_3(conn: &mut Connection) -> Result<(), StoreError> {
    tracing::info!("migrating the index from schema 2 to 3 (catalog for C-FIND and QIDO)");
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(MIGRATE_2_TO_3)?;
    tx.pragma_update(None, "user_version", 3)?;
    tx.commit()?;
    Ok(())
}

fn migrate_1_to_2(conn: &mut Connection) -> Result<(), StoreError> {
    tracing::info!("migrating the index from schema 1 to 2 (instances scoped by site, study owners, manifest entries)");
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "legacy_alter_table", "ON")?;
    let tx = conn.transaction()?;
    tx.execute_batch(MIGRATE_1_TO_2)?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(MIGRATE_1_TO_2_COPY)?;
    tx.pragma_update(None, "user_version", 2)?;
    tx.commit()?;
    conn.pragma_update(None, "legacy_alter_table", "OFF")?;
    Ok(())
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
