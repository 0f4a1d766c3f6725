//! Shared pieces of the interop tests: a test SCP built on `scp::serve` (sinks write to temp
//! files), tool checks, free ports, pydicom's sample files.
#![allow(dead_code)]

use bytes::Bytes;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use yilian_dimse::scp::{
    self, Admitted, AssociationSummary, FindOutcome, FindRequest, Outcome, Responder, ScpConfig,
    ScpHandler, StoreOutcome, StoreRequest, StoreSink,
};
use yilian_dimse::{part10, tcp, AcceptPolicy, AssociateRequest, DimseError, Reject, Status};

/// A DCMTK tool, or a failing test that says how to get it.
pub fn dcmtk(tool: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: DCMTK is needed by the interop tests; run scripts/test (it installs \
         DCMTK and pynetdicom), or apt-get install dcmtk",
        path.display()
    );
    path
}

/// python3 with pydicom and pynetdicom, or a failing test that says how to get them.
pub fn python() -> &'static str {
    let ok = Command::new("python3")
        .args(["-c", "import pydicom, pynetdicom"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with pydicom and pynetdicom is needed by the interop tests; run scripts/test \
         (it installs them), or pip install pydicom==3.0.2 pynetdicom==3.0.4"
    );
    "python3"
}

/// A path to one of pydicom's bundled sample files.
pub fn sample(name: &str) -> PathBuf {
    let out = Command::new(python())
        .args([
            "-c",
            &format!(
                "from pydicom.data import get_testdata_file as g; p = g({name:?}); print(p or '')"
            ),
        ])
        .output()
        .expect("python3 runs");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "pydicom does not bundle {name}");
    PathBuf::from(path)
}

/// A port free right now on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The data set bytes of a Part 10 file (after its meta group).
pub fn data_set_of(path: &Path) -> Vec<u8> {
    let meta = part10::read_file_meta(path).expect("a Part 10 file");
    std::fs::read(path).expect("readable")[meta.data_set_offset as usize..].to_vec()
}

/// One stored instance.
#[derive(Debug, Clone)]
pub struct Stored {
    pub request: StoreRequest,
    /// Synthesized meta + received data set.
    pub path: PathBuf,
}

/// What the test SCP saw.
#[derive(Default)]
pub struct Seen {
    pub stored: Mutex<Vec<Stored>>,
    pub aborted_sinks: AtomicUsize,
    pub summaries: Mutex<Vec<Result<AssociationSummary, String>>>,
    pub finds: AtomicUsize,
}

pub struct TestHandler {
    pub dir: PathBuf,
    pub known: Vec<String>,
    pub seen: Arc<Seen>,
    pub policy: Arc<AcceptPolicy>,
    counter: AtomicUsize,
}

pub struct FileSink {
    request: StoreRequest,
    file: tokio::fs::File,
    path: PathBuf,
    seen: Arc<Seen>,
}

impl StoreSink for FileSink {
    async fn data(&mut self, bytes: Bytes) -> Result<(), Outcome> {
        self.file
            .write_all(&bytes)
            .await
            .map_err(|e| Outcome::with(Status::OUT_OF_RESOURCES, e.to_string()))
    }

    async fn finish(mut self) -> StoreOutcome {
        if let Err(e) = self.file.flush().await {
            return Outcome::with(Status::OUT_OF_RESOURCES, e.to_string());
        }
        self.seen.stored.lock().unwrap().push(Stored {
            request: self.request,
            path: self.path,
        });
        Outcome::success()
    }

    async fn abort(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
        self.seen.aborted_sinks.fetch_add(1, Ordering::SeqCst);
    }
}

impl ScpHandler for TestHandler {
    type Sink = FileSink;

    async fn admit(
        &self,
        request: &AssociateRequest,
        _peer: SocketAddr,
    ) -> Result<Admitted, Reject> {
        if request.called_ae != "YILIAN" {
            return Err(Reject::called_ae_not_recognized());
        }
        if !self.known.contains(&request.calling_ae) {
            return Err(Reject::calling_ae_not_recognized());
        }
        Ok(Admitted {
            policy: self.policy.clone(),
        })
    }

    async fn begin_store(&self, request: &StoreRequest) -> Result<FileSink, StoreOutcome> {
        if request.sop_instance.contains("REFUSE") {
            return Err(Outcome::with(Status::NOT_AUTHORIZED, "refused by test"));
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("{n}-{}.dcm", request.sop_instance));
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Outcome::with(Status::OUT_OF_RESOURCES, e.to_string()))?;
        let meta = part10::file_meta(
            &request.sop_class,
            &request.sop_instance,
            &request.transfer_syntax,
            Some(&request.calling_ae),
        );
        file.write_all(&meta)
            .await
            .map_err(|e| Outcome::with(Status::OUT_OF_RESOURCES, e.to_string()))?;
        Ok(FileSink {
            request: request.clone(),
            file,
            path,
            seen: self.seen.clone(),
        })
    }

    async fn find<R: Responder>(&self, request: &FindRequest, responder: &mut R) -> FindOutcome {
        self.seen.finds.fetch_add(1, Ordering::SeqCst);
        // Two "matches": the query identifier itself, twice.
        for _ in 0..2 {
            if responder.pending(request.identifier.clone()).await.is_err() {
                return Outcome::from(Status::CANCEL);
            }
        }
        Outcome::success()
    }
}

/// A running test SCP.
pub struct TestScp {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    pub dir: tempfile::TempDir,
}

impl TestScp {
    pub async fn start(config: ScpConfig) -> TestScp {
        let dir = tempfile::tempdir().expect("temp dir");
        let seen = Arc::new(Seen::default());
        let handler = Arc::new(TestHandler {
            dir: dir.path().to_path_buf(),
            known: vec![
                "STORESCU".into(),
                "ECHOSCU".into(),
                "PYNETDICOM".into(),
                "YILIAN_SCU".into(),
            ],
            seen: seen.clone(),
            policy: Arc::new(AcceptPolicy::default_storage().with(
                yilian_dimse::sop_classes::STUDY_ROOT_QR_FIND,
                &[
                    yilian_dimse::transfer_syntaxes::EXPLICIT_VR_LITTLE_ENDIAN,
                    yilian_dimse::transfer_syntaxes::IMPLICIT_VR_LITTLE_ENDIAN,
                ],
            )),
            counter: AtomicUsize::new(0),
        });
        let listener = tcp::Listener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = Arc::new(config);
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let config = config.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let result = scp::serve(stream, peer, &*handler, &config).await;
                    seen.summaries
                        .lock()
                        .unwrap()
                        .push(result.map_err(|e: DimseError| e.to_string()));
                });
            }
        });
        TestScp { addr, seen, dir }
    }

    pub fn stored(&self) -> Vec<Stored> {
        self.seen.stored.lock().unwrap().clone()
    }

    /// Wait until `n` associations have ended.
    pub async fn wait_summaries(&self, n: usize) -> Vec<Result<AssociationSummary, String>> {
        for _ in 0..200 {
            if self.seen.summaries.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        self.seen.summaries.lock().unwrap().clone()
    }
}

/// Check a received instance: pydicom reads it, and its data set equals the original's.
pub fn assert_same_instance(received: &Path, original: &Path) {
    let status = Command::new(python())
        .args([
            "-c",
            "import sys, pydicom; ds = pydicom.dcmread(sys.argv[1]); \
             assert ds.file_meta.TransferSyntaxUID; \
             assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID",
        ])
        .arg(received)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "pydicom could not read {}",
        received.display()
    );
    let got = data_set_of(received);
    let mut want = data_set_of(original);
    // DCMTK's storescu re-encodes what it sends and drops a trailing Data Set Trailing
    // Padding element (FFFC,FFFC); anything else must be identical.
    if got.len() < want.len() && want[got.len()..].starts_with(&[0xFC, 0xFF, 0xFC, 0xFF]) {
        want.truncate(got.len());
    }
    assert!(
        got == want,
        "data set of {} ({} bytes) differs from {} ({} bytes)",
        received.display(),
        got.len(),
        original.display(),
        want.len()
    );
}
