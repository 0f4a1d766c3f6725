//! Shared helpers for the transport integration tests: a development PKI and real endpoints
//! on 127.0.0.1 (no mocks).
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use time::OffsetDateTime;
use yilian_transport::{
    accept, server_endpoint, AcceptError, DevCa, PeerIdentity, Role, TlsPem, Tuning,
};

/// Guard against a hung handshake turning into a hung test run (not a performance assertion).
pub const GUARD: Duration = Duration::from_secs(20);

pub async fn guarded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f)
        .await
        .expect("test did not finish in time")
}

pub fn relay_id() -> PeerIdentity {
    PeerIdentity::new("county-relay", "county", Role::Relay, None).unwrap()
}

pub fn device_id() -> PeerIdentity {
    PeerIdentity::new("township-a-dr", "township-a", Role::Device, None).unwrap()
}

pub fn reader_id() -> PeerIdentity {
    PeerIdentity::new(
        "county-radiology",
        "county",
        Role::Reader,
        Some("radiology"),
    )
    .unwrap()
}

pub fn ca(name: &str) -> DevCa {
    DevCa::generate(name).unwrap()
}

/// TLS material for `id` issued by `issuer`, trusting `trusted`, valid now.
pub fn pem(issuer: &DevCa, trusted: &DevCa, id: &PeerIdentity, dns: &[&str]) -> TlsPem {
    let now = OffsetDateTime::now_utc();
    pem_valid(
        issuer,
        trusted,
        id,
        dns,
        now - time::Duration::hours(1),
        now + time::Duration::days(30),
    )
}

pub fn pem_valid(
    issuer: &DevCa,
    trusted: &DevCa,
    id: &PeerIdentity,
    dns: &[&str],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> TlsPem {
    let dns: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
    let (cert, key) = issuer.issue(id, &dns, not_before, not_after).unwrap();
    TlsPem {
        cert,
        key,
        ca: trusted.ca_pem(),
    }
}

/// What [`serve_once`]'s task returns.
pub type Served = tokio::task::JoinHandle<Result<(PeerIdentity, quinn::Connection), AcceptError>>;

/// A relay-side endpoint on 127.0.0.1:0 that accepts exactly one connection attempt; the task
/// returns what [`accept`] gave (the client's identity and the connection, or the failure).
pub fn serve_once(tls: &TlsPem) -> (SocketAddr, Served) {
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().unwrap(), tls, &Tuning::default()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let incoming = endpoint.accept().await.expect("endpoint closed");
        let (conn, id) = accept(incoming).await?;
        Ok((id, conn))
    });
    (addr, task)
}
