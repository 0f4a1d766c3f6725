//! A bare durable STOW-RS receiver: the least an HTTPS server on the relay's own stack must do
//! to answer STOW-RS only once every part is durable. It bounds what the relay's STOW can reach
//! on this machine, measured in the same run (`benches/dicomweb.rs`), the way a bare quinn
//! forwarder bounds live ECG (`benches/ecg_live.rs`) and bare writers bound the disk
//! (`common/disk.rs`).
//!
//! What it does per request, and nothing else: TLS 1.3 (rustls with ring, the development
//! certificate of the relay, as `yilian serve` without `[tls]`), HTTP/1.1 (hyper), the
//! multipart body (multer, as the relay's STOW), each part's file meta read for its SOP
//! Instance UID (the answer must name it), then the part written into a new file and fsync'ed
//! on tokio's blocking pool, at most [`PARTS_IN_FLIGHT`] per request at once (the relay's
//! figure), one fsync of the folder for the request's new names, and the answer. What it
//! leaves out is what the relay adds: authentication, the upload gate, DICOM parsing of the
//! data set, BLAKE3, routing, the catalog and its commit, audit.
//!
//! It runs in its own process (the bench re-executes itself with `--bare-stow-server DIR PORT`)
//! so its CPU is measured like a real server's.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use yilian_web::stow::PARTS_IN_FLIGHT;

/// The flag that makes the bench binary this server.
pub const FLAG: &str = "--bare-stow-server";

/// Serve STOW-RS at `/dicomweb/studies` on 127.0.0.1:`port`, storing into `dir`, until killed.
pub fn serve(dir: PathBuf, port: u16) -> Result<()> {
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        // Already installed: the same provider.
    }
    let tls = Arc::new(server_tls()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let state = Arc::new(State {
            dir,
            next: AtomicU64::new(0),
        });
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(io) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(state.stow(req).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(io), service)
                    .await
                {
                    eprintln!("bare STOW-RS connection: {e}");
                }
            });
        }
    })
}

fn server_tls() -> Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-dev");
    let chain = CertificateDer::pem_file_iter(certs.join("county-relay.pem"))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(certs.join("county-relay.key"))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

struct State {
    dir: PathBuf,
    next: AtomicU64,
}

impl State {
    async fn stow(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        match self.store(req).await {
            Ok(stored) => answer(StatusCode::OK, stored_json(&stored)),
            Err(e) => answer(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        }
    }

    /// Every part durable, or the first failure.
    async fn store(&self, req: Request<hyper::body::Incoming>) -> Result<Vec<String>> {
        let ct = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let boundary = yilian_web::stow::boundary(ct)?;
        let mut body = multer::Multipart::new(req.into_body().into_data_stream(), boundary);
        let mut in_flight = VecDeque::new();
        let mut stored = Vec::new();
        while let Some(mut field) = body.next_field().await? {
            let mut chunks = Vec::new();
            while let Some(c) = field.chunk().await? {
                chunks.push(c);
            }
            let sop = sop_instance(&chunks)?;
            while in_flight.len() >= PARTS_IN_FLIGHT {
                if let Some(t) = in_flight.pop_front() {
                    stored.push(settle(t).await?);
                }
            }
            let path = self
                .dir
                .join(format!("{}.dcm", self.next.fetch_add(1, Ordering::Relaxed)));
            in_flight.push_back(tokio::task::spawn_blocking(move || {
                write_durably(&path, &chunks).with_context(|| format!("{}", path.display()))?;
                Ok(sop)
            }));
        }
        while let Some(t) = in_flight.pop_front() {
            stored.push(settle(t).await?);
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all()).await??;
        Ok(stored)
    }
}

async fn settle(t: tokio::task::JoinHandle<Result<String>>) -> Result<String> {
    t.await?
}

/// The SOP Instance UID from the part's file meta.
fn sop_instance(chunks: &[Bytes]) -> Result<String> {
    let mut head = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        head.extend_from_slice(&c[..c.len().min(64 * 1024)]);
        let whole = i + 1 == chunks.len();
        match yilian_dimse::part10::parse_file_meta_of(&head, whole) {
            Ok(m) => return Ok(m.sop_instance),
            Err(yilian_dimse::part10::Part10Error::Incomplete) if head.len() < 64 * 1024 => {}
            Err(e) => return Err(e).context("a part's file meta"),
        }
    }
    anyhow::bail!("a part ends inside its file meta")
}

/// A new file with `chunks`, fsync'ed.
fn write_durably(path: &Path, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    for c in chunks {
        f.write_all(c)?;
    }
    f.sync_all()
}

/// PS3.18's answer: the Referenced SOP Sequence with each stored SOP Instance UID.
fn stored_json(sops: &[String]) -> String {
    let refs: Vec<serde_json::Value> = sops
        .iter()
        .map(|s| serde_json::json!({ "00081155": { "vr": "UI", "Value": [s] } }))
        .collect();
    serde_json::json!({ "00081199": { "vr": "SQ", "Value": refs } }).to_string()
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/dicom+json"),
    );
    r
}
