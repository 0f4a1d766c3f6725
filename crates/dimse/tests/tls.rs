//! DICOM TLS: the SCP driver behind `tls::accept` (mutual TLS against a throwaway CA made
//! with rcgen), reached by DCMTK's `storescu +tls` and by our `StoreScu` over `tls::connect`;
//! clients without a certificate or with one from another CA are refused in the handshake.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedKey, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use yilian_dimse::scp::{self, ScpConfig};
use yilian_dimse::scu::{storage_contexts, ScuConfig, StoreScu};
use yilian_dimse::{part10, tcp, tls, DimseError, Status};

/// A CA that can sign leaf certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(ca: &Ca, name: &str, client: bool) -> CertifiedKey<KeyPair> {
    let signing_key = KeyPair::generate().unwrap();
    let sans = if client {
        vec![]
    } else {
        vec!["localhost".to_string(), "127.0.0.1".to_string()]
    };
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&signing_key, &ca.issuer).unwrap();
    CertifiedKey { cert, signing_key }
}

fn key_der(k: &CertifiedKey<KeyPair>) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.signing_key.serialize_der()))
}

/// Write a certificate and key as PEM files; returns (cert, key) paths.
fn write_pem(dir: &Path, name: &str, k: &CertifiedKey<KeyPair>) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, k.cert.pem()).unwrap();
    std::fs::write(&key, k.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// The throwaway PKI of one test, on disk and in memory.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    client: CertifiedKey<KeyPair>,
    stranger: CertifiedKey<KeyPair>,
    server_config: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let alliance = ca("Test alliance CA");
    let other = ca("Some other CA");
    let server = leaf(&alliance, "relay", false);
    let client = leaf(&alliance, "county-hospital-ct", true);
    let stranger = leaf(&other, "county-hospital-ct", true);
    std::fs::write(dir.path().join("ca.pem"), &alliance.pem).unwrap();
    let (server_cert, server_key) = write_pem(dir.path(), "server", &server);
    // The server's configuration goes through the PEM loaders.
    let server_config =
        tls::server_config_from_pem(&dir.path().join("ca.pem"), &server_cert, &server_key)
            .expect("server config");
    Pki {
        dir,
        ca: alliance,
        client,
        stranger,
        server_config,
    }
}

/// What the TLS front door saw: the leaf certificate of each client that got through, and
/// each handshake failure.
#[derive(Default)]
struct Door {
    peers: Mutex<Vec<CertificateDer<'static>>>,
    refused: Mutex<Vec<String>>,
}

/// The test server's handshake timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

async fn tls_scp(config: Arc<rustls::ServerConfig>, door: Arc<Door>) -> TestScp {
    let listener = tcp::Listener::bind("127.0.0.1:0").await.expect("bind");
    TestScp::serve_with(
        ScpConfig::default(),
        Library::default(),
        move |handler, scp_config, seen| async move {
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        continue;
                    };
                    let (handler, scp_config, seen, door, config) = (
                        handler.clone(),
                        scp_config.clone(),
                        seen.clone(),
                        door.clone(),
                        config.clone(),
                    );
                    tokio::spawn(async move {
                        let stream = match tls::accept(stream, config, HANDSHAKE_TIMEOUT).await {
                            Ok(s) => s,
                            Err(e) => {
                                door.refused.lock().unwrap().push(e.to_string());
                                return;
                            }
                        };
                        if let Some(chain) = tls::peer_certificates(&stream) {
                            door.peers.lock().unwrap().push(chain[0].clone());
                        }
                        let result = scp::serve(stream, peer, &*handler, &scp_config).await;
                        seen.summaries
                            .lock()
                            .unwrap()
                            .push(result.map_err(|e: DimseError| e.to_string()));
                    });
                }
            });
            addr
        },
    )
    .await
}

async fn wait_refused(door: &Door, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if door.refused.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    door.refused.lock().unwrap().clone()
}

fn data_set_reader(path: &Path) -> (part10::FileMeta, std::io::Cursor<Vec<u8>>) {
    let meta = part10::read_file_meta(path).unwrap();
    let data = data_set_of(path);
    (meta, std::io::Cursor::new(data))
}

/// Our SCU over TLS: connect, handshake as `127.0.0.1`, associate.
async fn tls_store_scu(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    meta: &part10::FileMeta,
) -> Result<StoreScu<tls::ClientTlsStream<tokio::net::TcpStream>>, String> {
    let tcp = tcp::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = tls::connect(tcp, "127.0.0.1", config, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    StoreScu::connect(
        stream,
        &ScuConfig::new("TLSSCU", "YILIAN"),
        storage_contexts(&[(&meta.sop_class, &meta.transfer_syntax)]),
    )
    .await
    .map_err(|e| e.to_string())
}

fn roots(ca: &Ca) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    roots
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_scu_over_mutual_tls() {
    let pki = pki();
    let door = Arc::new(Door::default());
    let scp = tls_scp(pki.server_config.clone(), door.clone()).await;
    let ct = sample("CT_small.dcm");
    let (meta, data) = data_set_reader(&ct);
    // The client's configuration from PEM files too.
    let (cert, key) = write_pem(pki.dir.path(), "client", &pki.client);
    let config = tls::client_config_from_pem(&pki.dir.path().join("ca.pem"), &cert, &key)
        .expect("client config");
    let mut scu = tls_store_scu(scp.addr, config, &meta)
        .await
        .expect("associated over TLS");
    assert_eq!(scu.echo().await.unwrap(), Status::SUCCESS);
    let result = scu
        .store(
            &meta.sop_class,
            &meta.sop_instance,
            &meta.transfer_syntax,
            data,
        )
        .await
        .expect("stored");
    assert_eq!(result.status, Status::SUCCESS);
    scu.release().await.expect("released");
    let stored = scp.stored();
    assert_eq!(stored.len(), 1);
    assert_same_instance(&stored[0].path, &ct);
    assert_eq!(
        door.peers.lock().unwrap().clone(),
        vec![pki.client.cert.der().clone()],
        "the server sees the client's certificate"
    );
    let s = scp.wait_summaries(1).await;
    assert!(s[0].is_ok(), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_an_alliance_certificate_are_refused_in_the_handshake() {
    let pki = pki();
    let door = Arc::new(Door::default());
    let scp = tls_scp(pki.server_config.clone(), door.clone()).await;
    let (meta, _) = data_set_reader(&sample("CT_small.dcm"));
    // No client certificate.
    let anonymous = tls::client_config(roots(&pki.ca), None).unwrap();
    let err = tls_store_scu(scp.addr, anonymous, &meta)
        .await
        .err()
        .expect("refused without a certificate");
    // A certificate with the right name from another CA.
    let stranger = tls::client_config(
        roots(&pki.ca),
        Some((
            vec![pki.stranger.cert.der().clone()],
            key_der(&pki.stranger),
        )),
    )
    .unwrap();
    let err2 = tls_store_scu(scp.addr, stranger, &meta)
        .await
        .err()
        .expect("refused with another CA's certificate");
    let refused = wait_refused(&door, 2).await;
    assert_eq!(refused.len(), 2, "{refused:?} / client saw: {err} / {err2}");
    assert!(
        refused[0].contains("handshake") && refused[0].to_lowercase().contains("certificate"),
        "{refused:?}"
    );
    assert!(
        refused[1].contains("handshake") && refused[1].contains("UnknownIssuer"),
        "{refused:?}"
    );
    assert!(door.peers.lock().unwrap().is_empty());
    assert!(
        scp.seen.summaries.lock().unwrap().is_empty(),
        "no association began"
    );
    assert!(scp.stored().is_empty());
    // A peer that connects and says nothing is dropped after the handshake timeout.
    let silent = tcp::connect(scp.addr).await.unwrap();
    let refused = wait_refused(&door, 3).await;
    assert!(
        refused.len() == 3 && refused[2].contains("did not finish within"),
        "{refused:?}"
    );
    drop(silent);
    // The server verifies us as well: a client that does not trust the server's CA gives up.
    let other = ca("Yet another CA");
    let distrustful = tls::client_config(
        roots(&other),
        Some((vec![pki.client.cert.der().clone()], key_der(&pki.client))),
    )
    .unwrap();
    let tcp = tcp::connect(scp.addr).await.unwrap();
    let e = tls::connect(tcp, "127.0.0.1", distrustful, Duration::from_secs(5))
        .await
        .expect_err("server not trusted");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcmtk_storescu_over_tls() {
    let storescu = dcmtk("storescu");
    let pki = pki();
    let door = Arc::new(Door::default());
    let scp = tls_scp(pki.server_config.clone(), door.clone()).await;
    let (cert, key) = write_pem(pki.dir.path(), "client", &pki.client);
    let ct = sample("CT_small.dcm");
    let mut c = Command::new(storescu);
    c.env("TCP_NODELAY", "1")
        .arg("+tls")
        .arg(&key)
        .arg(&cert)
        .arg("+cf")
        .arg(pki.dir.path().join("ca.pem"))
        .args(["-aet", "TLSSCU", "-aec", "YILIAN", "127.0.0.1"])
        .arg(scp.addr.port().to_string())
        .arg(&ct);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "storescu +tls failed: {log} / server refused: {:?}",
        door.refused.lock().unwrap()
    );
    let stored = scp.stored();
    assert_eq!(stored.len(), 1, "{log}");
    assert_same_instance(&stored[0].path, &ct);
    assert_eq!(
        door.peers.lock().unwrap().clone(),
        vec![pki.client.cert.der().clone()]
    );
    // Without TLS, storescu cannot talk to the TLS port.
    let mut c = Command::new(dcmtk("storescu"));
    c.env("TCP_NODELAY", "1")
        .args(["-aet", "TLSSCU", "-aec", "YILIAN", "127.0.0.1"])
        .arg(scp.addr.port().to_string())
        .arg(&ct);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(wait_refused(&door, 1).await.len(), 1);
    assert_eq!(scp.stored().len(), 1);
}
