//! C-GET and C-MOVE with real peers: DCMTK 3.6.7 (`getscu`, `movescu`, `storescp`) and
//! pynetdicom 3.0.4 (C-GET and C-MOVE SCU, C-CANCEL), against the test SCP's handler, which
//! serves a few of pydicom's sample files whatever the identifier asks for.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use yilian_dimse::part10;
use yilian_dimse::scp::{ScpConfig, SubOperation};

fn dcmtk_command(tool: &str) -> Command {
    let mut c = Command::new(dcmtk(tool));
    c.env("TCP_NODELAY", "1");
    c
}

async fn output(mut c: Command) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || c.output().expect("the peer runs"))
        .await
        .expect("join");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn files(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| sample(n)).collect()
}

fn sop_instance(path: &Path) -> String {
    part10::read_file_meta(path).expect("Part 10").sop_instance
}

/// The file in `dir` holding `sop_instance` (Part 10 files written by a peer).
fn received(dir: &Path, sop_instance: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            part10::read_file_meta(p)
                .map(|m| m.sop_instance == sop_instance)
                .unwrap_or(false)
        })
}

/// The received file's data set equals the original's, byte for byte.
fn assert_same_data_set(got: &Path, original: &Path) {
    assert!(
        data_set_of(got) == data_set_of(original),
        "data set of {} differs from {}",
        got.display(),
        original.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getscu_retrieves_identical_data_sets() {
    let originals = files(&["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm"]);
    let scp = TestScp::with_library(
        ScpConfig::default(),
        Library {
            files: originals.clone(),
            ..Library::default()
        },
    )
    .await;
    let out_dir = tempfile::tempdir().unwrap();
    let mut c = dcmtk_command("getscu");
    // -S: study root; +B: write what arrives bit for bit; default max PDU 16 KiB: every data
    // set crosses many PDUs.
    c.args(["-S", "+B", "-aet", "GETSCU", "-aec", "YILIAN"])
        .args([
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID=1.2.3",
        ])
        .arg("-od")
        .arg(out_dir.path())
        .args(["-v", "127.0.0.1"])
        .arg(scp.addr.port().to_string());
    let (ok, log) = output(c).await;
    assert!(ok, "getscu failed: {log}");
    // A pending C-GET-RSP between sub-operations, then success with the counts.
    assert_eq!(
        log.matches("Received C-GET Response (Pending)").count(),
        2,
        "{log}"
    );
    assert!(log.contains("Received C-GET Response (Success)"), "{log}");
    assert!(
        log.contains("Number of Completed Suboperations : 3"),
        "{log}"
    );
    assert!(
        log.contains("Number of Failed Suboperations    : 0"),
        "{log}"
    );
    for original in &originals {
        let uid = sop_instance(original);
        let got = received(out_dir.path(), &uid)
            .unwrap_or_else(|| panic!("{} not received: {log}", original.display()));
        assert_same_data_set(&got, original);
    }
    let s = scp.wait_summaries(1).await;
    let summary = s[0].as_ref().expect("clean association");
    assert_eq!(summary.gets, 1);
}

async fn pynetdicom(port: u16, args: &[&str]) -> String {
    let mut c = Command::new(python());
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/retrieve.py"))
        .arg(port.to_string())
        .args(args);
    let (ok, out) = output(c).await;
    assert!(ok, "pynetdicom failed: {out}");
    out
}

const CT: &str = yilian_dimse::sop_classes::CT_IMAGE_STORAGE;
const MR: &str = yilian_dimse::sop_classes::MR_IMAGE_STORAGE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_get_counts_an_instance_without_a_context_as_failed() {
    let originals = files(&["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm"]);
    let scp = TestScp::with_library(
        ScpConfig::default(),
        Library {
            files: originals.clone(),
            ..Library::default()
        },
    )
    .await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().display().to_string();
    // Storage contexts (with the SCP role) for CT and MR only: the ECG cannot be sent.
    let out = pynetdicom(scp.addr.port(), &["get", &dir, CT, MR]).await;
    let pendings: Vec<&str> = out.lines().filter(|l| l.starts_with("pending")).collect();
    assert_eq!(pendings, ["pending 2 1 0 0", "pending 1 2 0 0"], "{out}");
    let ecg = sop_instance(&originals[2]);
    assert!(out.contains("final 0xB000 - 2 1 0"), "{out}");
    assert!(out.contains(&format!("failed {ecg}")), "{out}");
    for original in &originals[..2] {
        let got = std::fs::read(out_dir.path().join(sop_instance(original))).expect("received");
        assert!(
            got == data_set_of(original),
            "{} differs",
            original.display()
        );
    }
    let results = scp.seen.retrievals.lock().unwrap().clone();
    let (_, ecg_result) = results.iter().find(|(uid, _)| *uid == ecg).expect("ECG");
    assert!(
        matches!(
            ecg_result,
            SubOperation::NotSent(yilian_dimse::scp::NotSent::NoContext { .. })
        ),
        "{ecg_result:?}"
    );
    let s = scp.wait_summaries(1).await;
    assert!(s[0].is_ok(), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_cancel_stops_a_get_after_the_current_sub_operation() {
    let five = files(&[
        "CT_small.dcm",
        "MR_small.dcm",
        "CT_small.dcm",
        "MR_small.dcm",
        "CT_small.dcm",
    ]);
    let scp = TestScp::with_library(
        ScpConfig::default(),
        Library {
            files: five,
            delay: Duration::from_millis(300),
            ..Library::default()
        },
    )
    .await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().display().to_string();
    let out = pynetdicom(scp.addr.port(), &["get-cancel", &dir, CT, MR]).await;
    let last = out
        .lines()
        .find(|l| l.starts_with("final"))
        .unwrap_or_else(|| panic!("no final response: {out}"));
    let f: Vec<&str> = last.split(' ').collect();
    assert_eq!(f[1], "0xFE00", "{out}");
    let (remaining, completed): (u32, u32) = (f[2].parse().unwrap(), f[3].parse().unwrap());
    assert!((1..5).contains(&completed), "{out}");
    assert_eq!(remaining + completed, 5, "{out}");
    assert_eq!(out.matches("store ").count() as u32, completed, "{out}");
    let s = scp.wait_summaries(1).await;
    assert!(s[0].is_ok(), "the association survives a cancel: {s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_move_delivers_with_move_originator() {
    let originals = files(&["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm"]);
    let dest = TestScp::start(ScpConfig::default()).await;
    let scp = TestScp::with_library(
        ScpConfig::default(),
        Library {
            files: originals.clone(),
            destinations: vec![("DEST".into(), dest.addr)],
            ..Library::default()
        },
    )
    .await;
    let out = pynetdicom(scp.addr.port(), &["move", "DEST"]).await;
    let pendings = out.lines().filter(|l| l.starts_with("pending")).count();
    assert_eq!(pendings, 2, "{out}");
    assert!(out.contains("final 0x0000 - 3 0 0"), "{out}");
    let stored = dest.stored();
    assert_eq!(stored.len(), 3, "{stored:?}");
    for original in &originals {
        let uid = sop_instance(original);
        let got = stored
            .iter()
            .find(|s| s.request.sop_instance == uid)
            .expect("delivered");
        assert_eq!(got.request.calling_ae, "YILIAN");
        assert_eq!(
            got.request.move_originator_ae.as_deref(),
            Some("PYNETDICOM")
        );
        assert_eq!(got.request.move_originator_message_id, Some(7));
        assert_same_instance(&got.path, original);
    }
    // An unknown destination is refused (0xA801) before anything is sent.
    let out = pynetdicom(scp.addr.port(), &["move", "NOWHERE"]).await;
    assert!(out.contains("final 0xA801"), "{out}");
    assert_eq!(dest.stored().len(), 3);
    let s = scp.wait_summaries(2).await;
    assert!(s.iter().all(|r| r.is_ok()), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movescu_moves_to_dcmtk_storescp() {
    let originals = files(&["CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm"]);
    let store_dir = tempfile::tempdir().unwrap();
    let log_path = store_dir.path().join("storescp.log");
    let port = free_port();
    let log = std::fs::File::create(&log_path).unwrap();
    // +xa: every transfer syntax (the JPEG file stays JPEG); -pm: promiscuous (unknown SOP
    // classes too); +B: write data sets as received; -d: log each DIMSE message (Move
    // Originator).
    let mut storescp = dcmtk_command("storescp")
        .args([
            "+xa",
            "-pm",
            "+B",
            "-d",
            "--aetitle",
            "PACS",
            "--output-directory",
        ])
        .arg(store_dir.path())
        .arg(port.to_string())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("storescp starts");
    let scp = TestScp::with_library(
        ScpConfig::default(),
        Library {
            files: originals.clone(),
            destinations: vec![("PACS".into(), ([127, 0, 0, 1], port).into())],
            ..Library::default()
        },
    )
    .await;
    wait_listening(port).await;
    let mut c = dcmtk_command("movescu");
    c.args(["-S", "-aet", "MOVESCU", "-aec", "YILIAN", "-aem", "PACS"])
        .args([
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID=1.2.3",
        ])
        .args(["-v", "127.0.0.1"])
        .arg(scp.addr.port().to_string());
    let (ok, out) = output(c).await;
    let _ = storescp.kill();
    let _ = storescp.wait();
    let storescp_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(ok, "movescu failed: {out}\nstorescp: {storescp_log}");
    for original in &originals {
        let got = received(store_dir.path(), &sop_instance(original))
            .unwrap_or_else(|| panic!("{} not delivered: {out}", original.display()));
        assert_same_data_set(&got, original);
    }
    // storescp's dump of each C-STORE-RQ: "Move Originator AE Title      : MOVESCU" and
    // "Move Originator ID            : 1" (movescu's C-MOVE-RQ is message 1).
    let field = |name: &str| -> Vec<String> {
        storescp_log
            .lines()
            .filter(|l| l.starts_with(&format!("D: {name} ")))
            .filter_map(|l| l.rsplit(": ").next().map(|v| v.trim().to_string()))
            .collect()
    };
    assert_eq!(
        field("Move Originator AE Title"),
        vec!["MOVESCU"; originals.len()],
        "{storescp_log}"
    );
    assert_eq!(
        field("Move Originator ID"),
        vec!["1"; originals.len()],
        "{storescp_log}"
    );
    let s = scp.wait_summaries(1).await;
    assert_eq!(s[0].as_ref().expect("clean").moves, 1);
}

async fn wait_listening(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}
