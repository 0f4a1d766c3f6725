//! DICOM TLS on the relay's second port: mutual TLS with the alliance certificates, and a
//! certificate may only call as the AE titles of its own identity. DCMTK `storescu +tls` is the
//! peer (Debian's DCMTK is built with OpenSSL).

mod common;

use rustls::pki_types::pem::PemObject;

use common::dimse::*;
use common::*;

fn relay_with_tls() -> (DimseRelay, u16) {
    let tls_port = free_tcp_port();
    let r = relay_with_dimse_config(&format!("tls_listen = \"127.0.0.1:{tls_port}\"\n"));
    (r, tls_port)
}

fn storescu_tls(
    r: &DimseRelay,
    port: u16,
    identity: &str,
    ae: &str,
    file: &std::path::Path,
) -> std::process::Output {
    let mut c = dcmtk("storescu");
    c.arg("+tls")
        .arg(r.pki.key(identity))
        .arg(r.pki.cert(identity))
        .arg("+cf")
        .arg(r.pki.ca_path())
        .args(["-aet", ae, "-aec", "YILIAN"])
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg(file);
    run_guarded(c, GUARD, "storescu +tls")
}

#[test]
fn dicom_tls_admits_a_certificate_only_for_its_own_ae_titles() {
    let (r, tls_port) = relay_with_tls();
    let file = pydicom_file("CT_small.dcm");
    // The township device's certificate, calling as its console's AE: stored.
    let out = storescu_tls(&r, tls_port, "township-a-device", "TWA_DR1", &file);
    assert!(out.status.success(), "{}", text(&out));
    let sop = meta_sop(&file).unwrap();
    assert_eq!(committed_count(&r.relay.data, &sop), 1);
    // Another identity's certificate cannot call as that console.
    let out = storescu_tls(&r, tls_port, "township-b-device", "TWA_DR1", &file);
    assert_rejected_and_audited(&out, &r, "certificate-mismatch", "township-b-device");
    // Plain DICOM to the TLS port does not even associate.
    let mut c = dcmtk("echoscu");
    c.args(["-aet", "TWA_DR1", "-aec", "YILIAN", "127.0.0.1"])
        .arg(tls_port.to_string());
    let out = run_guarded(c, GUARD, "plain echoscu to the TLS port");
    assert!(!out.status.success(), "{}", text(&out));
    // The plain port still works alongside.
    let out = echoscu(&r, "TWA_DR1", "YILIAN");
    assert!(out.status.success(), "{}", text(&out));
}

/// Every file bundled with pydicom (broken ones included), sent by pynetdicom over DICOM TLS
/// with township A's device certificate: what is accepted is stored (one instance per SOP
/// Instance UID), what is refused says why.
#[test]
fn every_pydicom_file_over_dicom_tls() {
    let (r, tls_port) = relay_with_tls();
    let files = files_under(&pydicom_dir());
    let mut c = std::process::Command::new("python3");
    c.arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dimse_send.py"))
        .args(["127.0.0.1", &tls_port.to_string(), "TWA_DR1", "YILIAN"])
        .arg("--tls")
        .arg(r.pki.cert("township-a-device"))
        .arg(r.pki.key("township-a-device"))
        .arg(r.pki.ca_path())
        .args(&files);
    let out = run_guarded(c, GUARD, "pynetdicom over DICOM TLS");
    let accepted = accepted_sends(&out.stdout);
    assert!(accepted.len() >= 25, "{}", text(&out));
    for sop in accepted.keys() {
        assert_eq!(committed_count(&r.relay.data, sop), 1, "{sop}");
    }
    assert_eq!(scratch_with_data(&r), Vec::<std::path::PathBuf>::new());
}

/// A certificate the alliance CA revoked in its CRL (`[tls] crl`) is refused by DICOM TLS in
/// the handshake, as by QUIC — also when the CRL that revokes it arrives while the relay runs
/// (SIGHUP), which also cuts that certificate's live association.
#[test]
fn dicom_tls_refuses_a_certificate_revoked_in_the_crl_also_after_a_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let crl = root.join("alliance.crl");
    let serial_of = |name: &str| {
        yilian_transport::certificate_serial(
            &rustls::pki_types::CertificateDer::from_pem_file(pki.cert(name)).unwrap(),
        )
        .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let crl_revoking = |serials: &[yilian_transport::CertSerial], number: u64| {
        pki.ca
            .revocation_list(
                serials,
                number,
                now - time::Duration::hours(1),
                now + time::Duration::days(7),
            )
            .unwrap()
    };
    let (a, b) = (
        serial_of("township-a-device"),
        serial_of("township-b-device"),
    );
    // At start the CRL revokes township A's device only; the next one township B's as well.
    std::fs::write(&crl, crl_revoking(std::slice::from_ref(&a), 1)).unwrap();
    let next_crl = crl_revoking(&[a, b], 2);
    // Township B's console calls as TWB_DR1.
    let topology = root.join("topology.toml");
    std::fs::write(
        &topology,
        format!(
            "{}\n[[ae]]\ntitle = \"TWB_DR1\"\nidentity = \"township-b-device\"\n",
            yilian_route::Topology::example_toml()
        ),
    )
    .unwrap();
    let (port, tls_port) = (free_tcp_port(), free_tcp_port());
    let relay = RelayProc::start_config(&root.join("relay"), |quic, data| {
        format!(
            "listen = \"127.0.0.1:{quic}\"\ndata_dir = {data:?}\ntopology = {topology:?}\n\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\ncrl = [{crl:?}]\n\n[dimse]\nlisten = \"127.0.0.1:{port}\"\ntls_listen = \"127.0.0.1:{tls_port}\"\n",
            pki.cert("county-relay"),
            pki.key("county-relay"),
            pki.ca_path()
        )
    });
    let r = DimseRelay {
        relay,
        port,
        _tmp: tmp,
        pki,
        root,
    };
    let file = pydicom_file("CT_small.dcm");
    let sop = meta_sop(&file).unwrap();
    let out = storescu_tls(&r, tls_port, "township-a-device", "TWA_DR1", &file);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(stored_count(&r.relay.data, &sop), 0);
    assert!(
        r.relay.log_text().contains("DICOM TLS handshake failed"),
        "refused in the handshake:\n{}",
        r.relay.log_text()
    );
    // Township B's console is not revoked: it stores.
    let out = storescu_tls(&r, tls_port, "township-b-device", "TWB_DR1", &file);
    assert!(out.status.success(), "{}", text(&out));
    // A long series from township B is under way when the CA revokes its device too; the
    // relay reloads (SIGHUP): the live association is cut, nothing more of it is stored, and
    // the next handshake is refused.
    let series_dir = r.root.join("series");
    let series = yilian_testkit::ct_series(
        &series_dir,
        &yilian_testkit::StudySpec::new("CT", 23),
        600,
        512,
        512,
        23,
    )
    .unwrap();
    let mut c = dcmtk("storescu");
    c.arg("+tls")
        .arg(r.pki.key("township-b-device"))
        .arg(r.pki.cert("township-b-device"))
        .arg("+cf")
        .arg(r.pki.ca_path())
        .args(["-aet", "TWB_DR1", "-aec", "YILIAN", "+sd"])
        .arg("127.0.0.1")
        .arg(tls_port.to_string())
        .arg(&series_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut live = KillOnDrop(c.spawn().unwrap());
    wait_until("the series is under way", GUARD, || {
        stored_count(&r.relay.data, &series[0].sop_instance_uid) == 1
    });
    std::fs::write(&crl, next_crl).unwrap();
    r.relay.hangup();
    wait_until("the SIGHUP reload in the log", GUARD, || {
        r.relay.log_text().contains("reloaded (SIGHUP)")
    });
    let status = wait_for_exit(&mut live.0, GUARD, "storescu +tls cut off");
    assert!(!status.success(), "the association was cut");
    let stored = series
        .iter()
        .filter(|g| stored_count(&r.relay.data, &g.sop_instance_uid) == 1)
        .count();
    assert!(stored < series.len(), "all {stored} stored: not cut");
    let log = r.relay.log_text();
    assert!(log.contains("DICOM TLS association cut"), "{log}");
    assert!(
        audit_rows(&r.relay.data, "connect")
            .iter()
            .any(
                |(actor, outcome, _)| actor == "township-b-device (DICOM TLS)"
                    && outcome == "revoked"
            ),
        "audited"
    );
    let failed_before = r
        .relay
        .log_text()
        .matches("DICOM TLS handshake failed")
        .count();
    let other = pydicom_file("MR_small.dcm");
    let out = storescu_tls(&r, tls_port, "township-b-device", "TWB_DR1", &other);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(stored_count(&r.relay.data, &meta_sop(&other).unwrap()), 0);
    assert!(
        r.relay
            .log_text()
            .matches("DICOM TLS handshake failed")
            .count()
            > failed_before,
        "refused in the handshake after the reload:\n{}",
        r.relay.log_text()
    );
}
