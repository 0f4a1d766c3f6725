//! The `[http]` section of the relay's config: the HTTPS front door (DICOMweb for viewers).
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:8443"   # TCP address of HTTPS (DICOMweb at /dicomweb); "off": none
//! ```
//!
//! HTTPS is on by default, on loopback. When the default port is taken (another relay on the
//! same machine), the relay starts without it and says so; a `listen` given in the file or
//! with `--http-listen` must bind, or the relay does not start.

use serde::Deserialize;
use std::net::SocketAddr;

use crate::config::ConfigError;

/// Where HTTPS listens unless the config says otherwise.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8443";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen: Option<String>,
}

/// The HTTPS front door's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP address; `None`: no HTTPS.
    pub listen: Option<SocketAddr>,
    /// `listen` is the built-in default (a taken port is then not fatal).
    pub default_listen: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_HTTP_LISTEN.parse().ok(),
            default_listen: true,
        }
    }
}

impl HttpSection {
    pub(crate) fn resolve(self) -> Result<HttpConfig, ConfigError> {
        match self.listen.as_deref().map(str::trim) {
            None => Ok(HttpConfig::default()),
            Some("off") => Ok(HttpConfig {
                listen: None,
                default_listen: false,
            }),
            Some(addr) => addr
                .parse()
                .map(|a| HttpConfig {
                    listen: Some(a),
                    default_listen: false,
                })
                .map_err(|_| {
                    ConfigError::Http(format!(
                        "http.listen = {addr:?} is not an address like \"0.0.0.0:8443\" (or \"off\")"
                    ))
                }),
        }
    }
}
