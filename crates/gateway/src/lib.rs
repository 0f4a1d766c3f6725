//! # yilian-gateway: the township gateway
//!
//! A township's DR, CT and ultrasound consoles speak DICOM (DIMSE C-STORE) on the health
//! center's LAN; the county relay speaks yilian/1 over QUIC across a WAN link that is slow,
//! lossy and sometimes down for minutes. The gateway sits between them:
//!
//! ```text
//!  console ──C-STORE──▶ DIMSE door ──▶ local ingest ──▶ local spool (hash, fsync, commit)
//!  (LAN)               (AE YILIAN_GW)       │                 │ outbox of reader `upstream`
//!                                            │                 ▼
//!      C-STORE-RSP success ◀── durable here ─┘          forwarder ══QUIC yilian/1══▶ county relay
//!                                                        (send: resume, retries, outages,
//!                                                         urgent first at the relay)
//! ```
//!
//! * **One ingest path.** The gateway runs the relay's own pieces: a [`yilian_store::Store`]
//!   in its data folder, a [`yilian_ingest::Ingest`] over it and the
//!   [`yilian_dimse_door::DimseDoor`]. A console's C-STORE is answered "success" exactly when
//!   the instance is hash-verified, fsync'ed and committed in the gateway's spool, as the relay
//!   would answer it. What the console sent is stored as received (file meta made from the
//!   association, then the data set byte for byte) and forwarded as stored.
//! * **A synthetic topology** ([`topology`]): the gateway has no alliance file. Its
//!   certificate says who it is (e.g. `township-a-device` of site `township-a`); every console
//!   acts as that identity (the door's [`yilian_dimse_door::Callers::Fixed`], optionally only
//!   for the listed calling AE titles), and everything stored is routed to one local reader,
//!   `upstream`. Departments and urgency are decided by the county relay's rules, from the
//!   headers, exactly as if the console had called the relay itself.
//! * **The forwarder** ([`forward`]) is that reader: woken by the local hub when an instance is
//!   stored, it forwards the outbox with the client's `send` (resumable uploads, retries with
//!   backoff, several runs at once so a new urgent study does not wait behind a long series)
//!   and marks each instance the relay acknowledged as delivered. Refusals for good are
//!   audited, logged with the SOP Instance UID and set aside; everything else is retried.
//! * **WAN down.** The door does not depend on the link: consoles keep storing, the spool
//!   grows, and when the link returns the forwarder sends everything, resuming partly sent
//!   instances where the relay stands. A gateway killed at any moment loses nothing it
//!   acknowledged: after a restart the outbox is still there.
//! * **Study completeness.** C-STORE has no "study done": the local quiet period
//!   ([`yilian_ingest::quiet`]) completes a study at the gateway; the forwarder then sends the
//!   study's manifest upstream, so the county's readers are told the study is complete. The
//!   studies still owing a manifest are recorded on disk ([`studies`]) and survive a restart.
//!
//! * **Retention.** What the relay acknowledged stays in the gateway's spool (the township's
//!   copy) for `--keep` (30 days by default), then is removed with an audit entry
//!   ([`yilian_store::Store::prune_delivered`]); an image the relay refused for good is never
//!   removed (the gateway holds the only copy).

pub mod forward;
mod gateway;
pub mod studies;
pub mod topology;

pub use forward::{classify, Verdict};
pub use gateway::{Gateway, GatewayConfig, DEFAULT_AE_TITLE, DRAIN_TIMEOUT};
pub use topology::{Local, UPSTREAM_READER};

/// Why a gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Identity(String),
    #[error("{0}")]
    Config(String),
    #[error("the gateway's spool: {0}")]
    Store(#[from] yilian_store::StoreError),
    #[error("cannot listen for DICOM on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}
