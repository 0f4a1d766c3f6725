//! yilian QUIC vs DCMTK `storescu` → `storescp` over the **same emulated rural path**, in the
//! same run: goodput of one CT study from a township clinic (namespace A) to the county
//! hospital (namespace B).
//!
//! ```text
//! cargo bench --bench rural_links                      # default subset, 5 cells, ≈ 12–15 min
//! cargo bench --bench rural_links -- --quick           # 20 Mbit/s, 120 ms, 2 %: ≈ 2 min
//! cargo bench --bench rural_links -- --all             # 3 rates × 3 RTTs × 5 losses: ≈ 2–3 h
//! cargo bench --bench rural_links -- --quic-cc bdp     # another QUIC congestion controller
//! cargo bench --bench rural_links -- --quic-cc default,bdp --losses 2,10 --rates 20 --rtts 120
//! ```
//! Environment equivalents: `YILIAN_BENCH_QUICK=1`, `YILIAN_BENCH_ALL=1`,
//! `YILIAN_BENCH_QUIC_CC`, `YILIAN_BENCH_TCP_CC`, `YILIAN_BENCH_LINK_SECONDS`,
//! `YILIAN_BENCH_CAP_S`, `YILIAN_BENCH_SEED`; `YILIAN_BENCH_DIR` picks the scratch folder (never
//! a tmpfs); `YILIAN_BENCH_LOGS=DIR` keeps every run's logs there and `YILIAN_BENCH_RUST_LOG`
//! sets the yilian processes' `RUST_LOG` (to see where a run's time goes). Needs root (network namespaces, `/dev/net/tun`) and DCMTK (`/usr/bin/storescu`;
//! installed with `apt-get install -y dcmtk` if missing and apt-get is there).
//!
//! **The path.** Per run, a fresh pair of network namespaces joined by `yilian-linkem`'s
//! userspace TUN router: `LinkSpec::rural(rate, rtt, loss)` in both directions (one-way delay
//! RTT/2, random loss each way, a one-BDP tail-drop queue at the bottleneck), the same seed for
//! every run of a cell, so TCP and QUIC meet the same impairments at IP level. The TCP
//! congestion controller of both namespaces is set explicitly (this machine's kernel default
//! is BBR; the devices in the field mostly run CUBIC): A (the sender) runs the variant under
//! test, B (the county server) runs CUBIC. `tcp_no_metrics_save=1` in both.
//!
//! **The runs of a cell** (each on a fresh pair, fresh output folder):
//! * **yilian**: the real binary (`yilian serve` in B, relay certificate issued by a throw-away
//!   CA for B's address; `yilian send` in A, exit 0 = every instance hash-verified, fsync'ed
//!   and committed by the relay), per QUIC congestion controller of `--quic-cc` (set in the
//!   relay's `[transport] congestion` and by `send --congestion`; default: the relay's default).
//! * **storescu + CUBIC / + BBR**: DCMTK 3.6 `storescp` in B (`+xa`, writes to a folder, no
//!   fsync), `storescu +sd` in A sending the same files, both with `TCP_NODELAY=1` (else
//!   Nagle delays every C-STORE response, and DCMTK, not the link, is measured).
//!
//! **Goodput** = study bytes / wall time from the client's process start to its exit; the
//! server is started and ready before. yilian's time includes its QUIC + TLS handshake and
//! the QUIC close (draining) before `send` exits; storescu's its TCP handshake, association
//! and release. The study is sized per cell to about `--link-seconds` (15) of link time at the
//! bottleneck rate (CT slices of 512×512, ≈ 525 KB each, at least 4). A run that reaches
//! `--cap-s` (120) is killed and its goodput is the bytes the server had **stored** by then /
//! the cap: shown as "≥ x" (a lower bound: data in flight and the instance being received do
//! not count). Share of rate = goodput / bottleneck rate; the rate counts whole IP packets, so
//! 100 % is out of reach (headers: ≈ 3 % for TCP, ≈ 4–5 % for QUIC). "q-drops" = packets of
//! the yilian run tail-dropped at the bottleneck queue, as a share of those offered upstream:
//! a controller that floods the queue (and the shared uplink's latency) shows there.
//!
//! Every child process is killed (also if this process dies: `PR_SET_PDEATHSIG`), every
//! namespace deleted and every scratch folder removed, also on failure. Traffic only crosses
//! the namespaces' own addresses. Nothing here has a threshold: the targets are printed with
//! what was measured.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use yilian_linkem::{LinkSpec, LinkStats, NetnsPair, PathStats, Side};
use yilian_route::Topology;
use yilian_testkit::StudySpec;
use yilian_transport::{Congestion, DevCa, PeerIdentity, Tuning};

mod common;
use common::proc::Proc;
use common::{fs_type, identity, scratch_base};

const MB: f64 = 1e6;
/// Approximate size of one generated 512×512 CT slice (for sizing studies).
const SLICE_BYTES: f64 = 525_500.0;
const NS_PREFIX: &str = "yl_rural_bench";
const RELAY_PORT: u16 = 4433;
const DICOM_PORT: u16 = 11112;
const DEVICE: &str = "township-a-device";
const RELAY: &str = "county-relay";
const STORESCU: &str = "/usr/bin/storescu";
const STORESCP: &str = "/usr/bin/storescp";
/// TCP congestion control of the server namespace in every run (a county server on Linux).
const SERVER_TCP_CC: &str = "cubic";
/// How often the client's exit is checked (the wall time's resolution).
const POLL: Duration = Duration::from_millis(10);
/// How often the server's output folder is counted.
const COUNT_EVERY: Duration = Duration::from_millis(100);

const USAGE: &str = "\
usage: cargo bench --bench rural_links -- [--all | --quick] [--rates LIST] [--rtts LIST]
           [--losses LIST] [--quic-cc LIST] [--tcp-cc LIST] [--link-seconds S] [--cap-s S]
           [--seed N]
  (default)          5 cells: 20 Mbit/s × 120 ms × loss 0, 2, 10 %; 2 Mbit/s × 300 ms × 2 %;
                     100 Mbit/s × 30 ms × 1 % (≈ 12–15 min on 2 cores)
  --all              the full matrix: rates 2,20,100 × RTTs 30,120,300 × losses 0,1,2,5,10 (≈ 2–3 h)
  --quick            one cell (20 Mbit/s, 120 ms, 2 %), 8 s of link time, cap 60 s (≈ 2 min)
  --rates LIST       Mbit/s, e.g. 2,20; with --rtts/--losses: the product of the three lists
                     (a list not given takes the full matrix's)
  --rtts LIST        round-trip times in ms, e.g. 120,300
  --losses LIST      random loss in % per direction, e.g. 0,2,10
  --quic-cc LIST     yilian's QUIC congestion controller(s), one yilian run each: default (the
                     relay's default), bbr, cubic, newreno, bdp (if this tree has it)
                     (default: default)
  --tcp-cc LIST      storescu's TCP congestion controllers, one storescu run each; `none` skips
                     storescu (default: cubic,bbr)
  --link-seconds S   study size: about S seconds at the bottleneck rate, ≥ 4 slices (default 15)
  --cap-s S          a run is stopped after S seconds; its goodput is then what was stored by
                     then, marked ≥ (default 120)
  --seed N           seed of the link model (same for every run of a cell; default 1)
environment: YILIAN_BENCH_QUICK=1, YILIAN_BENCH_ALL=1, YILIAN_BENCH_QUIC_CC, YILIAN_BENCH_TCP_CC,
             YILIAN_BENCH_LINK_SECONDS, YILIAN_BENCH_CAP_S, YILIAN_BENCH_SEED, YILIAN_BENCH_DIR,
             YILIAN_BENCH_LOGS (keep logs), YILIAN_BENCH_RUST_LOG";

// ---------------------------------------------------------------------------------------------
// Arguments

/// One point of the matrix.
#[derive(Clone, Copy, Debug)]
struct Cell {
    rate_bps: u64,
    rtt: Duration,
    /// Random loss per direction, 0..1.
    loss: f64,
}

impl Cell {
    fn new(mbit: f64, rtt_ms: f64, loss_pct: f64) -> Cell {
        Cell {
            rate_bps: (mbit * 1e6).round() as u64,
            rtt: Duration::from_secs_f64(rtt_ms / 1e3),
            loss: loss_pct / 100.0,
        }
    }
    fn mbit(&self) -> f64 {
        self.rate_bps as f64 / 1e6
    }
    fn rtt_ms(&self) -> f64 {
        self.rtt.as_secs_f64() * 1e3
    }
    fn loss_pct(&self) -> f64 {
        self.loss * 100.0
    }
    fn label(&self) -> String {
        format!(
            "{} Mbit/s, {} ms, {} % loss",
            num(self.mbit()),
            num(self.rtt_ms()),
            num(self.loss_pct())
        )
    }
    /// Slices for about `secs` of link time at the bottleneck rate.
    fn slices(&self, secs: f64) -> usize {
        let n = (self.rate_bps as f64 / 8.0 * secs / SLICE_BYTES).ceil() as usize;
        n.max(4)
    }
}

/// A number without trailing zeros (2, 0.5, 120).
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One yilian variant: a QUIC congestion controller, or the relay's default.
#[derive(Clone, Copy, Debug, PartialEq)]
struct QuicCc(Option<Congestion>);

impl QuicCc {
    fn label(&self) -> String {
        match self.0 {
            Some(c) => c.as_str().to_string(),
            None => format!("{}, default", Tuning::default().congestion.as_str()),
        }
    }
}

#[derive(Debug)]
struct Args {
    cells: Vec<Cell>,
    quic_cc: Vec<QuicCc>,
    tcp_cc: Vec<String>,
    link_seconds: f64,
    cap: Duration,
    seed: u64,
}

const FULL_RATES: [f64; 3] = [2.0, 20.0, 100.0];
const FULL_RTTS: [f64; 3] = [30.0, 120.0, 300.0];
const FULL_LOSSES: [f64; 5] = [0.0, 1.0, 2.0, 5.0, 10.0];

fn default_cells() -> Vec<Cell> {
    vec![
        Cell::new(20.0, 120.0, 0.0),
        Cell::new(20.0, 120.0, 2.0),
        Cell::new(20.0, 120.0, 10.0),
        Cell::new(2.0, 300.0, 2.0),
        Cell::new(100.0, 30.0, 1.0),
    ]
}

fn parse_numbers(flag: &str, s: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = s
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| anyhow!("{flag}: {x:?} is not a number ≥ 0"))
        })
        .collect::<Result<_>>()?;
    ensure!(!v.is_empty(), "{flag}: an empty list");
    Ok(v)
}

fn parse_quic_cc(s: &str) -> Result<Vec<QuicCc>> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let cc = if name.eq_ignore_ascii_case("default") {
            QuicCc(None)
        } else {
            let known: Vec<&str> = Congestion::ALL.iter().map(|c| c.as_str()).collect();
            QuicCc(Some(name.parse::<Congestion>().map_err(|_| {
                anyhow!(
                    "--quic-cc: {name:?} is not a controller this tree knows (default, {})",
                    known.join(", ")
                )
            })?))
        };
        if !out.contains(&cc) {
            out.push(cc);
        }
    }
    ensure!(!out.is_empty(), "--quic-cc: an empty list");
    Ok(out)
}

fn parse_tcp_cc(s: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if name == "none" {
            return Ok(Vec::new());
        }
        ensure!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "--tcp-cc: {name:?} is not a TCP congestion control name"
        );
        if !out.iter().any(|x| x == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn parse_args() -> Result<Args> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let flag_on = |k: &str| env(k).is_some_and(|v| v != "0");
    let mut quick = flag_on("YILIAN_BENCH_QUICK");
    let mut all = flag_on("YILIAN_BENCH_ALL");
    let mut quic_cc = parse_quic_cc(&env("YILIAN_BENCH_QUIC_CC").unwrap_or("default".into()))?;
    let mut tcp_cc = parse_tcp_cc(&env("YILIAN_BENCH_TCP_CC").unwrap_or("cubic,bbr".into()))?;
    let mut link_seconds: Option<f64> = env("YILIAN_BENCH_LINK_SECONDS")
        .map(|v| v.parse())
        .transpose()
        .context("YILIAN_BENCH_LINK_SECONDS")?;
    let mut cap_s: Option<f64> = env("YILIAN_BENCH_CAP_S")
        .map(|v| v.parse())
        .transpose()
        .context("YILIAN_BENCH_CAP_S")?;
    let mut seed: u64 = env("YILIAN_BENCH_SEED")
        .map(|v| v.parse())
        .transpose()
        .context("YILIAN_BENCH_SEED")?
        .unwrap_or(1);
    let (mut rates, mut rtts, mut losses) = (None, None, None);
    let mut flags = common::Flags::new(USAGE);
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(&flag, inline.clone());
        match flag.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--quick" => quick = true,
            "--all" => all = true,
            "--rates" => rates = Some(parse_numbers("--rates", &value()?)?),
            "--rtts" => rtts = Some(parse_numbers("--rtts", &value()?)?),
            "--losses" => losses = Some(parse_numbers("--losses", &value()?)?),
            "--quic-cc" => quic_cc = parse_quic_cc(&value()?)?,
            "--tcp-cc" => tcp_cc = parse_tcp_cc(&value()?)?,
            "--link-seconds" => link_seconds = Some(value()?.parse().context("--link-seconds")?),
            "--cap-s" => cap_s = Some(value()?.parse().context("--cap-s")?),
            "--seed" => seed = value()?.parse().context("--seed")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {} // a `cargo bench -- FILTER` word: nothing to filter here
        }
    }
    ensure!(!(quick && all), "--quick and --all exclude each other");
    let cells = if rates.is_some() || rtts.is_some() || losses.is_some() {
        let mut v = Vec::new();
        for &r in rates.as_deref().unwrap_or(&FULL_RATES) {
            for &t in rtts.as_deref().unwrap_or(&FULL_RTTS) {
                for &l in losses.as_deref().unwrap_or(&FULL_LOSSES) {
                    v.push(Cell::new(r, t, l));
                }
            }
        }
        v
    } else if all {
        let mut v = Vec::new();
        for r in FULL_RATES {
            for t in FULL_RTTS {
                for l in FULL_LOSSES {
                    v.push(Cell::new(r, t, l));
                }
            }
        }
        v
    } else if quick {
        vec![Cell::new(20.0, 120.0, 2.0)]
    } else {
        default_cells()
    };
    for c in &cells {
        common::check_link(c.rate_bps, c.rtt, c.loss)?;
    }
    let link_seconds = link_seconds.unwrap_or(if quick { 8.0 } else { 15.0 });
    let cap_s = cap_s.unwrap_or(if quick { 60.0 } else { 120.0 });
    ensure!(
        link_seconds > 0.0 && link_seconds <= 3600.0,
        "--link-seconds: 0 < S ≤ 3600"
    );
    ensure!((5.0..=7200.0).contains(&cap_s), "--cap-s: 5 ≤ S ≤ 7200");
    Ok(Args {
        cells,
        quic_cc,
        tcp_cc,
        link_seconds,
        cap: Duration::from_secs_f64(cap_s),
        seed,
    })
}

// ---------------------------------------------------------------------------------------------
// Child processes

// ---------------------------------------------------------------------------------------------
// Scratch, PKI, fixtures

/// A throw-away alliance CA, the device's certificate, and relay certificates issued per
/// namespace address (the relay is reached at B's address, which the relay certificate must
/// name; `yilian send --relay IP:PORT` checks the IP against the certificate's SANs).
struct Pki {
    dir: PathBuf,
    ca: DevCa,
    relay: PeerIdentity,
    relay_certs: HashMap<Ipv4Addr, (PathBuf, PathBuf)>,
}

fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::hours(1),
        now + time::Duration::days(2),
    )
}

impl Pki {
    fn new(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let topology = Topology::example();
        let ca = DevCa::generate("rural links bench")?;
        std::fs::write(dir.join("ca.pem"), ca.ca_pem())?;
        let device = identity(&topology, DEVICE)?;
        let (nb, na) = validity();
        let (cert, key) = ca.issue(&device, &[], nb, na)?;
        std::fs::write(dir.join(format!("{DEVICE}.pem")), cert)?;
        std::fs::write(dir.join(format!("{DEVICE}.key")), key)?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca,
            relay: identity(&topology, RELAY)?,
            relay_certs: HashMap::new(),
        })
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    fn device(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{DEVICE}.pem")),
            self.dir.join(format!("{DEVICE}.key")),
        )
    }

    /// The relay's certificate and key for address `ip`.
    fn relay_for(&mut self, ip: Ipv4Addr) -> Result<(PathBuf, PathBuf)> {
        if let Some(p) = self.relay_certs.get(&ip) {
            return Ok(p.clone());
        }
        let (nb, na) = validity();
        let (cert, key) = self.ca.issue(&self.relay, &[ip.to_string()], nb, na)?;
        let paths = (
            self.dir.join(format!("{RELAY}-{ip}.pem")),
            self.dir.join(format!("{RELAY}-{ip}.key")),
        );
        std::fs::write(&paths.0, cert)?;
        std::fs::write(&paths.1, key)?;
        self.relay_certs.insert(ip, paths.clone());
        Ok(paths)
    }
}

/// A folder holding the study of one cell: the first `files` slices of the master series
/// (hard links).
struct Study {
    dir: PathBuf,
    files: usize,
    bytes: u64,
    min_file: u64,
}

impl Study {
    fn mean_file(&self) -> f64 {
        self.bytes as f64 / self.files as f64
    }
}

/// Generate the largest series needed once; each cell's study links its first n slices.
struct Fixtures {
    master: Vec<(PathBuf, u64)>,
    root: PathBuf,
    studies: HashMap<usize, Study>,
}

impl Fixtures {
    fn generate(root: &Path, n: usize, seed: u64) -> Result<Fixtures> {
        let dir = root.join("master");
        let spec = StudySpec::new("CT", seed);
        let generated = yilian_testkit::ct_series(&dir, &spec, n, 512, 512, seed)
            .context("generating the CT series")?;
        let master = generated
            .into_iter()
            .map(|g| {
                let len = std::fs::metadata(&g.path)?.len();
                Ok((g.path, len))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Fixtures {
            master,
            root: root.to_path_buf(),
            studies: HashMap::new(),
        })
    }

    fn study(&mut self, n: usize) -> Result<&Study> {
        ensure!(n <= self.master.len(), "study of {n} slices: not generated");
        if !self.studies.contains_key(&n) {
            let dir = self.root.join(format!("ct-{n}"));
            std::fs::create_dir_all(&dir)?;
            for (p, _) in &self.master[..n] {
                let name = p.file_name().ok_or_else(|| anyhow!("no file name"))?;
                std::fs::hard_link(p, dir.join(name))
                    .or_else(|_| std::fs::copy(p, dir.join(name)).map(|_| ()))?;
            }
            let sizes = self.master[..n].iter().map(|(_, l)| *l);
            let study = Study {
                dir,
                files: n,
                bytes: sizes.clone().sum(),
                min_file: sizes.min().unwrap_or(0),
            };
            self.studies.insert(n, study);
        }
        Ok(&self.studies[&n])
    }
}

/// Files (and their bytes) under `dir` of at least `min_len` bytes, with extension `ext` if
/// given.
fn count_files(dir: &Path, min_len: u64, ext: Option<&str>) -> (usize, u64) {
    let (mut n, mut bytes) = (0, 0);
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        if ext.is_some_and(|x| e.path().extension().is_none_or(|y| y != x)) {
            continue;
        }
        if let Ok(m) = e.metadata() {
            if m.len() >= min_len {
                n += 1;
                bytes += m.len();
            }
        }
    }
    (n, bytes)
}

// ---------------------------------------------------------------------------------------------
// Runs

/// What one run measured.
#[derive(Clone, Debug)]
struct Measured {
    /// Client start → exit, or the cap.
    elapsed: Duration,
    /// Stopped at the cap: `bytes` is what the server had stored by then.
    capped: bool,
    /// Study bytes delivered (all of them unless capped).
    bytes: u64,
    files: usize,
    /// When the server's folder first held every instance (polled every 100 ms).
    all_stored_at: Option<Duration>,
    /// Counters of the path during the run (fresh pair per run).
    link: PathStats,
    /// CPU time of the emulator's router thread during the run.
    router_cpu: Option<Duration>,
    /// Extra details for the log line.
    note: String,
}

impl Measured {
    /// A run's figures, with the path's counters as they are now (the client has ended).
    fn of(
        pair: &NetnsPair,
        elapsed: Duration,
        all_stored_at: Option<Duration>,
        capped: bool,
        bytes: u64,
        files: usize,
        note: String,
    ) -> Measured {
        Measured {
            elapsed,
            capped,
            bytes,
            files,
            all_stored_at,
            link: pair.stats(),
            router_cpu: pair.router_cpu_time(),
            note,
        }
    }

    fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }
    fn share(&self, cell: &Cell) -> f64 {
        self.mbps() * 1e6 / cell.rate_bps as f64
    }
}

type Outcome = std::result::Result<Measured, String>;

struct Ctx {
    bin: PathBuf,
    pki: Pki,
    cap: Duration,
    seed: u64,
    scratch: PathBuf,
    runs: usize,
}

impl Ctx {
    fn run_dir(&mut self, what: &str) -> Result<PathBuf> {
        self.runs += 1;
        let d = self.scratch.join(format!("run-{:03}-{what}", self.runs));
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }

    /// Remove a run's folder, first copying its logs to `YILIAN_BENCH_LOGS` if that is set.
    fn finish_run(&self, dir: &Path) {
        if let Some(keep) = std::env::var_os("YILIAN_BENCH_LOGS").map(PathBuf::from) {
            let name = dir
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            let to = keep.join(name);
            if std::fs::create_dir_all(&to).is_ok() {
                for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "log" || x == "json") {
                        let _ = std::fs::copy(&p, to.join(e.file_name()));
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `RUST_LOG` of a yilian process in the bench: `YILIAN_BENCH_RUST_LOG` if set.
fn rust_log(default: &str) -> String {
    std::env::var("YILIAN_BENCH_RUST_LOG").unwrap_or_else(|_| default.to_string())
}

fn make_pair(cell: &Cell, seed: u64, tcp_a: &str) -> Result<NetnsPair> {
    let link = LinkSpec::rural(cell.rate_bps, cell.rtt, cell.loss);
    let pair = NetnsPair::builder(NS_PREFIX)
        .links(link.clone(), link)
        .seed(seed)
        .congestion_control(Side::A, tcp_a)
        .congestion_control(Side::B, SERVER_TCP_CC)
        .create()
        .context("creating the namespace pair")?;
    for (side, want) in [(Side::A, tcp_a), (Side::B, SERVER_TCP_CC)] {
        let got = pair.sysctl(side, "net.ipv4.tcp_congestion_control")?;
        ensure!(
            got == want,
            "namespace {} runs TCP {got}, not {want}",
            pair.ns(side)
        );
    }
    Ok(pair)
}

/// Watch `client` until it exits or `cap` passes (then kill it), counting what the server
/// stored every `COUNT_EVERY`. Returns (elapsed, exit status if it exited, when every
/// instance was first seen stored).
fn watch(
    client: &mut Proc,
    t0: Instant,
    cap: Duration,
    want_files: usize,
    mut stored_files: impl FnMut() -> usize,
) -> Result<(Duration, Option<ExitStatus>, Option<Duration>)> {
    let mut all_at = None;
    let mut next_count = t0;
    loop {
        let status = client.try_wait()?;
        let now = t0.elapsed();
        if let Some(s) = status {
            return Ok((now, Some(s), all_at));
        }
        if now >= cap {
            client.kill();
            return Ok((cap, None, all_at));
        }
        if all_at.is_none() && Instant::now() >= next_count {
            if stored_files() >= want_files {
                all_at = Some(t0.elapsed());
            }
            next_count = Instant::now() + COUNT_EVERY;
        }
        std::thread::sleep(POLL);
    }
}

fn link_note(s: &LinkStats) -> String {
    format!(
        "{} pkts offered, {} lost (random), {} queue drops, max queue delay {} ms",
        s.offered,
        s.dropped_loss,
        s.dropped_queue,
        s.max_queue_delay.as_millis()
    )
}

fn run_yilian(ctx: &mut Ctx, cell: &Cell, study: &Study, cc: QuicCc) -> Result<Measured> {
    let dir = ctx.run_dir("yilian")?;
    let pair = make_pair(cell, ctx.seed, SERVER_TCP_CC)?;
    let listen = SocketAddr::from((pair.addr_b(), RELAY_PORT));
    let (relay_cert, relay_key) = ctx.pki.relay_for(pair.addr_b())?;
    let data = dir.join("relay-data");
    let transport = match cc.0 {
        Some(c) => format!("[transport]\ncongestion = \"{}\"\n", c.as_str()),
        None => String::new(),
    };
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{listen}\"\ndata_dir = {data:?}\n\n[tls]\ncert = {relay_cert:?}\n\
             key = {relay_key:?}\nca = {:?}\n\n{transport}",
            ctx.pki.ca()
        ),
    )?;
    let mut relay_cmd = pair.command_b(&ctx.bin);
    relay_cmd
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", rust_log("info,quinn=warn"))
        .env("NO_COLOR", "1");
    let mut relay = Proc::spawn("yilian serve", relay_cmd, &dir.join("relay.log"))?;
    relay.wait_for_log("yilian relay ready", Duration::from_secs(30))?;

    let (cert, key) = ctx.pki.device();
    let report = dir.join("send-report.json");
    let mut send_cmd = pair.command_a(&ctx.bin);
    send_cmd
        .args(["send", "--relay", &listen.to_string(), "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg("--ca")
        .arg(ctx.pki.ca())
        .arg("--report-json")
        .arg(&report);
    if let Some(c) = cc.0 {
        send_cmd.args(["--congestion", c.as_str()]);
    }
    send_cmd
        .arg(&study.dir)
        .env("RUST_LOG", rust_log("warn"))
        .env("NO_COLOR", "1");
    let objects = data.join("objects");
    let stored = || count_files(&objects, 0, Some("dcm"));

    let t0 = Instant::now();
    let mut send = Proc::spawn("yilian send", send_cmd, &dir.join("send.log"))?;
    let (elapsed, status, all_at) = watch(&mut send, t0, ctx.cap, study.files, || stored().0)?;
    let run = |capped, bytes, files, note| {
        Measured::of(&pair, elapsed, all_at, capped, bytes, files, note)
    };
    let (files, bytes) = stored();
    let m = match status {
        Some(s) => {
            ensure!(
                s.success(),
                "yilian send failed ({s})\n{}\n{}",
                send.log_tail(),
                relay.log_tail()
            );
            ensure!(
                files == study.files && bytes == study.bytes,
                "yilian send exited 0 but the relay holds {files} of {} instances ({bytes} of {} bytes)",
                study.files,
                study.bytes
            );
            let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report)?)
                .context("reading the send report")?;
            let field = |k: &str| r.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            let note = format!(
                "QUIC declared {:.2} MB lost and resent, {:.2} MB on the wire, {} connection(s)",
                field("bytes_lost_in_transit") as f64 / MB,
                field("bytes_on_wire") as f64 / MB,
                field("connections")
            );
            run(false, study.bytes, files, note)
        }
        None => run(true, bytes, files, String::new()),
    };
    drop(send);
    drop(relay);
    drop(pair);
    ctx.finish_run(&dir);
    Ok(m)
}

fn run_storescu(ctx: &mut Ctx, cell: &Cell, study: &Study, tcp: &str) -> Result<Measured> {
    let dir = ctx.run_dir(&format!("storescu-{tcp}"))?;
    let pair = make_pair(cell, ctx.seed, tcp)?;
    let out = dir.join("storescp-out");
    std::fs::create_dir_all(&out)?;
    let mut scp_cmd = pair.command_b(STORESCP);
    scp_cmd
        .env("TCP_NODELAY", "1")
        .args(["-aet", "COUNTY", "+xa", "-dhl", "-od"])
        .arg(&out)
        .arg(DICOM_PORT.to_string());
    let mut scp = Proc::spawn("storescp", scp_cmd, &dir.join("storescp.log"))?;
    scp.wait_listening(DICOM_PORT, Duration::from_secs(30))?;

    let mut scu_cmd = pair.command_a(STORESCU);
    scu_cmd
        .env("TCP_NODELAY", "1")
        .args(["-aet", "TOWNSHIP", "-aec", "COUNTY", "+sd"])
        .arg(pair.addr_b().to_string())
        .arg(DICOM_PORT.to_string())
        .arg(&study.dir);
    // storescp rewrites the file meta header: its files differ from ours by a few bytes; a
    // file still being written is smaller.
    let min_len = study.min_file * 99 / 100;
    let stored = || count_files(&out, min_len, None).0;

    let t0 = Instant::now();
    let mut scu = Proc::spawn("storescu", scu_cmd, &dir.join("storescu.log"))?;
    let (elapsed, status, all_at) = watch(&mut scu, t0, ctx.cap, study.files, stored)?;
    let run = |capped, bytes, files| {
        Measured::of(&pair, elapsed, all_at, capped, bytes, files, String::new())
    };
    let files = stored();
    let m = match status {
        Some(s) => {
            ensure!(
                s.success(),
                "storescu failed ({s})\n{}\n{}",
                scu.log_tail(),
                scp.log_tail()
            );
            ensure!(
                files == study.files,
                "storescu exited 0 but storescp stored {files} of {} instances\n{}",
                study.files,
                scp.log_tail()
            );
            run(false, study.bytes, files)
        }
        None => run(
            true,
            (files as f64 * study.mean_file()).round() as u64,
            files,
        ),
    };
    drop(scu);
    drop(scp);
    drop(pair);
    ctx.finish_run(&dir);
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_run(what: &str, cell: &Cell, study: &Study, r: &Outcome) {
    match r {
        Ok(m) => {
            let stored = match m.all_stored_at {
                Some(t) => format!("; every instance stored at {:.2} s", t.as_secs_f64()),
                None => String::new(),
            };
            let head = if m.capped {
                format!(
                    "CAPPED at {:.0} s with {} of {} instances stored ({:.1} of {:.1} MB)",
                    m.elapsed.as_secs_f64(),
                    m.files,
                    study.files,
                    m.bytes as f64 / MB,
                    study.bytes as f64 / MB
                )
            } else {
                format!(
                    "{:.1} MB ({} instances) in {:.2} s",
                    m.bytes as f64 / MB,
                    m.files,
                    m.elapsed.as_secs_f64()
                )
            };
            println!(
                "  {what:<22} {head}: {}{:.2} Mbit/s = {:.0} % of the rate{stored}",
                if m.capped { "≥ " } else { "" },
                m.mbps(),
                m.share(cell) * 100.0
            );
            let cpu = match m.router_cpu {
                Some(c) => format!(
                    "; emulator router thread {:.1} CPU s ({:.0} % of one core)",
                    c.as_secs_f64(),
                    c.as_secs_f64() * 100.0 / m.elapsed.as_secs_f64()
                ),
                None => String::new(),
            };
            println!("  {:<22} up: {}{cpu}", "", link_note(&m.link.up));
            println!(
                "  {:<22} down: {} pkts, {} lost, {} queue drops{}",
                "",
                m.link.down.offered,
                m.link.down.dropped_loss,
                m.link.down.dropped_queue,
                if m.note.is_empty() {
                    String::new()
                } else {
                    format!("; {}", m.note)
                }
            );
        }
        Err(e) => println!("  {what:<22} FAILED: {e}"),
    }
}

fn fmt_mbps(r: &Outcome) -> String {
    match r {
        Ok(m) => format!("{}{:.2}", if m.capped { "≥ " } else { "" }, m.mbps()),
        Err(_) => "err".into(),
    }
}

fn fmt_share(r: Option<&Outcome>, cell: &Cell) -> String {
    match r {
        Some(Ok(m)) => format!(
            "{}{:.0} %",
            if m.capped { "≥ " } else { "" },
            m.share(cell) * 100.0
        ),
        Some(Err(_)) => "err".into(),
        None => "—".into(),
    }
}

fn fmt_qdrops(r: Option<&Outcome>) -> String {
    match r {
        Some(Ok(m)) if m.link.up.offered > 0 => format!(
            "{:.1} %",
            m.link.up.dropped_queue as f64 * 100.0 / m.link.up.offered as f64
        ),
        Some(Ok(_)) => "0".into(),
        Some(Err(_)) => "err".into(),
        None => "—".into(),
    }
}

/// yilian ÷ storescu-BBR, with a bound sign where a side was capped.
fn ratio(y: Option<&Outcome>, b: Option<&Outcome>) -> Option<(f64, &'static str)> {
    let (Some(Ok(y)), Some(Ok(b))) = (y, b) else {
        return None;
    };
    if b.mbps() <= 0.0 {
        return None;
    }
    let sign = match (y.capped, b.capped) {
        (false, false) => "",
        (true, false) => "≥ ",
        (false, true) => "≤ ",
        (true, true) => "~ ",
    };
    Some((y.mbps() / b.mbps(), sign))
}

struct Row {
    cell: Cell,
    slices: usize,
    mb: f64,
    yilian: Vec<Outcome>,
    storescu: Vec<Outcome>,
}

fn print_table(args: &Args, rows: &[Row]) {
    let bbr = args.tcp_cc.iter().position(|t| t == "bbr");
    let mut head = String::from("| rate | RTT | loss | study |");
    let mut rule = String::from("|---:|---:|---:|---:|");
    for cc in &args.quic_cc {
        let l = cc.label();
        head.push_str(&format!(" yilian ({l}) Mbit/s | % of rate | q-drops |"));
        rule.push_str("---:|---:|---:|");
    }
    for t in &args.tcp_cc {
        head.push_str(&format!(" storescu+{} Mbit/s | % |", t.to_uppercase()));
        rule.push_str("---:|---:|");
    }
    if bbr.is_some() {
        for cc in &args.quic_cc {
            head.push_str(&format!(" yilian ({}) ÷ storescu+BBR |", cc.label()));
            rule.push_str("---:|");
        }
    }
    println!("{head}\n{rule}");
    for r in rows {
        let c = &r.cell;
        let mut line = format!(
            "| {} Mbit/s | {} ms | {} % | {} × CT, {:.1} MB |",
            num(c.mbit()),
            num(c.rtt_ms()),
            num(c.loss_pct()),
            r.slices,
            r.mb
        );
        for y in &r.yilian {
            line.push_str(&format!(
                " **{}** | {} | {} |",
                fmt_mbps(y),
                fmt_share(Some(y), c),
                fmt_qdrops(Some(y))
            ));
        }
        for s in &r.storescu {
            line.push_str(&format!(" {} | {} |", fmt_mbps(s), fmt_share(Some(s), c)));
        }
        if let Some(b) = bbr {
            for y in &r.yilian {
                match ratio(Some(y), r.storescu.get(b)) {
                    Some((x, sign)) => line.push_str(&format!(" {sign}{x:.1}× |")),
                    None => line.push_str(" — |"),
                }
            }
        }
        println!("{line}");
    }
}

/// A target's line: met or not, with the cells that decide it.
fn verdict(parts: &[String], met: bool) -> String {
    match (parts.is_empty(), met) {
        (true, _) => "no such cell in this run".to_string(),
        (false, true) => format!("MET ({})", parts.join("; ")),
        (false, false) => format!("NOT MET ({})", parts.join("; ")),
    }
}

fn print_targets(args: &Args, rows: &[Row]) {
    let bbr = args.tcp_cc.iter().position(|t| t == "bbr");
    println!("\nTargets (from the issue), per QUIC congestion controller:");
    for (i, cc) in args.quic_cc.iter().enumerate() {
        let l = cc.label();
        let share_target = |what: &str, min: f64, pick: &dyn Fn(&Cell) -> bool| {
            let mut parts = Vec::new();
            let mut met = true;
            for r in rows.iter().filter(|r| pick(&r.cell)) {
                let v = match &r.yilian[i] {
                    Ok(m) => {
                        let s = m.share(&r.cell);
                        met &= s >= min;
                        format!("{}{:.0} %", if m.capped { "≥ " } else { "" }, s * 100.0)
                    }
                    Err(_) => {
                        met = false;
                        "err".into()
                    }
                };
                parts.push(format!(
                    "{} Mbit/s {} ms: {v}",
                    num(r.cell.mbit()),
                    num(r.cell.rtt_ms())
                ));
            }
            let verdict = verdict(&parts, met);
            println!(
                "  yilian ({l}) ≥ {:.0} % of the rate {what}: {verdict}",
                min * 100.0
            );
        };
        share_target("at 120 ms RTT and 2 % loss", 0.85, &|c: &Cell| {
            c.rtt == Duration::from_millis(120) && (c.loss - 0.02).abs() < 1e-9
        });
        share_target("at 10 % loss", 0.50, &|c: &Cell| {
            (c.loss - 0.10).abs() < 1e-9
        });
        match bbr {
            None => println!(
                "  yilian ({l}) ≥ 2× storescu+BBR where loss ≥ 1 %: storescu+BBR not run (--tcp-cc)"
            ),
            Some(b) => {
                let mut parts = Vec::new();
                let mut met = true;
                for r in rows.iter().filter(|r| r.cell.loss >= 0.01 - 1e-9) {
                    match ratio(r.yilian.get(i), r.storescu.get(b)) {
                        Some((x, sign)) => {
                            met &= x >= 2.0;
                            parts.push(format!("{}: {sign}{x:.1}×", r.cell.label()));
                        }
                        None => {
                            met = false;
                            parts.push(format!("{}: err", r.cell.label()));
                        }
                    }
                }
                let verdict = verdict(&parts, met);
                println!("  yilian ({l}) ≥ 2× storescu+BBR where loss ≥ 1 %: {verdict}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up checks

fn first_line(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// DCMTK's storescu/storescp, installed through apt-get if missing (Debian: package dcmtk).
fn ensure_dcmtk() -> Result<String> {
    let present = || Path::new(STORESCU).exists() && Path::new(STORESCP).exists();
    if !present() {
        let apt = Path::new("/usr/bin/apt-get").exists();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        ensure!(
            apt && root,
            "DCMTK is missing ({STORESCU}): install it with `apt-get install -y dcmtk` and run again"
        );
        eprintln!("DCMTK is missing: apt-get install -y dcmtk …");
        let ok = Command::new("apt-get")
            .args(["install", "-y", "dcmtk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ensure!(
            ok && present(),
            "could not install DCMTK: run `apt-get update && apt-get install -y dcmtk` and run again"
        );
    }
    let v = Command::new(STORESCU).arg("--version").output()?;
    Ok(first_line(&v))
}

fn yilian_bin() -> Result<PathBuf> {
    let p = std::env::var_os("YILIAN_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_yilian")));
    ensure!(
        p.exists(),
        "{} is missing: run this bench through `cargo bench --bench rural_links`, which builds it",
        p.display()
    );
    Ok(p)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let args = parse_args()?;
    NetnsPair::check_requirements().context("this bench builds network namespaces")?;
    let dcmtk = ensure_dcmtk()?;
    let bin = yilian_bin()?;
    // Namespaces left by a killed run of this bench.
    yilian_linkem::netns::cleanup_stale(NS_PREFIX);

    let base = scratch_base()?;
    let scratch = tempfile::Builder::new()
        .prefix("yilian-rural-links-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a scratch folder in {}", base.display()))?;

    let max_slices = args
        .cells
        .iter()
        .map(|c| c.slices(args.link_seconds))
        .max()
        .unwrap_or(4);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let host_cc =
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control").unwrap_or_default();
    let runs_per_cell = args.quic_cc.len() + args.tcp_cc.len();
    println!("rural_links: yilian QUIC vs DCMTK storescu → storescp over the same emulated path");
    println!(
        "  {} cell(s) × {runs_per_cell} run(s); study ≈ {} s of link time per cell (≥ 4 CT slices \
         of 512×512); runs capped at {:.0} s; link seed {}",
        args.cells.len(),
        num(args.link_seconds),
        args.cap.as_secs_f64(),
        args.seed
    );
    println!(
        "  yilian: {} (QUIC controller(s): {}); DCMTK: {dcmtk}",
        bin.display(),
        args.quic_cc
            .iter()
            .map(QuicCc::label)
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "  kernel {} (host TCP default {}); storescu runs with TCP {} in the sender namespace, \
         {SERVER_TCP_CC} in the server namespace; yilian runs with {SERVER_TCP_CC} in both",
        kernel.trim(),
        host_cc.trim(),
        if args.tcp_cc.is_empty() {
            "(none)".to_string()
        } else {
            args.tcp_cc.join(" / ")
        }
    );
    println!(
        "  scratch {} ({}); load average {}",
        scratch.path().display(),
        fs_type(scratch.path()).unwrap_or_else(|| "?".into()),
        loadavg()
    );
    let started = Instant::now();
    let mut fixtures = Fixtures::generate(&scratch.path().join("fixtures"), max_slices, 7)?;
    println!(
        "  generated {max_slices} CT slices in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut ctx = Ctx {
        bin,
        pki: Pki::new(&scratch.path().join("pki"))?,
        cap: args.cap,
        seed: args.seed,
        scratch: scratch.path().to_path_buf(),
        runs: 0,
    };

    let mut rows = Vec::new();
    for (i, cell) in args.cells.iter().enumerate() {
        let slices = cell.slices(args.link_seconds);
        let study = fixtures.study(slices)?;
        println!(
            "\n[{}/{}] {}: {} CT slices, {:.1} MB (load average {})",
            i + 1,
            args.cells.len(),
            cell.label(),
            slices,
            study.bytes as f64 / MB,
            loadavg()
        );
        let mut row = Row {
            cell: *cell,
            slices,
            mb: study.bytes as f64 / MB,
            yilian: Vec::new(),
            storescu: Vec::new(),
        };
        for cc in &args.quic_cc {
            let r = run_yilian(&mut ctx, cell, study, *cc).map_err(|e| format!("{e:#}"));
            print_run(&format!("yilian ({})", cc.label()), cell, study, &r);
            row.yilian.push(r);
        }
        for tcp in &args.tcp_cc {
            let r = run_storescu(&mut ctx, cell, study, tcp).map_err(|e| format!("{e:#}"));
            print_run(&format!("storescu+{}", tcp.to_uppercase()), cell, study, &r);
            row.storescu.push(r);
        }
        rows.push(row);
    }

    println!(
        "\nSummary ({} cells, {:.1} min): goodput = study bytes / client wall time (start → exit); \
         \"≥\" = stopped at the {:.0} s cap, bytes stored by then / cap; % of rate = of the \
         bottleneck rate (IP packets); q-drops = yilian's packets tail-dropped at the bottleneck \
         queue / packets it offered upstream. yilian's acknowledgements mean hash-verified and \
         fsync'ed; storescp does not fsync.\n",
        rows.len(),
        started.elapsed().as_secs_f64() / 60.0,
        args.cap.as_secs_f64()
    );
    print_table(&args, &rows);
    print_targets(&args, &rows);
    println!(
        "\n(field notes, 20 Mbit/s, 120 ms, 2 %: storescu ≈ 1 Mbit/s with CUBIC, ≈ 9 with BBR; \
         iperf3 TCP BBR ≈ 17)"
    );
    let failed = rows
        .iter()
        .flat_map(|r| r.yilian.iter().chain(r.storescu.iter()))
        .filter(|r| r.is_err())
        .count();
    drop(ctx);
    drop(scratch);
    ensure!(failed == 0, "{failed} run(s) failed (see above)");
    Ok(())
}
