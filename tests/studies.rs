//! Studies of any size complete: a thin-slice CT's manifest does not fit one frame, so it
//! travels in pieces (both ways); readers are told the study is complete exactly when it is,
//! and `send` fails when a manifest could not be delivered.

mod common;
use common::hostile::Hostile;
use common::*;
use std::time::Duration;
use yilian_proto::ManifestOutcome;
use yilian_testkit::{ct_series, StudySpec};

const GUARD: Duration = Duration::from_secs(600);

/// 5,000 slices in one study: every one acknowledged, the manifest delivered, the study
/// complete at the relay and announced to county radiology with its 5,000 instances.
#[test]
fn a_study_of_5000_instances_completes_and_is_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let dir = tmp.path().join("ct");
    let slices = ct_series(&dir, &StudySpec::new("CT", 5000), 5000, 8, 8, 5000).unwrap();
    let study = slices[0].study_instance_uid.clone();
    let report_path = tmp.path().join("report.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&dir]);
    c.arg("--report-json").arg(&report_path);
    let out = run_guarded(c, GUARD, "send of 5,000 instances");
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&report_path);
    let s = &r["studies"][0];
    assert_eq!(s["instances"], 5000);
    assert_eq!(s["status"], "complete");
    assert_eq!(s["manifest_delivered"], true);

    let rad = tmp.path().join("rad");
    let out = run_guarded(
        read_cmd(&relay, &pki, "county-radiology", &rad, true),
        GUARD,
        "read of 5,000 instances",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(received(&rad), expected(&slices));
    let marker = rad.join(&study).join(".study-complete");
    assert_eq!(std::fs::read_to_string(marker).unwrap().trim(), "5000");
}

/// The relay's answer to a large manifest comes in pieces too: 5,000 listed, none stored yet,
/// 5,000 missing listed back. Then the sender's own run completes it.
#[test]
fn a_large_manifest_is_answered_with_every_missing_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let study = "1.2.826.0.1.3680043.10.1234.1.5001";
    // Longest UIDs (64 characters): the most bytes per piece.
    let uids: Vec<String> = (0..5000)
        .map(|i| format!("1.2.826.0.1.3680043.10.1234.9.{i:034}"))
        .collect();
    assert!(uids.iter().all(|u| u.len() == 64));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        match h.manifest(study, &uids).await {
            ManifestOutcome::Pending { missing } => assert_eq!(missing, {
                let mut u = uids.clone();
                u.sort();
                u
            }),
            other => panic!("{other:?}"),
        }
        // The same manifest again changes nothing.
        match h.manifest(study, &uids[..10]).await {
            ManifestOutcome::Pending { missing } => assert_eq!(missing.len(), 5000),
            other => panic!("{other:?}"),
        }
    });
}

/// `send` exits non-zero when a manifest does not reach the relay (here: refused, because the
/// study belongs to another township), and says what that means.
#[test]
fn send_fails_when_a_manifest_is_not_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let spec = StudySpec::new("CT", 77);
    let a = tmp.path().join("a");
    ct_series(&a, &spec, 2, 16, 16, 1).unwrap();
    let out = run(send_cmd(&relay, &pki, "township-a-device", &[&a]));
    assert!(out.status.success(), "{}", text(&out));
    // Township B has files of the same study (UIDs it should never have used).
    let b = tmp.path().join("b");
    ct_series(&b, &spec, 1, 16, 16, 2).unwrap();
    let report_path = tmp.path().join("b.json");
    let mut c = send_cmd(&relay, &pki, "township-b-device", &[&b]);
    c.arg("--report-json").arg(&report_path);
    let out = run_guarded(c, GUARD, "send into another site's study");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("manifests did NOT reach the relay"), "{all}");
    let r = report(&report_path);
    assert_eq!(r["studies"][0]["manifest_delivered"], false);
    assert!(
        r["studies"][0]["status"]
            .as_str()
            .unwrap()
            .contains("belongs to township-a"),
        "{r}"
    );
}
