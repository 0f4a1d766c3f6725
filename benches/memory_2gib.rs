//! Flat memory (design §5): a 2 GiB instance streams through the relay with < 64 MiB RSS
//! growth; an idle connection costs < 64 KiB.
//!
//! ```text
//! cargo bench --bench memory_2gib                       # 2 GiB, 200 idle connections
//! cargo bench --bench memory_2gib -- --size-mib 2048 --idle-conns 200
//! cargo bench --bench memory_2gib -- --readers 10 --idle-conns 0   # fan-out to 10 processes
//! cargo bench --bench memory_2gib -- --quick            # 256 MiB, 50 idle connections
//! ```
//! Environment equivalents: `YILIAN_BENCH_SIZE_MIB`, `YILIAN_BENCH_IDLE_CONNS`,
//! `YILIAN_BENCH_READERS`, `YILIAN_BENCH_QUICK=1`, `YILIAN_BENCH_RELAY_TOML`; `YILIAN_BENCH_DIR`
//! picks the scratch folder (never a tmpfs). For A/B runs, `YILIAN_BENCH_BIN` runs another
//! `yilian` binary (e.g. a copy built from the previous commit) instead of the one cargo built,
//! and `--relay-toml` appends sections to the relay's config (e.g. `[delivery]
//! buffer_budget = 16777216`).
//!
//! Part 1, streaming: the **real relay binary** (`yilian serve`, built by cargo for this bench)
//! runs as a child process with its own config; a `yilian read` child is subscribed first (so
//! cut-through delivery is exercised), then a `yilian send` child uploads one generated
//! instance. This process only samples `/proc/<pid>/status` (VmRSS) of the three every 50 ms
//! and reports the relay's RSS before the upload, its peak (VmHWM) and the growth; the
//! reader's peak (VmHWM) and the sender's (`ru_maxrss` from `wait4`).
//!
//! Part 1b, DICOMweb (unless `--no-wado`): after the transfer, the reader retrieves the same
//! instance over HTTPS with a token (`curl`): WADO-RS (multipart) and WADO-URI (the file,
//! hashed against the original), the relay's RSS sampled every 50 ms: its growth must stay
//! flat too.
//!
//! Part 2, idle connections: a fresh relay child; this process opens N QUIC connections to it
//! (device certificate, no streams), waits for them to settle and reports the relay's RSS
//! growth per connection.
//!
//! Every child is killed and every scratch folder removed at the end, also on failure.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use yilian_route::Topology;
use yilian_testkit::StudySpec;
use yilian_transport::{DevCa, PeerIdentity, TlsFiles, Tuning};

mod common;
use common::{free_udp_port, fs_type, scratch_base};

const MIB: u64 = 1 << 20;
const MB: f64 = 1e6;
const SAMPLE: Duration = Duration::from_millis(50);
const DEVICE: &str = "township-a-device";
const READER: &str = "county-radiology";
const RELAY: &str = "county-relay";

const USAGE: &str = "\
usage: cargo bench --bench memory_2gib -- [--size-mib N] [--readers N] [--idle-conns N] [--quick]
                                          [--relay-toml TEXT]
  --size-mib N       pixel data of the streamed instance (default 2048)
  --readers N        `yilian read` processes subscribed during the upload (default 1)
  --idle-conns N     idle QUIC connections for the per-connection cost, 0 = off (default 200)
  --quick            256 MiB and 50 idle connections
  --no-wado          skip the DICOMweb retrieval of the instance after the transfer
  --relay-toml TEXT  appended to the relay's config file, \\n for new lines
                     (e.g. '[delivery]\\nbuffer_budget = 16777216')
  YILIAN_BENCH_BIN=PATH runs that yilian binary instead of the one cargo built (A/B runs)";

struct Args {
    /// Also retrieve the instance over DICOMweb after the transfer.
    wado: bool,
    size_mib: u64,
    idle_conns: usize,
    readers: usize,
    relay_toml: String,
}

fn parse_args() -> Result<Args> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut size: Option<u64> = env("YILIAN_BENCH_SIZE_MIB")
        .map(|v| v.parse())
        .transpose()?;
    let mut idle: Option<usize> = env("YILIAN_BENCH_IDLE_CONNS")
        .map(|v| v.parse())
        .transpose()?;
    let mut readers: Option<usize> = env("YILIAN_BENCH_READERS").map(|v| v.parse()).transpose()?;
    let mut quick = env("YILIAN_BENCH_QUICK").is_some_and(|v| v != "0");
    let mut relay_toml = env("YILIAN_BENCH_RELAY_TOML").unwrap_or_default();
    let mut wado = true;
    let mut flags = common::Flags::new(USAGE);
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(&flag, inline.clone());
        match flag.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            "--size-mib" => size = Some(value()?.parse().context("--size-mib")?),
            "--idle-conns" => idle = Some(value()?.parse().context("--idle-conns")?),
            "--readers" => readers = Some(value()?.parse().context("--readers")?),
            "--relay-toml" => relay_toml = value()?,
            "--no-wado" => wado = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {}
        }
    }
    let a = Args {
        wado,
        size_mib: size.unwrap_or(if quick { 256 } else { 2048 }).max(1),
        idle_conns: idle.unwrap_or(if quick { 50 } else { 200 }),
        readers: readers.unwrap_or(1).clamp(1, 32),
        relay_toml: relay_toml.replace("\\n", "\n"),
    };
    ensure!(
        a.size_mib * MIB <= yilian_testkit::LARGE_MAX_PIXEL_BYTES,
        "--size-mib: at most {} MiB (one instance)",
        yilian_testkit::LARGE_MAX_PIXEL_BYTES / MIB
    );
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// Scratch space and PKI

fn reader_name(i: usize) -> String {
    if i == 0 {
        READER.into()
    } else {
        format!("{READER}-{}", i + 1)
    }
}

/// The example topology plus readers 2..=n of county/radiology (where township CT goes).
fn topology_toml(readers: usize) -> String {
    let mut t = Topology::example_toml().to_string();
    for i in 1..readers {
        t.push_str(&format!(
            "\n[[identity]]\nname = \"{}\"\nsite = \"county\"\nrole = \"reader\"\ndepartment = \"radiology\"\n",
            reader_name(i)
        ));
    }
    t
}

/// topology.toml (with `readers` radiology readers), ca.pem, and NAME.pem / NAME.key for
/// every identity of it.
fn write_pki(dir: &Path, readers: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let toml = topology_toml(readers);
    let topology = Topology::from_toml_str(&toml).map_err(|e| anyhow!("bench topology: {e}"))?;
    std::fs::write(dir.join("topology.toml"), toml)?;
    let ca = DevCa::generate("bench alliance")?;
    std::fs::write(dir.join("ca.pem"), ca.ca_pem())?;
    let now = time::OffsetDateTime::now_utc();
    for id in topology.identities() {
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
        let (cert, key) = ca.issue(
            &pid,
            &dns,
            now - time::Duration::hours(1),
            now + time::Duration::days(2),
        )?;
        std::fs::write(dir.join(format!("{}.pem", id.name)), cert)?;
        std::fs::write(dir.join(format!("{}.key", id.name)), key)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Child processes

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
        "{} is missing: run this bench through `cargo bench --bench memory_2gib`, which builds it",
        p.display()
    );
    Ok(p)
}

/// A child process that is killed (SIGKILL) and reaped when dropped, unless already reaped.
struct Proc {
    name: &'static str,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Result<Proc> {
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .env("RUST_LOG", "info,quinn=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name,
            pid: child.id(),
            child: Some(child),
            log,
        })
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    fn status(&self) -> Option<ProcStatus> {
        self.child.as_ref()?;
        ProcStatus::read(self.pid)
    }

    /// Reap the child if it exited: (exit code, peak RSS in bytes, CPU seconds) from the
    /// kernel's rusage.
    fn try_reap(&mut self) -> Option<(i32, u64, f64)> {
        self.child.as_ref()?;
        let mut status = 0;
        // SAFETY: wait4 writes into the zeroed rusage we pass; `pid` is our own child, not
        // yet reaped (we drop the std handle right after, so it never waits or kills it).
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(self.pid as i32, &mut status, libc::WNOHANG, &mut ru) };
        if r != self.pid as i32 {
            return None;
        }
        self.child = None;
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some((
            code,
            ru.ru_maxrss as u64 * 1024,
            tv(ru.ru_utime) + tv(ru.ru_stime),
        ))
    }

    /// SIGTERM, then SIGKILL after `grace`.
    fn terminate(&mut self, grace: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// VmRSS, VmHWM and CPU time of a live process.
#[derive(Clone, Copy, Debug)]
struct ProcStatus {
    rss: u64,
    hwm: u64,
    /// User + system CPU seconds so far.
    cpu: f64,
}

impl ProcStatus {
    fn read(pid: u32) -> Option<ProcStatus> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = s.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        };
        // /proc/<pid>/stat: utime and stime are fields 14 and 15, in clock ticks.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Some(ProcStatus {
            rss: field("VmRSS:")?,
            hwm: field("VmHWM:")?,
            cpu: ticks as f64 / hz,
        })
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

struct RelayChild {
    proc: Proc,
    addr: String,
    /// The DICOMweb root (HTTPS).
    https: String,
    config: PathBuf,
}

fn start_relay(dir: &Path, pki: &Path, extra_toml: &str) -> Result<RelayChild> {
    std::fs::create_dir_all(dir)?;
    let port = free_udp_port()?;
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\ntopology = {:?}\n\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\n{extra_toml}\n",
            dir.join("data"),
            pki.join("topology.toml"),
            pki.join(format!("{RELAY}.pem")),
            pki.join(format!("{RELAY}.key")),
            pki.join("ca.pem"),
        ),
    )?;
    let mut cmd = Command::new(yilian_bin()?);
    cmd.arg("serve").arg("--config").arg(&config);
    let proc = Proc::spawn("relay", cmd, dir.join("relay.log"))?;
    let relay = RelayChild {
        proc,
        addr: format!("127.0.0.1:{port}"),
        https: format!("https://127.0.0.1:{http_port}/dicomweb"),
        config,
    };
    wait_log(&relay.proc, "yilian relay ready", Duration::from_secs(30))?;
    Ok(relay)
}

fn wait_log(p: &Proc, needle: &str, within: Duration) -> Result<()> {
    let end = Instant::now() + within;
    loop {
        if std::fs::read_to_string(&p.log)
            .unwrap_or_default()
            .contains(needle)
        {
            return Ok(());
        }
        if Instant::now() > end {
            bail!(
                "{}: no {needle:?} within {within:?}; log:\n{}",
                p.name,
                p.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn peer_args(cmd: &mut Command, relay: &str, pki: &Path, identity: &str) {
    cmd.arg("--relay")
        .arg(relay)
        .arg("--cert")
        .arg(pki.join(format!("{identity}.pem")))
        .arg("--key")
        .arg(pki.join(format!("{identity}.key")))
        .arg("--ca")
        .arg(pki.join("ca.pem"))
        .args(["--give-up-after", "60s"]);
}

// ---------------------------------------------------------------------------------------------
// Part 1: streaming a large instance

fn streaming(base: &Path, pki: &Path, a: &Args) -> Result<()> {
    let (size_mib, readers) = (a.size_mib, a.readers);
    let dir = tempfile::Builder::new()
        .prefix("yilian-mem-stream-")
        .tempdir_in(base)?;
    let t = Instant::now();
    let large = yilian_testkit::large_instance(
        &dir.path().join("large.dcm"),
        &StudySpec::new("CT", 21),
        size_mib * MIB,
        21,
    )?;
    println!(
        "fixture: {} bytes ({:.2} GiB), generated in {:.1} s (not measured); {readers} reader(s)",
        large.size,
        large.size as f64 / (1u64 << 30) as f64,
        t.elapsed().as_secs_f64()
    );

    let mut relay = start_relay(&dir.path().join("relay"), pki, &a.relay_toml)?;
    std::thread::sleep(Duration::from_millis(300));
    let at_ready = relay.proc.status().ok_or_else(|| anyhow!("relay died"))?;

    let mut procs = Vec::new();
    let mut delivered = Vec::new();
    for i in 0..readers {
        let out = dir.path().join(format!("reader-{i}"));
        let mut cmd = Command::new(yilian_bin()?);
        cmd.arg("read");
        peer_args(&mut cmd, &relay.addr, pki, &reader_name(i));
        cmd.arg("--out").arg(&out);
        procs.push(Proc::spawn(
            "reader",
            cmd,
            dir.path().join(format!("reader-{i}.log")),
        )?);
        delivered.push(
            out.join(&large.study_instance_uid)
                .join(format!("{}.dcm", large.sop_instance_uid)),
        );
    }
    let end = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&relay.proc.log)
        .unwrap_or_default()
        .matches("reader subscribed")
        .count()
        < readers
    {
        ensure!(
            Instant::now() < end,
            "readers did not subscribe; relay log:\n{}",
            relay.proc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let baseline = relay.proc.status().ok_or_else(|| anyhow!("relay died"))?;
    let reader_base: Vec<ProcStatus> = procs
        .iter()
        .map(|p| p.status().ok_or_else(|| anyhow!("a reader died")))
        .collect::<Result<_>>()?;

    let mut cmd = Command::new(yilian_bin()?);
    cmd.arg("send");
    peer_args(&mut cmd, &relay.addr, pki, DEVICE);
    cmd.arg(&large.path);
    let t0 = Instant::now();
    let mut sender = Proc::spawn("sender", cmd, dir.path().join("sender.log"))?;

    let deadline =
        t0 + Duration::from_secs(300) + Duration::from_secs(size_mib * readers as u64 / 5);
    // (seconds, relay, first reader, sender) RSS samples.
    let mut samples: Vec<(f64, u64, u64, u64)> = Vec::new();
    // (peak RSS, CPU seconds, when)
    let mut sender_done: Option<(u64, f64, f64)> = None;
    let mut delivered_at: Vec<Option<f64>> = vec![None; readers];
    let mut relay_max = baseline.rss;
    loop {
        let now = t0.elapsed().as_secs_f64();
        let r = relay.proc.status();
        let rd = procs[0].status();
        let sd = sender.status();
        let r_rss = r.map_or(0, |s| s.rss);
        relay_max = relay_max.max(r_rss);
        samples.push((now, r_rss, rd.map_or(0, |s| s.rss), sd.map_or(0, |s| s.rss)));
        if sender_done.is_none() {
            if let Some((code, peak, cpu)) = sender.try_reap() {
                if code != 0 {
                    bail!("yilian send failed (exit {code}):\n{}", sender.log_tail());
                }
                sender_done = Some((peak, cpu, now));
            }
        }
        for (at, path) in delivered_at.iter_mut().zip(&delivered) {
            if at.is_none() && std::fs::metadata(path).is_ok_and(|m| m.len() == large.size) {
                *at = Some(now);
            }
        }
        if sender_done.is_some() && delivered_at.iter().all(Option::is_some) {
            break;
        }
        if !relay.proc.alive() || r.is_none() {
            bail!("the relay died:\n{}", relay.proc.log_tail());
        }
        if Instant::now() > deadline {
            bail!(
                "timed out (sender {}, delivered {}/{readers}); relay log:\n{}\nreader log:\n{}",
                if sender_done.is_some() {
                    "done"
                } else {
                    "running"
                },
                delivered_at.iter().flatten().count(),
                relay.proc.log_tail(),
                procs[0].log_tail()
            );
        }
        std::thread::sleep(SAMPLE);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let relay_end = relay.proc.status().ok_or_else(|| anyhow!("relay died"))?;
    let reader_end: Vec<ProcStatus> = procs
        .iter()
        .map(|p| p.status().ok_or_else(|| anyhow!("a reader died")))
        .collect::<Result<_>>()?;
    let (sender_peak, sender_cpu, sender_secs) = sender_done.unwrap_or_default();
    let last_delivery = delivered_at.iter().flatten().copied().fold(0.0, f64::max);
    for p in procs.iter_mut() {
        p.terminate(Duration::from_secs(5));
    }
    let wado = if a.wado {
        Some(wado_retrieval(&relay, pki, &large, dir.path())?)
    } else {
        None
    };
    relay.proc.terminate(Duration::from_secs(10));
    let ok_hash = yilian_testkit::blake3_file(&delivered[0])? == large.blake3;

    println!(
        "transfer: sender acknowledged at {sender_secs:.2} s, last reader committed at {last_delivery:.2} s: {:.1} MB/s ingest; first reader's copy hash {}",
        large.size as f64 / MB / elapsed,
        if ok_hash { "ok" } else { "MISMATCH" }
    );
    println!();
    println!("RSS timeline (MiB; one line per second):");
    println!(
        "{:>7} {:>9} {:>9} {:>9}",
        "t (s)", "relay", "reader 1", "sender"
    );
    let mut next = 0.0;
    for &(t, r, rd, s) in &samples {
        if t >= next {
            println!("{t:>7.1} {:>9.1} {:>9.1} {:>9.1}", mib(r), mib(rd), mib(s));
            next = t.floor() + 1.0;
        }
    }
    println!();
    // VmHWM is maintained lazily by the kernel and can trail a VmRSS sample by a few pages.
    let relay_peak = relay_end.hwm.max(relay_max);
    let growth = relay_peak.saturating_sub(baseline.rss);
    println!("relay  (yilian serve, child process):");
    println!(
        "  RSS when ready                 {:>8.1} MiB",
        mib(at_ready.rss)
    );
    println!(
        "  RSS with the readers subscribed{:>8.1} MiB  (baseline)",
        mib(baseline.rss)
    );
    println!(
        "  peak RSS (VmHWM)               {:>8.1} MiB",
        mib(relay_end.hwm)
    );
    println!(
        "  peak sampled RSS (every 50 ms) {:>8.1} MiB",
        mib(relay_max)
    );
    println!(
        "  peak (larger of the two)       {:>8.1} MiB",
        mib(relay_peak)
    );
    println!(
        "  RSS after the transfer         {:>8.1} MiB",
        mib(relay_end.rss)
    );
    println!(
        "  growth: peak − baseline        {:>8.1} MiB   (target < 64 MiB for a {:.2} GiB instance: {})",
        mib(growth),
        large.size as f64 / (1u64 << 30) as f64,
        if growth < 64 * MIB { "met" } else { "NOT met" }
    );
    let reader_peak = reader_end.iter().map(|s| s.hwm).max().unwrap_or(0);
    let reader_growth = reader_end
        .iter()
        .zip(&reader_base)
        .map(|(e, b)| e.hwm.saturating_sub(b.rss))
        .max()
        .unwrap_or(0);
    println!(
        "readers (yilian read, children):  RSS subscribed {:.1} MiB, peak (VmHWM, largest) {:.1} MiB, growth {:.1} MiB",
        mib(reader_base[0].rss),
        mib(reader_peak),
        mib(reader_growth)
    );
    println!(
        "sender (yilian send, child):      peak RSS (ru_maxrss) {:.1} MiB",
        mib(sender_peak)
    );
    let gb = large.size as f64 / 1e9;
    let reader_cpu: f64 = reader_end
        .iter()
        .zip(&reader_base)
        .map(|(e, b)| e.cpu - b.cpu)
        .sum();
    println!();
    println!(
        "CPU seconds per GB ingested (separate processes on the same 2 cores): sender {:.2}, relay {:.2} (ingest + spool + {readers} deliveries), readers {:.2} each",
        sender_cpu / gb,
        (relay_end.cpu - baseline.cpu) / gb,
        reader_cpu / readers as f64 / gb,
    );
    if let Some(w) = wado {
        println!();
        println!("DICOMweb retrieval of the same instance by its reader (curl, bearer token, after the transfer):");
        for (what, bytes, secs, peak) in &w.requests {
            println!(
                "  {what:<34} {bytes:>14} bytes {secs:>7.2} s {:>8.1} MB/s  relay peak sampled RSS {:>7.1} MiB",
                *bytes as f64 / MB / secs,
                mib(*peak)
            );
        }
        let growth = w.peak.saturating_sub(w.before);
        println!(
            "  relay RSS before {:.1} MiB, peak {:.1} MiB: growth {:.1} MiB (target < 64 MiB: {}); WADO-URI copy hash {}",
            mib(w.before),
            mib(w.peak),
            mib(growth),
            if growth < 64 * MIB { "met" } else { "NOT met" },
            if w.hash_ok { "ok" } else { "MISMATCH" }
        );
        ensure!(w.hash_ok, "the WADO-URI copy differs from the original");
    }
    ensure!(ok_hash, "the reader's copy differs from the original");
    drop(dir);
    Ok(())
}

/// What the DICOMweb leg measured: per request (what, bytes, seconds, relay peak RSS).
struct Wado {
    requests: Vec<(&'static str, u64, f64, u64)>,
    before: u64,
    peak: u64,
    hash_ok: bool,
}

/// Retrieve the instance over HTTPS as its reader (a token from `yilian token issue`), by
/// WADO-RS (multipart, to /dev/null) and WADO-URI (the file, hashed), sampling the relay's
/// RSS every 50 ms: responses must stream from the spool, whatever the size.
fn wado_retrieval(
    relay: &RelayChild,
    pki: &Path,
    large: &yilian_testkit::Generated,
    dir: &Path,
) -> Result<Wado> {
    let out = Command::new(yilian_bin()?)
        .args([
            "token",
            "issue",
            "--identity",
            READER,
            "--ttl",
            "1h",
            "--config",
        ])
        .arg(&relay.config)
        .output()?;
    ensure!(
        out.status.success(),
        "yilian token issue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    let instance = format!(
        "{}/studies/{}/series/{}/instances/{}",
        relay.https, large.study_instance_uid, large.series_instance_uid, large.sop_instance_uid
    );
    let uri = format!(
        "{}/wado?requestType=WADO&studyUID={}&seriesUID={}&objectUID={}&contentType=application/dicom",
        relay.https, large.study_instance_uid, large.series_instance_uid, large.sop_instance_uid
    );
    let copy = dir.join("wado-uri.dcm");
    let before = relay
        .proc
        .status()
        .ok_or_else(|| anyhow!("relay died"))?
        .rss;
    let mut w = Wado {
        requests: Vec::new(),
        before,
        peak: before,
        hash_ok: false,
    };
    for (what, url, accept, to) in [
        (
            "WADO-RS instance (multipart)",
            &instance,
            "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            Path::new("/dev/null"),
        ),
        ("WADO-URI (application/dicom)", &uri, "*/*", copy.as_path()),
    ] {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--fail", "-o"])
            .arg(to)
            .args(["-w", "%{size_download}", "--cacert"])
            .arg(pki.join("ca.pem"))
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"))
            .arg("-H")
            .arg(format!("Accept: {accept}"))
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let mut child = curl
            .spawn()
            .context("curl (Debian curl) runs the HTTPS requests")?;
        let mut peak = 0;
        let status = loop {
            if let Some(s) = relay.proc.status() {
                peak = peak.max(s.rss);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(SAMPLE);
        };
        let secs = t.elapsed().as_secs_f64();
        let out = child.wait_with_output()?;
        ensure!(
            status.success(),
            "{what}: curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        ensure!(
            bytes >= large.size,
            "{what}: {bytes} bytes, fewer than the instance's {}",
            large.size
        );
        w.peak = w.peak.max(peak);
        w.requests.push((what, bytes, secs, peak));
    }
    w.hash_ok = yilian_testkit::blake3_file(&copy)? == large.blake3;
    std::fs::remove_file(&copy)?;
    Ok(w)
}

// ---------------------------------------------------------------------------------------------
// Part 2: idle connections

fn idle_connections(base: &Path, pki: &Path, n: usize, extra_toml: &str) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("yilian-mem-idle-")
        .tempdir_in(base)?;
    let mut relay = start_relay(&dir.path().join("relay"), pki, extra_toml)?;
    let tls = TlsFiles {
        cert: pki.join(format!("{DEVICE}.pem")),
        key: pki.join(format!("{DEVICE}.key")),
        ca: pki.join("ca.pem"),
    }
    .load()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let addr: SocketAddr = relay.addr.parse()?;
    let result = rt.block_on(async {
        let ep = yilian_transport::client_endpoint(&tls, &Tuning::default(), false)?;
        // One connection first: the relay's per-process lazily-initialised state (TLS, index)
        // is not a per-connection cost.
        let (warm, _) = yilian_transport::connect(&ep, &addr.to_string()).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = relay.proc.status().ok_or_else(|| anyhow!("relay died"))?;
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let (c, _) = yilian_transport::connect(&ep, &addr.to_string()).await?;
            conns.push(c);
        }
        // Let handshakes, audit writes and the first keep-alives settle.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after = relay.proc.status().ok_or_else(|| anyhow!("relay died"))?;
        let alive = conns.iter().filter(|c| c.close_reason().is_none()).count();
        for c in &conns {
            c.close(0u32.into(), b"bench over");
        }
        warm.close(0u32.into(), b"bench over");
        let _ = tokio::time::timeout(Duration::from_secs(5), ep.wait_idle()).await;
        Ok::<_, anyhow::Error>((before, after, alive))
    });
    relay.proc.terminate(Duration::from_secs(10));
    let (before, after, alive) = result?;
    ensure!(alive == n, "only {alive} of {n} connections stayed open");
    let per = after.rss.saturating_sub(before.rss) as f64 / n as f64 / 1024.0;
    println!(
        "idle connections: {n} open (device identity, no streams, keep-alive 5 s): relay RSS {:.1} → {:.1} MiB = {per:.1} KiB per connection (target < 64 KiB: {})",
        mib(before.rss),
        mib(after.rss),
        if per < 64.0 { "met" } else { "NOT met" }
    );
    drop(dir);
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let base = scratch_base()?;
    println!(
        "yilian memory_2gib: {} MiB instance, {} reader(s), {} idle connections; relay binary {}; scratch {} ({})",
        args.size_mib,
        args.readers,
        args.idle_conns,
        yilian_bin()?.display(),
        base.display(),
        fs_type(&base).unwrap_or_else(|| "?".into())
    );
    if !args.relay_toml.is_empty() {
        println!("relay config extra: {:?}", args.relay_toml);
    }
    let _ = std::io::stdout().flush();
    let pki_dir = tempfile::Builder::new()
        .prefix("yilian-mem-pki-")
        .tempdir_in(&base)?;
    write_pki(pki_dir.path(), args.readers)?;
    streaming(&base, pki_dir.path(), &args)?;
    if args.idle_conns > 0 {
        println!();
        idle_connections(&base, pki_dir.path(), args.idle_conns, &args.relay_toml)?;
    }
    Ok(())
}
