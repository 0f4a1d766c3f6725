//! End to end, real processes on loopback: studies uploaded by a township device reach exactly
//! the county readers they are routed to, byte-identical, whether the readers were offline
//! (outbox) or online.

mod common;
use common::*;
use yilian_testkit::{ct_series, dx_image, us_multiframe, StudySpec};

#[test]
fn ct_dx_and_us_reach_their_readers_byte_identical_after_being_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);

    // A CT series of 300 slices 512×512 16-bit, a DX and a multi-frame US cine.
    let studies = tmp.path().join("studies");
    for d in ["ct", "dx", "us"] {
        std::fs::create_dir_all(studies.join(d)).unwrap();
    }
    let ct = ct_series(
        &studies.join("ct"),
        &StudySpec::new("CT", 1),
        300,
        512,
        512,
        1,
    )
    .unwrap();
    let dx = vec![dx_image(
        &studies.join("dx/DX.dcm"),
        &StudySpec::new("DX", 2),
        2048,
        1536,
        2,
    )
    .unwrap()];
    let us = vec![us_multiframe(
        &studies.join("us/US.dcm"),
        &StudySpec::new("US", 3),
        40,
        480,
        640,
        3,
    )
    .unwrap()];

    // Readers are offline: everything waits in their outboxes.
    let report_path = tmp.path().join("send.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&studies]);
    c.arg("--report-json").arg(&report_path);
    let out = run(c);
    assert!(out.status.success(), "send failed: {}", text(&out));
    let report = report(&report_path);
    assert_eq!(report["files"].as_array().unwrap().len(), 302);
    let studies_done: Vec<&str> = report["studies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        studies_done, ["complete"; 3],
        "every study's manifest is complete"
    );

    // Radiology comes online: CT + DX, nothing else, byte-identical.
    let rad = tmp.path().join("radiology");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success(), "{}", text(&out));
    let mut want = expected(&ct);
    want.extend(expected(&dx));
    assert_eq!(received(&rad), want);
    // Both studies were announced complete to the reader.
    assert!(rad
        .join(&ct[0].study_instance_uid)
        .join(".study-complete")
        .exists());
    assert!(rad
        .join(&dx[0].study_instance_uid)
        .join(".study-complete")
        .exists());

    // Ultrasound gets the cine only.
    let usr = tmp.path().join("ultrasound");
    let out = run(read_cmd(&relay, &pki, "county-ultrasound", &usr, true));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(received(&usr), expected(&us));

    // Cardiology and the provincial expert get nothing: none of it is routed to them.
    for who in ["county-cardiology", "provincial-expert"] {
        let dir = tmp.path().join(who);
        let out = run(read_cmd(&relay, &pki, who, &dir, true));
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            received(&dir).is_empty(),
            "{who} must not receive studies not routed to it"
        );
    }

    // Delivered once: a second --once run of radiology receives nothing new.
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-radiology",
        &tmp.path().join("again"),
        true,
    ));
    assert!(out.status.success());
    assert!(received(&tmp.path().join("again")).is_empty());

    // Re-sending the whole folder is a no-op: nothing is sent, everything "already there".
    let report2 = tmp.path().join("send2.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&studies]);
    c.arg("--report-json").arg(&report2);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let r2 = common::report(&report2);
    assert_eq!(r2["bytes_sent"].as_u64(), Some(0));
    assert!(r2["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["outcome"] == "already-stored"));

    // No patient name in the relay's log (the fixtures use 测试^患者-like names).
    let log = relay.log_text();
    for spec in [StudySpec::new("CT", 1), StudySpec::new("DX", 2)] {
        let family = spec.patient_name.split('^').next().unwrap().to_string();
        assert!(!log.contains(&family), "patient name in the relay log");
        assert!(
            !log.contains(&spec.patient_id),
            "patient ID in the relay log"
        );
    }
}

/// Readers sharing a delivery buffer budget far below their windows (each gets the 1 MiB
/// floor) still receive everything, byte-identical, while they come and go.
#[test]
fn readers_sharing_a_tiny_delivery_budget_receive_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start_with(
        &tmp.path().join("relay"),
        &pki,
        "[delivery]\nbuffer_budget = 1048576\n",
    );
    let studies = tmp.path().join("studies");
    std::fs::create_dir_all(studies.join("ct")).unwrap();
    let ct = ct_series(
        &studies.join("ct"),
        &StudySpec::new("CT", 51),
        20,
        512,
        512,
        51,
    )
    .unwrap();
    let us = vec![us_multiframe(
        &studies.join("US.dcm"),
        &StudySpec::new("US", 52),
        20,
        480,
        640,
        52,
    )
    .unwrap()];
    let out = run(send_cmd(&relay, &pki, "township-a-device", &[&studies]));
    assert!(out.status.success(), "send failed: {}", text(&out));

    // Both readers at once: they share the budget, then each leaves and gives its part back.
    let (rad, usr) = (tmp.path().join("radiology"), tmp.path().join("ultrasound"));
    let readers: Vec<_> = [("county-radiology", &rad), ("county-ultrasound", &usr)]
        .into_iter()
        .map(|(who, dir)| {
            read_cmd(&relay, &pki, who, dir, true)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(received(&rad), expected(&ct));
    assert_eq!(received(&usr), expected(&us));
}
