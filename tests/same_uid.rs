//! Several files with one SOP Instance UID (pydicom ships one MR image in many transfer
//! syntaxes under one UID): a verdict per file, at once, without a retry storm. One UID is one
//! object (DICOM PS3.4): the first stored wins; an identical copy is "already stored"; a
//! different one fails, naming the file that won or saying the relay holds another instance.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(180);

/// The MR image pydicom ships in many encodings, all with one SOP Instance UID.
const MR_SMALL: [&str; 8] = [
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
];

fn copy(name: &str, to: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(to).unwrap();
    let dst = to.join(name);
    std::fs::copy(pydicom_file(name), &dst).unwrap();
    dst
}

fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            (
                name,
                f["outcome"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn one_uid_many_files_in_one_run_each_get_a_verdict_without_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let dir = tmp.path().join("mr");
    for name in MR_SMALL {
        copy(name, &dir);
    }
    // An exact copy under another name: the same object twice.
    std::fs::copy(dir.join("MR_small.dcm"), dir.join("MR_small_copy.dcm")).unwrap();
    let report_path = tmp.path().join("report.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&dir]);
    c.arg("--report-json").arg(&report_path);
    let out = run_guarded(c, GUARD, "send of one UID in nine files");
    assert_eq!(out.status.code(), Some(1), "conflicting files are failures");
    let all = text(&out);
    assert!(!all.contains("superseded"), "{all}");
    assert!(
        !all.contains("trying again"),
        "no retries for a permanent conflict: {all}"
    );

    let got = outcomes(&report(&report_path));
    assert_eq!(got.len(), 9, "a verdict per file");
    let stored: Vec<_> = got.iter().filter(|g| g.1 == "stored").collect();
    assert_eq!(stored.len(), 1, "one stored: {got:?}");
    let winner = &stored[0].0;
    for (name, outcome, reason) in &got {
        if name == winner {
            continue;
        }
        if name == "MR_small_copy.dcm" && winner == "MR_small.dcm"
            || name == "MR_small.dcm" && winner == "MR_small_copy.dcm"
        {
            assert_eq!(outcome, "already-stored", "{name}: {reason}");
            continue;
        }
        assert_eq!(outcome, "failed", "{name}");
        assert!(
            reason.contains("another file")
                && reason.contains(winner.as_str())
                && reason.contains("same SOP Instance UID but different content"),
            "{name}: {reason}"
        );
    }
    // The relay's log: no takeovers, one stored instance.
    let log = relay.log_text();
    assert!(
        !log.contains("superseded") && !log.contains("took over"),
        "{log}"
    );
    assert_eq!(log.matches("instance stored").count(), 1);

    // Another run with one of the losers: the relay holds a different instance.
    let later = tmp.path().join("later");
    let loser = got
        .iter()
        .find(|g| g.1 == "failed")
        .map(|g| g.0.clone())
        .unwrap();
    copy(&loser, &later);
    let report_path = tmp.path().join("later.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&later]);
    c.arg("--report-json").arg(&report_path);
    let out = run_guarded(c, GUARD, "send of a conflicting file in a later run");
    assert_eq!(out.status.code(), Some(1));
    let got = outcomes(&report(&report_path));
    assert_eq!(got[0].1, "failed");
    assert!(
        got[0].2.contains("already holds a different instance"),
        "{}",
        got[0].2
    );
}

/// Two processes of one township send different files with one UID at the same time: one is
/// stored, the other gets a conflict; neither retries in a loop, neither hangs.
#[test]
fn one_uid_from_two_processes_at_once_gets_one_winner_and_one_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let a = copy("MR_small.dcm", &tmp.path().join("a"));
    let b = copy("MR_small_bigendian.dcm", &tmp.path().join("b"));
    let spawn = |p: &Path, r: &Path| {
        let mut c = send_cmd(&relay, &pki, "township-a-device", &[p]);
        c.arg("--report-json").arg(r);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (ra, rb) = (tmp.path().join("ra.json"), tmp.path().join("rb.json"));
    let mut pa = spawn(&a, &ra);
    let mut pb = spawn(&b, &rb);
    let sa = wait_for_exit(&mut pa, GUARD, "first process");
    let sb = wait_for_exit(&mut pb, GUARD, "second process");
    assert_ne!(sa.success(), sb.success(), "exactly one wins");
    let loser = if sa.success() { &rb } else { &ra };
    let got = outcomes(&report(loser));
    assert_eq!(got[0].1, "failed");
    assert!(
        got[0].2.contains("already holds a different instance"),
        "{}",
        got[0].2
    );
    assert!(!relay.log_text().contains("superseded"));
}
