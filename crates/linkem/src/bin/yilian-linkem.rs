//! `yilian-linkem`: the link emulator on the command line.

use clap::{Args, Parser, Subcommand};
use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use yilian_linkem::rng::Rng;
use yilian_linkem::spec::{parse_bytes, parse_duration, parse_probability, parse_rate, MTU};
use yilian_linkem::{
    GilbertElliott, LinkControl, LinkSpec, NetnsPair, PathStats, ProxyHandle, Side, UdpProxy,
};

type BoxError = Box<dyn Error + Send + Sync>;

/// yilian-linkem: a seeded, deterministic emulator of a rural link, for yilian's tests and
/// benches — or for trying any program over a township uplink from your desk.
///
/// A township uplink is typically 2–20 Mbit/s, 50–300 ms round trip, 0.5–5 % loss, and it
/// drops for minutes at a time. Two ways to put traffic through such a link:
///
///   udp    a UDP proxy on loopback (QUIC, yilian): clients send to the proxy, it forwards to
///          the server through the emulated link. Can also rebind (NAT rebinding).
///   netns  two network namespaces joined by the emulated link at the IP level: any program,
///          TCP included (DCMTK storescu/storescp, iperf3…). Needs root.
///
/// What each impairment means (each direction separately, same values both ways unless
/// --up-rate/--down-rate say otherwise):
///
///   --rate      bottleneck rate: packets are serialised one after another at this rate.
///   --queue     bottleneck buffer in bytes; a packet that does not fit is dropped (tail drop).
///               A big queue means no loss but long delays under load (bufferbloat).
///   --rtt       round-trip propagation time; each direction gets half.
///   --jitter    each packet's delay varies by ± this much; packets stay in order.
///   --loss      share of packets lost at random, independently.
///   --burst     make the loss bursty instead: the same share, lost in runs of this many
///               packets on average (Gilbert–Elliott), like a radio link fading.
///   --reorder   share of packets held back by --reorder-delay so that later ones overtake.
///   --cut-at/--cut-for  the link goes down completely at this offset, for this long
///               (repeatable). Everything queued or in flight is lost too.
///   --seed      same seed + same traffic = same losses, same delays: runs are reproducible.
///
/// Typical township links:
///
///   good 4G          --rate 20mbit --rtt 60ms  --loss 0.5%
///   ordinary         --rate 10mbit --rtt 120ms --loss 2% --jitter 10ms
///   poor, far away   --rate 2mbit  --rtt 300ms --loss 5% --burst 4
///   outage           --rate 10mbit --rtt 120ms --loss 1% --cut-at 30s --cut-for 3m
///
/// Examples:
///
///   # QUIC relay on 127.0.0.1:4433, clients connect to 127.0.0.1:5433 instead
///   yilian-linkem udp --listen 127.0.0.1:5433 --upstream 127.0.0.1:4433 \
///       --rate 20mbit --rtt 120ms --loss 2% --cut-at 10s --cut-for 30s --seed 7
///
///   # DCMTK over the same kind of path (as root; TCP_NODELAY=1 or DCMTK's Nagle is measured;
///   # /usr/bin/… because pynetdicom installs scripts of the same names)
///   sudo TCP_NODELAY=1 yilian-linkem netns --rate 20mbit --rtt 120ms --loss 2% \
///       --server '/usr/bin/storescp 11112' -- /usr/bin/storescu 10.201.0.2 11112 study/*.dcm
///
///   # Raw TCP goodput over the path, content verified
///   sudo yilian-linkem netns --rate 100mbit --rtt 40ms --cc-a bbr \
///       --server 'yilian-linkem probe tcp-sink --listen 10.201.0.2:5001 --seed 1' \
///       -- yilian-linkem probe tcp-send --connect 10.201.0.2:5001 --bytes 200MB --seed 1
///
/// While running, type commands on stdin: `cut 30s`, `cut` (until restore), `restore`,
/// `rebind` (udp), `stats`, `quit`.
#[derive(Parser, Debug)]
#[command(name = "yilian-linkem", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Impair UDP between clients and one server on this machine (loopback only).
    ///
    /// Clients send to --listen; each client gets its own socket towards --upstream (so the
    /// server sees one peer per client). Up = client → server, down = server → client.
    /// Runs until Ctrl-C (or `quit` on stdin), printing counters every --stats-every.
    #[command(verbatim_doc_comment)]
    Udp(UdpArgs),
    /// Create two network namespaces joined by the impaired link (needs root).
    ///
    /// Namespace A is the clinic side, B the hospital side; up = A → B. Prints the namespace
    /// names and addresses, then runs until Ctrl-C. With `-- COMMAND…` it runs COMMAND in A
    /// instead and exits with its status when it ends; --server starts a shell command in B
    /// first. Both see LINKEM_NS_A, LINKEM_NS_B, LINKEM_ADDR_A, LINKEM_ADDR_B.
    ///
    /// The namespaces' TCP congestion control is set explicitly (--cc-a/--cc-b, default
    /// cubic: what township devices mostly run); the host's allowed list is extended if
    /// needed. Namespaces are deleted on exit.
    #[command(verbatim_doc_comment)]
    Netns(NetnsArgs),
    /// Traffic tools for tests and benches (a TCP sink and source with verifiable content).
    #[command(subcommand)]
    Probe(ProbeCommand),
}

#[derive(Args, Debug, Clone)]
struct LinkArgs {
    /// Bottleneck rate each way: 20mbit, 512kbit, 1gbit, or bit/s; 0 = unlimited.
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_rate)]
    rate: u64,
    /// Rate of the up direction (client → server, A → B) if different from --rate.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    up_rate: Option<u64>,
    /// Rate of the down direction (server → client, B → A) if different from --rate.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    down_rate: Option<u64>,
    /// Bottleneck queue each way: 64kb, 256KiB… Default: one bandwidth-delay product
    /// (rate × RTT), at least 16 full-size packets.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    queue: Option<u64>,
    /// Round-trip propagation time (each direction gets half): 120ms.
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    rtt: Duration,
    /// Delay variation each way (uniform ± this; packets stay in order): 10ms.
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    jitter: Duration,
    /// Packet loss each way: 2% (or 0.02).
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = parse_probability)]
    loss: f64,
    /// Make the loss bursty: the same --loss share, lost in runs of this many packets on
    /// average (Gilbert–Elliott). E.g. 4.
    #[arg(long, value_name = "PACKETS")]
    burst: Option<f64>,
    /// Share of packets held back so that later ones overtake them: 1%.
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = parse_probability)]
    reorder: f64,
    /// How long a reordered packet is held back.
    #[arg(long, value_name = "DURATION", default_value = "5ms", value_parser = parse_duration)]
    reorder_delay: Duration,
    /// Cut the link at this offset from the start (repeatable; pairs with --cut-for).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    cut_at: Vec<Duration>,
    /// Length of the cut given by the --cut-at at the same position: 30s, 3m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    cut_for: Vec<Duration>,
    /// Seed of every random choice: same seed and same traffic, same result.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print counters this often (0 = only at the end).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    stats_every: Duration,
}

impl LinkArgs {
    /// (up, down) specs.
    fn specs(&self) -> Result<(LinkSpec, LinkSpec), BoxError> {
        if self.cut_at.len() != self.cut_for.len() {
            return Err(format!(
                "{} --cut-at but {} --cut-for: give them in pairs",
                self.cut_at.len(),
                self.cut_for.len()
            )
            .into());
        }
        let one = |rate: u64| -> Result<LinkSpec, BoxError> {
            let mut s = LinkSpec::rural(rate, self.rtt, self.loss)
                .with_jitter(self.jitter)
                .with_reorder(self.reorder, self.reorder_delay);
            if rate == 0 {
                s.queue_bytes = 0;
            }
            if let Some(q) = self.queue {
                s.queue_bytes = q;
            }
            if let Some(burst) = self.burst {
                s = s.with_gilbert_elliott(GilbertElliott::from_loss_and_burst(self.loss, burst)?);
                s.loss = 0.0;
            }
            for (&at, &duration) in self.cut_at.iter().zip(&self.cut_for) {
                s = s.with_cut(at, duration);
            }
            if rate > 0 && s.queue_bytes < MTU {
                return Err(format!(
                    "--queue {} is smaller than one full-size packet ({MTU} bytes)",
                    s.queue_bytes
                )
                .into());
            }
            s.validate()?;
            Ok(s)
        };
        Ok((
            one(self.up_rate.unwrap_or(self.rate))?,
            one(self.down_rate.unwrap_or(self.rate))?,
        ))
    }
}

#[derive(Args, Debug)]
struct UdpArgs {
    /// Address clients send to (loopback): 127.0.0.1:5433; port 0 picks one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The server (loopback): 127.0.0.1:4433.
    #[arg(long, value_name = "ADDR")]
    upstream: SocketAddr,
    #[command(flatten)]
    link: LinkArgs,
}

#[derive(Args, Debug)]
struct NetnsArgs {
    /// Namespace name prefix (names are PREFIX-PID-N-a / -b).
    #[arg(long, default_value = "ylk")]
    prefix: String,
    /// TCP congestion control in namespace A (clinic side).
    #[arg(long, default_value = "cubic")]
    cc_a: String,
    /// TCP congestion control in namespace B (hospital side).
    #[arg(long, default_value = "cubic")]
    cc_b: String,
    /// A sysctl for both namespaces, KEY=VALUE (repeatable), e.g.
    /// net.ipv4.tcp_wmem="4096 16384 33554432" for a 100 Mbit/s × 300 ms path.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_sysctl)]
    sysctl: Vec<(String, String)>,
    /// A shell command started in namespace B before COMMAND (e.g. a server); stopped at
    /// the end.
    #[arg(long, value_name = "SHELL COMMAND")]
    server: Option<String>,
    /// How long to give --server to start listening.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    server_wait: Duration,
    #[command(flatten)]
    link: LinkArgs,
    /// Command to run in namespace A (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum ProbeCommand {
    /// Accept one TCP connection, read to the end, report size, time and rate; with --seed,
    /// check the bytes are exactly what `tcp-send --seed` sent (exit 1 otherwise).
    TcpSink {
        /// Address to listen on; port 0 picks one (printed as `listening on ADDR`).
        #[arg(long)]
        listen: SocketAddr,
        /// Verify the content against this seed's stream.
        #[arg(long)]
        seed: Option<u64>,
        /// Fail unless exactly this many bytes arrive.
        #[arg(long, value_parser = parse_bytes)]
        expect_bytes: Option<u64>,
    },
    /// Connect and send BYTES of a seeded pseudo-random stream, then close.
    TcpSend {
        /// Server address.
        #[arg(long)]
        connect: SocketAddr,
        /// How much to send: 30MB, 4MiB…
        #[arg(long, value_parser = parse_bytes)]
        bytes: u64,
        /// Seed of the content.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(probe) => run_probe(probe),
        command => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(async move {
                match command {
                    Command::Udp(args) => run_udp(args).await,
                    Command::Netns(args) => run_netns(args).await,
                    Command::Probe(_) => Ok(ExitCode::SUCCESS),
                }
            }),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn describe(spec: &LinkSpec) -> String {
    let mut parts = Vec::new();
    if spec.rate_bps > 0 {
        parts.push(format!(
            "{} Mbit/s, queue {} B",
            spec.rate_bps as f64 / 1e6,
            spec.queue_bytes
        ));
    } else {
        parts.push("unlimited rate".into());
    }
    parts.push(format!("delay {:?}", spec.delay));
    if !spec.jitter.is_zero() {
        parts.push(format!("jitter ±{:?}", spec.jitter));
    }
    if spec.loss > 0.0 {
        parts.push(format!("loss {}%", spec.loss * 100.0));
    }
    if let Some(ge) = &spec.burst {
        parts.push(format!(
            "bursty loss {:.2}% in runs of {:.1}",
            ge.mean_loss() * 100.0,
            ge.mean_bad_run()
        ));
    }
    if spec.reorder > 0.0 {
        parts.push(format!(
            "reorder {}% by {:?}",
            spec.reorder * 100.0,
            spec.reorder_delay
        ));
    }
    for cut in &spec.cuts {
        parts.push(format!("cut at {:?} for {:?}", cut.at, cut.duration));
    }
    parts.join(", ")
}

/// What stdin asks for.
enum Order {
    Quit,
    Rebind,
}

/// Lines typed on stdin (read by a plain thread: stdin is blocking).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(line) => {
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Read control commands from stdin until it ends; apply the link ones, return the others.
async fn next_order(
    lines: &mut Option<mpsc::Receiver<String>>,
    control: &LinkControl,
) -> Option<Order> {
    loop {
        let reader = lines.as_mut()?;
        let Some(line) = reader.recv().await else {
            *lines = None; // stdin closed: keep running until Ctrl-C
            return None;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["cut"] => {
                control.cut_now();
                println!("link cut until `restore`");
            }
            ["cut", d] => match parse_duration(d) {
                Ok(d) => {
                    control.cut_for(d);
                    println!("link cut for {d:?}");
                }
                Err(e) => println!("{e}"),
            },
            ["restore"] => {
                control.restore();
                println!("link restored");
            }
            ["stats"] => println!("{}", control.stats()),
            ["rebind"] => return Some(Order::Rebind),
            ["quit"] | ["exit"] => return Some(Order::Quit),
            _ => println!("commands: cut [DURATION], restore, rebind, stats, quit"),
        }
    }
}

async fn pending_forever<T>() -> T {
    std::future::pending().await
}

async fn wait_stats_tick(every: Duration) {
    if every.is_zero() {
        pending_forever::<()>().await
    } else {
        tokio::time::sleep(every).await
    }
}

struct Reporter {
    last: PathStats,
    at: Instant,
}

impl Reporter {
    fn new() -> Self {
        Reporter {
            last: PathStats::default(),
            at: Instant::now(),
        }
    }
    fn line(&mut self, now: PathStats) {
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 * 8.0 / secs / 1e6;
        println!(
            "up {:.2} Mbit/s ({} pkts, lost {} queue {} cut {}) | down {:.2} Mbit/s ({} pkts, lost {} queue {} cut {})",
            rate(now.up.bytes_delivered, self.last.up.bytes_delivered),
            now.up.delivered,
            now.up.dropped_loss,
            now.up.dropped_queue,
            now.up.dropped_cut,
            rate(now.down.bytes_delivered, self.last.down.bytes_delivered),
            now.down.delivered,
            now.down.dropped_loss,
            now.down.dropped_queue,
            now.down.dropped_cut,
        );
        self.last = now;
        self.at = Instant::now();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn run_udp(args: UdpArgs) -> Result<ExitCode, BoxError> {
    let (up, down) = args.link.specs()?;
    let proxy = UdpProxy::start(
        args.listen,
        args.upstream,
        up.clone(),
        down.clone(),
        args.link.seed,
    )
    .await?;
    let handle: ProxyHandle = proxy.handle();
    println!("listening on {}", proxy.local_addr());
    println!("forwarding to {}", proxy.upstream());
    println!("up   (client → server): {}", describe(&up));
    println!("down (server → client): {}", describe(&down));
    let _ = std::io::stdout().flush();
    let mut lines = Some(stdin_lines());
    let mut reporter = Reporter::new();
    let control = handle.control().clone();
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = wait_stats_tick(args.link.stats_every) => reporter.line(handle.stats()),
            order = next_order(&mut lines, &control), if lines.is_some() => match order {
                Some(Order::Quit) => break,
                Some(Order::Rebind) => match handle.rebind() {
                    Ok(addrs) => println!("rebound: the server now sees {addrs:?}"),
                    Err(e) => println!("rebind failed: {e}"),
                },
                None => {}
            },
        }
    }
    println!("{}", handle.stats());
    if let Some(cpu) = process_cpu_time() {
        let wall = started.elapsed().as_secs_f64();
        println!(
            "proxy process CPU: {:.3} s in {wall:.1} s ({:.1}% of one core)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / wall.max(1e-9) * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_sysctl(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Stop a child started in its own process group: SIGTERM to the group, SIGKILL after 2 s.
async fn stop_group(child: &mut tokio::process::Child) {
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return; // already reaped
    };
    for (signal, grace) in [(libc::SIGTERM, 2), (libc::SIGKILL, 5)] {
        // SAFETY: signalling a process group we created.
        unsafe {
            libc::kill(-pid, signal);
        }
        if tokio::time::timeout(Duration::from_secs(grace), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
}

/// User + system CPU time of this process.
fn process_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

async fn run_netns(args: NetnsArgs) -> Result<ExitCode, BoxError> {
    let (up, down) = args.link.specs()?;
    let mut builder = NetnsPair::builder(&args.prefix)
        .links(up.clone(), down.clone())
        .seed(args.link.seed)
        .congestion_control(Side::A, &args.cc_a)
        .congestion_control(Side::B, &args.cc_b);
    for (key, value) in &args.sysctl {
        builder = builder
            .sysctl(Side::A, key, value)
            .sysctl(Side::B, key, value);
    }
    let pair = builder.create()?;
    let env = [
        ("LINKEM_NS_A", pair.ns_a().to_string()),
        ("LINKEM_NS_B", pair.ns_b().to_string()),
        ("LINKEM_ADDR_A", pair.addr_a().to_string()),
        ("LINKEM_ADDR_B", pair.addr_b().to_string()),
    ];
    println!(
        "namespace A (clinic):   {}  address {}  tcp {}",
        pair.ns_a(),
        pair.addr_a(),
        args.cc_a
    );
    println!(
        "namespace B (hospital): {}  address {}  tcp {}",
        pair.ns_b(),
        pair.addr_b(),
        args.cc_b
    );
    println!("up   (A → B): {}", describe(&up));
    println!("down (B → A): {}", describe(&down));
    if args.command.is_empty() {
        println!(
            "try:  ip netns exec {} storescp 11112   and   ip netns exec {} storescu {} 11112 FILE",
            pair.ns_b(),
            pair.ns_a(),
            pair.addr_b()
        );
    }
    let _ = std::io::stdout().flush();

    let mut server = match &args.server {
        Some(shell) => {
            let mut c = pair.command_b("sh");
            c.args(["-c", shell]).envs(env.iter().cloned());
            // Its own process group, so that stopping it reaches whatever the shell started.
            std::os::unix::process::CommandExt::process_group(&mut c, 0);
            let child = tokio::process::Command::from(c)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start --server: {e}"))?;
            tokio::time::sleep(args.server_wait).await;
            Some(child)
        }
        None => None,
    };

    let mut reporter = Reporter::new();
    let control = pair.control().clone();
    let mut lines = if args.command.is_empty() {
        Some(stdin_lines())
    } else {
        None
    };
    let mut child = match args.command.split_first() {
        Some((program, rest)) => {
            let mut c = pair.command_a(program);
            c.args(rest).envs(env.iter().cloned());
            Some(
                tokio::process::Command::from(c)
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| format!("cannot start {program}: {e}"))?,
            )
        }
        None => None,
    };
    let start = Instant::now();
    let mut code = ExitCode::SUCCESS;
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = wait_stats_tick(args.link.stats_every) => reporter.line(pair.stats()),
            status = async { match child.as_mut() { Some(c) => c.wait().await, None => pending_forever().await } } => {
                let status = status?;
                println!("command ended after {:.2} s: {status}", start.elapsed().as_secs_f64());
                if !status.success() {
                    code = ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8);
                }
                break;
            }
            order = next_order(&mut lines, &control), if lines.is_some() => match order {
                Some(Order::Quit) => break,
                Some(Order::Rebind) => println!("rebind is for the udp proxy"),
                None => {}
            },
        }
    }
    if let Some(server) = server.as_mut() {
        stop_group(server).await;
    }
    println!("{}", pair.stats());
    if let Some(cpu) = pair.router_cpu_time() {
        let wall = start.elapsed().as_secs_f64();
        println!(
            "router thread CPU: {:.3} s in {wall:.1} s ({:.1}% of one core)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / wall.max(1e-9) * 100.0
        );
    }
    drop(pair);
    Ok(code)
}

fn run_probe(probe: ProbeCommand) -> Result<ExitCode, BoxError> {
    match probe {
        ProbeCommand::TcpSink {
            listen,
            seed,
            expect_bytes,
        } => {
            let listener = TcpListener::bind(listen)?;
            println!("listening on {}", listener.local_addr()?);
            std::io::stdout().flush()?;
            let (mut stream, peer) = listener.accept()?;
            let _ = stream.set_nodelay(true);
            let start = Instant::now();
            let mut expected = seed.map(Stream::new);
            let mut buf = vec![0u8; 256 * 1024];
            let mut want = vec![0u8; buf.len()];
            let mut total: u64 = 0;
            let mut mismatch = None;
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                if let (Some(gen), None) = (expected.as_mut(), mismatch) {
                    gen.fill(&mut want[..n]);
                    if let Some(i) = buf[..n].iter().zip(&want[..n]).position(|(a, b)| a != b) {
                        mismatch = Some(total + i as u64);
                    }
                }
                total += n as u64;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "received {total} bytes from {peer} in {secs:.3} s ({:.2} Mbit/s)",
                total as f64 * 8.0 / secs.max(1e-9) / 1e6
            );
            if let Some(at) = mismatch {
                println!(
                    "content differs from seed {} at byte {at}",
                    seed.unwrap_or(0)
                );
                return Ok(ExitCode::FAILURE);
            }
            if let Some(seed) = seed {
                println!("content identical to seed {seed}");
            }
            if let Some(n) = expect_bytes {
                if n != total {
                    println!("expected {n} bytes");
                    return Ok(ExitCode::FAILURE);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ProbeCommand::TcpSend {
            connect,
            bytes,
            seed,
        } => {
            let mut stream = TcpStream::connect(connect)?;
            let _ = stream.set_nodelay(true);
            let start = Instant::now();
            let mut gen = Stream::new(seed);
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                gen.fill(&mut buf[..n]);
                stream.write_all(&buf[..n])?;
                left -= n as u64;
            }
            stream.shutdown(std::net::Shutdown::Write)?;
            // Wait for the sink to close: the data is then all received.
            let _ = stream.read(&mut [0u8; 1]);
            let secs = start.elapsed().as_secs_f64();
            println!(
                "sent {bytes} bytes in {secs:.3} s ({:.2} Mbit/s)",
                bytes as f64 * 8.0 / secs.max(1e-9) / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The seeded byte stream of the TCP probes: little-endian xoshiro256++ words.
struct Stream {
    rng: Rng,
    word: [u8; 8],
    used: usize,
}

impl Stream {
    fn new(seed: u64) -> Self {
        Stream {
            rng: Rng::new(seed),
            word: [0; 8],
            used: 8,
        }
    }
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.word = self.rng.next_u64().to_le_bytes();
                self.used = 0;
            }
            *b = self.word[self.used];
            self.used += 1;
        }
    }
}
