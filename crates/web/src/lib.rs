//! # yilian's HTTPS front door: DICOMweb for viewers
//!
//! Radiologists read in viewers (OHIF, Weasis), and viewers speak DICOMweb (PS3.18). This crate
//! is the relay's HTTPS listener ([`WebServer`]): rustls with the relay's certificate, HTTP/1.1
//! and HTTP/2 (hyper), routes with axum; the DICOMweb root is `/dicomweb`.
//!
//! ## The model
//! ```text
//!  TCP ─▶ TLS (client certificate optional) ─▶ hyper (h1/h2) ─▶ route ─▶ authenticate ─▶ handler
//!              │ read once per connection                         │ token or certificate:
//!              └─ ConnCert ─────────────────────────────────────▶ │ an identity of the topology
//!                                                                 ▼
//!                                   the one catalog and outboxes (yilian_store), audit (ingest)
//! ```
//! * **Who is asking** ([`auth`]): every request is made as an identity of the topology in force,
//!   proved by an alliance client certificate (the same admission rule as the QUIC door) or by
//!   a bearer token the relay issued ([`token`]: signed, expiring, revocable; nothing stored
//!   but revocations). No credentials: 401.
//! * **What it may see**: a reader sees exactly the studies routed to it (its outbox,
//!   delivered or not), the same rule as C-FIND and `yilian read`: queries run on
//!   `yilian_store::Store::find_limited` restricted to the reader. A study that is not the
//!   reader's is simply not found.
//! * **QIDO-RS** ([`qido`]): studies, series, instances (and their study- and series-scoped
//!   forms), with the catalog's matching, answered in the DICOM JSON model ([`dicom_json`]).
//!   Every search is audited (the keys, never the values).
//! * **WADO-RS retrieve** ([`wado`]): a study, series or instance as `multipart/related` of the
//!   stored bytes, streamed from the spool in chunks (bounded memory for any size); not the
//!   reader's: 404. Every retrieve is audited. Metadata ([`metadata`]): each instance's header
//!   in the DICOM JSON model, read up to its Pixel Data.
//! * **STOW-RS** ([`stow`]): a device's `POST /dicomweb/studies` streams each part into the one
//!   ingest path (the same checks, routing, durability and audit as a C-STORE); 200 only when
//!   every instance is durable, else each failure with its DICOM status. Its body is read by
//!   [`multipart`], which hands a part's data on as slices of the chunks it came in.
//!
//! Handlers never hold patient data in logs: queries are logged and audited by key names only.

mod answer;
pub mod auth;
pub mod codestream;
pub mod dicom_json;
pub mod frames;
pub mod metadata;
pub mod multipart;
pub mod qido;
mod qido_http;
pub mod rendered;
mod rendered_http;
mod server;
pub mod stow;
mod stow_http;
pub mod token;
pub mod wado;
mod wado_http;

pub use server::{router, TlsSwitch, WebServer, WebState};

use std::net::SocketAddr;

/// Why the HTTPS front door could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    #[error("cannot listen for HTTPS on {addr}: {source} (is another program using the port? set [http] listen or --http-listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error("HTTPS TLS configuration: {0}")]
    Tls(#[from] yilian_transport::TransportError),
}
