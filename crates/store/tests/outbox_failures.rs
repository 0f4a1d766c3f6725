//! Failed deliveries on the outbox (schema 4): transient failures count and keep the last
//! status; a permanent one takes the entry out of the pending queue with its status kept; the
//! administrator can put it back. Schema 3 is migrated in place.

mod common;

use common::{store, STUDY};
use yilian_store::*;

const PACS: &str = "county-pacs";

fn pending(s: &Store, reader: &str) -> Vec<String> {
    s.pending_for(reader)
        .unwrap()
        .into_iter()
        .map(|i| i.instance.sop_uid)
        .collect()
}

fn failure(status: u16, permanent: bool) -> DeliveryFailure {
    DeliveryFailure {
        status: Some(status),
        reason: format!("AE PACS answered status 0x{status:04X}: \"test\""),
        permanent,
    }
}

#[test]
fn transient_failures_count_and_a_permanent_one_leaves_the_queue_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    store(&s, "1.1", 0, &[PACS, "county-radiology"]);
    store(&s, "1.2", 1, &[PACS]);
    store(&s, "1.3", 0, &[PACS]);
    assert_eq!(pending(&s, PACS), ["1.2", "1.1", "1.3"]);

    // Transient: stays pending, counted, audited as a retry.
    assert!(s
        .record_failure(PACS, STUDY, "1.1", &failure(0xA700, false))
        .unwrap());
    assert_eq!(pending(&s, PACS), ["1.2", "1.1", "1.3"]);
    assert!(s.failed_for(PACS).unwrap().is_empty());

    // Permanent: out of the pending queue (and of the queue depths), kept as failed.
    assert!(s
        .record_failure(PACS, STUDY, "1.1", &failure(0xA900, true))
        .unwrap());
    assert_eq!(pending(&s, PACS), ["1.2", "1.3"]);
    assert!(s.pending_one(PACS, STUDY, "1.1").unwrap().is_none());
    assert!(!s.is_pending(PACS, STUDY, "1.1").unwrap());
    let failed = s.failed_for(PACS).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].instance.sop_uid, "1.1");
    assert_eq!(failed[0].attempts, 2);
    assert_eq!(failed[0].last_status, Some(0xA900));
    assert!(failed[0].last_reason.contains("0xA900"), "{:?}", failed[0]);
    assert!(failed[0].failed_at_ms > 0);
    let depth = s
        .queue_depths()
        .unwrap()
        .into_iter()
        .find(|d| d.reader == PACS)
        .unwrap();
    assert_eq!(depth.instances, 2);

    // Other readers of the same instance are not affected.
    assert_eq!(pending(&s, "county-radiology"), ["1.1"]);

    // A failed entry cannot fail again, nor can an unknown or delivered one.
    assert!(!s
        .record_failure(PACS, STUDY, "1.1", &failure(0xA900, true))
        .unwrap());
    assert!(!s
        .record_failure(PACS, STUDY, "9.9", &failure(0xA900, true))
        .unwrap());
    s.mark_delivered(PACS, STUDY, "1.3").unwrap();
    assert!(!s
        .record_failure(PACS, STUDY, "1.3", &failure(0xA700, false))
        .unwrap());

    // Every attempt outcome is in the audit log.
    let outcomes: Vec<(String, Option<String>, String)> = s
        .audit_entries(AuditAction::Deliver)
        .unwrap()
        .into_iter()
        .map(|a| (a.outcome, a.sop_uid, a.actor))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "retry".to_string(),
                Some("1.1".to_string()),
                PACS.to_string()
            ),
            ("refused".into(), Some("1.1".into()), PACS.into()),
            ("ok".into(), Some("1.3".into()), PACS.into()),
        ]
    );

    // The administrator puts it back: pending again, history kept.
    assert_eq!(s.retry_failed(PACS, Some("1.1")).unwrap(), 1);
    assert_eq!(pending(&s, PACS), ["1.2", "1.1"]);
    assert_eq!(s.retry_failed(PACS, None).unwrap(), 0);
    drop(s);

    // All of it survives a reopen.
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert_eq!(pending(&s, PACS), ["1.2", "1.1"]);
}

/// A data directory at schema 3 (this schema without the failure columns) gets them; its
/// entries stay as they were.
#[test]
fn schema_3_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s =
            Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        store(&s, "1.1", 0, &["r"]);
        store(&s, "1.2", 0, &["r"]);
        s.mark_delivered("r", STUDY, "1.1").unwrap();
    }
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    db.execute_batch(
        "ALTER TABLE outbox DROP COLUMN attempts;
         ALTER TABLE outbox DROP COLUMN last_status;
         ALTER TABLE outbox DROP COLUMN last_reason;
         ALTER TABLE outbox DROP COLUMN failed_at;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(db);
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert_eq!(pending(&s, "r"), ["1.2"]);
    assert!(s
        .record_failure("r", STUDY, "1.2", &failure(0xC000, true))
        .unwrap());
    assert!(pending(&s, "r").is_empty());
    assert_eq!(s.failed_for("r").unwrap()[0].last_status, Some(0xC000));
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5, "migrated through schema 4 to the current one");
    drop(db);
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32))
        .expect("reopens at the current schema");
    assert_eq!(s.failed_for("r").unwrap().len(), 1);
}
