//! Reading workstations query the relay (C-FIND) and see exactly what is routed to their
//! reader, with Chinese names right whatever character set the console wrote.
//!
//! Real peers: DCMTK `storescu` (consoles) and `findscu` (workstations); the answers are read
//! back with pydicom. `scripts/test` installs DCMTK and pynetdicom.

mod common;

use common::dimse::*;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A CT slice whose patient name is GBK with no Specific Character Set, as many consoles in
/// China write (made from a generated slice: the declaration removed, the name re-encoded).
fn gbk_without_declaration(dir: &Path) -> (PathBuf, String) {
    let mut spec = yilian_testkit::StudySpec::new("CT", 31);
    spec.patient_name = "张^三".into();
    let g = yilian_testkit::ct_series(dir, &spec, 1, 8, 8, 31)
        .unwrap()
        .remove(0);
    let mut bytes = std::fs::read(&g.path).unwrap();
    let declared = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 192";
    let at = find(&bytes, declared).expect("the generated slice declares ISO_IR 192");
    bytes.drain(at..at + declared.len());
    let utf8 = "张^三".as_bytes();
    let mut name = b"\x10\x00\x10\x00PN".to_vec();
    name.extend_from_slice(&8u16.to_le_bytes());
    name.extend_from_slice(utf8);
    name.push(b' ');
    let at = find(&bytes, &name).expect("the generated slice holds the UTF-8 name");
    let mut gbk = b"\x10\x00\x10\x00PN".to_vec();
    gbk.extend_from_slice(&6u16.to_le_bytes());
    gbk.extend_from_slice(b"\xd5\xc5^\xc8\xfd ");
    bytes.splice(at..at + name.len(), gbk);
    let path = dir.join("gbk.dcm");
    std::fs::write(&path, bytes).unwrap();
    (path, g.study_instance_uid)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn storescu(r: &DimseRelay, ae: &str, files: &[&Path]) {
    let mut c = dcmtk("storescu");
    c.args(["-aet", ae, "-aec", "YILIAN", "+sd", "-xy"])
        .arg("127.0.0.1")
        .arg(r.port.to_string())
        .args(files);
    let out = run_guarded(c, GUARD, "storescu");
    assert!(out.status.success(), "{}", text(&out));
    // Acknowledged once sealed; queries see an instance once it is committed, a moment later.
    wait_until(
        "the acknowledged instances are committed",
        Duration::from_secs(30),
        || scratch_with_data(r).is_empty(),
    );
}

/// `findscu` (study root) as `ae` with `keys`; the answers as (Study Instance UID, Patient's
/// Name decoded by pydicom), and findscu's output.
fn findscu(r: &DimseRelay, ae: &str, keys: &[&str]) -> (BTreeSet<(String, String)>, String) {
    let out_dir = r.root.join(format!("find-{ae}-{}", keys.join("").len()));
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut c = dcmtk("findscu");
    c.args(["-v", "-S", "-aet", ae, "-aec", "YILIAN", "-X", "-od"])
        .arg(&out_dir)
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID"]);
    for k in keys {
        c.args(["-k", k]);
    }
    c.arg("127.0.0.1").arg(r.port.to_string());
    let out = run_guarded(c, GUARD, "findscu");
    let log = text(&out);
    let script = "import sys, glob, json, pydicom\n\
        for f in sorted(glob.glob(sys.argv[1] + '/rsp*.dcm')):\n\
        \x20   ds = pydicom.dcmread(f, force=True)\n\
        \x20   print(json.dumps([str(ds.StudyInstanceUID), str(ds.get('PatientName', ''))]))\n";
    let py = Command::new("python3")
        .args(["-c", script])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let answers = String::from_utf8_lossy(&py.stdout)
        .lines()
        .map(|l| {
            let v: (String, String) = serde_json::from_str(l).unwrap();
            v
        })
        .collect();
    (answers, log)
}

#[test]
fn workstations_find_exactly_their_readers_studies_with_names_right() {
    let r = relay_with_dimse("30s");
    let ct_dir = r.root.join("ct");
    let ct = yilian_testkit::ct_series(
        &ct_dir,
        &yilian_testkit::StudySpec::new("CT", 30),
        3,
        16,
        16,
        30,
    )
    .unwrap();
    let (gbk, gbk_study) = gbk_without_declaration(&r.root.join("gbk"));
    let chr_x2 = pydicom_dir().join("../charset_files/chrX2.dcm");
    let us = pydicom_file("examples_ybr_color.dcm");
    storescu(&r, "TWA_DR1", &[&ct_dir, &gbk, &chr_x2]);
    storescu(&r, "TWA_US1", &[&us]);
    let chr_x2_study = "1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0".to_string();
    let us_study = "1.2.840.114340.3.8251017118051.1.20160503.120850.2171".to_string();

    // County radiology: the CT study, the GBK study, chrX2 (no rule: the county's default
    // department); never the ultrasound.
    let (rad, log) = findscu(&r, "CTY_RAD1", &["PatientName"]);
    let studies: BTreeSet<&str> = rad.iter().map(|(s, _)| s.as_str()).collect();
    let want: BTreeSet<&str> = [
        ct[0].study_instance_uid.as_str(),
        gbk_study.as_str(),
        chr_x2_study.as_str(),
    ]
    .into();
    assert_eq!(studies, want, "{log}");
    let names: BTreeSet<&str> = rad.iter().map(|(_, n)| n.as_str()).collect();
    assert!(
        names.contains("张^三"),
        "GBK with the site default: {names:?}"
    );
    assert!(
        names.contains("Wang^XiaoDong=王^小东"),
        "GB18030: {names:?}"
    );
    assert!(names.contains("测试^患者"), "UTF-8: {names:?}");

    // County ultrasound sees only the ultrasound study.
    let (usr, log) = findscu(&r, "CTY_US1", &[]);
    let studies: BTreeSet<&str> = usr.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(studies, BTreeSet::from([us_study.as_str()]), "{log}");

    // Matching a Chinese name sent in UTF-8, and a wildcard.
    let (by_name, log) = findscu(
        &r,
        "CTY_RAD1",
        &["SpecificCharacterSet=ISO_IR 192", "PatientName=张^三"],
    );
    assert_eq!(
        by_name.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        vec![gbk_study.clone()],
        "{log}"
    );
    let (wild, log) = findscu(&r, "CTY_RAD1", &["PatientName=Wang*"]);
    assert_eq!(
        wild.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        vec![chr_x2_study.clone()],
        "{log}"
    );
    // A UID list.
    let list = format!("StudyInstanceUID={}\\{}", gbk_study, us_study);
    let (by_uid, log) = findscu(&r, "CTY_RAD1", &[&list]);
    assert_eq!(
        by_uid.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        vec![gbk_study.clone()],
        "radiology never sees the ultrasound study, even by UID: {log}"
    );

    // A console may not query.
    let (none, log) = findscu(&r, "TWA_DR1", &[]);
    assert!(none.is_empty());
    assert!(
        log.contains("Final Find Response (Unknown Status: 0x124)"),
        "refused as not authorized (0x0124): {log}"
    );

    // Every query is audited, without values.
    let rows = audit_rows(&r.relay.data, "query");
    assert!(
        rows.iter().any(
            |(actor, _, detail)| actor == "county-radiology (AE CTY_RAD1)"
                && detail
                    .as_deref()
                    .is_some_and(|d| d.contains("PatientName") && !d.contains("张"))
        ),
        "{rows:?}"
    );
}

/// Workstations retrieve their studies: C-MOVE to a storage SCP of their own reader (DCMTK
/// `storescp` here) and C-GET; never another reader's study, never to another reader's AE.
#[test]
fn workstations_retrieve_exactly_their_readers_studies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    // The workstation's own storage SCP (C-MOVE destination).
    let ws_dir = root.join("workstation");
    let (_ws, ws_port) = storescp(&ws_dir, &[]);
    let r = relay_with_topology(
        tmp,
        &format!(
            "[[ae]]\ntitle = \"CTY_RAD1_WS\"\nidentity = \"county-radiology\"\nhost = \"127.0.0.1\"\nport = {ws_port}\n\n[[ae]]\ntitle = \"CTY_US1_WS\"\nidentity = \"county-ultrasound\"\nhost = \"127.0.0.1\"\nport = {ws_port}\n"
        ),
    );
    let ct_dir = root.join("ct");
    let ct = yilian_testkit::ct_series(
        &ct_dir,
        &yilian_testkit::StudySpec::new("CT", 50),
        3,
        32,
        32,
        50,
    )
    .unwrap();
    let us = pydicom_file("examples_ybr_color.dcm");
    storescu(&r, "TWA_DR1", &[&ct_dir]);
    storescu(&r, "TWA_US1", &[&us]);
    let ct_study = ct[0].study_instance_uid.clone();
    let us_study = "1.2.840.114340.3.8251017118051.1.20160503.120850.2171".to_string();
    let movescu = |dest: &str, study: &str| {
        let mut c = dcmtk("movescu");
        c.args([
            "-v", "-S", "-aet", "CTY_RAD1", "-aec", "YILIAN", "-aem", dest,
        ])
        .args(["-k", "QueryRetrieveLevel=STUDY"])
        .args(["-k", &format!("StudyInstanceUID={study}")])
        .arg("127.0.0.1")
        .arg(r.port.to_string());
        let out = run_guarded(c, GUARD, "movescu");
        format!("{}\n--- relay:\n{}", text(&out), r.relay.log_text())
    };

    // C-MOVE of the CT study to the workstation: all three slices, data sets unchanged.
    let log = movescu("CTY_RAD1_WS", &ct_study);
    assert!(
        log.contains("Received Final Move Response (Success)"),
        "{log}"
    );
    let moved: std::collections::BTreeMap<String, PathBuf> = files_under(&ws_dir)
        .into_iter()
        .filter_map(|f| Some((meta_sop(&f)?, f)))
        .collect();
    assert_eq!(moved.len(), 3, "{log}");
    for g in &ct {
        assert!(data_set(&moved[&g.sop_instance_uid]) == data_set(&g.path));
    }
    // The ultrasound study is not routed to radiology: nothing moves.
    let log = movescu("CTY_RAD1_WS", &us_study);
    assert_eq!(files_under(&ws_dir).len(), 3, "{log}");
    // Never to another reader's AE.
    let log = movescu("CTY_US1_WS", &ct_study);
    assert!(
        log.contains("Received Final Move Response (Refused: MoveDestinationUnknown)"),
        "{log}"
    );
    assert_eq!(files_under(&ws_dir).len(), 3, "{log}");

    // C-GET of the CT study, on the same association.
    let got_dir = root.join("got");
    std::fs::create_dir_all(&got_dir).unwrap();
    let mut c = dcmtk("getscu");
    c.args(["-v", "-S", "-aet", "CTY_RAD1", "-aec", "YILIAN", "-od"])
        .arg(&got_dir)
        .args(["-k", "QueryRetrieveLevel=STUDY"])
        .args(["-k", &format!("StudyInstanceUID={ct_study}")])
        .arg("127.0.0.1")
        .arg(r.port.to_string());
    let out = run_guarded(c, GUARD, "getscu");
    let got: std::collections::BTreeMap<String, PathBuf> = files_under(&got_dir)
        .into_iter()
        .filter_map(|f| Some((meta_sop(&f)?, f)))
        .collect();
    assert_eq!(got.len(), 3, "{}", text(&out));
    for g in &ct {
        assert!(data_set(&got[&g.sop_instance_uid]) == data_set(&g.path));
    }
    // A workstation that takes CT only in Implicit VR Little Endian (pynetdicom; DCMTK's
    // getscu always proposes every uncompressed syntax) gets the slices, stored in Explicit VR
    // LE, transcoded element for element.
    let implicit_dir = root.join("got-implicit");
    std::fs::create_dir_all(&implicit_dir).unwrap();
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/get_implicit.py"))
        .arg(r.port.to_string())
        .args(["CTY_RAD1", "YILIAN", &ct_study])
        .arg(&implicit_dir);
    let out = run_guarded(c, GUARD, "pynetdicom C-GET, Implicit VR LE only");
    let said = text(&out);
    assert!(out.status.success() && said.contains("final 0x0"), "{said}");
    for g in &ct {
        assert!(
            said.contains(&format!("{} 1.2.840.10008.1.2\n", g.sop_instance_uid)),
            "{said}"
        );
        let mut expected = Vec::new();
        let mut t = yilian_dicom::ToImplicit::new();
        t.feed(&data_set(&g.path), &mut expected).unwrap();
        t.finish().unwrap();
        let received = std::fs::read(implicit_dir.join(&g.sop_instance_uid)).unwrap();
        assert!(received == expected, "{}: {said}", g.sop_instance_uid);
    }
    // A console cannot retrieve.
    let mut c = dcmtk("getscu");
    c.args(["-v", "-S", "-aet", "TWA_DR1", "-aec", "YILIAN", "-od"])
        .arg(&got_dir)
        .args(["-k", "QueryRetrieveLevel=STUDY"])
        .args(["-k", &format!("StudyInstanceUID={ct_study}")])
        .arg("127.0.0.1")
        .arg(r.port.to_string());
    let out = run_guarded(c, GUARD, "getscu as a console");
    assert_eq!(files_under(&got_dir).len(), 3, "{}", text(&out));
    let rows = audit_rows(&r.relay.data, "retrieve");
    assert!(
        rows.iter()
            .any(|(actor, _, d)| actor == "county-radiology (AE CTY_RAD1)"
                && d.as_deref().is_some_and(
                    |d| d.starts_with("C-MOVE STUDY level to CTY_RAD1_WS: 3 instances, 3 sent")
                )),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|(_, outcome, _)| outcome == "refused"),
        "{rows:?}"
    );
}
