use std::os::unix::fs::PermissionsExt;
use yilian_store::*;

const STUDY: &str = "1.2.9";

fn info_at(site: &str, study: &str, sop: &str, size: u64) -> PartialInfo {
    PartialInfo {
        source_site: site.into(),
        study_uid: study.into(),
        sop_uid: sop.into(),
        size,
    }
}

fn info(sop: &str, size: u64) -> PartialInfo {
    info_at("township-a", STUDY, sop, size)
}

fn inst_at(site: &str, study: &str, sop: &str, priority: u8) -> NewInstance {
    NewInstance {
        sop_uid: sop.into(),
        study_uid: study.into(),
        series_uid: "1.2.9.1".into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: "CT".into(),
        source_site: site.into(),
        source_identity: format!("{site}-device"),
        priority,
    }
}

fn inst(sop: &str, priority: u8) -> NewInstance {
    inst_at("township-a", STUDY, sop, priority)
}

fn commit_at(
    s: &Store,
    site: &str,
    study: &str,
    sop: &str,
    bytes: &[u8],
    readers: &[&str],
) -> Result<Stored, StoreError> {
    let mut p = s
        .open_partial(info_at(site, study, sop, bytes.len() as u64))
        .unwrap();
    p.write(bytes).unwrap();
    let readers: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
    s.commit(
        p,
        *blake3::hash(bytes).as_bytes(),
        &inst_at(site, study, sop, 0),
        &readers,
    )
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

fn uids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn partial_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("partial")).unwrap().count()
}

#[test]
fn partial_resumes_at_its_length_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s =
            Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        let mut p = s.open_partial(info("1.1", 100)).unwrap();
        assert_eq!(p.len(), 0);
        p.write(&[7u8; 40]).unwrap();
        assert_eq!(p.sync().unwrap(), 40);
    }
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
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
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    store_bytes(&s, "1.1", b"routine one", 0, &["county-radiology"]);
    store_bytes(
        &s,
        "1.2",
        b"urgent",
        1,
        &["county-radiology", "provincial-expert"],
    );
    store_bytes(&s, "1.3", b"routine two", 0, &["county-radiology"]);
    let rec = s.instance("township-a", "1.2").unwrap().unwrap();
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
    s.mark_delivered("county-radiology", STUDY, "1.2").unwrap();
    assert_eq!(s.pending_for("county-radiology").unwrap().len(), 2);
    assert!(!s.is_pending("county-radiology", STUDY, "1.2").unwrap());
    assert!(s.is_pending("county-radiology", STUDY, "1.1").unwrap());
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
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
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

/// A SOP Instance UID is scoped by site: township B cannot see township A's instance under
/// it, and storing its own (different) instance with that UID conflicts with nothing of A's.
#[test]
fn uids_are_scoped_by_site() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    commit_at(&s, "township-a", "1.5", "1.5.1", b"a's image", &["r"]).unwrap();
    assert!(s.instance("township-b", "1.5.1").unwrap().is_none());
    // B squats nothing: its own instance with the same UID (in its own study) is stored.
    assert!(matches!(
        commit_at(&s, "township-b", "1.6", "1.5.1", b"b's image", &["r"]),
        Ok(Stored::New { .. })
    ));
    assert_eq!(
        s.instance("township-a", "1.5.1").unwrap().unwrap().hash,
        *blake3::hash(b"a's image").as_bytes()
    );
    // Two different instances, both delivered by (study, SOP).
    assert_eq!(s.pending_for("r").unwrap().len(), 2);
    s.mark_delivered("r", "1.6", "1.5.1").unwrap();
    let left = s.pending_for("r").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].instance.source_site, "township-a");
}

/// A study belongs to the site that sent it first: another site can neither add instances to
/// it nor declare its manifest.
#[test]
fn a_study_belongs_to_the_site_that_sent_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    commit_at(&s, "township-a", "1.7", "1.7.1", b"one", &["r"]).unwrap();
    assert_eq!(s.study_owner("1.7").unwrap().as_deref(), Some("township-a"));
    match commit_at(&s, "township-b", "1.7", "1.7.2", b"intruder", &["r"]) {
        Err(StoreError::StudyOwned { owner, .. }) => assert_eq!(owner, "township-a"),
        other => panic!("{other:?}"),
    }
    assert!(
        s.instance("township-b", "1.7.2").unwrap().is_none(),
        "nothing stored"
    );
    assert_eq!(partial_files(dir.path()), 0, "the refused partial is gone");
    match s.record_manifest("township-b", "1.7", &uids(&["1.7.1"])) {
        Err(StoreError::StudyOwned { owner, .. }) => assert_eq!(owner, "township-a"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.manifest_status("1.7").unwrap(),
        ManifestStatus::NoManifest
    );
    // A manifest also claims a new study for its site.
    assert_eq!(
        s.record_manifest("township-b", "1.8", &uids(&["1.8.1"]))
            .unwrap(),
        ManifestStatus::Pending {
            missing: uids(&["1.8.1"])
        }
    );
    assert!(matches!(
        commit_at(&s, "township-a", "1.8", "1.8.1", b"x", &["r"]),
        Err(StoreError::StudyOwned { .. })
    ));
}

#[test]
fn manifest_completes_when_every_instance_is_stored_and_notices_once_per_reader() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert_eq!(
        s.manifest_status(STUDY).unwrap(),
        ManifestStatus::NoManifest
    );
    store_bytes(&s, "1.1", b"a", 0, &["r"]);
    assert_eq!(
        s.record_manifest("township-a", STUDY, &uids(&["1.1", "1.2"]))
            .unwrap(),
        ManifestStatus::Pending {
            missing: uids(&["1.2"])
        }
    );
    match store_bytes(&s, "1.2", b"b", 0, &["r"]) {
        Stored::New { study_complete, .. } => assert_eq!(study_complete, Some(2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.manifest_status(STUDY).unwrap(),
        ManifestStatus::Complete { instances: 2 }
    );
    assert_eq!(
        s.take_study_notice("r", STUDY).unwrap(),
        None,
        "not delivered yet"
    );
    s.mark_delivered("r", STUDY, "1.1").unwrap();
    s.mark_delivered("r", STUDY, "1.2").unwrap();
    assert_eq!(s.take_study_notice("r", STUDY).unwrap(), Some(2));
    assert_eq!(s.take_study_notice("r", STUDY).unwrap(), None, "only once");
    // The same manifest again changes nothing and is not announced again.
    assert_eq!(
        s.record_manifest("township-a", STUDY, &uids(&["1.2", "1.1"]))
            .unwrap(),
        ManifestStatus::Complete { instances: 2 }
    );
    assert_eq!(s.take_study_notice("r", STUDY).unwrap(), None);
}

/// A later manifest adds to the study (a second run sends another series): the study is no
/// longer complete until those arrive too, and only then announced again, with the new size.
/// Nothing the owner sends can make the manifest smaller.
#[test]
fn manifests_add_up_and_never_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    s.record_manifest("township-a", STUDY, &uids(&["1.1", "1.2"]))
        .unwrap();
    store_bytes(&s, "1.1", b"a", 0, &["r"]);
    store_bytes(&s, "1.2", b"b", 0, &["r"]);
    s.mark_delivered("r", STUDY, "1.1").unwrap();
    s.mark_delivered("r", STUDY, "1.2").unwrap();
    assert_eq!(s.take_study_notice("r", STUDY).unwrap(), Some(2));
    // A manifest naming only one instance does not shrink the study.
    assert_eq!(
        s.record_manifest("township-a", STUDY, &uids(&["1.1"]))
            .unwrap(),
        ManifestStatus::Complete { instances: 2 }
    );
    // A manifest naming a new one reopens it.
    assert_eq!(
        s.record_manifest("township-a", STUDY, &uids(&["1.3"]))
            .unwrap(),
        ManifestStatus::Pending {
            missing: uids(&["1.3"])
        }
    );
    assert_eq!(s.take_study_notice("r", STUDY).unwrap(), None);
    store_bytes(&s, "1.3", b"c", 0, &["r"]);
    s.mark_delivered("r", STUDY, "1.3").unwrap();
    assert_eq!(s.take_study_notice("r", STUDY).unwrap(), Some(3));
}

#[test]
fn a_manifest_of_5000_instances_completes_as_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let all: Vec<String> = (0..5000).map(|i| format!("1.2.9.{i}")).collect();
    let status = s.record_manifest("township-a", STUDY, &all).unwrap();
    assert!(matches!(status, ManifestStatus::Pending { ref missing } if missing.len() == 5000));
    let mut completed = Vec::new();
    for (i, sop) in all.iter().enumerate() {
        if let Stored::New {
            study_complete: Some(n),
            ..
        } = store_bytes(&s, sop, format!("{i}").as_bytes(), 0, &[])
        {
            completed.push((i, n));
        }
    }
    assert_eq!(
        completed,
        [(4999, 5000)],
        "complete exactly at the last one"
    );
}

#[test]
fn audit_log_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    store_bytes(&s, "1.1", b"a", 0, &[]);
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    assert!(db.execute("DELETE FROM audit", []).is_err());
    assert!(db.execute("UPDATE audit SET actor = 'x'", []).is_err());
}

/// The spool holds patient data: folders 0700, files 0600 (objects, partials, sidecars, the
/// index and its WAL), also when the data directory existed with wider permissions.
#[test]
fn spool_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = Store::open_with(&root, yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    store_bytes(&s, "1.1", b"stored", 0, &["r"]);
    let mut p = s.open_partial(info("1.2", 10)).unwrap();
    p.write(b"part").unwrap();
    p.sync().unwrap();
    let mut checked = 0;
    for e in walkdir(&root) {
        let mode = std::fs::metadata(&e).unwrap().permissions().mode() & 0o777;
        let want = if e.is_dir() { DIR_MODE } else { FILE_MODE };
        assert_eq!(mode, want, "{} is {mode:o}", e.display());
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
}

fn walkdir(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            for e in std::fs::read_dir(&out[i]).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out
}

/// An offer that never sent a byte leaves nothing behind; one that sent some keeps it.
#[test]
fn closing_an_empty_partial_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    for i in 0..20 {
        let p = s.open_partial(info(&format!("1.{i}"), 100)).unwrap();
        p.close().unwrap();
    }
    assert_eq!(partial_files(dir.path()), 0);
    assert_eq!(s.partial_usage("township-a"), (0, 0));
    let mut p = s.open_partial(info("1.99", 100)).unwrap();
    p.write(b"x").unwrap();
    p.close().unwrap();
    assert_eq!(partial_files(dir.path()), 2, "part and sidecar kept");
    assert_eq!(s.partial_usage("township-a"), (100, 1));
}

/// Unfinished uploads are capped per site: a new one first evicts the site's oldest idle
/// partials; if that is not enough it is refused; other sites are not touched.
#[test]
fn partials_are_capped_per_site() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(
        dir.path(),
        StoreOptions {
            partial_bytes_per_site: 1000,
            ready_files: 32,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let keep = |s: &Store, site: &str, sop: &str, size: u64| {
        let mut p = s.open_partial(info_at(site, STUDY, sop, size)).unwrap();
        p.write(b"x").unwrap();
        p.close().unwrap();
    };
    keep(&s, "township-b", "2.1", 900);
    keep(&s, "township-a", "1.1", 400);
    std::thread::sleep(std::time::Duration::from_millis(20));
    keep(&s, "township-a", "1.2", 400);
    // 400 + 400 + 400 > 1000: the oldest (1.1) goes.
    keep(&s, "township-a", "1.3", 400);
    assert_eq!(s.partial_usage("township-a"), (800, 2));
    assert_eq!(s.partial_usage("township-b"), (900, 1), "not touched");
    let resumed = s
        .open_partial(info_at("township-a", STUDY, "1.1", 400))
        .unwrap();
    assert_eq!(resumed.len(), 0, "1.1 was evicted");
    drop(resumed);
    // Partials in use are never evicted: with two open, a third cannot fit.
    let a = s.open_partial(info("1.2", 400)).unwrap();
    let b = s.open_partial(info("1.3", 400)).unwrap();
    match s.open_partial(info("1.4", 400)) {
        Err(e @ StoreError::PartialQuota { .. }) => {
            assert!(e.to_string().contains("partial_bytes_per_site"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    drop((a, b));
}

#[test]
fn abandoned_partials_are_swept_after_the_retention_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let mut p = s.open_partial(info("1.1", 100)).unwrap();
    p.write(b"abc").unwrap();
    p.close().unwrap();
    let open = s.open_partial(info("1.2", 100)).unwrap();
    assert_eq!(s.sweep_partials(std::time::Duration::from_secs(3600)), 0);
    assert_eq!(
        s.sweep_partials(std::time::Duration::ZERO),
        1,
        "not the one in use"
    );
    drop(open);
    assert_eq!(s.sweep_partials(std::time::Duration::ZERO), 1);
    assert_eq!(partial_files(dir.path()), 0);
    // Reopened, the registry starts from what is on disk.
    drop(s);
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert_eq!(s.partial_usage("township-a"), (0, 0));
}

/// A data directory written by the first release (schema 1: SOP UIDs global, manifests as
/// JSON) is migrated on open without losing an instance, an outbox entry or a manifest.
#[test]
fn schema_1_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    db.execute_batch(
        r#"
        CREATE TABLE instances (sop_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL,
            series_uid TEXT NOT NULL, sop_class_uid TEXT NOT NULL, modality TEXT NOT NULL,
            source_site TEXT NOT NULL, source_identity TEXT NOT NULL, size INTEGER NOT NULL,
            hash BLOB NOT NULL, priority INTEGER NOT NULL, stored_at INTEGER NOT NULL);
        CREATE INDEX instances_by_study ON instances(study_uid);
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, reader TEXT NOT NULL,
            sop_uid TEXT NOT NULL REFERENCES instances(sop_uid), priority INTEGER NOT NULL,
            enqueued_at INTEGER NOT NULL, delivered_at INTEGER, UNIQUE(reader, sop_uid));
        CREATE INDEX outbox_pending ON outbox(reader, delivered_at, priority DESC, seq);
        CREATE TABLE manifests (study_uid TEXT PRIMARY KEY, source_site TEXT NOT NULL,
            sop_uids TEXT NOT NULL, received_at INTEGER NOT NULL, complete_at INTEGER);
        CREATE TABLE study_notices (reader TEXT NOT NULL, study_uid TEXT NOT NULL,
            sent_at INTEGER NOT NULL, PRIMARY KEY(reader, study_uid));
        CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
            actor TEXT NOT NULL, site TEXT, action TEXT NOT NULL, study_uid TEXT,
            sop_uid TEXT, outcome TEXT NOT NULL, detail TEXT);
        INSERT INTO instances VALUES ('1.1', '1.2.9', 's', 'c', 'CT', 'township-a', 'd', 1,
            x'0000000000000000000000000000000000000000000000000000000000000001', 0, 10);
        INSERT INTO instances VALUES ('1.2', '1.2.9', 's', 'c', 'CT', 'township-a', 'd', 1,
            x'0000000000000000000000000000000000000000000000000000000000000002', 0, 11);
        INSERT INTO outbox (reader, sop_uid, priority, enqueued_at, delivered_at)
            VALUES ('r', '1.1', 0, 10, 20), ('r', '1.2', 0, 11, NULL);
        INSERT INTO manifests VALUES ('1.2.9', 'township-a', '["1.1","1.2","1.3"]', 5, NULL);
        INSERT INTO audit (at, actor, action, outcome) VALUES (1, 'd', 'receive', 'ok');
        "#,
    )
    .unwrap();
    drop(db);
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert!(s.instance("township-a", "1.1").unwrap().is_some());
    assert_eq!(s.study_owner(STUDY).unwrap().as_deref(), Some("township-a"));
    let pending = s.pending_for("r").unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].instance.sop_uid, "1.2");
    assert_eq!(
        s.manifest_status(STUDY).unwrap(),
        ManifestStatus::Pending {
            missing: uids(&["1.3"])
        }
    );
    assert_eq!(s.audit_len().unwrap(), 1);
    // And it keeps working: the missing instance completes the study.
    store_bytes(&s, "1.3", b"c", 0, &["r"]);
    assert_eq!(
        s.manifest_status(STUDY).unwrap(),
        ManifestStatus::Complete { instances: 3 }
    );
    drop(s);
    Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32))
        .expect("reopens at schema 2");
}

/// The sidecar (what a resumed upload must offer) is written at a partial's first sync only:
/// an upload committed before its first checkpoint never makes one; a part left without one
/// by a crash starts again from zero (nothing was promised), one synced resumes.
#[test]
fn a_sidecar_is_written_at_the_first_sync_only() {
    let dir = tempfile::tempdir().unwrap();
    let sidecars = || {
        std::fs::read_dir(dir.path().join("partial"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    };
    {
        let s =
            Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
        let mut unsynced = s.open_partial(info("1.1", 10)).unwrap();
        unsynced.write(b"abcd").unwrap();
        assert_eq!(sidecars(), 0);
        let mut synced = s.open_partial(info("1.2", 10)).unwrap();
        synced.write(b"efgh").unwrap();
        synced.sync().unwrap();
        assert_eq!(sidecars(), 1);
        let mut committed = s.open_partial(info("1.3", 6)).unwrap();
        committed.write(b"stored").unwrap();
        s.commit(
            committed,
            *blake3::hash(b"stored").as_bytes(),
            &inst_at("township-a", STUDY, "1.3", 0),
            &["r".to_string()],
        )
        .unwrap();
        assert_eq!(sidecars(), 1);
        // A crash: both partials are simply left as they are.
        std::mem::forget(unsynced);
        std::mem::forget(synced);
    }
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    assert_eq!(s.open_partial(info("1.1", 10)).unwrap().len(), 0);
    assert_eq!(s.open_partial(info("1.2", 10)).unwrap().len(), 4);
}

/// `objects/00`…`ff` are made when the store opens, and a commit no longer looks for its
/// folder first: one removed by hand while the relay runs is made again by the commit that
/// needs it, for a renamed upload and for a sealed (linked) one alike.
#[test]
fn an_object_folder_removed_by_hand_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let folder = |bytes: &[u8]| {
        s.object_path(blake3::hash(bytes).as_bytes())
            .parent()
            .unwrap()
            .to_path_buf()
    };

    let renamed = b"a resumable upload, renamed into objects/";
    std::fs::remove_dir_all(folder(renamed)).unwrap();
    store_bytes(&s, "1.1", renamed, 0, &["county-radiology"]);
    let path = s.object_path(blake3::hash(renamed).as_bytes());
    assert_eq!(std::fs::read(&path).unwrap(), renamed);

    let sealed = b"an upload of unknown size, sealed in the pool, then linked";
    std::fs::remove_dir_all(folder(sealed)).unwrap();
    let mut p = s.open_scratch("township-a", "1.2").unwrap();
    assert!(
        p.is_sealable(),
        "this filesystem keeps no user.* attributes"
    );
    p.write(sealed).unwrap();
    p.seal(b"tag").unwrap();
    let hash = *blake3::hash(sealed).as_bytes();
    s.commit(p, hash, &inst("1.2", 0), &uids(&["county-radiology"]))
        .unwrap();
    assert_eq!(std::fs::read(s.object_path(&hash)).unwrap(), sealed);
    s.settle().unwrap();
    let pooled_with_data = std::fs::read_dir(dir.path().join("scratch/ready"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().metadata().unwrap().len() > 0)
        .count();
    assert_eq!(
        pooled_with_data, 0,
        "the pooled name of a committed upload is gone once settled"
    );
    let pending = s.pending_for("county-radiology").unwrap();
    assert_eq!(pending.len(), 2, "both instances are indexed: {pending:?}");
}
