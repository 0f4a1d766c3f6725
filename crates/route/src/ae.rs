//! DICOM application entities (`[[ae]]`): the AE titles that DIMSE peers call the relay with,
//! and the identity each one acts as.
//!
//! A DR console or an ultrasound cart has no certificate: it is known by the calling AE title
//! it puts in its association requests (and, if the administrator lists them, the addresses it
//! calls from). Each `[[ae]]` maps such a title to an identity of the topology: a **device**
//! identity (its C-STOREs come from that identity's site) or a **reader** identity (a reading
//! workstation: its queries and retrievals see what is routed to that reader). `host` and
//! `port` say where the relay reaches the AE (a C-MOVE destination).
//!
//! With `push = true` the AE is a **DIMSE peer the relay delivers to** (a county PACS, a
//! reading workstation that only listens): it must act as a reader identity and give `host`
//! and `port`. Whatever is routed to that reader lands in its outbox as for any reader, and the
//! relay's DIMSE egress drains it by C-STORE to `host:port`, called AE = `title`.

use serde::Deserialize;
use std::net::IpAddr;

/// One `[[ae]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeTitle {
    /// The AE title, 1–16 characters of the DICOM default repertoire, no backslash; compared
    /// without leading and trailing spaces.
    pub title: String,
    /// The identity it acts as (a declared `[[identity]]`).
    pub identity: String,
    /// Addresses it may call from; any when empty.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Where the relay reaches it (host name or address), for C-MOVE.
    pub host: Option<String>,
    /// The port it listens on, for C-MOVE.
    pub port: Option<u16>,
    /// Character set of text it writes without declaring it (overrides its site's
    /// `charset`): a DICOM defined term such as "GBK".
    pub charset: Option<String>,
    /// The relay pushes what is routed to its (reader) identity to it by C-STORE.
    #[serde(default)]
    pub push: bool,
}

impl AeTitle {
    /// Whether a call from `addr` is allowed.
    pub fn allows(&self, addr: IpAddr) -> bool {
        self.addresses.is_empty()
            || self
                .addresses
                .iter()
                .any(|a| *a == addr || canonical(*a) == canonical(addr))
    }

    /// Where the relay reaches it, if declared.
    pub fn endpoint(&self) -> Option<(&str, u16)> {
        Some((self.host.as_deref()?, self.port?))
    }
}

/// An IPv4-mapped IPv6 address as IPv4 (a dual-stack listener sees those).
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        v4 => v4,
    }
}

/// Whether `title` is a valid AE title: 1–16 characters, printable ASCII without backslash,
/// not only spaces.
pub fn is_valid_ae_title(title: &str) -> bool {
    let t = title.trim();
    !t.is_empty()
        && title.len() <= 16
        && title
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
}
