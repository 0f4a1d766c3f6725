//! **Urgent first** on a thin township uplink, end to end with real processes: with a backlog
//! of routine DX studies uploading from township-a, a stroke CT (CT, Body Part Examined HEAD:
//! urgent by the example topology's `stroke-ct` rule) is queued by a second `yilian send`.
//! Issue requirement: "the urgent study starts within one RTT of being queued and gets most of
//! the link until it is done". This bench measures and prints the figures next to those
//! targets; it has no thresholds.
//!
//! ```text
//! cargo bench --bench urgent_first                    # 20 Mbit/s, 120 ms, 1 %: ≈ 1 min
//! cargo bench --bench urgent_first -- --quick         # smaller backlog and study: ≈ 30 s
//! cargo bench --bench urgent_first -- --rate 10 --rtt 300 --loss 2 --seed 3
//! cargo bench --bench urgent_first -- --urgent-flag   # also mark the study `send --urgent`
//! ```
//! `-- --help` lists every option. `YILIAN_BENCH_DIR` picks the scratch folder (never a
//! tmpfs); `YILIAN_BENCH_LOGS=DIR` keeps every run's logs (relay, both senders, send reports).
//!
//! **The path.** The real `yilian` binary: `yilian serve` on loopback with a throw-away alliance
//! CA, reached through `yilian-linkem`'s seeded UDP link emulator (`UdpProxy`) with
//! `LinkSpec::rural(rate, rtt, loss)` in both directions (one-way delay RTT/2, random loss each
//! way, a one-BDP tail-drop queue at the bottleneck). Both senders share that one emulated
//! uplink, as two devices of one township share theirs. Every `yilian send` is a new process
//! (identity `township-a-device`) and a new QUIC connection.
//!
//! **Two runs**, each on a fresh relay and a fresh link with the same seed:
//! * **alone** (the reference): the urgent study on the idle link.
//! * **with backlog**: `send` of ≈ 72 MB of routine DX images (9 × 2000×2000, 16 bit); once
//!   10 % of it is at the relay, `send` of the urgent study (40 CT slices of 512×512, ≈ 21 MB).
//!   The run ends when both have exited.
//!
//! **What is measured.** The relay's spool is polled every `--poll-ms` (2 ms; the achieved
//! mean and worst interval are printed): for each fixture its partial file (`partial/` +
//! BLAKE3 of site, NUL, SOP UID + `.part`) or stored object (`objects/xx/BLAKE3.dcm`), so the
//! bench knows, per study, how many bytes have landed at the relay at every poll. The relay
//! runs with `RUST_LOG=…,yilian_relay=debug` and the urgent `send` with
//! `yilian_client=debug`; their log lines carry microsecond wall-clock timestamps (same clock
//! as this process), from which the protocol events below are read. Times are from the urgent
//! `send` process start ("queued"):
//! * **(a) handshake**: start → the sender's first packet reaches the link emulator (a new
//!   flow, polled with the spool: process start, file inspection, TLS set-up), → the relay
//!   logs "peer connected" for the new connection, and → the relay logs `accepted` for the
//!   first urgent offer. This is the cost of a new process and connection (QUIC + TLS 1.3
//!   handshake: floor ≈ 1.5 RTT until the client's Finished and first offer reach the relay;
//!   more when a handshake packet is lost or waits in the bottleneck queue).
//! * **(b) start of the urgent data**: relay `accepted` → the first urgent byte in the spool,
//!   in ms and in RTTs — "starts within one RTT". Floor: 1 RTT (the Accept travels to the
//!   sender, its data back). Split into relay accept → the sender logs `accepted`, and that →
//!   first byte at the relay (half an RTT plus the time in the bottleneck queue behind
//!   whatever is already queued). Also: relay accept → the relay's first "routine upload
//!   paused" (urgency by rule is known once the urgent instance's header has arrived and been
//!   routed; with `--urgent-flag` at the offer), that → the routine sender logs "paused" (it
//!   then resets its streams), and the first urgent byte → the last routine byte landing
//!   before routine bytes stop for at least max(4 RTT, 0.5 s).
//! * **urgent completion**: start → `send` exits 0 (every instance hash-verified and committed
//!   by the relay), with the backlog vs alone (ratio); and the upload window, first → last
//!   urgent byte at the relay, with the goodput in it.
//! * **urgent share of the link** = urgent bytes / (urgent + routine bytes) that landed at the
//!   relay during the urgent upload window — "gets most of the link" (a fair share between
//!   the two senders would be ≈ 50 %; alone it is 100 % by definition).
//! * **routine backlog**: its exit status (it must complete, after the urgent study), its wall
//!   time, its paused span (relay log: first "routine upload paused" → the "upload continues"
//!   after the last urgent instance was stored), and how often (and how long in all) the relay
//!   let it continue while urgent instances were still missing (the count of urgent uploads
//!   of the site fell to zero between two instances of the study).
//! * a per-second timeline of the run with the backlog (urgent and routine Mbit/s landing at the
//!   relay) and the link emulator's counters (losses, queue drops, longest queue delay).
//!
//! Every child process is killed when the bench ends or fails (also if this process dies:
//! `PR_SET_PDEATHSIG`), and the scratch folder is removed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use yilian_linkem::{LinkSpec, LinkStats, PathStats, UdpProxy};
use yilian_route::Topology;
use yilian_testkit::{ct_series, dx_image, Generated, StudySpec};
use yilian_transport::DevCa;

mod common;
use common::proc::Proc;
use common::{fs_type, identity, scratch_base};

const MB: f64 = 1e6;
const DEVICE: &str = "township-a-device";
const SITE: &str = "township-a";
const RELAY: &str = "county-relay";
/// Bytes of one generated DX image of `side`×`side` 16-bit pixels (pixels only; the header
/// adds a few KB).
fn dx_bytes(side: u16) -> f64 {
    f64::from(side) * f64::from(side) * 2.0
}

const USAGE: &str = "\
usage: cargo bench --bench urgent_first -- [--quick] [--rate MBIT] [--rtt MS] [--loss PCT]
           [--backlog-mb MB] [--urgent-slices N] [--start-at PCT] [--seed N] [--poll-ms MS]
           [--cap-s S] [--urgent-flag]
  (default)          20 Mbit/s, 120 ms RTT, 1 % loss each way; backlog ≈ 72 MB of DX
                     (9 × 2000×2000); urgent stroke CT: 40 slices 512×512, ≈ 21 MB (≈ 1 min)
  --quick            backlog ≈ 40 MB (5 DX), urgent study of 20 slices (≈ 30 s)
  --rate MBIT        bottleneck rate, both directions (default 20)
  --rtt MS           round-trip time (default 120)
  --loss PCT         random loss per direction (default 1)
  --backlog-mb MB    routine backlog size, in 2000×2000 DX images of ≈ 8 MB (default 72)
  --urgent-slices N  CT slices of the urgent study, 512×512, ≈ 525 KB each (default 40)
  --start-at PCT     queue the urgent study once this share of the backlog is at the relay (10)
  --seed N           seed of the link emulator (both runs; default 1)
  --poll-ms MS       spool polling interval (default 2)
  --cap-s S          a run is stopped (and the bench fails) after S seconds (default 240)
  --urgent-flag      also pass `send --urgent` (urgent at the offer, before any byte is routed)
environment: YILIAN_BENCH_DIR (scratch folder), YILIAN_BENCH_LOGS=DIR (keep the logs)";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Clone)]
struct Args {
    rate_bps: u64,
    rtt: Duration,
    /// Random loss per direction, 0..1.
    loss: f64,
    backlog_mb: f64,
    urgent_slices: usize,
    /// Share of the backlog at the relay when the urgent study is queued, 0..1.
    start_at: f64,
    seed: u64,
    poll: Duration,
    cap: Duration,
    urgent_flag: bool,
    quick: bool,
}

/// Side of the routine DX images.
const DX_SIDE: u16 = 2000;

impl Args {
    fn rtt_ms(&self) -> f64 {
        self.rtt.as_secs_f64() * 1e3
    }
    fn mbit(&self) -> f64 {
        self.rate_bps as f64 / 1e6
    }
    fn dx_count(&self) -> usize {
        ((self.backlog_mb * MB / dx_bytes(DX_SIDE)).round() as usize).max(2)
    }
    fn link(&self) -> LinkSpec {
        LinkSpec::rural(self.rate_bps, self.rtt, self.loss)
    }
    fn label(&self) -> String {
        format!(
            "{} Mbit/s, {} ms RTT, {} % loss each way, seed {}",
            num(self.mbit()),
            num(self.rtt_ms()),
            num(self.loss * 100.0),
            self.seed
        )
    }
}

/// A number without trailing zeros (2, 0.5, 120).
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn parse_args() -> Result<Args> {
    let mut quick = false;
    let mut rate_mbit = 20.0_f64;
    let mut rtt_ms = 120.0_f64;
    let mut loss_pct = 1.0_f64;
    let mut backlog_mb: Option<f64> = None;
    let mut urgent_slices: Option<usize> = None;
    let mut start_pct = 10.0_f64;
    let mut seed = 1_u64;
    let mut poll_ms = 2.0_f64;
    let mut cap_s = 240.0_f64;
    let mut urgent_flag = false;
    let mut flags = common::Flags::new(USAGE);
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(&flag, inline.clone());
        fn number(flag: &str, s: String) -> Result<f64> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| anyhow!("{flag}: {s:?} is not a number ≥ 0"))
        }
        match flag.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--quick" => quick = true,
            "--urgent-flag" => urgent_flag = true,
            "--rate" => rate_mbit = number("--rate", value()?)?,
            "--rtt" => rtt_ms = number("--rtt", value()?)?,
            "--loss" => loss_pct = number("--loss", value()?)?,
            "--backlog-mb" => backlog_mb = Some(number("--backlog-mb", value()?)?),
            "--urgent-slices" => urgent_slices = Some(value()?.parse().context("--urgent-slices")?),
            "--start-at" => start_pct = number("--start-at", value()?)?,
            "--seed" => seed = value()?.parse().context("--seed")?,
            "--poll-ms" => poll_ms = number("--poll-ms", value()?)?,
            "--cap-s" => cap_s = number("--cap-s", value()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {} // a `cargo bench -- FILTER` word: nothing to filter here
        }
    }
    let args = Args {
        rate_bps: (rate_mbit * 1e6).round() as u64,
        rtt: Duration::from_secs_f64(rtt_ms / 1e3),
        loss: loss_pct / 100.0,
        backlog_mb: backlog_mb.unwrap_or(if quick { 40.0 } else { 72.0 }),
        urgent_slices: urgent_slices.unwrap_or(if quick { 20 } else { 40 }),
        start_at: start_pct / 100.0,
        seed,
        poll: Duration::from_secs_f64(poll_ms / 1e3),
        cap: Duration::from_secs_f64(cap_s),
        urgent_flag,
        quick,
    };
    common::check_link(args.rate_bps, args.rtt, args.loss)?;
    ensure!(
        (1.0..=10_000.0).contains(&args.backlog_mb),
        "--backlog-mb: 1 ≤ MB ≤ 10000"
    );
    ensure!(
        (1..=2000).contains(&args.urgent_slices),
        "--urgent-slices: 1 ≤ N ≤ 2000"
    );
    ensure!(
        args.start_at > 0.0 && args.start_at < 1.0,
        "--start-at: 0 < PCT < 100"
    );
    ensure!(
        (0.5..=100.0).contains(&poll_ms),
        "--poll-ms: 0.5 ≤ MS ≤ 100"
    );
    ensure!((10.0..=7200.0).contains(&cap_s), "--cap-s: 10 ≤ S ≤ 7200");
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Child processes

// ---------------------------------------------------------------------------------------------
// PKI, fixtures

/// A throw-away alliance CA with certificates for the device and the relay (for 127.0.0.1).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let topology = Topology::example();
        let ca = DevCa::generate("urgent first bench").context("generating a CA")?;
        std::fs::write(dir.join("ca.pem"), ca.ca_pem())?;
        let now = time::OffsetDateTime::now_utc();
        let (nb, na) = (
            now - time::Duration::hours(1),
            now + time::Duration::days(2),
        );
        let relay_names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        for (name, dns) in [(DEVICE, Vec::new()), (RELAY, relay_names)] {
            let id = identity(&topology, name)?;
            let (cert, key) = ca
                .issue(&id, &dns, nb, na)
                .with_context(|| format!("issuing a certificate for {name}"))?;
            std::fs::write(dir.join(format!("{name}.pem")), cert)?;
            std::fs::write(dir.join(format!("{name}.key")), key)?;
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
        })
    }
    fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }
    fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

/// A generated study: its folder and files.
struct Study {
    dir: PathBuf,
    files: Vec<Generated>,
}

impl Study {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|g| g.size).sum()
    }
    fn sops(&self) -> HashSet<String> {
        self.files
            .iter()
            .map(|g| g.sop_instance_uid.clone())
            .collect()
    }
}

/// The routine backlog: `n` DX images of 2000×2000, one study each.
fn routine_backlog(dir: &Path, n: usize) -> Result<Study> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = (0..n as u64)
        .map(|i| {
            let seed = 300 + i;
            dx_image(
                &dir.join(format!("dx{i:02}.dcm")),
                &StudySpec::new("DX", seed),
                DX_SIDE,
                DX_SIDE,
                seed,
            )
            .with_context(|| format!("generating DX image {i}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Study {
        dir: dir.to_path_buf(),
        files,
    })
}

/// The urgent study: a head CT from a township (urgent by the `stroke-ct` rule).
fn stroke_ct(dir: &Path, slices: usize) -> Result<Study> {
    let mut head = StudySpec::new("CT", 99);
    head.body_part = Some("HEAD".into());
    let files =
        ct_series(dir, &head, slices, 512, 512, 99).context("generating the stroke CT series")?;
    Ok(Study {
        dir: dir.to_path_buf(),
        files,
    })
}

/// The example topology must make a township head CT urgent, or this bench measures nothing.
fn check_stroke_rule() -> Result<String> {
    let t = Topology::example();
    let d = t
        .route(&yilian_route::RouteInput {
            source_site: SITE,
            modality: Some("CT"),
            sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.2"),
            body_part: Some("HEAD"),
            requested_priority: yilian_route::Priority::default(),
        })
        .context("routing a township head CT with the example topology")?;
    ensure!(
        d.priority >= yilian_route::Priority::Urgent,
        "the example topology does not make a township head CT urgent (priority {:?})",
        d.priority
    );
    Ok(format!(
        "a CT with Body Part Examined HEAD from {SITE} is urgent by the example topology \
         (matching rules: {})",
        d.rules.join(", ")
    ))
}

// ---------------------------------------------------------------------------------------------
// The relay's spool, polled

/// Bytes of a set of fixtures at the relay: for each, its stored object (named by its BLAKE3)
/// or its partial upload (named by BLAKE3 of site, NUL, SOP Instance UID). Per file the
/// largest length seen is kept, so that a commit (rename from partial/ to objects/ between
/// the two stats) never shows as a drop.
struct Tracker {
    files: Vec<Tracked>,
}

struct Tracked {
    object: PathBuf,
    partial: PathBuf,
    size: u64,
    seen: u64,
    exists: bool,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Tracker {
    fn new(data: &Path, site: &str, files: &[Generated]) -> Tracker {
        let files = files
            .iter()
            .map(|g| {
                let h = hex(&g.blake3);
                let mut key = blake3::Hasher::new();
                key.update(site.as_bytes());
                key.update(&[0]);
                key.update(g.sop_instance_uid.as_bytes());
                Tracked {
                    object: data.join("objects").join(&h[..2]).join(format!("{h}.dcm")),
                    partial: data
                        .join("partial")
                        .join(format!("{}.part", key.finalize().to_hex())),
                    size: g.size,
                    seen: 0,
                    exists: false,
                }
            })
            .collect();
        Tracker { files }
    }

    /// Bytes at the relay now.
    fn poll(&mut self) -> u64 {
        let mut sum = 0;
        for f in &mut self.files {
            if f.seen < f.size {
                let len = std::fs::metadata(&f.object)
                    .or_else(|_| std::fs::metadata(&f.partial))
                    .map(|m| m.len());
                if let Ok(len) = len {
                    f.exists = true;
                    f.seen = f.seen.max(len.min(f.size));
                }
            }
            sum += f.seen;
        }
        sum
    }

    /// Whether any of the files has appeared (an upload was accepted: the partial is opened
    /// just before the relay answers the offer).
    fn any_exists(&self) -> bool {
        self.files.iter().any(|f| f.exists)
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// A log line with its timestamp (tracing's default format: `2025-01-02T03:04:05.123456Z`).
struct LogLine {
    at: SystemTime,
    text: String,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    let digits: String = frac.chars().take(9).collect();
    let nanos = digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32);
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

fn read_log(path: &Path) -> Vec<LogLine> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (ts, _) = l.split_once(' ')?;
            Some(LogLine {
                at: parse_timestamp(ts)?,
                text: l.to_string(),
            })
        })
        .collect()
}

/// The SOP Instance UID of a log line (`sop_uid=…`), if any.
fn sop_of(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find_map(|t| t.strip_prefix("sop_uid="))
}

fn has_word(text: &str, word: &str) -> bool {
    text.split_whitespace().any(|t| t == word)
}

/// `at − base` in ms (negative if before).
fn ms_since(at: SystemTime, base: SystemTime) -> f64 {
    match at.duration_since(base) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => -e.duration().as_secs_f64() * 1e3,
    }
}

// ---------------------------------------------------------------------------------------------
// Runs

struct Ctx {
    args: Args,
    bin: PathBuf,
    pki: Pki,
    scratch: PathBuf,
    rt: tokio::runtime::Runtime,
}

/// A relay process with its data folder and listening address.
struct Relay {
    proc: Proc,
    addr: SocketAddr,
    data: PathBuf,
}

fn start_relay(ctx: &Ctx, dir: &Path) -> Result<Relay> {
    let data = dir.join("relay-data");
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\n\n[tls]\ncert = {:?}\nkey = {:?}\n\
             ca = {:?}\n",
            ctx.pki.cert(RELAY),
            ctx.pki.key(RELAY),
            ctx.pki.ca()
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let mut cmd = Command::new(&ctx.bin);
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info,yilian_relay=debug,quinn=warn")
        .env("NO_COLOR", "1");
    let mut proc = Proc::spawn("yilian serve", cmd, &dir.join("relay.log"))?;
    let ready = proc.wait_for_log("yilian relay ready", Duration::from_secs(30))?;
    let addr = ready
        .split_whitespace()
        .find_map(|t| t.strip_prefix("listen="))
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or_else(|| anyhow!("no listen=ADDR in the relay's ready line: {ready}"))?;
    Ok(Relay { proc, addr, data })
}

fn start_link(ctx: &Ctx, relay: &Relay) -> Result<UdpProxy> {
    let link = ctx.args.link();
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    ctx.rt
        .block_on(UdpProxy::start(
            listen,
            relay.addr,
            link.clone(),
            link,
            ctx.args.seed,
        ))
        .context("starting the UDP link emulator")
}

fn send_cmd(ctx: &Ctx, via: SocketAddr, study: &Study, report: &Path, log: &str) -> Command {
    let mut c = Command::new(&ctx.bin);
    c.arg("send")
        .args(["--relay", &via.to_string()])
        .arg("--cert")
        .arg(ctx.pki.cert(DEVICE))
        .arg("--key")
        .arg(ctx.pki.key(DEVICE))
        .arg("--ca")
        .arg(ctx.pki.ca())
        .args(["--give-up-after", "120s"])
        .arg("--report-json")
        .arg(report)
        .arg(&study.dir)
        .env("RUST_LOG", log)
        .env("NO_COLOR", "1");
    c
}

/// One poll of the spool.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Since the urgent `send` started (negative: before).
    t: f64,
    urgent: u64,
    routine: u64,
}

/// What one run measured. Times are seconds since the urgent `send` started.
struct Outcome {
    /// Polls while the urgent study was uploading (for the resolution).
    polls: usize,
    poll_span: f64,
    poll_max_gap: f64,
    samples: Vec<Sample>,
    /// The urgent sender's first packet reached the link emulator (a new flow).
    first_packet_at: Option<f64>,
    partial_at: Option<f64>,
    first_byte_at: Option<f64>,
    all_at: Option<f64>,
    urgent_exit: f64,
    /// From the logs, ms since the urgent `send` started.
    relay_connected_ms: Option<f64>,
    relay_accepted_ms: Option<f64>,
    client_accepted_ms: Option<f64>,
    relay_held_ms: Option<f64>,
    client_paused_ms: Option<f64>,
    /// The "upload continues" that ended the pause for good (after the last urgent instance
    /// was stored).
    relay_final_continue_ms: Option<f64>,
    /// Times the relay let the routine uploads continue while urgent instances were still
    /// missing, and how long in all until it held them again.
    early_resumes: usize,
    early_resumed_ms: f64,
    last_urgent_stored_ms: Option<f64>,
    urgent_report: String,
    routine: Option<RoutineOutcome>,
    link: PathStats,
}

struct RoutineOutcome {
    total: u64,
    /// Routine `send` start → exit, seconds.
    elapsed: f64,
    /// Relative to the urgent `send` start, seconds.
    exit_at: f64,
    pause_lines: usize,
    report: String,
}

impl Outcome {
    /// The sample at or just after `t`.
    fn at(&self, t: f64) -> Option<Sample> {
        self.samples.iter().copied().find(|s| s.t >= t)
    }
    /// (urgent bytes, routine bytes) that landed from the first to the last urgent byte.
    fn window(&self) -> Option<(u64, u64, f64)> {
        let (a, b) = (self.first_byte_at?, self.all_at?);
        let (sa, sb) = (self.at(a)?, self.at(b)?);
        Some((
            sb.urgent.saturating_sub(sa.urgent),
            sb.routine.saturating_sub(sa.routine),
            b - a,
        ))
    }
    fn share(&self) -> Option<f64> {
        let (u, r, _) = self.window()?;
        (u + r > 0).then(|| u as f64 / (u + r) as f64)
    }
    fn goodput_mbps(&self) -> Option<f64> {
        let (u, _, dt) = self.window()?;
        (dt > 0.0).then(|| u as f64 * 8.0 / dt / 1e6)
    }
    /// Seconds from the first urgent byte until routine bytes stop landing at the relay: the
    /// last routine growth before the first gap of at least `quiet` seconds without any.
    fn routine_stops_after(&self, quiet: f64) -> Option<f64> {
        let (a, b) = (self.first_byte_at?, self.all_at?);
        let mut last = self.at(a)?;
        for s in self.samples.iter().filter(|s| s.t >= a && s.t <= b) {
            if s.routine > last.routine {
                last = *s;
            } else if s.t - last.t >= quiet {
                return Some((last.t - a).max(0.0));
            }
        }
        None
    }
    fn accepted_to_first_byte_ms(&self) -> Option<f64> {
        Some(self.first_byte_at? * 1e3 - self.relay_accepted_ms?)
    }
}

fn report_note(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return "no report".into();
    };
    let Ok(r) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return "unreadable report".into();
    };
    let field = |k: &str| r.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    format!(
        "{} connection(s), QUIC declared {:.2} MB lost and resent, {:.1} MB on the wire",
        field("connections"),
        field("bytes_lost_in_transit") as f64 / MB,
        field("bytes_on_wire") as f64 / MB
    )
}

/// One run: a fresh relay and link; with `routine`, the backlog first, then the urgent study
/// once `start_at` of it is at the relay; without, the urgent study alone.
fn run(ctx: &Ctx, name: &str, urgent: &Study, routine: Option<&Study>) -> Result<Outcome> {
    let args = &ctx.args;
    let dir = ctx.scratch.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let relay = start_relay(ctx, &dir)?;
    let link = start_link(ctx, &relay)?;
    let via = link.local_addr();
    let mut ut = Tracker::new(&relay.data, SITE, &urgent.files);
    let mut rt = routine.map(|s| Tracker::new(&relay.data, SITE, &s.files));
    let urgent_total = urgent.bytes();
    let routine_total = routine.map_or(0, Study::bytes);

    let base = Instant::now();
    let mut samples: Vec<(f64, u64, u64)> = Vec::new();
    let mut routine_proc = match routine {
        Some(s) => {
            let cmd = send_cmd(
                ctx,
                via,
                s,
                &dir.join("routine-report.json"),
                "warn,yilian_client=info",
            );
            Some(Proc::spawn(
                "yilian send (routine)",
                cmd,
                &dir.join("routine-send.log"),
            )?)
        }
        None => None,
    };
    // Wait for `start_at` of the backlog at the relay.
    if let (Some(p), Some(t)) = (routine_proc.as_mut(), rt.as_mut()) {
        let want = (routine_total as f64 * args.start_at) as u64;
        loop {
            let r = t.poll();
            samples.push((base.elapsed().as_secs_f64(), 0, r));
            if r >= want {
                break;
            }
            if let Some(s) = p.try_wait()? {
                bail!(
                    "the routine send ended ({s}) before {:.0} % of it was at the relay\n{}\n{}",
                    args.start_at * 100.0,
                    p.log_tail(),
                    relay.proc.log_tail()
                );
            }
            ensure!(
                base.elapsed() < args.cap,
                "{:.0} % of the backlog not at the relay after {:?}\n{}\n{}",
                args.start_at * 100.0,
                args.cap,
                p.log_tail(),
                relay.proc.log_tail()
            );
            std::thread::sleep(args.poll);
        }
    }

    let mut cmd = send_cmd(
        ctx,
        via,
        urgent,
        &dir.join("urgent-report.json"),
        "warn,yilian_client=debug",
    );
    if args.urgent_flag {
        cmd.arg("--urgent");
    }
    let flows_before = link.flows();
    let u0_sys = SystemTime::now();
    let u0 = base.elapsed().as_secs_f64();
    let mut urgent_proc = Proc::spawn("yilian send (urgent)", cmd, &dir.join("urgent-send.log"))?;

    let (mut partial_at, mut first_byte_at, mut all_at) = (None, None, None);
    let mut first_packet_at = None;
    let mut urgent_exit: Option<(f64, ExitStatus)> = None;
    let mut routine_exit: Option<(f64, ExitStatus)> = None;
    let (mut polls, mut last_poll, mut max_gap, mut first_poll) = (0usize, None, 0.0_f64, None);
    loop {
        let now = base.elapsed().as_secs_f64();
        let u = ut.poll();
        let r = rt.as_mut().map_or(0, Tracker::poll);
        samples.push((now, u, r));
        let since = now - u0;
        if urgent_exit.is_none() {
            polls += 1;
            first_poll.get_or_insert(now);
            if let Some(l) = last_poll {
                max_gap = max_gap.max(now - l);
            }
            last_poll = Some(now);
        }
        if first_packet_at.is_none() && link.flows() > flows_before {
            first_packet_at = Some(since);
        }
        if partial_at.is_none() && ut.any_exists() {
            partial_at = Some(since);
        }
        if first_byte_at.is_none() && u > 0 {
            first_byte_at = Some(since);
        }
        if all_at.is_none() && u >= urgent_total {
            all_at = Some(since);
        }
        if urgent_exit.is_none() {
            if let Some(s) = urgent_proc.try_wait()? {
                urgent_exit = Some((since, s));
                ensure!(
                    s.success(),
                    "the urgent send failed ({s})\n{}\n{}",
                    urgent_proc.log_tail(),
                    relay.proc.log_tail()
                );
            }
        }
        if let Some(p) = routine_proc.as_mut() {
            if routine_exit.is_none() {
                if let Some(s) = p.try_wait()? {
                    routine_exit = Some((since, s));
                    ensure!(
                        s.success(),
                        "the routine send failed ({s})\n{}\n{}",
                        p.log_tail(),
                        relay.proc.log_tail()
                    );
                }
            }
        }
        if urgent_exit.is_some() && (routine_proc.is_none() || routine_exit.is_some()) {
            break;
        }
        ensure!(
            now < args.cap.as_secs_f64(),
            "the run did not end within {:?} (urgent {}, routine {})\n{}\n{}",
            args.cap,
            if urgent_exit.is_some() {
                "done"
            } else {
                "running"
            },
            if routine_exit.is_some() {
                "done"
            } else {
                "running"
            },
            urgent_proc.log_tail(),
            relay.proc.log_tail()
        );
        // Fine-grained while the urgent study uploads; coarser while only the backlog is left.
        std::thread::sleep(if urgent_exit.is_none() {
            args.poll
        } else {
            Duration::from_millis(20)
        });
    }
    let (urgent_exit, _) = urgent_exit.ok_or_else(|| anyhow!("no urgent exit"))?;
    ensure!(
        all_at.is_some(),
        "the urgent send exited 0 but the relay's spool does not hold the whole study"
    );
    let link_stats = link.stats();
    // The polled byte counts, for a closer look (kept with YILIAN_BENCH_LOGS).
    let csv: String = std::iter::once("t_since_urgent_start_s,urgent_bytes,routine_bytes\n".into())
        .chain(
            samples
                .iter()
                .map(|(t, u, r)| format!("{:.4},{u},{r}\n", t - u0)),
        )
        .collect();
    let _ = std::fs::write(dir.join("spool-samples.csv"), csv);

    // Logs.
    let relay_log = read_log(&relay.proc.log);
    let urgent_log = read_log(&urgent_proc.log);
    let usops = urgent.sops();
    let is_urgent = |l: &&LogLine| sop_of(&l.text).is_some_and(|s| usops.contains(s));
    let after_start = |l: &&LogLine| l.at >= u0_sys;
    let rel = |l: &LogLine| ms_since(l.at, u0_sys);
    let relay_connected_ms = relay_log
        .iter()
        .filter(after_start)
        .find(|l| l.text.contains("peer connected"))
        .map(rel);
    let first_accept = relay_log
        .iter()
        .filter(is_urgent)
        .find(|l| has_word(&l.text, "accepted"));
    let relay_accepted_ms = first_accept.map(rel);
    // The sender's `accepted` for the same instance.
    let client_accepted_ms = first_accept
        .and_then(|a| sop_of(&a.text))
        .and_then(|sop| {
            urgent_log
                .iter()
                .find(|l| has_word(&l.text, "accepted") && sop_of(&l.text) == Some(sop))
        })
        .map(rel);
    let last_urgent_stored = relay_log
        .iter()
        .rev()
        .filter(is_urgent)
        .find(|l| l.text.contains("instance stored"));
    let last_urgent_stored_ms = last_urgent_stored.map(rel);
    let held: Vec<&LogLine> = relay_log
        .iter()
        .filter(after_start)
        .filter(|l| l.text.contains("routine upload paused"))
        .collect();
    let relay_held_ms = held.first().map(|l| rel(l));
    // Hold and continue events of the routine uploads (one line per upload; the uploads of
    // one decision are logged within microseconds of each other).
    let transitions: Vec<(SystemTime, bool)> = relay_log
        .iter()
        .filter(after_start)
        .filter_map(|l| {
            if l.text.contains("routine upload paused") {
                Some((l.at, true))
            } else if l.text.contains("upload continues") {
                Some((l.at, false))
            } else {
                None
            }
        })
        .collect();
    let relay_final_continue_ms = transitions
        .iter()
        .find(|(at, held)| !held && last_urgent_stored.is_some_and(|s| *at >= s.at))
        .map(|(at, _)| ms_since(*at, u0_sys));
    let (mut early_resumes, mut early_resumed_ms) = (0usize, 0.0_f64);
    let mut resumed_at: Option<SystemTime> = None;
    for (at, held) in &transitions {
        if last_urgent_stored.is_none_or(|s| *at >= s.at) {
            break;
        }
        match (held, resumed_at) {
            (false, None) => {
                early_resumes += 1;
                resumed_at = Some(*at);
            }
            (true, Some(r)) => {
                early_resumed_ms += ms_since(*at, r);
                resumed_at = None;
            }
            _ => {}
        }
    }

    let routine_out = match (routine, routine_proc.as_ref(), routine_exit) {
        (Some(s), Some(p), Some((exit_at, _))) => {
            let rlog = read_log(&p.log);
            let client_paused = rlog
                .iter()
                .filter(after_start)
                .find(|l| l.text.contains("paused:"))
                .map(rel);
            Some((
                RoutineOutcome {
                    total: s.bytes(),
                    elapsed: exit_at + u0,
                    exit_at,
                    pause_lines: held.len(),
                    report: report_note(&dir.join("routine-report.json")),
                },
                client_paused,
            ))
        }
        _ => None,
    };
    let client_paused_ms = routine_out.as_ref().and_then(|(_, c)| *c);
    let out = Outcome {
        polls,
        poll_span: last_poll.zip(first_poll).map_or(0.0, |(l, f)| l - f),
        poll_max_gap: max_gap,
        samples: samples
            .into_iter()
            .map(|(t, urgent, routine)| Sample {
                t: t - u0,
                urgent,
                routine,
            })
            .collect(),
        first_packet_at,
        partial_at,
        first_byte_at,
        all_at,
        urgent_exit,
        relay_connected_ms,
        relay_accepted_ms,
        client_accepted_ms,
        relay_held_ms,
        client_paused_ms,
        relay_final_continue_ms,
        early_resumes,
        early_resumed_ms,
        last_urgent_stored_ms,
        urgent_report: report_note(&dir.join("urgent-report.json")),
        routine: routine_out.map(|(r, _)| r),
        link: link_stats,
    };
    drop(link);
    drop(urgent_proc);
    drop(routine_proc);
    drop(relay);
    keep_logs(&dir, name);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Copy a run's logs and reports to `YILIAN_BENCH_LOGS/NAME` if that is set.
fn keep_logs(dir: &Path, name: &str) {
    let Some(keep) = std::env::var_os("YILIAN_BENCH_LOGS").map(PathBuf::from) else {
        return;
    };
    let to = keep.join(name);
    if std::fs::create_dir_all(&to).is_ok() {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension()
                .is_some_and(|x| x == "log" || x == "json" || x == "csv")
            {
                let _ = std::fs::copy(&p, to.join(e.file_name()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output

fn fmt_ms(v: Option<f64>, rtt_ms: f64) -> String {
    match v {
        Some(ms) => format!("{ms:.0} ms = {:.2} RTT", ms / rtt_ms),
        None => "— (not seen)".into(),
    }
}

fn link_note(s: &LinkStats) -> String {
    format!(
        "{} pkts, {} lost, {} queue drops, max queue delay {} ms",
        s.offered,
        s.dropped_loss,
        s.dropped_queue,
        s.max_queue_delay.as_millis()
    )
}

fn row(figure: &str, alone: String, backlog: String, target: &str) {
    println!("| {figure} | {alone} | {backlog} | {target} |");
}

fn print_results(args: &Args, alone: &Outcome, with: &Outcome) {
    let rtt = args.rtt_ms();
    // Routine bytes land in bursts (a lost packet holds a stream's later bytes back for about
    // an RTT), so "stopped" needs a longer quiet span than one RTT.
    let quiet = (4.0 * args.rtt.as_secs_f64()).max(0.5);
    let d = |o: &Outcome, f: &dyn Fn(&Outcome) -> Option<f64>| fmt_ms(f(o), rtt);
    // One figure for both runs.
    let both = |figure: &str, f: &dyn Fn(&Outcome) -> Option<f64>, target: &str| {
        row(figure, d(alone, f), d(with, f), target)
    };
    println!(
        "\n| figure | urgent alone (idle link) | urgent with routine backlog | target |\n\
         |---|---:|---:|---|"
    );
    row(
        "RTT of the path (link spec)",
        format!("{} ms", num(rtt)),
        format!("{} ms", num(rtt)),
        "",
    );
    both(
        "(a) send start → its 1st packet reaches the link",
        &|o| o.first_packet_at.map(|s| s * 1e3),
        "process start, file inspection, TLS set-up",
    );
    both(
        "(a) 1st packet → relay: peer connected",
        &|o| Some(o.relay_connected_ms? - o.first_packet_at? * 1e3),
        "QUIC + TLS 1.3 handshake: floor ≈ 1.5 RTT",
    );
    both(
        "(a) send start → relay: peer connected",
        &|o| o.relay_connected_ms,
        "",
    );
    both(
        "(a) send start → relay accepted 1st urgent offer",
        &|o| o.relay_accepted_ms,
        "",
    );
    row(
        "(b) **relay accepted → 1st urgent byte at relay**",
        format!("**{}**", d(alone, &|o| o.accepted_to_first_byte_ms())),
        format!("**{}**", d(with, &|o| o.accepted_to_first_byte_ms())),
        "≤ 1 RTT (\"starts within one RTT\"; floor 1 RTT)",
    );
    both(
        "    relay accepted → sender logs accepted",
        &|o| Some(o.client_accepted_ms? - o.relay_accepted_ms?),
        "≈ 0.5 RTT",
    );
    both(
        "    sender accepted → 1st urgent byte at relay",
        &|o| Some(o.first_byte_at? * 1e3 - o.client_accepted_ms?),
        "≈ 0.5 RTT + bottleneck queue",
    );
    both(
        "    (cross-check) urgent partial file seen (poll) − relay accepted (log)",
        &|o| Some(o.partial_at? * 1e3 - o.relay_accepted_ms?),
        "≈ 0 (the partial is opened just before Accept)",
    );
    both(
        "send start → 1st urgent byte at relay",
        &|o| o.first_byte_at.map(|s| s * 1e3),
        "",
    );
    row(
        "relay accepted → relay holds routine (1st \"routine upload paused\")",
        "—".into(),
        d(with, &|o| Some(o.relay_held_ms? - o.relay_accepted_ms?)),
        "",
    );
    row(
        "relay holds routine → routine sender logs \"paused\"",
        "—".into(),
        d(with, &|o| Some(o.client_paused_ms? - o.relay_held_ms?)),
        "≈ 0.5 RTT",
    );
    row(
        &format!(
            "1st urgent byte → routine stops landing at relay (then quiet ≥ {:.0} ms)",
            quiet * 1e3
        ),
        "—".into(),
        d(with, &|o| o.routine_stops_after(quiet).map(|s| s * 1e3)),
        "",
    );
    let completion = |o: &Outcome| format!("{:.2} s", o.urgent_exit);
    let ratio = with.urgent_exit / alone.urgent_exit;
    row(
        "**urgent completion** (send start → exit 0)",
        completion(alone),
        format!("**{}** = {ratio:.2}× alone", completion(with)),
        "close to alone (1×)",
    );
    let window = |o: &Outcome| match (o.first_byte_at, o.all_at) {
        (Some(a), Some(b)) => format!("{:.2} s", b - a),
        _ => "—".into(),
    };
    row(
        "urgent upload window (1st → last urgent byte at relay)",
        window(alone),
        window(with),
        "",
    );
    let goodput = |o: &Outcome| match o.goodput_mbps() {
        Some(g) => format!(
            "{g:.1} Mbit/s = {:.0} % of rate",
            g * 1e6 / args.rate_bps as f64 * 100.0
        ),
        None => "—".into(),
    };
    row(
        "urgent goodput in its window",
        goodput(alone),
        goodput(with),
        "",
    );
    let share = |o: &Outcome| match (o.share(), o.window()) {
        (Some(s), Some((u, r, _))) => format!(
            "{:.0} % ({:.1} MB urgent, {:.1} MB routine)",
            s * 100.0,
            u as f64 / MB,
            r as f64 / MB
        ),
        _ => "—".into(),
    };
    row(
        "**urgent share of the link** during its window",
        share(alone),
        format!("**{}**", share(with)),
        "most of the link (fair share ≈ 50 %)",
    );
    if let Some(r) = &with.routine {
        let paused = match (with.relay_held_ms, with.relay_final_continue_ms) {
            (Some(h), Some(c)) => format!("{:.2} s", (c - h) / 1e3),
            _ => "—".into(),
        };
        row(
            "routine backlog: outcome",
            "—".into(),
            format!(
                "exit 0 after {:.1} s ({:.1} MB); exited {:.1} s after the urgent send",
                r.elapsed,
                r.total as f64 / MB,
                r.exit_at - with.urgent_exit
            ),
            "completes, after the urgent study",
        );
        row(
            "routine backlog: paused (relay log: 1st paused → final continue)",
            "—".into(),
            paused,
            "≈ the urgent window",
        );
        row(
            "routine backlog: let continue while urgent instances were missing",
            "—".into(),
            format!(
                "{} time(s), {:.0} ms in all ({} hold line(s) in the relay log)",
                with.early_resumes, with.early_resumed_ms, r.pause_lines
            ),
            "never",
        );
    }
    println!(
        "\nspool polling: {} polls in {:.2} s while the urgent study uploaded (mean {:.2} ms, \
         worst gap {:.1} ms) alone; {} in {:.2} s (mean {:.2} ms, worst {:.1} ms) with the \
         backlog; log timestamps: 1 µs",
        alone.polls,
        alone.poll_span,
        alone.poll_span * 1e3 / alone.polls.max(2).saturating_sub(1) as f64,
        alone.poll_max_gap * 1e3,
        with.polls,
        with.poll_span,
        with.poll_span * 1e3 / with.polls.max(2).saturating_sub(1) as f64,
        with.poll_max_gap * 1e3
    );
    if let (Some(a), Some(b)) = (alone.last_urgent_stored_ms, with.last_urgent_stored_ms) {
        println!(
            "last urgent instance stored (relay log): {:.2} s alone, {:.2} s with the backlog",
            a / 1e3,
            b / 1e3
        );
    }
    for (what, o) in [("alone", alone), ("with backlog", with)] {
        println!("link, {what}: up {}", link_note(&o.link.up));
        println!("link, {what}: down {}", link_note(&o.link.down));
        println!("urgent send, {what}: {}", o.urgent_report);
    }
    if let Some(r) = &with.routine {
        println!("routine send: {}", r.report);
    }
    print_timeline(args, with);
}

/// Mbit/s landing at the relay per second, around the urgent upload.
fn print_timeline(args: &Args, o: &Outcome) {
    let (Some(_), Some(end)) = (o.first_byte_at, o.all_at) else {
        return;
    };
    let last_t = o.samples.last().map_or(end, |s| s.t);
    let from = -2.0_f64;
    let to = (end + 3.0).min(last_t).ceil();
    println!(
        "\ntimeline with the backlog (t = 0: urgent send started; Mbit/s landing at the relay; \
         rate {} Mbit/s; a bin may exceed it: bytes held back behind a lost packet land \
         together):\n| t (s) | urgent | routine | urgent share |\n|---:|---:|---:|---:|",
        num(args.mbit())
    );
    let mut t = from;
    while t < to {
        let (Some(a), Some(b)) = (o.at(t), o.at(t + 1.0)) else {
            break;
        };
        let dt = (b.t - a.t).max(1e-3);
        let u = b.urgent.saturating_sub(a.urgent) as f64 * 8.0 / dt / 1e6;
        let r = b.routine.saturating_sub(a.routine) as f64 * 8.0 / dt / 1e6;
        let share = if u + r > 0.0 {
            format!("{:.0} %", u / (u + r) * 100.0)
        } else {
            "—".into()
        };
        println!("| {t:+.0}…{:+.0} | {u:.1} | {r:.1} | {share} |", t + 1.0);
        t += 1.0;
    }
}

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let args = parse_args()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_yilian"));
    ensure!(
        bin.exists(),
        "{} is missing: run this bench through `cargo bench --bench urgent_first`, which builds it",
        bin.display()
    );
    let rule = check_stroke_rule()?;
    let base = scratch_base()?;
    let scratch = tempfile::Builder::new()
        .prefix("yilian-urgent-first-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a scratch folder in {}", base.display()))?;
    let started = Instant::now();
    println!("urgent_first: a stroke CT queued behind a routine backlog on a thin uplink");
    println!(
        "  link: {} (yilian-linkem UDP proxy on loopback, one-BDP bottleneck queue)",
        args.label()
    );
    println!("  {rule}; --urgent-flag: {}", args.urgent_flag);
    println!(
        "  scratch {} ({}); {}",
        scratch.path().display(),
        fs_type(scratch.path()).unwrap_or_else(|| "?".into()),
        if args.quick {
            "--quick"
        } else {
            "default sizes"
        }
    );
    let routine = routine_backlog(&scratch.path().join("routine"), args.dx_count())?;
    let urgent = stroke_ct(&scratch.path().join("stroke"), args.urgent_slices)?;
    println!(
        "  routine backlog: {} DX images {DX_SIDE}×{DX_SIDE}, {:.1} MB; urgent study: {} CT \
         slices 512×512 (HEAD), {:.1} MB; urgent queued once {:.0} % of the backlog is at the \
         relay (generated in {:.1} s)",
        routine.files.len(),
        routine.bytes() as f64 / MB,
        urgent.files.len(),
        urgent.bytes() as f64 / MB,
        args.start_at * 100.0,
        started.elapsed().as_secs_f64()
    );
    let ctx = Ctx {
        bin,
        pki: Pki::new(&scratch.path().join("pki"))?,
        scratch: scratch.path().to_path_buf(),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("building the link emulator's runtime")?,
        args: args.clone(),
    };

    println!("\n[1/2] urgent study alone on the idle link …");
    let alone = run(&ctx, "alone", &urgent, None).context("the run of the urgent study alone")?;
    println!(
        "  done: urgent send exited 0 after {:.2} s",
        alone.urgent_exit
    );
    println!("[2/2] routine backlog, then the urgent study …");
    let with = run(&ctx, "with-backlog", &urgent, Some(&routine))
        .context("the run with the routine backlog")?;
    println!(
        "  done: urgent send exited 0 after {:.2} s; routine send exited 0 after {:.1} s",
        with.urgent_exit,
        with.routine.as_ref().map_or(0.0, |r| r.elapsed)
    );
    print_results(&args, &alone, &with);
    println!(
        "\n({:.1} s in all. No thresholds: the targets are the issue's — the urgent study \
         starts within one RTT of being queued and gets most of the link until it is done.)",
        started.elapsed().as_secs_f64()
    );
    drop(ctx);
    drop(scratch);
    Ok(())
}
