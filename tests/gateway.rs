//! The township gateway (`yilian gateway`): consoles store over DIMSE at the township, the
//! gateway holds each image durably, and forwards everything over QUIC to the county relay
//! when it can. Real processes: the `yilian` binary as relay, gateway and readers, DCMTK's
//! `storescu`/`echoscu` (/usr/bin, Nagle off) as the consoles.

mod common;

use common::dimse::*;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A gateway process with its own data folder and log.
struct GatewayProc {
    child: Option<Child>,
    args: Vec<String>,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    starts: usize,
}

impl GatewayProc {
    fn start(dir: &Path, pki: &Pki, relay: &str, quiet: &str, extra: &[&str]) -> GatewayProc {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_tcp_port();
        let data = dir.join("data");
        let mut args: Vec<String> = vec![
            "gateway".into(),
            "--relay".into(),
            relay.into(),
            "--cert".into(),
            pki.cert("township-a-device").display().to_string(),
            "--key".into(),
            pki.key("township-a-device").display().to_string(),
            "--ca".into(),
            pki.ca_path().display().to_string(),
            "--dimse-listen".into(),
            format!("127.0.0.1:{port}"),
            "--data".into(),
            data.display().to_string(),
            "--quiet-period".into(),
            quiet.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut g = GatewayProc {
            child: None,
            args,
            port,
            data,
            log: dir.join("gateway.log"),
            starts: 0,
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = yilian()
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.log_text();
            if text.matches("yilian gateway ready").count() >= self.starts {
                return;
            }
            assert!(Instant::now() < deadline, "gateway did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data.join("index.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    /// Instances held in the gateway's spool.
    fn held(&self) -> i64 {
        self.db()
            .query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))
            .unwrap()
    }

    /// BLAKE3 of every instance held, by SOP Instance UID.
    fn hashes(&self) -> BTreeMap<String, Vec<u8>> {
        let db = self.db();
        let mut st = db.prepare("SELECT sop_uid, hash FROM instances").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    /// Uploads acknowledged (sealed) but not yet committed: what a kill -9 between the two
    /// leaves in the pool, committed at the next start. A pool file whose instance is already
    /// indexed (killed between the index's commit and the file's removal) is not counted again.
    fn sealed(&self) -> i64 {
        let indexed: std::collections::BTreeSet<Vec<u8>> = self.hashes().into_values().collect();
        std::fs::read_dir(self.data.join("scratch/ready"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
                    .filter(|e| {
                        yilian_testkit::blake3_file(&e.path())
                            .map(|h| !indexed.contains(h.as_slice()))
                            .unwrap_or(true)
                    })
                    .count() as i64
            })
            .unwrap_or(0)
    }

    /// Instances not yet forwarded (nor set aside as refused for good).
    fn waiting(&self) -> i64 {
        self.db()
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `storescu` as `calling` to the gateway's AE title.
fn storescu(port: u16, calling: &str, extra: &[&str], paths: &[&Path]) -> std::process::Output {
    let mut c = dcmtk("storescu");
    c.args(["-aet", calling, "-aec", "YILIAN_GW"])
        .args(extra)
        .arg("127.0.0.1")
        .arg(port.to_string());
    for p in paths {
        c.arg(p);
    }
    run_guarded(c, GUARD, "storescu to the gateway")
}

fn echoscu(port: u16, calling: &str, called: &str) -> std::process::Output {
    let mut c = dcmtk("echoscu");
    c.args([
        "-aet",
        calling,
        "-aec",
        called,
        "127.0.0.1",
        &port.to_string(),
    ]);
    run_guarded(c, GUARD, "echoscu to the gateway")
}

/// What DCMTK's `storescp` receives when `storescu` (with the same options as a console
/// here) sends it `paths`: SOP Instance UID → received file.
fn storescu_reference(
    root: &Path,
    tag: &str,
    extra: &[&str],
    paths: &[&Path],
) -> BTreeMap<String, PathBuf> {
    let out = root.join(format!("storescp-{tag}"));
    std::fs::create_dir_all(&out).unwrap();
    let port = free_tcp_port();
    let mut scp = dcmtk("storescp")
        .args(["+xa", "-pm", "+B", "+uf", "-od"])
        .arg(&out)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("storescp listens", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut c = dcmtk("storescu");
    c.args(["-aet", "REFERENCE", "-aec", "STORESCP"])
        .args(extra)
        .arg("127.0.0.1")
        .arg(port.to_string());
    for p in paths {
        c.arg(p);
    }
    let sent = run_guarded(c, GUARD, "storescu → storescp");
    let _ = scp.kill();
    let _ = scp.wait();
    assert!(sent.status.success(), "{}", text(&sent));
    files_under(&out)
        .into_iter()
        .filter_map(|f| Some((meta_sop(&f)?, f)))
        .collect()
}

/// Studies the relay holds as complete.
fn complete_at_relay(relay: &RelayProc) -> i64 {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        relay.data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    db.query_row(
        "SELECT COUNT(*) FROM manifests WHERE complete_at IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// `read --once` as `reader` into `root/tag-reader`: SOP UID → file.
fn read_as(
    relay: &RelayProc,
    pki: &Pki,
    root: &Path,
    tag: &str,
    reader: &str,
) -> BTreeMap<String, PathBuf> {
    let out_dir = root.join(format!("{tag}-{reader}"));
    let out = run_guarded(
        read_cmd(relay, pki, reader, &out_dir, true),
        GUARD,
        "read --once",
    );
    assert!(out.status.success(), "{reader}: {}", text(&out));
    files_under(&out_dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "dcm"))
        .map(|f| (f.file_stem().unwrap().to_string_lossy().to_string(), f))
        .collect()
}

fn study_complete_marker(root: &Path, tag: &str, reader: &str, study: &str) -> String {
    let marker = root
        .join(format!("{tag}-{reader}"))
        .join(study)
        .join(".study-complete");
    std::fs::read_to_string(&marker)
        .unwrap_or_else(|e| panic!("{}: {e}", marker.display()))
        .trim()
        .to_string()
}

fn ct(root: &Path, seed: u64, n: usize) -> Vec<yilian_testkit::Generated> {
    yilian_testkit::ct_series(
        &root.join(format!("ct-{seed}")),
        &yilian_testkit::StudySpec::new("CT", seed),
        n,
        64,
        64,
        seed,
    )
    .unwrap()
}

/// The scenario: the county relay is down; a DR/CT console sends a CT series and an
/// ultrasound sends a multi-frame cine to the gateway; both succeed (the images are durable at
/// the gateway); the relay comes back; everything reaches the county readers with the data
/// sets exactly as the consoles sent them, and the readers are told the studies are complete.
#[test]
fn while_the_relay_is_down_the_gateway_accepts_and_forwards_everything_when_it_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pki = Pki::new(&root.join("pki"));
    let mut relay = RelayProc::start(&root.join("relay"), &pki);
    relay.kill9();
    let gw = GatewayProc::start(&root.join("gateway"), &pki, &relay.addr, "2s", &[]);

    let ct = ct(root, 11, 12);
    let us = pydicom_file("examples_ybr_color.dcm");
    let out = storescu(gw.port, "TWA_DR1", &["+sd", "-R"], &[&root.join("ct-11")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = storescu(gw.port, "TWA_US1", &["-xy"], &[&us]);
    assert!(out.status.success(), "{}", text(&out));
    // Acknowledged means held: all of it is in the gateway's spool (sealed, then committed a
    // moment later), none of it forwarded.
    assert_eq!(gw.held() + gw.sealed(), 13);
    wait_until("the gateway commits all", Duration::from_secs(30), || {
        gw.held() == 13
    });
    assert_eq!(gw.waiting(), 13);
    // The quiet period passes while the link is down: the manifests wait too.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(gw.waiting(), 13);

    relay.restart();
    wait_until(
        "both studies complete at the relay",
        Duration::from_secs(120),
        || complete_at_relay(&relay) >= 2,
    );
    wait_until(
        "the gateway recorded every instance as forwarded",
        Duration::from_secs(30),
        || gw.waiting() == 0,
    );

    let mut got = read_as(&relay, &pki, root, "after", "county-radiology");
    got.extend(read_as(&relay, &pki, root, "after", "county-ultrasound"));
    let mut reference = storescu_reference(root, "ct", &["+sd", "-R"], &[&root.join("ct-11")]);
    reference.extend(storescu_reference(root, "us", &["-xy"], &[&us]));
    let mut originals: Vec<PathBuf> = ct.iter().map(|g| g.path.clone()).collect();
    originals.push(us.clone());
    assert_eq!(got.len(), 13, "{:?}", got.keys().collect::<Vec<_>>());
    let held = gw.hashes();
    for original in &originals {
        let sop = meta_sop(original).unwrap();
        let received = got
            .get(&sop)
            .unwrap_or_else(|| panic!("{} was not delivered", original.display()));
        assert!(
            data_set(received) == data_set(&reference[&sop]),
            "{}: the data set changed on its way",
            original.display()
        );
        // What the reader got is the very file the gateway acknowledged.
        assert_eq!(
            yilian_testkit::blake3_file(received).unwrap().to_vec(),
            held[&sop],
            "{}",
            original.display()
        );
    }
    assert_eq!(
        study_complete_marker(root, "after", "county-radiology", &ct[0].study_instance_uid),
        "12"
    );
    let us_study = {
        let sop = meta_sop(&us).unwrap();
        got[&sop]
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string()
    };
    assert_eq!(
        study_complete_marker(root, "after", "county-ultrasound", &us_study),
        "1"
    );
    // The relay knows the images came from township A's gateway (its certificate).
    let rows = audit_rows(&relay.data, "receive");
    assert!(
        rows.iter()
            .all(|(actor, outcome, _)| actor == "township-a-device" && outcome == "ok"),
        "{rows:?}"
    );
    // No patient name in the gateway's log.
    assert!(!gw.log_text().contains("^"), "{}", gw.log_text());
}

/// Acknowledged is durable: a gateway killed (SIGKILL) after answering the C-STOREs but
/// before forwarding them forwards everything after its restart, and the study is still
/// completed upstream (its quiet period is re-armed from the spool).
#[test]
fn a_gateway_killed_after_acknowledging_forwards_everything_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pki = Pki::new(&root.join("pki"));
    let mut relay = RelayProc::start(&root.join("relay"), &pki);
    relay.kill9();
    let mut gw = GatewayProc::start(&root.join("gateway"), &pki, &relay.addr, "3s", &[]);
    let ct = ct(root, 12, 8);
    let out = storescu(gw.port, "TWA_DR1", &["+sd", "-R"], &[&root.join("ct-12")]);
    assert!(out.status.success(), "{}", text(&out));
    gw.kill9();
    // Every acknowledged instance is durable: committed, or sealed and committed at start.
    assert_eq!(gw.held() + gw.sealed(), 8);
    assert_eq!(gw.waiting() + gw.sealed(), 8);

    relay.restart();
    gw.spawn();
    wait_until(
        "the study is complete at the relay",
        Duration::from_secs(120),
        || complete_at_relay(&relay) >= 1,
    );
    wait_until("everything forwarded", Duration::from_secs(30), || {
        gw.waiting() == 0
    });
    let got = read_as(&relay, &pki, root, "restart", "county-radiology");
    assert_eq!(got.len(), 8);
    for g in &ct {
        let received = got.get(&g.sop_instance_uid).expect("CT slice delivered");
        assert!(
            data_set(received) == data_set(&g.path),
            "{}",
            g.path.display()
        );
    }
    assert_eq!(
        study_complete_marker(
            root,
            "restart",
            "county-radiology",
            &ct[0].study_instance_uid
        ),
        "8"
    );
}

/// With --calling-ae, other AE titles are rejected (and audited at the gateway), as is a
/// wrong called AE title; SIGTERM stops the gateway cleanly.
#[test]
fn only_listed_calling_aes_may_send_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pki = Pki::new(&root.join("pki"));
    // No relay at all: admission does not depend on the WAN.
    let relay_addr = format!("127.0.0.1:{}", free_udp_port());
    let mut gw = GatewayProc::start(
        &root.join("gateway"),
        &pki,
        &relay_addr,
        "30s",
        &["--calling-ae", "TWA_DR1", "--calling-ae", "TWA_US1"],
    );
    let ok = echoscu(gw.port, "TWA_DR1", "YILIAN_GW");
    assert!(ok.status.success(), "{}", text(&ok));
    let unknown = echoscu(gw.port, "NOBODY", "YILIAN_GW");
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("Calling AE Title Not Recognized"),
        "{}",
        text(&unknown)
    );
    let wrong_called = echoscu(gw.port, "TWA_DR1", "YILIAN");
    assert!(!wrong_called.status.success());
    assert!(
        text(&wrong_called).contains("Called AE Title Not Recognized"),
        "{}",
        text(&wrong_called)
    );
    ct(root, 13, 2);
    let refused = storescu(gw.port, "NOBODY", &["+sd", "-R"], &[&root.join("ct-13")]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert_eq!(gw.held(), 0);
    let stored = storescu(gw.port, "TWA_US1", &["+sd", "-R"], &[&root.join("ct-13")]);
    assert!(stored.status.success(), "{}", text(&stored));
    // Acknowledged means durable: sealed at least, and committed a moment later.
    assert_eq!(gw.held() + gw.sealed(), 2);
    wait_until("the gateway commits both", Duration::from_secs(30), || {
        gw.held() == 2
    });
    let rows = audit_rows(&gw.data, "connect");
    assert!(
        rows.iter()
            .any(|(actor, outcome, _)| actor == "AE NOBODY"
                && outcome == "calling-ae-not-recognized"),
        "{rows:?}"
    );

    let mut child = gw.child.take().unwrap();
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = wait_for_exit(&mut child, Duration::from_secs(60), "gateway after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", gw.log_text());
    assert!(
        gw.log_text().contains("gateway stopped"),
        "{}",
        gw.log_text()
    );
}

/// An image the relay refuses for good (another image from township A already holds its SOP
/// Instance UID) is logged with its UID, audited, set aside and not sent again; the rest of
/// the series goes through. Past `--keep`, the gateway removes what the relay acknowledged and
/// keeps the refused image (its only copy).
#[test]
fn an_image_the_relay_refuses_for_good_is_handled_once_and_kept_the_rest_is_pruned() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pki = Pki::new(&root.join("pki"));
    let relay = RelayProc::start(&root.join("relay"), &pki);
    let series = ct(root, 14, 3);
    // The relay already holds slice 0 (sent directly by township A).
    let direct = root.join("direct");
    std::fs::create_dir_all(&direct).unwrap();
    std::fs::copy(&series[0].path, direct.join("slice0.dcm")).unwrap();
    let out = run_guarded(
        send_cmd(&relay, &pki, "township-a-device", &[&direct]),
        GUARD,
        "send slice 0",
    );
    assert!(out.status.success(), "{}", text(&out));
    // The console sends slice 0 with other pixels under the same UID.
    let mut bytes = std::fs::read(&series[0].path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&series[0].path, bytes).unwrap();

    let gw = GatewayProc::start(
        &root.join("gateway"),
        &pki,
        &relay.addr,
        "2s",
        &["--keep", "3s"],
    );
    let out = storescu(gw.port, "TWA_DR1", &["+sd", "-R"], &[&root.join("ct-14")]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("everything handled", Duration::from_secs(60), || {
        gw.waiting() == 0
    });
    let sop = &series[0].sop_instance_uid;
    let log = gw.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains(sop.as_str()) && l.contains("conflict")),
        "{log}"
    );
    let rows = audit_rows_by_sop(&gw.data, "deliver");
    assert!(
        rows.iter()
            .any(|(_, outcome, s)| outcome == "refused" && s.as_deref() == Some(sop.as_str())),
        "{rows:?}"
    );
    // Not offered again: one refusal, whatever the time.
    std::thread::sleep(Duration::from_secs(3));
    let refusals = audit_rows_by_sop(&gw.data, "deliver")
        .into_iter()
        .filter(|(_, outcome, s)| outcome == "refused" && s.as_deref() == Some(sop.as_str()))
        .count();
    assert_eq!(refusals, 1);
    // Past --keep: the two slices the relay acknowledged are removed (rows, files, audited);
    // the refused one stays.
    wait_until(
        "the forwarded slices are pruned",
        Duration::from_secs(30),
        || gw.held() == 1,
    );
    assert_eq!(gw.hashes().keys().collect::<Vec<_>>(), vec![sop]);
    assert_eq!(files_under(&gw.data.join("objects")).len(), 1);
    let pruned: Vec<_> = audit_rows_by_sop(&gw.data, "prune")
        .into_iter()
        .filter_map(|(_, outcome, s)| (outcome == "ok").then_some(s))
        .flatten()
        .collect();
    assert_eq!(pruned.len(), 2, "{pruned:?}");
    assert!(!pruned.contains(sop));
    // The log line follows the file removals: it may come a moment after the rows.
    wait_until("the prune is logged", Duration::from_secs(10), || {
        gw.log_text()
            .contains("removed images the county relay acknowledged")
    });
    assert_eq!(
        gw.log_text()
            .matches("refused this instance for good")
            .count(),
        1
    );
    let got = read_as(&relay, &pki, root, "refused", "county-radiology");
    assert_eq!(got.len(), 3, "slice 0 as sent directly, and the other two");
    assert_eq!(
        yilian_testkit::blake3_file(&got[sop]).unwrap(),
        series
            .iter()
            .find(|g| &g.sop_instance_uid == sop)
            .unwrap()
            .blake3,
        "the relay kept the first slice 0"
    );
}

/// Every file bundled with pydicom (broken ones included), sent by pynetdicom to the gateway:
/// each one it accepts reaches the county relay's readers with its data set exactly as
/// pynetdicom sent it (DCMTK storescp's copy is the reference); the others are refused with a
/// reason a radiographer can act on; nothing half-written is left at the gateway.
#[test]
fn every_pydicom_file_through_the_gateway_reaches_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let pki = Pki::new(&root.join("pki"));
    let relay = RelayProc::start(&root.join("relay"), &pki);
    let gw = GatewayProc::start(&root.join("gateway"), &pki, &relay.addr, "2s", &[]);
    let files = files_under(&pydicom_dir());
    assert!(files.len() > 60, "pydicom's files: {}", files.len());
    let mut c = std::process::Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dimse_send.py"))
        .args(["127.0.0.1", &gw.port.to_string(), "TWA_DR1", "YILIAN_GW"])
        .args(&files);
    let out = run_guarded(c, GUARD, "pynetdicom to the gateway");
    let accepted = accepted_sends(&out.stdout);
    assert!(accepted.len() >= 25, "{}", text(&out));
    wait_until(
        "the gateway forwarded everything",
        Duration::from_secs(180),
        || gw.waiting() == 0,
    );
    let mut got: BTreeMap<String, PathBuf> = BTreeMap::new();
    for reader in ["county-radiology", "county-ultrasound", "county-cardiology"] {
        got.extend(read_as(&relay, &pki, root, "pydicom", reader));
    }
    let originals: Vec<PathBuf> = accepted.values().cloned().collect();
    let reference = storescp_reference(root, &originals);
    for (sop, original) in &accepted {
        let received = got
            .get(sop)
            .unwrap_or_else(|| panic!("{sop} ({}) did not reach the relay", original.display()));
        assert!(
            data_set(received) == data_set(&reference[sop]),
            "{}: the data set changed on its way",
            original.display()
        );
    }
    assert_eq!(
        got.len(),
        accepted.len(),
        "{:?}",
        got.keys().collect::<Vec<_>>()
    );
    assert_eq!(scratch_with_data_at(&gw.data), Vec::<PathBuf>::new());
}
