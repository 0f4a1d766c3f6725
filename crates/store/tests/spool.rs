use yilian_proto::Manifest;
use yilian_store::*;

fn info(sop: &str, size: u64) -> PartialInfo {
    PartialInfo {
        source_site: "township-a".into(),
        study_uid: "1.2.9".into(),
        sop_uid: sop.into(),
        size,
    }
}

fn inst(sop: &str, priority: u8) -> NewInstance {
    NewInstance {
        sop_uid: sop.into(),
        study_uid: "1.2.9".into(),
        series_uid: "1.2.9.1".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: "CT".into(),
        source_site: "township-a".into(),
        source_identity: "township-a-device".into(),
        priority,
    }
}

fn store_bytes(s: &Store, sop: &str, bytes: &[u8], priority: u8, readers: &[&str]) -> Stored {
    let mut p = s.open_partial(info(sop, bytes.len() as u64)).unwrap();
    p.write(bytes).unwrap();
    let readers: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
    s.commit(
        p,
        *blake3::hash(bytes).as_bytes(),
        &inst(sop, priority),
        &readers,
    )
    .unwrap()
}

#[test]
fn partial_resumes_at_its_length_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        let mut p = s.open_partial(info("1.1", 100)).unwrap();
        assert_eq!(p.len(), 0);
        p.write(&[7u8; 40]).unwrap();
        assert_eq!(p.sync().unwrap(), 40);
    }
    let s = Store::open(dir.path()).unwrap();
    let mut p = s.open_partial(info("1.1", 100)).unwrap();
    assert_eq!(p.len(), 40, "resumes where the first attempt stopped");
    let mut seen = Vec::new();
    p.replay(|b| -> Result<(), StoreError> {
        seen.extend_from_slice(b);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![7u8; 40]);
    p.write(&[8u8; 60]).unwrap();
    // A different description (size changed) starts over.
    drop(p);
    let p = s.open_partial(info("1.1", 101)).unwrap();
    assert_eq!(p.len(), 0);
}

#[test]
fn commit_stores_content_addressed_and_fills_outboxes_by_priority() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    store_bytes(&s, "1.1", b"routine one", 0, &["county-radiology"]);
    store_bytes(
        &s,
        "1.2",
        b"urgent",
        1,
        &["county-radiology", "provincial-expert"],
    );
    store_bytes(&s, "1.3", b"routine two", 0, &["county-radiology"]);
    let rec = s.instance("1.2").unwrap().unwrap();
    let path = s.object_path(&rec.hash);
    assert_eq!(std::fs::read(&path).unwrap(), b"urgent");
    let order: Vec<String> = s
        .pending_for("county-radiology")
        .unwrap()
        .into_iter()
        .map(|i| i.instance.sop_uid)
        .collect();
    assert_eq!(order, ["1.2", "1.1", "1.3"]);
    assert_eq!(s.pending_for("provincial-expert").unwrap().len(), 1);
    assert!(s.pending_for("county-ultrasound").unwrap().is_empty());
    s.mark_delivered("county-radiology", "1.2").unwrap();
    assert_eq!(s.pending_for("county-radiology").unwrap().len(), 2);
    let depths = s.queue_depths().unwrap();
    assert_eq!(depths[0].reader, "county-radiology");
    assert_eq!(depths[0].instances, 2);
    // Delivery and receive are audited.
    assert_eq!(s.audit_entries(AuditAction::Deliver).unwrap().len(), 1);
    assert_eq!(s.audit_entries(AuditAction::Receive).unwrap().len(), 3);
}

#[test]
fn same_content_again_is_a_no_op_and_different_content_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    store_bytes(&s, "1.1", b"abc", 0, &["r"]);
    assert!(matches!(
        store_bytes(&s, "1.1", b"abc", 0, &["r"]),
        Stored::AlreadyStored(_)
    ));
    let mut p = s.open_partial(info("1.1", 3)).unwrap();
    p.write(b"xyz").unwrap();
    let r = s.commit(p, *blake3::hash(b"xyz").as_bytes(), &inst("1.1", 0), &[]);
    assert!(matches!(r, Err(StoreError::Conflict { .. })));
    assert_eq!(s.pending_for("r").unwrap().len(), 1);
}

#[test]
fn manifest_completes_when_every_instance_is_stored_and_notices_once_per_reader() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let m = Manifest {
        study_uid: "1.2.9".into(),
        sop_uids: vec!["1.1".into(), "1.2".into()],
    };
    assert_eq!(
        s.manifest_status("1.2.9").unwrap(),
        ManifestStatus::NoManifest
    );
    store_bytes(&s, "1.1", b"a", 0, &["r"]);
    assert_eq!(
        s.record_manifest("township-a", &m).unwrap(),
        ManifestStatus::Pending {
            missing: vec!["1.2".into()]
        }
    );
    store_bytes(&s, "1.2", b"b", 0, &["r"]);
    assert_eq!(
        s.manifest_status("1.2.9").unwrap(),
        ManifestStatus::Complete { instances: 2 }
    );
    assert_eq!(
        s.take_study_notice("r", "1.2.9").unwrap(),
        None,
        "not delivered yet"
    );
    s.mark_delivered("r", "1.1").unwrap();
    s.mark_delivered("r", "1.2").unwrap();
    assert_eq!(s.take_study_notice("r", "1.2.9").unwrap(), Some(2));
    assert_eq!(
        s.take_study_notice("r", "1.2.9").unwrap(),
        None,
        "only once"
    );
}

#[test]
fn audit_log_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    store_bytes(&s, "1.1", b"a", 0, &[]);
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    assert!(db.execute("DELETE FROM audit", []).is_err());
    assert!(db.execute("UPDATE audit SET actor = 'x'", []).is_err());
}
