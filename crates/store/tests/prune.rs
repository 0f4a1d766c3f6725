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

/// A prune goes batch by batch (500 instances a transaction), each after the last row the
/// previous one removed. Seeded mixes of delivered, pending, refused and half-delivered
/// instances, more than two batches of them in any order: exactly the delivered ones go, the
/// rest stay whatever their place among them, and a second prune finds nothing.
#[test]
fn a_prune_across_batches_removes_exactly_what_every_reader_has() {
    let up = "upstream";
    for seed in 0..3u64 {
        let tmp = tempfile::tempdir().unwrap();
        let s =
            Store::open_with(tmp.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        let mut rng = yilian_testkit::Rng::new(seed, 0x9e1e7e);
        let mut kept = Vec::new();
        let mut gone = Vec::new();
        for i in 0..1_600u32 {
            let sop = format!("1.2.9.{seed}.{i}");
            // Mostly delivered (prunable), with runs of kept ones between.
            let kind = match rng.below(10) {
                0 => "pending",
                1 => "refused",
                2 => "half",
                _ => "delivered",
            };
            let readers: &[&str] = if kind == "half" {
                &[up, "county-pacs"]
            } else {
                &[up]
            };
            let hash = store(&s, &sop, 0, readers);
            match kind {
                "pending" => {}
                "refused" => {
                    assert!(s
                        .record_failure(
                            up,
                            STUDY,
                            &sop,
                            &DeliveryFailure {
                                status: None,
                                reason: "refused".into(),
                                permanent: true,
                            },
                        )
                        .unwrap());
                }
                _ => s.mark_delivered(up, STUDY, &sop).unwrap(),
            }
            if kind == "delivered" {
                gone.push((sop, hash));
            } else {
                kept.push((sop, hash));
            }
        }
        assert!(gone.len() > 1_000, "seed {seed}: more than two batches");
        let pruned = s.prune_delivered(now_ms() + 1, "test").unwrap();
        assert_eq!(pruned.instances, gone.len() as u64, "seed {seed}");
        for (sop, hash) in &gone {
            assert!(s.instance("township-a", sop).unwrap().is_none(), "{sop}");
            assert!(!s.object_path(hash).exists(), "{sop} on disk");
        }
        for (sop, hash) in &kept {
            assert!(s.instance("township-a", sop).unwrap().is_some(), "{sop}");
            assert!(s.object_path(hash).exists(), "{sop} on disk");
        }
        assert_eq!(
            s.prune_delivered(now_ms() + 1, "test").unwrap(),
            Pruned::default()
        );
    }
}
