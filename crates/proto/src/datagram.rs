//! Datagrams the relay sends to a connected device (unreliable, unordered, outside any stream).
//!
//! Two kinds. The **uplink yield order** ([`RelayDatagram::YieldUplink`]): while a site has
//! an urgent live ECG, the relay tells the site's uploading connections to make room on the
//! township uplink for `millis` from now, renewing the order well before it lapses; `millis == 0`
//! ends it at once. An order is a lease, so a lost datagram or a vanished relay can only end
//! it early, never keep an upload slowed (`yilian_transport::uplink`). The **probe**
//! ([`RelayDatagram::Probe`]): asks nothing of the application; the peer's QUIC stack
//! acknowledges it, which tells the relay the peer still answers (a reader's subscription is
//! taken over only from a connection that does not).
//!
//! Encoding: one tag byte [`TAG`], then the postcard-encoded message; anything else (a future
//! kind, noise) decodes to an error the receiver ignores.

use serde::{Deserialize, Serialize};

use crate::ProtoError;

/// First byte of every relay → device datagram of yilian/1.
pub const TAG: u8 = 0xA7;

/// Longest relay → device datagram this version decodes.
pub const MAX_RELAY_DATAGRAM: usize = 64;

/// A relay → device datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayDatagram {
    /// Keep the uplink's queue empty for `millis` from receipt (0: the order ends now).
    YieldUplink { millis: u32 },
    /// Nothing to do: sent only to be acknowledged (is the peer still there?).
    Probe,
}

impl RelayDatagram {
    /// The datagram's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TAG];
        // postcard into a Vec cannot fail for this enum of integers.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Decode a datagram from the relay.
    pub fn decode(bytes: &[u8]) -> Result<RelayDatagram, ProtoError> {
        let err = |reason: String| ProtoError::Decode {
            what: "relay datagram",
            reason,
        };
        if bytes.len() > MAX_RELAY_DATAGRAM {
            return Err(err(format!(
                "{} bytes, more than {MAX_RELAY_DATAGRAM}",
                bytes.len()
            )));
        }
        match bytes.split_first() {
            Some((&TAG, rest)) => postcard::from_bytes(rest).map_err(|e| err(e.to_string())),
            _ => Err(err("not a yilian/1 relay datagram".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip() {
        for millis in [0, 1, 2000, u32::MAX] {
            let d = RelayDatagram::YieldUplink { millis };
            let bytes = d.encode();
            assert!(bytes.len() <= MAX_RELAY_DATAGRAM);
            assert_eq!(RelayDatagram::decode(&bytes).unwrap(), d);
        }
        let probe = RelayDatagram::Probe.encode();
        assert_eq!(RelayDatagram::decode(&probe).unwrap(), RelayDatagram::Probe);
    }

    #[test]
    fn anything_else_is_an_error_not_a_panic() {
        assert!(RelayDatagram::decode(&[]).is_err());
        assert!(RelayDatagram::decode(&[0x00, 0x00]).is_err());
        assert!(RelayDatagram::decode(&[TAG]).is_err());
        assert!(RelayDatagram::decode(&[TAG, 9, 1]).is_err(), "unknown kind");
        assert!(RelayDatagram::decode(&[TAG; 65]).is_err());
        // Every short input decodes or fails cleanly.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = RelayDatagram::decode(&[TAG, a, b]);
            }
        }
    }
}
