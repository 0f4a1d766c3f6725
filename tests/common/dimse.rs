//! DIMSE test support: a relay with `[dimse]` on, DCMTK tools (`/usr/bin/...`, Nagle off),
//! pynetdicom through `tests/py/dimse_send.py`, a DCMTK `storescp` as the reference receiver,
//! and Part 10 helpers.

use super::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const GUARD: Duration = Duration::from_secs(600);

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A DCMTK tool; fails (never skips) when DCMTK is missing.
pub fn dcmtk(tool: &str) -> Command {
    let path = PathBuf::from("/usr/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test (it installs Debian's dcmtk)",
        path.display()
    );
    let mut c = Command::new(path);
    // DCMTK leaves Nagle on unless told: the peer, not yilian, would be measured.
    c.env("TCP_NODELAY", "1");
    c
}

pub struct DimseRelay {
    pub relay: RelayProc,
    pub port: u16,
    pub _tmp: tempfile::TempDir,
    pub pki: Pki,
    pub root: PathBuf,
}

pub fn relay_with_dimse(quiet: &str) -> DimseRelay {
    relay_with_dimse_config(&format!("quiet_period = \"{quiet}\"\n"))
}

/// A relay with `[dimse] listen` on a free port and `more` lines in its `[dimse]` section.
pub fn relay_with_dimse_config(more: &str) -> DimseRelay {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let port = free_tcp_port();
    let relay = RelayProc::start_with(
        &root.join("relay"),
        &pki,
        &format!("[dimse]\nlisten = \"127.0.0.1:{port}\"\n{more}"),
    );
    DimseRelay {
        relay,
        port,
        _tmp: tmp,
        pki,
        root,
    }
}

/// Send with pynetdicom: one JSON object per file.
pub fn py_send(
    r: &DimseRelay,
    calling: &str,
    files: &[PathBuf],
    extra: &[&str],
) -> Vec<serde_json::Value> {
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dimse_send.py"))
        .args(["127.0.0.1", &r.port.to_string(), calling, "YILIAN"])
        .args(extra)
        .args(files);
    let out = run_guarded(c, GUARD, "pynetdicom send");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// What `tests/py/dimse_send.py` printed: the first file sent under each SOP Instance UID the
/// SCP accepted (status 0). A refusal must be a duplicate (0x0111) or "cannot understand"
/// (0xC000) with a reason; a file pydicom cannot read is never sent; anything else fails.
pub fn accepted_sends(stdout: &[u8]) -> BTreeMap<String, PathBuf> {
    let mut accepted = BTreeMap::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v.get("echo").is_some() {
            continue;
        }
        let path = PathBuf::from(v["path"].as_str().unwrap_or_default());
        match v["status"].as_i64() {
            None => {}
            Some(0) => {
                let sop = v["sop"].as_str().expect("the UID sent").to_string();
                accepted.entry(sop).or_insert(path);
            }
            Some(0x0111) | Some(0xC000) => assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "a refusal says why: {v}"
            ),
            Some(s) => panic!("{}: unexpected status {s:#06x}: {v}", path.display()),
        }
    }
    accepted
}

/// Every file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// How many instances with this SOP Instance UID the relay's index holds (read-only, while it
/// runs).
pub fn stored_count(data: &Path, sop: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM instances WHERE sop_uid = ?1",
        [sop],
        |row| row.get(0),
    )
    .unwrap_or(0)
}

/// How many instances with this SOP Instance UID the relay's index holds, once it holds one
/// (or after 30 s). A C-STORE is acknowledged when its instance is sealed (durable) and
/// committed to the index a moment later.
pub fn committed_count(data: &Path, sop: &str) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = stored_count(data, sop);
        if n > 0 || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// How many studies the relay holds as complete.
pub fn complete_studies(data: &Path) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM manifests WHERE complete_at IS NOT NULL",
        [],
        |row| row.get(0),
    )
    .unwrap_or(0)
}

/// An echoscu from `calling` to `called` at the relay's DIMSE port.
pub fn echoscu(r: &DimseRelay, calling: &str, called: &str) -> std::process::Output {
    let mut c = dcmtk("echoscu");
    c.args(["-aet", calling, "-aec", called, "127.0.0.1"])
        .arg(r.port.to_string());
    run_guarded(c, GUARD, "echoscu")
}

/// Files with data in the relay's scratch folder that hold no committed instance: uploads of
/// unknown size in progress, or left behind. Its pool of empty files does not count, nor the
/// pooled copy of a committed instance, which stays until its object's folder is settled (a
/// second later: `yilian_store`'s `settle.rs`).
pub fn scratch_with_data(r: &DimseRelay) -> Vec<PathBuf> {
    scratch_with_data_at(&r.relay.data)
}

/// [`scratch_with_data`] of the relay or gateway whose data folder is `data`.
pub fn scratch_with_data_at(data: &Path) -> Vec<PathBuf> {
    let indexed = indexed_hashes(data);
    files_under(&data.join("scratch"))
        .into_iter()
        .filter(|f| std::fs::metadata(f).map(|m| m.len() > 0).unwrap_or(false))
        .filter(|f| {
            yilian_testkit::blake3_file(f)
                .map(|h| !indexed.contains(h.as_slice()))
                .unwrap_or(true)
        })
        .collect()
}

/// The content hashes of every instance the relay's index holds.
pub fn indexed_hashes(data: &Path) -> std::collections::BTreeSet<Vec<u8>> {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        data.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Default::default();
    };
    let Ok(mut st) = db.prepare("SELECT hash FROM instances") else {
        return Default::default();
    };
    st.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// The data set of a Part 10 file: the bytes after its file meta information.
pub fn data_set(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let meta = yilian_dimse::part10::parse_file_meta(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes[meta.data_set_offset as usize..].to_vec()
}

/// The SOP Instance UID in a file's meta.
pub fn meta_sop(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    yilian_dimse::part10::parse_file_meta(&bytes)
        .ok()
        .map(|m| m.sop_instance)
}

/// Read everything routed to the county's three reading departments: SOP UID → file.
pub fn read_county(r: &DimseRelay, tag: &str) -> BTreeMap<String, PathBuf> {
    let mut got = BTreeMap::new();
    for reader in ["county-radiology", "county-ultrasound", "county-cardiology"] {
        let out_dir = r.root.join(format!("{tag}-{reader}"));
        let out = run_guarded(
            read_cmd(&r.relay, &r.pki, reader, &out_dir, true),
            GUARD,
            "read --once",
        );
        assert!(out.status.success(), "{reader}: {}", text(&out));
        for f in files_under(&out_dir) {
            if f.extension().is_some_and(|e| e == "dcm") {
                let sop = f.file_stem().unwrap().to_string_lossy().to_string();
                got.insert(sop, f);
            }
        }
    }
    got
}

/// What DCMTK's `storescp` (bit-preserving, every transfer syntax and SOP class) receives when
/// pynetdicom sends `files` to it: SOP Instance UID → received file. The reference for "the
/// data set exactly as the SCU sent it" (an SCU may drop group lengths or padding on the way).
/// Wait until something listens on `port` (loopback).
pub fn wait_listening(port: u16) {
    wait_until("the peer listens", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// DCMTK `storescp` writing exactly what it receives (`+xa -pm +B +uf`, plus `extra`) into
/// `out`, on a free port; killed when dropped.
pub fn storescp(out: &Path, extra: &[&str]) -> (KillOnDrop, u16) {
    std::fs::create_dir_all(out).unwrap();
    let port = free_tcp_port();
    let child = dcmtk("storescp")
        .args(extra)
        .args(["+xa", "-pm", "+B", "+uf", "-od"])
        .arg(out)
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scp = KillOnDrop(child);
    wait_listening(port);
    (scp, port)
}

/// A relay with DIMSE on, in `tmp`, whose topology is the example one plus `more` (extra
/// `[[ae]]` tables, say).
pub fn relay_with_topology(tmp: tempfile::TempDir, more: &str) -> DimseRelay {
    let root = tmp.path().to_path_buf();
    let pki = Pki::new(&root.join("pki"));
    let topology = root.join("topology.toml");
    std::fs::write(
        &topology,
        format!("{}\n{more}", yilian_route::Topology::example_toml()),
    )
    .unwrap();
    let port = free_tcp_port();
    let relay = RelayProc::start_config(&root.join("relay"), |quic, data| {
        format!(
            "listen = \"127.0.0.1:{quic}\"\ndata_dir = {data:?}\ntopology = {topology:?}\n\n{}\n[dimse]\nlisten = \"127.0.0.1:{port}\"\n",
            tls_section(&pki)
        )
    });
    DimseRelay {
        relay,
        port,
        _tmp: tmp,
        pki,
        root,
    }
}

/// The association was rejected as "calling AE title not recognized", and the relay audited
/// the connection with `outcome` and a detail containing `detail`.
pub fn assert_rejected_and_audited(
    out: &std::process::Output,
    r: &DimseRelay,
    outcome: &str,
    detail: &str,
) {
    assert!(!out.status.success(), "{}", text(out));
    assert!(
        text(out).contains("Calling AE Title Not Recognized"),
        "{}",
        text(out)
    );
    let rows = audit_rows(&r.relay.data, "connect");
    assert!(
        rows.iter()
            .any(|(_, o, d)| o == outcome && d.as_deref().is_some_and(|d| d.contains(detail))),
        "{rows:?}"
    );
}

/// A child process killed when dropped (a test that fails leaves no peer running).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn storescp_reference(root: &Path, files: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    let out = root.join("storescp-out");
    let (_scp, port) = storescp(&out, &[]);
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dimse_send.py"))
        .args(["127.0.0.1", &port.to_string(), "REFERENCE", "STORESCP"])
        .args(files);
    let sent = run_guarded(c, GUARD, "pynetdicom → storescp");
    assert!(sent.status.success(), "{}", text(&sent));
    files_under(&out)
        .into_iter()
        .filter_map(|f| Some((meta_sop(&f)?, f)))
        .collect()
}
