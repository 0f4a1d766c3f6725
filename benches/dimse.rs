//! DICOM (DIMSE) ingest: yilian's relay against DCMTK `storescp` (no fsync) and Orthanc (fsync
//! per file), all fed by DCMTK `storescu`, in one run on one corpus (design §5, issue 15).
//!
//! ```text
//! cargo bench --bench dimse                                  # 300 CT, 20 DX, 1 US; 3 runs
//! cargo bench --bench dimse -- --ct-slices 300 --dx 20 --us-frames 120 --runs 3
//! cargo bench --bench dimse -- --quick                       # 60 CT, 4 DX, 1 small US, 1 run
//! YILIAN_BENCH_BIN=/tmp/yilian.old cargo bench --bench dimse # another build of the relay (A/B)
//! ```
//! Needs `/usr/bin/storescu`, `/usr/bin/storescp` (Debian `dcmtk`) and `/usr/sbin/Orthanc`
//! (Debian `orthanc`); every DICOM peer runs with `TCP_NODELAY=1` (DCMTK and Orthanc leave
//! Nagle on otherwise, and the peer, not the receiver, would be measured).
//!
//! Per run, for each receiver (storescp, Orthanc, yilian), on the same files:
//! * **1 association**: one `storescu` sends the whole corpus (CT series, DX set, multi-frame
//!   US), timed from its start to its exit: files/s and MB/s.
//! * **4 associations**: the corpus split in four, four `storescu` at once (storescp runs with
//!   `--fork` to serve them concurrently).
//! * **CPU per GB**: the receiver process's user + system CPU (children included, for
//!   storescp's forks) over the run, per GB received.
//! * yilian also ingests the same corpus over **QUIC** (`yilian send`), for its CPU per GB.
//! * **SCU egress**: the corpus, ingested beforehand and routed to a push AE (`[[ae]] push =
//!   true`), is delivered by the relay's C-STORE egress to a DCMTK `storescp --fork`; against
//!   one `storescu` sending the same files to the same kind of `storescp`. The ratio is of the
//!   flow (first file in storescp's folder to the last, both sides); the rate timed from each
//!   sender's start (the relay's includes opening its store) is printed too.
//! * **The disk's durable ceiling** (`common/disk.rs`): the same files written and fsync'ed by
//!   1 and 4 bare threads (as many files in flight as associations, since a `storescu` waits for
//!   each answer), nothing else. A durable receiver cannot beat it by much; a target above it
//!   asks more of the disk than it makes durable.
//!
//! yilian answers each C-STORE only once the instance is hash-verified, fsync'ed and committed;
//! Orthanc fsyncs each file; storescp only writes. Ratios are printed against both.
//! Scratch folders (on a real disk, never a tmpfs) are removed at the end.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use yilian_route::Topology;
use yilian_testkit::StudySpec;

mod common;
use common::disk::durable_ceiling;
use common::proc::Proc;
use common::{cpu_seconds, free_port, median, scratch_base, within_run_ratios, Flags};

const USAGE: &str =
    "cargo bench --bench dimse -- [--ct-slices N] [--dx N] [--us-frames N] [--runs N] [--quick]";

struct Options {
    ct_slices: usize,
    dx: usize,
    us_frames: u32,
    runs: usize,
}

fn options() -> Result<Options> {
    let mut o = Options {
        ct_slices: 300,
        dx: 20,
        us_frames: 120,
        runs: 3,
    };
    let mut f = Flags::new(USAGE);
    while let Some((flag, inline)) = f.next_flag() {
        match flag.as_str() {
            "--ct-slices" => o.ct_slices = f.value(&flag, inline)?.parse()?,
            "--dx" => o.dx = f.value(&flag, inline)?.parse()?,
            "--us-frames" => o.us_frames = f.value(&flag, inline)?.parse()?,
            "--runs" => o.runs = f.value(&flag, inline)?.parse()?,
            "--quick" => {
                o = Options {
                    ct_slices: 60,
                    dx: 4,
                    us_frames: 20,
                    runs: 1,
                }
            }
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = options()?;
    for tool in [
        "/usr/bin/storescu",
        "/usr/bin/storescp",
        "/usr/sbin/Orthanc",
    ] {
        ensure!(
            Path::new(tool).exists(),
            "{tool} is missing: apt-get install dcmtk orthanc"
        );
    }
    let base = scratch_base()?;
    let tmp = tempfile::Builder::new()
        .prefix("yilian-bench-dimse")
        .tempdir_in(&base)?;
    let corpus = make_corpus(tmp.path(), &o)?;
    println!(
        "corpus: {} files, {:.1} MB ({} CT 512×512, {} DX, 1 US of {} frames); scratch on {}",
        corpus.files,
        corpus.bytes as f64 / 1e6,
        o.ct_slices,
        o.dx,
        o.us_frames,
        common::fs_type(tmp.path()).unwrap_or_default()
    );
    let mut rows: Vec<Row> = Vec::new();
    for run in 0..o.runs {
        for kind in [Kind::Storescp, Kind::Orthanc, Kind::Yilian] {
            for assocs in [1usize, 4] {
                let r = measure(tmp.path(), &corpus, kind, assocs, run)
                    .with_context(|| format!("{} with {assocs} association(s)", kind.name()))?;
                println!(
                    "run {run}: {:<9} {assocs} assoc: {:>7.1} files/s {:>7.1} MB/s  CPU {:>5.2} s/GB",
                    kind.name(),
                    r.files_per_s,
                    r.mb_per_s,
                    r.cpu_per_gb
                );
                rows.push(r);
            }
        }
        for writers in [1usize, 4] {
            let c = measure_ceiling(tmp.path(), &corpus, writers, run)?;
            println!(
                "run {run}: disk ceiling, {writers} writer(s) (write + fsync, nothing else): {:>7.1} files/s {:>7.1} MB/s",
                c.files_per_s, c.mb_per_s
            );
            rows.push(c);
        }
        let q = measure_quic(tmp.path(), &corpus, run)?;
        println!(
            "run {run}: yilian QUIC: {:>7.1} files/s {:>7.1} MB/s  CPU {:>5.2} s/GB",
            q.files_per_s, q.mb_per_s, q.cpu_per_gb
        );
        rows.push(q);
        let (egress, reference) = measure_egress(tmp.path(), &corpus, run)?;
        println!(
            "run {run}: egress, files/s once flowing (from each sender's start): yilian SCU {:>7.1} ({:.1}), storescu {:>7.1} ({:.1})",
            egress.files_per_s,
            egress.with_start_files_per_s,
            reference.files_per_s,
            reference.with_start_files_per_s
        );
        rows.push(egress);
        rows.push(reference);
    }
    summary(&rows);
    Ok(())
}

struct Corpus {
    /// Four folders, the corpus split in four (the 1-association runs send all four).
    parts: Vec<PathBuf>,
    /// The ultrasound file (routed to ultrasound, not to the radiology PACS of the egress run).
    us: PathBuf,
    files: usize,
    bytes: u64,
}

fn make_corpus(dir: &Path, o: &Options) -> Result<Corpus> {
    let parts: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("corpus/{i}"))).collect();
    for p in &parts {
        std::fs::create_dir_all(p)?;
    }
    let ct_dir = dir.join("ct-gen");
    let ct =
        yilian_testkit::ct_series(&ct_dir, &StudySpec::new("CT", 1), o.ct_slices, 512, 512, 1)?;
    let mut files = Vec::new();
    for g in ct {
        files.push(g.path);
    }
    for i in 0..o.dx {
        let p = dir.join(format!("dx-{i}.dcm"));
        yilian_testkit::dx_image(
            &p,
            &StudySpec::new("DX", 100 + i as u64),
            2000,
            2000,
            100 + i as u64,
        )?;
        files.push(p);
    }
    let us = dir.join("us.dcm");
    yilian_testkit::us_multiframe(&us, &StudySpec::new("US", 7), o.us_frames, 480, 640, 7)?;
    files.push(us);
    let mut bytes = 0;
    let mut us_at = PathBuf::new();
    for (i, f) in files.iter().enumerate() {
        bytes += std::fs::metadata(f)?.len();
        let to = parts[i % 4].join(format!("{i:05}.dcm"));
        std::fs::rename(f, &to)?;
        us_at = to;
    }
    Ok(Corpus {
        parts,
        us: us_at,
        files: files.len(),
        bytes,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Storescp,
    Orthanc,
    Yilian,
    Quic,
    /// The relay's C-STORE egress to storescp.
    Egress,
    /// storescu to storescp (the egress reference).
    StorescuEgress,
    /// Bare durable writers, as many as associations (`common::disk`).
    Ceiling,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Storescp => "storescp",
            Kind::Orthanc => "Orthanc",
            Kind::Yilian => "yilian",
            Kind::Quic => "yilianQUIC",
            Kind::Egress => "yilianSCU",
            Kind::StorescuEgress => "storescu",
            Kind::Ceiling => "disk",
        }
    }
}

struct Row {
    run: usize,
    kind: Kind,
    assocs: usize,
    files_per_s: f64,
    mb_per_s: f64,
    cpu_per_gb: f64,
    /// Egress only: files/s timed from the sender's start (the relay's start includes
    /// opening its store), where `files_per_s` is the flow once files arrive.
    with_start_files_per_s: f64,
}

fn wait_port(port: u16, p: &mut Proc) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(s) = p.try_wait()? {
            bail!("{} exited ({s}) before listening\n{}", p.name, p.log_tail());
        }
        ensure!(
            Instant::now() < deadline,
            "{} never listened\n{}",
            p.name,
            p.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The relay under test: `YILIAN_BENCH_BIN` (another build, for an A/B), else this build's.
fn yilian_bin() -> PathBuf {
    std::env::var_os("YILIAN_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_yilian")))
}

/// Start a receiver; returns it, its port and its called AE title.
fn start(dir: &Path, kind: Kind, assocs: usize) -> Result<(Proc, u16, &'static str)> {
    let port = free_port()?;
    let out = dir.join("out");
    std::fs::create_dir_all(&out)?;
    let log = dir.join("receiver.log");
    let (mut p, ae) = match kind {
        Kind::Storescp => {
            let mut c = Command::new("/usr/bin/storescp");
            c.env("TCP_NODELAY", "1")
                .args(["+xa", "-pm", "-od"])
                .arg(&out);
            if assocs > 1 {
                c.arg("--fork");
            }
            c.arg(port.to_string());
            (Proc::spawn("storescp", c, &log)?, "STORESCP")
        }
        Kind::Orthanc => {
            let http = free_port()?;
            let config = dir.join("orthanc.json");
            std::fs::write(
                &config,
                format!(
                    r#"{{ "Name": "bench", "StorageDirectory": {:?}, "IndexDirectory": {:?},
  "DicomAet": "ORTHANC", "DicomPort": {port}, "HttpPort": {http}, "RemoteAccessAllowed": false,
  "DicomCheckCalledAet": false, "UnknownSopClassAccepted": true, "StorageCompression": false,
  "SyncStorageArea": true, "DicomAlwaysAllowStore": true, "DicomAlwaysAllowEcho": true,
  "Plugins": [], "HttpServerEnabled": true, "AuthenticationEnabled": false }}"#,
                    out.display().to_string(),
                    out.join("index").display().to_string()
                ),
            )?;
            let mut c = Command::new("/usr/sbin/Orthanc");
            c.env("TCP_NODELAY", "1").arg(&config);
            (Proc::spawn("Orthanc", c, &log)?, "ORTHANC")
        }
        Kind::Ceiling => bail!("the disk ceiling is not a receiver"),
        Kind::Yilian | Kind::Quic | Kind::Egress | Kind::StorescuEgress => {
            let quic = free_port()?;
            let config = dir.join("relay.toml");
            std::fs::write(
                &config,
                format!(
                    "listen = \"127.0.0.1:{quic}\"\ndata_dir = {:?}\n[dimse]\nlisten = \"127.0.0.1:{port}\"\n",
                    out.display().to_string()
                ),
            )?;
            let mut c = Command::new(yilian_bin());
            c.env("RUST_LOG", "warn")
                .args(["serve", "--config"])
                .arg(&config);
            (Proc::spawn("yilian", c, &log)?, "YILIAN")
        }
    };
    wait_port(port, &mut p)?;
    Ok((p, port, ae))
}

fn measure(scratch: &Path, corpus: &Corpus, kind: Kind, assocs: usize, run: usize) -> Result<Row> {
    let dir = scratch.join(format!("{}-{assocs}-{run}", kind.name()));
    std::fs::create_dir_all(&dir)?;
    let (mut receiver, port, ae) = start(&dir, kind, assocs)?;
    let cpu0 = cpu_seconds(receiver.pid())?;
    let t0 = Instant::now();
    let groups: Vec<Vec<&PathBuf>> = if assocs == 1 {
        vec![corpus.parts.iter().collect()]
    } else {
        corpus.parts.iter().map(|p| vec![p]).collect()
    };
    let mut senders = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let mut c = Command::new("/usr/bin/storescu");
        c.env("TCP_NODELAY", "1")
            .args(["-aet", "TWA_DR1", "-aec", ae, "+sd", "+r"])
            .arg("127.0.0.1")
            .arg(port.to_string())
            .args(g.iter());
        senders.push(Proc::spawn(
            &format!("storescu {i}"),
            c,
            &dir.join(format!("storescu-{i}.log")),
        )?);
    }
    for s in &mut senders {
        let status = loop {
            if let Some(st) = s.try_wait()? {
                break st;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        ensure!(status.success(), "storescu failed\n{}", s.log_tail());
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(receiver.pid())? - cpu0;
    receiver.kill();
    remove(&dir);
    Ok(Row {
        run,
        kind,
        assocs,
        files_per_s: corpus.files as f64 / secs,
        mb_per_s: corpus.bytes as f64 / 1e6 / secs,
        cpu_per_gb: cpu / (corpus.bytes as f64 / 1e9),
        with_start_files_per_s: f64::NAN,
    })
}

/// The disk's durable ceiling for this corpus with `writers` files in flight (one association
/// has one instance in flight: it waits for each answer). Its folder stays until the end.
fn measure_ceiling(scratch: &Path, corpus: &Corpus, writers: usize, run: usize) -> Result<Row> {
    let files: Vec<PathBuf> = corpus.parts.iter().flat_map(|p| walk(p)).collect();
    ensure!(files.len() == corpus.files, "the corpus lost files");
    let c = durable_ceiling(
        &scratch.join(format!("ceiling-{writers}-{run}")),
        &files,
        writers,
    )?;
    Ok(Row {
        run,
        kind: Kind::Ceiling,
        assocs: writers,
        files_per_s: c.files_per_s,
        mb_per_s: c.mb_per_s,
        cpu_per_gb: f64::NAN,
        with_start_files_per_s: f64::NAN,
    })
}

/// The same corpus over QUIC (`yilian send`), for the relay's CPU per GB.
fn measure_quic(scratch: &Path, corpus: &Corpus, run: usize) -> Result<Row> {
    let dir = scratch.join(format!("quic-{run}"));
    std::fs::create_dir_all(&dir)?;
    let (mut relay, _, _) = start(&dir, Kind::Quic, 1)?;
    let config = std::fs::read_to_string(dir.join("relay.toml"))?;
    let quic = config
        .lines()
        .next()
        .and_then(|l| l.split('"').nth(1))
        .context("relay.toml")?
        .to_string();
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-dev");
    let cpu0 = cpu_seconds(relay.pid())?;
    let t0 = Instant::now();
    let mut c = Command::new(yilian_bin());
    c.env("RUST_LOG", "warn")
        .args(["send", "--relay", &quic, "--cert"])
        .arg(certs.join("township-a-device.pem"))
        .arg("--key")
        .arg(certs.join("township-a-device.key"))
        .args(corpus.parts.iter());
    let mut send = Proc::spawn("yilian send", c, &dir.join("send.log"))?;
    let status = loop {
        if let Some(st) = send.try_wait()? {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    ensure!(status.success(), "send failed\n{}", send.log_tail());
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(relay.pid())? - cpu0;
    relay.kill();
    remove(&dir);
    Ok(Row {
        run,
        kind: Kind::Quic,
        assocs: 1,
        files_per_s: corpus.files as f64 / secs,
        mb_per_s: corpus.bytes as f64 / 1e6 / secs,
        cpu_per_gb: cpu / (corpus.bytes as f64 / 1e9),
        with_start_files_per_s: f64::NAN,
    })
}

/// Files with data under `dir`.
fn count_files(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if e.metadata().map(|m| m.len() > 0).unwrap_or(false) {
                out.push(p);
            }
        }
    }
    out
}

/// Start `storescp --fork` writing into `out`.
fn storescp(out: &Path, log: &Path) -> Result<(Proc, u16)> {
    std::fs::create_dir_all(out)?;
    let port = free_port()?;
    let mut c = Command::new("/usr/bin/storescp");
    c.env("TCP_NODELAY", "1")
        .args(["+xa", "-pm", "--fork", "-od"])
        .arg(out)
        .arg(port.to_string());
    let mut p = Proc::spawn("storescp", c, log)?;
    wait_port(port, &mut p)?;
    Ok((p, port))
}

/// Wait until the relay's pool holds no sealed upload waiting for its commit.
fn wait_committed(data: &Path) -> Result<()> {
    let pool = data.join("scratch").join("ready");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // `walk` lists files with data: the pool's empty files do not count.
        let waiting = walk(&pool).len();
        if waiting == 0 {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{waiting} sealed uploads still not committed after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The relay's C-STORE egress against one storescu, both to storescp, on the corpus without
/// its ultrasound (the PACS of this run reads radiology).
fn measure_egress(scratch: &Path, corpus: &Corpus, run: usize) -> Result<(Row, Row)> {
    let dir = scratch.join(format!("egress-{run}"));
    std::fs::create_dir_all(&dir)?;
    let files: Vec<PathBuf> = corpus
        .parts
        .iter()
        .flat_map(|p| walk(p))
        .filter(|f| *f != corpus.us)
        .collect();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    // Reference: storescu → storescp.
    let (mut scp, port) = storescp(&dir.join("ref-out"), &dir.join("ref-storescp.log"))?;
    let t0 = Instant::now();
    let mut c = Command::new("/usr/bin/storescu");
    c.env("TCP_NODELAY", "1")
        .args([
            "-aet",
            "BENCH",
            "-aec",
            "STORESCP",
            "+sd",
            "+r",
            "127.0.0.1",
        ])
        .arg(port.to_string())
        .args(corpus.parts.iter());
    let mut sender = Proc::spawn("storescu", c, &dir.join("ref-storescu.log"))?;
    let reference_flow = watch_files(&dir.join("ref-out"), files.len(), "storescu → storescp")?;
    let status = loop {
        if let Some(st) = sender.try_wait()? {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    ensure!(status.success(), "storescu failed\n{}", sender.log_tail());
    let reference_secs = t0.elapsed().as_secs_f64();
    scp.kill();
    // yilian: ingest routed to a reader whose push AE is added afterwards.
    let (mut scp, port) = storescp(&dir.join("out"), &dir.join("storescp.log"))?;
    let base = Topology::example_toml();
    let reader = "[[identity]]\nname = \"county-pacs\"\nsite = \"county\"\nrole = \"reader\"\ndepartment = \"radiology\"\n";
    let topo = dir.join("topology.toml");
    std::fs::write(&topo, format!("{base}\n{reader}"))?;
    let relay_dir = dir.join("relay");
    std::fs::create_dir_all(&relay_dir)?;
    let (mut relay, dimse_port, _) = start_with_topology(&relay_dir, &topo)?;
    let mut c = Command::new("/usr/bin/storescu");
    c.env("TCP_NODELAY", "1")
        .args([
            "-aet",
            "TWA_DR1",
            "-aec",
            "YILIAN",
            "+sd",
            "+r",
            "127.0.0.1",
        ])
        .arg(dimse_port.to_string())
        .args(corpus.parts.iter());
    let mut sender = Proc::spawn("storescu → yilian", c, &dir.join("ingest.log"))?;
    let status = loop {
        if let Some(st) = sender.try_wait()? {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    ensure!(
        status.success(),
        "storescu → yilian failed\n{}",
        sender.log_tail()
    );
    // Acknowledged once sealed, committed a moment later, its pooled copy removed once settled
    // (about a second later): stop the relay once every commit is done and settled, so that
    // the egress run below measures egress, not the next start's recovery.
    wait_committed(&relay_dir.join("data"))?;
    relay.kill();
    std::fs::write(
        &topo,
        format!("{base}\n{reader}\n[[ae]]\ntitle = \"COUNTY_PACS\"\nidentity = \"county-pacs\"\nhost = \"127.0.0.1\"\nport = {port}\npush = true\n"),
    )?;
    let t0 = Instant::now();
    let (mut relay, _, _) = start_with_topology(&relay_dir, &topo)?;
    let flow = watch_files(&dir.join("out"), files.len(), "egress")?;
    let secs = t0.elapsed().as_secs_f64();
    relay.kill();
    scp.kill();
    remove(&dir);
    let row = |kind, secs: f64, flow: Flow| Row {
        run,
        kind,
        assocs: 1,
        files_per_s: flow.files_per_s,
        mb_per_s: bytes as f64 / 1e6 / secs,
        cpu_per_gb: f64::NAN,
        with_start_files_per_s: files.len() as f64 / secs,
    };
    Ok((
        row(Kind::Egress, secs, flow),
        row(Kind::StorescuEgress, reference_secs, reference_flow),
    ))
}

/// Files flowing into a receiver's folder: the rate from the first file seen to the last
/// (what the sender sustains once connected, without its start: the relay opening its store
/// and recovering, storescu loading its files).
#[derive(Clone, Copy)]
struct Flow {
    files_per_s: f64,
}

/// Watch `dir` until it holds `n` files (polled every 2 ms).
fn watch_files(dir: &Path, n: usize, what: &str) -> Result<Flow> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, usize)> = None;
    loop {
        let now = Instant::now();
        let have = count_files(dir);
        if have > 0 && first.is_none() {
            first = Some((now, have));
        }
        if have >= n {
            let (t, seen) = first.unwrap_or((now, have));
            // All of them between two looks: no flow to time (never with hundreds of files).
            ensure!(seen < n, "{what}: every file arrived before the first look");
            let secs = now.duration_since(t).as_secs_f64().max(1e-3);
            return Ok(Flow {
                files_per_s: (n - seen) as f64 / secs,
            });
        }
        ensure!(now < deadline, "{what}: only {have} of {n} files arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A relay on `topology` (DIMSE on), in `dir` (its data kept across restarts).
fn start_with_topology(dir: &Path, topology: &Path) -> Result<(Proc, u16, u16)> {
    let port = free_port()?;
    let quic = free_port()?;
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{quic}\"\ndata_dir = {:?}\ntopology = {:?}\n[dimse]\nlisten = \"127.0.0.1:{port}\"\n",
            dir.join("data").display().to_string(),
            topology.display().to_string()
        ),
    )?;
    let mut c = Command::new(yilian_bin());
    c.env("RUST_LOG", "warn")
        .args(["serve", "--config"])
        .arg(&config);
    let mut p = Proc::spawn("yilian", c, &dir.join("relay.log"))?;
    wait_port(port, &mut p)?;
    Ok((p, port, quic))
}

/// Remove a receiver's folder after its run (a failure is reported, not fatal).
fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}

fn summary(rows: &[Row]) {
    let med = |kind: Kind, assocs: usize, f: fn(&Row) -> f64| {
        median(
            rows.iter()
                .filter(|r| r.kind == kind && r.assocs == assocs)
                .map(f)
                .collect(),
        )
    };
    println!("\nmedians (files/s | MB/s | receiver CPU s/GB):");
    println!("| receiver | associations | files/s | MB/s | CPU s/GB |\n|---|---|---|---|---|");
    for kind in [Kind::Storescp, Kind::Orthanc, Kind::Yilian] {
        for assocs in [1, 4] {
            println!(
                "| {} | {assocs} | {:.1} | {:.1} | {:.2} |",
                kind.name(),
                med(kind, assocs, |r| r.files_per_s),
                med(kind, assocs, |r| r.mb_per_s),
                med(kind, assocs, |r| r.cpu_per_gb)
            );
        }
    }
    println!(
        "| yilian over QUIC (send) | 1 | {:.1} | {:.1} | {:.2} |",
        med(Kind::Quic, 1, |r| r.files_per_s),
        med(Kind::Quic, 1, |r| r.mb_per_s),
        med(Kind::Quic, 1, |r| r.cpu_per_gb)
    );
    for writers in [1, 4] {
        println!(
            "| disk ceiling: {writers} bare writer(s), write + fsync each file, nothing else | {writers} | {:.1} | {:.1} | |",
            med(Kind::Ceiling, writers, |r| r.files_per_s),
            med(Kind::Ceiling, writers, |r| r.mb_per_s)
        );
    }
    // Ratios within each run (its receivers ran back to back on the same machine state),
    // then their median: this box's speed drifts between runs more than the ratios do.
    let runs = rows.iter().map(|r| r.run).max().map_or(0, |m| m + 1);
    let paired = |a: (Kind, usize), b: (Kind, usize), f: fn(&Row) -> f64| {
        let one = |run: usize, (k, n): (Kind, usize)| {
            rows.iter()
                .find(|r| r.run == run && r.kind == k && r.assocs == n)
                .map(f)
        };
        within_run_ratios(runs, |run| Some((one(run, a)?, one(run, b)?)))
    };
    let fps = |r: &Row| r.files_per_s;
    let cpu = |r: &Row| r.cpu_per_gb;
    println!("\nratios within each run, median (per run) (targets, design §5):");
    for (label, a, b, f, target) in [
        (
            "1 assoc, yilian / Orthanc files/s:        ",
            (Kind::Yilian, 1),
            (Kind::Orthanc, 1),
            fps as fn(&Row) -> f64,
            "≥ 2.5",
        ),
        (
            "4 assoc, yilian / storescp files/s:       ",
            (Kind::Yilian, 4),
            (Kind::Storescp, 4),
            fps,
            "≥ 1.0",
        ),
        (
            "4 assoc, yilian / Orthanc files/s:        ",
            (Kind::Yilian, 4),
            (Kind::Orthanc, 4),
            fps,
            "≥ 4.0",
        ),
        (
            "CPU/GB, yilian DIMSE / storescp (1 assoc):",
            (Kind::Yilian, 1),
            (Kind::Storescp, 1),
            cpu,
            "≤ 1.5",
        ),
        (
            "CPU/GB, yilian QUIC / storescp (1 assoc): ",
            (Kind::Quic, 1),
            (Kind::Storescp, 1),
            cpu,
            "≤ 2.0",
        ),
    ] {
        let (m, shown) = paired(a, b, f);
        println!("  {label} {m:.2}  ({target})  [{shown}]");
    }
    // What the targets ask of the disk: a durable receiver with as many files in flight as
    // associations can go no faster than the bare writers (`common::disk`).
    println!("\nthe disk's durable ceiling, same runs (bare writers, as many as associations):");
    let of = |run: usize, k: Kind, n: usize| {
        rows.iter()
            .find(|r| r.run == run && r.kind == k && r.assocs == n)
            .map(|r| r.files_per_s)
    };
    for (label, pair) in [
        (
            "1 assoc, yilian / ceiling:                       ",
            Box::new(|run| Some((of(run, Kind::Yilian, 1)?, of(run, Kind::Ceiling, 1)?)))
                as Box<dyn Fn(usize) -> Option<(f64, f64)>>,
        ),
        (
            "1 assoc, target (2.5 × Orthanc) / ceiling:       ",
            Box::new(|run| Some((2.5 * of(run, Kind::Orthanc, 1)?, of(run, Kind::Ceiling, 1)?))),
        ),
        (
            "4 assoc, yilian / ceiling:                       ",
            Box::new(|run| Some((of(run, Kind::Yilian, 4)?, of(run, Kind::Ceiling, 4)?))),
        ),
        (
            "4 assoc, storescp (no fsync) / ceiling:          ",
            Box::new(|run| Some((of(run, Kind::Storescp, 4)?, of(run, Kind::Ceiling, 4)?))),
        ),
        (
            "4 assoc, target (4 × Orthanc) / ceiling:         ",
            Box::new(|run| Some((4.0 * of(run, Kind::Orthanc, 4)?, of(run, Kind::Ceiling, 4)?))),
        ),
    ] {
        let (m, shown) = within_run_ratios(runs, pair);
        println!("  {label} {m:.2}  [{shown}]  (above 1: more than this disk makes durable)");
    }
    let (m, shown) = paired((Kind::Egress, 1), (Kind::StorescuEgress, 1), fps);
    println!(
        "  SCU egress, yilian / storescu files/s:      {m:.2}  (≥ 1.5)  [{shown}]; medians {:.1} vs {:.1} files/s (first file to last)",
        med(Kind::Egress, 1, fps),
        med(Kind::StorescuEgress, 1, fps)
    );
    let started = |r: &Row| r.with_start_files_per_s;
    let (m, shown) = paired((Kind::Egress, 1), (Kind::StorescuEgress, 1), started);
    println!(
        "    the same from each sender's start (the relay's start opens its store): {m:.2}  [{shown}]; medians {:.1} vs {:.1} files/s",
        med(Kind::Egress, 1, started),
        med(Kind::StorescuEgress, 1, started)
    );
}
