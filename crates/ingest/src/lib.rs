//! # yilian-ingest: the one ingest path
//!
//! Every front door of the relay — yilian/1 over QUIC, DIMSE C-STORE, and later STOW-RS, the
//! ECG recorder and the township gateway — hands its bytes to the same [`Ingest`] and gets the
//! same promise: an upload is [`Event::Stored`] only after its bytes were hash-verified,
//! fsync'ed and committed to the index. A front door only moves bytes and translates
//! outcomes into its own protocol (a `Stored` frame, a C-STORE-RSP status).
//!
//! ```text
//!  front door ──Principal + UploadSpec──▶ Ingest::begin (who, what, free space, study owner)
//!                                            │
//!                                            ▼
//!                                   gate (sans-IO): lease per (site, SOP UID), urgent first,
//!                                            │     idle expiry, per-identity caps
//!                                            ▼
//!  ──Bytes──▶ Upload::data ──▶ spool writer (blocking pool: walk DICOM, BLAKE3, write, fsync)
//!                                            │ header read → route (pure) → live instance
//!                                            ▼                              in the hub
//!                               commit (group commit: object + index + outbox + audit)
//!                                            │
//!                                            ▼
//!                                 Event::Stored ──▶ front door acknowledges
//! ```
//!
//! * **Principal** ([`Principal`]): an identity of the topology (its site is where the upload
//!   comes from, never what the upload claims) and the door it used (a certificate, an AE
//!   title).
//! * **Spec** ([`UploadSpec`]): what the front door knows before the bytes. yilian/1 knows the
//!   size, the study and often the hash: its uploads resume after a broken stream and reach
//!   connected readers while they arrive (cut-through). C-STORE knows only the SOP Instance
//!   UID: its upload goes to a scratch file, is checked against what is stored at commit (the
//!   same content is a no-op, other content under the same UID a conflict), and reaches
//!   readers once stored.
//! * **The gate** (`gate.rs`, sans-IO, with its async side in `gate_handle.rs`): one upload
//!   at a time per (site, SOP Instance UID); while an urgent upload from a site holds its
//!   lease, the site's routine uploads are asked to pause ([`Event::Hold`]); idle uploads are
//!   expired; uploads per identity are capped.
//! * **Free space** (`storage.rs`): below `min_free_bytes` uploads are refused as "relay
//!   storage full" while deliveries continue.
//! * **Refusals** (`refusal.rs`): one mapping from DICOM and store errors to a
//!   [`yilian_proto::Refusal`], which each front door translates.
//! * **Quiet studies** ([`quiet`]): a study sent without a manifest (C-STORE) is complete
//!   after a quiet period; what was stored becomes its manifest.
//! * **The hub** ([`hub`]): live instances and connected readers (fan-out).
//! * **Audit** (`audit.rs`): entries that cannot be written are logged and counted, never
//!   dropped silently.

mod audit;
pub mod gate;
mod gate_handle;
pub mod hub;
mod ingest;
pub mod metrics;
mod principal;
pub mod quiet;
mod refusal;
mod routing;
pub mod seal_tag;
pub mod sealed;
mod spec;
mod spool_writer;
mod storage;
mod upload;
mod whole;

pub use gate::{ConnId, GateConfig};
pub use hub::{Hub, LiveInstance, LiveOutcome};
pub use ingest::{Ingest, IngestConfig};
pub use metrics::{Gauge, Metrics};
pub use principal::{Door, Principal};
pub use refusal::{conflict, dicom_status, refusal, refusal_for, store_refusal};
pub use spec::UploadSpec;
pub use storage::{human, Storage};
pub use upload::{next_conn, Event, Opened, Upload};
