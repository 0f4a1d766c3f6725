//! Congestion controllers over emulated township links: one quinn connection, one stream from
//! memory, through the seeded UDP link emulator (`yilian-linkem`), with real yilian endpoints
//! (the harness is `yilian_testkit::quic_transfer`).
//!
//! These tests assert no timings, only properties: the bytes arrive identical, and the `bdp`
//! controller keeps what QUIC declares lost close to the link's own random loss (quinn's BBR
//! loses 35–60 % of its packets at a one-BDP queue on such links), and restarts after a link
//! cut. The measurements (the lossy-link matrix, raw loopback) are a bench:
//!
//! ```text
//! cargo bench --bench congestion              # a matrix subset, ≈ 3–4 min
//! cargo bench --bench congestion -- --help    # --matrix, --loopback, --full, --quick, knobs
//! ```

use std::time::Duration;

use yilian_testkit::quic_transfer::{payload, rural, transfer, Controller, LinkPath, Pki};
use yilian_transport::Congestion;

/// Over a 20 Mbit/s, 60 ms, 1 %-loss-each-way link with a one-BDP queue, `bdp` delivers the
/// stream byte-identical and what QUIC declares lost stays near the link's own random loss:
/// the controller itself overflows the queue at most a little (≤ 1 % of packets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdp_over_a_lossy_link_arrives_identical_and_loses_little_beyond_the_link() {
    let pki = Pki::generate("congestion links");
    let (up, down) = rural(20, 60, 0.01);
    let out = transfer(
        &pki,
        &Controller::named(Congestion::Bdp),
        LinkPath::Emulated {
            up,
            down,
            seed: 1,
            cut: None,
        },
        payload(8 << 20, 1),
        Duration::from_secs(50),
    )
    .await;
    assert!(!out.timed_out && out.identical, "{out:?}");
    let link = out.link.as_ref().unwrap();
    // 1 % random loss on the link; the rest would be our own queue overflowing (quinn's BBR:
    // ≈ 50 % here). The margin covers spurious loss declarations when the host is busy (the
    // emulator runs in this process): seen once at 3 % with the machine loaded.
    assert!(
        out.lost_ratio() < 0.05,
        "QUIC declared {:.1} % lost: {out:?}",
        100.0 * out.lost_ratio()
    );
    assert!(
        link.up.dropped_queue * 100 <= link.up.offered,
        "{} of {} packets dropped at the queue: {out:?}",
        link.up.dropped_queue,
        link.up.offered
    );
    let state = out.bdp.unwrap();
    assert_eq!(state.restarts, 0, "{state:?}");
}

/// A 3 s cut in the middle of an upload: the stream still arrives identical, and `bdp`
/// restarted from a small window instead of sending its old one into the restored link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdp_restarts_after_a_link_cut_and_the_stream_completes() {
    let pki = Pki::generate("congestion links");
    let (up, down) = rural(20, 60, 0.005);
    let out = transfer(
        &pki,
        &Controller::named(Congestion::Bdp),
        LinkPath::Emulated {
            up,
            down,
            seed: 2,
            cut: Some((Duration::from_millis(1500), Duration::from_secs(3))),
        },
        payload(12 << 20, 2),
        Duration::from_secs(55),
    )
    .await;
    assert!(!out.timed_out && out.identical, "{out:?}");
    assert!(out.link.as_ref().unwrap().up.dropped_cut > 0, "{out:?}");
    let state = out.bdp.unwrap();
    assert!(state.restarts >= 1, "{state:?}");
}
