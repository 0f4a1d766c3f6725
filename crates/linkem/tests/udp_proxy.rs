//! The UDP proxy on loopback, with plain UDP echo servers upstream.
//!
//! Timing assertions are lower bounds only (a packet never arrives before the emulated delay);
//! waits are generous liveness limits, never performance thresholds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use yilian_linkem::{direction_seed, Direction, Link, LinkSpec, ProxyError, UdpProxy, Verdict};

const LOOPBACK: &str = "127.0.0.1:0";

fn any() -> SocketAddr {
    LOOPBACK.parse().unwrap()
}

/// A loopback UDP socket with 4 MiB buffers: bursts in these tests must be shaped by the
/// emulator, not lost in a default-sized kernel buffer.
fn big_socket() -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true).unwrap();
    s.bind(&any().into()).unwrap();
    UdpSocket::from_std(s.into()).unwrap()
}

/// A UDP echo server that records the source address of every datagram.
async fn echo_server() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let socket = big_socket();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            log.lock().unwrap().push(from);
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, seen)
}

async fn client(proxy: &UdpProxy) -> UdpSocket {
    let c = big_socket();
    c.connect(proxy.local_addr()).await.unwrap();
    c
}

/// Receive echoes until none comes for `quiet`; returns the payloads.
async fn drain(c: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok(n)) = timeout(quiet, c.recv(&mut buf)).await {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Send `payload` and wait (up to `limit`) for its echo; the round-trip time if it came.
async fn ping(c: &UdpSocket, payload: &[u8], limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    c.send(payload).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, c.recv(&mut buf)).await {
            Ok(Ok(n)) if &buf[..n] == payload => return Some(start.elapsed()),
            Ok(_) => continue, // a late echo of an earlier ping
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_is_applied_in_both_directions() {
    let (server, _) = echo_server().await;
    let up = LinkSpec::ideal().with_delay(Duration::from_millis(40));
    let down = LinkSpec::ideal()
        .with_delay(Duration::from_millis(30))
        .with_jitter(Duration::from_millis(5));
    let proxy = UdpProxy::start(any(), server, up, down, 1).await.unwrap();
    let c = client(&proxy).await;
    for i in 0..20u32 {
        let rtt = ping(&c, &i.to_be_bytes(), Duration::from_secs(10))
            .await
            .expect("echo through the proxy");
        // 40 ms up + 30 ms ± 5 ms down: never less than 65 ms.
        assert!(rtt >= Duration::from_millis(65), "ping {i}: {rtt:?}");
    }
    let s = proxy.stats();
    assert_eq!((s.up.delivered, s.down.delivered), (20, 20));
    assert_eq!(proxy.flows(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_drops_that_share_exactly_as_the_model_says() {
    let (server, _) = echo_server().await;
    let p = 0.3;
    let seed = 42;
    let up = LinkSpec::ideal().with_loss(p);
    let proxy = UdpProxy::start(any(), server, up.clone(), LinkSpec::ideal(), seed)
        .await
        .unwrap();
    let c = Arc::new(client(&proxy).await);
    let n = 2000usize;
    // Receive while sending, so no kernel buffer ever fills.
    let receiver = tokio::spawn({
        let c = c.clone();
        async move { drain(&c, Duration::from_secs(1)).await }
    });
    for i in 0..n as u32 {
        c.send(&i.to_be_bytes()).await.unwrap();
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let echoes = receiver.await.unwrap();
    let lost = n - echoes.len();
    let share = lost as f64 / n as f64;
    assert!((share - p).abs() < 0.05, "lost {lost} of {n} ({share})");
    // Loss depends only on the seed and the packet count: the pure model, fed the same
    // number of packets, loses exactly the same ones.
    let mut model = Link::new(up, direction_seed(seed, Direction::Up)).unwrap();
    let now = Instant::now();
    let model_kept: Vec<u32> = (0..n as u32)
        .filter(|_| matches!(model.offer(now, 4), Verdict::Deliver { .. }))
        .collect();
    let mut got: Vec<u32> = echoes
        .iter()
        .map(|e| u32::from_be_bytes(e[..4].try_into().unwrap()))
        .collect();
    got.sort_unstable();
    assert_eq!(got, model_kept);
    let s = proxy.stats();
    assert_eq!(s.up.offered, n as u64);
    assert_eq!(s.up.dropped_loss, lost as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_drops_then_traffic_resumes() {
    let (server, _) = echo_server().await;
    let spec = LinkSpec::ideal().with_delay(Duration::from_millis(5));
    let proxy = UdpProxy::start(any(), server, spec.clone(), spec, 3)
        .await
        .unwrap();
    let c = client(&proxy).await;
    assert!(ping(&c, b"before", Duration::from_secs(10)).await.is_some());

    // A timed cut: everything sent during it is lost; afterwards traffic flows again.
    proxy.cut_for(Duration::from_millis(400));
    let cut_start = Instant::now();
    for i in 0..10u8 {
        c.send(&[b'x', i]).await.unwrap();
    }
    // Echoes sent before the cut ends can never come back; wait for the end of the cut.
    let during = drain(&c, Duration::from_millis(200)).await;
    assert!(
        during.is_empty(),
        "{} datagrams crossed a cut link",
        during.len()
    );
    tokio::time::sleep(Duration::from_millis(400).saturating_sub(cut_start.elapsed())).await;
    let rtt = ping(&c, b"after", Duration::from_secs(10)).await;
    assert!(rtt.is_some(), "no traffic after the cut ended");
    assert!(cut_start.elapsed() >= Duration::from_millis(400));
    assert_eq!(proxy.stats().up.dropped_cut, 10);

    // A cut until restore.
    proxy.cut_now();
    assert!(ping(&c, b"cut", Duration::from_millis(300)).await.is_none());
    proxy.restore();
    assert!(ping(&c, b"restored", Duration::from_secs(10))
        .await
        .is_some());
    let s = proxy.stats();
    assert_eq!(s.up.dropped_cut, 11);
    assert_eq!(s.up.offered, s.up.delivered + s.up.dropped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_loses_packets_already_in_flight() {
    let (server, seen) = echo_server().await;
    let up = LinkSpec::ideal().with_delay(Duration::from_millis(300));
    let proxy = UdpProxy::start(any(), server, up, LinkSpec::ideal(), 4)
        .await
        .unwrap();
    let c = client(&proxy).await;
    c.send(b"in flight").await.unwrap();
    // Wait until the proxy has it, then cut while it is "on the wire".
    while proxy.stats().up.offered == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    proxy.cut_for(Duration::from_millis(50));
    assert!(drain(&c, Duration::from_millis(600)).await.is_empty());
    assert!(
        seen.lock().unwrap().is_empty(),
        "the server got a packet lost in the cut"
    );
    let s = proxy.stats();
    assert_eq!((s.up.delivered, s.up.dropped_cut), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebind_changes_the_source_port_the_upstream_sees() {
    let (server, seen) = echo_server().await;
    let proxy = UdpProxy::start(any(), server, LinkSpec::ideal(), LinkSpec::ideal(), 5)
        .await
        .unwrap();
    let c = client(&proxy).await;
    assert!(ping(&c, b"one", Duration::from_secs(10)).await.is_some());
    let first = *seen.lock().unwrap().last().unwrap();
    assert_eq!(proxy.upstream_sources()[0].1, first);

    let new = proxy.rebind().unwrap();
    assert_eq!(new.len(), 1);
    assert!(ping(&c, b"two", Duration::from_secs(10)).await.is_some());
    let second = *seen.lock().unwrap().last().unwrap();
    assert_ne!(first.port(), second.port(), "same source port after rebind");
    assert_eq!(second, new[0]);
    // The client noticed nothing: same proxy address, echoes still arrive.
    assert_eq!(proxy.flows(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_clients_get_their_own_upstream_socket_and_replies() {
    let (server, seen) = echo_server().await;
    let spec = LinkSpec::ideal().with_delay(Duration::from_millis(10));
    let proxy = UdpProxy::start(any(), server, spec.clone(), spec, 6)
        .await
        .unwrap();
    let clients = [
        client(&proxy).await,
        client(&proxy).await,
        client(&proxy).await,
    ];
    for (i, c) in clients.iter().enumerate() {
        let msg = format!("client {i}");
        assert!(ping(c, msg.as_bytes(), Duration::from_secs(10))
            .await
            .is_some());
    }
    let sources: HashSet<SocketAddr> = seen.lock().unwrap().iter().copied().collect();
    assert_eq!(sources.len(), 3);
    assert_eq!(proxy.flows(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_cap_spaces_a_burst() {
    let (server, _) = echo_server().await;
    // 8 Mbit/s = 1 MB/s: 100 datagrams of 1000 B need at least 100 ms on the wire.
    let up = LinkSpec::ideal()
        .with_rate(8_000_000)
        .with_queue_bytes(200_000);
    let proxy = UdpProxy::start(any(), server, up, LinkSpec::ideal(), 7)
        .await
        .unwrap();
    let c = client(&proxy).await;
    let start = Instant::now();
    for i in 0..100u32 {
        let mut d = vec![0u8; 1000];
        d[..4].copy_from_slice(&i.to_be_bytes());
        c.send(&d).await.unwrap();
    }
    let mut buf = vec![0u8; 2000];
    let mut got = 0;
    while got < 100 {
        timeout(Duration::from_secs(10), c.recv(&mut buf))
            .await
            .expect("echoes")
            .unwrap();
        got += 1;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    let s = proxy.stats();
    assert_eq!(s.up.dropped_queue, 0);
    assert!(s.up.max_queue_delay >= Duration::from_millis(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_specs_applies_to_new_packets() {
    let (server, _) = echo_server().await;
    let proxy = UdpProxy::start(any(), server, LinkSpec::ideal(), LinkSpec::ideal(), 8)
        .await
        .unwrap();
    let c = client(&proxy).await;
    assert!(ping(&c, b"fast", Duration::from_secs(10)).await.is_some());
    proxy
        .set_specs(
            LinkSpec::ideal().with_delay(Duration::from_millis(100)),
            LinkSpec::ideal(),
        )
        .unwrap();
    let rtt = ping(&c, b"slow", Duration::from_secs(10)).await.unwrap();
    assert!(rtt >= Duration::from_millis(100), "{rtt:?}");
    assert!(proxy
        .set_specs(LinkSpec::ideal().with_loss(-1.0), LinkSpec::ideal())
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_non_loopback_and_stops_on_shutdown() {
    let (server, _) = echo_server().await;
    let err = UdpProxy::start(
        "0.0.0.0:0".parse().unwrap(),
        server,
        LinkSpec::ideal(),
        LinkSpec::ideal(),
        1,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProxyError::NotLoopback { .. }), "{err}");
    let proxy = UdpProxy::start(any(), server, LinkSpec::ideal(), LinkSpec::ideal(), 1)
        .await
        .unwrap();
    let c = client(&proxy).await;
    assert!(ping(&c, b"up", Duration::from_secs(10)).await.is_some());
    let handle = proxy.handle();
    drop(proxy);
    assert!(matches!(handle.rebind(), Err(ProxyError::ShutDown)));
    assert!(ping(&c, b"down", Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_udp_mode_delays_and_obeys_stdin_commands() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (server, _) = echo_server().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_yilian-linkem"))
        .args([
            "udp",
            "--upstream",
            &server.to_string(),
            "--rtt",
            "80ms",
            "--loss",
            "0%",
        ])
        .args(["--rate", "10mbit", "--stats-every", "0", "--seed", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr: SocketAddr = first.trim_start_matches("listening on ").parse().unwrap();
    let c = big_socket();
    c.connect(addr).await.unwrap();
    let rtt = ping(&c, b"hello", Duration::from_secs(10)).await.unwrap();
    assert!(rtt >= Duration::from_millis(80), "{rtt:?}");
    stdin.write_all(b"cut\n").await.unwrap();
    loop {
        let line = lines.next_line().await.unwrap().unwrap();
        if line.starts_with("link cut") {
            break;
        }
    }
    assert!(ping(&c, b"cut", Duration::from_millis(300)).await.is_none());
    stdin.write_all(b"restore\n").await.unwrap();
    loop {
        let line = lines.next_line().await.unwrap().unwrap();
        if line.starts_with("link restored") {
            break;
        }
    }
    assert!(ping(&c, b"back", Duration::from_secs(10)).await.is_some());
    stdin.write_all(b"quit\n").await.unwrap();
    let status = timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("dropped: loss 0, queue 0, cut 1"), "{rest}");
}
