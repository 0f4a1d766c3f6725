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
//! * **Ingest** ([`ingest`]): a [`yilian_proto::Receiver`] per stream; bytes go to a spool
//!   writer that validates the DICOM structure as it streams, hashes, writes and fsyncs
//!   checkpoints, on a thread of tokio's blocking pool that it holds only while data flows
//!   (an upload waiting for its data holds no thread). `Stored` is sent only after the
//!   store's commit returned.
//! * **Cut-through** ([`hub`]): as soon as the routing metadata is parsed, readers that are
//!   connected start receiving the instance. Chunks are shared `Bytes` (never copied per
//!   reader); a reader that falls behind the bounded broadcast reads the missing range from the
//!   partial file instead, so memory stays bounded whatever the instance size.
//! * **Urgent first** (`urgency.rs`): while an urgent upload from a site is in progress, the
//!   routine uploads from that site are asked to pause (`Reply::Hold`) and later to continue
//!   (`Reply::Resume`), so a stroke CT gets a thin township uplink to itself.
//! * **Commit** (`yilian_store`): concurrent commits share their fsyncs (group commit).
//! * **Delivery** ([`delivery`]): one session per connected reader, fed by its persistent
//!   outbox (backlog, priority order) and by live instances; an instance leaves the outbox only
//!   when the reader acknowledged it as verified and durable. A failed delivery is retried in
//!   the session with capped backoff (`retry.rs`) and, if it keeps failing, named in the
//!   backlog notice. The connected readers share one budget for delivery buffers
//!   (`budget.rs`: each reader connection's QUIC send window is budget / readers), so memory
//!   does not grow with fan-out.

mod budget;
pub mod config;
pub mod delivery;
pub mod hub;
pub mod ingest;
pub mod metrics;
mod retry;
pub mod server;
mod spool_writer;
mod urgency;

pub use config::{ConfigFile, RelayConfig};
pub use metrics::Metrics;
pub use server::{Relay, RelayError};
