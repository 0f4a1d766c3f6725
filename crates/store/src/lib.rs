//! # The durable spool
//!
//! Everything yilian has acknowledged lives here, and the rule is simple: **nothing is
//! acknowledged before it is on disk** (file fsync'ed, renamed into place, directory fsync'ed,
//! index committed with SQLite `synchronous=FULL`; an upload of unknown size is acknowledged
//! once sealed in a pooled file that is durable already, and committed after: `sealed.rs`,
//! `settle.rs`). A `kill -9` at any moment loses nothing that was acknowledged.
//!
//! ## Layout under the data directory
//! ```text
//! objects/ab/abcdef….dcm   stored instances, content-addressed by BLAKE3, exactly as received
//! partial/<key>.part       uploads in progress (key = BLAKE3 of source site + SOP Instance UID)
//! partial/<key>.json       what the partial is (size, UIDs): a resumed upload must match it
//! index.sqlite             instances, catalog, study owners, outboxes, manifests, audit log (WAL)
//! ```
//! Folders are 0700 and files 0600: the spool holds patient data.
//!
//! ## Model
//! * Instances are scoped by source site: a SOP Instance UID is unique per site, and a study
//!   belongs to the site that sent it first (an instance or its manifest); only that site may
//!   add instances to it or declare its manifest ([`StoreError::StudyOwned`]).
//! * An upload writes into a [`Partial`]. Its length after a restart is where the upload resumes
//!   (a process crash keeps every written byte in the page cache; after a power loss a
//!   partial may hold garbage past its last fsync, which the final hash check refuses, and the
//!   upload then restarts from zero: slower, never corrupt).
//! * [`Store::commit`] turns a verified partial into a stored instance and, in the same SQLite
//!   transaction, puts one outbox entry per reader the instance is routed to.
//! * [`Store::commit_with_catalog`] also records the instance's catalog attributes (patient,
//!   study, series, instance: what C-FIND and QIDO match on) in that transaction;
//!   [`Store::find`] answers C-FIND/QIDO queries per PS3.4 C.2.2.2 and
//!   [`Store::instances_for`] lists what C-MOVE/C-GET send, both restricted to the instances
//!   in the asking reader's outbox (see `query.rs` for the matching rules).
//! * A reader's outbox is delivered in priority order; [`Store::mark_delivered`] is called only
//!   after the reader acknowledged the instance as verified and durable on its side.
//! * The audit log is append-only; it records who did what to which study, never patient names.
//!
//! The API is blocking (files, SQLite); async callers wrap calls in `spawn_blocking`.

mod audit;
mod catalog;
mod db;
mod direct;
mod error;
mod fsmode;
mod group;
#[cfg(test)]
mod lookup_cost_tests;
mod manifest;
mod outbox;
mod partial;
mod partials;
mod prune;
mod query;
mod readers;
mod records;
mod sealed;
mod settle;
mod store;

pub use audit::{AuditAction, AuditEvent, AuditRecord};
pub use error::{io_out_of_space, StoreError};
pub use fsmode::{DIR_MODE, FILE_MODE};
pub use group::GroupStats;
pub use manifest::ManifestStatus;
pub use outbox::{DeliveryFailure, FailedItem, OutboxItem, QueueDepth};
pub use partial::{Partial, PartialInfo};
pub use prune::Pruned;
pub use query::{person_name, wildcard, Found, Key, Match, Query, QueryLevel, DEFAULT_MATCH_LIMIT};
pub use records::{InstanceRecord, NewInstance};
pub use sealed::STOCK;
pub use settle::{PENDING_MAX, SETTLE_AFTER};
pub use store::{InstanceCommit, Store, StoreOptions, Stored};
/// The catalog attributes [`Store::commit_with_catalog`] records (from the DICOM walker).
pub use yilian_dicom::Catalog;
