//! Shared harness for the end-to-end tests: a test PKI, the real `yilian` binary as relay,
//! sender and reader processes on loopback.
#![allow(dead_code)]

pub mod dimse;
pub mod hostile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use yilian_route::Topology;
use yilian_transport::{DevCa, PeerIdentity, Role};

pub fn yilian() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yilian"));
    let log = std::env::var("YILIAN_TEST_LOG").unwrap_or_else(|_| "info,quinn=warn".into());
    c.env("RUST_LOG", log).env("NO_COLOR", "1");
    c
}

/// A test alliance PKI in a folder: ca.pem and NAME.pem/NAME.key for every identity of the
/// example topology, plus the CA itself to issue odd certificates.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: DevCa,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca = DevCa::generate("test alliance").unwrap();
        std::fs::write(dir.join("ca.pem"), ca.ca_pem()).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca,
        };
        for id in Topology::example().identities() {
            let pid = PeerIdentity {
                name: id.name.clone(),
                site: id.site.clone(),
                role: id.role,
                department: id.department.clone(),
            };
            pki.issue(&pid, &pid.name.clone(), false);
        }
        pki
    }

    /// Issue a certificate for `id` into NAME.pem/NAME.key (`expired`: validity in the past).
    pub fn issue(&self, id: &PeerIdentity, file_name: &str, expired: bool) {
        let now = OffsetDateTime::now_utc();
        let (nb, na) = if expired {
            (
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            )
        } else {
            (
                now - time::Duration::hours(1),
                now + time::Duration::days(30),
            )
        };
        let dns: Vec<String> = if id.role == Role::Relay {
            vec!["localhost".into(), "127.0.0.1".into()]
        } else {
            vec![]
        };
        let (cert, key) = self.ca.issue(id, &dns, nb, na).unwrap();
        std::fs::write(self.dir.join(format!("{file_name}.pem")), cert).unwrap();
        std::fs::write(self.dir.join(format!("{file_name}.key")), key).unwrap();
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A relay process (the real binary) with its own data folder and config.
pub struct RelayProc {
    child: Option<Child>,
    pub addr: String,
    pub data: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    starts: u32,
}

impl RelayProc {
    pub fn start(dir: &Path, pki: &Pki) -> RelayProc {
        Self::start_with(dir, pki, "")
    }

    /// `extra`: more TOML (sections) appended to the config.
    pub fn start_with(dir: &Path, pki: &Pki, extra: &str) -> RelayProc {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_udp_port();
        let config = dir.join("relay.toml");
        let data = dir.join("data");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n\n{extra}\n",
                data,
                pki.cert("county-relay"),
                pki.key("county-relay"),
                pki.ca_path()
            ),
        )
        .unwrap();
        let mut r = RelayProc {
            child: None,
            addr: format!("127.0.0.1:{port}"),
            data,
            config,
            log: dir.join("relay.log"),
            starts: 0,
        };
        r.spawn();
        r
    }

    /// A relay with a config file of its own: `config(port, data_dir)` returns the whole TOML.
    /// Clients reach it at 127.0.0.1:port (it may listen on more).
    pub fn start_config(dir: &Path, config: impl FnOnce(u16, &Path) -> String) -> RelayProc {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_udp_port();
        let path = dir.join("relay.toml");
        let data = dir.join("data");
        std::fs::write(&path, config(port, &data)).unwrap();
        let mut r = RelayProc {
            child: None,
            addr: format!("127.0.0.1:{port}"),
            data,
            config: path,
            log: dir.join("relay.log"),
            starts: 0,
        };
        r.spawn();
        r
    }

    /// The relay process's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("relay not running").id()
    }

    /// The relay process's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Send SIGHUP (reload the topology and CRL files).
    pub fn hangup(&self) {
        let pid = self.child.as_ref().expect("relay not running").id();
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill -HUP {pid}");
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = yilian()
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready when the log says so for the `starts`-th time.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.matches("yilian relay ready").count() as u32 >= self.starts {
                return;
            }
            assert!(Instant::now() < deadline, "relay did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush or clean anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `yilian COMMAND` talking to `relay` as `identity`.
pub fn peer_cmd(command: &str, relay: &RelayProc, pki: &Pki, identity: &str) -> Command {
    peer_cmd_at(command, &relay.addr, pki, identity)
}

/// `yilian COMMAND` as `identity` against the relay at `addr` (e.g. through a link emulator).
/// `command` may be a subcommand path (`"ecg stream"`).
pub fn peer_cmd_at(command: &str, addr: &str, pki: &Pki, identity: &str) -> Command {
    let mut c = peer_cmd_default_budget(command, addr, pki, identity);
    c.args(["--give-up-after", "60s"]);
    c
}

/// [`peer_cmd_at`] with the default `--give-up-after` (10 minutes).
pub fn peer_cmd_default_budget(command: &str, addr: &str, pki: &Pki, identity: &str) -> Command {
    let mut c = yilian();
    c.args(command.split(' '))
        .args(["--relay", addr])
        .arg("--cert")
        .arg(pki.cert(identity))
        .arg("--key")
        .arg(pki.key(identity))
        .arg("--ca")
        .arg(pki.ca_path());
    c
}

/// The `[tls]` section of a relay config using `pki`'s county-relay certificate.
pub fn tls_section(pki: &Pki) -> String {
    format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
        pki.cert("county-relay"),
        pki.key("county-relay"),
        pki.ca_path()
    )
}

/// Wait for a process to exit (`timeout` only guards against a hang); kills it and panics
/// with `what` if it does not.
pub fn wait_for_exit(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `yilian send` as `identity`.
pub fn send_cmd(relay: &RelayProc, pki: &Pki, identity: &str, paths: &[&Path]) -> Command {
    let mut c = peer_cmd("send", relay, pki, identity);
    for p in paths {
        c.arg(p);
    }
    c
}

/// `yilian read --once` as `identity` into `out`.
pub fn read_cmd(relay: &RelayProc, pki: &Pki, identity: &str, out: &Path, once: bool) -> Command {
    let mut c = peer_cmd("read", relay, pki, identity);
    c.arg("--out").arg(out);
    if once {
        c.arg("--once");
    }
    c
}

pub fn run(mut c: Command) -> Output {
    let out = c.output().unwrap();
    eprintln!(
        "--- {:?} exit {:?}\nstdout:\n{}\nstderr:\n{}",
        c.get_args().next(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// BLAKE3 of every `*.dcm` under `dir`, keyed by SOP Instance UID (the file stem).
pub fn received(dir: &Path) -> BTreeMap<String, [u8; 32]> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        let p = e.path();
        if p.extension().is_some_and(|x| x == "dcm") {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            m.insert(stem, yilian_testkit::blake3_file(p).unwrap());
        }
    }
    m
}

/// Expected map from generated fixtures.
pub fn expected(g: &[yilian_testkit::Generated]) -> BTreeMap<String, [u8; 32]> {
    g.iter()
        .map(|g| (g.sop_instance_uid.clone(), g.blake3))
        .collect()
}

/// Send the report JSON of a `send --report-json` run.
pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes the relay holds for uploads: stored objects plus partial files.
pub fn relay_bytes(data: &Path) -> u64 {
    walkdir::WalkDir::new(data)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy();
            n.ends_with(".dcm") || n.ends_with(".part")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// An in-process relay on an ephemeral port (for tests that drive the protocol by hand).
pub struct InProcessRelay {
    pub relay: std::sync::Arc<yilian_relay::Relay>,
    pub addr: String,
    pub data: PathBuf,
}

impl InProcessRelay {
    /// Must be called inside a tokio runtime.
    pub fn start(
        dir: &Path,
        pki: &Pki,
        topology: Topology,
        tune: impl FnOnce(&mut yilian_relay::RelayConfig),
    ) -> InProcessRelay {
        let tls = yilian_transport::TlsFiles {
            cert: pki.cert("county-relay"),
            key: pki.key("county-relay"),
            ca: pki.ca_path(),
        }
        .load()
        .unwrap();
        let data = dir.join("data");
        let mut config = yilian_relay::ConfigFile::default()
            .resolve(dir, || tls, || topology)
            .unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data.clone();
        tune(&mut config);
        let relay = std::sync::Arc::new(yilian_relay::Relay::bind(config).unwrap());
        let addr = format!("127.0.0.1:{}", relay.local_addr().unwrap().port());
        let r = relay.clone();
        tokio::spawn(async move { r.run().await });
        InProcessRelay { relay, addr, data }
    }

    pub fn client(&self, pki: &Pki, identity: &str) -> yilian_client::ClientConfig {
        yilian_client::ClientConfig {
            relay: self.addr.clone(),
            tls: yilian_transport::TlsFiles {
                cert: pki.cert(identity),
                key: pki.key(identity),
                ca: pki.ca_path(),
            }
            .load()
            .unwrap(),
            tuning: yilian_transport::Tuning::default(),
            give_up_after: Duration::from_secs(30),
            contact: Default::default(),
        }
    }
}

impl Drop for InProcessRelay {
    fn drop(&mut self) {
        self.relay.close();
    }
}

/// A raw yilian/1 connection as `identity`, for driving transfers by hand.
pub async fn raw_connect(relay: &InProcessRelay, pki: &Pki, identity: &str) -> quinn::Connection {
    let cfg = relay.client(pki, identity);
    let ep = yilian_transport::client_endpoint(&cfg.tls, &cfg.tuning, false).unwrap();
    yilian_transport::connect(&ep, &relay.addr).await.unwrap().0
}

/// One upload by hand: offer, then (if accepted) `bytes[offset..]` in `pause_at`-sized parts
/// with `between` awaited after the first part, then Finish with `hash`. Returns the final
/// event (Stored, Have or Refused).
pub async fn raw_upload(
    conn: &quinn::Connection,
    offer: yilian_proto::Offer,
    bytes: &[u8],
    hash: [u8; 32],
    pause_at: Option<usize>,
    between: impl std::future::Future<Output = ()>,
) -> yilian_proto::SenderEvent {
    use yilian_proto::{Sender, SenderEvent};
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut s = Sender::new(offer);
    let mut between = Some(Box::pin(between));
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(f) = s.poll_transmit() {
            // The relay may already have refused and stopped the stream: its reply says why.
            let _ = send.write_chunk(f).await;
        }
        if let Some(ev) = s.poll_event() {
            match ev {
                SenderEvent::Accepted { offset } => {
                    let mut pos = offset as usize;
                    if let Some(p) = pause_at {
                        let end = p.max(pos).min(bytes.len());
                        send.write_all(&bytes[pos..end]).await.unwrap();
                        s.data_sent((end - pos) as u64).unwrap();
                        pos = end;
                        if let Some(b) = between.take() {
                            b.await;
                        }
                    }
                    // Write errors mean the relay refused mid-stream; its reply says why.
                    if send.write_all(&bytes[pos..]).await.is_ok() {
                        s.data_sent((bytes.len() - pos) as u64).unwrap();
                        s.finish(hash).unwrap();
                    }
                    continue;
                }
                SenderEvent::Checkpoint { .. } => continue,
                other => return other,
            }
        }
        match recv.read(&mut buf).await.unwrap() {
            Some(n) => s
                .handle_input(bytes::Bytes::copy_from_slice(&buf[..n]))
                .unwrap(),
            None => panic!("stream ended without a final reply"),
        }
    }
}

/// Audit entries of `action` in a relay's data folder, read-only while it runs:
/// (actor, outcome, detail), oldest first.
pub fn audit_rows(data: &Path, action: &str) -> Vec<(String, String, Option<String>)> {
    audit_with(data, action, "detail")
}

/// The same, with the SOP Instance UID instead of the detail: (actor, outcome, SOP UID).
pub fn audit_rows_by_sop(data: &Path, action: &str) -> Vec<(String, String, Option<String>)> {
    audit_with(data, action, "sop_uid")
}

fn audit_with(data: &Path, action: &str, third: &str) -> Vec<(String, String, Option<String>)> {
    let db = rusqlite::Connection::open_with_flags(
        data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = db
        .prepare(&format!(
            "SELECT actor, outcome, {third} FROM audit WHERE action = ?1 ORDER BY seq"
        ))
        .unwrap();
    st.query_map([action], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Start `c` and wait for it (`guard` only catches a hang: the process is killed and the test
/// fails saying so).
pub fn run_guarded(mut c: Command, guard: Duration, what: &str) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_pipe = child.stdout.take().unwrap();
    let err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut { out_pipe }, &mut v).ok();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut { err_pipe }, &mut v).ok();
        v
    });
    let status = wait_for_exit(&mut child, guard, what);
    let out = Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    eprintln!(
        "--- {what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The folder of sample files bundled with pydicom (installed by `scripts/test`).
pub fn pydicom_dir() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output()
        .expect("python3 (scripts/test installs pydicom 3.0.2)");
    assert!(
        out.status.success(),
        "pydicom is not installed: run scripts/test"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// One of pydicom's bundled sample files.
pub fn pydicom_file(name: &str) -> PathBuf {
    let p = pydicom_dir().join(name);
    assert!(
        p.exists(),
        "{} is not bundled with this pydicom",
        p.display()
    );
    p
}
