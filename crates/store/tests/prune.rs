//! Pruning what was forwarded (a township gateway's retention): an instance goes once every
//! outbox entry for it was delivered before the cut-off — rows, catalog, object file, with an
//! audit entry each — while pending ones, ones refused for good (the only copy) and ones
//! delivered after the cut-off stay.

mod common;

use common::{store, STUDY};
use yilian_store::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn only_instances_delivered_everywhere_before_the_cut_off_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open_with(tmp.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let up = "upstream";
    let delivered = store(&s, "1.2.9.1.1", 0, &[up]);
    let also_delivered = store(&s, "1.2.9.1.2", 0, &[up]);
    let pending = store(&s, "1.2.9.1.3", 0, &[up]);
    let refused = store(&s, "1.2.9.1.4", 0, &[up]);
    let two_readers = store(&s, "1.2.9.1.5", 0, &[up, "county-pacs"]);
    for sop in ["1.2.9.1.1", "1.2.9.1.2", "1.2.9.1.5"] {
        s.mark_delivered(up, STUDY, sop).unwrap();
    }
    assert!(s
        .record_failure(
            up,
            STUDY,
            "1.2.9.1.4",
            &DeliveryFailure {
                status: None,
                reason: "conflict: the relay holds other content under this UID".into(),
                permanent: true,
            },
        )
        .unwrap());
    // A cut-off before the deliveries removes nothing.
    let none = s.prune_delivered(now_ms() - 60_000, "test").unwrap();
    assert_eq!(none, Pruned::default());

    let pruned = s.prune_delivered(now_ms() + 1, "test").unwrap();
    assert_eq!(pruned.instances, 2, "{pruned:?}");
    assert_eq!(pruned.bytes, 2 * "object 1.2.9.1.1".len() as u64);
    for (sop, hash, kept) in [
        ("1.2.9.1.1", delivered, false),
        ("1.2.9.1.2", also_delivered, false),
        ("1.2.9.1.3", pending, true),
        ("1.2.9.1.4", refused, true),
        ("1.2.9.1.5", two_readers, true),
    ] {
        assert_eq!(
            s.instance("township-a", sop).unwrap().is_some(),
            kept,
            "{sop} indexed"
        );
        assert_eq!(s.object_path(&hash).exists(), kept, "{sop} on disk");
    }
    let db = rusqlite::Connection::open(tmp.path().join("index.sqlite")).unwrap();
    let catalog: i64 = db
        .query_row("SELECT COUNT(*) FROM catalog", [], |r| r.get(0))
        .unwrap();
    assert_eq!(catalog, 3, "the pruned instances' catalog rows are gone");
    let outbox: i64 = db
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        outbox, 4,
        "so are their outbox entries (three instances, one with two readers)"
    );
    let audit = s.audit_entries(AuditAction::Prune).unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|r| r.actor == "test" && r.outcome == "ok"));
    // The rest goes once its last reader has it.
    s.mark_delivered("county-pacs", STUDY, "1.2.9.1.5").unwrap();
    assert_eq!(
        s.prune_delivered(now_ms() + 1, "test").unwrap().instances,
        1
    );
    assert!(!s.object_path(&two_readers).exists());
}

/// An object file no row refers to (a crash between a prune's transaction and its file
/// removal) is swept; referenced ones stay.
#[test]
fn unreferenced_object_files_are_swept() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open_with(tmp.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let kept = store(&s, "1.2.9.1.1", 0, &["upstream"]);
    let orphan = s.object_path(&[7u8; 32]);
    std::fs::write(&orphan, b"left by a crash").unwrap();
    assert_eq!(s.sweep_unreferenced_objects().unwrap(), 1);
    assert!(!orphan.exists());
    assert!(s.object_path(&kept).exists());
    assert_eq!(s.sweep_unreferenced_objects().unwrap(), 0);
}
