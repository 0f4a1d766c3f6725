//! Certificates the relay must not trust, end to end with real processes: the development
//! certificates on a network address, certificates the alliance CA revoked in a CRL, and
//! certificates on the topology's deny list — including live connections dropped when the
//! administrator revokes them while the relay runs (SIGHUP, or a file change it notices).

mod common;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use yilian_route::Topology;
use yilian_store::{AuditAction, Store};
use yilian_testkit::{ct_series, StudySpec};
use yilian_transport::{certificate_serial, CertSerial, PeerIdentity, Role};

/// Guards against a hang (a process that never becomes ready or never exits), not a timing
/// assertion.
const GUARD: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tiny_study(dir: &Path, seed: u64) -> Vec<yilian_testkit::Generated> {
    std::fs::create_dir_all(dir).unwrap();
    ct_series(dir, &StudySpec::new("CT", seed), 3, 64, 64, seed).unwrap()
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a `yilian serve` run turned out.
enum Served {
    /// It logged "yilian relay ready" (log text so far).
    Ready(Running, String),
    /// It exited first (exit status, everything it wrote).
    Exited(ExitStatus, String),
}

/// `yilian serve ARGS` in `dir` (stderr to `dir/serve.log`), until ready or exited.
fn serve(dir: &Path, args: &[&str]) -> Served {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("serve.log");
    let mut child = Running(
        yilian()
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + GUARD;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(status) = child.0.try_wait().unwrap() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!("--- serve {args:?} exited {status:?}:\n{text}");
            return Served::Exited(status, text);
        }
        if text.contains("yilian relay ready") {
            eprintln!("--- serve {args:?} ready:\n{text}");
            return Served::Ready(child, text);
        }
        assert!(
            Instant::now() < deadline,
            "serve {args:?} neither ready nor exited:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The refusal message of a `serve` that must not start.
fn refused(s: Served) -> String {
    match s {
        Served::Exited(status, text) => {
            assert!(!status.success(), "exit status {status:?}:\n{text}");
            assert!(!text.contains("yilian relay ready"), "{text}");
            text
        }
        Served::Ready(_, text) => panic!("the relay started:\n{text}"),
    }
}

/// The log of a `serve` that must start, and the process (killed when dropped).
fn started(s: Served) -> (Running, String) {
    match s {
        Served::Ready(child, text) => (child, text),
        Served::Exited(status, text) => panic!("the relay exited {status:?}:\n{text}"),
    }
}

#[test]
fn development_certificates_are_refused_on_a_network_address_unless_the_config_allows_them() {
    let tmp = tempfile::tempdir().unwrap();

    // The README's first command, on every address instead of loopback: refused, with what
    // is wrong and both fixes, before anything is created.
    let any = format!("0.0.0.0:{}", free_udp_port());
    let dir = tmp.path().join("cli");
    let msg = refused(serve(&dir, &["--listen", &any, "--data", "data"]));
    for words in [
        "refusing to serve the DEVELOPMENT certificates",
        any.as_str(),
        "no [tls] section",
        "private keys are published",
        "anyone who reaches this address can connect as any identity",
        "cert = ",
        "allow_dev_certs = true",
    ] {
        assert!(msg.contains(words), "{words:?} missing from:\n{msg}");
    }
    assert!(!dir.join("data").exists(), "nothing created");

    // The same from a config file without [tls].
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("relay.toml"),
        format!("listen = \"{any}\"\ndata_dir = \"data\"\n"),
    )
    .unwrap();
    let msg = refused(serve(&dir, &["--config", "relay.toml"]));
    assert!(msg.contains("no [tls] section"), "{msg}");

    // A [tls] section pointing at copies of certs-dev/: the CA certificate is what counts.
    let dir = tmp.path().join("copies");
    std::fs::create_dir_all(dir.join("alliance")).unwrap();
    for f in ["ca.pem", "county-relay.pem", "county-relay.key"] {
        std::fs::copy(
            repo().join("certs-dev").join(f),
            dir.join("alliance").join(f),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("relay.toml"),
        format!(
            "listen = \"{any}\"\ndata_dir = \"data\"\n[tls]\ncert = \"alliance/county-relay.pem\"\nkey = \"alliance/county-relay.key\"\nca = \"alliance/ca.pem\"\n"
        ),
    )
    .unwrap();
    let msg = refused(serve(&dir, &["--config", "relay.toml"]));
    assert!(
        msg.contains("alliance/ca.pem is the development CA"),
        "{msg}"
    );

    // Allowed in words that cannot be missed: it starts, says so loudly, and serves.
    let port = free_udp_port();
    let dir = tmp.path().join("allowed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("relay.toml"),
        format!("allow_dev_certs = true\nlisten = \"0.0.0.0:{port}\"\ndata_dir = \"data\"\n"),
    )
    .unwrap();
    let (relay, log) = started(serve(&dir, &["--config", "relay.toml"]));
    assert!(
        log.contains("DEVELOPMENT CERTIFICATES ON A NETWORK ADDRESS")
            && log.contains("allow_dev_certs = true"),
        "{log}"
    );
    let dev = repo().join("certs-dev");
    let mut read = yilian();
    read.args(["read", "--relay", &format!("127.0.0.1:{port}")])
        .arg("--cert")
        .arg(dev.join("county-radiology.pem"))
        .arg("--key")
        .arg(dev.join("county-radiology.key"))
        .arg("--out")
        .arg(tmp.path().join("received"))
        .args(["--once", "--give-up-after", "30s"]);
    let out = run(read);
    assert!(out.status.success(), "{}", text(&out));
    drop(relay);

    // Loopback needs no configuration at all.
    let loopback = format!("127.0.0.1:{}", free_udp_port());
    let dir = tmp.path().join("loopback");
    let (_relay, log) = started(serve(&dir, &["--listen", &loopback, "--data", "data"]));
    assert!(
        log.contains("using the DEVELOPMENT certificates on loopback"),
        "{log}"
    );
}

#[test]
fn a_crl_file_that_cannot_be_used_stops_the_relay_from_starting_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let dir = tmp.path().join("relay");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("relay.toml"),
        format!(
            "listen = \"127.0.0.1:{}\"\ndata_dir = \"data\"\n{}crl = [\"missing.crl\"]\n",
            free_udp_port(),
            tls_section(&pki)
        ),
    )
    .unwrap();
    let msg = refused(serve(&dir, &["--config", "relay.toml"]));
    assert!(
        msg.contains("[tls] crl") && msg.contains("missing.crl"),
        "{msg}"
    );
}

/// Serial of the certificate in `pki`'s NAME.pem.
fn serial(pki: &Pki, name: &str) -> CertSerial {
    certificate_serial(&CertificateDer::from_pem_file(pki.cert(name)).unwrap()).unwrap()
}

/// Write a CRL of `pki`'s CA revoking the certificates of `names` to `path`.
fn write_crl(pki: &Pki, path: &Path, names: &[&str], number: u64) {
    let serials: Vec<CertSerial> = names.iter().map(|n| serial(pki, n)).collect();
    let now = OffsetDateTime::now_utc();
    let pem = pki
        .ca
        .revocation_list(
            &serials,
            number,
            now - time::Duration::hours(1),
            now + time::Duration::days(7),
        )
        .unwrap();
    std::fs::write(path, pem).unwrap();
}

/// A `yilian read` that keeps running (not `--once`), its output in files.
struct LiveReader {
    child: Running,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl LiveReader {
    fn start(relay: &RelayProc, pki: &Pki, identity: &str, out: &Path, logs: &Path) -> Self {
        std::fs::create_dir_all(logs).unwrap();
        let (stdout, stderr) = (logs.join("stdout"), logs.join("stderr"));
        let child = read_cmd(relay, pki, identity, out, false)
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        LiveReader {
            child: Running(child),
            stdout,
            stderr,
        }
    }

    /// Wait for it to stop by itself; its exit status and output.
    fn wait_end(&mut self) -> (ExitStatus, String) {
        let status = wait_for_exit(&mut self.child.0, GUARD, "the live reader");
        let out = format!(
            "{}{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        );
        eprintln!("--- live reader exit {status:?}:\n{out}");
        (status, out)
    }
}

/// Upload a new tiny study as township-a-device; it must be acknowledged.
fn upload(relay: &RelayProc, pki: &Pki, dir: &Path, seed: u64) -> Vec<yilian_testkit::Generated> {
    let study = tiny_study(dir, seed);
    let out = run(send_cmd(relay, pki, "township-a-device", &[dir]));
    assert!(out.status.success(), "{}", text(&out));
    study
}

#[test]
fn a_certificate_revoked_in_the_crl_is_refused_and_a_new_crl_drops_its_live_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let dir = tmp.path().join("relay");
    std::fs::create_dir_all(&dir).unwrap();
    // The CA revoked county-ultrasound's certificate (relative path: next to the config).
    write_crl(&pki, &dir.join("alliance.crl"), &["county-ultrasound"], 1);
    let relay = RelayProc::start_config(&dir, |port, data| {
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{}crl = [\"alliance.crl\"]\n",
            tls_section(&pki)
        )
    });

    // It never completes a handshake; `read` says why and stops.
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-ultrasound",
        &tmp.path().join("us"),
        true,
    ));
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("the relay refused our certificate: it has been revoked"),
        "{msg}"
    );
    assert!(
        msg.contains("ask the alliance administrator for a new certificate"),
        "{msg}"
    );
    let log = relay.log_text();
    assert!(
        log.contains("refused the client's certificate: it has been revoked"),
        "{log}"
    );

    // A reader connected and receiving …
    let received_dir = tmp.path().join("radiology");
    let mut reader = LiveReader::start(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        &tmp.path().join("reader"),
    );
    let first = upload(&relay, &pki, &tmp.path().join("first"), 51);
    wait_until("the reader to receive the first study", GUARD, || {
        received(&received_dir) == expected(&first)
    });

    // … until the CA revokes it too: the relay notices the new CRL by itself (no signal) and
    // closes the live connection; the reader stops with the reason instead of reconnecting.
    write_crl(
        &pki,
        &dir.join("alliance.crl"),
        &["county-ultrasound", "county-radiology"],
        2,
    );
    let (status, out) = reader.wait_end();
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(
            "certificate of county-radiology was revoked by the alliance administrator: listed in the alliance CA's revocation list; ask for a new certificate"
        ),
        "{out}"
    );
    assert!(!out.contains("reconnecting"), "{out}");
    // The relay logs the reload once it has closed what the new files no longer admit.
    wait_until("the reload in the relay's log", GUARD, || {
        relay.log_text().contains("reloaded (file changed)")
    });

    // New handshakes use the new CRL; other identities keep working.
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        true,
    ));
    assert!(!out.status.success());
    assert!(text(&out).contains("it has been revoked"), "{}", text(&out));
    upload(&relay, &pki, &tmp.path().join("second"), 52);
}

/// A relay with its own copy of the example topology (`dir/topology.toml`).
fn relay_with_topology(dir: &Path, pki: &Pki) -> RelayProc {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("topology.toml"), Topology::example_toml()).unwrap();
    RelayProc::start_config(dir, |port, data| {
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\ntopology = \"topology.toml\"\n{}",
            tls_section(pki)
        )
    })
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_deny_list_entry_and_sighup_drop_a_live_reader_and_a_broken_edit_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let dir = tmp.path().join("relay");
    let relay = relay_with_topology(&dir, &pki);
    let topology = dir.join("topology.toml");

    let received_dir = tmp.path().join("radiology");
    let mut reader = LiveReader::start(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        &tmp.path().join("reader"),
    );
    let first = upload(&relay, &pki, &tmp.path().join("first"), 61);
    wait_until("the reader to receive the first study", GUARD, || {
        received(&received_dir) == expected(&first)
    });

    // The administrator revokes the reader and tells the relay.
    append(
        &topology,
        "\n[[revoked]]\nname = \"county-radiology\"\nreason = \"laptop stolen 2026-12-01\"\n",
    );
    relay.hangup();
    let reason = "certificate of county-radiology was revoked by the alliance administrator: laptop stolen 2026-12-01; ask for a new certificate";
    let (status, out) = reader.wait_end();
    assert!(!status.success(), "{out}");
    assert!(out.contains(reason), "{out}");
    assert!(!out.contains("reconnecting"), "{out}");
    wait_until("the SIGHUP reload in the log", GUARD, || {
        relay.log_text().contains("reloaded (SIGHUP)")
    });

    // A new connection with that certificate is refused with the same reason …
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        true,
    ));
    assert!(!out.status.success());
    assert!(text(&out).contains(reason), "{}", text(&out));
    // … while other identities keep working.
    upload(&relay, &pki, &tmp.path().join("second"), 62);
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-ultrasound",
        &tmp.path().join("us"),
        true,
    ));
    assert!(out.status.success(), "{}", text(&out));

    // A broken edit: the relay says what is wrong with which file, and keeps the previous
    // topology (the revocation stays, routing and admission go on).
    std::fs::write(&topology, "[[revoked]\nname = \"oops\"\n").unwrap();
    relay.hangup();
    wait_until("the failed reload in the log", GUARD, || {
        relay.log_text().contains("reload (SIGHUP) failed")
    });
    let log = relay.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("reload (SIGHUP) failed"))
        .unwrap();
    assert!(
        line.contains("still running with the previous topology")
            && line.contains(&topology.display().to_string()),
        "{line}"
    );
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        true,
    ));
    assert!(text(&out).contains(reason), "{}", text(&out));
    upload(&relay, &pki, &tmp.path().join("third"), 63);

    // Every refusal and the closed connection are in the audit log, with the reason.
    let revoked: Vec<_> = Store::open(&relay.data)
        .unwrap()
        .audit_entries(AuditAction::Connect)
        .unwrap()
        .into_iter()
        .filter(|a| a.outcome == "revoked")
        .collect();
    assert_eq!(revoked.len(), 3, "{revoked:?}");
    for a in &revoked {
        assert_eq!(a.actor, "county-radiology");
        let detail = a.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("laptop stolen 2026-12-01"), "{detail}");
        assert!(detail.contains(&serial(&pki, "county-radiology").to_string()));
    }
}

#[test]
fn a_revoked_serial_seen_by_polling_drops_that_certificate_only() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let dir = tmp.path().join("relay");
    let relay = relay_with_topology(&dir, &pki);

    let received_dir = tmp.path().join("radiology");
    let mut reader = LiveReader::start(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        &tmp.path().join("reader"),
    );
    let first = upload(&relay, &pki, &tmp.path().join("first"), 71);
    wait_until("the reader to receive the first study", GUARD, || {
        received(&received_dir) == expected(&first)
    });

    // The reader's key was lost: the administrator revokes that one certificate by serial,
    // in the form openssl prints it, and sends no signal.
    let lost = serial(&pki, "county-radiology");
    let openssl_form = lost.as_str().to_ascii_uppercase();
    append(
        &dir.join("topology.toml"),
        &format!("\n[[revoked]]\nserial = \"{openssl_form}\"\nreason = \"key lost\"\n"),
    );
    let (status, out) = reader.wait_end();
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(
            "certificate of county-radiology was revoked by the alliance administrator: key lost"
        ),
        "{out}"
    );
    // The relay logs the reload once it has closed what the new files no longer admit.
    wait_until("the reload in the relay's log", GUARD, || {
        relay.log_text().contains("reloaded (file changed)")
    });

    // The same identity with its new certificate receives what was routed to it meanwhile.
    let id = PeerIdentity::new(
        "county-radiology",
        "county",
        Role::Reader,
        Some("radiology"),
    )
    .unwrap();
    pki.issue(&id, "county-radiology", false);
    assert_ne!(serial(&pki, "county-radiology"), lost);
    let second = upload(&relay, &pki, &tmp.path().join("second"), 72);
    let out = run(read_cmd(
        &relay,
        &pki,
        "county-radiology",
        &received_dir,
        true,
    ));
    assert!(out.status.success(), "{}", text(&out));
    let mut all = expected(&first);
    all.extend(expected(&second));
    assert_eq!(received(&received_dir), all);
}

/// HTTPS takes the CRLs a reload brings: a client certificate revoked since the start fails the
/// next handshake (the topology's deny list is checked on every request anyway).
#[test]
fn https_handshakes_use_the_crls_of_the_last_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let dir = tmp.path().join("relay");
    std::fs::create_dir_all(&dir).unwrap();
    write_crl(&pki, &dir.join("alliance.crl"), &[], 1);
    let http = common::dimse::free_tcp_port();
    let relay = RelayProc::start_config(&dir, |port, data| {
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{}crl = [\"alliance.crl\"]\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            tls_section(&pki)
        )
    });
    let get = || {
        let code = r#"
import sys, requests
try:
    r = requests.get(sys.argv[1], cert=(sys.argv[3], sys.argv[4]), verify=sys.argv[2])
    print(r.status_code)
except requests.exceptions.SSLError as e:
    print("tls-refused")
except requests.exceptions.ConnectionError as e:
    print("tls-refused")
"#;
        let mut c = std::process::Command::new("python3");
        c.arg("-c")
            .arg(code)
            .arg(format!("https://127.0.0.1:{http}/dicomweb/studies"))
            .arg(pki.ca_path())
            .arg(pki.cert("county-radiology"))
            .arg(pki.key("county-radiology"));
        let out = run(c);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(get(), "200", "the certificate is good at start");
    write_crl(&pki, &dir.join("alliance.crl"), &["county-radiology"], 2);
    relay.hangup();
    wait_until("the SIGHUP reload in the log", GUARD, || {
        relay.log_text().contains("reloaded (SIGHUP)")
    });
    assert_eq!(get(), "tls-refused", "revoked since: the handshake fails");
}
