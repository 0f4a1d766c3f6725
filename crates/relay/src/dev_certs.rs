//! The development-certificate guard: the published development keys never serve a network
//! address by accident.
//!
//! `certs-dev/` holds a development CA and a certificate *with its private key* for every
//! identity of the example alliance, committed with the source. A relay that trusts that CA
//! admits anyone as anyone. On loopback that is the point (try yilian on one machine, no
//! configuration); on any other address it is refused unless the config file says
//! `allow_dev_certs = true`, and even then the relay warns at every start.
//!
//! "Uses the development certificates" means: a trusted CA certificate (`[tls] ca`, or the
//! embedded default when there is no `[tls]`) is byte for byte the development CA. Certificates
//! are compared, not paths, so a copy of `certs-dev/` elsewhere is caught too.

use std::net::{IpAddr, SocketAddr};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tracing::warn;

use crate::config::RelayConfig;

/// The development CA of `certs-dev/` (regenerated with `yilian certs dev --out certs-dev`).
const DEV_CA_PEM: &str = include_str!("../../../certs-dev/ca.pem");

/// The relay would serve the development certificates on a network address without
/// `allow_dev_certs = true`.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve the DEVELOPMENT certificates on {listen}, which is not a loopback address: \
{why}. Their private keys are published with yilian's source code (certs-dev/): anyone who \
reaches this address can connect as any identity of the alliance (any reader, device or relay) \
and read or upload studies.
Fix it in one of two ways:
  1. Give the relay the alliance's own certificates: in the config file (--config), set
       [tls]
       cert = \"county-relay.pem\"   # this relay's certificate, issued by the alliance CA
       key = \"county-relay.key\"
       ca = \"alliance-ca.pem\"      # the alliance CA certificate (not certs-dev/ca.pem)
  2. Only for a lab or test network that never carries patient data, write at the top of the \
config file, before any [section]:
       allow_dev_certs = true
(To try yilian on one machine, listen on loopback instead, e.g. --listen 127.0.0.1:4433.)"
)]
pub struct DevCertsRefused {
    listen: SocketAddr,
    why: String,
}

/// Whether the relay serves the development certificates, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DevCerts {
    /// The alliance's own CA only.
    NotUsed,
    /// Development certificates on a loopback address: fine for trying yilian.
    Loopback(String),
    /// Development certificates on a network address, allowed by `allow_dev_certs = true`.
    AllowedOnNetwork(String),
}

/// Decide (pure): refused, or how the relay uses development certificates.
pub(crate) fn check(config: &RelayConfig) -> Result<DevCerts, DevCertsRefused> {
    let Some(why) = uses_dev_ca(config) else {
        return Ok(DevCerts::NotUsed);
    };
    // Every listener where the certificates authenticate peers: QUIC, HTTPS, DICOM TLS.
    let exposed = std::iter::once(config.listen)
        .chain(config.http.listen)
        .chain(config.dimse.tls_listen)
        .find(|a| !is_loopback(a.ip()));
    match exposed {
        None => Ok(DevCerts::Loopback(why)),
        Some(_) if config.allow_dev_certs => Ok(DevCerts::AllowedOnNetwork(why)),
        Some(listen) => Err(DevCertsRefused { listen, why }),
    }
}

/// [`check`], and the warning every start with development certificates deserves.
pub(crate) fn check_and_warn(config: &RelayConfig) -> Result<(), DevCertsRefused> {
    match check(config)? {
        DevCerts::NotUsed => {}
        DevCerts::Loopback(why) => warn!(
            "using the DEVELOPMENT certificates on loopback ({why}): never use them for patient \
             data; set [tls] with the alliance's own CA in a config file"
        ),
        DevCerts::AllowedOnNetwork(why) => warn!(
            "!!! DEVELOPMENT CERTIFICATES ON A NETWORK ADDRESS ({}), allowed by \
             allow_dev_certs = true ({why}): their private keys are public (certs-dev/), so \
             anyone who reaches this relay can connect as any identity. Never let patient data \
             near this relay; remove allow_dev_certs and set [tls] with the alliance's own CA \
             before real use !!!",
            config.listen
        ),
    }
    Ok(())
}

/// Why the relay trusts the development CA, if it does.
fn uses_dev_ca(config: &RelayConfig) -> Option<String> {
    let dev: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(DEV_CA_PEM.as_bytes())
        .filter_map(Result::ok)
        .collect();
    let mut trusted =
        CertificateDer::pem_slice_iter(config.tls.ca.as_bytes()).filter_map(Result::ok);
    if !trusted.any(|c| dev.contains(&c)) {
        return None;
    }
    Some(match &config.tls_files {
        None => "no [tls] section is configured: these are the development certificates \
                 embedded in yilian"
            .to_string(),
        Some(files) => format!(
            "[tls] ca = {} is the development CA (certs-dev/ca.pem), which signed every \
             development certificate",
            files.ca.display()
        ),
    })
}

/// 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use std::path::Path;
    use yilian_route::Topology;
    use yilian_transport::{DevCa, TlsPem};

    fn dev_tls() -> TlsPem {
        TlsPem {
            cert: String::new(),
            key: String::new(),
            ca: DEV_CA_PEM.to_string(),
        }
    }

    fn config(listen: &str, allow: bool, tls: TlsPem) -> RelayConfig {
        let mut c = ConfigFile::default()
            .resolve(Path::new("."), || tls, Topology::example)
            .unwrap();
        c.listen = listen.parse().unwrap();
        c.allow_dev_certs = allow;
        c
    }

    #[test]
    fn loopback_means_127_slash_8_and_ipv6_loopback_only() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "192.168.1.5",
            "::ffff:10.0.0.1",
            "fe80::1",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn dev_certificates_are_refused_on_a_network_address_unless_allowed() {
        assert!(matches!(
            check(&config("127.0.0.1:4433", false, dev_tls())),
            Ok(DevCerts::Loopback(_))
        ));
        let e = check(&config("0.0.0.0:4433", false, dev_tls())).unwrap_err();
        let msg = e.to_string();
        for words in [
            "0.0.0.0:4433",
            "no [tls] section",
            "anyone",
            "any identity",
            "[tls]",
            "allow_dev_certs = true",
        ] {
            assert!(msg.contains(words), "{words:?} missing from: {msg}");
        }
        assert!(matches!(
            check(&config("[::]:4433", true, dev_tls())),
            Ok(DevCerts::AllowedOnNetwork(_))
        ));
        // HTTPS on a network address exposes them too.
        let mut c = config("127.0.0.1:4433", false, dev_tls());
        c.http.listen = Some("0.0.0.0:8443".parse().unwrap());
        let e = check(&c).unwrap_err();
        assert!(e.to_string().contains("0.0.0.0:8443"), "{e}");
    }

    #[test]
    fn the_alliance_own_ca_is_never_refused_and_a_dev_ca_among_others_is() {
        let own = DevCa::generate("a real alliance").unwrap().ca_pem();
        let tls = |ca: String| TlsPem {
            cert: String::new(),
            key: String::new(),
            ca,
        };
        assert_eq!(
            check(&config("0.0.0.0:4433", false, tls(own.clone()))).unwrap(),
            DevCerts::NotUsed
        );
        // Trusting the development CA next to the alliance's own is trusting it.
        let both = format!("{own}{DEV_CA_PEM}");
        assert!(check(&config("0.0.0.0:4433", false, tls(both))).is_err());
    }
}
