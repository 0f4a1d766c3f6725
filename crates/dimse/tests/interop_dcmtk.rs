//! Interop with DCMTK 3.6.7 (`/usr/bin/echoscu`, `storescu`, `storescp`).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use yilian_dimse::scp::{Ended, ScpConfig};
use yilian_dimse::scu::{storage_contexts, ScuConfig, StoreScu};
use yilian_dimse::{part10, tcp, DimseError, Status};

fn dcmtk_command(tool: &str) -> Command {
    let mut c = Command::new(dcmtk(tool));
    c.env("TCP_NODELAY", "1");
    c
}

async fn run(mut c: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output().expect("DCMTK runs"))
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_gets_an_answer() {
    let scp = TestScp::start(ScpConfig::default()).await;
    let mut c = dcmtk_command("echoscu");
    c.args(["-aet", "ECHOSCU", "-aec", "YILIAN", "127.0.0.1"])
        .arg(scp.addr.port().to_string());
    let out = run(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = scp.wait_summaries(1).await;
    let summary = s[0].as_ref().expect("clean association");
    assert_eq!(summary.echoes, 1);
    assert_eq!(summary.ended, Ended::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_files_arrive_identical() {
    let scp = TestScp::start(ScpConfig::default()).await;
    // storescu offers uncompressed syntaxes unless told otherwise (-xy: JPEG baseline,
    // proposed alone in its own context); --required: only the contexts the files need.
    let runs: [(&[&str], Vec<std::path::PathBuf>); 2] = [
        (
            &[],
            ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm"]
                .map(sample)
                .to_vec(),
        ),
        (&["-xy"], vec![sample("examples_ybr_color.dcm")]),
    ];
    let mut files = Vec::new();
    for (options, run_files) in &runs {
        let mut c = dcmtk_command("storescu");
        c.arg("--required")
            .args(*options)
            .args(["-aet", "STORESCU", "-aec", "YILIAN", "127.0.0.1"])
            .arg(scp.addr.port().to_string())
            .args(run_files);
        let out = run(c).await;
        assert!(
            out.status.success(),
            "storescu failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        files.extend(run_files.iter().cloned());
    }
    let stored = scp.stored();
    assert_eq!(stored.len(), files.len(), "{stored:?}");
    for original in &files {
        let meta = part10::read_file_meta(original).unwrap();
        let got = stored
            .iter()
            .find(|s| {
                s.request.sop_instance == meta.sop_instance
                    && s.request.transfer_syntax == meta.transfer_syntax
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} not stored as {}",
                    original.display(),
                    meta.transfer_syntax
                )
            });
        assert_eq!(got.request.calling_ae, "STORESCU");
        if meta.transfer_syntax == yilian_dimse::transfer_syntaxes::JPEG_BASELINE {
            // storescu re-encodes the JPEG file's header elements (2 bytes differ, DCMTK's
            // doing: pynetdicom's test shows this file arrives byte for byte): compare what
            // matters, the compressed frames, through pydicom.
            let ok = Command::new(python())
                .args([
                    "-c",
                    "import sys, pydicom; a = pydicom.dcmread(sys.argv[1]); \
                     b = pydicom.dcmread(sys.argv[2]); \
                     assert a.PixelData == b.PixelData and a.SOPInstanceUID == b.SOPInstanceUID",
                ])
                .arg(&got.path)
                .arg(original)
                .status()
                .unwrap();
            assert!(ok.success(), "{}", original.display());
        } else {
            assert_same_instance(&got.path, original);
        }
    }
    let s = scp.wait_summaries(2).await;
    let stored: u32 = s
        .iter()
        .map(|s| s.as_ref().map(|s| s.stored).unwrap_or(0))
        .sum();
    assert_eq!(stored, files.len() as u32, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_calling_ae_is_rejected() {
    let scp = TestScp::start(ScpConfig::default()).await;
    let mut c = dcmtk_command("storescu");
    c.args(["-aet", "STRANGER", "-aec", "YILIAN", "127.0.0.1"])
        .arg(scp.addr.port().to_string())
        .arg(sample("CT_small.dcm"));
    let out = run(c).await;
    let stderr =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "storescu should fail: {stderr}");
    assert!(
        stderr.contains("Association Rejected")
            && stderr.contains("Calling AE Title Not Recognized"),
        "{stderr}"
    );
    assert!(scp.stored().is_empty());
    let s = scp.wait_summaries(1).await;
    assert!(matches!(&s[0], Ok(summary) if matches!(summary.ended, Ended::Rejected(_))));
}

/// Start DCMTK's storescp on a free port, writing into `dir`.
fn start_storescp(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, u16) {
    let port = free_port();
    let child = dcmtk_command("storescp")
        .args(extra)
        .args(["--aetitle", "PACS", "--output-directory"])
        .arg(dir)
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("storescp starts");
    (child, port)
}

async fn connect_retry(port: u16) -> tokio::net::TcpStream {
    for _ in 0..100 {
        if let Ok(s) = tcp::connect(("127.0.0.1", port)).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("storescp did not listen on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scu_to_dcmtk_storescp() {
    let dir = tempfile::tempdir().unwrap();
    // +xa: accept every transfer syntax it supports (the JPEG file stays JPEG); +B: write
    // data sets exactly as received (else storescp re-encodes, e.g. drops trailing padding).
    let (mut child, port) = start_storescp(dir.path(), &["+xa", "+B"]);
    let files = ["CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm"].map(sample);
    let metas: Vec<_> = files
        .iter()
        .map(|f| part10::read_file_meta(f).unwrap())
        .collect();
    let pairs: Vec<(&str, &str)> = metas
        .iter()
        .map(|m| (m.sop_class.as_str(), m.transfer_syntax.as_str()))
        .collect();
    let stream = connect_retry(port).await;
    let mut scu = StoreScu::connect(
        stream,
        &ScuConfig::new("YILIAN_SCU", "PACS"),
        storage_contexts(&pairs),
    )
    .await
    .expect("associated");
    assert_eq!(scu.echo().await.unwrap(), Status::SUCCESS);
    for (file, meta) in files.iter().zip(&metas) {
        let mut f = tokio::fs::File::open(file).await.unwrap();
        use tokio::io::AsyncSeekExt;
        f.seek(std::io::SeekFrom::Start(meta.data_set_offset))
            .await
            .unwrap();
        let result = scu
            .store(
                &meta.sop_class,
                &meta.sop_instance,
                &meta.transfer_syntax,
                f,
            )
            .await
            .expect("stored");
        assert_eq!(result.status, Status::SUCCESS, "{}", file.display());
        assert_eq!(result.transfer_syntax, meta.transfer_syntax);
    }
    scu.release().await.expect("released");
    let _ = child.kill();
    let _ = child.wait();
    let received: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(received.len(), files.len(), "{received:?}");
    for (file, meta) in files.iter().zip(&metas) {
        let got = received
            .iter()
            .find(|p| {
                part10::read_file_meta(p)
                    .map(|m| m.sop_instance == meta.sop_instance)
                    .unwrap_or(false)
            })
            .expect("received");
        let meta_len = part10::read_file_meta(got).unwrap().data_set_offset as usize;
        let got_bytes = std::fs::read(got).unwrap();
        // With +B storescp writes the received data set after its own meta group.
        assert!(
            got_bytes[meta_len..] == data_set_of(file)[..],
            "{} differs from what storescp received",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scu_reports_a_transfer_syntax_the_peer_did_not_accept() {
    let dir = tempfile::tempdir().unwrap();
    // storescp by default accepts uncompressed syntaxes only, Explicit VR LE preferred.
    let (mut child, port) = start_storescp(dir.path(), &[]);
    let mr = part10::read_file_meta(&sample("MR_small_implicit.dcm")).unwrap();
    let ct = part10::read_file_meta(&sample("CT_small.dcm")).unwrap();
    let stream = connect_retry(port).await;
    // MR in Implicit VR LE: proposed with Explicit as alternative; CT in JPEG 2000 alone.
    let contexts = storage_contexts(&[
        (&mr.sop_class, mr.transfer_syntax.as_str()),
        (&ct.sop_class, yilian_dimse::transfer_syntaxes::JPEG_2000),
    ]);
    let mut scu = StoreScu::connect(stream, &ScuConfig::new("YILIAN_SCU", "PACS"), contexts)
        .await
        .expect("associated");
    let err = scu
        .store(
            &mr.sop_class,
            &mr.sop_instance,
            &mr.transfer_syntax,
            &b""[..],
        )
        .await
        .expect_err("storescp chose Explicit VR LE");
    assert!(
        matches!(&err, DimseError::TransferSyntaxNotAccepted { accepted, .. }
            if accepted == &[yilian_dimse::transfer_syntaxes::EXPLICIT_VR_LITTLE_ENDIAN]),
        "{err}"
    );
    let err = scu
        .store(
            &ct.sop_class,
            &ct.sop_instance,
            yilian_dimse::transfer_syntaxes::JPEG_2000,
            &b""[..],
        )
        .await
        .expect_err("no context");
    assert!(matches!(&err, DimseError::NoContext { .. }), "{err}");
    // Nothing was sent: the association is still good.
    assert_eq!(scu.echo().await.unwrap(), Status::SUCCESS);
    scu.release().await.expect("released");
    let _ = child.kill();
    let _ = child.wait();
}
