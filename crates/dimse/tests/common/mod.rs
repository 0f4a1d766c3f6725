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
    self, Admitted, AssociationSummary, FindOutcome, FindRequest, GetRequest, GetSession,
    MoveProgress, MoveRequest, NotSent, Outcome, Responder, RetrieveOutcome, ScpConfig, ScpHandler,
    StoreOutcome, StoreRequest, StoreSink, SubOperation,
};
use yilian_dimse::scu::{storage_contexts, ScuConfig, StoreScu};
use yilian_dimse::sop_classes::{STUDY_ROOT_QR_FIND, STUDY_ROOT_QR_GET, STUDY_ROOT_QR_MOVE};
use yilian_dimse::transfer_syntaxes::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
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
    /// Final outcomes the C-GET/C-MOVE handler returned, and each sub-operation result.
    pub retrievals: Mutex<Vec<(String, SubOperation)>>,
}

/// What the test SCP serves to C-GET and C-MOVE (whatever the identifier says), and where
/// C-MOVE destinations are.
#[derive(Default, Clone)]
pub struct Library {
    pub files: Vec<PathBuf>,
    /// Move Destination AE title → address.
    pub destinations: Vec<(String, SocketAddr)>,
    /// Wait this long before each sub-operation (to let a C-CANCEL arrive mid-way).
    pub delay: std::time::Duration,
}

pub struct TestHandler {
    pub dir: PathBuf,
    pub known: Vec<String>,
    pub seen: Arc<Seen>,
    pub policy: Arc<AcceptPolicy>,
    pub library: Library,
    counter: AtomicUsize,
}

/// Open a Part 10 file positioned at its data set: (sop class, sop instance, transfer syntax,
/// reader).
async fn open_instance(path: &Path) -> std::io::Result<(String, String, String, tokio::fs::File)> {
    use tokio::io::AsyncSeekExt;
    let meta = part10::read_file_meta(path)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(meta.data_set_offset))
        .await?;
    Ok((meta.sop_class, meta.sop_instance, meta.transfer_syntax, f))
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
        if request.called_ae != "YILIAN" && request.called_ae != "DEST" {
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

    async fn get<S: GetSession>(&self, request: &GetRequest, session: &mut S) -> RetrieveOutcome {
        assert!(
            !request.identifier.is_empty(),
            "an identifier was handed over"
        );
        session.expect(self.library.files.len());
        for path in &self.library.files {
            tokio::time::sleep(self.library.delay).await;
            let (class, instance, ts, file) = match open_instance(path).await {
                Ok(x) => x,
                Err(e) => {
                    let uid = path.display().to_string();
                    if session
                        .skip(&uid, NotSent::Unreadable(e.to_string()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    continue;
                }
            };
            match session.store(&class, &instance, &ts, file).await {
                Ok(result) => self
                    .seen
                    .retrievals
                    .lock()
                    .unwrap()
                    .push((instance, result)),
                Err(_) => break,
            }
        }
        Outcome::success()
    }

    async fn move_to<P: MoveProgress>(
        &self,
        request: &MoveRequest,
        progress: &mut P,
    ) -> RetrieveOutcome {
        let Some((_, addr)) = self
            .library
            .destinations
            .iter()
            .find(|(ae, _)| *ae == request.destination)
        else {
            return Outcome::with(Status::MOVE_DESTINATION_UNKNOWN, "unknown move destination");
        };
        progress.expect(self.library.files.len());
        let metas: Vec<_> = self
            .library
            .files
            .iter()
            .filter_map(|f| part10::read_file_meta(f).ok())
            .collect();
        let pairs: Vec<(&str, &str)> = metas
            .iter()
            .map(|m| (m.sop_class.as_str(), m.transfer_syntax.as_str()))
            .collect();
        let connected = match tcp::connect(addr).await {
            Ok(stream) => StoreScu::connect(
                stream,
                &ScuConfig::new("YILIAN", &request.destination),
                storage_contexts(&pairs),
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut scu = match connected {
            Ok(scu) => scu,
            Err(e) => {
                for m in &metas {
                    let failed = SubOperation::NotSent(NotSent::Other(e.clone()));
                    if progress.report(&m.sop_instance, failed).await.is_err() {
                        break;
                    }
                }
                return Outcome::success();
            }
        };
        let options = request.store_options();
        for path in &self.library.files {
            tokio::time::sleep(self.library.delay).await;
            let (class, instance, ts, file) = match open_instance(path).await {
                Ok(x) => x,
                Err(e) => {
                    let failed = SubOperation::NotSent(NotSent::Unreadable(e.to_string()));
                    if progress
                        .report(&path.display().to_string(), failed)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    continue;
                }
            };
            let stored = scu.store_with(&class, &instance, &ts, &options, file).await;
            let result = SubOperation::from_store(&stored).unwrap_or_else(|| {
                SubOperation::NotSent(NotSent::Other(format!("{:?}", stored.err())))
            });
            self.seen
                .retrievals
                .lock()
                .unwrap()
                .push((instance.clone(), result.clone()));
            if progress.report(&instance, result).await.is_err() {
                break;
            }
        }
        let _ = scu.release().await;
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
        Self::with_library(config, Library::default()).await
    }

    /// The SCP's policy: storage (requestors may take the SCP role, for C-GET) and the Study
    /// Root Q/R classes.
    pub fn policy() -> AcceptPolicy {
        let uncompressed = [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN];
        AcceptPolicy::default_storage()
            .with(STUDY_ROOT_QR_FIND, &uncompressed)
            .with(STUDY_ROOT_QR_GET, &uncompressed)
            .with(STUDY_ROOT_QR_MOVE, &uncompressed)
    }

    pub async fn with_library(config: ScpConfig, library: Library) -> TestScp {
        let listener = tcp::Listener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve_with(config, library, move |h, config, seen| async move {
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        continue;
                    };
                    let handler = h.clone();
                    let config = config.clone();
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let result = scp::serve(stream, peer, &*handler, &config).await;
                        seen.summaries
                            .lock()
                            .unwrap()
                            .push(result.map_err(|e: DimseError| e.to_string()));
                    });
                }
            });
            addr
        })
        .await
    }

    /// Build the handler and let `listen` run the accept loop (plain TCP, TLS…); it returns
    /// the address.
    pub async fn serve_with<F, Fut>(config: ScpConfig, library: Library, listen: F) -> TestScp
    where
        F: FnOnce(Arc<TestHandler>, Arc<ScpConfig>, Arc<Seen>) -> Fut,
        Fut: std::future::Future<Output = SocketAddr>,
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let seen = Arc::new(Seen::default());
        let handler = Arc::new(TestHandler {
            dir: dir.path().to_path_buf(),
            known: vec![
                "STORESCU".into(),
                "ECHOSCU".into(),
                "PYNETDICOM".into(),
                "YILIAN_SCU".into(),
                "GETSCU".into(),
                "MOVESCU".into(),
                "TLSSCU".into(),
                "YILIAN".into(),
            ],
            seen: seen.clone(),
            policy: Arc::new(Self::policy()),
            library,
            counter: AtomicUsize::new(0),
        });
        let addr = listen(handler, Arc::new(config), seen.clone()).await;
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
