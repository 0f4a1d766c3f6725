//! DIMSE egress: instances routed to a push AE (`[[ae]]` with `push = true`: a county PACS)
//! are delivered to it by C-STORE.
//!
//! Real peers: DCMTK's `storescp` (bit-preserving, every transfer syntax; called as /usr/bin/…
//! with `TCP_NODELAY=1`) and a pynetdicom SCP that refuses chosen instances
//! (`tests/py/store_scp.py`). Instances reach the relay with `yilian send` (QUIC).

mod common;

use common::dimse::{dcmtk, free_tcp_port, wait_listening, KillOnDrop};
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(600);
const PACS: &str = "county-pacs";
const PACS_AE: &str = "COUNTY_PACS";

/// A peer process, killed when dropped.
type PeerProc = KillOnDrop;

/// DCMTK storescp as the county PACS: bit-preserving, unique file names (a duplicate
/// delivery shows as a second file), several associations at once.
fn storescp(port: u16, out: &Path) -> PeerProc {
    storescp_accepting(port, out, "+xa")
}

/// The same, accepting `syntaxes` (`+xa`: all; `+xi`: Implicit VR Little Endian only).
fn storescp_accepting(port: u16, out: &Path, syntaxes: &str) -> PeerProc {
    std::fs::create_dir_all(out).unwrap();
    let child = dcmtk("storescp")
        // --fork: one process per association, as a PACS serves several at once.
        .args([
            "-aet", PACS_AE, "--fork", syntaxes, "-pm", "+B", "+uf", "-od",
        ])
        .arg(out)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    KillOnDrop(child)
}

/// The pynetdicom SCP answering `status` (hex) for `refuse`, success otherwise; every C-STORE
/// it sees is a line in `log`.
fn refusing_scp(port: u16, log: &Path, refuse: &str, status: &str) -> PeerProc {
    let child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/store_scp.py"))
        .args([&port.to_string(), PACS_AE])
        .arg(log)
        .args(["--refuse", &format!("{refuse}={status}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    KillOnDrop(child)
}

/// A relay whose topology is the example plus the push AE `COUNTY_PACS` (reader identity
/// `county-pacs`, county radiology) at 127.0.0.1:`peer_port`, and a rule sending everything
/// from township A to county radiology.
struct Setup {
    relay: RelayProc,
    pki: Pki,
    root: PathBuf,
    _tmp: tempfile::TempDir,
}

fn setup(peer_port: u16) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let mut topology = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/topology.toml"),
    )
    .unwrap();
    topology.push_str(&format!(
        r#"
[[identity]]
name = "{PACS}"
site = "county"
role = "reader"
department = "radiology"

[[ae]]
title = "{PACS_AE}"
identity = "{PACS}"
host = "127.0.0.1"
port = {peer_port}
push = true

[[rule]]
name = "township-a-archive"
from_sites = ["township-a"]
to = ["county/radiology"]
"#
    ));
    let topology_path = root.join("topology.toml");
    std::fs::write(&topology_path, topology).unwrap();
    let tls = tls_section(&pki);
    let relay = RelayProc::start_config(&root.join("relay"), |port, data| {
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\ntopology = {topology_path:?}\n\n{tls}\n[dimse]\nae_title = \"YILIAN\"\negress_associations = 4\n"
        )
    });
    Setup {
        relay,
        pki,
        root,
        _tmp: tmp,
    }
}

fn send(s: &Setup, paths: &[&Path]) {
    let out = run_guarded(
        send_cmd(&s.relay, &s.pki, "township-a-device", paths),
        GUARD,
        "yilian send",
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn db(s: &Setup) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        s.relay.data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// (routed, delivered, failed) outbox entries of the push reader.
fn outbox(s: &Setup) -> (i64, i64, i64) {
    db(s)
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(delivered_at IS NOT NULL), 0),
                    COALESCE(SUM(failed_at IS NOT NULL), 0)
             FROM outbox WHERE reader = ?1",
            [PACS],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap_or((0, 0, 0))
}

fn wait_outbox(s: &Setup, routed: i64, delivered: i64, failed: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = outbox(s);
        if now == (routed, delivered, failed) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox of {PACS}: (routed, delivered, failed) = {now:?}, expected {:?}\n{}",
            (routed, delivered, failed),
            s.relay.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

fn meta(path: &Path) -> yilian_dimse::part10::FileMeta {
    let bytes = std::fs::read(path).unwrap();
    yilian_dimse::part10::parse_file_meta(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The data set of a Part 10 file: the bytes after its file meta information.
fn data_set(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    bytes[meta(path).data_set_offset as usize..].to_vec()
}

/// What storescp wrote, by SOP Instance UID (several files for one UID = duplicates).
fn received(out: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut m: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for f in files_under(out) {
        m.entry(meta(&f).sop_instance).or_default().push(f);
    }
    m
}

fn ct(root: &Path, slices: usize) -> (PathBuf, Vec<yilian_testkit::Generated>) {
    let dir = root.join("ct");
    let g = yilian_testkit::ct_series(
        &dir,
        &yilian_testkit::StudySpec::new("CT", 7),
        slices,
        64,
        64,
        7,
    )
    .unwrap();
    (dir, g)
}

/// CT slices, pydicom's CT (Explicit VR LE), an MR in Implicit VR LE and a multi-frame JPEG
/// ultrasound, sent over QUIC and routed to the PACS, reach storescp with their data sets
/// byte-identical to the originals (and to the relay's stored copies), each once, over
/// several associations; every outbox entry is delivered and audited.
#[test]
fn routed_instances_reach_storescp_byte_identical() {
    let peer_port = free_tcp_port();
    let out = tempfile::tempdir().unwrap();
    let _pacs = storescp(peer_port, out.path());
    let s = setup(peer_port);
    let (ct_dir, ct) = ct(&s.root, 12);
    let others = [
        pydicom_file("CT_small.dcm"),
        pydicom_file("MR_small_implicit.dcm"),
        pydicom_file("examples_ybr_color.dcm"),
    ];
    let mut paths: Vec<&Path> = vec![&ct_dir];
    paths.extend(others.iter().map(|p| p.as_path()));
    send(&s, &paths);
    let n = (ct.len() + others.len()) as i64;
    wait_outbox(&s, n, n, 0);

    let got = received(out.path());
    let originals: Vec<PathBuf> = ct
        .iter()
        .map(|g| g.path.clone())
        .chain(others.iter().cloned())
        .collect();
    assert_eq!(got.len(), originals.len(), "{:?}", got.keys());
    let store_dir = s.relay.data.join("objects");
    let stored: BTreeMap<String, PathBuf> = files_under(&store_dir)
        .into_iter()
        .map(|f| (meta(&f).sop_instance, f))
        .collect();
    for original in &originals {
        let sop = meta(original).sop_instance;
        let files = got
            .get(&sop)
            .unwrap_or_else(|| panic!("{} did not reach the PACS", original.display()));
        assert_eq!(
            files.len(),
            1,
            "{} delivered {} times",
            original.display(),
            files.len()
        );
        let at_pacs = data_set(&files[0]);
        assert!(
            at_pacs == data_set(original),
            "{}: the data set changed on its way",
            original.display()
        );
        assert!(
            at_pacs == data_set(&stored[&sop]),
            "same as the relay's copy"
        );
        assert_eq!(
            meta(&files[0]).transfer_syntax,
            meta(original).transfer_syntax,
            "{}: sent in its stored transfer syntax",
            original.display()
        );
    }
    let ok = audit_rows(&s.relay.data, "deliver")
        .into_iter()
        .filter(|(actor, outcome, _)| actor == PACS && outcome == "ok")
        .count();
    assert_eq!(ok as i64, n, "each delivery is audited");
    let log = s.relay.log_text();
    assert!(log.contains("DIMSE egress started"), "{log}");
}

/// A PACS that accepts only Implicit VR Little Endian (the syntax every DICOM peer must take)
/// gets the instances stored in Explicit VR LE transcoded on the fly: pydicom reads the same
/// elements and pixels from what it received as from the originals. One already in Implicit
/// VR LE goes as is; a JPEG one it did not accept is reported, not retried (never
/// decompressed).
#[test]
fn an_implicit_only_pacs_gets_explicit_instances_transcoded() {
    let peer_port = free_tcp_port();
    let out = tempfile::tempdir().unwrap();
    let _pacs = storescp_accepting(peer_port, out.path(), "+xi");
    let s = setup(peer_port);
    let (ct_dir, ct) = ct(&s.root, 4);
    let explicit = pydicom_file("CT_small.dcm");
    let implicit = pydicom_file("MR_small_implicit.dcm");
    let jpeg = pydicom_file("examples_ybr_color.dcm");
    send(&s, &[&ct_dir, &explicit, &implicit, &jpeg]);
    let n = ct.len() as i64 + 3;
    wait_outbox(&s, n, n - 1, 1);
    let got = received(out.path());
    let originals: Vec<PathBuf> = ct
        .iter()
        .map(|g| g.path.clone())
        .chain([explicit.clone(), implicit.clone()])
        .collect();
    assert_eq!(got.len(), originals.len(), "{:?}", got.keys());
    let mut pairs = Vec::new();
    for original in &originals {
        let sop = meta(original).sop_instance;
        let files = &got[&sop];
        assert_eq!(files.len(), 1, "{} delivered once", original.display());
        assert_eq!(
            meta(&files[0]).transfer_syntax,
            "1.2.840.10008.1.2",
            "{}: Implicit VR Little Endian at the PACS",
            original.display()
        );
        pairs.push(format!("{}|{}", original.display(), files[0].display()));
    }
    assert_eq!(
        data_set(&got[&meta(&implicit).sop_instance][0]),
        data_set(&implicit),
        "an Implicit VR LE instance goes as stored"
    );
    // pydicom: every element of each original, read back with the same value (private ones
    // included: in Implicit VR they are compared as bytes), and the same pixels.
    let check = r#"
import sys, pydicom
for pair in sys.argv[1:]:
    a, b = pair.split('|')
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    ta = [e.tag for e in da if e.tag.element != 0]
    tb = [e.tag for e in db]
    assert ta == tb, (a, set(ta) ^ set(tb))
    for e in da:
        if e.tag.element == 0:
            continue
        f = db[e.tag]
        if e.VR == 'SQ':
            assert len(e.value) == len(f.value), (a, e.tag)
        elif f.VR == e.VR:
            assert e.value == f.value, (a, e.tag, e.VR)
        else:
            assert e.tag.is_private or f.VR == 'UN' or 'or' in str(f.VR), (a, e.tag, e.VR, f.VR)
    assert da.PixelData == db.PixelData, a
print('same', len(sys.argv) - 1)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .args(&pairs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = audit_rows(&s.relay.data, "deliver")
        .into_iter()
        .filter(|(actor, outcome, detail)| {
            actor == PACS
                && outcome == "refused"
                && detail
                    .as_deref()
                    .is_some_and(|d| d.contains("1.2.840.10008.1.2.4.50"))
        })
        .count();
    assert_eq!(failed, 1, "the JPEG one is reported");
}

/// The PACS is down when the instances arrive: the relay retries with backoff, and once
/// storescp listens everything is delivered, each instance once.
#[test]
fn a_peer_that_was_down_gets_everything_once_it_listens() {
    let peer_port = free_tcp_port();
    let s = setup(peer_port);
    let (ct_dir, ct) = ct(&s.root, 6);
    send(&s, &[&ct_dir]);
    let n = ct.len() as i64;
    wait_until(
        "the relay found the peer down",
        Duration::from_secs(30),
        || s.relay.log_text().contains("DIMSE peer unavailable"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(outbox(&s), (n, 0, 0), "nothing delivered, nothing failed");
    let down = audit_rows(&s.relay.data, "deliver");
    assert!(
        down.iter().any(|(actor, outcome, detail)| actor == PACS
            && outcome == "peer-unreachable"
            && detail.as_deref().is_some_and(|d| d.contains(PACS_AE))),
        "{down:?}"
    );
    let out = tempfile::tempdir().unwrap();
    let _pacs = storescp(peer_port, out.path());
    wait_outbox(&s, n, n, 0);
    let got = received(out.path());
    assert_eq!(got.len(), ct.len());
    for g in &ct {
        let files = &got[&g.sop_instance_uid];
        assert_eq!(files.len(), 1, "no duplicates");
        assert!(data_set(&files[0]) == data_set(&g.path));
    }
    let rows = audit_rows(&s.relay.data, "deliver");
    assert!(
        rows.iter()
            .any(|(actor, outcome, _)| actor == PACS && outcome == "peer-reachable"),
        "{rows:?}"
    );
}

/// The PACS refuses one instance for good (0xA900): that instance is recorded (status and
/// reason on its outbox entry, an audit row, a log line naming the AE, the UID and the status)
/// and not tried again; the others are delivered.
#[test]
fn a_permanent_refusal_is_recorded_and_not_retried() {
    let peer_port = free_tcp_port();
    let scp_log = tempfile::NamedTempFile::new().unwrap();
    let s = setup(peer_port);
    let (ct_dir, ct) = ct(&s.root, 6);
    let refused = ct[2].sop_instance_uid.clone();
    let _pacs = refusing_scp(peer_port, scp_log.path(), &refused, "A900");
    send(&s, &[&ct_dir]);
    let n = ct.len() as i64;
    wait_outbox(&s, n, n - 1, 1);
    // Long enough for several retries, were it retried (backoff 1 s, 2 s, 4 s).
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(outbox(&s), (n, n - 1, 1));
    let seen = std::fs::read_to_string(scp_log.path()).unwrap();
    let attempts = seen.lines().filter(|l| l.starts_with(&refused)).count();
    assert_eq!(attempts, 1, "the refused instance was sent once:\n{seen}");
    for g in &ct {
        assert!(
            seen.contains(&g.sop_instance_uid),
            "{} reached the peer",
            g.sop_instance_uid
        );
    }

    let (status, reason): (i64, String) = db(&s)
        .query_row(
            "SELECT o.last_status, o.last_reason FROM outbox o JOIN instances i ON i.id = o.instance_id
             WHERE o.reader = ?1 AND i.sop_uid = ?2 AND o.failed_at IS NOT NULL",
            [PACS, refused.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, 0xA900);
    assert!(
        reason.contains(PACS_AE) && reason.contains("0xA900"),
        "{reason}"
    );
    assert!(
        reason.contains("test SCP refuses this instance"),
        "the peer's comment: {reason}"
    );

    let rows = audit_rows(&s.relay.data, "deliver");
    let refusals: Vec<_> = rows
        .iter()
        .filter(|(actor, outcome, _)| actor == PACS && outcome == "refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{rows:?}");
    assert!(refusals[0].2.as_deref().unwrap().contains("0xA900"));
    let ok = rows
        .iter()
        .filter(|(actor, outcome, _)| actor == PACS && outcome == "ok")
        .count();
    assert_eq!(ok as i64, n - 1);

    let log = s.relay.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("refused an instance for good"))
        .unwrap_or_else(|| panic!("no log line for the refusal:\n{log}"));
    for part in [
        PACS_AE,
        refused.as_str(),
        "0xA900",
        "test SCP refuses this instance",
    ] {
        assert!(line.contains(part), "the log line names {part}: {line}");
    }
}

/// A push reader cannot also subscribe over QUIC (one outbox, one deliverer).
#[test]
fn a_push_reader_cannot_subscribe_over_quic() {
    let s = setup(free_tcp_port());
    s.pki.issue(
        &yilian_transport::PeerIdentity {
            name: PACS.into(),
            site: "county".into(),
            role: yilian_transport::Role::Reader,
            department: Some("radiology".into()),
        },
        PACS,
        false,
    );
    let out = run_guarded(
        read_cmd(&s.relay, &s.pki, PACS, &s.root.join("read"), true),
        Duration::from_secs(60),
        "read as the push reader",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains(PACS_AE), "{}", text(&out));
    let rows = audit_rows(&s.relay.data, "subscribe");
    assert!(
        rows.iter()
            .any(|(actor, outcome, _)| actor == PACS && outcome == "push-ae"),
        "{rows:?}"
    );
}
