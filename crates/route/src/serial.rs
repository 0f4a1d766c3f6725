//! Certificate serial numbers, as an administrator writes them and as they are compared.
//!
//! A serial is a positive integer of up to 20 octets (RFC 5280). Tools print it in several
//! ways: `openssl x509 -noout -serial` gives `serial=4F2A…` (upper case, no separators),
//! `openssl x509 -noout -text` gives `4f:2a:…`, DER may carry a leading `00` octet. All of
//! these are one [`CertSerial`]: lower-case hexadecimal without separators or leading zeros.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseSerialError;

/// Longest serial RFC 5280 allows: 20 octets.
const MAX_OCTETS: usize = 20;

/// A certificate serial number in canonical form: lower-case hexadecimal, no separators, no
/// leading zeros (`"0"` for zero).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertSerial(String);

impl CertSerial {
    /// From the big-endian octets of the certificate's serial number field (a leading `00`
    /// sign octet, if any, is fine).
    pub fn from_be_bytes(bytes: &[u8]) -> CertSerial {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        CertSerial::canonical(&hex)
    }

    /// The big-endian octets of the number, without leading zero octets (`[0]` for zero).
    pub fn to_be_bytes(&self) -> Vec<u8> {
        let padded = if self.0.len() % 2 == 1 {
            format!("0{}", self.0)
        } else {
            self.0.clone()
        };
        padded
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                digit(pair[0]) << 4 | digit(pair[1])
            })
            .collect()
    }

    /// The canonical text: lower-case hexadecimal.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `hex` holds only hexadecimal digits.
    fn canonical(hex: &str) -> CertSerial {
        let trimmed = hex.trim_start_matches('0');
        if trimmed.is_empty() {
            CertSerial("0".to_owned())
        } else {
            CertSerial(trimmed.to_ascii_lowercase())
        }
    }
}

impl fmt::Display for CertSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CertSerial {
    type Err = ParseSerialError;

    /// Hexadecimal, any case, optionally prefixed `0x` and with `:` between octets:
    /// `4F2A01`, `4f:2a:01`, `0x4f2a01`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseSerialError {
            value: s.to_owned(),
        };
        let text = s.trim();
        let text = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        if text.is_empty() || text.starts_with(':') || text.ends_with(':') || text.contains("::") {
            return Err(bad());
        }
        let hex: String = text.chars().filter(|&c| c != ':').collect();
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let serial = CertSerial::canonical(&hex);
        if serial.0.len() > 2 * MAX_OCTETS {
            return Err(bad());
        }
        Ok(serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_usual_spelling_is_one_serial() {
        let want = CertSerial::from_be_bytes(&[0x00, 0x9f, 0x2a, 0x01]);
        assert_eq!(want.as_str(), "9f2a01");
        for text in [
            "9F2A01",
            "9f:2a:01",
            "0x9f2a01",
            "009f2a01",
            " 9f2a01 ",
            "00:9F:2A:01",
        ] {
            assert_eq!(text.parse::<CertSerial>().unwrap(), want, "{text}");
        }
        assert_eq!(want.to_be_bytes(), vec![0x9f, 0x2a, 0x01]);
        let odd: CertSerial = "a0b".parse().unwrap();
        assert_eq!(odd.to_be_bytes(), vec![0x0a, 0x0b]);
        assert_eq!(CertSerial::from_be_bytes(&odd.to_be_bytes()), odd);
        assert_eq!("00".parse::<CertSerial>().unwrap().as_str(), "0");
    }

    #[test]
    fn anything_else_is_refused() {
        let too_long = "1".repeat(41);
        for bad in [
            "",
            "0x",
            "g1",
            "12 34",
            ":12",
            "12:",
            "1::2",
            "-1",
            too_long.as_str(),
        ] {
            assert!(
                bad.parse::<CertSerial>().is_err(),
                "{bad:?} should be refused"
            );
        }
        // 20 octets with a leading sign octet is still 20 octets.
        let max = format!("00{}", "7f".repeat(20));
        assert!(max.parse::<CertSerial>().is_ok());
    }
}
