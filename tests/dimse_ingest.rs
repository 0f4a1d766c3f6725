//! DICOM consoles send to the relay over DIMSE; readers receive over yilian/1 (QUIC).
//!
//! Real peers: DCMTK's `echoscu`/`storescu` (called as /usr/bin/…: pynetdicom's scripts of the
//! same names can shadow them) and pynetdicom (`tests/py/dimse_send.py`, which sends each
//! file's data set exactly as stored in the file). Real files: every file bundled with
//! pydicom, the broken ones included. `scripts/test` installs DCMTK and pynetdicom.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(600);

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A DCMTK tool; fails (never skips) when DCMTK is missing.
fn dcmtk(tool: &str) -> Command {
    let path = PathBuf::from("/usr/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test (it installs Debian's dcmtk)",
        path.display()
    );
    let mut c = Command::new(path);
    // DCMTK leaves Nagle on unless told: the peer, not yilian, would be measured.
    c.env("TCP_NODELAY", "1");
    c
}

struct DimseRelay {
    relay: RelayProc,
    port: u16,
    _tmp: tempfile::TempDir,
    pki: Pki,
    root: PathBuf,
}

fn relay_with_dimse(quiet: &str) -> DimseRelay {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let port = free_tcp_port();
    let relay = RelayProc::start_with(
        &root.join("relay"),
        &pki,
        &format!("[dimse]\nlisten = \"127.0.0.1:{port}\"\nquiet_period = \"{quiet}\"\n"),
    );
    DimseRelay {
        relay,
        port,
        _tmp: tmp,
        pki,
        root,
    }
}

/// Send with pynetdicom: one JSON object per file.
fn py_send(
    r: &DimseRelay,
    calling: &str,
    files: &[PathBuf],
    extra: &[&str],
) -> Vec<serde_json::Value> {
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dimse_send.py"))
        .args(["127.0.0.1", &r.port.to_string(), calling, "YILIAN"])
        .args(extra)
        .args(files);
    let out = run_guarded(c, GUARD, "pynetdicom send");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// The data set of a Part 10 file: the bytes after its file meta information.
fn data_set(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let meta = yilian_dimse::part10::parse_file_meta(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes[meta.data_set_offset as usize..].to_vec()
}

/// The SOP Instance UID in a file's meta.
fn meta_sop(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    yilian_dimse::part10::parse_file_meta(&bytes)
        .ok()
        .map(|m| m.sop_instance)
}

/// Read everything routed to the county's three reading departments: SOP UID → file.
fn read_county(r: &DimseRelay, tag: &str) -> BTreeMap<String, PathBuf> {
    let mut got = BTreeMap::new();
    for reader in ["county-radiology", "county-ultrasound", "county-cardiology"] {
        let out_dir = r.root.join(format!("{tag}-{reader}"));
        let out = run_guarded(
            read_cmd(&r.relay, &r.pki, reader, &out_dir, true),
            GUARD,
            "read --once",
        );
        assert!(out.status.success(), "{reader}: {}", text(&out));
        for f in files_under(&out_dir) {
            if f.extension().is_some_and(|e| e == "dcm") {
                let sop = f.file_stem().unwrap().to_string_lossy().to_string();
                got.insert(sop, f);
            }
        }
    }
    got
}

#[test]
fn echoscu_is_answered_and_an_unknown_ae_is_rejected_and_audited() {
    let r = relay_with_dimse("30s");
    let port = r.port.to_string();
    let ok = run_guarded(
        {
            let mut c = dcmtk("echoscu");
            c.args(["-aet", "TWA_DR1", "-aec", "YILIAN", "127.0.0.1", &port]);
            c
        },
        GUARD,
        "echoscu as TWA_DR1",
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let unknown = run_guarded(
        {
            let mut c = dcmtk("echoscu");
            c.args(["-aet", "NOBODY", "-aec", "YILIAN", "127.0.0.1", &port]);
            c
        },
        GUARD,
        "echoscu as an unknown AE",
    );
    assert!(!unknown.status.success());
    let t = text(&unknown);
    assert!(t.contains("Calling AE Title Not Recognized"), "{t}");
    let wrong_called = run_guarded(
        {
            let mut c = dcmtk("echoscu");
            c.args(["-aet", "TWA_DR1", "-aec", "NOT_US", "127.0.0.1", &port]);
            c
        },
        GUARD,
        "echoscu to the wrong called AE",
    );
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

/// What DCMTK's `storescp` (bit-preserving, every transfer syntax and SOP class) receives when
/// pynetdicom sends `files` to it: SOP Instance UID → received file. The reference for "the
/// data set exactly as the SCU sent it" (an SCU may drop group lengths or padding on the way).
fn storescp_reference(root: &Path, files: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    let out = root.join("storescp-out");
    std::fs::create_dir_all(&out).unwrap();
    let port = free_tcp_port();
    let mut scp = dcmtk("storescp")
        .args(["+xa", "-pm", "+B", "+uf", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("storescp listens", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dimse_send.py"))
        .args(["127.0.0.1", &port.to_string(), "REFERENCE", "STORESCP"])
        .args(files);
    let sent = run_guarded(c, GUARD, "pynetdicom → storescp");
    let _ = scp.kill();
    let _ = scp.wait();
    assert!(sent.status.success(), "{}", text(&sent));
    files_under(&out)
        .into_iter()
        .filter_map(|f| Some((meta_sop(&f)?, f)))
        .collect()
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
    // Nothing half-written is left behind.
    let scratch = r.relay.data.join("scratch");
    assert_eq!(files_under(&scratch), Vec::<PathBuf>::new());
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
        let db = rusqlite::Connection::open_with_flags(
            r.relay.data.join("index.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let n: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM manifests WHERE complete_at IS NOT NULL",
                [],
                |row| row.get(0),
            )
            .unwrap_or(0);
        n >= 2
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
        || files_under(&r.relay.data.join("scratch")).is_empty(),
    );
    let sop = meta_sop(&big).unwrap();
    let db = rusqlite::Connection::open_with_flags(
        r.relay.data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let n: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM instances WHERE sop_uid = ?1",
            [&sop],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(n, 0, "nothing of the aborted instance is stored");
    // Still serving: the same file, whole, is stored.
    let res = py_send(&r, "TWA_US1", std::slice::from_ref(&big), &[]);
    assert_eq!(res[0]["status"], 0, "{res:?}");
    let got = read_county(&r, "after-abort");
    let reference = storescp_reference(&r.root, std::slice::from_ref(&big));
    assert!(data_set(&got[&sop]) == data_set(&reference[&sop]));
}
