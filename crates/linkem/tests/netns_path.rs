//! The IP-level path between two network namespaces (TUN devices + userspace router).
//!
//! Needs root and /dev/net/tun. Without them these tests FAIL (with what is missing): CI runs
//! as root, and a silently skipped path test would hide a broken bench.
//!
//! Timing assertions are lower bounds only; waits are liveness limits.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use yilian_linkem::rng::Rng;
use yilian_linkem::{LinkSpec, NetnsPair, Side};

const PREFIX: &str = "ylkt";

fn require_root_and_tun() {
    if let Err(e) = NetnsPair::check_requirements() {
        panic!(
            "{e}\nThe namespace path tests need root and /dev/net/tun (CI runs them as root); \
             run `sudo -E cargo test -p yilian-linkem --test netns_path`."
        );
    }
}

/// BBR when the kernel offers it (this one defaults to it), else CUBIC.
fn fast_cc() -> &'static str {
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    if available.split_whitespace().any(|a| a == "bbr") {
        "bbr"
    } else {
        "cubic"
    }
}

fn pair(up: LinkSpec, down: LinkSpec, seed: u64) -> NetnsPair {
    require_root_and_tun();
    NetnsPair::builder(PREFIX)
        .links(up, down)
        .seed(seed)
        .create()
        .unwrap_or_else(|e| panic!("cannot create the namespace pair: {e}"))
}

/// A UDP echo server inside B; returns its address.
fn udp_echo_in_b(pair: &NetnsPair) -> SocketAddr {
    let addr = SocketAddr::from((pair.addr_b(), 0));
    let socket = pair
        .run_in(Side::B, move || UdpSocket::bind(addr))
        .unwrap()
        .unwrap();
    let local = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        // A server that stopped would make every later ping fail with "connection refused"
        // (the client's socket is connected): it says why, and keeps going on what passes.
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Err(e) = socket.send_to(&buf[..n], from) {
                        eprintln!("echo server: send to {from}: {e}");
                    }
                }
                Err(e) if transient(&e) => eprintln!("echo server: receive: {e} (going on)"),
                Err(e) => {
                    eprintln!("echo server: receive: {e}; stopped");
                    return;
                }
            }
        }
    });
    local
}

fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        Interrupted | ConnectionRefused | WouldBlock | TimedOut
    )
}

fn udp_client_in_a(pair: &NetnsPair, server: SocketAddr) -> UdpSocket {
    let addr = SocketAddr::from((pair.addr_a(), 0));
    let socket = pair
        .run_in(Side::A, move || UdpSocket::bind(addr))
        .unwrap()
        .unwrap();
    socket.connect(server).unwrap();
    socket
}

/// What one echo request got.
enum Echo {
    /// The echo, after this round trip.
    Back(Duration),
    /// Nothing within the limit.
    Silent,
    /// The client's socket failed (e.g. "connection refused": an ICMP error came back).
    Failed(std::io::Error),
}

impl std::fmt::Display for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Echo::Back(rtt) => write!(f, "the echo after {rtt:?}"),
            Echo::Silent => write!(f, "nothing within the limit"),
            Echo::Failed(e) => write!(f, "the socket failed: {e} ({:?})", e.kind()),
        }
    }
}

impl Echo {
    /// The round trip; a failure that says what came instead.
    fn rtt(self, what: &str) -> Duration {
        match self {
            Echo::Back(rtt) => rtt,
            other => panic!("{what}: no echo: {other}"),
        }
    }
}

/// Send one echo request and wait up to `limit` for its answer (earlier answers are skipped).
fn ping(socket: &UdpSocket, payload: &[u8], limit: Duration) -> Echo {
    let start = Instant::now();
    if let Err(e) = socket.send(payload) {
        return Echo::Failed(e);
    }
    let mut buf = [0u8; 2048];
    loop {
        let Some(left) = limit.checked_sub(start.elapsed()) else {
            return Echo::Silent;
        };
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) if &buf[..n] == payload => return Echo::Back(start.elapsed()),
            Ok(_) => continue,
            // A receive with a timeout is never restarted after a signal handler ran, whatever
            // SA_RESTART says (signal(7)). This process handles glibc's signal 33 (besides
            // Rust's SIGSEGV/SIGBUS guards), and it did interrupt these receives: EINTR is
            // routine here, not a failure of the path.
            Err(e) if transient(&e) && e.kind() != std::io::ErrorKind::ConnectionRefused => {
                continue
            }
            Err(e) => return Echo::Failed(e),
        }
    }
}

#[test]
fn tcp_transfer_over_a_delayed_lossy_path_is_byte_identical() {
    // A township uplink: 20 Mbit/s, 60 ms RTT, 1% loss each way, a one-BDP queue.
    // BBR on the sending side (if the kernel has it) keeps the test short: CUBIC needs ~10 s
    // for this at 1% loss.
    let spec = LinkSpec::rural(20_000_000, Duration::from_millis(60), 0.01);
    require_root_and_tun();
    let pair = NetnsPair::builder(PREFIX)
        .links(spec.clone(), spec)
        .seed(11)
        .congestion_control(Side::A, fast_cc())
        .create()
        .unwrap();
    let listen = SocketAddr::from((pair.addr_b(), 0));
    let listener = pair
        .run_in(Side::B, move || TcpListener::bind(listen))
        .unwrap()
        .unwrap();
    let server = listener.local_addr().unwrap();
    const LEN: usize = 2 << 20;
    let mut data = vec![0u8; LEN];
    let mut rng = Rng::new(7);
    for chunk in data.chunks_mut(8) {
        let x = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&x[..chunk.len()]);
    }
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::with_capacity(LEN);
        s.read_to_end(&mut got).unwrap();
        got
    });
    let start = Instant::now();
    let mut client = pair
        .run_in(Side::A, move || TcpStream::connect(server))
        .unwrap()
        .expect("TCP connect across the path");
    client.write_all(&data).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = receiver.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(got.len(), LEN);
    assert!(got == data, "bytes differ after crossing the path");
    // 2 MiB at 20 Mbit/s cannot take less than 0.84 s.
    assert!(elapsed >= Duration::from_millis(838), "{elapsed:?}");
    let s = pair.stats();
    assert!(s.up.dropped_loss > 0, "no loss happened: {s}");
    assert!(s.up.bytes_delivered >= LEN as u64);
    // No GSO super-packets: the model saw MTU-sized IP packets.
    assert!(s.up.max_packet_bytes <= 1500, "{s}");
    assert!(s.up.max_packet_bytes >= 1400, "{s}");
    eprintln!(
        "2 MiB in {elapsed:?} ({:.1} Mbit/s), router CPU {:?}\n{s}",
        LEN as f64 * 8.0 / elapsed.as_secs_f64() / 1e6,
        pair.router_cpu_time()
    );
}

#[test]
fn udp_round_trip_observes_the_delay() {
    let up = LinkSpec::ideal().with_delay(Duration::from_millis(25));
    let down = LinkSpec::ideal()
        .with_delay(Duration::from_millis(35))
        .with_jitter(Duration::from_millis(5));
    let pair = pair(up, down, 2);
    let server = udp_echo_in_b(&pair);
    let client = udp_client_in_a(&pair, server);
    for i in 0..20u32 {
        let rtt =
            ping(&client, &i.to_be_bytes(), Duration::from_secs(10)).rtt("echo across the path");
        assert!(rtt >= Duration::from_millis(55), "ping {i}: {rtt:?}");
    }
    let s = pair.stats();
    assert_eq!((s.up.delivered, s.down.delivered), (20, 20), "{s}");
}

#[test]
fn cut_stops_traffic_then_it_resumes() {
    let spec = LinkSpec::ideal().with_delay(Duration::from_millis(5));
    let pair = pair(spec.clone(), spec, 3);
    let server = udp_echo_in_b(&pair);
    let client = udp_client_in_a(&pair, server);
    let silent = |e: Echo, what: &str| assert!(matches!(e, Echo::Silent), "{what}: {e}");
    ping(&client, b"before", Duration::from_secs(10)).rtt("before the cut");
    pair.cut_now();
    silent(
        ping(&client, b"during", Duration::from_millis(300)),
        "during the cut",
    );
    pair.restore();
    ping(&client, b"after", Duration::from_secs(10)).rtt("after the restore");
    pair.cut_for(Duration::from_millis(300));
    let start = Instant::now();
    silent(
        ping(&client, b"timed", Duration::from_millis(100)),
        "during the timed cut",
    );
    std::thread::sleep(Duration::from_millis(300).saturating_sub(start.elapsed()));
    ping(&client, b"resumed", Duration::from_secs(10)).rtt("after the timed cut");
    assert_eq!(pair.stats().up.dropped_cut, 2);
}

#[test]
fn congestion_control_is_chosen_per_namespace() {
    require_root_and_tun();
    let pair = NetnsPair::builder(PREFIX)
        .congestion_control(Side::A, "cubic")
        .congestion_control(Side::B, "reno")
        .create()
        .unwrap();
    let in_ns = |side: Side, key: &str| -> String {
        let out = pair
            .command(side, "cat")
            .arg(format!("/proc/sys/{}", key.replace('.', "/")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(in_ns(Side::A, "net.ipv4.tcp_congestion_control"), "cubic");
    assert_eq!(in_ns(Side::B, "net.ipv4.tcp_congestion_control"), "reno");
    assert_eq!(in_ns(Side::A, "net.ipv4.tcp_no_metrics_save"), "1");
    assert_eq!(in_ns(Side::B, "net.ipv4.tcp_no_metrics_save"), "1");
    let allowed =
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_allowed_congestion_control").unwrap();
    assert!(
        allowed.split_whitespace().any(|a| a == "cubic"),
        "{allowed}"
    );
    // Changed later, still per namespace.
    pair.set_congestion_control(Side::B, "cubic").unwrap();
    pair.set_congestion_control(Side::A, "reno").unwrap();
    assert_eq!(in_ns(Side::A, "net.ipv4.tcp_congestion_control"), "reno");
    assert_eq!(
        pair.sysctl(Side::A, "net.ipv4.tcp_congestion_control")
            .unwrap(),
        "reno"
    );
    assert_eq!(in_ns(Side::B, "net.ipv4.tcp_congestion_control"), "cubic");
    // Commands run inside: the namespace has only lo and the emulated link.
    let out = pair
        .command_a("ip")
        .args(["-o", "addr", "show", "dev", "lnk0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{} peer {}/32", pair.addr_a(), pair.addr_b())),
        "{text}"
    );
}

#[test]
fn drop_deletes_the_namespaces_and_stale_ones_are_cleaned_up() {
    require_root_and_tun();
    // A namespace left behind by a crashed run (its pid no longer exists).
    let dead_pid = (1u32 << 22) + 12_345; // above any pid_max default: never running
    let stale = format!("{PREFIX}-{dead_pid}-0-a");
    let out = Command::new("ip")
        .args(["netns", "add", &stale])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pair = NetnsPair::create(PREFIX).unwrap();
    assert!(
        !Path::new("/run/netns").join(&stale).exists(),
        "stale namespace kept"
    );
    let names = [pair.ns_a().to_string(), pair.ns_b().to_string()];
    assert!(names[0].starts_with(&format!("{PREFIX}-{}-", std::process::id())));
    for n in &names {
        assert!(Path::new("/run/netns").join(n).exists());
    }
    drop(pair);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
    }
}

/// Reads lines of a child's stdout until one starts with `prefix`.
fn wait_for_line(out: &mut impl std::io::BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "output ended before a line starting with {prefix:?}");
        if line.starts_with(prefix) {
            return line.trim().to_string();
        }
    }
}

#[test]
fn programs_run_inside_the_namespaces_through_command_a_and_b() {
    use std::io::BufReader;
    use std::process::Stdio;
    let spec = LinkSpec::rural(50_000_000, Duration::from_millis(20), 0.005);
    let pair = pair(spec.clone(), spec, 12);
    let exe = env!("CARGO_BIN_EXE_yilian-linkem");
    let listen = format!("{}:0", pair.addr_b());
    let mut sink = pair
        .command_b(exe)
        .args([
            "probe",
            "tcp-sink",
            "--listen",
            &listen,
            "--seed",
            "5",
            "--expect-bytes",
            "3MB",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(sink.stdout.take().unwrap());
    let line = wait_for_line(&mut out, "listening on ");
    let server = line.trim_start_matches("listening on ").to_string();
    let send = pair
        .command_a(exe)
        .args([
            "probe",
            "tcp-send",
            "--connect",
            &server,
            "--bytes",
            "3MB",
            "--seed",
            "5",
        ])
        .output()
        .unwrap();
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    let verdict = wait_for_line(&mut out, "content ");
    assert_eq!(verdict, "content identical to seed 5");
    assert!(sink.wait().unwrap().success());
    let s = pair.stats();
    assert!(s.up.bytes_delivered >= 3_000_000, "{s}");
}
