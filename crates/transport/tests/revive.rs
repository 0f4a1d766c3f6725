//! Reviving a connection after a cut (`yilian_transport::revive`), with real endpoints through
//! the seeded UDP link emulator: the sender has written everything it has and waits, so only
//! the transport can notice that the link is back. No timing is asserted: packets are counted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use yilian_linkem::UdpProxy;
use yilian_testkit::quic_transfer::{payload, rural, Pki};
use yilian_transport::{client_endpoint, connect, server_endpoint, Tuning};

/// A cut of 20 s while 8 MB wait in the sender's buffer: between the cut's 10th and 19th
/// second the sender still sends a probe about every second (QUIC's own probe timeout, doubled
/// at each probe, allows one there at most: 2 packets), and after the cut the same connection
/// delivers the stream intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_sender_probes_every_second_through_a_cut_and_carries_on() {
    let pki = Pki::generate("revive");
    let tuning = Tuning::default();
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    let server = server_endpoint(any_port, &pki.server, &tuning).unwrap();
    let (up, down) = rural(20, 60, 0.0);
    let proxy = UdpProxy::start(any_port, server.local_addr().unwrap(), up, down, 7)
        .await
        .unwrap();
    let data = payload(8 << 20, 7);
    let expected = data.clone();
    let server_tuning = tuning.clone();
    let receiver = tokio::spawn(async move {
        let (conn, _) = yilian_transport::accept(server.accept().await.unwrap())
            .await
            .unwrap();
        server_tuning.revive(&conn);
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let got = recv.read_to_end(usize::MAX).await.unwrap();
        send.write_all(&[(got == *expected) as u8]).await.unwrap();
        send.finish().unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
    });

    let client = client_endpoint(&pki.client, &tuning, false).unwrap();
    let (conn, _) = connect(&client, &proxy.local_addr().to_string())
        .await
        .unwrap();
    tuning.revive(&conn);
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    // All of it into quinn's send buffer at once: from here the application only waits.
    send.write_all(&data).await.unwrap();
    send.finish().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut_for(Duration::from_secs(20));
    let cut_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let at_10 = proxy.stats().up.dropped_cut;
    tokio::time::sleep(Duration::from_secs(19).saturating_sub(cut_at.elapsed())).await;
    let probes = proxy.stats().up.dropped_cut - at_10;
    assert!(
        probes >= 6,
        "{probes} packets sent into the cut between its 10th and 19th second"
    );
    let answer = tokio::time::timeout(Duration::from_secs(120), recv.read_to_end(1))
        .await
        .expect("the stream completes after the cut")
        .unwrap();
    assert_eq!(answer, [1], "the stream arrived intact");
    assert!(
        conn.close_reason().is_none(),
        "the same connection carried on"
    );
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    receiver.await.unwrap();
    proxy.shutdown();
}
