//! Urgent first without inversion, with real processes: whatever the mix of urgent and routine
//! uploads in one folder or across processes — urgent larger or smaller, several urgent, an
//! urgent one the relay refuses — every upload finishes and every instance reaches county
//! radiology. (The field report: a stroke head CT and a smaller routine CT in one folder made
//! `send` hang forever, "paused: an urgent study from this site has the link; 0 B
//! acknowledged".) The interleavings themselves are explored by `urgent_first_model.rs`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use yilian_testkit::{ct_series, StudySpec};

/// Guards against a hang: `send` used to never finish.
const GUARD: Duration = Duration::from_secs(180);

/// A head CT (urgent by the example topology's stroke rule) of `n` slices.
fn head_ct(dir: &Path, seed: u64, n: usize, size: u16) -> Vec<yilian_testkit::Generated> {
    let mut spec = StudySpec::new("CT", seed);
    spec.body_part = Some("HEAD".into());
    ct_series(dir, &spec, n, size, size, seed).unwrap()
}

fn chest_ct(dir: &Path, seed: u64, n: usize, size: u16) -> Vec<yilian_testkit::Generated> {
    ct_series(dir, &StudySpec::new("CT", seed), n, size, size, seed).unwrap()
}

fn send_all(relay: &RelayProc, pki: &Pki, identity: &str, dir: &Path, what: &str) {
    let out = run_guarded(send_cmd(relay, pki, identity, &[dir]), GUARD, what);
    assert!(out.status.success(), "{what}: {}", text(&out));
}

/// One folder, one run: a stroke head CT and a smaller routine CT (the field report), then the
/// opposite sizes, then several urgent studies among routine ones.
#[test]
fn urgent_and_routine_studies_in_one_folder_all_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let mut want = Vec::new();

    // 1. Urgent larger than routine (routine goes first in the write order: smallest first).
    let one = tmp.path().join("one");
    want.extend(head_ct(&one.join("head"), 1, 3, 256));
    want.extend(chest_ct(&one.join("chest"), 2, 1, 64));
    send_all(
        &relay,
        &pki,
        "township-a-device",
        &one,
        "head CT + smaller routine CT",
    );

    // 2. Urgent smaller than routine.
    let two = tmp.path().join("two");
    want.extend(head_ct(&two.join("head"), 3, 1, 64));
    want.extend(chest_ct(&two.join("chest"), 4, 6, 256));
    send_all(
        &relay,
        &pki,
        "township-a-device",
        &two,
        "small head CT + larger routine CT",
    );

    // 3. Several urgent studies among routine ones, interleaved in size.
    let three = tmp.path().join("three");
    for (i, seed) in (10..14).enumerate() {
        want.extend(head_ct(
            &three.join(format!("head{i}")),
            seed,
            2,
            64 + 64 * i as u16,
        ));
        want.extend(chest_ct(
            &three.join(format!("chest{i}")),
            seed + 10,
            3,
            96 + 32 * i as u16,
        ));
    }
    send_all(
        &relay,
        &pki,
        "township-a-device",
        &three,
        "several urgent among routine",
    );

    let rad = tmp.path().join("rad");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(received(&rad), expected(&want));
    assert!(
        relay.log_text().contains("routine upload paused"),
        "the routine uploads were held while the urgent ones had the link"
    );
}

/// The same with pydicom's own files: `J2K_pixelrep_mismatch.dcm` is a head CT (urgent),
/// `CT_small.dcm` a routine CT.
#[test]
fn pydicoms_head_ct_and_ct_small_in_one_folder_both_arrive() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let dir = tmp.path().join("folder");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for name in ["J2K_pixelrep_mismatch.dcm", "CT_small.dcm"] {
        let src = pydicom_file(name);
        let dst = dir.join(name);
        std::fs::copy(&src, &dst).unwrap();
        files.push(dst);
    }
    send_all(
        &relay,
        &pki,
        "township-a-device",
        &dir,
        "pydicom head CT + CT_small",
    );
    let rad = tmp.path().join("rad");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success(), "{}", text(&out));
    let got: Vec<[u8; 32]> = received(&rad).into_values().collect();
    for f in &files {
        let h = yilian_testkit::blake3_file(f).unwrap();
        assert!(
            got.contains(&h),
            "{} not received byte-identical",
            f.display()
        );
    }
}

/// Urgent in another process: a routine backlog uploads in one `send`, a head CT in a second
/// `send` of the same township at the same time; and an urgent upload the relay refuses (a
/// truncated head CT) releases the link at once. All finish.
#[test]
fn urgent_in_another_process_and_a_refused_urgent_upload_release_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let backlog = tmp.path().join("backlog");
    let routine = chest_ct(&backlog, 30, 40, 256);
    let urgent_dir = tmp.path().join("urgent");
    let urgent = head_ct(&urgent_dir, 31, 5, 256);
    // A head CT with garbage after its pixel data: the sender's header check passes it (it
    // stops at Pixel Data), the relay's full walk refuses it as malformed, after its header
    // made it urgent.
    let broken_dir = tmp.path().join("broken");
    let broken = head_ct(&broken_dir, 32, 1, 512);
    let cut: PathBuf = broken_dir.join("cut.dcm");
    let mut bytes = std::fs::read(&broken[0].path).unwrap();
    bytes.extend_from_slice(&[0xfe, 0xff, 0x00, 0xe0, 0x10, 0x00, 0x00, 0x00]);
    std::fs::write(&cut, bytes).unwrap();
    std::fs::remove_file(&broken[0].path).unwrap();

    let mut a = send_cmd(&relay, &pki, "township-a-device", &[&backlog]);
    let mut a = a
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    send_all(
        &relay,
        &pki,
        "township-a-device",
        &urgent_dir,
        "urgent in a second process",
    );
    let out = run_guarded(
        send_cmd(&relay, &pki, "township-a-device", &[&broken_dir]),
        GUARD,
        "a refused urgent upload",
    );
    assert!(!out.status.success(), "the broken file is reported");
    assert!(text(&out).contains("cut.dcm"), "{}", text(&out));
    assert!(
        text(&out).contains("malformed"),
        "refused by the relay: {}",
        text(&out)
    );
    let status = wait_for_exit(&mut a, GUARD, "the routine backlog");
    assert!(status.success());

    let rad = tmp.path().join("rad");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success(), "{}", text(&out));
    let mut want = expected(&routine);
    want.extend(expected(&urgent));
    assert_eq!(received(&rad), want);
}
