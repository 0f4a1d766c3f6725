//! # yilian clients
//!
//! * [`send`]: upload DICOM files and folders to a relay. Each instance travels on its own
//!   QUIC stream (several at once). The relay answers every offer with the offset it already
//!   holds durably, so a sender that was killed, or whose link dropped, resumes where the relay
//!   stands instead of from zero; an instance already stored is a no-op. A file counts as sent
//!   only when the relay acknowledged it (`Stored`: hash verified and fsync'ed). Files that are
//!   not DICOM, truncated or malformed are reported per file and never sent.
//! * [`read`]: a reader workstation. It subscribes to everything routed to its identity and
//!   writes each instance to `OUT/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, through a partial
//!   file that resumes at its length, verified against the relay's hash and fsync'ed before it
//!   is acknowledged. One reader identity reads in one place at a time: the relay refuses a
//!   second subscription while the first answers, and `read` then stops with the reason.
//!
//! Reaching the relay (`connect.rs`): link failures are retried with backoff for
//! `give_up_after`, but a relay never reached yet ([`Contact`]) is tried for
//! [`FIRST_CONTACT_BUDGET`] only, and the client says which address, UDP port and certificate
//! name it tried ([`ClientError::NoRelayAnswered`]).
//!
//! * [`send_manifests`]: tell the relay which instances make each study, on its own (the
//!   township gateway forwards instances as they arrive and a study's manifest once it went
//!   quiet).
//!
//! Both report through [`Progress`], which the CLI turns into progress bars.

mod connect;
mod download;
pub mod ecg;
mod error;
mod failures;
mod hashing;
mod manifest;
mod progress;
mod read;
mod send;
mod sink;
mod stall;
mod uplink;
mod upload;
pub mod write_order;

pub use connect::{Backoff, ClientConfig, Contact, FIRST_CONTACT_BUDGET};
pub use error::ClientError;
pub use failures::{DeliveryFailure, FailureSide};
pub use manifest::send_manifests;
pub use progress::{NoProgress, Progress};
pub use read::{read, ReadOptions, ReadReport};
pub use send::{
    collect_files, send, FileOutcome, FileReport, SendOptions, SendReport, StudyReport,
};
