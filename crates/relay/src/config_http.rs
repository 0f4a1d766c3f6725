//! The `[http]` section of the relay's config: the HTTPS front door (DICOMweb for viewers).
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:8443"   # TCP address of HTTPS (DICOMweb at /dicomweb); "off": none
//! viewer_dir = "ohif/dist"    # optional: a web viewer's static files, served at /
//! cors_origins = ["https://viewer.example"]  # optional: viewers served from elsewhere ("*": any)
//! ```
//!
//! HTTPS is on by default, on loopback. When the default port is taken (another relay on the
//! same machine), the relay starts without it and says so; a `listen` given in the file or
//! with `--http-listen` must bind, or the relay does not start.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// Where HTTPS listens unless the config says otherwise.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8443";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen: Option<String>,
    pub viewer_dir: Option<PathBuf>,
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// The HTTPS front door's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// TCP address; `None`: no HTTPS.
    pub listen: Option<SocketAddr>,
    /// `listen` is the built-in default (a taken port is then not fatal).
    pub default_listen: bool,
    /// A web viewer's static files (its `index.html` answers every other path).
    pub viewer_dir: Option<PathBuf>,
    /// Origins of viewers served elsewhere that may call DICOMweb (`*`: any).
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_HTTP_LISTEN.parse().ok(),
            default_listen: true,
            viewer_dir: None,
            cors_origins: Vec::new(),
        }
    }
}

impl HttpSection {
    /// Paths are relative to the config file's folder (`base`).
    pub(crate) fn resolve(self, base: &Path) -> Result<HttpConfig, ConfigError> {
        let mut c = HttpConfig::default();
        match self.listen.as_deref().map(str::trim) {
            None => {}
            Some("off") => {
                c.listen = None;
                c.default_listen = false;
            }
            Some(addr) => {
                c.listen = Some(addr.parse().map_err(|_| {
                    ConfigError::Http(format!(
                        "http.listen = {addr:?} is not an address like \"0.0.0.0:8443\" (or \"off\")"
                    ))
                })?);
                c.default_listen = false;
            }
        }
        c.viewer_dir = self
            .viewer_dir
            .map(|p| if p.is_absolute() { p } else { base.join(p) });
        for origin in &self.cors_origins {
            let ok = origin == "*"
                || ((origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin.ends_with('/')
                    && !origin.contains(char::is_whitespace));
            if !ok {
                return Err(ConfigError::Http(format!(
                    "http.cors_origins: {origin:?} is not an origin like \"https://viewer.example\" (scheme and host, no path) or \"*\""
                )));
            }
        }
        c.cors_origins = self.cors_origins;
        Ok(c)
    }
}
