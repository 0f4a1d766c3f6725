//! Certificate revocation lists: loading (every mistake named with its file), and real
//! handshakes where a revoked client certificate is refused with "revoked" on both sides.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::OffsetDateTime;
use yilian_transport::{
    accept, certificate_serial, client_endpoint, connect, peer_serial,
    server_endpoint_with_reset_key, AcceptError, CertSerial, CrlError, Crls, DevCa, TlsPem, Tuning,
};

fn leaf(tls: &TlsPem) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(tls.cert.as_bytes()).unwrap()
}

fn serial_of(tls: &TlsPem) -> CertSerial {
    certificate_serial(&leaf(tls)).unwrap()
}

/// A CRL by `ca` revoking `serials`, valid for a day from an hour ago.
fn crl_pem(ca: &DevCa, serials: &[CertSerial]) -> String {
    let now = OffsetDateTime::now_utc();
    ca.revocation_list(
        serials,
        1,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    )
    .unwrap()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn load_err(paths: &[PathBuf], tls: &TlsPem) -> (CrlError, String) {
    match Crls::load(paths, tls) {
        Ok(c) => panic!("loaded {c:?}"),
        Err(e) => {
            let msg = e.to_string();
            (e, msg)
        }
    }
}

#[test]
fn pem_and_der_crls_load_and_find_the_certificates_they_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let alliance = ca("test alliance");
    let relay = pem(&alliance, &alliance, &relay_id(), &["127.0.0.1"]);
    let stolen = pem(&alliance, &alliance, &reader_id(), &[]);
    let fine = pem(&alliance, &alliance, &device_id(), &[]);

    let pem_text = crl_pem(&alliance, &[serial_of(&stolen)]);
    let der = CertificateRevocationListDer::from_pem_slice(pem_text.as_bytes()).unwrap();
    for path in [
        write(dir.path(), "a.crl.pem", &pem_text),
        write(dir.path(), "a.crl", der.as_ref()),
    ] {
        let crls = Crls::load(std::slice::from_ref(&path), &relay).unwrap();
        assert!(!crls.is_empty());
        assert_eq!(crls.revoked_count(), 1);
        assert_eq!(crls.revokes(&leaf(&stolen)), Some(path.as_path()));
        assert_eq!(crls.revokes(&leaf(&fine)), None);
        assert!(crls.out_of_date(OffsetDateTime::now_utc()).is_empty());
        let later = OffsetDateTime::now_utc() + time::Duration::days(2);
        assert_eq!(crls.out_of_date(later).len(), 1, "past its next update");
    }
    // No files: nothing to check.
    assert!(Crls::load(&[], &relay).unwrap().is_empty());
}

#[test]
fn every_unusable_crl_file_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let alliance = ca("test alliance");
    let relay = pem(&alliance, &alliance, &relay_id(), &["127.0.0.1"]);
    let serial = serial_of(&pem(&alliance, &alliance, &reader_id(), &[]));

    let missing = dir.path().join("missing.crl");
    let (e, msg) = load_err(std::slice::from_ref(&missing), &relay);
    assert!(matches!(e, CrlError::Read { .. }), "{e:?}");
    assert!(msg.contains("missing.crl"), "{msg}");

    let empty = write(dir.path(), "empty.crl", "");
    let (e, msg) = load_err(&[empty], &relay);
    assert!(matches!(e, CrlError::NoCrl { .. }), "{e:?}");
    assert!(msg.contains("empty.crl") && msg.contains("empty"), "{msg}");

    let cert = write(dir.path(), "cert.pem", &relay.cert);
    let (e, msg) = load_err(&[cert], &relay);
    assert!(matches!(e, CrlError::NoCrl { .. }), "{e:?}");
    assert!(msg.contains("holds a certificate"), "{msg}");

    let garbage = write(dir.path(), "garbage.crl", b"\x30\x03\x02\x01\x05 not a crl");
    let (e, msg) = load_err(&[garbage], &relay);
    assert!(matches!(e, CrlError::Malformed { .. }), "{e:?}");
    assert!(msg.contains("garbage.crl"), "{msg}");

    // From a CA the relay does not trust.
    let other = write(
        dir.path(),
        "other.crl",
        crl_pem(&ca("another alliance"), std::slice::from_ref(&serial)),
    );
    let (e, msg) = load_err(&[other], &relay);
    assert!(matches!(e, CrlError::UnknownIssuer { .. }), "{e:?}");
    assert!(
        msg.contains("other.crl") && msg.contains("another alliance"),
        "{msg}"
    );

    // Same issuer name as the alliance CA, another key: forged (or damaged).
    let forged = write(
        dir.path(),
        "forged.crl",
        crl_pem(&ca("test alliance"), std::slice::from_ref(&serial)),
    );
    let good = write(dir.path(), "good.crl", crl_pem(&alliance, &[serial]));
    let (e, msg) = load_err(&[good, forged], &relay);
    assert!(matches!(e, CrlError::BadSignature { .. }), "{e:?}");
    assert!(msg.contains("forged.crl"), "{msg}");
}

/// A relay endpoint applying `crls` that accepts one connection attempt.
fn serve_once_with(tls: &TlsPem, crls: &Crls) -> (std::net::SocketAddr, Served) {
    let endpoint = server_endpoint_with_reset_key(
        "127.0.0.1:0".parse().unwrap(),
        tls,
        &Tuning::default(),
        None,
        crls,
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let incoming = endpoint.accept().await.expect("endpoint closed");
        let (conn, id) = accept(incoming).await?;
        Ok((id, conn))
    });
    (addr, task)
}

#[tokio::test]
async fn a_revoked_client_certificate_fails_the_handshake_as_revoked_on_both_sides() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let alliance = ca("test alliance");
        let relay = pem(&alliance, &alliance, &relay_id(), &["127.0.0.1"]);
        let stolen = pem(&alliance, &alliance, &reader_id(), &[]);
        let path = write(
            dir.path(),
            "alliance.crl",
            crl_pem(&alliance, &[serial_of(&stolen)]),
        );
        let crls = Crls::load(&[path], &relay).unwrap();

        let (addr, server) = serve_once_with(&relay, &crls);
        let endpoint = client_endpoint(&stolen, &Tuning::default(), false).unwrap();
        let err = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("the relay refused our certificate: it has been revoked"),
            "{msg}"
        );
        assert!(msg.contains("ask the alliance administrator"), "{msg}");
        match server.await.unwrap() {
            Err(e @ AcceptError::Handshake { .. }) => {
                let m = e.to_string();
                assert!(
                    m.contains("refused the client's certificate: it has been revoked"),
                    "{m}"
                );
            }
            Err(e) => panic!("unexpected accept error: {e}"),
            Ok((id, _)) => panic!("a revoked certificate was accepted: {id}"),
        }
    })
    .await;
}

#[tokio::test]
async fn a_certificate_the_crl_does_not_list_connects_and_its_serial_is_known() {
    guarded(async {
        let dir = tempfile::tempdir().unwrap();
        let alliance = ca("test alliance");
        let relay = pem(&alliance, &alliance, &relay_id(), &["127.0.0.1"]);
        let stolen = pem(&alliance, &alliance, &reader_id(), &[]);
        let device = pem(&alliance, &alliance, &device_id(), &[]);
        let path = write(
            dir.path(),
            "alliance.crl",
            crl_pem(&alliance, &[serial_of(&stolen)]),
        );
        let crls = Crls::load(&[path], &relay).unwrap();

        let (addr, server) = serve_once_with(&relay, &crls);
        let endpoint = client_endpoint(&device, &Tuning::default(), false).unwrap();
        let (_conn, _) = connect(&endpoint, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap();
        let (id, conn) = server.await.unwrap().unwrap();
        assert_eq!(id, device_id());
        assert_eq!(peer_serial(&conn).unwrap(), serial_of(&device));
        assert_eq!(crls.revokes_peer(&conn), None);
    })
    .await;
}
