//! # The yilian relay
//!
//! The relay is the hub of a county alliance: devices upload instances to it, it stores them
//! durably, routes them by the topology and delivers them to the readers they are meant for.
//! It is a thin async driver around sans-IO and blocking parts:
//!
//! ```text
//!             QUIC (mTLS, one stream per instance)
//! device ──Offer/bytes/Finish──▶ ingest ──Bytes──▶ spool writer (a pool thread while data flows)
//!                                  │               (walk DICOM, BLAKE3, write, fsync checkpoints)
//!                                  │ metadata ready → route (pure) → LiveInstance in the hub
//!                                  ▼
//!                                hub ──(offset, Bytes) broadcast──▶ reader sessions ──▶ readers
//!                                  ▲                                    ▲
//!                           commit: object + index + outbox      backlog from the outbox
//! ```
//!
//! * **Identity** comes from the peer's certificate ([`yilian_transport::peer_identity`]) and
//!   must match an identity of the topology; the source site of an upload is the peer's site.
//! * **Revocation** (`revocation.rs`): a certificate revoked by the alliance CA's CRLs fails the
//!   handshake; one on the topology's deny list (`[[revoked]]`, by name or serial) is refused
//!   at admission. Both are reloaded ([`reload`]: SIGHUP, or a file change seen by polling) and
//!   then live connections no longer admitted are closed with the reason (`connections.rs`
//!   keeps the registry of live connections). The topology in force is swapped as a whole:
//!   every task reads the current one, never the one of the start-up configuration.
//! * **Development certificates** (`dev_certs.rs`) are refused on a network address unless the
//!   config says `allow_dev_certs = true`: their private keys are public.
//! * **Ingest** ([`ingest`]): a [`yilian_proto::Receiver`] per stream; bytes go to a spool
//!   writer that validates the DICOM structure as it streams, hashes, writes and fsyncs
//!   checkpoints, on a thread of tokio's blocking pool that it holds only while data flows
//!   (an upload waiting for its data holds no thread). `Stored` is sent only after the
//!   store's commit returned.
//! * **Cut-through** ([`hub`]): as soon as the routing metadata is parsed, readers that are
//!   connected start receiving the instance. Chunks are shared `Bytes` (never copied per
//!   reader); a reader that falls behind the bounded broadcast reads the missing range from the
//!   partial file instead, so memory stays bounded whatever the instance size.
//! * **The gate** ([`gate`], sans-IO): one upload at a time per (site, SOP Instance UID), the
//!   others wait their turn (no upload supersedes another); while an urgent upload from a site
//!   holds its lease, the site's routine uploads are asked to pause (`Reply::Hold`) and later
//!   to continue (`Reply::Resume`), so a stroke CT gets a thin township uplink to itself, and
//!   a hold can never wait on what it holds; idle uploads are expired; uploads per identity
//!   are capped.
//! * **Limits**: connections and uploads per identity, idle uploads, unfinished uploads per
//!   site and their retention, manifest size, and free disk space (`storage.rs`: below the
//!   threshold new uploads are refused as "relay storage full" while deliveries continue).
//! * **Studies** belong to the site that sent them first; SOP Instance UIDs are scoped by site
//!   (`yilian_store`).
//! * **Commit** (`yilian_store`): concurrent commits share their fsyncs (group commit).
//! * **Delivery** ([`delivery`]): one session per connected reader, fed by its persistent
//!   outbox (backlog, priority order) and by live instances; an instance leaves the outbox only
//!   when the reader acknowledged it as verified and durable. A failed delivery is retried in
//!   the session with capped backoff (`retry.rs`) and, if it keeps failing, named in the
//!   backlog notice. The connected readers share one budget for delivery buffers
//!   (`budget.rs`: each reader connection's QUIC send window is budget / readers), so memory
//!   does not grow with fan-out. One live subscription per reader identity
//!   (`subscriptions.rs`): a second is refused with where and since when the first is
//!   connected, unless the first no longer answers a probe, which it then takes over from.
//! * **DIMSE egress** ([`dimse_egress`]): a reader identity of the topology may be a DICOM
//!   peer (`[[ae]]` with `push = true`, host, port): one worker per such AE drains that
//!   reader's outbox by C-STORE over a few associations in parallel, in the stored transfer
//!   syntax, retrying what may pass later and recording (not retrying) what the peer refuses
//!   for good.

mod audit;
mod budget;
pub mod close;
pub mod config;
mod config_ecg;
mod config_http;
mod connections;
mod ctx;
pub mod delivery;
mod dev_certs;
mod dicom_tls;
pub mod dimse_egress;
mod ecg;
mod manifest;
pub mod quic_upload;
pub mod reload;
mod reload_state;
mod retry;
mod revocation;
pub mod server;
mod subscriptions;
mod uplink;

pub use config::{ConfigFile, Limits, RelayConfig};
pub use config_ecg::EcgSection;
pub use dev_certs::DevCertsRefused;
pub use ecg::EcgSettings;
pub use reload::{log_reload, ReloadError, ReloadSummary};
pub use server::{Relay, RelayError};
pub use yilian_ingest::Metrics;
