//! The state every task of a running relay shares. Modules that serve connections depend on
//! this; it depends on none of them (no module cycle through the server).

use std::sync::Arc;
use yilian_ingest::Ingest;
use yilian_route::Topology;

use crate::config::RelayConfig;
use crate::connections::Connections;
use crate::reload_state::Reloadable;

/// Shared state of a running relay.
pub(crate) struct Ctx {
    /// As resolved at start. Its `topology` is the one at start: use [`Ctx::topology`].
    pub config: RelayConfig,
    /// The one ingest path (store, gate, hub, free space, metrics, the topology in force),
    /// shared with every other front door.
    pub ingest: Arc<Ingest>,
    /// What a reload replaces.
    pub current: Reloadable,
    /// Admitted connections.
    pub connections: Arc<Connections>,
    /// Which connection holds each reader identity's one subscription (`subscriptions.rs`).
    pub subscriptions: Arc<crate::subscriptions::Subscriptions>,
    /// The relay-wide budget of delivery buffers (`budget.rs`).
    pub budget: Arc<crate::budget::DeliveryBudget>,
    /// DICOM TLS's configuration, when `[dimse] tls_listen` is set (a reload replaces it).
    pub dicom_tls: Option<Arc<yilian_dimse_door::TlsConfig>>,
    /// Live ECG sessions (`ecg.rs`).
    pub ecg: crate::ecg::EcgSessions,
    /// Sites with an urgent ECG live and connections with uploads open (`uplink.rs`).
    pub uplinks: Arc<crate::uplink::Uplinks>,
    /// HTTPS's TLS configuration, when `[http]` is on (a reload replaces it).
    pub http_tls: Option<Arc<yilian_web::TlsSwitch>>,
}

impl Ctx {
    /// The topology in force now (reloaded on SIGHUP or when its file changes).
    pub fn topology(&self) -> Arc<Topology> {
        self.ingest.topology()
    }
}
