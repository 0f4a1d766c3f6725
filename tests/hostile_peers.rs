//! Peers that hold a valid certificate and misbehave, against the real relay binary: through
//! the hostile kit (`common/hostile.rs`, raw QUIC + yilian/1 frames) for what the normal client
//! never does, and real `send`/`read` processes for what honest peers must still get.
//!
//! Every refusal must say why, be audited, and leave the relay serving everyone else.

mod common;
use common::hostile::*;
use common::*;
use std::path::Path;
use std::time::Duration;
use yilian_proto::{ManifestOutcome, RefuseCode, Reply};
use yilian_testkit::{ct_series, StudySpec};

const GUARD: Duration = Duration::from_secs(120);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn study(dir: &Path, seed: u64, n: usize) -> Vec<yilian_testkit::Generated> {
    ct_series(dir, &StudySpec::new("CT", seed), n, 32, 32, seed).unwrap()
}

fn refused(r: &Reply) -> (RefuseCode, String) {
    match r {
        Reply::Refused(r) => (r.code, r.reason.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A study belongs to the site that sent it first: another township can neither declare its
/// manifest (which would tell radiologists it is complete while slices are missing) nor add
/// instances to it; an empty manifest is refused; every refusal is audited; the real study
/// and its completion are untouched.
#[test]
fn another_sites_manifest_or_instance_for_a_study_is_refused_and_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let a_study = study(&tmp.path().join("a"), 41, 3);
    let study_uid = a_study[0].study_instance_uid.clone();
    let out = run(send_cmd(
        &relay,
        &pki,
        "township-a-device",
        &[&tmp.path().join("a")],
    ));
    assert!(out.status.success(), "{}", text(&out));

    rt().block_on(async {
        let b = Hostile::connect(&relay.addr, &pki, "township-b-device")
            .await
            .unwrap();
        // A manifest listing only one of A's three instances: would be "complete" at once.
        let one = vec![a_study[0].sop_instance_uid.clone()];
        match b.manifest(&study_uid, &one).await {
            ManifestOutcome::Refused(r) => {
                assert_eq!(r.code, RefuseCode::Unauthorized);
                assert!(r.reason.contains("belongs to township-a"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
        // An empty manifest for a new study.
        match b.manifest("1.2.826.0.1.3680043.10.1234.77", &[]).await {
            ManifestOutcome::Refused(r) => {
                assert!(r.reason.contains("lists no instances"), "{}", r.reason)
            }
            other => panic!("{other:?}"),
        }
        // An instance added to A's study: refused before any data.
        let (sop, bytes) = tiny_dicom(&tmp.path().join("b"), &study_uid, 42);
        let mut up = b
            .offer(&study_uid, &sop, bytes.len() as u64, None, false)
            .await;
        let (code, reason) = refused(&up.reply().await);
        assert_eq!(code, RefuseCode::Unauthorized);
        assert!(reason.contains("belongs to township-a"), "{reason}");
    });

    // Audited, with who and why.
    let manifests = audit_rows(&relay.data, "manifest");
    assert!(
        manifests
            .iter()
            .any(|(actor, outcome, _)| actor == "township-b-device" && outcome == "unauthorized"),
        "{manifests:?}"
    );
    // (A refused upload is audited right after the refusal is sent.)
    wait_until("the refused upload's audit entry", GUARD, || {
        audit_rows(&relay.data, "receive")
            .iter()
            .any(|(actor, outcome, detail)| {
                actor == "township-b-device"
                    && outcome == "unauthorized"
                    && detail.as_deref().is_some_and(|d| d.contains("belongs to"))
            })
    });
    // The radiologist gets A's three instances and one true completion.
    let out_dir = tmp.path().join("rad");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(received(&out_dir), expected(&a_study));
    let marker = out_dir.join(&study_uid).join(".study-complete");
    assert_eq!(std::fs::read_to_string(marker).unwrap().trim(), "3");
}

/// Write `src` with its Study Instance UID replaced by another of the same length: the same
/// SOP Instance UID, different content (a device reusing UIDs, or one squatting them).
fn with_other_study(src: &Path, from: &str, to: &str, dst: &Path) {
    assert_eq!(from.len(), to.len());
    let bytes = std::fs::read(src).unwrap();
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut out = bytes.clone();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= out.len() {
        if &bytes[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::write(dst, out).unwrap();
}

/// SOP Instance UIDs are scoped by site: township B storing a UID first does not make
/// township A's real image fail, and B cannot learn A's hash for it (no `Have` to an offer
/// without a hash from another site).
#[test]
fn a_uid_squatted_by_another_site_neither_blocks_nor_leaks() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let a = study(&tmp.path().join("a"), 101, 1);
    let sop = a[0].sop_instance_uid.clone();
    let a_uid = a[0].study_instance_uid.clone();
    let b_uid = StudySpec::new("CT", 102).study_uid;
    let b_file = tmp.path().join("b/squat.dcm");
    with_other_study(&a[0].path, &a_uid, &b_uid, &b_file);

    // B squats the UID first, in a study of its own.
    let out = run(send_cmd(&relay, &pki, "township-b-device", &[&b_file]));
    assert!(out.status.success(), "{}", text(&out));
    // A's real image is stored all the same.
    let out = run(send_cmd(
        &relay,
        &pki,
        "township-a-device",
        &[&tmp.path().join("a")],
    ));
    assert!(
        out.status.success(),
        "A's image must not fail: {}",
        text(&out)
    );

    rt().block_on(async {
        // C offers the UID without a hash: it must upload (Accept), not learn a hash (Have).
        let c = Hostile::connect(&relay.addr, &pki, "township-c-device")
            .await
            .unwrap();
        let mut up = c
            .offer("1.2.826.0.1.3680043.10.1234.1.103", &sop, 1000, None, false)
            .await;
        let r = up.reply().await;
        assert!(accepted(&r).is_some(), "expected Accept, got {r:?}");
        up.reset();
        // B offering it again without a hash: its own instance, a no-op.
        let b = Hostile::connect(&relay.addr, &pki, "township-b-device")
            .await
            .unwrap();
        let len = std::fs::metadata(&b_file).unwrap().len();
        let mut up = b.offer(&b_uid, &sop, len, None, false).await;
        match up.reply().await {
            Reply::Have { hash } => {
                assert_eq!(
                    hash,
                    yilian_testkit::blake3_file(&b_file).unwrap(),
                    "B's own"
                )
            }
            other => panic!("{other:?}"),
        }
    });
    // Both reach county radiology, each in its own study, byte-identical.
    let out_dir = tmp.path().join("rad");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(out.status.success(), "{}", text(&out));
    let got = |study: &str| {
        yilian_testkit::blake3_file(&out_dir.join(study).join(format!("{sop}.dcm"))).unwrap()
    };
    assert_eq!(got(&a_uid), a[0].blake3);
    assert_eq!(got(&b_uid), yilian_testkit::blake3_file(&b_file).unwrap());
}

/// A device that offers and resets in a loop (before or after sending some bytes) cannot fill
/// the relay's disk: offers that sent nothing leave nothing, the rest are capped per site and
/// removed after the retention period; honest uploads keep working throughout.
#[test]
fn offer_and_reset_loops_leave_bounded_partials_that_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start_with(
        &tmp.path().join("relay"),
        &pki,
        "[limits]\nmax_instance_bytes = 1048576\npartial_bytes_per_site = 8388608\npartial_retention = \"3s\"\n",
    );
    let partial_files = || {
        std::fs::read_dir(relay.data.join("partial"))
            .unwrap()
            .count()
    };
    let (sop, bytes) = tiny_dicom(&tmp.path().join("t"), "1.2.826.0.1.3680043.10.1234.1.9", 9);
    rt().block_on(async {
        let h = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        for i in 0..300u32 {
            // New UIDs each time, declared at the size limit.
            let mut up = h
                .offer(
                    "1.2.826.0.1.3680043.10.1234.1.9",
                    &format!("1.2.9.{i}"),
                    1 << 20,
                    None,
                    false,
                )
                .await;
            if i % 5 == 0 {
                assert!(accepted(&up.reply().await).is_some());
                // Some real bytes (a DICOM preamble), then gone.
                up.write(&bytes[..200]).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            up.reset();
        }
        // The relay still serves this very peer.
        let mut up = h
            .offer(
                "1.2.826.0.1.3680043.10.1234.1.9",
                &sop,
                bytes.len() as u64,
                None,
                false,
            )
            .await;
        let off = accepted(&up.reply().await).expect("accepted");
        up.send_rest(&bytes, off).await;
        assert!(matches!(up.verdict().await, Reply::Stored { .. }));
    });
    // 60 offers sent bytes: at most 8 MiB / 1 MiB = 8 partials (2 files each) are kept.
    assert!(partial_files() <= 16, "{} files", partial_files());
    // After the retention period nothing is left.
    // The sweep logs after it has removed the files: wait for both, not just the first.
    wait_until(
        "unfinished uploads to expire, with a log line",
        GUARD,
        || partial_files() == 0 && relay.log_text().contains("removed unfinished uploads"),
    );
    // Honest uploads work as ever.
    let dir = tmp.path().join("honest");
    study(&dir, 10, 2);
    let out = run(send_cmd(&relay, &pki, "township-a-device", &[&dir]));
    assert!(out.status.success(), "{}", text(&out));
}

/// An accepted upload that sends nothing (or stops half-way) is dropped after
/// `limits.upload_idle_timeout` with a reason, its lease released and what arrived kept: the
/// same instance then uploads (and resumes).
#[test]
fn an_idle_accepted_upload_is_dropped_and_its_lease_released() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start_with(
        &tmp.path().join("relay"),
        &pki,
        "[limits]\nupload_idle_timeout = \"2s\"\n[spool]\ncheckpoint_interval = \"100ms\"\n",
    );
    let study_uid = "1.2.826.0.1.3680043.10.1234.1.11";
    let (sop, bytes) = tiny_dicom(&tmp.path().join("t"), study_uid, 11);
    rt().block_on(async {
        let h = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        let size = bytes.len() as u64;
        // Accepted, then silence.
        let mut up = h.offer(study_uid, &sop, size, None, false).await;
        assert_eq!(accepted(&up.reply().await), Some(0));
        let (code, reason) = refused(&up.verdict().await);
        assert_eq!(code, RefuseCode::TimedOut);
        assert!(reason.contains("upload_idle_timeout"), "{reason}");
        // Half, then silence: dropped again, the half kept.
        let mut up = h.offer(study_uid, &sop, size, None, false).await;
        assert_eq!(accepted(&up.reply().await), Some(0));
        up.write(&bytes[..bytes.len() / 2]).await;
        let (code, _) = refused(&up.verdict().await);
        assert_eq!(code, RefuseCode::TimedOut);
        // The lease is free and the upload resumes where it stood.
        let mut up = h.offer(study_uid, &sop, size, None, false).await;
        let off = accepted(&up.reply().await).expect("accepted");
        assert_eq!(off, (bytes.len() / 2) as u64, "resumes at what arrived");
        up.send_rest(&bytes, off).await;
        assert!(matches!(up.verdict().await, Reply::Stored { .. }));
    });
    wait_until("both drops audited", GUARD, || {
        audit_rows(&relay.data, "receive")
            .iter()
            .filter(|r| r.1 == "timed-out")
            .count()
            == 2
    });
}

/// An urgent offer that never sends a byte cannot keep its township's link: the routine
/// uploads it paused continue once it has been idle for `limits.upload_idle_timeout`.
#[test]
fn an_urgent_offer_that_never_sends_data_does_not_hold_its_site() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start_with(
        &tmp.path().join("relay"),
        &pki,
        "[limits]\nupload_idle_timeout = \"2s\"\n",
    );
    let dir = tmp.path().join("routine");
    let routine = study(&dir, 12, 4);
    let rt = rt();
    let h = rt.block_on(async {
        let h = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        let mut up = h
            .offer(
                "1.2.826.0.1.3680043.10.1234.1.13",
                "1.2.13.1",
                5000,
                None,
                true,
            )
            .await;
        assert!(accepted(&up.reply().await).is_some());
        (h, up)
    });
    let out = run_guarded(
        send_cmd(&relay, &pki, "township-a-device", &[&dir]),
        GUARD,
        "routine send while a stuck urgent offer holds the site",
    );
    assert!(out.status.success(), "{}", text(&out));
    let log = relay.log_text();
    assert!(log.contains("routine upload paused"), "it was held first");
    let rad = tmp.path().join("rad");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success());
    assert_eq!(received(&rad), expected(&routine));
    drop(h);
}

/// Streams the relay never accepts cannot pile up in its memory: the relay grants no
/// unidirectional streams at all, and data sent on an upload before the relay accepted it is
/// refused.
#[test]
fn unaccepted_streams_cannot_buffer_data_in_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let study_uid = "1.2.826.0.1.3680043.10.1234.1.14";
    let (sop, bytes) = tiny_dicom(&tmp.path().join("t"), study_uid, 14);
    rt().block_on(async {
        let h = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        // The relay's transport parameters allow no unidirectional stream: opening one
        // waits forever (the peer may open none), so nothing can be written on it.
        let uni = tokio::time::timeout(Duration::from_secs(2), h.conn.open_uni()).await;
        assert!(uni.is_err(), "a unidirectional stream was granted");
        // An upload holding the instance's lease, and a second one that does not wait for
        // its Accept and pushes 4 MiB.
        let mut first = h
            .offer(study_uid, &sop, bytes.len() as u64, None, false)
            .await;
        assert!(accepted(&first.reply().await).is_some());
        let mut eager = h.offer(study_uid, &sop, 8 << 20, None, false).await;
        eager.write(&vec![0u8; 4 << 20]).await;
        let (code, reason) = refused(&eager.reply().await);
        assert_eq!(code, RefuseCode::Malformed);
        assert!(reason.contains("before the relay accepted"), "{reason}");
        first.send_rest(&bytes, 0).await;
        assert!(matches!(first.verdict().await, Reply::Stored { .. }));
    });
}

/// One certificate cannot take all the relay's connections or uploads: beyond
/// `limits.connections_per_identity` connections are closed with the reason, beyond
/// `limits.uploads_per_identity` uploads are refused as busy (a sender retries them later);
/// other identities are not affected.
#[test]
fn connections_and_uploads_per_identity_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start_with(
        &tmp.path().join("relay"),
        &pki,
        "[limits]\nconnections_per_identity = 2\nuploads_per_identity = 3\n",
    );
    rt().block_on(async {
        let a1 = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        let _a2 = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        // Closed right after the handshake: the close may even arrive before `connect` returns.
        let reason = match Hostile::connect(&relay.addr, &pki, "township-a-device").await {
            Err(e) => e,
            Ok(a3) => match tokio::time::timeout(ANSWER, a3.conn.closed()).await {
                Ok(quinn::ConnectionError::ApplicationClosed(c)) => {
                    String::from_utf8_lossy(&c.reason).to_string()
                }
                other => panic!("the third connection was not closed: {other:?}"),
            },
        };
        assert!(reason.contains("connections_per_identity"), "{reason}");
        let b = Hostile::connect(&relay.addr, &pki, "township-b-device")
            .await
            .expect("another identity connects");

        let mut ups = Vec::new();
        for i in 0..3 {
            let mut up = a1
                .offer(
                    "1.2.826.0.1.3680043.10.1234.1.15",
                    &format!("1.2.15.{i}"),
                    1000,
                    None,
                    false,
                )
                .await;
            assert!(accepted(&up.reply().await).is_some());
            ups.push(up);
        }
        let mut fourth = a1
            .offer(
                "1.2.826.0.1.3680043.10.1234.1.15",
                "1.2.15.9",
                1000,
                None,
                false,
            )
            .await;
        let (code, reason) = refused(&fourth.reply().await);
        assert_eq!(code, RefuseCode::Busy);
        assert!(reason.contains("uploads_per_identity"), "{reason}");
        let mut other = b
            .offer(
                "1.2.826.0.1.3680043.10.1234.1.16",
                "1.2.16.1",
                1000,
                None,
                false,
            )
            .await;
        assert!(
            accepted(&other.reply().await).is_some(),
            "B is not affected"
        );
    });
    wait_until("the refused connection audited", GUARD, || {
        audit_rows(&relay.data, "connect")
            .iter()
            .any(|c| c.1 == "too-many-connections")
    });
}
