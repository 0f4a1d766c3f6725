//! Interop with pynetdicom 3.0.4 (C-ECHO, C-STORE of compressed and multi-frame files, C-FIND),
//! and associations that die mid-instance.

mod common;

use bytes::Bytes;
use common::*;
use std::process::Command;
use tokio::io::AsyncWriteExt;
use yilian_dimse::scp::{Ended, ScpConfig};
use yilian_dimse::sop_classes::CT_IMAGE_STORAGE;
use yilian_dimse::transfer_syntaxes::EXPLICIT_VR_LITTLE_ENDIAN;
use yilian_dimse::*;

async fn pynetdicom(port: u16, args: &[String]) -> String {
    let mut c = Command::new(python());
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/store.py"))
        .arg(port.to_string())
        .args(args);
    let out = tokio::task::spawn_blocking(move || c.output().expect("python3 runs"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "pynetdicom failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_echo_store_and_find() {
    let scp = TestScp::start(ScpConfig::default()).await;
    let files: Vec<_> = [
        "examples_ybr_color.dcm", // US multi-frame, JPEG baseline (30 frames)
        "SC_rgb_rle.dcm",         // RLE lossless
        "JPEG2000.dcm",           // JPEG 2000
        "waveform_ecg.dcm",       // 12-lead ECG
        "MR_small_bigendian.dcm", // Explicit VR big endian (retired, accepted)
    ]
    .map(sample)
    .to_vec();
    let mut args = vec!["PYNETDICOM".to_string(), "--find".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = pynetdicom(scp.addr.port(), &args).await;
    assert!(out.contains("echo 0x0000"), "{out}");
    assert_eq!(out.matches("store 0x0000").count(), files.len(), "{out}");
    assert!(out.contains("find 2 0x0000"), "{out}");
    let stored = scp.stored();
    for original in &files {
        let meta = part10::read_file_meta(original).unwrap();
        let got = stored
            .iter()
            .find(|s| s.request.sop_instance == meta.sop_instance)
            .expect("stored");
        assert_eq!(got.request.transfer_syntax, meta.transfer_syntax);
        assert_same_instance(&got.path, original);
    }
    let s = scp.wait_summaries(1).await;
    let summary = s[0].as_ref().expect("clean");
    assert_eq!(
        (summary.echoes, summary.finds, summary.ended.clone()),
        (1, 1, Ended::Released)
    );
}

/// A raw client: associate with the sans-IO requestor, send a C-STORE-RQ and half a data set.
async fn half_a_store(addr: std::net::SocketAddr) -> (tokio::net::TcpStream, Association) {
    let mut assoc = Association::request(
        AssociationConfig::default(),
        Request {
            calling_ae: "YILIAN_SCU".into(),
            called_ae: "YILIAN".into(),
            contexts: vec![(
                CT_IMAGE_STORAGE.into(),
                vec![EXPLICIT_VR_LITTLE_ENDIAN.into()],
            )],
            roles: vec![],
        },
    )
    .unwrap();
    let mut stream = tcp::connect(addr).await.unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(b) = assoc.poll_transmit() {
            stream.write_all(&b).await.unwrap();
        }
        if let Some(e) = assoc.poll_event() {
            assert!(matches!(e, Event::Accepted(_)), "{e:?}");
            break;
        }
        use tokio::io::AsyncReadExt;
        let n = stream.read(&mut buf).await.unwrap();
        assoc.handle_input(&buf[..n]);
    }
    assoc
        .send_message(
            1,
            &Message::StoreRq(StoreRq {
                message_id: 1,
                sop_class: CT_IMAGE_STORAGE.into(),
                sop_instance: "1.2.826.0.1.3680043.99.1".into(),
                priority: Priority::Medium,
                move_originator_ae: None,
                move_originator_message_id: None,
            }),
        )
        .unwrap();
    assoc
        .send_data(1, Bytes::from(vec![0u8; 100_000]), false)
        .unwrap();
    while let Some(b) = assoc.poll_transmit() {
        stream.write_all(&b).await.unwrap();
    }
    (stream, assoc)
}

async fn wait_aborted_sinks(scp: &TestScp, n: usize) {
    for _ in 0..200 {
        if scp
            .seen
            .aborted_sinks
            .load(std::sync::atomic::Ordering::SeqCst)
            >= n
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("sink.abort was not called {n} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dying_associations_abort_the_sink_and_the_server_keeps_serving() {
    let scp = TestScp::start(ScpConfig::default()).await;
    // 1. TCP drop mid-instance.
    let (stream, _) = half_a_store(scp.addr).await;
    drop(stream);
    wait_aborted_sinks(&scp, 1).await;
    // 2. A-ABORT mid-instance.
    let (mut stream, mut assoc) = half_a_store(scp.addr).await;
    assoc.abort();
    while let Some(b) = assoc.poll_transmit() {
        stream.write_all(&b).await.unwrap();
    }
    wait_aborted_sinks(&scp, 2).await;
    // 3. A stall mid-instance (short stall timeout for this server).
    let stall = TestScp::start(ScpConfig {
        stall_timeout: std::time::Duration::from_millis(500),
        ..ScpConfig::default()
    })
    .await;
    let (_stream, _) = half_a_store(stall.addr).await;
    wait_aborted_sinks(&stall, 1).await;
    let s = scp.wait_summaries(2).await;
    assert!(s.iter().any(|r| matches!(r, Ok(x) if x.ended == Ended::AbortedByPeer(AbortSource::ServiceUser) && x.stores_aborted == 1)), "{s:?}");
    assert!(
        s.iter()
            .any(|r| matches!(r, Err(e) if e.contains("closed"))),
        "{s:?}"
    );
    let s = stall.wait_summaries(1).await;
    assert!(matches!(&s[0], Err(e) if e.contains("timed out")), "{s:?}");
    // Still serving: a full store from pynetdicom.
    let ct = sample("CT_small.dcm");
    let out = pynetdicom(
        scp.addr.port(),
        &["PYNETDICOM".into(), ct.display().to_string()],
    )
    .await;
    assert!(out.contains("store 0x0000"), "{out}");
    assert!(scp
        .stored()
        .iter()
        .all(|s| !s.request.sop_instance.contains("3680043.99")));
}
