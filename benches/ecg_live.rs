//! Live ECG at scale (issue 16, design §5): N concurrent 12-lead sessions through one relay on
//! loopback, one QUIC connection per cart and per viewer as in the field.
//!
//! ```text
//! cargo bench --bench ecg_live                                   # N = 1000 and 5000, 20 s, 2 runs
//! cargo bench --bench ecg_live -- --sessions 1000,5000 --seconds 20 --runs 2
//! cargo bench --bench ecg_live -- --sessions 200 --seconds 5 --runs 1 --no-idle   # quick look
//! ```
//! Flags: `--sessions LIST` (comma-separated N), `--seconds S` (steady window per run),
//! `--runs R` (repetitions of each N; 0 = idle memory only), `--warmup S` (after the ramp,
//! before the window), `--stagger S` (session starts spread over S seconds, default 16),
//! `--per-endpoint K` (client connections sharing one UDP socket in the generator),
//! `--no-reference`, `--no-idle`. `YILIAN_BENCH_BIN=PATH` runs another `yilian` binary (A/B);
//! `YILIAN_BENCH_DIR` picks the scratch folder (never a tmpfs: recordings are fsynced).
//!
//! **What runs.** The relay is the real binary (`yilian serve`, built by cargo for this bench)
//! in its own process, with `limits.connections_per_identity` raised: every cart presents the
//! one certificate of `township-a-device` and every viewer the one of `county-cardiology` (the
//! example topology routes township ECG there); one identity per device would add nothing but
//! N certificates. This process is the load generator (tokio, its default 2 workers): N carts,
//! each on its own connection, stream a real-time 500 Hz 12-lead ECG in 40 ms frames (one
//! simulated block, encoded once with the codec, sent as every frame: the relay still decodes
//! and checks each one, fans it out and records it), and N viewers, each on its own connection,
//! watch one session each. Cart i opens its session at i/N × `--stagger` (16 s by default, one
//! recording object: the relay then writes recordings at the steady rate of the field, N/16 per
//! second, instead of all at once) and streams from its `Accepted` on; viewers join once all
//! carts are in. `--stagger 0` starts them together, and every session's recording falls due
//! in the same second: the burst case.
//!
//! Per run the bench prints, besides the figures below, the datagrams dropped by full UDP
//! buffers (machine-wide and the target's own socket), the machine's busy time that was neither
//! the target's nor the generator's ("other": another process disturbed the run), the seconds
//! of the window with the most frames later than 20 ms next to the recordings acknowledged in
//! them, and sessions lost (a cart stream the target ended, a viewer refused).
//!
//! **Latency.** A cart stamps each frame's send instant (just before the write into its QUIC
//! stream) in a per-session slot table; the viewer looks the frame up on arrival (same process,
//! same clock). Relay-added latency = arrival − send over the frames *sent* inside the steady
//! window (after the ramp and `--warmup`). The same carts and viewers then run against a
//! **reference**: this bench binary started again as a child process (`--forwarder`), a bare
//! quinn server with the same TLS and transport tuning that decodes each cart frame, re-encodes
//! it as the viewer's `WatchReply::Frame` and hands it to the viewer's stream — no checks, no
//! ring, no recording, no audit. Both paths include the generator's own QUIC work, so the ratio
//! relay / reference is the meaningful figure.
//!
//! **Generator lag.** Frame k of a cart is due at its start + k × 40 ms; the lag is how late it
//! actually left. A p99 lag above 20 ms (half a frame), or a lost session, means the generator and the relay
//! together did not keep real time on these 2 cores: the run is flagged and its latencies say
//! more about the machine than about the relay. The relay's CPU per session-second is still
//! measured, and the largest N that kept up is used to project sessions per 2 cores.
//!
//! **CPU and memory.** Relay CPU = utime + stime from `/proc/PID/stat` over the window, per
//! session-second. Relay RSS per live session = (RSS at the end of the window − RSS before any
//! connection) / N: it holds 2 connections, the 10 s viewer ring and the up-to-16 s recorder of
//! each session. Idle sessions: a fresh relay, N cart connections (RSS per idle connection),
//! then a `Start` on each and nothing else (RSS per idle session, measured well within the
//! relay's 15 s idle limit).
//!
//! Every child is killed and every scratch folder removed at the end, also on failure.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use yilian_ecg::model::SampleRate;
use yilian_ecg::simulate::{SimSpec, Simulator};
use yilian_ecg::wire::{
    Frame, Header, PatientWire, SessionId, SessionSummary, SourceMsg, SourceReply, Start, WatchMsg,
    WatchReply,
};
use yilian_proto::{encode_frame, FrameDecoder, Request};
use yilian_route::Topology;
use yilian_transport::{DevCa, TlsFiles, TlsPem, Tuning};

mod common;
use common::proc::Proc;
use common::{free_udp_port, fs_type, scratch_base};

const DEVICE: &str = "township-a-device";
const VIEWER: &str = "county-cardiology";
const RELAY: &str = "county-relay";
/// 500 Hz, 40 ms frames: 20 samples per lead.
const RATE_HZ: u32 = 500;
const PER_LEAD: usize = 20;
const FRAME: Duration = Duration::from_millis(40);
/// Handshakes in flight at once while the generator connects.
const CONNECT_PARALLEL: usize = 48;
/// Generator p99 lag above this: it did not keep real time.
const KEEP_UP_P99: Duration = Duration::from_millis(20);
/// Send-instant slots per session (a viewer trails by at most 1 s = 25 frames).
const SLOTS: usize = 128;
const NS_BITS: u32 = 40;
/// Frames slower than this are listed by second of the window (to see what coincides).
const LATE: Duration = Duration::from_millis(20);

const USAGE: &str = "\
usage: cargo bench --bench ecg_live -- [--sessions 1000,5000] [--seconds 20] [--runs 2]
                                       [--warmup 3] [--per-endpoint 100] [--no-reference] [--no-idle]
  --sessions LIST    concurrent sessions per run, comma-separated (default 1000,5000)
  --seconds S        steady measuring window of each run (default 20)
  --runs R           runs of each N (default 2; 0 = only the idle-session memory)
  --warmup S         seconds between the end of the ramp and the window (default 3)
  --stagger S        spread the carts' session starts over S seconds (default 16: one
                     recording object, so recordings are spread as in the field; 0 = all at once)
  --per-endpoint K   generator connections sharing one UDP socket (default 100)
  --no-reference     skip the bare-quinn forwarder reference
  --no-idle          skip the idle-session memory measurement
  YILIAN_BENCH_BIN=PATH runs that yilian binary instead of the one cargo built (A/B runs)";

#[derive(Clone, Debug)]
struct Args {
    sessions: Vec<usize>,
    seconds: u64,
    runs: usize,
    warmup: u64,
    per_endpoint: usize,
    reference: bool,
    idle: bool,
    stagger: u64,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        sessions: vec![1000, 5000],
        seconds: 20,
        runs: 2,
        warmup: 3,
        per_endpoint: 100,
        reference: true,
        idle: true,
        stagger: 16,
    };
    let mut flags = common::Flags::new(USAGE);
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(&flag, inline.clone());
        match flag.as_str() {
            "--bench" => {}
            "--sessions" => {
                a.sessions = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--sessions: a comma-separated list of numbers")?
            }
            "--seconds" => a.seconds = value()?.parse().context("--seconds")?,
            "--runs" => a.runs = value()?.parse().context("--runs")?,
            "--warmup" => a.warmup = value()?.parse().context("--warmup")?,
            "--stagger" => a.stagger = value()?.parse().context("--stagger")?,
            "--per-endpoint" => a.per_endpoint = value()?.parse().context("--per-endpoint")?,
            "--no-reference" => a.reference = false,
            "--no-idle" => a.idle = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {}
        }
    }
    ensure!(
        !a.sessions.is_empty() && a.sessions.iter().all(|&n| (1..=20_000).contains(&n)),
        "--sessions: between 1 and 20000 each"
    );
    ensure!((1..=600).contains(&a.seconds), "--seconds: 1 to 600");
    ensure!(a.per_endpoint >= 1, "--per-endpoint: at least 1");
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// PKI, processes, /proc

/// topology.toml (the example one), ca.pem, and NAME.pem / NAME.key for the three identities.
fn write_pki(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let toml = Topology::example_toml();
    let topology = Topology::from_toml_str(toml).map_err(|e| anyhow!("topology: {e}"))?;
    std::fs::write(dir.join("topology.toml"), toml)?;
    let ca = DevCa::generate("bench alliance")?;
    std::fs::write(dir.join("ca.pem"), ca.ca_pem())?;
    let now = time::OffsetDateTime::now_utc();
    for name in [DEVICE, VIEWER, RELAY] {
        let id = common::identity(&topology, name)?;
        let dns: Vec<String> = if name == RELAY {
            vec!["localhost".into(), "127.0.0.1".into()]
        } else {
            vec![]
        };
        let (cert, key) = ca.issue(
            &id,
            &dns,
            now - time::Duration::hours(1),
            now + time::Duration::days(2),
        )?;
        std::fs::write(dir.join(format!("{name}.pem")), cert)?;
        std::fs::write(dir.join(format!("{name}.key")), key)?;
    }
    Ok(())
}

fn tls(pki: &Path, name: &str) -> Result<TlsPem> {
    Ok(TlsFiles {
        cert: pki.join(format!("{name}.pem")),
        key: pki.join(format!("{name}.key")),
        ca: pki.join("ca.pem"),
    }
    .load()?)
}

fn yilian_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("YILIAN_BENCH_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        ensure!(
            p.exists(),
            "YILIAN_BENCH_BIN={} does not exist",
            p.display()
        );
        return Ok(p);
    }
    let p = PathBuf::from(env!("CARGO_BIN_EXE_yilian"));
    ensure!(
        p.exists(),
        "{} is missing: run this bench through `cargo bench --bench ecg_live`, which builds it",
        p.display()
    );
    Ok(p)
}

/// CPU seconds (user + system) and VmRSS bytes of a process (`"self"` or a pid).
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    cpu: f64,
    rss: u64,
}

fn usage(pid: &str) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // /proc/PID/stat: utime and stime are fields 14 and 15 (clock ticks).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(Usage {
        cpu: ticks as f64 / hz,
        rss: rss_kb * 1024,
    })
}

/// Machine-wide: busy CPU seconds (all CPUs, from /proc/stat) and UDP receive-buffer drops.
#[derive(Clone, Copy, Debug, Default)]
struct Machine {
    busy: f64,
    udp_drops: u64,
}

fn machine() -> Machine {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let busy = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: all but idle and iowait.
            f.iter()
                .take(8)
                .enumerate()
                .filter(|(i, _)| *i != 3 && *i != 4)
                .map(|(_, v)| v)
                .sum::<u64>() as f64
                / hz
        })
        .unwrap_or(0.0);
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let udp_drops = (udp.len() == 2)
        .then(|| {
            let names: Vec<&str> = udp[0].split_whitespace().collect();
            let vals: Vec<&str> = udp[1].split_whitespace().collect();
            names
                .iter()
                .position(|n| *n == "RcvbufErrors")
                .and_then(|i| vals.get(i)?.parse().ok())
        })
        .flatten()
        .unwrap_or(0);
    Machine { busy, udp_drops }
}

/// Datagrams dropped by the UDP socket bound to `addr` (`/proc/net/udp`, last column).
fn socket_drops(addr: &str) -> u64 {
    let Some(port) = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
        return 0;
    };
    let want = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&want))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// What the generator talks to: the relay or the bare-quinn forwarder, a child process.
struct Target {
    proc: Proc,
    addr: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Relay,
    Forwarder,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Relay => "relay",
            Kind::Forwarder => "quinn fwd",
        }
    }
}

impl Target {
    fn start(kind: Kind, dir: &Path, pki: &Path, n: usize) -> Result<Target> {
        std::fs::create_dir_all(dir)?;
        let port = free_udp_port()?;
        let (cmd, ready) = match kind {
            Kind::Relay => {
                let config = dir.join("relay.toml");
                std::fs::write(
                    &config,
                    format!(
                        "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\ntopology = {:?}\n\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n\n[limits]\nconnections_per_identity = {}\n",
                        dir.join("data"),
                        pki.join("topology.toml"),
                        pki.join(format!("{RELAY}.pem")),
                        pki.join(format!("{RELAY}.key")),
                        pki.join("ca.pem"),
                        n + 64,
                    ),
                )?;
                let mut cmd = Command::new(yilian_bin()?);
                cmd.arg("serve").arg("--config").arg(&config);
                (cmd, "yilian relay ready")
            }
            Kind::Forwarder => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.arg("--forwarder")
                    .arg(pki)
                    .arg(format!("127.0.0.1:{port}"));
                (cmd, "forwarder ready")
            }
        };
        let mut cmd = cmd;
        cmd.env("RUST_LOG", "info,quinn=warn").env("NO_COLOR", "1");
        let mut proc = Proc::spawn(
            kind.label(),
            cmd,
            &dir.join(format!("{}.log", kind.label().replace(' ', "-"))),
        )?;
        proc.wait_for_log(ready, Duration::from_secs(60))?;
        Ok(Target {
            proc,
            addr: format!("127.0.0.1:{port}"),
        })
    }

    fn usage(&mut self) -> Result<Usage> {
        if let Some(s) = self.proc.try_wait()? {
            bail!("{} ended ({s})\n{}", self.proc.name, self.proc.log_tail());
        }
        usage(&self.proc.pid().to_string())
            .ok_or_else(|| anyhow!("cannot read /proc of {}", self.proc.name))
    }
}

// ---------------------------------------------------------------------------------------------
// The load generator

/// Nanoseconds since the run's epoch (the same clock for carts and viewers).
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Per session: when each recent frame left the cart, `(seq mod 2^24) << 40 | ns`.
struct SendLog {
    slots: Vec<AtomicU64>,
}

impl SendLog {
    fn new() -> SendLog {
        SendLog {
            slots: (0..SLOTS).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    fn put(&self, seq: u64, ns: u64) {
        let v = ((seq & 0xff_ffff) << NS_BITS) | (ns & ((1 << NS_BITS) - 1));
        self.slots[seq as usize % SLOTS].store(v, Ordering::Release);
    }

    fn get(&self, seq: u64) -> Option<u64> {
        let v = self.slots[seq as usize % SLOTS].load(Ordering::Acquire);
        (v != u64::MAX && v >> NS_BITS == seq & 0xff_ffff).then_some(v & ((1 << NS_BITS) - 1))
    }
}

/// Shared by every task of one run.
struct Run {
    clock: Clock,
    /// The steady window, ns since the epoch (`u64::MAX` until set).
    w0: AtomicU64,
    w1: AtomicU64,
    carts_ready: AtomicUsize,
    viewers_ready: AtomicUsize,
    failures: Mutex<Vec<String>>,
    logs: Vec<Arc<SendLog>>,
    ids: Vec<SessionId>,
    /// One encoded block, sent as every frame's data.
    block: Vec<u8>,
    /// Session starts are spread over this long.
    stagger: Duration,
}

impl Run {
    fn in_window(&self, ns: u64) -> bool {
        ns >= self.w0.load(Ordering::Relaxed) && ns < self.w1.load(Ordering::Relaxed)
    }

    fn fail(&self, what: String) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() < 20 {
            f.push(what);
        }
    }
}

fn start_msg(id: SessionId) -> Start {
    Start {
        patient: PatientWire {
            name: "王^小东".to_string().into(),
            id: "P-7".to_string().into(),
            ..Default::default()
        },
        started_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        device: Some("ecg_live bench".into()),
        ..Start::standard(
            id,
            yilian_ecg::SampleRate::from_hz(RATE_HZ).unwrap_or(yilian_ecg::SampleRate::Hz500),
            &[yilian_ecg::Calibration::default(); 12],
        )
    }
}

/// Read the next message of type `T` from `recv`; `None` at the end of the stream.
async fn next_msg<T: serde::de::DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    dec: &mut FrameDecoder,
) -> Result<Option<T>> {
    loop {
        if let Some(m) = dec.next_frame::<T>("bench")? {
            return Ok(Some(m));
        }
        match recv.read_chunk(64 * 1024, true).await? {
            Some(c) => dec.push(c.bytes),
            None => return Ok(None),
        }
    }
}

#[derive(Default)]
struct CartOut {
    /// Generator lag of frames due inside the window, µs.
    lag_us: Vec<u32>,
    sent_in_window: u64,
    recorded_objects: u32,
    /// When each `Recorded` reply arrived (ns), inside the window.
    recorded_at: Vec<u64>,
    /// The relay ended the session's stream (it closed or dropped the session).
    lost: bool,
}

async fn cart(
    run: Arc<Run>,
    ep: quinn::Endpoint,
    addr: String,
    i: usize,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    idle_only: bool,
) -> Result<CartOut> {
    if !idle_only {
        tokio::time::sleep(run.stagger.mul_f64(i as f64 / run.ids.len() as f64)).await;
    }
    let permit = gate.acquire_owned().await?;
    let (conn, _) = yilian_transport::connect(&ep, &addr).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_chunk(encode_frame(&Request::EcgSource)).await?;
    send.write_chunk(encode_frame(&SourceMsg::Start(Box::new(start_msg(
        run.ids[i],
    )))))
    .await?;
    let mut dec = FrameDecoder::new();
    match next_msg::<SourceReply>(&mut recv, &mut dec).await? {
        Some(SourceReply::Accepted { .. }) => {}
        other => bail!("cart {i}: not accepted: {other:?}"),
    }
    drop(permit);
    run.carts_ready.fetch_add(1, Ordering::SeqCst);
    let mut out = CartOut::default();
    if idle_only {
        let _ = stop.changed().await;
        conn.close(0u32.into(), b"bench over");
        return Ok(out);
    }
    let log = &run.logs[i];
    let t0 = tokio::time::Instant::now();
    let t0_ns = run.clock.ns();
    let mut seq: u64 = 0;
    loop {
        let due = t0 + FRAME * seq as u32;
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = recv.read_chunk(64 * 1024, true) => {
                match r {
                    Ok(Some(c)) => dec.push(c.bytes),
                    Ok(None) | Err(_) => {
                        out.lost = true;
                        break;
                    }
                }
                while let Some(reply) = dec.next_frame::<SourceReply>("reply")? {
                    match reply {
                        SourceReply::Recorded { objects, .. } => {
                            out.recorded_objects = objects;
                            let now = run.clock.ns();
                            if run.in_window(now) {
                                out.recorded_at.push(now);
                            }
                        }
                        _ => out.lost = true,
                    }
                }
                if out.lost {
                    break;
                }
            }
            _ = tokio::time::sleep_until(due) => {
                let due_ns = t0_ns + (FRAME * seq as u32).as_nanos() as u64;
                if run.in_window(due_ns) {
                    let lag = tokio::time::Instant::now().saturating_duration_since(due);
                    out.lag_us.push(lag.as_micros().min(u32::MAX as u128) as u32);
                    out.sent_in_window += 1;
                }
                let msg = encode_frame(&SourceMsg::Frame(Frame {
                    seq,
                    first_sample: seq * PER_LEAD as u64,
                    device_time_us: seq * FRAME.as_micros() as u64,
                    data: run.block.clone(),
                }));
                log.put(seq, run.clock.ns());
                if send.write_chunk(msg).await.is_err() {
                    out.lost = true;
                    break;
                }
                seq += 1;
            }
        }
    }
    if out.lost {
        // Stay counted until the end of the run.
        let _ = stop.changed().await;
    }
    conn.close(0u32.into(), b"bench over");
    Ok(out)
}

#[derive(Default)]
struct ViewerOut {
    /// Send → arrival of frames sent inside the window, µs.
    latency_us: Vec<u32>,
    missed: u64,
    unmatched: u64,
    /// Send instants (ns) of the window's frames that took more than [`LATE`].
    late: Vec<u64>,
    /// Refused (the session was gone when it came) or its stream ended early.
    lost: bool,
}

async fn viewer(
    run: Arc<Run>,
    ep: quinn::Endpoint,
    addr: String,
    i: usize,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Result<ViewerOut> {
    let permit = gate.acquire_owned().await?;
    let (conn, _) = yilian_transport::connect(&ep, &addr).await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_chunk(encode_frame(&Request::EcgWatch)).await?;
    send.write_chunk(encode_frame(&WatchMsg::Watch {
        session: run.ids[i],
    }))
    .await?;
    let mut dec = FrameDecoder::new();
    let mut out = ViewerOut::default();
    match next_msg::<WatchReply>(&mut recv, &mut dec).await? {
        Some(WatchReply::Header(_)) => {}
        _ => out.lost = true,
    }
    drop(permit);
    run.viewers_ready.fetch_add(1, Ordering::SeqCst);
    let log = &run.logs[i];
    while !out.lost {
        let chunk = tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = recv.read_chunk(64 * 1024, true) => r,
        };
        let Ok(Some(chunk)) = chunk else {
            out.lost = true;
            break;
        };
        let arrival = run.clock.ns();
        dec.push(chunk.bytes);
        while let Some(reply) = dec.next_frame::<WatchReply>("watch")? {
            match reply {
                WatchReply::Frame(f) => match log.get(f.seq) {
                    Some(sent) => {
                        if run.in_window(sent) {
                            let us = arrival.saturating_sub(sent) / 1000;
                            out.latency_us.push(us.min(u32::MAX as u64) as u32);
                            if us > LATE.as_micros() as u64 {
                                out.late.push(sent);
                            }
                        }
                    }
                    None => out.unmatched += 1,
                },
                WatchReply::Missed { frames } => out.missed += frames,
                _ => out.lost = true,
            }
        }
    }
    if out.lost {
        let _ = stop.changed().await;
    }
    conn.close(0u32.into(), b"bench over");
    Ok(out)
}

fn endpoints(tls: &TlsPem, n: usize, per: usize) -> Result<Vec<quinn::Endpoint>> {
    (0..n.div_ceil(per))
        .map(|_| {
            Ok(yilian_transport::client_endpoint(
                tls,
                &Tuning::default(),
                false,
            )?)
        })
        .collect()
}

fn encoded_block() -> Vec<u8> {
    let mut sim = Simulator::new(SimSpec {
        rate: SampleRate::Hz500,
        heart_rate_bpm: 72.0,
        seed: 16,
        st_elevation: false,
        ..SimSpec::default()
    });
    // A block from mid-beat, not the first samples.
    let _ = sim.next_block(137);
    let block = sim.next_block(PER_LEAD);
    let mut data = Vec::new();
    yilian_ecg::codec::encode(&block, &mut data);
    data
}

fn session_ids(n: usize, nonce: u64) -> Vec<SessionId> {
    (0..n)
        .map(|i| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&nonce.to_be_bytes());
            b[8..].copy_from_slice(&(i as u64).to_be_bytes());
            SessionId(b)
        })
        .collect()
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// One live run's figures.
#[derive(Clone, Debug)]
struct Live {
    kind: Kind,
    n: usize,
    ramp_s: f64,
    window_s: f64,
    lat_ms: [f64; 4],
    lag_ms: [f64; 3],
    frames_sent: u64,
    frames_seen: u64,
    missed: u64,
    cpu_s: f64,
    gen_cpu_s: f64,
    /// Machine busy time that is neither the target's nor the generator's (kernel softirq of
    /// loopback, other processes): a large value means the run was disturbed.
    other_cpu_s: f64,
    /// UDP datagrams dropped for a full socket buffer, machine-wide, during the window.
    udp_drops: u64,
    rss_before: u64,
    rss_end: u64,
    rss_peak: u64,
    recorded: u64,
    /// Datagrams the target's own UDP socket dropped (/proc/net/udp), during the window.
    target_drops: u64,
    /// Per second of the window: frames later than [`LATE`], recordings acknowledged.
    late_by_s: Vec<(u64, u64)>,
    /// Carts whose stream the target ended, viewers refused or cut.
    lost: (u64, u64),
}

impl Live {
    fn keeps_up(&self) -> bool {
        self.lag_ms[1] <= KEEP_UP_P99.as_secs_f64() * 1000.0 && self.lost == (0, 0)
    }
    /// Relay CPU seconds per session-second.
    fn cpu_per_session_s(&self) -> f64 {
        self.cpu_s / (self.n as f64 * self.window_s)
    }
    fn rss_per_session_kib(&self) -> f64 {
        self.rss_end.saturating_sub(self.rss_before) as f64 / self.n as f64 / 1024.0
    }
}

fn live_run(kind: Kind, n: usize, a: &Args, base: &Path, pki: &Path, nonce: u64) -> Result<Live> {
    let dir = tempfile::Builder::new()
        .prefix("yilian-ecg-live-")
        .tempdir_in(base)?;
    let mut target = Target::start(kind, dir.path(), pki, 2 * n)?;
    std::thread::sleep(Duration::from_millis(300));
    let before = target.usage()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run = Arc::new(Run {
        clock: Clock(Instant::now()),
        w0: AtomicU64::new(u64::MAX),
        w1: AtomicU64::new(u64::MAX),
        carts_ready: AtomicUsize::new(0),
        viewers_ready: AtomicUsize::new(0),
        failures: Mutex::default(),
        logs: (0..n).map(|_| Arc::new(SendLog::new())).collect(),
        ids: session_ids(n, nonce),
        block: encoded_block(),
        stagger: Duration::from_secs(a.stagger),
    });
    let device = tls(pki, DEVICE)?;
    let reader = tls(pki, VIEWER)?;
    let result = rt.block_on(async {
        let cart_eps = endpoints(&device, n, a.per_endpoint)?;
        let view_eps = endpoints(&reader, n, a.per_endpoint)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(CONNECT_PARALLEL));
        let t_ramp = Instant::now();
        let mut carts = JoinSet::new();
        for i in 0..n {
            carts.spawn(cart(
                run.clone(),
                cart_eps[i / a.per_endpoint].clone(),
                target.addr.clone(),
                i,
                gate.clone(),
                stop_rx.clone(),
                false,
            ));
        }
        wait_count(&run, &run.carts_ready, n, "carts accepted", &mut carts).await?;
        let mut viewers = JoinSet::new();
        for i in 0..n {
            viewers.spawn(viewer(
                run.clone(),
                view_eps[i / a.per_endpoint].clone(),
                target.addr.clone(),
                i,
                gate.clone(),
                stop_rx.clone(),
            ));
        }
        wait_count(
            &run,
            &run.viewers_ready,
            n,
            "viewers watching",
            &mut viewers,
        )
        .await?;
        let ramp_s = t_ramp.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(a.warmup)).await;
        let u0 = target.usage()?;
        let g0 = usage("self").unwrap_or_default();
        let m0 = machine();
        let d0 = socket_drops(&target.addr);
        let t0 = Instant::now();
        run.w0.store(run.clock.ns(), Ordering::SeqCst);
        let mut peak = u0.rss;
        while t0.elapsed() < Duration::from_secs(a.seconds) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak = peak.max(target.usage()?.rss);
            if let Some(Ok(Err(e))) = carts.try_join_next() {
                bail!("a cart failed during the window: {e:#}");
            }
        }
        run.w1.store(run.clock.ns(), Ordering::SeqCst);
        let window_s = t0.elapsed().as_secs_f64();
        let u1 = target.usage()?;
        let g1 = usage("self").unwrap_or_default();
        let m1 = machine();
        let d1 = socket_drops(&target.addr);
        // Frames sent at the window's end reach their viewers within a few ms.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = stop_tx.send(true);
        let mut lag: Vec<u32> = Vec::new();
        let mut frames_sent = 0;
        let mut recorded = 0u64;
        let (mut lost_carts, mut lost_viewers) = (0u64, 0u64);
        let w0 = run.w0.load(Ordering::SeqCst);
        let secs = window_s.ceil() as usize + 2;
        let mut late_by_s = vec![(0u64, 0u64); secs];
        let bucket = |ns: u64| (ns.saturating_sub(w0) / 1_000_000_000) as usize;
        while let Some(r) = carts.join_next().await {
            let c = r??;
            for t in &c.recorded_at {
                late_by_s[bucket(*t).min(secs - 1)].1 += 1;
            }
            lag.extend(c.lag_us);
            frames_sent += c.sent_in_window;
            recorded += u64::from(c.recorded_objects);
            lost_carts += u64::from(c.lost);
        }
        let mut lat: Vec<u32> = Vec::new();
        let mut missed = 0;
        while let Some(r) = viewers.join_next().await {
            let v = r??;
            for t in &v.late {
                late_by_s[bucket(*t).min(secs - 1)].0 += 1;
            }
            lat.extend(v.latency_us);
            missed += v.missed;
            lost_viewers += u64::from(v.lost);
        }
        for ep in cart_eps.iter().chain(&view_eps) {
            ep.close(0u32.into(), b"bench over");
        }
        for ep in cart_eps.iter().chain(&view_eps) {
            let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
        }
        lat.sort_unstable();
        lag.sort_unstable();
        Ok::<_, anyhow::Error>(Live {
            kind,
            n,
            ramp_s,
            window_s,
            lat_ms: [
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                pct(&lat, 0.999),
                lat.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
            ],
            lag_ms: [
                pct(&lag, 0.5),
                pct(&lag, 0.99),
                lag.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
            ],
            frames_sent,
            frames_seen: lat.len() as u64,
            missed,
            cpu_s: u1.cpu - u0.cpu,
            gen_cpu_s: g1.cpu - g0.cpu,
            other_cpu_s: (m1.busy - m0.busy) - (u1.cpu - u0.cpu) - (g1.cpu - g0.cpu),
            udp_drops: m1.udp_drops.saturating_sub(m0.udp_drops),
            rss_before: before.rss,
            rss_end: u1.rss,
            rss_peak: peak,
            recorded,
            target_drops: d1.saturating_sub(d0),
            late_by_s,
            lost: (lost_carts, lost_viewers),
        })
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let r = result.map_err(|e| anyhow!("{e:#}\n{}", target.proc.log_tail()));
    target.proc.kill();
    r
}

/// Wait until `counter` reaches `n`, failing early when a task fails.
async fn wait_count<T: 'static>(
    run: &Run,
    counter: &AtomicUsize,
    n: usize,
    what: &str,
    tasks: &mut JoinSet<Result<T>>,
) -> Result<()> {
    let deadline = Instant::now() + run.stagger + Duration::from_secs(60 + n as u64 / 20);
    while counter.load(Ordering::SeqCst) < n {
        if let Some(r) = tasks.try_join_next() {
            match r {
                Ok(Err(e)) => bail!(
                    "{what}: {}/{n}, then: {e:#}",
                    counter.load(Ordering::SeqCst)
                ),
                Err(e) => bail!("{what}: a task panicked: {e}"),
                Ok(Ok(_)) => run.fail(format!("{what}: a task ended early")),
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: only {}/{n} after the ramp's deadline",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Idle memory: N connections, then a Start on each and nothing else.
struct Idle {
    n: usize,
    per_conn_kib: f64,
    per_session_kib: f64,
}

fn idle_run(n: usize, a: &Args, base: &Path, pki: &Path, nonce: u64) -> Result<Idle> {
    let dir = tempfile::Builder::new()
        .prefix("yilian-ecg-idle-")
        .tempdir_in(base)?;
    let mut target = Target::start(Kind::Relay, dir.path(), pki, n)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let device = tls(pki, DEVICE)?;
    let addr = target.addr.clone();
    let ids = session_ids(n, nonce);
    let result = rt.block_on(async {
        let eps = endpoints(&device, n, a.per_endpoint)?;
        // One connection and session first: lazily initialised state is not per session.
        let (warm, _) = yilian_transport::connect(&eps[0], &addr).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = target.usage()?;
        let gate = Arc::new(Semaphore::new(CONNECT_PARALLEL));
        let mut conns = JoinSet::new();
        for i in 0..n {
            let (ep, addr, gate) = (eps[i / a.per_endpoint].clone(), addr.clone(), gate.clone());
            conns.spawn(async move {
                let _p = gate.acquire_owned().await?;
                Ok::<_, anyhow::Error>(yilian_transport::connect(&ep, &addr).await?.0)
            });
        }
        let mut open = Vec::with_capacity(n);
        while let Some(c) = conns.join_next().await {
            open.push(c??);
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let conns_only = target.usage()?;
        let mut starts = JoinSet::new();
        for (conn, id) in open.iter().cloned().zip(ids) {
            starts.spawn(async move {
                let (mut send, mut recv) = conn.open_bi().await?;
                send.write_chunk(encode_frame(&Request::EcgSource)).await?;
                send.write_chunk(encode_frame(&SourceMsg::Start(Box::new(start_msg(id)))))
                    .await?;
                let mut dec = FrameDecoder::new();
                match next_msg::<SourceReply>(&mut recv, &mut dec).await? {
                    Some(SourceReply::Accepted { .. }) => Ok::<_, anyhow::Error>((send, recv)),
                    other => bail!("not accepted: {other:?}"),
                }
            });
        }
        let t_starts = Instant::now();
        let mut streams = Vec::with_capacity(n);
        while let Some(s) = starts.join_next().await {
            streams.push(s??);
        }
        let took = t_starts.elapsed();
        // Settle, well within the relay's 15 s idle limit for a silent cart.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let sessions = target.usage()?;
        ensure!(
            t_starts.elapsed() < Duration::from_secs(14),
            "starting {n} sessions took {took:?}: the relay's 15 s idle limit was near"
        );
        drop(streams);
        for c in open.iter().chain([&warm]) {
            c.close(0u32.into(), b"bench over");
        }
        for ep in &eps {
            let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
        }
        Ok::<_, anyhow::Error>((before, conns_only, sessions))
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let r = result.map_err(|e| anyhow!("{e:#}\n{}", target.proc.log_tail()));
    target.proc.kill();
    let (before, conns_only, sessions) = r?;
    let kib = |a: Usage, b: Usage| b.rss.saturating_sub(a.rss) as f64 / n as f64 / 1024.0;
    Ok(Idle {
        n,
        per_conn_kib: kib(before, conns_only),
        per_session_kib: kib(before, sessions),
    })
}

// ---------------------------------------------------------------------------------------------
// The reference: a bare quinn forwarder (this binary, `--forwarder PKI ADDR`)

/// Per session: the attached viewer's channel, if one is attached (frames before that are
/// dropped, as the relay's ring would age them out).
type Slot = Arc<Mutex<Option<mpsc::UnboundedSender<Bytes>>>>;
type Pending = HashMap<SessionId, Slot>;

fn forwarder_main(pki: &Path, listen: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let tls = tls(pki, RELAY)?;
        let listen: SocketAddr = listen.parse()?;
        let ep = yilian_transport::server_endpoint(listen, &tls, &Tuning::default())?;
        let sessions: Arc<Mutex<Pending>> = Arc::default();
        println!("forwarder ready on {listen}");
        let _ = std::io::stdout().flush();
        while let Some(incoming) = ep.accept().await {
            let sessions = sessions.clone();
            tokio::spawn(async move {
                let Ok((conn, _peer)) = yilian_transport::accept(incoming).await else {
                    return;
                };
                while let Ok((send, recv)) = conn.accept_bi().await {
                    tokio::spawn(forward_stream(sessions.clone(), send, recv));
                }
            });
        }
        Ok(())
    })
}

/// Session `id`'s slot (made by whichever of the cart and the viewer comes first).
fn slot(sessions: &Mutex<Pending>, id: SessionId) -> Slot {
    let mut s = sessions.lock().unwrap_or_else(|p| p.into_inner());
    s.entry(id).or_default().clone()
}

async fn forward_stream(
    sessions: Arc<Mutex<Pending>>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let mut dec = FrameDecoder::new();
    let Ok(Some(req)) = next_msg::<Request>(&mut recv, &mut dec).await else {
        return;
    };
    match req {
        Request::EcgSource => {
            let Ok(Some(SourceMsg::Start(start))) =
                next_msg::<SourceMsg>(&mut recv, &mut dec).await
            else {
                return;
            };
            let viewer = slot(&sessions, start.session);
            let accepted = SourceReply::Accepted {
                next_seq: 0,
                urgent: false,
                destinations: vec![],
            };
            if send.write_chunk(encode_frame(&accepted)).await.is_err() {
                return;
            }
            while let Ok(Some(msg)) = next_msg::<SourceMsg>(&mut recv, &mut dec).await {
                if let SourceMsg::Frame(f) = msg {
                    let bytes = encode_frame(&WatchReply::Frame(f));
                    if let Some(tx) = viewer.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                        let _ = tx.send(bytes);
                    }
                }
            }
        }
        Request::EcgWatch => {
            let Ok(Some(WatchMsg::Watch { session })) =
                next_msg::<WatchMsg>(&mut recv, &mut dec).await
            else {
                return;
            };
            let (tx, mut rx) = mpsc::unbounded_channel();
            *slot(&sessions, session)
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(tx);
            let header = WatchReply::Header(Box::new(Header {
                summary: SessionSummary {
                    session,
                    site: String::new(),
                    device: String::new(),
                    urgent: false,
                    rate_hz: RATE_HZ,
                    started_unix_ms: 0,
                    seconds: 0.0,
                    watchers: 1,
                },
                leads: vec![],
                calibration: vec![],
                patient: PatientWire::default(),
            }));
            if send.write_chunk(encode_frame(&header)).await.is_err() {
                return;
            }
            while let Some(b) = rx.recv().await {
                if send.write_chunk(b).await.is_err() {
                    return;
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Report

fn report_live(r: &Live) {
    println!(
        "  {:<9} N={:<5} ramp {:>5.1} s | latency ms p50 {:>6.2} p99 {:>7.2} p99.9 {:>7.2} max {:>7.1} | gen lag ms p50 {:>5.2} p99 {:>6.2} max {:>6.1}{} | frames {}/{} missed {} | CPU {:>5.2} s = {:>5.1} µs/session·s ({:.0} % core) | gen CPU {:.0} % core, other {:.0} % core | UDP drops {} (target socket {}) | RSS {:.1}→{:.1} MiB (peak {:.1}) = {:.1} KiB/session{}",
        r.kind.label(),
        r.n,
        r.ramp_s,
        r.lat_ms[0],
        r.lat_ms[1],
        r.lat_ms[2],
        r.lat_ms[3],
        r.lag_ms[0],
        r.lag_ms[1],
        r.lag_ms[2],
        if r.keeps_up() { "" } else { " (GENERATOR BEHIND)" },
        r.frames_seen,
        r.frames_sent,
        r.missed,
        r.cpu_s,
        r.cpu_per_session_s() * 1e6,
        100.0 * r.cpu_s / r.window_s,
        100.0 * r.gen_cpu_s / r.window_s,
        100.0 * r.other_cpu_s / r.window_s,
        r.udp_drops,
        r.target_drops,
        r.rss_before as f64 / 1048576.0,
        r.rss_end as f64 / 1048576.0,
        r.rss_peak as f64 / 1048576.0,
        r.rss_per_session_kib(),
        if r.kind == Kind::Relay {
            format!(" | recordings acknowledged {}", r.recorded)
        } else {
            String::new()
        }
    );
    if r.lost != (0, 0) {
        println!(
            "      SESSIONS LOST: {} cart streams ended by the {}, {} viewers refused or cut",
            r.lost.0,
            r.kind.label(),
            r.lost.1
        );
    }
    let late: u64 = r.late_by_s.iter().map(|b| b.0).sum();
    if late > 0 {
        let mut worst: Vec<(usize, &(u64, u64))> = r.late_by_s.iter().enumerate().collect();
        worst.sort_by_key(|w| std::cmp::Reverse(w.1 .0));
        let list: Vec<String> = worst
            .iter()
            .take(4)
            .filter(|w| w.1 .0 > 0)
            .map(|(s, (l, rec))| format!("s{s}: {l} late, {rec} recordings"))
            .collect();
        let rec_total: u64 = r.late_by_s.iter().map(|b| b.1).sum();
        println!(
            "      {late} frames > {} ms; worst seconds of the window: {}; recordings acknowledged in the window: {rec_total}",
            LATE.as_millis(),
            list.join(", ")
        );
    }
    let _ = std::io::stdout().flush();
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--forwarder") {
        let (Some(pki), Some(listen)) = (argv.get(2), argv.get(3)) else {
            bail!("--forwarder PKI_DIR ADDR");
        };
        return forwarder_main(Path::new(pki), listen);
    }
    let a = parse_args()?;
    let base = scratch_base()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "yilian ecg_live: sessions {:?}, {} s window after {} s warm-up, {} run(s) each; 500 Hz 12-lead, 40 ms frames ({} B encoded); relay {}; scratch {} ({}); {} CPUs, load {}",
        a.sessions,
        a.seconds,
        a.warmup,
        a.runs,
        encoded_block().len(),
        yilian_bin()?.display(),
        base.display(),
        fs_type(&base).unwrap_or_else(|| "?".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.trim()
    );
    let pki_dir = tempfile::Builder::new()
        .prefix("yilian-ecg-pki-")
        .tempdir_in(&base)?;
    write_pki(pki_dir.path())?;
    let pki = pki_dir.path();
    let mut nonce = std::process::id() as u64;
    let mut lives: Vec<Live> = Vec::new();
    let mut idles: Vec<Idle> = Vec::new();
    for &n in &a.sessions {
        println!("\nN = {n}: {} connections to each target", 2 * n);
        for run in 1..=a.runs {
            for kind in [Kind::Relay, Kind::Forwarder] {
                if kind == Kind::Forwarder && !a.reference {
                    continue;
                }
                nonce += 1;
                match live_run(kind, n, &a, &base, pki, nonce) {
                    Ok(r) => {
                        print!("run {run}");
                        report_live(&r);
                        lives.push(r);
                    }
                    Err(e) => println!("run {run} {} N={n}: FAILED: {e:#}", kind.label()),
                }
            }
        }
        if a.idle {
            nonce += 1;
            match idle_run(n, &a, &base, pki, nonce) {
                Ok(i) => {
                    println!(
                        "  idle     N={n}: {:.1} KiB per idle connection, {:.1} KiB per idle session incl. its connection (target < 64 KiB: {})",
                        i.per_conn_kib,
                        i.per_session_kib,
                        if i.per_session_kib < 64.0 { "met" } else { "NOT met" }
                    );
                    idles.push(i);
                }
                Err(e) => println!("  idle N={n}: FAILED: {e:#}"),
            }
        }
    }
    summary(&lives, &idles);
    Ok(())
}

fn summary(lives: &[Live], idles: &[Idle]) {
    println!("\nSummary (markdown):\n");
    println!("| N | target | ramp s | p50 ms | p99 ms | p99.9 ms | max ms | gen lag p99 ms | keeps up | relay CPU µs/session·s | CPU % core | RSS KiB/session | frames seen/sent |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in lives {
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {} | {:.1} | {:.0} | {:.1} | {}/{} |",
            r.n,
            r.kind.label(),
            r.ramp_s,
            r.lat_ms[0],
            r.lat_ms[1],
            r.lat_ms[2],
            r.lat_ms[3],
            r.lag_ms[1],
            if r.keeps_up() { "yes" } else { "NO" },
            r.cpu_per_session_s() * 1e6,
            100.0 * r.cpu_s / r.window_s,
            r.rss_per_session_kib(),
            r.frames_seen,
            r.frames_sent
        );
    }
    for n in lives
        .iter()
        .map(|r| r.n)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let of =
            |k: Kind| -> Vec<&Live> { lives.iter().filter(|r| r.n == n && r.kind == k).collect() };
        let (rel, fwd) = (of(Kind::Relay), of(Kind::Forwarder));
        if rel.is_empty() || fwd.is_empty() {
            continue;
        }
        let mean = |v: &[&Live], f: &dyn Fn(&Live) -> f64| {
            v.iter().map(|r| f(r)).sum::<f64>() / v.len() as f64
        };
        println!(
            "\nN = {n}: relay / bare quinn forwarder: p50 {:.2}×, p99 {:.2}×, CPU per session {:.2}×",
            mean(&rel, &|r| r.lat_ms[0]) / mean(&fwd, &|r| r.lat_ms[0]),
            mean(&rel, &|r| r.lat_ms[1]) / mean(&fwd, &|r| r.lat_ms[1]),
            mean(&rel, &|r| r.cpu_per_session_s()) / mean(&fwd, &|r| r.cpu_per_session_s()),
        );
    }
    let relay_runs: Vec<&Live> = lives.iter().filter(|r| r.kind == Kind::Relay).collect();
    let kept: Vec<&&Live> = relay_runs.iter().filter(|r| r.keeps_up()).collect();
    if relay_runs.iter().any(|r| !r.keeps_up()) {
        println!("\nThe generator did NOT keep real time in some relay runs (p99 lag > {} ms): their latencies measure the shared machine.", KEEP_UP_P99.as_millis());
    }
    if let Some(max_n) = kept.iter().map(|r| r.n).max() {
        let at: Vec<&&&Live> = kept.iter().filter(|r| r.n == max_n).collect();
        let per = at.iter().map(|r| r.cpu_per_session_s()).sum::<f64>() / at.len() as f64;
        let kib = at.iter().map(|r| r.rss_per_session_kib()).sum::<f64>() / at.len() as f64;
        println!(
            "\nLargest N that kept up: {max_n}. Relay cost there: {:.1} µs CPU per session-second ({:.3} % of a core per session), {kib:.0} KiB RSS per live session.\nProjection (relay alone on 2 cores, CPU-bound, linear): {:.0} sessions; 5,000 sessions need {:.2} cores and {:.0} MiB.",
            per * 1e6,
            per * 100.0,
            2.0 / per,
            5000.0 * per,
            5000.0 * kib / 1024.0,
        );
    }
    for i in idles {
        println!(
            "idle N={}: {:.1} KiB per idle connection, {:.1} KiB per idle session (incl. connection) — target < 64 KiB: {}",
            i.n,
            i.per_conn_kib,
            i.per_session_kib,
            if i.per_session_kib < 64.0 { "met" } else { "NOT met" }
        );
    }
}
