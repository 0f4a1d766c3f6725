//! Files nobody here wrote: every file bundled with pydicom 3.0.2 — DICOM in every transfer
//! syntax, files without Modality or file meta, truncated and malformed ones, JSON, ICC
//! profiles, a gzip, DICOMDIRs, 47 files sharing 13 SOP Instance UIDs — in one `send`.
//!
//! It finishes; the report gives every file a verdict; the readers receive every stored
//! instance byte-identical; nothing is refused for lacking an attribute routing does not need
//! (a Secondary Capture without Modality goes to county radiology by the default route).

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(600);

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_pydicom_sample_file_in_one_send_gets_a_verdict_and_stored_ones_arrive_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let corpus = tmp.path().join("pydicom");
    // A copy, so that nothing here depends on pydicom's folder staying as it is.
    let source = pydicom_dir();
    for f in all_files(&source) {
        let rel = f.strip_prefix(&source).unwrap();
        let dst = corpus.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
    let files = all_files(&corpus);
    assert!(files.len() >= 170, "{} files", files.len());

    let report_path = tmp.path().join("report.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&corpus]);
    c.arg("--report-json").arg(&report_path);
    let out = run_guarded(c, GUARD, "send of pydicom's sample files");
    // Some files are broken or not DICOM: the run says so with exit 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("superseded"));

    let report = report(&report_path);
    let entries = report["files"].as_array().unwrap();
    assert_eq!(entries.len(), files.len(), "a verdict per file");
    let mut ok: BTreeMap<PathBuf, &Value> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        let path = PathBuf::from(e["path"].as_str().unwrap());
        let outcome = e["outcome"].as_str().unwrap().to_string();
        *counts.entry(outcome.clone()).or_default() += 1;
        match outcome.as_str() {
            "stored" | "already-stored" => {
                ok.insert(path, e);
            }
            "skipped" => assert!(
                path.to_string_lossy().contains("DICOMDIR"),
                "only DICOMDIRs are skipped: {path:?}"
            ),
            "failed" => {
                let reason = e["reason"].as_str().unwrap();
                assert!(!reason.is_empty(), "{path:?}");
                assert!(
                    !reason.contains("missing attribute: the file has no Modality")
                        && !reason.contains("Series Instance UID"),
                    "{path:?} refused for an attribute routing does not need: {reason}"
                );
            }
            other => panic!("{path:?}: {other}"),
        }
    }
    eprintln!("verdicts: {counts:?}");
    assert!(ok.len() >= 80, "{} stored", ok.len());
    // Files without Modality are stored (routed by the default route).
    for name in ["SC_rgb_jpeg_app14_dcmd.dcm", "GDCMJ2K_TextGBR.dcm"] {
        assert!(
            ok.keys().any(|p| p.ends_with(name)),
            "{name} was not stored: {counts:?}"
        );
    }

    // Every stored instance reaches its reader byte-identical.
    let mut received_all: BTreeMap<(String, String), [u8; 32]> = BTreeMap::new();
    for reader in ["county-radiology", "county-ultrasound", "county-cardiology"] {
        let out_dir = tmp.path().join(reader);
        let out = run_guarded(
            read_cmd(&relay, &pki, reader, &out_dir, true),
            GUARD,
            reader,
        );
        assert!(out.status.success(), "{reader}: {}", text(&out));
        for f in all_files(&out_dir) {
            if f.extension().is_some_and(|x| x == "dcm") {
                let sop = f.file_stem().unwrap().to_string_lossy().to_string();
                let study = f
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                received_all.insert((study, sop), yilian_testkit::blake3_file(&f).unwrap());
            }
        }
    }
    for (path, e) in &ok {
        let key = (
            e["study_uid"].as_str().unwrap().to_string(),
            e["sop_uid"].as_str().unwrap().to_string(),
        );
        let got = received_all
            .get(&key)
            .unwrap_or_else(|| panic!("{path:?} ({key:?}) was not delivered"));
        assert_eq!(
            *got,
            yilian_testkit::blake3_file(path).unwrap(),
            "{path:?} arrived different"
        );
    }
    // The relay is still serving.
    let out = run(send_cmd(
        &relay,
        &pki,
        "township-a-device",
        &[&pydicom_file("CT_small.dcm")],
    ));
    assert!(out.status.success(), "{}", text(&out));
}
