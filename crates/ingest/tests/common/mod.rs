//! What the ingest tests share: a configuration and township A's console.

use std::time::Duration;
use yilian_ingest::{Door, GateConfig, IngestConfig, Principal};
use yilian_route::Role;

pub fn config() -> IngestConfig {
    IngestConfig {
        max_instance_bytes: 1 << 30,
        checkpoint_bytes: 16 << 20,
        checkpoint_interval: Duration::from_secs(1),
        gate: GateConfig::default(),
        min_free_bytes: 0,
        quiet_period: Duration::from_secs(30),
    }
}

/// Township A's DR console, calling as `TWA_DR1`.
pub fn console() -> Principal {
    Principal {
        name: "township-a-device".into(),
        site: "township-a".into(),
        role: Role::Device,
        department: None,
        door: Door::Dimse {
            calling_ae: "TWA_DR1".into(),
        },
    }
}
