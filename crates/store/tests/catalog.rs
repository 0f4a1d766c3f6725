//! The catalog: filled at commit, queried per reader (C-FIND / QIDO matching), listed for
//! C-MOVE / C-GET, migrated from schema 2.

use yilian_dicom::{Catalog, Phi};
use yilian_store::*;

const R1: &str = "county-radiology";
const R2: &str = "province-expert";
const A: &str = "1.2.9.100"; // 王^小东, CT, 2024-01-15, for R1 only
const B: &str = "1.2.9.200"; // Li^Si, MR + US, 2024-06-20, for R1 and R2
const C: &str = "1.2.9.300"; // Zhang^Wei, DX, 2023-12-01, for R2 only

struct Spec {
    site: &'static str,
    study: &'static str,
    series: &'static str,
    sop: String,
    modality: &'static str,
    name: &'static str,
    pid: &'static str,
    date: &'static str,
    time: &'static str,
    accession: &'static str,
    description: &'static str,
    number: i32,
}

fn catalog(s: &Spec) -> Catalog {
    let mut c = Catalog::default();
    c.patient.name = Phi::new(s.name.into());
    c.patient.id = Phi::new(s.pid.into());
    c.patient.birth_date = Phi::new("19700101".into());
    c.patient.sex = "F".into();
    c.study.date = s.date.into();
    c.study.time = s.time.into();
    c.study.accession_number = Phi::new(s.accession.into());
    c.study.description = s.description.into();
    c.series.number = Some(1);
    c.series.description = format!("{} series", s.modality);
    c.instance.number = Some(s.number);
    c.instance.rows = Some(512);
    c.instance.columns = Some(512);
    c.specific_character_set = "ISO_IR 192".into();
    c
}

fn commit(store: &Store, s: &Spec, readers: &[&str], with_catalog: bool) {
    let bytes = format!("{}:{}", s.study, s.sop).into_bytes();
    let mut p = store
        .open_partial(PartialInfo {
            source_site: s.site.into(),
            study_uid: s.study.into(),
            sop_uid: s.sop.clone(),
            size: bytes.len() as u64,
        })
        .unwrap();
    p.write(&bytes).unwrap();
    let inst = NewInstance {
        sop_uid: s.sop.clone(),
        study_uid: s.study.into(),
        series_uid: s.series.into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: s.modality.into(),
        source_site: s.site.into(),
        source_identity: format!("{}-device", s.site),
        priority: 0,
    };
    let readers: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
    let hash = *blake3::hash(&bytes).as_bytes();
    let stored = if with_catalog {
        store.commit_with_catalog(p, hash, &inst, &readers, &catalog(s))
    } else {
        store.commit(p, hash, &inst, &readers)
    };
    assert!(matches!(stored, Ok(Stored::New { .. })));
}

#[allow(clippy::too_many_arguments)]
fn spec(
    site: &'static str,
    study: &'static str,
    series: &'static str,
    n: i32,
    modality: &'static str,
    name: &'static str,
    pid: &'static str,
    date: &'static str,
    accession: &'static str,
    description: &'static str,
) -> Spec {
    Spec {
        site,
        study,
        series,
        sop: format!("{series}.{n}"),
        modality,
        name,
        pid,
        date,
        time: "093000",
        accession,
        description,
        number: n,
    }
}

/// Three studies over two readers; one instance of C committed without a catalog.
fn populated() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let wang = "Wang^XiaoDong=王^小东=";
    for n in 1..=3 {
        let x = spec(
            "t1",
            A,
            "1.2.9.100.1",
            n,
            "CT",
            wang,
            "P1",
            "20240115",
            "ACC1",
            "胸部CT",
        );
        commit(&s, &x, &[R1], true);
    }
    for n in 1..=2 {
        let x = spec(
            "t1",
            A,
            "1.2.9.100.2",
            n,
            "CT",
            wang,
            "P1",
            "20240115",
            "ACC1",
            "胸部CT",
        );
        commit(&s, &x, &[R1], true);
    }
    for n in 1..=2 {
        let x = spec(
            "t1",
            B,
            "1.2.9.200.1",
            n,
            "MR",
            "Li^Si",
            "P2",
            "20240620",
            "ACC2",
            "Head MR",
        );
        commit(&s, &x, &[R1, R2], true);
    }
    let mut us = spec(
        "t1",
        B,
        "1.2.9.200.2",
        1,
        "US",
        "Li^Si",
        "P2",
        "20240620",
        "ACC2",
        "Head MR",
    );
    us.time = "141500";
    commit(&s, &us, &[R1, R2], true);
    let dx = spec(
        "t2",
        C,
        "1.2.9.300.1",
        1,
        "DX",
        "Zhang^Wei",
        "P3",
        "20231201",
        "ACC3",
        "Chest DX",
    );
    commit(&s, &dx, &[R2], true);
    let bare = spec("t2", C, "1.2.9.300.1", 2, "DX", "", "", "", "", "");
    commit(&s, &bare, &[R2], false);
    (dir, s)
}

fn studies(s: &Store, reader: &str, q: Query) -> Vec<String> {
    s.find(reader, QueryLevel::Study, &q)
        .unwrap()
        .iter()
        .map(|m| m.get(Key::StudyInstanceUid).unwrap().to_owned())
        .collect()
}

#[test]
fn a_reader_sees_exactly_its_studies() {
    let (_d, s) = populated();
    assert_eq!(studies(&s, R1, Query::new()), [A, B]);
    assert_eq!(studies(&s, R2, Query::new()), [B, C]);
    assert!(studies(&s, "nobody", Query::new()).is_empty());
    // Whatever the key, R1 never gets C.
    for q in [
        Query::new().with(Key::StudyInstanceUid, C),
        Query::new().with(Key::PatientName, "Zhang*"),
        Query::new().with(Key::PatientId, "P3"),
        Query::new().with(Key::StudyDate, "-20231231"),
        Query::new().with(Key::ModalitiesInStudy, "DX"),
    ] {
        assert!(studies(&s, R1, q.clone()).is_empty(), "{q:?}");
        assert_eq!(studies(&s, R2, q), [C]);
    }
    // Nor its series, instances or patients, nor its files for C-MOVE.
    let series = s
        .find(
            R1,
            QueryLevel::Series,
            &Query::new().with(Key::StudyInstanceUid, C),
        )
        .unwrap();
    assert!(series.is_empty());
    let patients = s.find(R1, QueryLevel::Patient, &Query::new()).unwrap();
    let ids: Vec<_> = patients
        .iter()
        .map(|m| m.get(Key::PatientId).unwrap())
        .collect();
    assert_eq!(ids, ["P1", "P2"]);
    assert!(s
        .instances_for(R1, QueryLevel::Study, &[C.to_owned()])
        .unwrap()
        .is_empty());
    assert!(s
        .instances_for(R1, QueryLevel::Patient, &["P3".to_owned()])
        .unwrap()
        .is_empty());
    // Delivery does not change what a reader sees.
    s.mark_delivered(R2, B, "1.2.9.200.1.1").unwrap();
    assert_eq!(studies(&s, R2, Query::new()), [B, C]);
}

#[test]
fn study_level_answers_aggregate() {
    let (_d, s) = populated();
    let q = Query::new()
        .returning(Key::PatientName)
        .returning(Key::PatientId)
        .returning(Key::StudyDate)
        .returning(Key::StudyDescription)
        .returning(Key::AccessionNumber)
        .returning(Key::ModalitiesInStudy)
        .returning(Key::NumberOfStudyRelatedSeries)
        .returning(Key::NumberOfStudyRelatedInstances)
        .returning(Key::SopInstanceUid); // below the level: not returned
    let m = s.find(R1, QueryLevel::Study, &q).unwrap();
    assert_eq!(m.len(), 2);
    let a = &m[0];
    assert_eq!(a.get(Key::StudyInstanceUid), Some(A));
    assert_eq!(a.get(Key::PatientName), Some("Wang^XiaoDong=王^小东="));
    assert_eq!(a.get(Key::StudyDescription), Some("胸部CT"));
    assert_eq!(a.get(Key::ModalitiesInStudy), Some("CT"));
    assert_eq!(a.get(Key::NumberOfStudyRelatedSeries), Some("2"));
    assert_eq!(a.get(Key::NumberOfStudyRelatedInstances), Some("5"));
    assert_eq!(a.get(Key::SopInstanceUid), None);
    let b = &m[1];
    assert_eq!(b.get(Key::ModalitiesInStudy), Some("MR\\US"));
    assert_eq!(b.get(Key::NumberOfStudyRelatedInstances), Some("3"));
    // Debug never shows a value.
    let shown = format!("{m:?}");
    assert!(!shown.contains("王") && !shown.contains("ACC1"), "{shown}");
    // Matching on Modalities in Study keeps the other modalities in the answer.
    let q = Query::new()
        .with(Key::ModalitiesInStudy, "US")
        .returning(Key::ModalitiesInStudy)
        .returning(Key::NumberOfStudyRelatedInstances);
    let m = s.find(R1, QueryLevel::Study, &q).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].get(Key::ModalitiesInStudy), Some("MR\\US"));
    assert_eq!(m[0].get(Key::NumberOfStudyRelatedInstances), Some("3"));
    assert_eq!(
        studies(&s, R1, Query::new().with(Key::ModalitiesInStudy, "CT\\MR")),
        [A, B]
    );
}

#[test]
fn patient_series_and_image_levels() {
    let (_d, s) = populated();
    let q = Query::new()
        .with(Key::PatientId, "P1")
        .returning(Key::PatientName)
        .returning(Key::NumberOfPatientRelatedStudies)
        .returning(Key::NumberOfPatientRelatedSeries)
        .returning(Key::NumberOfPatientRelatedInstances)
        .returning(Key::StudyDate); // below the level
    let p = s.find(R1, QueryLevel::Patient, &q).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].get(Key::NumberOfPatientRelatedStudies), Some("1"));
    assert_eq!(p[0].get(Key::NumberOfPatientRelatedSeries), Some("2"));
    assert_eq!(p[0].get(Key::NumberOfPatientRelatedInstances), Some("5"));
    assert_eq!(p[0].get(Key::StudyDate), None);

    let q = Query::new()
        .with(Key::StudyInstanceUid, A)
        .returning(Key::Modality)
        .returning(Key::SeriesDescription)
        .returning(Key::NumberOfSeriesRelatedInstances);
    let series = s.find(R1, QueryLevel::Series, &q).unwrap();
    let got: Vec<_> = series
        .iter()
        .map(|m| {
            (
                m.get(Key::SeriesInstanceUid).unwrap(),
                m.get(Key::Modality).unwrap(),
                m.get(Key::NumberOfSeriesRelatedInstances).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("1.2.9.100.1", "CT", "3"), ("1.2.9.100.2", "CT", "2")]
    );

    let q = Query::new()
        .with(Key::SeriesInstanceUid, "1.2.9.100.1")
        .with(Key::InstanceNumber, "2")
        .returning(Key::Rows)
        .returning(Key::SopClassUid);
    let images = s.find(R1, QueryLevel::Image, &q).unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].get(Key::SopInstanceUid), Some("1.2.9.100.1.2"));
    assert_eq!(images[0].get(Key::Rows), Some("512"));
    assert_eq!(images[0].get(Key::StudyInstanceUid), Some(A));
}

#[test]
fn every_kind_of_matching() {
    let (_d, s) = populated();
    let q = |k, v: &str| Query::new().with(k, v);
    // Person names: case-insensitive, any component group, wildcards, decoded text.
    assert_eq!(studies(&s, R1, q(Key::PatientName, "王^小东")), [A]);
    assert_eq!(studies(&s, R1, q(Key::PatientName, "王*")), [A]);
    assert_eq!(studies(&s, R1, q(Key::PatientName, "wang^xiaodong")), [A]);
    assert_eq!(studies(&s, R1, q(Key::PatientName, "L?^S*")), [B]);
    assert!(studies(&s, R1, q(Key::PatientName, "王^小")).is_empty());
    // Single value text: exact and case-sensitive.
    assert_eq!(studies(&s, R1, q(Key::PatientId, "P1")), [A]);
    assert!(studies(&s, R1, q(Key::PatientId, "p1")).is_empty());
    assert_eq!(studies(&s, R1, q(Key::AccessionNumber, "ACC2")), [B]);
    // Wildcards on text.
    assert_eq!(studies(&s, R1, q(Key::PatientId, "P?")), [A, B]);
    assert_eq!(studies(&s, R1, q(Key::StudyDescription, "*CT")), [A]);
    assert_eq!(studies(&s, R1, q(Key::StudyDescription, "*")), [A, B]);
    // UID lists.
    assert_eq!(
        studies(&s, R1, q(Key::StudyInstanceUid, &format!("{A}\\{C}"))),
        [A]
    );
    assert_eq!(
        studies(&s, R2, q(Key::StudyInstanceUid, &format!("{A}\\{B}\\{C}"))),
        [B, C]
    );
    assert!(matches!(
        s.find(R1, QueryLevel::Study, &q(Key::StudyInstanceUid, "1.2.9.*")),
        Err(StoreError::BadQuery(_))
    ));
    // Date ranges, open at either end, and single dates.
    assert_eq!(
        studies(&s, R1, q(Key::StudyDate, "20240101-20241231")),
        [A, B]
    );
    assert_eq!(studies(&s, R1, q(Key::StudyDate, "20240601-")), [B]);
    assert_eq!(studies(&s, R2, q(Key::StudyDate, "-20231231")), [C]);
    assert_eq!(studies(&s, R1, q(Key::StudyDate, "20240115")), [A]);
    assert!(studies(&s, R1, q(Key::StudyDate, "20250101-")).is_empty());
    assert!(matches!(
        s.find(R1, QueryLevel::Study, &q(Key::StudyDate, "2024-01-01-2024")),
        Err(StoreError::BadQuery(_))
    ));
    // Time ranges: at series level, the US series of B was acquired in the afternoon.
    let afternoon = s
        .find(R1, QueryLevel::Series, &q(Key::StudyTime, "1200-1800"))
        .unwrap();
    assert_eq!(afternoon.len(), 1);
    assert_eq!(
        afternoon[0].get(Key::SeriesInstanceUid),
        Some("1.2.9.200.2")
    );
    // Several keys at once: all must hold.
    let both = Query::new()
        .with(Key::PatientId, "P?")
        .with(Key::StudyDate, "20240601-");
    assert_eq!(studies(&s, R1, both), [B]);
}

#[test]
fn an_instance_committed_without_catalog_is_found_by_uid() {
    let (_d, s) = populated();
    let q = Query::new().with(Key::SopInstanceUid, "1.2.9.300.1.2");
    let m = s.find(R2, QueryLevel::Image, &q).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].get(Key::SeriesInstanceUid), Some("1.2.9.300.1"));
}

#[test]
fn queries_are_limited() {
    let (_d, s) = populated();
    let q = Query::new().with_limit(3);
    assert!(matches!(
        s.find(R1, QueryLevel::Image, &q),
        Err(StoreError::TooManyMatches { limit: 3 })
    ));
    let found = s.find_limited(R1, QueryLevel::Image, &q).unwrap();
    assert!(found.truncated);
    assert_eq!(found.matches.len(), 3);
    let exact = s
        .find_limited(R1, QueryLevel::Study, &Query::new().with_limit(2))
        .unwrap();
    assert!(!exact.truncated);
    assert_eq!(exact.matches.len(), 2);
}

#[test]
fn instances_for_retrieve() {
    let (_d, s) = populated();
    let a = s
        .instances_for(R1, QueryLevel::Study, &[A.to_owned(), C.to_owned()])
        .unwrap();
    let sops: Vec<_> = a.iter().map(|r| r.sop_uid.as_str()).collect();
    assert_eq!(
        sops,
        [
            "1.2.9.100.1.1",
            "1.2.9.100.1.2",
            "1.2.9.100.1.3",
            "1.2.9.100.2.1",
            "1.2.9.100.2.2"
        ]
    );
    assert!(a.iter().all(|r| s.object_path(&r.hash).exists()));
    let series = s
        .instances_for(R2, QueryLevel::Series, &["1.2.9.200.2".to_owned()])
        .unwrap();
    assert_eq!(series.len(), 1);
    let one = s
        .instances_for(R2, QueryLevel::Image, &["1.2.9.300.1.1".to_owned()])
        .unwrap();
    assert_eq!(one.len(), 1);
    let patient = s
        .instances_for(R2, QueryLevel::Patient, &["P2".to_owned()])
        .unwrap();
    assert_eq!(patient.len(), 3);
    let many: Vec<String> = (0..1200).map(|i| format!("1.2.9.{i}")).collect();
    let found = s.instances_for(R2, QueryLevel::Study, &many).unwrap();
    assert_eq!(found.len(), 5, "B and C, across statements");
}

/// A data directory at schema 2 gets a catalog row per instance, found by its UIDs.
#[test]
fn schema_2_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    db.execute_batch(
        r#"
        CREATE TABLE instances (id INTEGER PRIMARY KEY, source_site TEXT NOT NULL,
            sop_uid TEXT NOT NULL, study_uid TEXT NOT NULL, series_uid TEXT NOT NULL,
            sop_class_uid TEXT NOT NULL, modality TEXT NOT NULL, source_identity TEXT NOT NULL,
            size INTEGER NOT NULL, hash BLOB NOT NULL, priority INTEGER NOT NULL,
            stored_at INTEGER NOT NULL, UNIQUE(source_site, sop_uid));
        CREATE INDEX instances_by_study ON instances(study_uid, sop_uid);
        CREATE TABLE studies (study_uid TEXT PRIMARY KEY, owner_site TEXT NOT NULL,
            claimed_at INTEGER NOT NULL);
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, reader TEXT NOT NULL,
            instance_id INTEGER NOT NULL REFERENCES instances(id), priority INTEGER NOT NULL,
            enqueued_at INTEGER NOT NULL, delivered_at INTEGER, UNIQUE(reader, instance_id));
        CREATE INDEX outbox_pending ON outbox(reader, delivered_at, priority DESC, seq);
        CREATE TABLE manifests (study_uid TEXT PRIMARY KEY, source_site TEXT NOT NULL,
            listed INTEGER NOT NULL, missing INTEGER NOT NULL, received_at INTEGER NOT NULL,
            complete_at INTEGER);
        CREATE TABLE manifest_entries (study_uid TEXT NOT NULL, sop_uid TEXT NOT NULL,
            stored INTEGER NOT NULL, PRIMARY KEY(study_uid, sop_uid)) WITHOUT ROWID;
        CREATE TABLE study_notices (reader TEXT NOT NULL, study_uid TEXT NOT NULL,
            sent_at INTEGER NOT NULL, instances INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY(reader, study_uid));
        CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
            actor TEXT NOT NULL, site TEXT, action TEXT NOT NULL, study_uid TEXT,
            sop_uid TEXT, outcome TEXT NOT NULL, detail TEXT);
        INSERT INTO instances VALUES (1, 'township-a', '1.1', '1.2.9', '1.2.9.1', 'c', 'CT',
            'd', 1, x'0000000000000000000000000000000000000000000000000000000000000001', 0, 10);
        INSERT INTO instances VALUES (2, 'township-a', '1.2', '1.2.9', '1.2.9.1', 'c', 'CT',
            'd', 1, x'0000000000000000000000000000000000000000000000000000000000000002', 0, 11);
        INSERT INTO studies VALUES ('1.2.9', 'township-a', 10);
        INSERT INTO outbox (reader, instance_id, priority, enqueued_at, delivered_at)
            VALUES ('r', 1, 0, 10, 20), ('r', 2, 0, 11, NULL);
        PRAGMA user_version = 2;
        "#,
    )
    .unwrap();
    drop(db);
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let q = Query::new()
        .with(Key::StudyInstanceUid, "1.2.9")
        .returning(Key::ModalitiesInStudy)
        .returning(Key::NumberOfStudyRelatedInstances);
    let m = s.find("r", QueryLevel::Study, &q).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].get(Key::ModalitiesInStudy), Some("CT"));
    assert_eq!(m[0].get(Key::NumberOfStudyRelatedInstances), Some("2"));
    assert_eq!(s.pending_for("r").unwrap().len(), 1);
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5, "migrated through schema 3 to the current one");
    let incomplete: i64 = db
        .query_row("SELECT COUNT(*) FROM catalog WHERE complete = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(incomplete, 2);
    drop(db);
    Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32))
        .expect("reopens at the current schema");
}

/// A data directory at schema 4 (no person-name index) gets every catalog row's name keys:
/// name searches find the same studies after the migration as the row-by-row match would.
#[test]
fn schema_4_is_migrated_with_every_name_indexed() {
    let (dir, s) = populated();
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    db.execute_batch("DROP TABLE catalog_names; PRAGMA user_version = 4;")
        .unwrap();
    drop(db);
    let s = Store::open_with(dir.path(), yilian_store::StoreOptions::with_ready_files(32)).unwrap();
    let q = |v: &str| Query::new().with(Key::PatientName, v);
    assert_eq!(studies(&s, R1, q("王*")), [A]);
    assert_eq!(studies(&s, R1, q("WANG^*")), [A]);
    assert_eq!(studies(&s, R1, q("li^si")), [B]);
    assert_eq!(studies(&s, R2, q("zhang*")), [C]);
    assert_eq!(studies(&s, R2, q("*")), [B, C]);
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let keys: i64 = db
        .query_row("SELECT COUNT(*) FROM catalog_names", [], |r| r.get(0))
        .unwrap();
    // Wang (5 instances × 3 keys), Li (3 × 1), Zhang (1 × 1); the bare DX has no name.
    assert_eq!(keys, 5 * 3 + 3 + 1);
}

/// A name index entry follows its catalog row: removed with it, replaced with it.
#[test]
fn name_keys_follow_their_catalog_rows() {
    let (dir, s) = populated();
    drop(s);
    let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
    db.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    let before: i64 = db
        .query_row("SELECT COUNT(*) FROM catalog_names", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "DELETE FROM catalog WHERE instance_id = (SELECT MIN(instance_id) FROM catalog)",
        [],
    )
    .unwrap();
    let after: i64 = db
        .query_row("SELECT COUNT(*) FROM catalog_names", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        after,
        before - 3,
        "the first Wang instance's three keys went with it"
    );
}
