//! End-to-end throughput of yilian's streaming core, sender → relay → readers, in one process
//! on loopback, against raw quinn measured in the same run (design §5).
//!
//! ```text
//! cargo bench --bench e2e_throughput                                   # 1 GiB, readers 0,1,10, 3 runs
//! cargo bench --bench e2e_throughput -- --size-mib 1024 --readers 0,1,10 --runs 3 --ct-slices 300
//! cargo bench --bench e2e_throughput -- --quick                        # 64 MiB, 1 run (CI smoke)
//! ```
//! Environment equivalents: `YILIAN_BENCH_SIZE_MIB`, `YILIAN_BENCH_READERS`, `YILIAN_BENCH_RUNS`,
//! `YILIAN_BENCH_CT_SLICES`, `YILIAN_BENCH_NO_LIGHT=1`, `YILIAN_BENCH_SKIP_RAW=1`,
//! `YILIAN_BENCH_QUICK=1`, `YILIAN_BENCH_BIGBUF=1` (see `--help`); `YILIAN_BENCH_CHECKPOINT_MIB` changes the relay's fsync checkpoint
//! cadence (`[spool] checkpoint_bytes`, default 16) for experiments; `YILIAN_BENCH_DIR` picks the scratch folder
//! (default: the system temp dir, or the target dir's tmp when the former is a tmpfs, since the
//! fsyncs must hit a real disk). `RUST_LOG=info` shows the relay's log.
//!
//! Per run, in this order:
//! * **raw quinn, 1 hop**: one connection, one stream, the same number of bytes from memory
//!   (256 KiB `Bytes`, never copied), receiver discarding; same certificates, same
//!   `Tuning::default()` transport config as yilian. The ceiling for one QUIC hop.
//! * **raw quinn, 2 hops**: client → forwarder → sink, the forwarder moving `Bytes` from one
//!   stream to the other (no disk, no hashing). yilian's path crosses QUIC twice on the same
//!   2 cores, so this is the ceiling for relay-in-the-middle.
//! * **yilian, N readers** (for each N of `--readers`): a fresh in-process relay (spool on a
//!   real disk, fsync'ed), N `yilian_client::read` readers subscribed first (a warm-up instance
//!   proves they are), then `yilian_client::send` of the ≥ 1 GiB instance. Timed until `send`
//!   returned (acknowledged: hashed, fsync'ed, committed) AND every reader committed its copy
//!   (hashed, fsync'ed, renamed). Ingest = bytes / time; egress = N × bytes / time.
//!   N = 0 is the **upload hop alone**: sender → relay, timed until `send` returned, i.e.
//!   every byte hashed, fsync'ed and committed. It crosses QUIC once, like raw quinn 1 hop, so
//!   that ratio is the cost of durability (BLAKE3 on both sides, DICOM walk, write, fsync).
//! * **yilian, N light readers** (`--no-light` leaves them out): the same with readers that
//!   speak yilian/1 but only count and drop the bytes and answer `Stored` (no hashing, no disk).
//!   All readers share this process's 2 cores with the relay and the sender, so with 10 full
//!   readers the machine mostly measures 10 × (BLAKE3 + write + fsync) of the readers; light
//!   readers show what the relay itself can fan out.
//! * **yilian, CT series** (`--ct-slices`, 0 = off): 300 slices of 512×512 to 1 reader: files/s.
//!
//! Fixture generation and checks (hash of the delivered copy) are outside the timings.
//! Everything runs on 127.0.0.1 and every scratch folder is removed at the end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use yilian_client::{ClientConfig, FileOutcome, NoProgress, Progress, ReadOptions, SendOptions};
use yilian_proto::{encode_frame, FrameDecoder, Receiver, ReceiverEvent, Request, Subscribe};
use yilian_relay::{ConfigFile, Relay};
use yilian_route::Topology;
use yilian_testkit::{Generated, StudySpec};
use yilian_transport::{DevCa, PeerIdentity, TlsPem, Tuning};

mod common;
use common::{fs_type, scratch_base};

const MIB: u64 = 1 << 20;
const MB: f64 = 1e6;
const CHUNK: usize = 256 * 1024;
const DEVICE: &str = "township-a-device";
const RELAY: &str = "county-relay";

const USAGE: &str = "\
usage: cargo bench --bench e2e_throughput -- [--size-mib N] [--readers 1,10] [--runs N]
                                             [--ct-slices N] [--no-light] [--skip-raw]
                                             [--bigbuf] [--quick]
  --size-mib N     size of the large instance's pixel data (default 1024)
  --readers LIST   reader counts, one scenario each; 0 = upload only (default 0,1,10)
  --runs N         runs; the summary shows medians (default 3)
  --ct-slices N    CT series scenario with N slices to 1 reader, 0 = off (default 300)
  --no-light       leave out the light-reader scenarios (relay alone, readers discard)
  --skip-raw       leave out the raw quinn references (e.g. to profile yilian alone)
  --bigbuf         experiment: raise every UDP socket of yilian's relay, sender and readers
                   to 4 MiB buffers (what a transport fix would do); default: as shipped
  --quick          64 MiB, 1 run, 30 CT slices (CI smoke)";

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Clone)]
struct Args {
    size_mib: u64,
    readers: Vec<usize>,
    runs: usize,
    ct_slices: usize,
    /// Also run every reader count with light readers (relay alone).
    light: bool,
    /// Leave out the raw quinn references (for profiling yilian alone).
    skip_raw: bool,
    /// Experiment: give yilian's sockets 4 MiB buffers (see `enlarge_udp_sockets`).
    bigbuf: bool,
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            x.trim()
                .parse::<usize>()
                .context("--readers: a list like 1,10")
        })
        .collect::<Result<_>>()?;
    ensure!(
        !v.is_empty() && v.iter().all(|&n| n <= 64),
        "--readers: counts between 0 (upload only) and 64"
    );
    Ok(v)
}

fn parse_args() -> Result<Args> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut size: Option<u64> = env("YILIAN_BENCH_SIZE_MIB")
        .map(|v| v.parse())
        .transpose()?;
    let mut readers: Option<Vec<usize>> = env("YILIAN_BENCH_READERS")
        .map(|v| parse_list(&v))
        .transpose()?;
    let mut runs: Option<usize> = env("YILIAN_BENCH_RUNS").map(|v| v.parse()).transpose()?;
    let mut ct: Option<usize> = env("YILIAN_BENCH_CT_SLICES")
        .map(|v| v.parse())
        .transpose()?;
    let mut quick = env("YILIAN_BENCH_QUICK").is_some_and(|v| v != "0");
    let mut light = env("YILIAN_BENCH_NO_LIGHT").is_none_or(|v| v == "0");
    let mut skip_raw = env("YILIAN_BENCH_SKIP_RAW").is_some_and(|v| v != "0");
    let mut bigbuf = env("YILIAN_BENCH_BIGBUF").is_some_and(|v| v != "0");
    let mut flags = common::Flags::new(USAGE);
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(&flag, inline.clone());
        match flag.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--quick" => quick = true,
            "--no-light" => light = false,
            "--skip-raw" => skip_raw = true,
            "--bigbuf" => bigbuf = true,
            "--size-mib" => size = Some(value()?.parse().context("--size-mib")?),
            "--readers" => readers = Some(parse_list(&value()?)?),
            "--runs" => runs = Some(value()?.parse().context("--runs")?),
            "--ct-slices" => ct = Some(value()?.parse().context("--ct-slices")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {} // a `cargo bench -- FILTER` word: this bench has no sub-benchmarks to filter
        }
    }
    let a = Args {
        size_mib: size.unwrap_or(if quick { 64 } else { 1024 }).max(1),
        readers: readers.unwrap_or_else(|| vec![0, 1, 10]),
        runs: runs.unwrap_or(if quick { 1 } else { 3 }).max(1),
        ct_slices: ct.unwrap_or(if quick { 30 } else { 300 }),
        light,
        skip_raw,
        bigbuf,
    };
    ensure!(
        a.size_mib * MIB <= yilian_testkit::LARGE_MAX_PIXEL_BYTES,
        "--size-mib: at most {} MiB (one instance)",
        yilian_testkit::LARGE_MAX_PIXEL_BYTES / MIB
    );
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// Scratch space, PKI, topology

fn reader_name(i: usize) -> String {
    if i == 0 {
        "county-radiology".into()
    } else {
        format!("county-radiology-{}", i + 1)
    }
}

/// The example topology plus readers 2..=n of county/radiology (where township CT is routed).
fn topology(readers: usize) -> Result<Topology> {
    let mut t = Topology::example_toml().to_string();
    for i in 1..readers {
        t.push_str(&format!(
            "\n[[identity]]\nname = \"{}\"\nsite = \"county\"\nrole = \"reader\"\ndepartment = \"radiology\"\n",
            reader_name(i)
        ));
    }
    Topology::from_toml_str(&t).map_err(|e| anyhow!("bench topology: {e}"))
}

/// A throw-away alliance PKI in memory: a leaf for every identity of `topology(max_readers)`.
struct Pki {
    ca: String,
    leaves: std::collections::BTreeMap<String, (String, String)>,
}

impl Pki {
    fn new(max_readers: usize) -> Result<Pki> {
        let ca = DevCa::generate("bench alliance")?;
        let now = time::OffsetDateTime::now_utc();
        let mut leaves = std::collections::BTreeMap::new();
        for id in topology(max_readers)?.identities() {
            let pid = PeerIdentity {
                name: id.name.clone(),
                site: id.site.clone(),
                role: id.role.as_str().parse()?,
                department: id.department.clone(),
            };
            let dns: Vec<String> = if id.role.as_str() == "relay" {
                vec!["localhost".into(), "127.0.0.1".into()]
            } else {
                vec![]
            };
            let leaf = ca.issue(
                &pid,
                &dns,
                now - time::Duration::hours(1),
                now + time::Duration::days(2),
            )?;
            leaves.insert(id.name.clone(), leaf);
        }
        Ok(Pki {
            ca: ca.ca_pem(),
            leaves,
        })
    }

    fn tls(&self, name: &str) -> Result<TlsPem> {
        let (cert, key) = self
            .leaves
            .get(name)
            .ok_or_else(|| anyhow!("no certificate for {name}"))?;
        Ok(TlsPem {
            cert: cert.clone(),
            key: key.clone(),
            ca: self.ca.clone(),
        })
    }
}

fn loopback0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Busy and total jiffies of all CPUs (`/proc/stat`), to see what else ran meanwhile.
fn system_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

/// UDP datagrams received and dropped for lack of socket buffer (`/proc/net/snmp`, whole
/// machine: on loopback, a drop is a QUIC packet lost).
fn udp_counters() -> (u64, u64) {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return (0, 0);
    };
    let field = |name: &str| {
        let i = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(i)?.parse::<u64>().ok()
    };
    (
        field("InDatagrams").unwrap_or(0),
        field("RcvbufErrors").unwrap_or(0),
    )
}

/// Counters at the start of a measurement.
struct Meter {
    t0: Instant,
    cpu: f64,
    sys: (u64, u64),
    udp: (u64, u64),
}

impl Meter {
    fn start() -> Meter {
        Meter {
            cpu: cpu_seconds(),
            sys: system_jiffies(),
            udp: udp_counters(),
            t0: Instant::now(),
        }
    }

    fn sample(&self, bytes: u64, copies: usize, files: usize) -> Sample {
        let secs = self.t0.elapsed().as_secs_f64();
        let (busy, total) = system_jiffies();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let busy_share =
            (busy - self.sys.0) as f64 / (total.saturating_sub(self.sys.1)).max(1) as f64;
        let (udp_in, udp_drops) = udp_counters();
        Sample {
            bytes,
            copies,
            files,
            secs,
            cpu: cpu_seconds() - self.cpu,
            machine_cores: busy_share * cpus,
            udp_in: udp_in - self.udp.0,
            udp_drops: udp_drops - self.udp.1,
            send_secs: secs,
            first_reader: secs,
            last_reader: secs,
        }
    }
}

/// Pseudo-random payload for the raw references (QUIC encrypts it anyway).
fn payload() -> Bytes {
    let mut v = Vec::with_capacity(CHUNK);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    while v.len() < CHUNK {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(CHUNK);
    Bytes::from(v)
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Bytes that crossed the system once (ingest).
    bytes: u64,
    /// Copies delivered (readers); 1 for the raw references.
    copies: usize,
    files: usize,
    secs: f64,
    /// CPU seconds of the whole process during the measurement.
    cpu: f64,
    /// Busy cores of the whole machine meanwhile (this process and anything else).
    machine_cores: f64,
    /// UDP datagrams received / dropped (receive buffer full) on the machine meanwhile.
    udp_in: u64,
    udp_drops: u64,
    /// yilian only: when `send` returned (acknowledged), and first/last reader done.
    send_secs: f64,
    first_reader: f64,
    last_reader: f64,
}

impl Sample {
    fn mbps(&self) -> f64 {
        self.bytes as f64 / MB / self.secs
    }
}

// --- raw quinn --------------------------------------------------------------------------------

/// Accept one connection and one stream; count and discard; answer one byte at the end.
async fn sink(ep: quinn::Endpoint) -> Result<u64> {
    let conn = ep.accept().await.context("sink: no connection")?.await?;
    let (mut s, mut r) = conn.accept_bi().await?;
    let mut n = 0u64;
    while let Some(c) = r.read_chunk(usize::MAX, true).await? {
        n += c.bytes.len() as u64;
    }
    s.write_all(&[1]).await?;
    s.finish()?;
    conn.closed().await;
    Ok(n)
}

/// Accept one connection and one stream, forward every chunk to `down` (no copy), relay the
/// sink's answer back.
async fn forwarder(ep: quinn::Endpoint, down: quinn::Connection) -> Result<u64> {
    let conn = ep
        .accept()
        .await
        .context("forwarder: no connection")?
        .await?;
    let (mut up_s, mut up_r) = conn.accept_bi().await?;
    let (mut dn_s, mut dn_r) = down.open_bi().await?;
    let mut n = 0u64;
    while let Some(c) = up_r.read_chunk(usize::MAX, true).await? {
        n += c.bytes.len() as u64;
        dn_s.write_chunk(c.bytes).await?;
    }
    dn_s.finish()?;
    let ack = dn_r.read_to_end(64).await?;
    up_s.write_all(&ack).await?;
    up_s.finish()?;
    conn.closed().await;
    down.close(0u32.into(), b"done");
    Ok(n)
}

/// Client side of a raw transfer: connect, one stream of `total` bytes, wait for the answer.
async fn push(client: &quinn::Endpoint, to: SocketAddr, total: u64) -> Result<()> {
    let data = payload();
    let (conn, _) = yilian_transport::connect(client, &to.to_string()).await?;
    let (mut s, mut r) = conn.open_bi().await?;
    let mut left = total;
    while left > 0 {
        let n = left.min(data.len() as u64) as usize;
        s.write_chunk(data.slice(..n)).await?;
        left -= n as u64;
    }
    s.finish()?;
    let ack = r.read_to_end(64).await?;
    ensure!(ack == [1], "raw transfer: no answer from the sink");
    conn.close(0u32.into(), b"done");
    Ok(())
}

async fn close_endpoint(ep: &quinn::Endpoint) {
    ep.close(0u32.into(), b"bench over");
    let _ = tokio::time::timeout(Duration::from_secs(5), ep.wait_idle()).await;
}

/// Socket buffer size asked for by the `bigbuf` raw variants (the kernel caps it at
/// `net.core.rmem_max` / `wmem_max`).
const BIG_SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket on 127.0.0.1 with `SO_RCVBUF` / `SO_SNDBUF` raised to `bytes`; returns the
/// receive buffer the kernel granted.
fn udp_socket_with_buffers(bytes: usize) -> Result<(std::net::UdpSocket, usize)> {
    use std::os::fd::AsRawFd;
    let socket = std::net::UdpSocket::bind(loopback0())?;
    let fd = socket.as_raw_fd();
    let v = bytes as libc::c_int;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket, a c_int option value and its size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        ensure!(r == 0, "setsockopt: {}", std::io::Error::last_os_error());
    }
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above, reading the option back.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        );
    }
    Ok((socket, got.max(0) as usize))
}

/// Raise the buffers of every UDP socket of this process that has less than `bytes`; returns
/// how many were raised. The `--bigbuf` experiment runs this every few milliseconds during the
/// yilian scenarios, so that the relay's, the sender's and the readers' sockets (created inside
/// yilian's crates) get what a transport-level fix would give them.
fn enlarge_udp_sockets(bytes: usize) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut raised = 0;
    for fd in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::c_int>().ok())
    {
        let get = |opt: libc::c_int| {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: reading an int option; a non-socket fd fails with ENOTSOCK.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            (r == 0).then_some(v)
        };
        if get(libc::SO_TYPE) != Some(libc::SOCK_DGRAM) {
            continue;
        }
        // The kernel reports twice what was set.
        if get(libc::SO_RCVBUF).is_some_and(|v| (v as usize) < bytes) {
            let v = bytes as libc::c_int;
            for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
                // SAFETY: a datagram socket of this process, an int option.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        opt,
                        (&v as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
            raised += 1;
        }
    }
    raised
}

/// An endpoint like `yilian_transport::server_endpoint` / `client_endpoint` (same TLS, same
/// transport config) but on a socket with large kernel buffers.
fn bigbuf_endpoint(tls: &TlsPem, server: bool) -> Result<quinn::Endpoint> {
    let tuning = Tuning::default();
    let (socket, _) = udp_socket_with_buffers(BIG_SOCKET_BUFFER)?;
    let server_config = if server {
        Some(yilian_transport::server_config(tls, &tuning)?)
    } else {
        None
    };
    let runtime = quinn::default_runtime().ok_or_else(|| anyhow!("no tokio runtime"))?;
    let mut ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server_config,
        socket,
        runtime,
    )?;
    ep.set_default_client_config(yilian_transport::client_config(tls, &tuning)?);
    Ok(ep)
}

fn raw_server(pki: &Pki, bigbuf: bool) -> Result<quinn::Endpoint> {
    let tls = pki.tls(RELAY)?;
    if bigbuf {
        bigbuf_endpoint(&tls, true)
    } else {
        Ok(yilian_transport::server_endpoint(
            loopback0(),
            &tls,
            &Tuning::default(),
        )?)
    }
}

fn raw_client(pki: &Pki, bigbuf: bool) -> Result<quinn::Endpoint> {
    let tls = pki.tls(DEVICE)?;
    if bigbuf {
        bigbuf_endpoint(&tls, false)
    } else {
        Ok(yilian_transport::client_endpoint(
            &tls,
            &Tuning::default(),
            false,
        )?)
    }
}

async fn raw_one_hop(pki: &Pki, total: u64, bigbuf: bool) -> Result<Sample> {
    let server = raw_server(pki, bigbuf)?;
    let addr = server.local_addr()?;
    let sink = tokio::spawn(sink(server.clone()));
    let client = raw_client(pki, bigbuf)?;
    let meter = Meter::start();
    tokio::time::timeout(limit(total, 1), push(&client, addr, total))
        .await
        .context("raw quinn 1 hop: timed out")??;
    let sample = meter.sample(total, 1, 1);
    let got = sink.await??;
    ensure!(got == total, "raw quinn: sink got {got} of {total} bytes");
    close_endpoint(&client).await;
    close_endpoint(&server).await;
    Ok(sample)
}

/// The least a durable upload must do, on raw quinn: the sender reads the file and hashes it
/// (BLAKE3) on a thread; the receiver hashes and writes it on a thread (starting write-back
/// every 8 MiB) and fsyncs it before it answers with the hash. No protocol, no DICOM walk, no index. yilian's upload-only scenario
/// against this line is the cost of everything yilian adds to the unavoidable work.
async fn raw_durable_one_hop(pki: &Pki, file: &Path, total: u64, dir: &Path) -> Result<Sample> {
    let server = raw_server(pki, false)?;
    let addr = server.local_addr()?;
    let out = dir.join("raw-durable.dcm");
    let sink = tokio::spawn(durable_sink(server.clone(), out.clone()));
    let client = raw_client(pki, false)?;
    let meter = Meter::start();
    let sent_hash = tokio::time::timeout(limit(total, 1), durable_push(&client, addr, file))
        .await
        .context("raw durable upload: timed out")??;
    let sample = meter.sample(total, 1, 1);
    let (got, hash) = sink.await??;
    ensure!(got == total, "raw durable upload: {got} of {total} bytes");
    ensure!(hash == sent_hash, "raw durable upload: hash differs");
    let _ = std::fs::remove_file(&out);
    close_endpoint(&client).await;
    close_endpoint(&server).await;
    Ok(sample)
}

async fn durable_push(client: &quinn::Endpoint, to: SocketAddr, file: &Path) -> Result<[u8; 32]> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let path = file.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || -> Result<[u8; 32]> {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut h = blake3::Hasher::new();
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            let n = (&mut f).take(CHUNK as u64).read_to_end(&mut buf)?;
            if n == 0 {
                return Ok(*h.finalize().as_bytes());
            }
            h.update(&buf);
            if tx.blocking_send(Bytes::from(buf)).is_err() {
                bail!("the stream stopped");
            }
        }
    });
    let (conn, _) = yilian_transport::connect(client, &to.to_string()).await?;
    let (mut s, mut r) = conn.open_bi().await?;
    while let Some(b) = rx.recv().await {
        s.write_chunk(b).await?;
    }
    s.finish()?;
    let hash = reader.await??;
    let answer = r.read_to_end(64).await?;
    ensure!(
        answer == hash,
        "raw durable upload: the receiver's hash differs"
    );
    conn.close(0u32.into(), b"done");
    Ok(hash)
}

async fn durable_sink(ep: quinn::Endpoint, out: PathBuf) -> Result<(u64, [u8; 32])> {
    let conn = ep.accept().await.context("sink: no connection")?.await?;
    let (mut s, mut r) = conn.accept_bi().await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || -> Result<(u64, [u8; 32])> {
        use std::io::Write;
        let mut f = std::fs::File::create(&out)?;
        let mut h = blake3::Hasher::new();
        let mut n = 0u64;
        let mut flushed = 0u64;
        while let Some(b) = rx.blocking_recv() {
            h.update(&b);
            f.write_all(&b)?;
            n += b.len() as u64;
            if n - flushed >= 8 << 20 {
                // Start write-back early (as yilian does), so the final fsync is short.
                use std::os::fd::AsRawFd;
                // SAFETY: valid fd; only schedules write-back.
                unsafe {
                    libc::sync_file_range(
                        f.as_raw_fd(),
                        flushed as libc::off64_t,
                        (n - flushed) as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                flushed = n;
            }
        }
        f.sync_all()?;
        Ok((n, *h.finalize().as_bytes()))
    });
    use tokio::io::AsyncReadExt;
    let mut buf = bytes::BytesMut::with_capacity(CHUNK);
    loop {
        if buf.capacity() < CHUNK / 4 {
            buf.reserve(CHUNK);
        }
        if r.read_buf(&mut buf).await? == 0 {
            break;
        }
        if buf.len() >= CHUNK / 2 {
            tx.send(buf.split().freeze()).await?;
        }
    }
    if !buf.is_empty() {
        tx.send(buf.split().freeze()).await?;
    }
    drop(tx);
    let (n, hash) = writer.await??;
    s.write_all(&hash).await?;
    s.finish()?;
    conn.closed().await;
    Ok((n, hash))
}

async fn raw_two_hops(pki: &Pki, total: u64, bigbuf: bool) -> Result<Sample> {
    let sink_ep = raw_server(pki, bigbuf)?;
    let sink_addr = sink_ep.local_addr()?;
    let sink = tokio::spawn(sink(sink_ep.clone()));
    let fwd_ep = raw_server(pki, bigbuf)?;
    let fwd_addr = fwd_ep.local_addr()?;
    // The downstream connection exists before the clock starts, like a subscribed reader.
    let (down, _) = yilian_transport::connect(&fwd_ep, &sink_addr.to_string()).await?;
    let fwd = tokio::spawn(forwarder(fwd_ep.clone(), down));
    let client = raw_client(pki, bigbuf)?;
    let meter = Meter::start();
    tokio::time::timeout(limit(total, 2), push(&client, fwd_addr, total))
        .await
        .context("raw quinn 2 hops: timed out")??;
    let sample = meter.sample(total, 1, 1);
    let forwarded = fwd.await??;
    let got = sink.await??;
    ensure!(
        forwarded == total && got == total,
        "raw forwarder: forwarded {forwarded}, sink got {got} of {total} bytes"
    );
    close_endpoint(&client).await;
    close_endpoint(&fwd_ep).await;
    close_endpoint(&sink_ep).await;
    Ok(sample)
}

/// Generous bound for moving `bytes` to `copies` receivers (≥ 2 min, ≥ 5 MB/s per copy).
fn limit(bytes: u64, copies: usize) -> Duration {
    Duration::from_secs(120)
        + Duration::from_secs_f64(bytes as f64 * copies.max(1) as f64 / (5.0 * MB))
}

// --- yilian ------------------------------------------------------------------------------------

struct RelayHandle {
    relay: Arc<Relay>,
    task: JoinHandle<()>,
    addr: String,
}

impl RelayHandle {
    fn start(data_dir: PathBuf, pki: &Pki, topology: Topology) -> Result<RelayHandle> {
        let tls = pki.tls(RELAY)?;
        let mut config = ConfigFile::default()
            .resolve(&data_dir, || tls, Topology::example)
            .map_err(|e| anyhow!("relay config: {e}"))?;
        config.listen = loopback0();
        config.data_dir = data_dir;
        config.topology = Arc::new(topology);
        // Experiment knob: fsync checkpoint cadence of the spool (default 16 MiB).
        if let Some(mib) = std::env::var("YILIAN_BENCH_CHECKPOINT_MIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            config.checkpoint_bytes = mib.max(1) * MIB;
        }
        let relay = Arc::new(Relay::bind(config).map_err(|e| anyhow!("relay: {e}"))?);
        let addr = relay.local_addr()?.to_string();
        let r = relay.clone();
        let task = tokio::spawn(async move { r.run().await });
        Ok(RelayHandle { relay, task, addr })
    }

    async fn stop(self) {
        self.relay.close();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(10), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

fn client_config(relay: &str, tls: TlsPem) -> ClientConfig {
    ClientConfig {
        relay: relay.to_string(),
        tls,
        tuning: Tuning::default(),
        give_up_after: Duration::from_secs(30),
        contact: Default::default(),
    }
}

/// Tells the bench, with a timestamp, when a reader committed an instance.
struct Arrivals {
    reader: usize,
    tx: ArrivalTx,
}

impl Progress for Arrivals {
    fn received(&self, _study_uid: &str, sop_uid: &str, _bytes: u64) {
        let _ = self
            .tx
            .send((self.reader, sop_uid.to_string(), Instant::now()));
    }
}

struct Readers {
    n: usize,
    tasks: Vec<JoinHandle<()>>,
    /// Output folders of full readers (none for light readers).
    outs: Vec<PathBuf>,
    arrivals: mpsc::UnboundedReceiver<(usize, String, Instant)>,
}

impl Readers {
    fn start(relay: &str, pki: &Pki, n: usize, dir: &Path) -> Result<Readers> {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        let mut outs = Vec::new();
        for i in 0..n {
            let out = dir.join(format!("reader-{i}"));
            let opts = ReadOptions {
                client: client_config(relay, pki.tls(&reader_name(i))?),
                out: out.clone(),
                once: false,
            };
            let progress: Arc<dyn Progress> = Arc::new(Arrivals {
                reader: i,
                tx: tx.clone(),
            });
            tasks.push(tokio::spawn(async move {
                if let Err(e) = yilian_client::read(&opts, progress).await {
                    eprintln!("reader {i} stopped: {e}");
                }
            }));
            outs.push(out);
        }
        Ok(Readers {
            n,
            tasks,
            outs,
            arrivals,
        })
    }

    /// `n` light readers: yilian/1 over QUIC, bytes counted and dropped, `Stored` answered
    /// without hashing or writing (what the relay does, isolated from what readers do).
    fn start_light(relay: &str, pki: &Pki, n: usize) -> Result<Readers> {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for i in 0..n {
            let (relay, tls, tx) = (relay.to_string(), pki.tls(&reader_name(i))?, tx.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = light_reader(&relay, tls, i, tx).await {
                    eprintln!("light reader {i} stopped: {e:#}");
                }
            }));
        }
        Ok(Readers {
            n,
            tasks,
            outs: Vec::new(),
            arrivals,
        })
    }

    fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

type ArrivalTx = mpsc::UnboundedSender<(usize, String, Instant)>;

async fn light_reader(relay: &str, tls: TlsPem, idx: usize, tx: ArrivalTx) -> Result<()> {
    let ep = yilian_transport::client_endpoint(&tls, &Tuning::default(), false)?;
    let (conn, _) = yilian_transport::connect(&ep, relay).await?;
    // Both halves of the control stream stay open for the whole session.
    let (mut ctl_send, _ctl_recv) = conn.open_bi().await?;
    ctl_send
        .write_chunk(encode_frame(&Request::Subscribe(Subscribe { once: false })))
        .await?;
    loop {
        let (send, recv) = conn.accept_bi().await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Err(e) = light_delivery(send, recv, idx, tx).await {
                eprintln!("light reader {idx}: delivery failed: {e:#}");
            }
        });
    }
}

async fn light_delivery(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    idx: usize,
    tx: ArrivalTx,
) -> Result<()> {
    let mut dec = FrameDecoder::new();
    let offer = loop {
        if let Some(Request::Offer(o)) = dec.next_frame::<Request>("offer")? {
            break o;
        }
        match recv.read_chunk(usize::MAX, true).await? {
            Some(c) => dec.push(c.bytes),
            None => bail!("stream ended before the offer"),
        }
    };
    let (sop, size) = (offer.instance.sop_uid.clone(), offer.size);
    let mut rx = Receiver::new(offer, dec, u64::MAX)?;
    rx.accept(0)?;
    let mut got = 0u64;
    loop {
        while let Some(b) = rx.poll_transmit() {
            send.write_chunk(b).await?;
        }
        while let Some(ev) = rx.poll_event() {
            match ev {
                ReceiverEvent::Data { bytes, .. } => got += bytes.len() as u64,
                ReceiverEvent::Finish(h) => {
                    ensure!(got == size, "{got} of {size} bytes before Finish");
                    rx.stored(h)?;
                    while let Some(b) = rx.poll_transmit() {
                        send.write_chunk(b).await?;
                    }
                    let _ = send.finish();
                    let _ = tx.send((idx, sop, Instant::now()));
                    return Ok(());
                }
            }
        }
        match recv.read_chunk(usize::MAX, true).await? {
            Some(c) => rx.handle_input(c.bytes)?,
            None => {
                rx.handle_end()?;
                bail!("the relay ended the delivery early");
            }
        }
    }
}

async fn send_files(relay: &str, pki: &Pki, paths: &[PathBuf]) -> Result<()> {
    let opts = SendOptions {
        client: client_config(relay, pki.tls(DEVICE)?),
        priority: 0,
        concurrency: 4,
        manifests: true,
    };
    let report = yilian_client::send(paths, &opts, Arc::new(NoProgress)).await?;
    for f in &report.files {
        ensure!(
            matches!(f.outcome, FileOutcome::Stored { resumed_from: 0 }),
            "{}: {:?}",
            f.path.display(),
            f.outcome
        );
    }
    ensure!(!report.files.is_empty(), "nothing was sent");
    Ok(())
}

/// Send `paths`; wait until `send` returned and every reader reported every SOP of `sops`.
/// Returns (send returned, first reader done, last reader done) in seconds after `t0`.
async fn send_and_deliver(
    relay: &str,
    pki: &Pki,
    paths: &[PathBuf],
    sops: &[String],
    readers: &mut Readers,
    t0: Instant,
    within: Duration,
) -> Result<(f64, f64, f64)> {
    let n = readers.n;
    let mut missing: Vec<std::collections::HashSet<String>> =
        vec![sops.iter().cloned().collect(); n];
    let mut done_at: Vec<Option<f64>> = vec![None; n];
    let mut send_at: Option<f64> = None;
    let send = send_files(relay, pki, paths);
    let mut send = std::pin::pin!(send);
    let deadline = tokio::time::sleep(within);
    let mut deadline = std::pin::pin!(deadline);
    while send_at.is_none() || done_at.iter().any(Option::is_none) {
        tokio::select! {
            r = &mut send, if send_at.is_none() => {
                r?;
                send_at = Some(t0.elapsed().as_secs_f64());
            }
            a = readers.arrivals.recv(), if n > 0 => {
                let (i, sop, at) = a.ok_or_else(|| anyhow!("every reader stopped"))?;
                if missing[i].remove(&sop) && missing[i].is_empty() {
                    done_at[i] = Some(at.duration_since(t0).as_secs_f64());
                }
            }
            () = &mut deadline => bail!(
                "timed out after {within:?}: send {}, readers done {}/{n}",
                if send_at.is_some() { "returned" } else { "still running" },
                done_at.iter().flatten().count()
            ),
        }
    }
    let sent = send_at.unwrap_or_default();
    let done: Vec<f64> = done_at.into_iter().flatten().collect();
    if done.is_empty() {
        return Ok((sent, sent, sent)); // upload only
    }
    let first = done.iter().copied().fold(f64::INFINITY, f64::min);
    let last = done.iter().copied().fold(0.0, f64::max);
    Ok((sent, first, last))
}

/// With `--bigbuf`: a task raising every new UDP socket's buffers, stopped when dropped.
fn bigbuf_experiment() -> Option<AbortOnDrop> {
    if !BIGBUF.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    enlarge_udp_sockets(BIG_SOCKET_BUFFER);
    Some(AbortOnDrop(tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(2)).await;
            enlarge_udp_sockets(BIG_SOCKET_BUFFER);
        }
    })))
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `--bigbuf`, read by the scenarios.
static BIGBUF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One fan-out measurement: fresh relay, `n` readers, warm-up, then the large instance.
async fn yilian_fanout(
    base: &Path,
    pki: &Pki,
    n: usize,
    light: bool,
    large: &Generated,
    warm: &Generated,
) -> Result<Sample> {
    let dir = tempfile::Builder::new()
        .prefix("yilian-e2e-run-")
        .tempdir_in(base)?;
    let relay = RelayHandle::start(dir.path().join("relay"), pki, topology(n)?)?;
    let _bigbuf = bigbuf_experiment();
    let mut readers = if light {
        Readers::start_light(&relay.addr, pki, n)?
    } else {
        Readers::start(&relay.addr, pki, n, dir.path())?
    };
    let result = async {
        // Warm-up: proves every reader is subscribed (and warms the relay's index).
        send_and_deliver(
            &relay.addr,
            pki,
            std::slice::from_ref(&warm.path),
            std::slice::from_ref(&warm.sop_instance_uid),
            &mut readers,
            Instant::now(),
            Duration::from_secs(60),
        )
        .await
        .context("warm-up instance")?;
        let meter = Meter::start();
        let (send_secs, first, last) = send_and_deliver(
            &relay.addr,
            pki,
            std::slice::from_ref(&large.path),
            std::slice::from_ref(&large.sop_instance_uid),
            &mut readers,
            meter.t0,
            limit(large.size, n),
        )
        .await?;
        let sample = Sample {
            send_secs,
            first_reader: first,
            last_reader: last,
            ..meter.sample(large.size, n, 1)
        };
        // Not timed: every copy has the right size, the first one the right hash.
        for out in &readers.outs {
            let p = out
                .join(&large.study_instance_uid)
                .join(format!("{}.dcm", large.sop_instance_uid));
            let len = std::fs::metadata(&p)
                .with_context(|| format!("{}", p.display()))?
                .len();
            ensure!(len == large.size, "{}: {len} bytes", p.display());
        }
        if let Some(out) = readers.outs.first() {
            let first_copy = out
                .join(&large.study_instance_uid)
                .join(format!("{}.dcm", large.sop_instance_uid));
            let h = tokio::task::spawn_blocking(move || yilian_testkit::blake3_file(&first_copy))
                .await??;
            ensure!(h == large.blake3, "reader copy differs from the original");
        }
        Ok(sample)
    }
    .await;
    readers.stop();
    relay.stop().await;
    drop(dir);
    result
}

/// A CT series to one reader: files/s.
async fn yilian_series(base: &Path, pki: &Pki, series: &[Generated]) -> Result<Sample> {
    let dir = tempfile::Builder::new()
        .prefix("yilian-e2e-run-")
        .tempdir_in(base)?;
    let relay = RelayHandle::start(dir.path().join("relay"), pki, topology(1)?)?;
    let _bigbuf = bigbuf_experiment();
    let mut readers = Readers::start(&relay.addr, pki, 1, dir.path())?;
    let bytes: u64 = series.iter().map(|g| g.size).sum();
    let result = async {
        let warm = &series[0];
        let rest = &series[1..];
        ensure!(!rest.is_empty(), "--ct-slices: at least 2");
        // Warm-up with the first slice; the other slices are timed.
        send_and_deliver(
            &relay.addr,
            pki,
            std::slice::from_ref(&warm.path),
            std::slice::from_ref(&warm.sop_instance_uid),
            &mut readers,
            Instant::now(),
            Duration::from_secs(60),
        )
        .await
        .context("warm-up slice")?;
        let paths: Vec<PathBuf> = rest.iter().map(|g| g.path.clone()).collect();
        let sops: Vec<String> = rest.iter().map(|g| g.sop_instance_uid.clone()).collect();
        let meter = Meter::start();
        let (send_secs, first, last) = send_and_deliver(
            &relay.addr,
            pki,
            &paths,
            &sops,
            &mut readers,
            meter.t0,
            limit(bytes, 1),
        )
        .await?;
        Ok(Sample {
            send_secs,
            first_reader: first,
            last_reader: last,
            ..meter.sample(rest.iter().map(|g| g.size).sum(), 1, rest.len())
        })
    }
    .await;
    readers.stop();
    relay.stop().await;
    drop(dir);
    result
}

// ---------------------------------------------------------------------------------------------
// Report

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The sample with the median duration (so that its other fields belong together; with an
/// even count, the duration is the mean of the middle two).
fn median_sample(v: &[Sample]) -> Option<Sample> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    v.get(v.len() / 2).copied().map(|mut s| {
        s.secs = median(&v.iter().map(|s| s.secs).collect::<Vec<_>>());
        s
    })
}

fn drop_percent(s: &Sample) -> f64 {
    s.udp_drops as f64 * 100.0 / (s.udp_in + s.udp_drops).max(1) as f64
}

fn print_run_line(name: &str, s: &Sample) {
    let extra = if s.copies > 1 || s.files > 1 || s.send_secs != s.secs {
        format!(
            "; send acked {:.2}s, readers done {:.2}–{:.2}s",
            s.send_secs, s.first_reader, s.last_reader
        )
    } else {
        String::new()
    };
    println!(
        "    {name:<44} {:>9.1} MB in {:>7.3} s = {:>7.1} MB/s (cores: this process {:.2}, others {:.2}; udp drops {:.1}%{extra})",
        s.bytes as f64 * s.copies as f64 / MB,
        s.secs,
        s.bytes as f64 * s.copies as f64 / MB / s.secs,
        s.cpu / s.secs,
        (s.machine_cores - s.cpu / s.secs).max(0.0),
        drop_percent(s),
    );
}

struct Scenario {
    name: String,
    kind: Kind,
    samples: Vec<Sample>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Raw quinn over 1 or 2 hops; `bigbuf`: 4 MiB socket buffers instead of the defaults.
    Raw {
        hops: u8,
        bigbuf: bool,
    },
    /// Raw quinn plus the unavoidable work of a durable upload (read, BLAKE3 ×2, write, fsync).
    RawDurable,
    /// (readers, light readers)
    Fanout(usize, bool),
    Series,
}

fn report(args: &Args, scenarios: &[Scenario]) {
    let med = |k: Kind| {
        scenarios
            .iter()
            .find(|s| s.kind == k)
            .and_then(|s| median_sample(&s.samples))
    };
    let raw1 = med(Kind::Raw {
        hops: 1,
        bigbuf: false,
    })
    .map(|s| s.mbps());
    let raw2 = med(Kind::Raw {
        hops: 2,
        bigbuf: false,
    })
    .map(|s| s.mbps());
    let ratio = |x: f64, r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.2}", x / r));
    println!();
    println!(
        "== summary: median of {} run(s); MB = 10^6 bytes; ×raw = ratio to raw quinn (default sockets, as yilian) in the same run",
        args.runs
    );
    println!(
        "   cpu s/GB: CPU seconds of this process (sender, relay, readers) per GB of the line; cores: its busy cores;"
    );
    println!(
        "   other: busy cores of everything else on the machine (noise); udp%: datagrams dropped by full socket buffers"
    );
    println!(
        "{:<46} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>5} {:>15}",
        "scenario",
        "MB",
        "s",
        "MB/s",
        "×raw1hop",
        "×raw2hop",
        "cpu s/GB",
        "cores",
        "other",
        "udp%",
        "MB/s min–max"
    );
    let line = |name: &str, mb: f64, m: &Sample, spread: (f64, f64)| {
        let mbps = mb / m.secs;
        println!(
            "{name:<46} {mb:>9.1} {:>8.3} {mbps:>8.1} {:>8} {:>8} {:>8.2} {:>5.2} {:>5.2} {:>5.1} {:>15}",
            m.secs,
            ratio(mbps, raw1),
            ratio(mbps, raw2),
            m.cpu / (mb / 1000.0),
            m.cpu / m.secs,
            (m.machine_cores - m.cpu / m.secs).max(0.0),
            drop_percent(m),
            format!("{:.1}–{:.1}", spread.0, spread.1),
        );
    };
    // Single-reader ingest MB/s, and (readers, egress MB/s), for full and for light readers.
    let mut single: [Option<f64>; 2] = [None, None];
    let mut egress_lines: Vec<(usize, bool, f64)> = Vec::new();
    let mut upload: Option<f64> = None;
    let mut durable: Option<f64> = None;
    for sc in scenarios {
        let Some(m) = median_sample(&sc.samples) else {
            continue;
        };
        let per = |copies: f64| {
            let v: Vec<f64> = sc
                .samples
                .iter()
                .map(|s| s.bytes as f64 * copies / MB / s.secs)
                .collect();
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(0.0, f64::max),
            )
        };
        let mb = m.bytes as f64 / MB;
        match sc.kind {
            Kind::Raw { .. } => line(&sc.name, mb, &m, per(1.0)),
            Kind::RawDurable => {
                line(&sc.name, mb, &m, per(1.0));
                durable = Some(m.mbps());
            }
            Kind::Fanout(0, _) => {
                line(&sc.name, mb, &m, per(1.0));
                upload = Some(m.mbps());
            }
            Kind::Fanout(n, light) => {
                line(&format!("{} ingest", sc.name), mb, &m, per(1.0));
                if n == 1 {
                    single[light as usize] = Some(m.mbps());
                } else {
                    let copies = n as f64;
                    line(&format!("{} egress", sc.name), mb * copies, &m, per(copies));
                    egress_lines.push((n, light, m.mbps() * copies));
                }
            }
            Kind::Series => {
                line(&sc.name, mb, &m, per(1.0));
                println!(
                    "{:<46} {:>9} {:>8} {:>8.1} files/s ({} files)",
                    "",
                    "",
                    "",
                    m.files as f64 / m.secs,
                    m.files
                );
            }
        }
    }
    println!();
    if let (Some(u), Some(r1)) = (upload, raw1) {
        println!(
            "target 1 (design §5), upload hop (sender → durable spool): ≥ 70% of raw quinn → {:.0}% of 1 hop ({u:.1} vs {r1:.1} MB/s)",
            u / r1 * 100.0
        );
    }
    if let (Some(u), Some(d)) = (upload, durable) {
        println!(
            "upload hop vs the minimal durable upload on raw quinn (same hashing, write, fsync): {:.0}% ({u:.1} vs {d:.1} MB/s)",
            u / d * 100.0
        );
    }
    let kind = |light: bool| if light { "light readers" } else { "readers" };
    for light in [false, true] {
        if let (Some(a), Some(r1), Some(r2)) = (single[light as usize], raw1, raw2) {
            println!(
                "target 1 (design §5), 1 of the {}: ≥ 70% of raw quinn → {:.0}% of 1 hop, {:.0}% of 2 hops",
                kind(light),
                a / r1 * 100.0,
                a / r2 * 100.0
            );
        }
    }
    for (n, light, egress) in egress_lines {
        match single[light as usize] {
            Some(a) => println!(
                "target 2 (design §5), {n} {}: egress ≥ 5× single-reader throughput → {:.2}× ({egress:.1} vs {a:.1} MB/s)",
                kind(light),
                egress / a
            ),
            None => println!(
                "{n} {}: egress {egress:.1} MB/s (no 1-reader scenario to compare)",
                kind(light)
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------

async fn run(args: Args) -> Result<()> {
    let base = scratch_base()?;
    BIGBUF.store(args.bigbuf, std::sync::atomic::Ordering::Relaxed);
    if args.bigbuf {
        println!("EXPERIMENT --bigbuf: yilian's UDP sockets get 4 MiB buffers (not as shipped)");
    }
    println!(
        "yilian e2e_throughput: {} MiB instance, readers {:?}, {} run(s), CT slices {}; {} CPUs; scratch {} ({})",
        args.size_mib,
        args.readers,
        args.runs,
        args.ct_slices,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        base.display(),
        fs_type(&base).unwrap_or_else(|| "?".into())
    );
    if !args.skip_raw {
        let (_, granted) = udp_socket_with_buffers(BIG_SOCKET_BUFFER)?;
        let default =
            std::fs::read_to_string("/proc/sys/net/core/rmem_default").unwrap_or_default();
        println!(
            "UDP receive buffers: default {} bytes; \"4 MiB sockets\" variants asked {BIG_SOCKET_BUFFER}, kernel granted {granted}",
            default.trim()
        );
    }
    let fixtures = tempfile::Builder::new()
        .prefix("yilian-e2e-fixtures-")
        .tempdir_in(&base)?;
    let max_readers = args.readers.iter().copied().max().unwrap_or(1);
    let pki = Pki::new(max_readers)?;

    let t = Instant::now();
    let fx = fixtures.path().to_path_buf();
    let (size, slices) = (args.size_mib * MIB, args.ct_slices);
    let (large, warm, series) = tokio::task::spawn_blocking(move || -> Result<_> {
        let large = yilian_testkit::large_instance(
            &fx.join("large.dcm"),
            &StudySpec::new("CT", 1),
            size,
            1,
        )?;
        let warm =
            yilian_testkit::ct_series(&fx.join("warm"), &StudySpec::new("CT", 2), 1, 512, 512, 2)?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("no warm-up slice"))?;
        let series = if slices > 0 {
            yilian_testkit::ct_series(
                &fx.join("ct"),
                &StudySpec::new("CT", 3),
                slices + 1,
                512,
                512,
                3,
            )?
        } else {
            Vec::new()
        };
        Ok((large, warm, series))
    })
    .await??;
    println!(
        "fixtures: instance {} bytes ({:.1} MB), CT series {} × {} bytes; generated in {:.1} s (not timed)",
        large.size,
        large.size as f64 / MB,
        series.len().saturating_sub(1),
        series.first().map_or(0, |g| g.size),
        t.elapsed().as_secs_f64()
    );

    let mut scenarios = Vec::new();
    if !args.skip_raw {
        for bigbuf in [false, true] {
            for hops in [1u8, 2] {
                scenarios.push(Scenario {
                    name: format!(
                        "raw quinn, {}{}",
                        if hops == 1 {
                            "1 hop"
                        } else {
                            "2 hops (forwarder)"
                        },
                        if bigbuf { ", 4 MiB sockets" } else { "" }
                    ),
                    kind: Kind::Raw { hops, bigbuf },
                    samples: vec![],
                });
            }
        }
    }
    if !args.skip_raw && args.readers.contains(&0) {
        scenarios.push(Scenario {
            name: "raw quinn, 1 hop + read, BLAKE3 ×2, write, fsync".into(),
            kind: Kind::RawDurable,
            samples: vec![],
        });
    }
    for light in [false, true] {
        if light && !args.light {
            continue;
        }
        for &n in &args.readers {
            if n == 0 && light {
                continue; // the same as the full-reader upload-only scenario
            }
            scenarios.push(Scenario {
                name: if n == 0 {
                    "yilian, upload only (no reader)".to_string()
                } else {
                    format!(
                        "yilian, {n} {}reader{}",
                        if light { "light " } else { "" },
                        if n == 1 { "" } else { "s" }
                    )
                },
                kind: Kind::Fanout(n, light),
                samples: vec![],
            });
        }
    }
    if !series.is_empty() {
        scenarios.push(Scenario {
            name: format!("yilian, CT {} slices, 1 reader", series.len() - 1),
            kind: Kind::Series,
            samples: vec![],
        });
    }

    for run in 1..=args.runs {
        println!("run {run}/{}", args.runs);
        for sc in scenarios.iter_mut() {
            let s = match sc.kind {
                Kind::Raw { hops: 1, bigbuf } => raw_one_hop(&pki, large.size, bigbuf).await,
                Kind::Raw { bigbuf, .. } => raw_two_hops(&pki, large.size, bigbuf).await,
                Kind::RawDurable => raw_durable_one_hop(&pki, &large.path, large.size, &base).await,
                Kind::Fanout(n, light) => yilian_fanout(&base, &pki, n, light, &large, &warm).await,
                Kind::Series => yilian_series(&base, &pki, &series).await,
            }
            .with_context(|| format!("{} (run {run})", sc.name))?;
            print_run_line(&sc.name, &s);
            sc.samples.push(s);
        }
    }
    report(&args, &scenarios);
    drop(fixtures);
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(run(args));
    rt.shutdown_timeout(Duration::from_secs(10));
    r
}
