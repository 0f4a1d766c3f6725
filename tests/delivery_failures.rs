//! Deliveries that fail, end to end with real processes: an instance a reader cannot store (a
//! file is in the way of its study folder) is retried by the relay within the session and
//! arrives once the obstacle is gone; `read --once` exits 1 naming what it could not store
//! (its own failures and the ones the relay reports); received files are private (0600, 0700).

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use yilian_testkit::{ct_series, dx_image, Generated, StudySpec};

/// A 3-slice CT and a DX, both routed to county radiology, uploaded while it is offline.
fn upload_ct_and_dx(tmp: &Path, relay: &RelayProc, pki: &Pki) -> (Vec<Generated>, Generated) {
    let studies = tmp.join("studies");
    std::fs::create_dir_all(studies.join("ct")).unwrap();
    let ct = ct_series(
        &studies.join("ct"),
        &StudySpec::new("CT", 41),
        3,
        64,
        64,
        41,
    )
    .unwrap();
    let dx = dx_image(
        &studies.join("DX.dcm"),
        &StudySpec::new("DX", 42),
        256,
        256,
        42,
    )
    .unwrap();
    let out = run(send_cmd(relay, pki, "township-a-device", &[&studies]));
    assert!(out.status.success(), "send failed: {}", text(&out));
    (ct, dx)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` is 0600 and every folder below it 0700.
fn assert_private(dir: &Path) {
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.unwrap();
        let want = if e.file_type().is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(e.path()), want, "{}", e.path().display());
    }
}

#[test]
fn read_once_names_what_it_could_not_store_and_a_second_run_receives_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let (ct, dx) = upload_ct_and_dx(tmp.path(), &relay, &pki);

    // A regular file where the DX study's folder must go (works as root too, unlike modes).
    let out_dir = tmp.path().join("received");
    std::fs::create_dir_all(&out_dir).unwrap();
    let obstacle = out_dir.join(&dx.study_instance_uid);
    std::fs::write(&obstacle, b"not a folder").unwrap();

    let out = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(said.contains("1 instance could NOT be stored"), "{said}");
    // The relay tried it several times in the session; the reader's log says it once.
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        log.matches("could not store an instance").count(),
        1,
        "{log}"
    );
    assert!(
        relay.log_text().contains("not delivered in this session"),
        "{}",
        relay.log_text()
    );
    let line = said
        .lines()
        .find(|l| l.contains(&dx.sop_instance_uid))
        .unwrap_or_else(|| panic!("the DX is not named:\n{said}"));
    assert!(line.contains(&dx.study_instance_uid), "{line}");
    assert!(line.contains("a file is in the way"), "{line}");
    // The others are stored, byte-identical, private to the reader's account.
    assert_eq!(received(&out_dir), expected(&ct));
    assert_private(&out_dir.join(&ct[0].study_instance_uid));

    // Obstacle removed: the same command receives the DX (it stayed in the outbox) and exits 0.
    std::fs::remove_file(&obstacle).unwrap();
    let out = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(out.status.success(), "{}", text(&out));
    let mut want = expected(&ct);
    want.extend(expected(std::slice::from_ref(&dx)));
    assert_eq!(received(&out_dir), want);
    assert_private(&out_dir.join(&dx.study_instance_uid));
}

#[test]
fn a_failed_delivery_is_retried_within_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let (ct, dx) = upload_ct_and_dx(tmp.path(), &relay, &pki);

    let out_dir = tmp.path().join("received");
    std::fs::create_dir_all(&out_dir).unwrap();
    let obstacle = out_dir.join(&dx.study_instance_uid);
    std::fs::write(&obstacle, b"not a folder").unwrap();

    // A reader that stays connected (no --once).
    let reader_log = tmp.path().join("reader.log");
    let mut reader = read_cmd(&relay, &pki, "county-radiology", &out_dir, false)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&reader_log).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&reader_log).unwrap_or_default();
    wait_until("the CT at the reader", Duration::from_secs(60), || {
        received(&out_dir).len() == ct.len()
    });
    wait_until("the DX delivery to fail", Duration::from_secs(60), || {
        relay
            .log_text()
            .lines()
            .any(|l| l.contains("delivery failed") && l.contains(&dx.sop_instance_uid))
    });

    // The obstacle goes; the relay's next attempt, in the same session, delivers the DX.
    std::fs::remove_file(&obstacle).unwrap();
    let dx_path = out_dir
        .join(&dx.study_instance_uid)
        .join(format!("{}.dcm", dx.sop_instance_uid));
    wait_until("the DX at the reader", Duration::from_secs(120), || {
        dx_path.exists()
    });
    assert_eq!(yilian_testkit::blake3_file(&dx_path).unwrap(), dx.blake3);
    assert!(
        reader.try_wait().unwrap().is_none(),
        "the reader keeps running"
    );
    let relay_log = relay.log_text();
    assert_eq!(
        relay_log.matches("reader subscribed").count(),
        1,
        "delivered in the first session, without reconnecting:\n{relay_log}"
    );
    wait_until(
        "the reader to log the success",
        Duration::from_secs(30),
        || log().contains("stored after an earlier failure"),
    );
    reader.kill().unwrap();
    let _ = reader.wait();
    assert_private(&out_dir.join(&dx.study_instance_uid));
}

#[test]
fn read_once_names_what_the_relay_could_not_deliver() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let (ct, dx) = upload_ct_and_dx(tmp.path(), &relay, &pki);

    // The relay's stored copy of the DX is gone (a damaged spool, an operator's mistake).
    let object = format!("{}.dcm", hex(&dx.blake3));
    let path = walkdir::WalkDir::new(&relay.data)
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy() == object)
        .expect("the DX is stored")
        .into_path();
    std::fs::remove_file(&path).unwrap();

    // The output folder does not exist yet: yilian creates it, private.
    let out_dir = tmp.path().join("received");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = said
        .lines()
        .find(|l| l.contains(&dx.sop_instance_uid))
        .unwrap_or_else(|| panic!("the DX is not named:\n{said}"));
    assert!(line.contains(&dx.study_instance_uid), "{line}");
    assert!(line.contains("the relay"), "{line}");
    assert_eq!(received(&out_dir), expected(&ct));
    assert_eq!(mode(&out_dir), 0o700);
    assert_private(&out_dir);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
