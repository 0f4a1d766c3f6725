//! Transport tuning: defaults, every congestion controller, and that a connection really uses
//! the configured controller.

mod common;

use std::time::{Duration, Instant};

use common::*;
use quinn::congestion::{Bbr, Cubic, NewReno};
use yilian_transport::{client_endpoint, connect, server_endpoint, Congestion, Tuning};

#[test]
fn defaults_are_sized_for_throughput() {
    let t = Tuning::default();
    assert_eq!(t.congestion, Congestion::Bdp);
    assert_eq!(t.stream_receive_window, 8 * 1024 * 1024);
    assert_eq!(t.receive_window, 32 * 1024 * 1024);
    assert_eq!(t.send_window, 16 * 1024 * 1024);
    assert_eq!(t.udp_buffer, 4 * 1024 * 1024);
    assert_eq!(t.keep_alive, Duration::from_secs(5));
    assert_eq!(t.idle_timeout, Duration::from_secs(60));
    assert_eq!(t.max_concurrent_bidi_streams, 64);
    assert_eq!(
        t.max_concurrent_uni_streams, 0,
        "yilian/1 uses no unidirectional stream"
    );
    assert_eq!(t.initial_rtt, Some(Duration::from_millis(100)));

    // The values reach quinn's configuration (it has no getters; its Debug lists the fields).
    let cfg = format!("{:?}", t.transport_config());
    for needle in [
        "max_concurrent_bidi_streams: 64",
        "max_concurrent_uni_streams: 0",
        "max_idle_timeout: Some(60000)",
        "stream_receive_window: 8388608",
        "receive_window: 33554432",
        "send_window: 16777216",
        "keep_alive_interval: Some(5s)",
        "initial_rtt: 100ms",
    ] {
        assert!(cfg.contains(needle), "{needle} not in {cfg}");
    }
}

#[test]
fn every_congestion_controller_builds_the_right_quinn_controller() {
    for c in Congestion::ALL {
        let _ = Tuning {
            congestion: c,
            ..Tuning::default()
        }
        .transport_config();
        let controller = c
            .controller_factory()
            .build(Instant::now(), 1200)
            .into_any();
        let ok = match c {
            Congestion::Bbr => controller.downcast::<Bbr>().is_ok(),
            Congestion::Cubic => controller.downcast::<Cubic>().is_ok(),
            Congestion::NewReno => controller.downcast::<NewReno>().is_ok(),
            Congestion::Bdp => controller.downcast::<yilian_transport::Bdp>().is_ok(),
        };
        assert!(ok, "{c} built another controller");
    }
}

#[test]
fn initial_rtt_and_disabled_timers_are_applied() {
    let t = Tuning {
        initial_rtt: Some(Duration::from_millis(150)),
        keep_alive: Duration::ZERO,
        idle_timeout: Duration::ZERO,
        ..Tuning::default()
    };
    let cfg = format!("{:?}", t.transport_config());
    assert!(cfg.contains("initial_rtt: 150ms"), "{cfg}");
    assert!(cfg.contains("keep_alive_interval: None"), "{cfg}");
    assert!(cfg.contains("max_idle_timeout: None"), "{cfg}");
}

#[tokio::test]
async fn a_connection_uses_the_configured_congestion_controller() {
    guarded(async {
        let ca = ca("test alliance");
        let tuning = Tuning {
            congestion: Congestion::Cubic,
            ..Tuning::default()
        };
        let server = server_endpoint(
            "127.0.0.1:0".parse().unwrap(),
            &pem(&ca, &ca, &relay_id(), &["127.0.0.1"]),
            &tuning,
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let conn = yilian_transport::accept(server.accept().await.unwrap())
                .await
                .unwrap()
                .0;
            let cubic = conn
                .congestion_state()
                .into_any()
                .downcast::<Cubic>()
                .is_ok();
            (cubic, conn) // keep the connection open until the client has checked its side
        });
        let client = client_endpoint(&pem(&ca, &ca, &device_id(), &[]), &tuning, false).unwrap();
        let (conn, _) = connect(&client, &format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap();
        assert!(conn
            .congestion_state()
            .into_any()
            .downcast::<Cubic>()
            .is_ok());
        let (server_cubic, _server_conn) = accept.await.unwrap();
        assert!(server_cubic, "server side is not using CUBIC");
    })
    .await;
}
