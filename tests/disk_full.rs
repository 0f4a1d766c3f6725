//! A full disk, for real: the relay's data folder on a small tmpfs this test mounts (root, as
//! on CI). Filled mid-upload: the upload in progress and new uploads are refused as "relay
//! storage full", deliveries of what is stored continue, nothing acknowledged is lost; once
//! space is freed, ingest resumes by itself and the interrupted upload resumes where its
//! acknowledged bytes end.

mod common;
use common::hostile::*;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use yilian_proto::{RefuseCode, Reply};
use yilian_testkit::{ct_series, large_instance, StudySpec};

const GUARD: Duration = Duration::from_secs(120);

/// A tmpfs of `mib` MiB mounted at `dir` for the life of the value.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, mib: u64) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (as on CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Write zeros to `path` until the disk is full; returns how much was written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) => {
                assert!(yilian_store::io_out_of_space(&e), "{e}");
                break;
            }
        }
    }
    n
}

#[test]
fn a_full_disk_refuses_new_uploads_keeps_delivering_and_resumes_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let disk = SmallDisk::mount(&tmp.path().join("disk"), 48);
    let relay = RelayProc::start_config(&tmp.path().join("relay"), |port, _| {
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n{}\n[limits]\nmin_free_bytes = 4194304\n[spool]\ncheckpoint_bytes = 1048576\n",
            disk.0.join("data"),
            tls_section(&pki)
        )
    });
    let data = disk.0.join("data");

    // 1. A study stored before the disk fills.
    let before = tmp.path().join("before");
    let stored = ct_series(&before, &StudySpec::new("CT", 1), 4, 64, 64, 1).unwrap();
    let out = run(send_cmd_at(&relay.addr, &pki, &[&before]));
    assert!(out.status.success(), "{}", text(&out));

    // 2. A large upload in progress: half of it sent and acknowledged.
    let big_dir = tmp.path().join("big");
    std::fs::create_dir_all(&big_dir).unwrap();
    let big = large_instance(
        &big_dir.join("big.dcm"),
        &StudySpec::new("OT", 2),
        12 << 20,
        2,
    )
    .unwrap();
    let bytes = std::fs::read(&big.path).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (h, mut up, acknowledged) = rt.block_on(async {
        let h = Hostile::connect(&relay.addr, &pki, "township-a-device")
            .await
            .unwrap();
        let mut up = h
            .offer(
                &big.study_instance_uid,
                &big.sop_instance_uid,
                bytes.len() as u64,
                None,
                false,
            )
            .await;
        assert_eq!(accepted(&up.reply().await), Some(0));
        let half = bytes.len() / 2;
        up.write(&bytes[..half]).await;
        // Wait for the checkpoints of what arrived.
        let mut durable = 0;
        while durable + (1 << 20) < half as u64 {
            match up.reply().await {
                Reply::Checkpoint { durable: d } => durable = d,
                other => panic!("{other:?}"),
            }
        }
        (h, up, durable)
    });

    // 3. The disk fills up (another program, a log gone wild).
    let filler = disk.0.join("filler");
    fill(&filler);

    // The upload in progress is refused as storage full (its next write fails).
    let rest_at = bytes.len() / 2;
    let refusal = rt.block_on(async {
        up.write(&bytes[rest_at..rest_at + (2 << 20)]).await;
        loop {
            match up.reply().await {
                Reply::Checkpoint { .. } => continue,
                Reply::Refused(r) => break r,
                other => panic!("{other:?}"),
            }
        }
    });
    assert_eq!(refusal.code, RefuseCode::StorageFull);
    assert!(
        refusal.reason.contains("relay storage full"),
        "{}",
        refusal.reason
    );
    assert!(refusal.reason.contains("nothing acknowledged is lost"));
    drop(up);

    // A new upload is refused with the same words, and `send` says so.
    let during = tmp.path().join("during");
    let later = ct_series(&during, &StudySpec::new("CT", 3), 2, 64, 64, 3).unwrap();
    let mut c = send_cmd_at(&relay.addr, &pki, &[&during]);
    c.args(["--give-up-after", "3s"]);
    let out = run_guarded(c, GUARD, "send while the relay's disk is full");
    assert!(!out.status.success());
    assert!(text(&out).contains("relay storage full"), "{}", text(&out));

    // Deliveries continue: the radiologist receives what was stored before.
    let rad = tmp.path().join("rad1");
    let out = run_guarded(
        read_cmd(&relay, &pki, "county-radiology", &rad, true),
        GUARD,
        "read while the relay's disk is full",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(received(&rad), expected(&stored));
    assert!(relay.log_text().contains("relay storage full"));

    // 4. Space returns: ingest resumes by itself, no restart.
    std::fs::remove_file(&filler).unwrap();
    wait_until("the relay to accept uploads again", GUARD, || {
        relay.log_text().contains("storage available again")
    });
    // The interrupted upload resumes at or after what was acknowledged.
    rt.block_on(async {
        let mut up = h
            .offer(
                &big.study_instance_uid,
                &big.sop_instance_uid,
                bytes.len() as u64,
                None,
                false,
            )
            .await;
        let offset = accepted(&up.reply().await).expect("accepted again");
        assert!(
            offset >= acknowledged,
            "resumes at {offset}, acknowledged {acknowledged}"
        );
        up.send_rest(&bytes, offset).await;
        assert!(matches!(up.verdict().await, Reply::Stored { .. }));
    });
    let out = run_guarded(
        send_cmd_at(&relay.addr, &pki, &[&during]),
        GUARD,
        "send after",
    );
    assert!(out.status.success(), "{}", text(&out));
    let rad = tmp.path().join("rad2");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success(), "{}", text(&out));
    let mut want = expected(&later);
    want.insert(big.sop_instance_uid.clone(), big.blake3);
    assert_eq!(received(&rad), want);
    // The index survived it all.
    assert!(data.join("index.sqlite").exists());
    let mut relay = relay;
    relay.restart();
    let rad = tmp.path().join("rad3");
    let out = run(read_cmd(&relay, &pki, "county-radiology", &rad, true));
    assert!(out.status.success(), "{}", text(&out));
}

fn send_cmd_at(addr: &str, pki: &Pki, paths: &[&Path]) -> Command {
    let mut c = peer_cmd_at("send", addr, pki, "township-a-device");
    for p in paths {
        c.arg(p);
    }
    c
}
