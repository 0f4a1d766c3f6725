//! Crashes, end to end with real processes: a sender killed mid-study resumes instead of
//! starting over; a relay killed (SIGKILL) mid-upload loses nothing it acknowledged and the
//! uploads resume when it is back.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use yilian_testkit::{ct_series, large_instance, StudySpec};

#[test]
fn sender_killed_mid_study_resumes_without_resending_much() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let study = tmp.path().join("ct");
    std::fs::create_dir_all(&study).unwrap();
    let ct = ct_series(&study, &StudySpec::new("CT", 11), 300, 512, 512, 11).unwrap();
    let total: u64 = ct.iter().map(|g| g.size).sum();

    // Start the upload and kill the sender once the relay holds ~40% of the study.
    let mut child = send_cmd(&relay, &pki, "township-a-device", &[&study])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("40% at the relay", Duration::from_secs(120), || {
        relay_bytes(&relay.data) * 10 >= total * 4
    });
    child.kill().unwrap();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(300));
    let held = relay_bytes(&relay.data);
    assert!(held < total, "the sender was killed before the end");

    // Re-run the same command: only what the relay does not hold travels again.
    let report_path = tmp.path().join("resume.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&study]);
    c.arg("--report-json").arg(&report_path);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let r = report(&report_path);
    let sent = r["bytes_sent"].as_u64().unwrap();
    let resent = sent.saturating_sub(total - held);
    assert!(
        resent * 5 < total,
        "resent {resent} of {total} bytes (sent {sent}, relay held {held} after the kill)"
    );
    assert!(sent < total - held + total / 5);
    let resumed = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "already-stored")
        .count();
    assert!(
        resumed > 0,
        "instances stored before the kill are not sent again"
    );

    let out_dir = tmp.path().join("radiology");
    let o = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(received(&out_dir), expected(&ct));
}

#[test]
fn relay_killed_mid_upload_loses_nothing_acknowledged_and_uploads_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let mut relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    let files = tmp.path().join("files");
    std::fs::create_dir_all(files.join("ct")).unwrap();
    std::fs::create_dir_all(files.join("big")).unwrap();
    let mut all = ct_series(
        &files.join("ct"),
        &StudySpec::new("CT", 21),
        120,
        512,
        512,
        21,
    )
    .unwrap();
    all.push(
        large_instance(
            &files.join("big/big.dcm"),
            &StudySpec::new("CT", 22),
            160 << 20,
            22,
        )
        .unwrap(),
    );
    let total: u64 = all.iter().map(|g| g.size).sum();

    let report_path = tmp.path().join("send.json");
    let mut c = send_cmd(&relay, &pki, "township-a-device", &[&files]);
    c.arg("--report-json").arg(&report_path);
    let err_path = tmp.path().join("send.err");
    let mut child = c
        .env("RUST_LOG", "info,yilian_client=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    wait_until("35% at the relay", Duration::from_secs(120), || {
        relay_bytes(&relay.data) * 100 >= total * 35
    });
    relay.kill9();

    // What the relay had committed (and so may have acknowledged) is intact on disk.
    let acked: BTreeMap<String, [u8; 32]> = {
        let store = yilian_store::Store::open(&relay.data).unwrap();
        let mut m = BTreeMap::new();
        for study in [
            &all[0].study_instance_uid,
            &all[all.len() - 1].study_instance_uid,
        ] {
            for rec in store.study_instances(study).unwrap() {
                let on_disk = yilian_testkit::blake3_file(&store.object_path(&rec.hash)).unwrap();
                assert_eq!(on_disk, rec.hash, "{} damaged by the kill", rec.sop_uid);
                m.insert(rec.sop_uid, rec.hash);
            }
        }
        m
    };
    assert!(
        !acked.is_empty(),
        "some instances were stored before the kill"
    );
    let want = expected(&all);
    for (sop, h) in &acked {
        assert_eq!(want.get(sop), Some(h));
    }

    // Back up after a moment; the sender, still running, resumes by itself.
    std::thread::sleep(Duration::from_millis(500));
    relay.restart();
    let status = wait_for_exit(
        &mut child,
        Duration::from_secs(180),
        "the sender after the relay restart",
    );
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        status.success(),
        "sender failed after the relay restart:\n{err}"
    );
    let r = report(&report_path);
    let sent = r["bytes_sent"].as_u64().unwrap();
    assert!(
        sent < total + total / 5,
        "the uploads resumed rather than restarted: sent {sent} for {total}"
    );

    let out_dir = tmp.path().join("radiology");
    let o = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(o.status.success(), "{}", text(&o));
    let got = received(&out_dir);
    assert_eq!(got, want, "every instance arrives byte-identical");
    for sop in acked.keys() {
        assert!(got.contains_key(sop));
    }
}

/// "received N instances (12.34 MiB) …" → bytes.
fn received_bytes(stdout: &str) -> f64 {
    let line = stdout.lines().find(|l| l.starts_with("received ")).unwrap();
    let inside = line.split('(').nth(1).unwrap().split(')').next().unwrap();
    let mut it = inside.split_whitespace();
    let n: f64 = it.next().unwrap().parse().unwrap();
    let unit = it.next().unwrap();
    n * match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => panic!("unit {u}"),
    }
}

#[test]
fn a_reader_killed_mid_delivery_resumes_at_its_byte_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let relay = RelayProc::start(&tmp.path().join("relay"), &pki);
    std::fs::create_dir_all(tmp.path().join("big")).unwrap();
    let g = large_instance(
        &tmp.path().join("big/big.dcm"),
        &StudySpec::new("CT", 31),
        192 << 20,
        31,
    )
    .unwrap();
    let out = run(send_cmd(
        &relay,
        &pki,
        "township-a-device",
        &[&tmp.path().join("big")],
    ));
    assert!(out.status.success(), "{}", text(&out));

    // The reader starts receiving; kill it once its partial copy holds ~40%.
    let out_dir = tmp.path().join("radiology");
    let part = out_dir
        .join(&g.study_instance_uid)
        .join(format!(".{}.dcm.part", g.sop_instance_uid));
    let mut child = read_cmd(&relay, &pki, "county-radiology", &out_dir, true)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("40% at the reader", Duration::from_secs(120), || {
        std::fs::metadata(&part)
            .map(|m| m.len() * 10 >= g.size * 4)
            .unwrap_or(false)
    });
    child.kill().unwrap();
    let _ = child.wait();
    let had = std::fs::metadata(&part).unwrap().len();
    assert!(had < g.size);

    // Run it again: only the rest travels, and the result is byte-identical.
    let o = run(read_cmd(&relay, &pki, "county-radiology", &out_dir, true));
    assert!(o.status.success(), "{}", text(&o));
    let got = received_bytes(&String::from_utf8_lossy(&o.stdout));
    let rest = (g.size - had) as f64;
    assert!(
        got < rest + g.size as f64 * 0.05,
        "the second run received {got} bytes; only {rest} were missing"
    );
    assert_eq!(received(&out_dir), expected(&[g]));
}
