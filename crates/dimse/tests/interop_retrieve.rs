//! C-GET and C-MOVE with real peers: DCMTK 3.6.7 (`getscu`, `movescu`, `storescp`) and
//! pynetdicom 3.0.4 (C-GET and C-MOVE SCU, C-CANCEL), against the test SCP's handler, which
//! serves a few of pydicom's sample files whatever the identifier asks for.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use yilian_dimse::scp::{ScpConfig, SubOperation};
use yilian_dimse::{part10, Status};

fn dcmtk_command(tool: &str) -> Command {
    let mut c = Command::new(dcmtk(tool));
    c.env("TCP_NODELAY", "1");
    c
}

async fn output(mut c: Command) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || c.output().expect("the peer runs"))
        .await
        .expect("join");
    let text = String::from_utf8_lossy(&out.stdout).to_string()
        + &String::from_utf8_lossy(&out.stderr);
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
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3"])
        .arg("-od")
        .arg(out_dir.path())
        .args(["-v", "127.0.0.1"])
        .arg(scp.addr.port().to_string());
    let (ok, log) = output(c).await;
    assert!(ok, "getscu failed: {log}");
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
