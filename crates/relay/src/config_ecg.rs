//! The `[ecg]` section of the relay's config: timing of live ECG sessions.
//!
//! ```toml
//! [ecg]
//! replay = "10s"          # what a viewer who joins late gets first
//! max_lag = "1s"          # how far a viewer may trail before it skips to the newest frames
//! object = "16s"          # length of each recorded DICOM object (at most the IOD's 16,384
//!                         # samples per lead: 16.4 s at 1000 Hz, 32.8 s at 500 Hz)
//! idle = "15s"            # a cart that sends nothing this long has gone
//! grace = "60s"           # how long it may take to come back before its session is closed
//!                         # and its recording marked incomplete
//! ```

use serde::Deserialize;
use std::time::Duration;

use crate::config::ConfigError;
use crate::ecg::EcgSettings;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcgSection {
    #[serde(default, with = "humantime_serde")]
    pub replay: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_lag: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub object: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub grace: Option<Duration>,
}

impl EcgSection {
    pub(crate) fn resolve(self) -> Result<EcgSettings, ConfigError> {
        let mut s = EcgSettings::default();
        let bad = |m: &str| Err(ConfigError::Ecg(m.to_string()));
        if let Some(d) = self.replay {
            if d > Duration::from_secs(60) {
                return bad("ecg.replay must be at most 60s");
            }
            s.live.keep = d;
        }
        if let Some(d) = self.max_lag {
            if d < Duration::from_millis(100) {
                return bad("ecg.max_lag must be at least 100ms");
            }
            s.live.max_lag = d;
        }
        if let Some(d) = self.object {
            if d < Duration::from_secs(1) {
                return bad("ecg.object must be at least 1s");
            }
            s.live.max_object = d;
        }
        if let Some(d) = self.idle {
            if d < Duration::from_secs(1) {
                return bad("ecg.idle must be at least 1s");
            }
            s.idle = d;
        }
        if let Some(d) = self.grace {
            s.grace = d;
        }
        Ok(s)
    }
}
