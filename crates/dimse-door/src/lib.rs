//! # yilian-dimse-door: the DIMSE front door
//!
//! DICOM consoles and workstations speak DIMSE, not yilian/1. This crate is the adapter
//! between `yilian-dimse` (the protocol: sans-IO association, tokio SCP driver) and
//! `yilian-ingest` (the one ingest path, the store's catalog):
//!
//! ```text
//!  console ──C-STORE──▶ DimseDoor::begin_store ──▶ Upload (unknown size, file meta made from
//!                           │                       the association) ──▶ durable ──▶ C-STORE-RSP
//!                           └── admission: called AE = ours; calling AE → identity (topology
//!                               [[ae]], or the gateway's fixed identity); unknown AE rejected
//!  workstation ──C-FIND──▶ find.rs: reader of the AE → catalog among the reader's outbox
//!  workstation ──C-GET / C-MOVE──▶ retrieve.rs: the same restriction; sent as stored
//! ```
//!
//! DICOM TLS (`tls.rs`) is the same door behind mutual TLS with the alliance certificates; a
//! certificate may only call as the AE titles of its own identity.
//!
//! The same door serves the relay ([`Callers::Topology`]) and the township gateway
//! ([`Callers::Fixed`]): only admission differs. See `door.rs` for the statuses a console gets
//! and `find.rs` for matching and character sets.

mod door;
mod find;
mod retrieve;
mod tls;

pub use door::{outcome_for, Callers, DimseDoor, DimseSink, DoorConfig, MAX_ASSOCIATIONS};
pub use tls::{Ended, TlsConfig};
