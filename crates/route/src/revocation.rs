//! The alliance's deny list: `[[revoked]]` entries of the topology file.
//!
//! A certificate whose private key was stolen or lost must stop working at once, without
//! rotating the alliance CA. The administrator adds an entry and the relay reloads the file
//! (SIGHUP, or it notices the change): new connections of that certificate are refused and
//! live ones are closed, with the entry's reason.
//!
//! - `name` alone revokes **every** certificate of that identity (until the entry is removed);
//! - `serial` alone revokes **one** certificate (the stolen one), so the identity's new
//!   certificate works at once;
//! - both: the certificate with that serial, if it belongs to that identity.
//!
//! Like the filters of a rule, every field given must match.

use crate::serial::CertSerial;

/// Longest reason accepted: it travels in a QUIC close frame and lands in every log line.
pub const MAX_REASON_CHARS: usize = 200;

/// One `[[revoked]]` entry, validated: at least one of `name` and `serial`, a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Identity name (a declared `[[identity]]`), if the entry names one.
    pub name: Option<String>,
    /// Certificate serial, if the entry gives one.
    pub serial: Option<CertSerial>,
    /// Why, in the administrator's words: shown to the refused peer and in the audit log.
    pub reason: String,
}

impl Revocation {
    /// Whether the certificate `serial` of identity `name` is revoked by this entry.
    pub fn matches(&self, name: &str, serial: &CertSerial) -> bool {
        self.name.as_deref().is_none_or(|n| n == name)
            && self.serial.as_ref().is_none_or(|s| s == serial)
    }
}
