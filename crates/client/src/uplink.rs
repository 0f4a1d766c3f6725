//! Obeying the relay's uplink yield orders (`yilian_proto::RelayDatagram::YieldUplink`).
//!
//! While the township has an urgent ECG live, the relay sends each of the site's uploading
//! connections a short lease, renewed every half second. This task reads them and holds the
//! order in the endpoint's [`UplinkYield`], which the connections' `bdp` controllers follow
//! (window below the path's BDP: the uplink's queue stays empty, the ECG's packets pass at
//! once, the upload keeps most of the rate; `yilian_transport::uplink`). The user is told when
//! the order starts and ends. Anything else arriving as a datagram is ignored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::Connection;
use yilian_proto::RelayDatagram;
use yilian_transport::UplinkYield;

use crate::Progress;

/// Follow the relay's orders on `conn` until it closes.
pub(crate) fn obey(conn: Connection, order: UplinkYield, progress: Arc<dyn Progress>) {
    tokio::spawn(async move { run(conn, order, progress).await });
}

async fn run(conn: Connection, order: UplinkYield, progress: Arc<dyn Progress>) {
    // When the order we hold lapses (if no renewal or release comes).
    let mut lapses: Option<Instant> = None;
    loop {
        let lapse = async {
            match lapses {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let datagram = tokio::select! {
            d = conn.read_datagram() => match d {
                Ok(d) => d,
                Err(_) => return, // the connection ended; another one may take over
            },
            () = lapse => {
                lapses = None;
                if !order.active(Instant::now()) {
                    changed(false, progress.as_ref());
                }
                continue;
            }
        };
        match RelayDatagram::decode(&datagram) {
            Ok(RelayDatagram::YieldUplink { millis }) => {
                let now = Instant::now();
                let was = order.active(now);
                let lease = Duration::from_millis(u64::from(millis));
                order.hold_for(now, lease);
                let is = order.active(now);
                lapses = is.then(|| now + lease);
                if is != was {
                    changed(is, progress.as_ref());
                }
            }
            // Only to be acknowledged (QUIC does that): the relay checks we are still here.
            Ok(RelayDatagram::Probe) => {}
            Err(e) => tracing::debug!("ignored a datagram from the relay: {e}"),
        }
    }
}

fn changed(yielding: bool, progress: &dyn Progress) {
    let msg = if yielding {
        "an urgent ECG from this township is live: uploads make room for it on the uplink (they keep ≈ 85 % of its rate) until it ends"
    } else {
        "the urgent ECG ended: uploads use the whole uplink again"
    };
    tracing::debug!(yielding, "{msg}");
    progress.status(msg);
}
