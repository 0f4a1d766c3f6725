//! What one direction of a link does to packets: [`LinkSpec`] and its parts.
//!
//! A spec is plain data (serde `Deserialize`/`Serialize`, builder methods, validation). Rates,
//! sizes, probabilities and durations also parse from the human forms used on the command line
//! and in config files: `"20mbit"`, `"256KiB"`, `"2%"`, `"120ms"`.

use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// The full size of an Ethernet-sized IP packet; used for defaults and documentation.
pub const MTU: u64 = 1500;

/// Impairments of one direction of a link (the path from one side to the other).
///
/// The order a packet goes through is: link cut? → bottleneck queue (tail drop when the
/// bytes not yet serialised would exceed `queue_bytes`) → serialisation at `rate_bps` →
/// loss on the medium (random `loss`, then the Gilbert–Elliott `burst` chain) → propagation
/// `delay` ± `jitter` (FIFO kept) → with probability `reorder`, `reorder_delay` more (this
/// packet only, letting later ones overtake it). See the crate docs for the full model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkSpec {
    /// One-way propagation delay (half the RTT of a symmetric path).
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
    /// Each packet's delay varies uniformly in `delay ± jitter` (never below zero); packets
    /// still leave in order (a later packet waits for an earlier, slower one).
    #[serde(with = "humantime_serde")]
    pub jitter: Duration,
    /// Independent random loss probability per packet, `0.0..=1.0` (`"2%"` in text forms).
    #[serde(deserialize_with = "de_probability")]
    pub loss: f64,
    /// Bursty loss (Gilbert–Elliott two-state chain), applied in addition to `loss`.
    pub burst: Option<GilbertElliott>,
    /// Probability that a packet is held back by `reorder_delay` so later packets overtake it.
    #[serde(deserialize_with = "de_probability")]
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    #[serde(with = "humantime_serde")]
    pub reorder_delay: Duration,
    /// Bottleneck rate in bit/s; 0 means unlimited (no serialisation, no queue).
    #[serde(deserialize_with = "de_rate")]
    pub rate_bps: u64,
    /// Bottleneck queue size in bytes (bytes accepted but not yet serialised); a packet that
    /// would exceed it is tail-dropped. Only meaningful with a rate; should be ≥ one MTU.
    #[serde(deserialize_with = "de_bytes")]
    pub queue_bytes: u64,
    /// Scheduled link cuts, as offsets from the link's start.
    pub cuts: Vec<Cut>,
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec::ideal()
    }
}

/// A scheduled link cut: from `at` (offset from the link's start) for `duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cut {
    /// Offset from the link's start (its epoch).
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// How long the link stays down.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

/// Gilbert–Elliott bursty loss: a Good and a Bad state, one transition per packet.
///
/// Per packet the chain first moves (Good→Bad with `p_good_to_bad`, Bad→Good with
/// `p_bad_to_good`), then the packet is lost with `loss_in_bad` or `loss_in_good` depending
/// on the state. With `loss_in_bad = 1` and `loss_in_good = 0`, loss bursts last
/// `1 / p_bad_to_good` packets on average and the long-run loss is
/// `p_good_to_bad / (p_good_to_bad + p_bad_to_good)`; see [`GilbertElliott::from_loss_and_burst`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GilbertElliott {
    /// Probability of moving Good → Bad at a packet.
    pub p_good_to_bad: f64,
    /// Probability of moving Bad → Good at a packet.
    pub p_bad_to_good: f64,
    /// Loss probability while Bad (usually 1).
    #[serde(default = "one")]
    pub loss_in_bad: f64,
    /// Loss probability while Good (usually 0; random loss is `LinkSpec::loss`).
    #[serde(default)]
    pub loss_in_good: f64,
}

fn one() -> f64 {
    1.0
}

impl GilbertElliott {
    /// A chain whose losses come in bursts of `mean_burst` packets on average (`>= 1`) and
    /// whose long-run loss rate is `mean_loss` (`0 <= mean_loss < 1`): Bad loses everything,
    /// Good nothing.
    pub fn from_loss_and_burst(mean_loss: f64, mean_burst: f64) -> Result<Self, SpecError> {
        if !(0.0..1.0).contains(&mean_loss) {
            return Err(SpecError::Probability {
                field: "burst loss",
                value: mean_loss,
            });
        }
        if !(mean_burst >= 1.0 && mean_burst.is_finite()) {
            return Err(SpecError::Invalid(format!(
                "mean burst length must be at least 1 packet, got {mean_burst}"
            )));
        }
        let p_bad_to_good = 1.0 / mean_burst;
        // Stationary P(Bad) = g / (g + b) = mean_loss  ⇒  g = b · L / (1 − L).
        let p_good_to_bad = (p_bad_to_good * mean_loss / (1.0 - mean_loss)).min(1.0);
        Ok(GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_in_bad: 1.0,
            loss_in_good: 0.0,
        })
    }

    /// Long-run share of packets lost by this chain alone.
    pub fn mean_loss(&self) -> f64 {
        let total = self.p_good_to_bad + self.p_bad_to_good;
        if total <= 0.0 {
            return self.loss_in_good;
        }
        let bad = self.p_good_to_bad / total;
        bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good
    }

    /// Mean number of consecutive packets spent in the Bad state.
    pub fn mean_bad_run(&self) -> f64 {
        if self.p_bad_to_good <= 0.0 {
            f64::INFINITY
        } else {
            1.0 / self.p_bad_to_good
        }
    }
}

/// A spec or a value in it that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A probability outside `0..=1` (or not a number).
    #[error("{field} must be a probability between 0 and 1 (or 0%..100%), got {value}")]
    Probability {
        /// Which field.
        field: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A rate is set but the queue cannot hold a single packet.
    #[error("a rate cap needs a bottleneck queue of at least one packet (queue_bytes > 0; use ≥ {MTU} for full-size packets)")]
    NoQueue,
    /// Anything else, explained.
    #[error("{0}")]
    Invalid(String),
    /// A text form that does not parse.
    #[error("cannot parse {what} from {input:?}: {hint}")]
    Parse {
        /// What was expected (rate, size, probability, duration).
        what: &'static str,
        /// The text given.
        input: String,
        /// How to write it.
        hint: &'static str,
    },
}

impl LinkSpec {
    /// A perfect link: no delay, loss, rate cap or cuts.
    pub const fn ideal() -> Self {
        LinkSpec {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: None,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            rate_bps: 0,
            queue_bytes: 0,
            cuts: Vec::new(),
        }
    }

    /// One direction of a symmetric rural path: `rate_bps` bottleneck, one-way delay `rtt / 2`,
    /// independent random `loss` in this direction, and a bottleneck queue of one
    /// bandwidth-delay product (`rate × rtt`, at least 16 full-size packets).
    ///
    /// A township uplink is typically 2–20 Mbit/s, 50–300 ms RTT and 0.5–5 % loss:
    /// `LinkSpec::rural(20_000_000, Duration::from_millis(120), 0.02)`.
    pub fn rural(rate_bps: u64, rtt: Duration, loss: f64) -> Self {
        LinkSpec {
            delay: rtt / 2,
            loss,
            rate_bps,
            queue_bytes: bdp_bytes(rate_bps, rtt).max(16 * MTU),
            ..LinkSpec::ideal()
        }
    }

    /// Set the one-way delay.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// Set the jitter (delay varies uniformly in `delay ± jitter`, FIFO kept).
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
    /// Set the independent random loss probability.
    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }
    /// Add bursty loss through an explicit Gilbert–Elliott chain.
    pub fn with_gilbert_elliott(mut self, ge: GilbertElliott) -> Self {
        self.burst = Some(ge);
        self
    }
    /// Replace random loss by bursty loss of the same long-run rate `mean_loss`, in bursts of
    /// `mean_burst` packets on average.
    pub fn with_burst_loss(mut self, mean_loss: f64, mean_burst: f64) -> Result<Self, SpecError> {
        self.burst = Some(GilbertElliott::from_loss_and_burst(mean_loss, mean_burst)?);
        self.loss = 0.0;
        Ok(self)
    }
    /// Hold back a share `p` of packets by `extra` so that later packets overtake them.
    pub fn with_reorder(mut self, p: f64, extra: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = extra;
        self
    }
    /// Set the bottleneck rate (bit/s, 0 = unlimited). Sets a queue of 16 full-size packets
    /// if none is set yet.
    pub fn with_rate(mut self, rate_bps: u64) -> Self {
        self.rate_bps = rate_bps;
        if rate_bps > 0 && self.queue_bytes == 0 {
            self.queue_bytes = 16 * MTU;
        }
        self
    }
    /// Set the bottleneck queue size in bytes.
    pub fn with_queue_bytes(mut self, bytes: u64) -> Self {
        self.queue_bytes = bytes;
        self
    }
    /// Schedule a cut of `duration` starting `at` after the link's start.
    pub fn with_cut(mut self, at: Duration, duration: Duration) -> Self {
        self.cuts.push(Cut { at, duration });
        self
    }

    /// Check every field; the model and drivers refuse specs that fail this.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_probability("loss", self.loss)?;
        check_probability("reorder", self.reorder)?;
        if let Some(ge) = &self.burst {
            check_probability("burst.p_good_to_bad", ge.p_good_to_bad)?;
            check_probability("burst.p_bad_to_good", ge.p_bad_to_good)?;
            check_probability("burst.loss_in_bad", ge.loss_in_bad)?;
            check_probability("burst.loss_in_good", ge.loss_in_good)?;
            if ge.p_good_to_bad > 0.0 && ge.p_bad_to_good <= 0.0 {
                return Err(SpecError::Invalid(
                    "burst.p_bad_to_good is 0: once Bad the link would never recover (use a cut \
                     for an outage)"
                        .into(),
                ));
            }
        }
        if self.rate_bps > 0 && self.queue_bytes == 0 {
            return Err(SpecError::NoQueue);
        }
        const HOUR: Duration = Duration::from_secs(3600);
        for (name, d) in [
            ("delay", self.delay),
            ("jitter", self.jitter),
            ("reorder_delay", self.reorder_delay),
        ] {
            if d > HOUR {
                return Err(SpecError::Invalid(format!(
                    "{name} of {d:?} is more than an hour"
                )));
            }
        }
        Ok(())
    }

    /// Upper bound of the time a packet can spend in this link (queue + serialisation +
    /// delay + jitter + reorder delay), used to bound bookkeeping.
    pub fn max_sojourn(&self) -> Duration {
        let queue = if self.rate_bps > 0 {
            serialization_time(self.queue_bytes + 65_535, self.rate_bps)
        } else {
            Duration::ZERO
        };
        queue + self.delay + self.jitter + self.reorder_delay
    }
}

/// Bytes in flight on a path of `rate_bps` and `rtt` (the bandwidth-delay product).
pub fn bdp_bytes(rate_bps: u64, rtt: Duration) -> u64 {
    let bits = u128::from(rate_bps) * rtt.as_nanos() / 1_000_000_000;
    u64::try_from(bits / 8).unwrap_or(u64::MAX)
}

/// Time to serialise `bytes` at `rate_bps` (rounded up to the nanosecond; zero if unlimited).
pub fn serialization_time(bytes: u64, rate_bps: u64) -> Duration {
    if rate_bps == 0 {
        return Duration::ZERO;
    }
    let ns = (u128::from(bytes) * 8 * 1_000_000_000).div_ceil(u128::from(rate_bps));
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

fn check_probability(field: &'static str, value: f64) -> Result<(), SpecError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(SpecError::Probability { field, value })
    }
}

fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

fn parse_number(num: &str) -> Option<f64> {
    let cleaned: String = num.chars().filter(|&c| c != '_').collect();
    let v: f64 = cleaned.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Parse a rate: `"20mbit"`, `"20 Mbit/s"`, `"20mbps"`, `"512kbit"`, `"1gbit"`, `"2000000"`
/// (bit/s), `"0"` or `"unlimited"`. Units are decimal bits per second.
pub fn parse_rate(s: &str) -> Result<u64, SpecError> {
    let err = || SpecError::Parse {
        what: "a rate",
        input: s.to_string(),
        hint: "write e.g. 20mbit, 512kbit, 1gbit or a number of bit/s (0 = unlimited)",
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "unlimited" || t == "none" {
        return Ok(0);
    }
    let (num, unit) = split_number(&t);
    let v = parse_number(num).ok_or_else(err)?;
    let unit = unit
        .trim_end_matches("/s")
        .trim_end_matches("ps")
        .trim_end_matches("it");
    let mult = match unit {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        _ => return Err(err()),
    };
    let bps = (v * mult).round();
    if bps > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bps as u64)
}

/// Parse a size in bytes: `"1500"`, `"64k"`/`"64kb"` (×1000), `"256KiB"` (×1024), `"4MiB"`,
/// `"1mb"`.
pub fn parse_bytes(s: &str) -> Result<u64, SpecError> {
    let err = || SpecError::Parse {
        what: "a size",
        input: s.to_string(),
        hint: "write e.g. 1500, 64kb, 256KiB or 4MiB",
    };
    let t = s.trim().to_ascii_lowercase();
    let (num, unit) = split_number(&t);
    let v = parse_number(num).ok_or_else(err)?;
    let mult = match unit {
        "" | "b" | "bytes" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let b = (v * mult).round();
    if b > u64::MAX as f64 {
        return Err(err());
    }
    Ok(b as u64)
}

/// Parse a probability: `"2%"`, `"0.5 %"` or a fraction `"0.02"`.
pub fn parse_probability(s: &str) -> Result<f64, SpecError> {
    let err = || SpecError::Parse {
        what: "a probability",
        input: s.to_string(),
        hint: "write a percentage like 2% or a fraction like 0.02",
    };
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(pct) => parse_number(pct.trim()).ok_or_else(err)? / 100.0,
        None => parse_number(t).ok_or_else(err)?,
    };
    check_probability("probability", v)?;
    Ok(v)
}

/// Parse a duration: `"120ms"`, `"30s"`, `"2m"`, `"1m 30s"`, `"250us"`.
pub fn parse_duration(s: &str) -> Result<Duration, SpecError> {
    humantime::parse_duration(s.trim()).map_err(|_| SpecError::Parse {
        what: "a duration",
        input: s.to_string(),
        hint: "write e.g. 120ms, 30s, 2m or 1m 30s",
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Int(u64),
    Float(f64),
    Text(String),
}

fn de_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Int(v) => Ok(v),
        NumOrText::Float(v) if v >= 0.0 && v.is_finite() => Ok(v.round() as u64),
        NumOrText::Float(v) => Err(serde::de::Error::custom(format!("invalid rate {v}"))),
        NumOrText::Text(s) => parse_rate(&s).map_err(serde::de::Error::custom),
    }
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Int(v) => Ok(v),
        NumOrText::Float(v) if v >= 0.0 && v.is_finite() => Ok(v.round() as u64),
        NumOrText::Float(v) => Err(serde::de::Error::custom(format!("invalid size {v}"))),
        NumOrText::Text(s) => parse_bytes(&s).map_err(serde::de::Error::custom),
    }
}

fn de_probability<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Int(v) => Ok(v as f64),
        NumOrText::Float(v) => Ok(v),
        NumOrText::Text(s) => parse_probability(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_decimal_bits() {
        assert_eq!(parse_rate("20mbit").unwrap(), 20_000_000);
        assert_eq!(parse_rate("20 Mbit/s").unwrap(), 20_000_000);
        assert_eq!(parse_rate("20mbps").unwrap(), 20_000_000);
        assert_eq!(parse_rate("512kbit").unwrap(), 512_000);
        assert_eq!(parse_rate("1.5mbit").unwrap(), 1_500_000);
        assert_eq!(parse_rate("1gbit").unwrap(), 1_000_000_000);
        assert_eq!(parse_rate("2000000").unwrap(), 2_000_000);
        assert_eq!(parse_rate("unlimited").unwrap(), 0);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("20 furlongs").is_err());
        assert!(parse_rate("-3mbit").is_err());
    }

    #[test]
    fn sizes_probabilities_durations_parse() {
        assert_eq!(parse_bytes("1500").unwrap(), 1500);
        assert_eq!(parse_bytes("64kb").unwrap(), 64_000);
        assert_eq!(parse_bytes("256KiB").unwrap(), 262_144);
        assert_eq!(parse_bytes("4MiB").unwrap(), 4 << 20);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_probability("2%").unwrap(), 0.02);
        assert_eq!(parse_probability("0.5 %").unwrap(), 0.005);
        assert_eq!(parse_probability("0.1").unwrap(), 0.1);
        assert!(parse_probability("150%").is_err());
        assert!(parse_probability("2").is_err());
        assert_eq!(parse_duration("120ms").unwrap(), Duration::from_millis(120));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn rural_constructor_and_builder() {
        let s = LinkSpec::rural(20_000_000, Duration::from_millis(120), 0.02);
        assert_eq!(s.delay, Duration::from_millis(60));
        assert_eq!(s.rate_bps, 20_000_000);
        assert_eq!(s.queue_bytes, 300_000); // 20 Mbit/s × 120 ms / 8
        assert_eq!(s.loss, 0.02);
        s.validate().unwrap();
        // A slow link still queues at least 16 packets.
        let slow = LinkSpec::rural(2_000_000, Duration::from_millis(50), 0.0);
        assert_eq!(slow.queue_bytes, 16 * MTU);
        let b = LinkSpec::ideal()
            .with_delay(Duration::from_millis(10))
            .with_jitter(Duration::from_millis(2))
            .with_rate(8_000_000)
            .with_reorder(0.01, Duration::from_millis(5))
            .with_cut(Duration::from_secs(10), Duration::from_secs(30))
            .with_burst_loss(0.02, 4.0)
            .unwrap();
        assert_eq!(b.queue_bytes, 16 * MTU);
        assert_eq!(b.cuts.len(), 1);
        assert_eq!(b.loss, 0.0);
        let ge = b.burst.unwrap();
        assert!((ge.mean_loss() - 0.02).abs() < 1e-12);
        assert!((ge.mean_bad_run() - 4.0).abs() < 1e-12);
        b.validate().unwrap();
    }

    #[test]
    fn validation_refuses_nonsense() {
        assert!(matches!(
            LinkSpec::ideal().with_loss(1.5).validate(),
            Err(SpecError::Probability { field: "loss", .. })
        ));
        assert!(LinkSpec::ideal().with_loss(f64::NAN).validate().is_err());
        assert_eq!(
            LinkSpec::ideal()
                .with_rate(1_000_000)
                .with_queue_bytes(0)
                .validate(),
            Err(SpecError::NoQueue)
        );
        let stuck = GilbertElliott {
            p_good_to_bad: 0.1,
            p_bad_to_good: 0.0,
            loss_in_bad: 1.0,
            loss_in_good: 0.0,
        };
        assert!(LinkSpec::ideal()
            .with_gilbert_elliott(stuck)
            .validate()
            .is_err());
        assert!(GilbertElliott::from_loss_and_burst(0.02, 0.5).is_err());
        assert!(GilbertElliott::from_loss_and_burst(1.0, 2.0).is_err());
    }

    #[test]
    fn deserializes_human_and_plain_forms() {
        let s: LinkSpec = serde_json::from_str(
            r#"{"delay": "60ms", "jitter": "5ms", "loss": "2%", "rate_bps": "20mbit",
                "queue_bytes": "256KiB", "reorder": 0.01, "reorder_delay": "10ms",
                "burst": {"p_good_to_bad": 0.01, "p_bad_to_good": 0.25},
                "cuts": [{"at": "10s", "duration": "30s"}]}"#,
        )
        .unwrap();
        assert_eq!(s.delay, Duration::from_millis(60));
        assert_eq!(s.loss, 0.02);
        assert_eq!(s.rate_bps, 20_000_000);
        assert_eq!(s.queue_bytes, 262_144);
        assert_eq!(s.burst.unwrap().loss_in_bad, 1.0);
        assert_eq!(
            s.cuts,
            [Cut {
                at: Duration::from_secs(10),
                duration: Duration::from_secs(30)
            }]
        );
        s.validate().unwrap();
        let plain: LinkSpec =
            serde_json::from_str(r#"{"loss": 0.5, "rate_bps": 1000000, "queue_bytes": 3000}"#)
                .unwrap();
        assert_eq!(
            (plain.loss, plain.rate_bps, plain.queue_bytes),
            (0.5, 1_000_000, 3000)
        );
        assert_eq!(plain.delay, Duration::ZERO);
        // Round trip, and unknown fields are refused (a typo must not pass silently).
        let back: LinkSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<LinkSpec>(r#"{"los": 0.1}"#).is_err());
        assert!(serde_json::from_str::<LinkSpec>(r#"{"rate_bps": "fast"}"#).is_err());
    }

    #[test]
    fn serialization_time_is_exact() {
        // 8 Mbit/s is one byte per microsecond.
        assert_eq!(
            serialization_time(1000, 8_000_000),
            Duration::from_millis(1)
        );
        assert_eq!(
            serialization_time(1500, 20_000_000),
            Duration::from_micros(600)
        );
        assert_eq!(serialization_time(1500, 0), Duration::ZERO);
        assert_eq!(
            bdp_bytes(100_000_000, Duration::from_millis(300)),
            3_750_000
        );
    }
}
