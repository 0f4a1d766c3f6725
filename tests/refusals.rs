//! What people see when something is wrong, with real processes: certificates the relay
//! must refuse, and files that are not (whole) DICOM — refused per file with a reason while
//! the good files of the same run are stored.

mod common;
use common::*;
use yilian_testkit::{ct_series, not_dicom, truncated_copy, StudySpec};
use yilian_transport::{DevCa, PeerIdentity, Role};

fn tiny_study(dir: &std::path::Path, seed: u64) -> Vec<yilian_testkit::Generated> {
    std::fs::create_dir_all(dir).unwrap();
    ct_series(dir, &StudySpec::new("CT", seed), 3, 64, 64, seed).unwrap()
}

#[test]
fn certificates_from_another_ca_expired_or_unknown_are_refused_with_clear_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let study = tmp.path().join("study");
    tiny_study(&study, 31);
    let device = PeerIdentity::new("township-a-device", "township-a", Role::Device, None).unwrap();

    // 1. A certificate from a CA that is not the alliance's.
    let stranger = Pki {
        dir: tmp.path().join("stranger"),
        ca: DevCa::generate("another alliance").unwrap(),
    };
    std::fs::create_dir_all(&stranger.dir).unwrap();
    stranger.issue(&device, "township-a-device", false);
    let mut c = yilian();
    c.args(["send", "--relay", &relay.addr, "--give-up-after", "5s"])
        .arg("--cert")
        .arg(stranger.cert("township-a-device"))
        .arg("--key")
        .arg(stranger.key("township-a-device"))
        .arg("--ca")
        .arg(pki.ca_path())
        .arg(&study);
    let out = run(c);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("refused our certificate"), "{msg}");
    assert!(msg.contains("not issued by the alliance CA"), "{msg}");

    // 2. An expired certificate from the right CA.
    pki.issue(&device, "expired-device", true);
    let mut c = yilian();
    c.args(["send", "--relay", &relay.addr, "--give-up-after", "5s"])
        .arg("--cert")
        .arg(pki.cert("expired-device"))
        .arg("--key")
        .arg(pki.key("expired-device"))
        .arg("--ca")
        .arg(pki.ca_path())
        .arg(&study);
    let out = run(c);
    assert!(!out.status.success());
    assert!(text(&out).contains("expired"), "{}", text(&out));

    // 3. A valid certificate whose identity the topology does not know.
    let ghost = PeerIdentity::new("township-z-device", "township-a", Role::Device, None).unwrap();
    pki.issue(&ghost, "township-z-device", false);
    let out = run(send_cmd(&relay, &pki, "township-z-device", &[&study]));
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("unknown identity"), "{msg}");
    assert!(msg.contains("township-z-device"), "{msg}");

    // A certificate claiming another site than the topology gives that name is refused too.
    let impostor = PeerIdentity::new("township-a-device", "county", Role::Device, None).unwrap();
    pki.issue(&impostor, "impostor", false);
    let out = run(send_cmd(&relay, &pki, "impostor", &[&study]));
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown identity"), "{}", text(&out));

    // The relay says so too, in words an administrator understands, and stored nothing.
    let log = relay.log_text();
    assert!(log.contains("refused a connection"), "{log}");
    assert!(
        log.contains("not issued by the alliance CA") || log.contains("UnknownIssuer"),
        "{log}"
    );
    assert!(log.contains("expired"), "{log}");
    assert!(log.contains("unknown identity township-z-device"), "{log}");
    assert!(relay_bytes(&relay.data) == 0, "nothing stored");

    // And the right certificate still works.
    let out = run(send_cmd(&relay, &pki, "township-a-device", &[&study]));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn non_dicom_and_truncated_files_are_refused_per_file_and_the_rest_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let folder = tmp.path().join("mixed");
    let good = tiny_study(&folder.join("good"), 41);
    let spare = tiny_study(&tmp.path().join("spare"), 42);
    not_dicom(&folder.join("report.pdf")).unwrap();
    truncated_copy(
        &spare[0].path,
        &folder.join("cut.dcm"),
        spare[0].pixel_data_offset + 100,
    )
    .unwrap();
    yilian_testkit::corrupt_length(&spare[1].path, &folder.join("corrupt.dcm")).unwrap();

    let report_path = tmp.path().join("report.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&folder]);
    c.arg("--report-json").arg(&report_path);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1), "some files failed: exit 1");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("3 files were NOT stored"), "{stdout}");
    let r = report(&report_path);
    let by_name = |n: &str| {
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(n))
            .unwrap()
            .clone()
    };
    let pdf = by_name("report.pdf");
    assert_eq!(pdf["outcome"], "failed");
    assert!(
        pdf["reason"].as_str().unwrap().contains("not a DICOM file"),
        "{pdf}"
    );
    let cut = by_name("cut.dcm");
    assert_eq!(cut["outcome"], "failed");
    assert!(
        cut["reason"].as_str().unwrap().contains("truncated"),
        "{cut}"
    );
    let corrupt = by_name("corrupt.dcm");
    assert_eq!(corrupt["outcome"], "failed");

    // The good files are stored and delivered, byte-identical; nothing else.
    let out_dir = tmp.path().join("radiology");
    let o = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(o.status.success());
    assert_eq!(received(&out_dir), expected(&good));
}
