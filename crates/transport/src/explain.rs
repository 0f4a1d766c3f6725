//! Turning quinn connection errors into one sentence a radiographer or administrator can act on.
//!
//! QUIC carries TLS alerts as transport error codes `0x100 + alert`. Who refused whom follows
//! from the variant: [`quinn::ConnectionError::TransportError`] means *our* stack refused the
//! handshake (e.g. we did not trust the peer's certificate), while
//! [`quinn::ConnectionError::ConnectionClosed`] means the *peer* refused us. [`explain`] words
//! this from a client's seat (the peer is the relay), [`explain_handshake_failure`] from the
//! relay's seat (the peer is a device, reader or another relay).

use quinn::ConnectionError;
use rustls::AlertDescription;

/// Client-side explanation: we connected to a relay and it failed.
///
/// e.g. "the relay refused our certificate: it was not issued by the alliance CA the relay
/// trusts (check --cert and --key, or ask the alliance administrator for a certificate)".
pub fn explain(err: &ConnectionError) -> String {
    describe(err, Seat::Client)
}

/// Server-side explanation: a client's handshake with this relay failed (for the relay's log).
///
/// e.g. "refused the client's certificate: it was not issued by the alliance CA this relay
/// trusts (the client must use a certificate from the alliance administrator)".
pub fn explain_handshake_failure(err: &ConnectionError) -> String {
    describe(err, Seat::Server)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seat {
    Client,
    Server,
}

/// The TLS alert carried by a QUIC crypto error code, if it is one.
fn alert_of(code: quinn::TransportErrorCode) -> Option<AlertDescription> {
    let code = u64::from(code);
    (0x100..=0x1ff)
        .contains(&code)
        .then(|| AlertDescription::from((code - 0x100) as u8))
}

/// Peer- or rustls-supplied reason text, made safe for a log line and shorn of rustls' prefix.
/// Longest close reason shown, in characters: the relay's reasons say what is wrong and what
/// to do in a sentence or two (a refused second reader is told where the first one is); a
/// close frame cannot carry much more than 1,000 bytes anyway.
const MAX_REASON_CHARS: usize = 600;

fn clean(reason: &[u8]) -> String {
    let text = String::from_utf8_lossy(reason);
    let text = text
        .strip_prefix("invalid peer certificate: ")
        .unwrap_or(&text);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    if text.chars().count() > MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

fn with_detail(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" [{reason}]")
    }
}

fn describe(err: &ConnectionError, seat: Seat) -> String {
    let peer = match seat {
        Seat::Client => "the relay",
        Seat::Server => "the client",
    };
    match err {
        ConnectionError::TransportError(e) => match alert_of(e.code) {
            Some(alert) => {
                let reason = clean(e.reason.as_bytes());
                match seat {
                    Seat::Client => we_refused_relay(alert, &reason),
                    Seat::Server => we_refused_client(alert, &reason),
                }
            }
            None => format!("QUIC protocol error with {peer}: {e}"),
        },
        ConnectionError::ConnectionClosed(close) => match alert_of(close.error_code) {
            Some(alert) => {
                let reason = clean(&close.reason);
                match seat {
                    Seat::Client => relay_refused_us(alert, &reason),
                    Seat::Server => client_refused_us(alert, &reason),
                }
            }
            None => format!("{peer} aborted the connection (QUIC error: {close})"),
        },
        ConnectionError::ApplicationClosed(close) => {
            let reason = clean(&close.reason);
            if reason.is_empty() {
                format!("{peer} closed the connection (code {})", close.error_code)
            } else {
                format!(
                    "{peer} closed the connection: {reason} (code {})",
                    close.error_code
                )
            }
        }
        ConnectionError::TimedOut => match seat {
            Seat::Client => "no answer from the relay (timed out): check the address and port, that the relay is running, and that firewalls let UDP through to it".to_string(),
            Seat::Server => "the client stopped answering (timed out): its network link may be down or UDP is blocked on its side".to_string(),
        },
        ConnectionError::Reset => format!(
            "{peer} no longer knows this connection (it may have restarted); connect again"
        ),
        ConnectionError::VersionMismatch => format!(
            "{peer} speaks an incompatible QUIC version; update yilian on one side"
        ),
        ConnectionError::LocallyClosed => "the connection was closed on this side".to_string(),
        ConnectionError::CidsExhausted => {
            "too many connections on this endpoint (QUIC connection IDs exhausted); restart it".to_string()
        }
    }
}

/// Client seat, our stack refused the relay's certificate or handshake.
fn we_refused_relay(alert: AlertDescription, reason: &str) -> String {
    let detail = with_detail(reason);
    match alert {
        AlertDescription::UnknownCA => format!(
            "we refused the relay's certificate: it was not issued by the alliance CA we trust (check --ca and the relay address: this may not be the alliance relay){detail}"
        ),
        AlertDescription::CertificateExpired => format!(
            "we refused the relay's certificate: it has expired or is not yet valid (check this computer's date and time; otherwise tell the alliance administrator the relay needs a new certificate){detail}"
        ),
        AlertDescription::CertificateRevoked => format!(
            "we refused the relay's certificate: it has been revoked (tell the alliance administrator){detail}"
        ),
        AlertDescription::BadCertificate if reason.contains("not valid for name") => format!(
            "we refused the relay's certificate: it is not valid for the address we connected to (connect with a host name or IP address written on the relay's certificate){detail}"
        ),
        AlertDescription::UnsupportedCertificate => format!(
            "we refused the relay's certificate: it is not a server certificate (the alliance administrator must issue the relay a relay certificate){detail}"
        ),
        AlertDescription::NoApplicationProtocol => format!(
            "the relay does not speak yilian/1 (check the address and port, or update yilian on one side){detail}"
        ),
        _ => format!(
            "we refused the relay's certificate or handshake ({alert:?}; check --ca and the relay address){detail}"
        ),
    }
}

/// Client seat, the relay refused our certificate or handshake.
fn relay_refused_us(alert: AlertDescription, reason: &str) -> String {
    let detail = with_detail(reason);
    match alert {
        AlertDescription::UnknownCA => format!(
            "the relay refused our certificate: it was not issued by the alliance CA the relay trusts (check --cert and --key, or ask the alliance administrator for a certificate){detail}"
        ),
        AlertDescription::CertificateExpired => format!(
            "the relay refused our certificate: it has expired or is not yet valid (check this computer's date and time, or ask the alliance administrator for a new certificate){detail}"
        ),
        AlertDescription::CertificateRequired => format!(
            "the relay requires a certificate and we sent none (pass --cert and --key with a certificate from the alliance administrator){detail}"
        ),
        AlertDescription::CertificateRevoked => format!(
            "the relay refused our certificate: it has been revoked (ask the alliance administrator for a new certificate){detail}"
        ),
        AlertDescription::UnsupportedCertificate => format!(
            "the relay refused our certificate: it is not allowed for clients (ask the alliance administrator for a device or reader certificate){detail}"
        ),
        AlertDescription::DecryptError => format!(
            "the relay could not verify our certificate's signature (check that --key belongs to --cert){detail}"
        ),
        AlertDescription::NoApplicationProtocol => format!(
            "the relay refused the connection: we do not speak the same protocol version (update yilian on one side){detail}"
        ),
        _ => format!(
            "the relay refused our certificate or handshake ({alert:?}; check --cert and --key, or ask the alliance administrator){detail}"
        ),
    }
}

/// Server seat, our stack refused the client's certificate or handshake.
fn we_refused_client(alert: AlertDescription, reason: &str) -> String {
    let detail = with_detail(reason);
    match alert {
        AlertDescription::UnknownCA => format!(
            "refused the client's certificate: it was not issued by the alliance CA this relay trusts (the client must use a certificate from the alliance administrator){detail}"
        ),
        AlertDescription::CertificateExpired => format!(
            "refused the client's certificate: it has expired or is not yet valid (the client needs a new certificate, or its clock is wrong){detail}"
        ),
        AlertDescription::CertificateRequired => format!(
            "refused a client without a certificate: every device and reader needs one from the alliance CA{detail}"
        ),
        AlertDescription::CertificateRevoked => format!(
            "refused the client's certificate: it has been revoked{detail}"
        ),
        AlertDescription::UnsupportedCertificate => format!(
            "refused the client's certificate: it is not allowed for clients (missing client-auth usage){detail}"
        ),
        AlertDescription::DecryptError => format!(
            "refused the client's certificate: its signature did not verify (the client's key may not match its certificate){detail}"
        ),
        AlertDescription::NoApplicationProtocol => format!(
            "refused a client that does not speak yilian/1 (another program, or an incompatible yilian version){detail}"
        ),
        _ => format!("refused the client's certificate or handshake ({alert:?}){detail}"),
    }
}

/// Server seat, the client refused this relay's certificate or handshake.
fn client_refused_us(alert: AlertDescription, reason: &str) -> String {
    let detail = with_detail(reason);
    match alert {
        AlertDescription::UnknownCA => format!(
            "the client refused this relay's certificate: the client does not trust the CA that issued it (check the relay's --cert and the client's --ca){detail}"
        ),
        AlertDescription::CertificateExpired => format!(
            "the client refused this relay's certificate: it has expired or is not yet valid (renew the relay's certificate, or check the clocks){detail}"
        ),
        AlertDescription::BadCertificate => format!(
            "the client refused this relay's certificate (it may be connecting with a host name or address that is not on the certificate){detail}"
        ),
        AlertDescription::UnsupportedCertificate => format!(
            "the client refused this relay's certificate: it is not a server certificate{detail}"
        ),
        _ => format!(
            "the client refused this relay's certificate or handshake ({alert:?}){detail}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::{ConnectionClose, TransportErrorCode};

    fn closed(alert: AlertDescription, reason: &str) -> ConnectionError {
        ConnectionError::ConnectionClosed(ConnectionClose {
            error_code: TransportErrorCode::crypto(u8::from(alert)),
            frame_type: None,
            reason: reason.as_bytes().to_vec().into(),
        })
    }

    #[test]
    fn alert_codes_are_recognised() {
        let e = closed(AlertDescription::UnknownCA, "");
        let s = explain(&e);
        assert!(s.starts_with("the relay refused our certificate"), "{s}");
        assert!(s.contains("alliance CA"), "{s}");
        let s = explain_handshake_failure(&e);
        assert!(s.contains("client refused this relay's certificate"), "{s}");
    }

    #[test]
    fn peer_text_is_sanitised_and_bounded() {
        let long = format!("a\nb{}", "x".repeat(1000));
        let s = explain(&closed(AlertDescription::HandshakeFailure, &long));
        assert!(!s.contains('\n'));
        // Cut to MAX_REASON_CHARS (the 1,000 x's are not all there), plus our own words.
        assert!(s.contains('…'), "{s}");
        assert!(s.len() < MAX_REASON_CHARS + 200, "{}", s.len());
    }

    #[test]
    fn timeouts_say_what_to_check() {
        let s = explain(&ConnectionError::TimedOut);
        assert!(s.contains("UDP"), "{s}");
    }
}
