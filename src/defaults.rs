//! Embedded defaults: `yilian serve` with no configuration runs on these. The certificates are
//! the DEVELOPMENT ones from `certs-dev/` (regenerate with `yilian certs dev --out certs-dev`);
//! never use them for patient data.

use yilian_transport::TlsPem;

pub const DEV_CA: &str = include_str!("../certs-dev/ca.pem");
const DEV_RELAY_CERT: &str = include_str!("../certs-dev/county-relay.pem");
const DEV_RELAY_KEY: &str = include_str!("../certs-dev/county-relay.key");

/// The relay's development identity (county-relay, valid for localhost and 127.0.0.1).
pub fn dev_relay_tls() -> TlsPem {
    TlsPem {
        cert: DEV_RELAY_CERT.to_string(),
        key: DEV_RELAY_KEY.to_string(),
        ca: DEV_CA.to_string(),
    }
}
