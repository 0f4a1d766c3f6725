//! Live 12-lead ECG frames over a rural uplink: one QUIC stream, QUIC datagrams, or both?
//! (issue 16, point 1).
//!
//! A cart sends one frame every 40 ms (20 samples per lead at 500 Hz, encoded by
//! `yilian_ecg::codec`, ≈ 150–400 bytes) to a receiver (the relay) through the seeded UDP link
//! emulator (`yilian_linkem::UdpProxy`, `LinkSpec::rural`: 20 Mbit/s, 120 ms RTT, 2 % loss
//! each way, a one-BDP tail-drop queue). Everything runs in this process, so the send and the
//! arrival instants come from the same clock. Each mode is one cart (its own client endpoint
//! and QUIC connection, yilian's `Tuning::default()`, real yilian certificates):
//!
//! - **A — stream**: every frame on one reliable, ordered stream (what `yilian_ecg::wire`
//!   does today). A lost packet holds back every later frame until it is resent (head-of-line
//!   blocking);
//! - **B — datagrams**: every frame in one QUIC DATAGRAM (RFC 9221), never resent;
//! - **C — both**: every frame as a datagram for the live view *and* on the stream for the
//!   recording; the receiver takes whichever copy arrives first;
//! - **D — both, redundant datagrams** (not in the brief; the fix the results point to): as
//!   C, but each datagram also carries the `--redundancy` previous frames (as many as fit in
//!   `max_datagram_size()`), so a single lost packet costs the live view nothing.
//!
//! The selected modes run **side by side in one run** (one connection each, through the same
//! emulated link, same ticks): they see the same queue and the same load, at ≈ 25 packets/s
//! and < 100 kbit/s each, far below the link's 20 Mbit/s.
//!
//! Scenarios:
//! 1. the ECG alone on the link (random loss);
//! 2. the ECG while a bulk upload — another client endpoint and connection through the same
//!    emulator, writing on one stream as fast as it can, like a CT upload, with the default
//!    congestion controller (`bdp`) — fills the link; it starts `--warmup` seconds before the
//!    ECG, and its goodput is measured over the ECG's seconds;
//! 3. the ECG alone, the same mean loss in bursts (Gilbert–Elliott, mean burst `--burst`
//!    packets, no random loss).
//!
//! Reported per scenario, mode and run: latency of the live path (first copy's arrival − send;
//! p50, p90, p99, max over the frames received, and p99 − the one-way delay), *on time*
//! (frames received within one-way + 50 ms, as a share of those sent — the product target
//! "p99 < one-way + 50 ms" counting a lost frame as late is "on time ≥ 99 %"), frames received
//! on the live path and on the recording path (the stream; for B the datagrams are all there
//! is), the bulk goodput against the link rate, the emulator's queue drops and longest queue
//! delay, and the ECG connections' smoothed RTT at the end. Then a pooled summary table per
//! scenario and mode (ready for BENCHMARKING.md) and a verdict per scenario: a mode meets the
//! target when, in every run, the p99 over all frames sent (a lost frame counting as late) is
//! within one-way + 50 ms, and every recording (stream) is complete.
//!
//! ```text
//! cargo bench --bench ecg_transport                      # 3 scenarios × 2 runs × 60 s ≈ 7 min
//! cargo bench --bench ecg_transport -- --seconds 20 --modes A,C --scenarios 1,2 --runs 1
//! cargo bench --bench ecg_transport -- --wait-load 1.0   # wait for a quiet machine before each run
//! ```
//!
//! Reproducibility: the link model is seeded (`--seed`, run *r* uses seed + r − 1, printed);
//! with one flow on the link, which packets are lost depends only on their count. With several
//! flows side by side the interleaving of their packets (and so which flow a loss hits) depends
//! on real timing: figures repeat statistically, not packet for packet. The emulator runs in
//! this process: a busy machine shows up as spurious delay; the load average is printed before
//! and after each run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use yilian_ecg::{codec, SimSpec, Simulator};
use yilian_linkem::{LinkSpec, UdpProxy};
use yilian_testkit::quic_transfer::{Controller, Pki};
use yilian_transport::{
    client_config, client_endpoint, connect, server_endpoint, Congestion, Tuning,
};

const USAGE: &str = "\
usage: cargo bench --bench ecg_transport -- [options]
  --seconds N        seconds of ECG per run (60)
  --modes LIST       A,B,C,D (all): A stream, B datagrams, C both, D both + redundant datagrams
  --scenarios LIST   1,2,3 (all): 1 ECG alone, 2 ECG + bulk upload, 3 ECG alone, bursty loss
  --runs N           runs per scenario (2); run r uses seed + r - 1
  --seed S           link emulator seed (42)
  --rate-mbit R      link rate, Mbit/s (20)
  --rtt-ms T         round trip, ms (120)
  --loss-pct L       loss each way, % (2)
  --burst B          scenario 3: mean loss-burst length, packets (3)
  --redundancy K     mode D: previous frames repeated in each datagram (2)
  --frame-bytes N    pad every codec block to at least N bytes (0: the codec's own sizes)
  --warmup S         scenario 2: seconds the bulk upload runs before the ECG starts (5)
  --bulk-cc LIST     scenario 2: the bulk upload's congestion controllers, one run set each
                     (bdp, the default Tuning; also bbr, cubic, newreno, bdp:gain=G, and
                     bdp:yield[=G]: bdp under the relay's uplink yield order from the ECG's
                     start to its end, as while a township's urgent ECG is live)
  --wait-load L      before each run, wait for the 1-minute load to drop below L
  --wait-minutes M   stop waiting for a quiet machine M minutes after the start (15): later
                     runs go ahead at whatever load (printed per run)";

/// One frame every 40 ms: 20 samples per lead at 500 Hz.
const FRAME_INTERVAL: Duration = Duration::from_millis(40);
const SAMPLES_PER_FRAME: usize = 20;
/// The product's allowance on top of the one-way delay.
const ALLOWANCE: Duration = Duration::from_millis(50);
/// How long the recording stream may take to complete after the last frame.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Tag of the bulk upload's stream.
const BULK_TAG: u8 = b'U';
/// Bulk upload write size.
const BULK_CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mode {
    Stream,
    Datagram,
    Both,
    Redundant,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Stream, Mode::Datagram, Mode::Both, Mode::Redundant];

    fn letter(self) -> &'static str {
        match self {
            Mode::Stream => "A",
            Mode::Datagram => "B",
            Mode::Both => "C",
            Mode::Redundant => "D",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mode::Stream => "A stream",
            Mode::Datagram => "B datagrams",
            Mode::Both => "C both",
            Mode::Redundant => "D both+redundant",
        }
    }

    /// The first byte of the flow's stream, telling the receiver which mode it is.
    fn tag(self) -> u8 {
        self.letter().as_bytes()[0]
    }

    fn from_tag(tag: u8) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.tag() == tag)
    }

    fn on_stream(self) -> bool {
        self != Mode::Datagram
    }

    fn on_datagrams(self) -> bool {
        self != Mode::Stream
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Alone,
    /// With the bulk upload's controller `Args::bulk_cc[i]`.
    Bulk(usize),
    Burst,
}

impl Scenario {
    /// `1`, `2`, `3`; `2/<controller>` when several bulk controllers are compared.
    fn name(self, a: &Args) -> String {
        match self {
            Scenario::Alone => "1".into(),
            Scenario::Bulk(i) if a.bulk_cc.len() > 1 => format!("2/{}", a.bulk_cc[i].label),
            Scenario::Bulk(_) => "2".into(),
            Scenario::Burst => "3".into(),
        }
    }

    fn describe(self, a: &Args) -> String {
        let link = format!(
            "{} Mbit/s, {} ms RTT",
            a.rate_bps / 1_000_000,
            a.rtt.as_millis()
        );
        match self {
            Scenario::Alone => format!("ECG alone, {link}, {} % random loss", a.loss * 100.0),
            Scenario::Bulk(i) => format!(
                "ECG + bulk upload ({}), {link}, {} % random loss",
                a.bulk_cc[i].label,
                a.loss * 100.0
            ),
            Scenario::Burst => format!(
                "ECG alone, {link}, {} % loss in bursts of {} packets (Gilbert–Elliott)",
                a.loss * 100.0,
                a.burst
            ),
        }
    }

    fn spec(self, a: &Args) -> Result<LinkSpec> {
        Ok(match self {
            Scenario::Alone | Scenario::Bulk(_) => LinkSpec::rural(a.rate_bps, a.rtt, a.loss),
            Scenario::Burst => {
                LinkSpec::rural(a.rate_bps, a.rtt, 0.0).with_burst_loss(a.loss, a.burst)?
            }
        })
    }
}

struct Args {
    seconds: u64,
    modes: Vec<Mode>,
    scenarios: Vec<Scenario>,
    runs: u64,
    seed: u64,
    rate_bps: u64,
    rtt: Duration,
    loss: f64,
    burst: f64,
    redundancy: usize,
    frame_bytes: usize,
    warmup: Duration,
    bulk_cc: Vec<Controller>,
    wait_load: Option<f64>,
    wait_budget: Duration,
}

impl Args {
    fn frames(&self) -> usize {
        (self.seconds * 1000 / FRAME_INTERVAL.as_millis() as u64) as usize
    }

    fn one_way(&self) -> Duration {
        self.rtt / 2
    }

    fn budget(&self) -> Duration {
        self.one_way() + ALLOWANCE
    }
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        seconds: 60,
        modes: Mode::ALL.to_vec(),
        scenarios: vec![Scenario::Alone, Scenario::Bulk(0), Scenario::Burst],
        runs: 2,
        seed: 42,
        rate_bps: 20_000_000,
        rtt: Duration::from_millis(120),
        loss: 0.02,
        burst: 3.0,
        redundancy: 2,
        frame_bytes: 0,
        warmup: Duration::from_secs(5),
        bulk_cc: vec![Controller::named(Congestion::Bdp)],
        wait_load: None,
        wait_budget: Duration::from_secs(15 * 60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--seconds" => a.seconds = value()?.parse().context("--seconds")?,
            "--modes" => {
                a.modes = value()?
                    .split(',')
                    .map(|m| {
                        let t = m.trim().to_ascii_uppercase();
                        Mode::ALL
                            .into_iter()
                            .find(|x| x.letter() == t)
                            .ok_or_else(|| anyhow!("unknown mode {m:?} (A, B, C, D)"))
                    })
                    .collect::<Result<_>>()?
            }
            "--scenarios" => {
                a.scenarios = value()?
                    .split(',')
                    .map(|s| match s.trim() {
                        "1" => Ok(Scenario::Alone),
                        "2" => Ok(Scenario::Bulk(0)),
                        "3" => Ok(Scenario::Burst),
                        _ => Err(anyhow!("unknown scenario {s:?} (1, 2, 3)")),
                    })
                    .collect::<Result<_>>()?
            }
            "--runs" => a.runs = value()?.parse().context("--runs")?,
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--rate-mbit" => {
                a.rate_bps = (value()?.parse::<f64>().context("--rate-mbit")? * 1e6) as u64
            }
            "--rtt-ms" => {
                a.rtt = Duration::from_millis(value()?.parse().context("--rtt-ms")?);
            }
            "--loss-pct" => a.loss = value()?.parse::<f64>().context("--loss-pct")? / 100.0,
            "--burst" => a.burst = value()?.parse().context("--burst")?,
            "--redundancy" => a.redundancy = value()?.parse().context("--redundancy")?,
            "--frame-bytes" => a.frame_bytes = value()?.parse().context("--frame-bytes")?,
            "--warmup" => a.warmup = Duration::from_secs_f64(value()?.parse().context("--warmup")?),
            "--bulk-cc" => {
                a.bulk_cc = value()?
                    .split(',')
                    .map(|c| Controller::parse(c).map_err(|e| anyhow!("--bulk-cc: {e}")))
                    .collect::<Result<_>>()?
            }
            "--wait-load" => a.wait_load = Some(value()?.parse().context("--wait-load")?),
            "--wait-minutes" => {
                a.wait_budget = Duration::from_secs_f64(
                    60.0 * value()?.parse::<f64>().context("--wait-minutes")?,
                )
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {} // a `cargo bench -- FILTER` word: nothing to filter here
        }
    }
    ensure!(a.seconds >= 1, "--seconds must be at least 1");
    ensure!(a.runs >= 1, "--runs must be at least 1");
    ensure!(!a.modes.is_empty(), "no mode to measure");
    ensure!(!a.scenarios.is_empty(), "no scenario to run");
    ensure!(
        (100_000..=1_000_000_000).contains(&a.rate_bps),
        "rate between 0.1 and 1000 Mbit/s"
    );
    ensure!(
        (Duration::from_millis(2)..=Duration::from_secs(5)).contains(&a.rtt),
        "RTT between 2 and 5000 ms"
    );
    ensure!((0.0..0.5).contains(&a.loss), "loss below 50 %");
    ensure!(a.burst >= 1.0, "--burst must be at least 1 packet");
    ensure!(!a.bulk_cc.is_empty(), "--bulk-cc needs a controller");
    a.modes.dedup();
    // Scenario 2 once per bulk controller.
    a.scenarios = a
        .scenarios
        .iter()
        .flat_map(|&s| match s {
            Scenario::Bulk(_) => (0..a.bulk_cc.len()).map(Scenario::Bulk).collect(),
            s => vec![s],
        })
        .collect();
    Ok(a)
}

// --- the frames ---------------------------------------------------------------------------------

/// `n` frames of the simulated 12-lead ECG, each one codec block of 20 samples per lead,
/// zero-padded to `min_len` bytes.
fn make_frames(n: usize, min_len: usize) -> Vec<Bytes> {
    let mut sim = Simulator::new(SimSpec::default());
    (0..n)
        .map(|_| {
            let block = sim.next_block(SAMPLES_PER_FRAME);
            let mut out = Vec::new();
            codec::encode(&block, &mut out);
            if out.len() < min_len {
                out.resize(min_len, 0);
            }
            Bytes::from(out)
        })
        .collect()
}

/// On the stream: `u32` big-endian length of what follows, `u32` seq, the codec block.
fn stream_frame(seq: u32, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + data.len());
    b.put_u32(4 + data.len() as u32);
    b.put_u32(seq);
    b.put_slice(data);
    b.freeze()
}

/// One datagram: a count, then per frame `u32` seq, `u16` length, the codec block; frame
/// `seq` first, then up to `extra` previous frames while they fit in `max` bytes.
fn datagram(seq: usize, frames: &[Bytes], extra: usize, max: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(max);
    b.put_u8(0);
    let mut count = 0u8;
    for s in (seq.saturating_sub(extra)..=seq).rev() {
        let f = &frames[s];
        if count > 0 && b.len() + 6 + f.len() > max {
            break;
        }
        b.put_u32(s as u32);
        b.put_u16(f.len() as u16);
        b.put_slice(f);
        count += 1;
    }
    b[0] = count;
    b.freeze()
}

/// The frame numbers inside a datagram (malformed tails are ignored).
fn datagram_seqs(mut d: Bytes) -> Vec<u32> {
    let mut seqs = Vec::new();
    if d.is_empty() {
        return seqs;
    }
    let count = d.get_u8();
    for _ in 0..count {
        if d.remaining() < 6 {
            break;
        }
        let seq = d.get_u32();
        let len = d.get_u16() as usize;
        if d.remaining() < len {
            break;
        }
        d.advance(len);
        seqs.push(seq);
    }
    seqs
}

// --- the receiver (the relay) ----------------------------------------------------------------------

/// First arrival of each frame of one flow, per path.
struct FlowRx {
    datagram: Mutex<Vec<Option<Instant>>>,
    stream: Mutex<Vec<Option<Instant>>>,
    /// The stream was finished by the cart (the recording is closed).
    stream_done: AtomicBool,
    done: tokio::sync::Notify,
}

impl FlowRx {
    fn new(n: usize) -> FlowRx {
        FlowRx {
            datagram: Mutex::new(vec![None; n]),
            stream: Mutex::new(vec![None; n]),
            stream_done: AtomicBool::new(false),
            done: tokio::sync::Notify::new(),
        }
    }
}

fn record(table: &Mutex<Vec<Option<Instant>>>, seq: u32, at: Instant) {
    let mut t = table.lock().unwrap();
    if let Some(slot) = t.get_mut(seq as usize) {
        slot.get_or_insert(at);
    }
}

struct Sink {
    flows: HashMap<Mode, Arc<FlowRx>>,
    bulk_bytes: Arc<AtomicU64>,
}

async fn serve(server: quinn::Endpoint, sink: Arc<Sink>) {
    while let Some(incoming) = server.accept().await {
        let sink = sink.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_conn(incoming, sink).await {
                eprintln!("receiver: {e:#}");
            }
        });
    }
}

async fn serve_conn(incoming: quinn::Incoming, sink: Arc<Sink>) -> Result<()> {
    let (conn, _peer) = yilian_transport::accept(incoming).await?;
    let (_send, mut recv) = conn.accept_bi().await?;
    let mut tag = [0u8; 1];
    recv.read_exact(&mut tag).await?;
    if tag[0] == BULK_TAG {
        // Ends with the upload's reset (or the connection's close) at the end of the run.
        while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
            sink.bulk_bytes
                .fetch_add(chunk.bytes.len() as u64, Ordering::Relaxed);
        }
        return Ok(());
    }
    let mode = Mode::from_tag(tag[0]).ok_or_else(|| anyhow!("unknown tag {}", tag[0]))?;
    let flow = sink
        .flows
        .get(&mode)
        .ok_or_else(|| anyhow!("no flow for mode {mode:?}"))?
        .clone();
    let datagrams = {
        let (conn, flow) = (conn.clone(), flow.clone());
        tokio::spawn(async move {
            while let Ok(d) = conn.read_datagram().await {
                let now = Instant::now();
                for seq in datagram_seqs(d) {
                    record(&flow.datagram, seq, now);
                }
            }
        })
    };
    // The stream: length-prefixed frames, stamped when the chunk completing them is read.
    let mut buf = BytesMut::new();
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        let now = Instant::now();
        buf.extend_from_slice(&chunk.bytes);
        while buf.len() >= 4 {
            let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let mut frame = buf.split_to(4 + len);
            frame.advance(4);
            record(&flow.stream, frame.get_u32(), now);
        }
    }
    flow.stream_done.store(true, Ordering::Release);
    flow.done.notify_one();
    // Keep reading datagrams until the cart closes the connection.
    let _ = datagrams.await;
    Ok(())
}

// --- the carts ----------------------------------------------------------------------------------------

struct Cart {
    mode: Mode,
    conn: quinn::Connection,
    send: quinn::SendStream,
    max_datagram: usize,
    _endpoint: quinn::Endpoint,
}

async fn cart(pki: &Pki, target: &str, mode: Mode) -> Result<Cart> {
    let tuning = Tuning::default();
    let endpoint = client_endpoint(&pki.client, &tuning, false)?;
    let (conn, _) = connect(&endpoint, target).await?;
    let max_datagram = if mode.on_datagrams() {
        conn.max_datagram_size().ok_or_else(|| {
            anyhow!("the relay's transport parameters disable QUIC datagrams (max_datagram_size() is None)")
        })?
    } else {
        0
    };
    let (mut send, _recv) = conn.open_bi().await?;
    send.write_all(&[mode.tag()]).await?;
    Ok(Cart {
        mode,
        conn,
        send,
        max_datagram,
        _endpoint: endpoint,
    })
}

/// What a cart did: the send instant of every frame, datagrams refused by quinn.
struct Sent {
    max_datagram: usize,
    at: Vec<Instant>,
    datagram_errors: u64,
    srtt: Duration,
    lost_packets: u64,
    sent_packets: u64,
}

async fn run_cart(
    mut cart: Cart,
    frames: Arc<Vec<Bytes>>,
    start: tokio::time::Instant,
    redundancy: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Sent> {
    let mut ticks = tokio::time::interval_at(start, FRAME_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let extra = if cart.mode == Mode::Redundant {
        redundancy
    } else {
        0
    };
    let mut at = Vec::with_capacity(frames.len());
    let mut datagram_errors = 0;
    for (seq, data) in frames.iter().enumerate() {
        ticks.tick().await;
        at.push(Instant::now());
        if cart.mode.on_datagrams() {
            // The path MTU may change (quinn's MTU discovery): ask for every frame.
            let max = cart.conn.max_datagram_size().unwrap_or(cart.max_datagram);
            cart.max_datagram = cart.max_datagram.min(max);
            let d = datagram(seq, &frames, extra, max);
            if cart.conn.send_datagram(d).is_err() {
                datagram_errors += 1;
            }
        }
        if cart.mode.on_stream() {
            cart.send
                .write_chunk(stream_frame(seq as u32, data))
                .await?;
        }
    }
    cart.send.finish()?;
    let _ = stop.wait_for(|&s| s).await;
    let stats = cart.conn.stats();
    cart.conn.close(0u32.into(), b"done");
    Ok(Sent {
        max_datagram: cart.max_datagram,
        at,
        datagram_errors,
        srtt: stats.path.rtt,
        lost_packets: stats.path.lost_packets,
        sent_packets: stats.path.sent_packets,
    })
}

/// The bulk upload: one stream, written as fast as flow and congestion control allow.
async fn bulk(
    pki: &Pki,
    target: &str,
    controller: &Controller,
    stop: Arc<AtomicBool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let tuning = controller.tuning();
    let mut endpoint = client_endpoint(&pki.client, &tuning, false)?;
    if let Some(bdp) = &controller.bdp {
        let mut transport = tuning.transport_config();
        transport.congestion_controller_factory(Arc::new(bdp.clone()));
        let mut config = client_config(&pki.client, &tuning)?;
        config.transport_config(Arc::new(transport));
        endpoint.set_default_client_config(config);
    }
    let (conn, _) = connect(&endpoint, target).await?;
    let (mut send, _recv) = conn.open_bi().await?;
    send.write_all(&[BULK_TAG]).await?;
    let chunk = Bytes::from((0..BULK_CHUNK).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
    Ok(tokio::spawn(async move {
        let _endpoint = endpoint;
        while !stop.load(Ordering::Relaxed) {
            if send.write_chunk(chunk.clone()).await.is_err() {
                break;
            }
        }
        let _ = send.reset(0u32.into());
        conn.close(0u32.into(), b"done");
    }))
}

// --- one run -----------------------------------------------------------------------------------------

struct FlowResult {
    mode: Mode,
    sent: usize,
    /// Latency of the first copy of each frame received on the live path.
    live: Vec<Duration>,
    /// Frames received on the recording path (the stream; for B, the datagrams).
    recorded: usize,
    recording_closed: bool,
    datagram_errors: u64,
    srtt: Duration,
    lost_packets: u64,
    sent_packets: u64,
    max_datagram: usize,
    /// Frames per datagram (mode D: 1 + the previous frames that fit), at the largest frame.
    per_datagram: usize,
}

struct RunResult {
    scenario: Scenario,
    run: u64,
    seed: u64,
    flows: Vec<FlowResult>,
    /// Bulk goodput over the ECG's seconds, bit/s.
    bulk_bps: Option<f64>,
    queue_drops: u64,
    offered: u64,
    max_queue_delay: Duration,
    load_before: String,
    load_after: String,
}

async fn run_once(
    a: &Args,
    pki: &Pki,
    frames: &Arc<Vec<Bytes>>,
    scenario: Scenario,
    run: u64,
) -> Result<RunResult> {
    let seed = a.seed + run - 1;
    let load_before = load_average();
    let spec = scenario.spec(a)?;
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let server = server_endpoint(any, &pki.server, &Tuning::default())?;
    let proxy = UdpProxy::start(any, server.local_addr()?, spec.clone(), spec, seed).await?;
    let target = proxy.local_addr().to_string();
    let n = frames.len();
    let sink = Arc::new(Sink {
        flows: a
            .modes
            .iter()
            .map(|&m| (m, Arc::new(FlowRx::new(n))))
            .collect(),
        bulk_bytes: Arc::new(AtomicU64::new(0)),
    });
    let serving = tokio::spawn(serve(server.clone(), sink.clone()));

    let mut carts = Vec::new();
    for &mode in &a.modes {
        carts.push(
            cart(pki, &target, mode)
                .await
                .with_context(|| format!("connect the cart of mode {}", mode.label()))?,
        );
    }
    let bulk_stop = Arc::new(AtomicBool::new(false));
    let bulk_task = if let Scenario::Bulk(i) = scenario {
        let task = bulk(pki, &target, &a.bulk_cc[i], bulk_stop.clone())
            .await
            .context("start the bulk upload")?;
        tokio::time::sleep(a.warmup).await;
        Some(task)
    } else {
        None
    };

    // Every cart ticks from the same instant.
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    // The relay's order while an urgent ECG of the site is live (`relay/src/uplink.rs`): held
    // from the session's start to its end (the bench holds it itself; the product's lease and
    // renewals are tested in `tests/ecg.rs` and `crates/relay/src/uplink.rs`).
    let uplink = match scenario {
        Scenario::Bulk(i) => a.bulk_cc[i].uplink().cloned(),
        _ => None,
    };
    if let Some(order) = &uplink {
        order.hold_for(
            Instant::now(),
            FRAME_INTERVAL * n as u32 + a.rtt * 4 + DRAIN_TIMEOUT,
        );
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = carts
        .into_iter()
        .map(|c| {
            tokio::spawn(run_cart(
                c,
                frames.clone(),
                start,
                a.redundancy,
                stop_rx.clone(),
            ))
        })
        .collect();
    tokio::time::sleep_until(start).await;
    let bulk_at_start = sink.bulk_bytes.load(Ordering::Relaxed);
    let t_start = Instant::now();
    tokio::time::sleep_until(start + FRAME_INTERVAL * n as u32).await;
    let bulk_bps = bulk_task.as_ref().map(|_| {
        let bytes = sink.bulk_bytes.load(Ordering::Relaxed) - bulk_at_start;
        bytes as f64 * 8.0 / t_start.elapsed().as_secs_f64()
    });

    // Late datagrams, then the recordings' last retransmissions.
    tokio::time::sleep(a.rtt * 4).await;
    let drain = async {
        for (mode, flow) in &sink.flows {
            if mode.on_stream() {
                while !flow.stream_done.load(Ordering::Acquire) {
                    flow.done.notified().await;
                }
            }
        }
    };
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_ok();
    if !drained {
        eprintln!("warning: a recording stream did not finish within {DRAIN_TIMEOUT:?}");
    }
    bulk_stop.store(true, Ordering::Relaxed);
    if let Some(order) = &uplink {
        order.release();
    }
    let link = proxy.stats();
    let _ = stop.send(true);
    let mut sent = Vec::new();
    for t in tasks {
        sent.push(t.await.context("cart task")??);
    }
    if let Some(t) = bulk_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    server.close(0u32.into(), b"run over");
    let _ = tokio::time::timeout(Duration::from_secs(2), server.wait_idle()).await;
    serving.abort();
    proxy.shutdown();

    let flows = a
        .modes
        .iter()
        .zip(sent)
        .map(|(&mode, sent)| {
            let rx = &sink.flows[&mode];
            let dg = rx.datagram.lock().unwrap();
            let st = rx.stream.lock().unwrap();
            let live = (0..n)
                .filter_map(|i| {
                    let first = match mode {
                        Mode::Stream => st[i],
                        Mode::Datagram => dg[i],
                        Mode::Both | Mode::Redundant => match (dg[i], st[i]) {
                            (Some(x), Some(y)) => Some(x.min(y)),
                            (x, y) => x.or(y),
                        },
                    };
                    first.map(|t| t.saturating_duration_since(sent.at[i]))
                })
                .collect();
            let recorded = if mode.on_stream() {
                st.iter().flatten().count()
            } else {
                dg.iter().flatten().count()
            };
            FlowResult {
                mode,
                sent: n,
                live,
                recorded,
                recording_closed: mode.on_stream() && rx.stream_done.load(Ordering::Acquire),
                datagram_errors: sent.datagram_errors,
                srtt: sent.srtt,
                lost_packets: sent.lost_packets,
                sent_packets: sent.sent_packets,
                max_datagram: sent.max_datagram,
                per_datagram: if mode.on_datagrams() {
                    let extra = if mode == Mode::Redundant {
                        a.redundancy
                    } else {
                        0
                    };
                    (0..n)
                        .skip(extra)
                        .map(|i| datagram_seqs(datagram(i, frames, extra, sent.max_datagram)).len())
                        .min()
                        .unwrap_or(0)
                } else {
                    0
                },
            }
        })
        .collect();
    Ok(RunResult {
        scenario,
        run,
        seed,
        flows,
        bulk_bps,
        queue_drops: link.up.dropped_queue,
        offered: link.up.offered,
        max_queue_delay: link.up.max_queue_delay,
        load_before,
        load_after: load_average(),
    })
}

// --- figures -----------------------------------------------------------------------------------------

/// Nearest-rank percentile of sorted `v` (`p` in 0..=100).
fn percentile(v: &[Duration], p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("—".into(), |d| format!("{:.0}", d.as_secs_f64() * 1000.0))
}

/// `d − base` in ms, signed.
fn ms_minus(d: Option<Duration>, base: Duration) -> String {
    d.map_or("—".into(), |d| {
        format!("{:+.0}", (d.as_secs_f64() - base.as_secs_f64()) * 1000.0)
    })
}

/// Latency figures of one or more flows' live paths, pooled.
struct Figures {
    sent: usize,
    received: usize,
    recorded: usize,
    on_time: usize,
    p50: Option<Duration>,
    p90: Option<Duration>,
    p99: Option<Duration>,
    max: Option<Duration>,
    /// p99 over every frame sent, a lost frame counting as never arriving (None = lost).
    p99_strict: Option<Duration>,
}

fn figures<'a>(flows: impl Iterator<Item = &'a FlowResult>, budget: Duration) -> Figures {
    let (mut sent, mut recorded, mut lat) = (0, 0, Vec::new());
    for f in flows {
        sent += f.sent;
        recorded += f.recorded;
        lat.extend_from_slice(&f.live);
    }
    lat.sort();
    let received = lat.len();
    let rank = ((0.99 * sent as f64).ceil() as usize).max(1);
    Figures {
        sent,
        received,
        recorded,
        on_time: lat.iter().filter(|&&d| d <= budget).count(),
        p50: percentile(&lat, 50.0),
        p90: percentile(&lat, 90.0),
        p99: percentile(&lat, 99.0),
        max: lat.last().copied(),
        p99_strict: lat.get(rank - 1).copied(),
    }
}

fn pct(a: usize, b: usize) -> f64 {
    100.0 * a as f64 / b.max(1) as f64
}

fn print_run(a: &Args, r: &RunResult) {
    let budget = a.budget();
    for f in &r.flows {
        let fig = figures(std::iter::once(f), budget);
        let bulk = r.bulk_bps.map_or("—".into(), |b| {
            format!("{:.1} ({:.0} %)", b / 1e6, 100.0 * b / a.rate_bps as f64)
        });
        let recording = if f.mode.on_stream() {
            format!(
                "{}/{}{}",
                f.recorded,
                f.sent,
                if f.recording_closed { "" } else { " (open)" }
            )
        } else {
            format!("{}/{} (datagrams)", f.recorded, f.sent)
        };
        println!(
            "| {} | {} | {} | {} | {}/{} | {} | {} | {} | {} | {} | {:.1} % | {} | {} | {} ({:.1} %) | {} | {} | {:.1} % |{}",
            r.scenario.name(a),
            f.mode.label(),
            r.run,
            r.seed,
            fig.received,
            fig.sent,
            recording,
            ms(fig.p50),
            ms(fig.p90),
            ms(fig.p99),
            ms(fig.max),
            pct(fig.on_time, fig.sent),
            ms_minus(fig.p99, a.one_way()),
            bulk,
            r.queue_drops,
            pct(r.queue_drops as usize, r.offered as usize),
            r.max_queue_delay.as_millis(),
            f.srtt.as_millis(),
            pct(f.lost_packets as usize, f.sent_packets as usize),
            if f.datagram_errors > 0 {
                format!(" {} datagrams refused by quinn", f.datagram_errors)
            } else {
                String::new()
            },
        );
    }
}

fn print_summary(a: &Args, results: &[RunResult]) -> Vec<String> {
    let budget = a.budget();
    println!(
        "\n### Summary: frames of all runs pooled per scenario and mode (p99 range = per-run p99s)\n"
    );
    println!("| scenario | mode | runs | live frames received | recording complete | p50 ms | p90 ms | p99 ms (runs) | max ms | p99 − one-way ms | on time ≤ {} ms | p99 of all sent (lost = ∞) | meets target (live: p99 of all sent ≤ budget in every run) |", budget.as_millis());
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut verdicts = Vec::new();
    for &s in &a.scenarios {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.scenario == s).collect();
        if runs.is_empty() {
            continue;
        }
        let mut ok_modes = Vec::new();
        for &m in &a.modes {
            let flows: Vec<&FlowResult> = runs
                .iter()
                .flat_map(|r| r.flows.iter().filter(move |f| f.mode == m))
                .collect();
            let fig = figures(flows.iter().copied(), budget);
            let per_run: Vec<Duration> = flows
                .iter()
                .filter_map(|f| figures(std::iter::once(*f), budget).p99)
                .collect();
            let lo = per_run.iter().min().copied();
            let hi = per_run.iter().max().copied();
            let complete = m.on_stream()
                && flows
                    .iter()
                    .all(|f| f.recorded == f.sent && f.recording_closed);
            // Every run on its own must keep p99 (lost frames counted as late) within budget.
            let runs_ok = flows
                .iter()
                .filter(|f| {
                    figures(std::iter::once(**f), budget)
                        .p99_strict
                        .is_some_and(|d| d <= budget)
                })
                .count();
            let live_ok = runs_ok == flows.len();
            let meets = live_ok && complete;
            if meets {
                ok_modes.push(m.label());
            }
            let verdict = format!(
                "{} (live in {runs_ok}/{} runs)",
                match (live_ok, complete) {
                    (true, true) => "yes",
                    (true, false) => "live only",
                    (false, true) => "recording only",
                    (false, false) => "no",
                },
                flows.len()
            );
            println!(
                "| {} | {} | {} | {}/{} ({:.2} %) | {} | {} | {} | {} ({}–{}) | {} | {} | {:.2} % | {} | {} |",
                s.name(a),
                m.label(),
                runs.len(),
                fig.received,
                fig.sent,
                pct(fig.received, fig.sent),
                if m.on_stream() {
                    format!("{}/{}{}", fig.recorded, fig.sent, if complete { "" } else { " (no)" })
                } else {
                    format!("no ({}/{})", fig.recorded, fig.sent)
                },
                ms(fig.p50),
                ms(fig.p90),
                ms(fig.p99),
                ms(lo),
                ms(hi),
                ms(fig.max),
                ms_minus(fig.p99, a.one_way()),
                pct(fig.on_time, fig.sent),
                fig.p99_strict.map_or("lost".into(), |d| ms(Some(d))),
                verdict,
            );
        }
        let bulk: Vec<f64> = runs.iter().filter_map(|r| r.bulk_bps).collect();
        let bulk = if bulk.is_empty() {
            String::new()
        } else {
            format!(
                "; bulk upload {} Mbit/s of {}",
                bulk.iter()
                    .map(|b| format!("{:.1}", b / 1e6))
                    .collect::<Vec<_>>()
                    .join(", "),
                a.rate_bps / 1_000_000
            )
        };
        verdicts.push(format!(
            "scenario {} ({}): {}{bulk}",
            s.name(a),
            s.describe(a),
            if ok_modes.is_empty() {
                "no mode meets p99 < one-way + 50 ms with a complete recording".to_string()
            } else {
                format!(
                    "meets p99 < one-way + 50 ms with a complete recording: {}",
                    ok_modes.join(", ")
                )
            }
        ));
    }
    verdicts
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn one_minute_load() -> f64 {
    load_average()
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (checking every minute) until the 1-minute load is below `limit`, or `deadline`.
async fn wait_for_quiet(limit: f64, deadline: Instant) {
    while one_minute_load() >= limit && Instant::now() < deadline {
        eprintln!(
            "load {} ≥ {limit}: waiting 60 s for a quieter machine",
            load_average()
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

fn main() -> Result<()> {
    let a = parse_args()?;
    let frames = Arc::new(make_frames(a.frames(), a.frame_bytes));
    let sizes: Vec<usize> = frames.iter().map(|f| f.len()).collect();
    let total: usize = sizes.iter().sum();
    println!(
        "ecg_transport: {} frames of 12 leads × {} samples ({} s at 25 frames/s); codec block {}–{} bytes, mean {:.0}",
        frames.len(),
        SAMPLES_PER_FRAME,
        a.seconds,
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        total as f64 / frames.len().max(1) as f64
    );
    println!(
        "link: LinkSpec::rural({} bit/s, {} ms RTT, {} %) both ways, one-way {} ms, target: live p99 ≤ {} ms; modes {}; seeds {}..={}; load average {}",
        a.rate_bps,
        a.rtt.as_millis(),
        a.loss * 100.0,
        a.one_way().as_millis(),
        a.budget().as_millis(),
        a.modes.iter().map(|m| m.letter()).collect::<Vec<_>>().join(","),
        a.seed,
        a.seed + a.runs - 1,
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let pki = Pki::generate("ecg transport bench");
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        let mut header = false;
        let wait_deadline = Instant::now() + a.wait_budget;
        for &s in &a.scenarios {
            for run in 1..=a.runs {
                if let Some(limit) = a.wait_load {
                    wait_for_quiet(limit, wait_deadline).await;
                }
                let r = run_once(&a, &pki, &frames, s, run)
                    .await
                    .with_context(|| format!("scenario {} run {run}", s.name(&a)))?;
                if !header {
                    println!("\n### Runs\n");
                    println!("| scenario | mode | run | seed | live received | recording (stream) | p50 ms | p90 ms | p99 ms | max ms | on time ≤ {} ms | p99 − one-way ms | bulk Mbit/s (of link) | queue drops (% offered) | max queue delay ms | ECG srtt end ms | ECG packets lost (QUIC) |", a.budget().as_millis());
                    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                    header = true;
                }
                print_run(&a, &r);
                eprintln!(
                    "  scenario {} run {}: load average {} → {}",
                    s.name(&a),
                    run,
                    r.load_before,
                    r.load_after
                );
                results.push(r);
            }
        }
        Ok::<_, anyhow::Error>(results)
    })?;
    let verdicts = print_summary(&a, &results);
    println!();
    for &m in &a.modes {
        let flows = results
            .iter()
            .flat_map(|r| r.flows.iter().filter(move |f| f.mode == m));
        if let Some(f) = flows.clone().next().filter(|_| m.on_datagrams()) {
            println!(
                "{}: smallest max_datagram_size() {} bytes; at least {} frame(s) per datagram at that size",

                m.label(),
                f.max_datagram,
                flows.map(|f| f.per_datagram).min().unwrap_or(0)
            );
        }
    }
    println!();
    for v in verdicts {
        println!("- {v}");
    }
    println!();
    for r in &results {
        println!(
            "scenario {} run {} (seed {}): load average {} before, {} after",
            r.scenario.name(&a),
            r.run,
            r.seed,
            r.load_before,
            r.load_after
        );
    }
    println!("load average at the end {}", load_average());
    Ok(())
}
