//! DICOM consoles send to the relay over DIMSE; readers receive over yilian/1 (QUIC).
//!
//! Real peers: DCMTK's `echoscu`/`storescu` (called as /usr/bin/…: pynetdicom's scripts of the
//! same names can shadow them) and pynetdicom (`tests/py/dimse_send.py`, which sends each
//! file's data set exactly as stored in the file). Real files: every file bundled with
//! pydicom, the broken ones included. `scripts/test` installs DCMTK and pynetdicom.

mod common;

use common::dimse::*;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[test]
fn echoscu_is_answered_and_an_unknown_ae_is_rejected_and_audited() {
    let r = relay_with_dimse("30s");
    let ok = echoscu(&r, "TWA_DR1", "YILIAN");
    assert!(ok.status.success(), "{}", text(&ok));
    let unknown = echoscu(&r, "NOBODY", "YILIAN");
    assert!(!unknown.status.success());
    let t = text(&unknown);
    assert!(t.contains("Calling AE Title Not Recognized"), "{t}");
    let wrong_called = echoscu(&r, "TWA_DR1", "NOT_US");
    assert!(!wrong_called.status.success());
    assert!(
        text(&wrong_called).contains("Called AE Title Not Recognized"),
        "{}",
        text(&wrong_called)
    );
    let rows = audit_rows(&r.relay.data, "connect");
    assert!(
        rows.iter()
            .any(|(actor, outcome, _)| actor == "AE NOBODY"
                && outcome == "calling-ae-not-recognized"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(
            |(actor, outcome, _)| actor == "township-a-device (AE TWA_DR1)" && outcome == "ok"
        ),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(_, outcome, _)| outcome == "called-ae-not-recognized"),
        "{rows:?}"
    );
}

/// Every file bundled with pydicom, sent by pynetdicom with its data set as stored: each SOP
/// Instance UID is stored once (first come), other content under the same UID is refused as
/// a duplicate, broken files are refused with "cannot understand", the relay never fails
/// internally, and every stored instance reaches its reader with its data set byte-identical
/// to what DCMTK's storescp receives from the same sender.
#[test]
fn every_pydicom_file_through_pynetdicom_arrives_byte_identical() {
    let r = relay_with_dimse("30s");
    let files = files_under(&pydicom_dir());
    assert!(files.len() > 60, "pydicom's files: {}", files.len());
    let results = py_send(&r, "TWA_DR1", &files, &["--echo"]);
    assert_eq!(results[0]["echo"], 0, "{:?}", results[0]);
    let mut first_stored: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for v in &results[1..] {
        let path = PathBuf::from(v["path"].as_str().unwrap());
        let status = v["status"].as_i64();
        *statuses.entry(format!("{status:?}")).or_default() += 1;
        match status {
            None => {} // pydicom could not read it: never sent
            Some(0) => {
                let sop = v["sop"].as_str().expect("the UID sent").to_string();
                first_stored.entry(sop).or_insert(path);
            }
            // Duplicate SOP instance (other content), cannot understand (no Study UID,
            // truncated, malformed): refusals a radiographer can act on.
            Some(0x0111) | Some(0xC000) => {
                assert!(
                    v["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "a refusal says why: {v}"
                );
            }
            Some(s) => panic!("{}: unexpected status {s:#06x}: {v}", path.display()),
        }
    }
    eprintln!("statuses: {statuses:?}");
    assert!(first_stored.len() >= 25, "{statuses:?}");
    let got = read_county(&r, "pydicom");
    let originals: Vec<PathBuf> = first_stored.values().cloned().collect();
    let reference = storescp_reference(&r.root, &originals);
    for (sop, original) in &first_stored {
        let received = got
            .get(sop)
            .unwrap_or_else(|| panic!("{sop} ({}) was not delivered", original.display()));
        let expected = reference
            .get(sop)
            .unwrap_or_else(|| panic!("storescp did not receive {}", original.display()));
        assert!(
            data_set(received) == data_set(expected),
            "{}: the data set changed on its way",
            original.display()
        );
    }
    // A duplicate with other content never replaced the first.
    assert_eq!(
        got.len(),
        first_stored.len(),
        "{:?}",
        got.keys().collect::<Vec<_>>()
    );
    // Nothing half-written is left behind (the pool of empty files aside).
    assert_eq!(scratch_with_data(&r), Vec::<PathBuf>::new());
}

/// DCMTK's storescu sends a CT series and a multi-frame ultrasound; the quiet period makes
/// each study complete and readers are told.
#[test]
fn storescu_studies_are_complete_after_the_quiet_period() {
    let r = relay_with_dimse("2s");
    let ct_dir = r.root.join("ct");
    let ct = yilian_testkit::ct_series(
        &ct_dir,
        &yilian_testkit::StudySpec::new("CT", 7),
        12,
        64,
        64,
        7,
    )
    .unwrap();
    let us = pydicom_file("examples_ybr_color.dcm");
    let out = run_guarded(
        {
            let mut c = dcmtk("storescu");
            c.args(["-aet", "TWA_DR1", "-aec", "YILIAN", "+sd", "-R"])
                .arg("127.0.0.1")
                .arg(r.port.to_string())
                .arg(&ct_dir);
            c
        },
        GUARD,
        "storescu CT series",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run_guarded(
        {
            let mut c = dcmtk("storescu");
            c.args(["-aet", "TWA_US1", "-aec", "YILIAN", "-xy"])
                .arg("127.0.0.1")
                .arg(r.port.to_string())
                .arg(&us);
            c
        },
        GUARD,
        "storescu multi-frame US",
    );
    assert!(out.status.success(), "{}", text(&out));
    // Complete once quiet (2 s); read after that.
    wait_until("the studies are complete", Duration::from_secs(60), || {
        complete_studies(&r.relay.data) >= 2
    });
    let got = read_county(&r, "quiet");
    for g in &ct {
        let received = got.get(&g.sop_instance_uid).expect("CT slice delivered");
        assert!(
            data_set(received) == data_set(&g.path),
            "{}",
            g.path.display()
        );
    }
    let marker = r
        .root
        .join("quiet-county-radiology")
        .join(&ct[0].study_instance_uid)
        .join(".study-complete");
    let n =
        std::fs::read_to_string(&marker).unwrap_or_else(|e| panic!("{}: {e}", marker.display()));
    assert_eq!(n.trim(), "12");
    let us_sop = meta_sop(&us).unwrap();
    assert!(got.contains_key(&us_sop), "the ultrasound was delivered");
}

/// An association aborted in the middle of an instance leaves nothing of it, and the relay
/// keeps serving.
#[test]
fn an_aborted_association_leaves_nothing_partial() {
    let r = relay_with_dimse("30s");
    let big = pydicom_file("examples_ybr_color.dcm");
    let res = py_send(
        &r,
        "TWA_US1",
        std::slice::from_ref(&big),
        &["--abort-after", "1"],
    );
    assert_eq!(res[0]["error"], "aborted", "{res:?}");
    wait_until(
        "the cut-off instance is gone",
        Duration::from_secs(30),
        || scratch_with_data(&r).is_empty(),
    );
    let sop = meta_sop(&big).unwrap();
    assert_eq!(
        stored_count(&r.relay.data, &sop),
        0,
        "nothing of the aborted instance is stored"
    );
    // Still serving: the same file, whole, is stored.
    let res = py_send(&r, "TWA_US1", std::slice::from_ref(&big), &[]);
    assert_eq!(res[0]["status"], 0, "{res:?}");
    let got = read_county(&r, "after-abort");
    let reference = storescp_reference(&r.root, std::slice::from_ref(&big));
    assert!(data_set(&got[&sop]) == data_set(&reference[&sop]));
}

/// A relay killed with SIGKILL while a console sends loses none of the instances it
/// acknowledged: after the restart every one of them is stored (those sealed but not yet
/// committed are committed at start).
#[test]
fn a_kill_9_loses_no_acknowledged_c_store() {
    let mut r = relay_with_dimse("30s");
    let dir = r.root.join("ct");
    let ct = yilian_testkit::ct_series(
        &dir,
        &yilian_testkit::StudySpec::new("CT", 41),
        120,
        128,
        128,
        41,
    )
    .unwrap();
    let log = r.root.join("storescu.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = dcmtk("storescu")
        .args(["-v", "-aet", "TWA_DR1", "-aec", "YILIAN"])
        .arg("127.0.0.1")
        .arg(r.port.to_string())
        .args(ct.iter().map(|g| &g.path))
        .stdout(std::process::Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap();
    wait_until(
        "a few instances are stored",
        Duration::from_secs(120),
        || r.relay.log_text().matches("instance stored").count() >= 20,
    );
    r.relay.kill9();
    wait_for_exit(&mut child, GUARD, "storescu after the relay died");
    // What storescu was told: each "Sending file" followed by a success.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut acknowledged = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(f) = line.split("Sending file: ").nth(1) {
            current = Some(f.trim().to_string());
        } else if line.contains("Received Store Response (Success)") {
            if let Some(f) = current.take() {
                acknowledged.push(f);
            }
        }
    }
    assert!(acknowledged.len() >= 20, "{text}");
    r.relay.restart();
    let sops: Vec<String> = acknowledged
        .iter()
        .map(|f| {
            ct.iter()
                .find(|g| g.path.to_string_lossy() == *f)
                .unwrap_or_else(|| panic!("{f} is not one of the files sent"))
                .sop_instance_uid
                .clone()
        })
        .collect();
    let stored = |s: &str| stored_count(&r.relay.data, s) == 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<&String> = sops.iter().filter(|s| !stored(s)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "acknowledged but not stored after the restart: {missing:?}\nstorescu:\n{}\nrelay:\n{}",
            text.lines()
                .filter(|l| !l.starts_with("XMIT"))
                .collect::<Vec<_>>()
                .join("\n"),
            r.relay.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And readers get them.
    let got = read_county(&r, "after-kill");
    for s in &sops {
        assert!(got.contains_key(s), "{s} acknowledged but not delivered");
    }
    // The pooled copies the kill left (sealed; some committed, but not yet settled) are gone
    // once the restart committed them again and settled their object folders.
    wait_until(
        "the pool holds no copy any more",
        Duration::from_secs(60),
        || {
            files_under(&r.relay.data.join("scratch"))
                .into_iter()
                .all(|f| std::fs::metadata(&f).map(|m| m.len() == 0).unwrap_or(true))
        },
    );
}

/// The quiet period survives a restart: a study sent just before the relay stopped is
/// complete once quiet after it starts again; an instance that comes after the study was
/// completed, with a restart before the quiet period passes again, is added to its manifest.
#[test]
fn a_restart_during_the_quiet_period_still_completes_the_study() {
    let mut r = relay_with_dimse("3s");
    let dir = r.root.join("ct");
    let slices = yilian_testkit::ct_series(
        &dir,
        &yilian_testkit::StudySpec::new("CT", 61),
        5,
        32,
        32,
        61,
    )
    .unwrap();
    let study = slices[0].study_instance_uid.clone();
    let storescu = |r: &DimseRelay, files: &[&Path]| {
        let mut c = dcmtk("storescu");
        c.args(["-aet", "TWA_DR1", "-aec", "YILIAN"])
            .arg("127.0.0.1")
            .arg(r.port.to_string())
            .args(files);
        let out = run_guarded(c, GUARD, "storescu");
        assert!(out.status.success(), "{}", text(&out));
    };
    let first: Vec<&Path> = slices[..4].iter().map(|g| g.path.as_path()).collect();
    storescu(&r, &first);
    r.relay.kill9();
    let complete = |r: &DimseRelay| complete_studies(&r.relay.data);
    assert_eq!(complete(&r), 0, "killed before the quiet period passed");
    r.relay.restart();
    wait_until(
        "the study is complete after the restart",
        Duration::from_secs(60),
        || complete(&r) == 1,
    );
    assert!(r
        .relay
        .log_text()
        .contains("studies with instances no manifest lists wait for their quiet period again"));
    assert_eq!(manifest_listed(&r.relay.data, &study), Some(4));
    // A late slice, then a kill -9 before the study is quiet again.
    storescu(&r, &[slices[4].path.as_path()]);
    // Committed (not only sealed: a sealed one is committed again at start, which restarts
    // its study's quiet period by itself).
    wait_until("the late slice is committed", GUARD, || {
        stored_count(&r.relay.data, &slices[4].sop_instance_uid) == 1
            && scratch_with_data(&r).is_empty()
    });
    r.relay.kill9();
    assert_eq!(manifest_listed(&r.relay.data, &study), Some(4));
    r.relay.restart();
    wait_until(
        "the late slice joins the study's manifest after the restart",
        Duration::from_secs(60),
        || manifest_listed(&r.relay.data, &study) == Some(5),
    );
    assert_eq!(complete(&r), 1);
}

/// How many instances a study's manifest lists.
fn manifest_listed(data: &Path, study: &str) -> Option<i64> {
    let db = rusqlite::Connection::open_with_flags(
        data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    db.query_row(
        "SELECT listed FROM manifests WHERE study_uid = ?1",
        [study],
        |row| row.get(0),
    )
    .ok()
}

/// A large multi-frame instance streams through the DIMSE door with flat memory: the relay's
/// peak RSS grows by far less than the instance (P-DATA fragments go to the spool writer as
/// they arrive, with backpressure).
#[test]
fn a_large_c_store_streams_with_flat_memory() {
    let r = relay_with_dimse("30s");
    let big = r.root.join("large.dcm");
    let g = yilian_testkit::large_instance(
        &big,
        &yilian_testkit::StudySpec::new("US", 71),
        512 << 20,
        71,
    )
    .unwrap();
    // Warm up the path (pools, threads) with a small instance first.
    let small = pydicom_file("CT_small.dcm");
    let mut c = dcmtk("storescu");
    c.args(["-aet", "TWA_US1", "-aec", "YILIAN"])
        .arg("127.0.0.1")
        .arg(r.port.to_string())
        .arg(&small);
    assert!(run_guarded(c, GUARD, "storescu warm-up").status.success());
    let before = r.relay.peak_rss();
    let mut c = dcmtk("storescu");
    c.args(["-aet", "TWA_US1", "-aec", "YILIAN"])
        .arg("127.0.0.1")
        .arg(r.port.to_string())
        .arg(&big);
    let out = run_guarded(c, GUARD, "storescu of 512 MiB");
    assert!(out.status.success(), "{}", text(&out));
    let growth = r.relay.peak_rss().saturating_sub(before);
    eprintln!(
        "relay peak RSS: {} MiB before, +{} MiB for the instance",
        before >> 20,
        growth >> 20
    );
    assert_eq!(committed_count(&r.relay.data, &g.sop_instance_uid), 1);
    assert!(
        growth < 64 << 20,
        "the relay's peak RSS grew by {} MiB for a {} MiB instance",
        growth >> 20,
        g.size >> 20
    );
}

/// An `[[ae]]` with an address allow-list may call only from those addresses.
#[test]
fn an_ae_calling_from_an_address_not_listed_is_rejected() {
    let r = relay_with_topology(
        tempfile::tempdir().unwrap(),
        "[[ae]]\ntitle = \"TWA_CT2\"\nidentity = \"township-a-device\"\naddresses = [\"10.9.9.9\"]\n\n[[ae]]\ntitle = \"TWA_CT3\"\nidentity = \"township-a-device\"\naddresses = [\"127.0.0.1\"]\n",
    );
    let out = echoscu(&r, "TWA_CT2", "YILIAN");
    assert_rejected_and_audited(
        &out,
        &r,
        "calling-ae-not-recognized",
        "may not call from 127.0.0.1",
    );
    assert!(echoscu(&r, "TWA_CT3", "YILIAN").status.success());
}
